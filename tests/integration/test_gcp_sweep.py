"""The GCP sweep (bioinfra/adaptors/gcp_sweep.py) with the real Google client libraries over HTTP.

STAND-INS (Google Cloud cannot be reached from here):
  - FakeGoogleApis (tests/fakes/google_api.py): our in-memory stand-in for the container, compute,
    file, artifactregistry and iam REST APIs;
  - gcp-storage-emulator: a third-party GCS emulator, for the buckets.
The environment is seeded as `bioinfra up gcp` would leave it (the labels and names of
terraform/gcp), next to a bystander cluster whose names start with ours.
"""

from __future__ import annotations

import pytest

from bioinfra.adaptors.gcp import open_session
from bioinfra.adaptors.gcp_sweep import ORDER, delete_leftovers, find_leftovers
from tests.fakes.terraform_state import RecordingTerraform

PROJECT, REGION = "my-project-123", "europe-west2"
P = f"/v1/projects/{PROJECT}"
C = f"/compute/v1/projects/{PROJECT}"
NET = f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/global/networks"


def labels(cluster: str, stack: str) -> dict[str, str]:
    return {"bioinfra-cluster": cluster, "bioinfra-stack": stack, "managed-by": "bioinfra"}


def seed_cluster(fake, name: str) -> None:
    """What `up gcp` makes for cluster `name` (plus what GKE and Kubernetes add)."""
    fake.put(f"{P}/locations/{REGION}/clusters/{name}", {
        "resourceLabels": labels(name, "cluster"), "location": REGION,
        "nodePools": [{"name": "general"}, {"name": "highcpu"}]})
    fake.put(f"{P}/locations/{REGION}-a/instances/{name}-workspace", {"labels": labels(name, "storage")})
    fake.put(f"{P}/locations/{REGION}/repositories/{name}", {"labels": labels(name, "storage"), "format": "DOCKER"})
    fake.put(f"{C}/global/networks/{name}", {"description": f"bioinfra cluster {name}"})
    fake.put(f"{C}/regions/{REGION}/subnetworks/{name}-nodes",
             {"network": f"{NET}/{name}", "ipCidrRange": "10.10.0.0/20"})
    fake.put(f"{C}/regions/{REGION}/routers/{name}-router",
             {"network": f"{NET}/{name}", "nats": [{"name": f"{name}-nat"}]})
    for rule in (f"{name}-allow-internal", f"{name}-allow-webhooks", f"gke-{name}-1a2b3c4d-master"):
        fake.put(f"{C}/global/firewalls/{rule}", {"network": f"{NET}/{name}"})
    # a PVC's disk whose pod is gone (detached) and a node's boot disk (attached: goes with its VM)
    fake.put(f"{C}/zones/{REGION}-a/disks/pvc-{name}-0001", {"labels": labels(name, "cluster")})
    fake.put(f"{C}/zones/{REGION}-a/disks/gke-{name}-general-boot", {
        "labels": labels(name, "cluster"), "users": [f"{C}/zones/{REGION}-a/instances/gke-{name}-general-x"]})
    for suffix in ("nodes", "workflow"):
        fake.put(f"{P}/serviceAccounts/{name}-{suffix}@{PROJECT}.iam.gserviceaccount.com",
                 {"email": f"{name}-{suffix}@{PROJECT}.iam.gserviceaccount.com",
                  "description": f"bioinfra {name} {suffix}"})


@pytest.fixture
def world(fake_google_apis, gcs_emulator):
    fake = fake_google_apis
    seed_cluster(fake, "demo")
    seed_cluster(fake, "demo-2")  # a bystander: names start with "demo-", labels say demo-2
    fake.put(f"{C}/global/firewalls/demo-ssh-elsewhere", {"network": f"{NET}/default"})  # not in our VPC
    session = open_session(PROJECT, REGION, fake.url)
    storage = session.storage()
    for name, owner in (("demo-results", "demo"), ("demo-2-results", "demo-2")):
        bucket = storage.create_bucket(name, location=REGION)
        # labels set by a patch: gcp-storage-emulator drops them from a create (Google keeps them)
        bucket.labels = labels(owner, "storage")
        bucket.patch()
    storage.bucket("demo-results").blob("run1/multiqc_report.html").upload_from_string("<html/>")
    return fake, session


def ids(leftovers) -> list[tuple[str, str]]:
    return [(lo.kind, lo.id) for lo in leftovers]


def test_finds_everything_of_the_cluster_and_nothing_else(world):
    fake, session = world
    found = find_leftovers(session, "demo", extra_service_accounts=["demo-nodes", "demo-workflow"])
    p = f"projects/{PROJECT}"
    assert ids(found) == [
        ("gke-cluster", f"{p}/locations/{REGION}/clusters/demo"),
        ("filestore-instance", f"{p}/locations/{REGION}-a/instances/demo-workspace"),
        ("disk", f"{p}/zones/{REGION}-a/disks/pvc-demo-0001"),
        ("firewall", f"{p}/global/firewalls/demo-allow-internal"),
        ("firewall", f"{p}/global/firewalls/demo-allow-webhooks"),
        ("firewall", f"{p}/global/firewalls/gke-demo-1a2b3c4d-master"),
        ("router", f"{p}/regions/{REGION}/routers/demo-router"),
        ("subnetwork", f"{p}/regions/{REGION}/subnetworks/demo-nodes"),
        ("network", f"{p}/global/networks/demo"),
        ("artifact-registry-repository", f"{p}/locations/{REGION}/repositories/demo"),
        ("gcs-bucket", "demo-results"),
        ("service-account", f"{p}/serviceAccounts/demo-nodes@{PROJECT}.iam.gserviceaccount.com"),
        ("service-account", f"{p}/serviceAccounts/demo-workflow@{PROJECT}.iam.gserviceaccount.com"),
    ]
    assert [lo.kind for lo in found] == sorted((lo.kind for lo in found), key=ORDER.index)
    stacks = {lo.kind: lo.stack for lo in found}
    assert stacks["gke-cluster"] == "cluster" and stacks["network"] == "network" and stacks["gcs-bucket"] == "storage"
    # labels were asked of Google where the API filters (compute aggregated lists)
    disk_lists = [r for r in fake.requests if r.path.endswith("/aggregated/disks")]
    assert disk_lists and disk_lists[0].query.get("filter") == 'labels.bioinfra-cluster = "demo"'


def test_deletes_in_order_keeps_a_bucket_with_data_and_spares_the_bystander(world):
    fake, session = world
    said: list[str] = []
    found = find_leftovers(session, "demo", extra_service_accounts=["demo-nodes", "demo-workflow"])
    result = delete_leftovers(session, found, force_empty_buckets=False, say=said.append)
    assert not result.failed, result.failed
    assert [(lo.id, why) for lo, why in result.kept] == [
        ("demo-results", "it has 1 object version (1 live, 0 older) (--force-empty-buckets deletes them)")]
    # the wire: the cluster went first, the VPC after everything in it
    deletes = fake.paths("DELETE")
    assert deletes[0] == f"{P}/locations/{REGION}/clusters/demo"
    assert deletes.index(f"{C}/global/networks/demo") > max(
        deletes.index(f"{C}/global/firewalls/demo-allow-internal"),
        deletes.index(f"{C}/regions/{REGION}/subnetworks/demo-nodes"),
        deletes.index(f"{C}/regions/{REGION}/routers/demo-router"))
    assert fake.get(f"{C}/zones/{REGION}-a/disks/gke-demo-general-boot") is not None  # attached: not ours to delete
    # nothing of demo is left but the kept bucket; the bystander demo-2 is whole
    again = find_leftovers(session, "demo", extra_service_accounts=["demo-nodes", "demo-workflow"])
    assert ids(again) == [("gcs-bucket", "demo-results")]
    other = find_leftovers(session, "demo-2", extra_service_accounts=["demo-2-nodes", "demo-2-workflow"])
    assert len(other) == 13
    assert fake.get(f"{C}/global/firewalls/demo-ssh-elsewhere") is not None
    assert any(line.startswith("deleted gke-cluster") for line in said)


def test_force_empty_buckets_deletes_every_version(world):
    fake, session = world
    storage = session.storage()
    storage.bucket("demo-results").blob("run1/multiqc_report.html").upload_from_string("<html>v2</html>")
    found = [lo for lo in find_leftovers(session, "demo") if lo.kind == "gcs-bucket"]
    result = delete_leftovers(session, found, force_empty_buckets=True, say=lambda m: None)
    assert ids(result.deleted) == [("gcs-bucket", "demo-results")] and not result.kept
    assert [b.name for b in storage.list_buckets()] == ["demo-2-results"]


def test_one_stack_at_a_time_and_a_failure_does_not_stop_the_sweep(world):
    fake, session = world
    fake.fail(f"{C}/global/firewalls/demo-allow-internal", 400, "The firewall is in use", method="DELETE")
    found = find_leftovers(session, "demo", extra_service_accounts=["demo-nodes", "demo-workflow"])
    result = delete_leftovers(session, found, force_empty_buckets=False, say=lambda m: None, stack="network")
    assert {lo.stack for lo in result.deleted} == {"network"}
    assert [lo.id.rsplit("/", 1)[-1] for lo, _ in result.failed] == ["demo-allow-internal"]
    assert "in use" in result.failed[0][1]
    assert fake.get(f"{P}/locations/{REGION}/clusters/demo") is not None  # another stack's: untouched


# -- the results bucket around destroy and up (GcpTarget hooks), on gcp-storage-emulator -------------


def _storage_stack():
    from bioinfra.targets.gcp import STACKS

    return next(s for s in STACKS if s.name == "storage")


def test_a_results_bucket_with_data_is_kept_out_of_terraform_then_adopted_by_the_next_up(world, tmp_path):
    from bioinfra.config import parse_config
    from bioinfra.targets.gcp import BUCKET_ADDRESS, GcpTarget

    fake, session = world
    config = parse_config({"name": "demo", "target": "gcp", "project": PROJECT, "region": REGION,
                           "buckets": {"results": "demo-results"}})
    said: list[str] = []
    tf = RecordingTerraform([BUCKET_ADDRESS, "module.storage.google_storage_bucket_iam_member.workflow",
                             "module.storage.google_service_account.workflow"], tmp_path)
    GcpTarget().before_destroy(config, _storage_stack(), tf, session, force_empty_buckets=False, say=said.append)
    # taken out of the state (so `destroy` leaves it; its IAM binding goes), data untouched, said so
    assert tf.removed == [BUCKET_ADDRESS]
    assert said == ["keeping bucket demo-results: it has 1 object version (1 live, 0 older) "
                    "(re-run with --force-empty-buckets to delete them)"]
    assert session.storage().bucket("demo-results").blob("run1/multiqc_report.html").exists()

    # the next `up`: an import block takes it back instead of failing on the taken name
    fresh = RecordingTerraform([], tmp_path)
    GcpTarget().adopt_kept(config, _storage_stack(), fresh, session, said.append)
    assert (tmp_path / "adopt.tf").read_text().endswith(
        f"import {{\n  to = {BUCKET_ADDRESS}\n  id = var.bucket\n}}\n")  # the name as data (#15), not HCL
    # a bucket of that name labelled for another cluster is not ours to adopt
    other = parse_config({"name": "demo-2", "target": "gcp", "project": PROJECT, "region": REGION,
                          "buckets": {"results": "demo-results"}})
    GcpTarget().adopt_kept(other, _storage_stack(), fresh, session, said.append)
    assert not (tmp_path / "adopt.tf").exists()


def test_force_empty_buckets_empties_the_results_bucket_before_terraform_deletes_it(world, tmp_path):
    from bioinfra.adaptors.gcs import bucket_contents
    from bioinfra.config import parse_config
    from bioinfra.targets.gcp import BUCKET_ADDRESS, GcpTarget

    fake, session = world
    config = parse_config({"name": "demo", "target": "gcp", "project": PROJECT, "region": REGION,
                           "buckets": {"results": "demo-results"}})
    tf = RecordingTerraform([BUCKET_ADDRESS], tmp_path)
    GcpTarget().before_destroy(config, _storage_stack(), tf, session, force_empty_buckets=True, say=lambda m: None)
    assert tf.removed == [] and bucket_contents(session, "demo-results") == ""


# -- Filestore instances the GKE Filestore CSI driver made (issue #18) -------------------------------


def csi_labels(pv: str, claim: str = "bioinfra-workspace", namespace: str = "bioinfra") -> dict[str, str]:
    """The labels the driver puts on an instance it creates (gcp-filestore-csi-driver,
    pkg/csi_driver/controller.go: extractLabels)."""
    return {"storage_gke_io_created-by": "filestore_csi_storage_gke_io", "kubernetes_io_created-for_pv_name": pv,
            "kubernetes_io_created-for_pvc_name": claim, "kubernetes_io_created-for_pvc_namespace": namespace}


def seed_csi_instances(fake) -> None:
    """What `up gcp` without gcp.filestore leaves: the workspace's instance, made by the driver in our VPC
    (BASIC_HDD, 1 TiB), before the class passed our label (driver labels only) and after (both); and
    instances the driver made for other clusters, in their VPCs."""
    fake.put(f"{P}/locations/{REGION}-b/instances/pvc-0a1b2c3d", {
        "labels": csi_labels("pvc-0a1b2c3d"), "tier": "BASIC_HDD", "state": "READY",
        "networks": [{"network": "demo", "connectMode": "DIRECT_PEERING", "ipAddresses": ["10.96.0.2"]}],
        "fileShares": [{"name": "vol1", "capacityGb": "1024"}]})
    fake.put(f"{P}/locations/{REGION}-c/instances/pvc-9f8e7d6c", {
        "labels": {**csi_labels("pvc-9f8e7d6c", claim="scratch", namespace="lab"), "bioinfra-cluster": "demo",
                   "managed-by": "bioinfra"},
        "tier": "BASIC_HDD", "state": "READY", "networks": [{"network": f"projects/{PROJECT}/global/networks/demo"}]})
    fake.put(f"{P}/locations/{REGION}-b/instances/pvc-77777777", {
        "labels": csi_labels("pvc-77777777"), "networks": [{"network": "demo-2"}], "state": "READY"})
    fake.put(f"{P}/locations/{REGION}-a/instances/pvc-88888888", {
        "labels": csi_labels("pvc-88888888"), "networks": [{"network": "default"}], "state": "READY"})


def test_finds_the_filestore_instances_the_csi_driver_made_in_our_vpc(world):
    fake, session = world
    seed_csi_instances(fake)
    found = [lo for lo in find_leftovers(session, "demo") if lo.kind == "filestore-instance"]
    p = f"projects/{PROJECT}"
    assert [(lo.id, lo.stack, lo.detail) for lo in found] == [
        (f"{p}/locations/{REGION}-a/instances/demo-workspace", "storage", ""),  # gcp.filestore: Terraform's
        (f"{p}/locations/{REGION}-b/instances/pvc-0a1b2c3d", "cluster",
         "made by the Filestore CSI driver for claim bioinfra/bioinfra-workspace, volume pvc-0a1b2c3d"),
        (f"{p}/locations/{REGION}-c/instances/pvc-9f8e7d6c", "cluster",
         "made by the Filestore CSI driver for claim lab/scratch, volume pvc-9f8e7d6c"),
    ]
    # demo-2's VPC and the default VPC are not ours; demo-2 finds its own
    other = [lo.id for lo in find_leftovers(session, "demo-2") if lo.kind == "filestore-instance"]
    assert other == [f"{p}/locations/{REGION}-a/instances/demo-2-workspace",
                     f"{p}/locations/{REGION}-b/instances/pvc-77777777"]


def test_the_csi_instances_go_before_the_vpc_their_peering_would_hold(world):
    fake, session = world
    seed_csi_instances(fake)
    said: list[str] = []
    # before the cluster stack is destroyed: what the driver did not delete itself
    found = find_leftovers(session, "demo", extra_service_accounts=["demo-nodes", "demo-workflow"])
    cluster = delete_leftovers(session, found, force_empty_buckets=False, say=said.append, stack="cluster")
    assert not cluster.failed, cluster.failed
    assert {lo.id.rsplit("/", 1)[-1] for lo in cluster.deleted if lo.kind == "filestore-instance"} == {
        "pvc-0a1b2c3d", "pvc-9f8e7d6c"}
    # and in the final sweep the instances come before the network
    seed_csi_instances(fake)
    result = delete_leftovers(session, find_leftovers(session, "demo"), force_empty_buckets=False, say=said.append)
    assert not result.failed, result.failed
    deletes = fake.paths("DELETE")
    network = deletes.index(f"{C}/global/networks/demo")
    assert network > max(i for i, path in enumerate(deletes) if "/instances/pvc-" in path)
    assert fake.get(f"{P}/locations/{REGION}-b/instances/pvc-77777777") is not None  # demo-2's
    assert fake.get(f"{P}/locations/{REGION}-a/instances/pvc-88888888") is not None  # the default VPC's
    assert not [lo for lo in find_leftovers(session, "demo") if lo.kind == "filestore-instance"]


def test_an_instance_the_driver_is_deleting_is_waited_for_not_deleted_twice(world, monkeypatch):
    import threading
    import time

    from bioinfra.adaptors import gcp_sweep

    fake, session = world
    path = f"{P}/locations/{REGION}-b/instances/pvc-0a1b2c3d"
    fake.put(path, {"labels": csi_labels("pvc-0a1b2c3d"), "networks": [{"network": "demo"}], "state": "DELETING"})
    monkeypatch.setattr(gcp_sweep, "FILESTORE_POLL", 0.1)
    (leftover,) = [lo for lo in find_leftovers(session, "demo") if lo.id.endswith("/pvc-0a1b2c3d")]
    assert leftover.detail.endswith("; being deleted")
    timer = threading.Timer(0.5, fake.delete, (path,))  # the driver's delete completes
    timer.start()

    started = time.monotonic()
    result = delete_leftovers(session, [leftover], force_empty_buckets=False, say=lambda m: None)
    timer.join()

    assert [lo.id for lo in result.deleted] == [leftover.id] and not result.failed
    assert time.monotonic() - started >= 0.5
    assert not fake.seen("DELETE", path)  # waited for, not deleted a second time

    # still there when the time is up: a failure naming it, the sweep goes on
    fake.put(path, {"labels": csi_labels("pvc-0a1b2c3d"), "networks": [{"network": "demo"}], "state": "DELETING"})
    result = gcp_sweep.delete_leftovers(session, [leftover], force_empty_buckets=False, say=lambda m: None,
                                        timeout=0.3)
    assert [(lo.id, why) for lo, why in result.failed] == [
        (leftover.id, f"Filestore instance {leftover.id} is still being deleted after 0 s")]


# -- a results bucket a destroy kept, named as kept by the next destroy (labelled bioinfra-kept) -----

KEPT_LABEL = "bioinfra-kept"  # key: lowercase letters and "-"; value: the UTC date YYYY-MM-DD (GCS label rules)


class StateOnlyTerraform:
    """STAND-IN for bioinfra.adaptors.terraform.Terraform under Provisioner.destroy (the google provider
    cannot be installed here): one stack's state as {address: values}. `plan -destroy` counts what is in
    it, `apply` of that plan empties it, `state rm` forgets an address, as Terraform would; init and
    outputs answer as for a stack whose upstream left nothing."""

    def __init__(self, workdir, state=None) -> None:
        self.workdir, self.state = workdir, dict(state or {})

    def init(self, backend_config_file=None) -> None:
        pass

    def outputs(self) -> dict:
        return {}

    def state_list(self) -> list[str]:
        return list(self.state)

    def state_rm(self, addresses: list[str]) -> None:
        for address in addresses:
            self.state.pop(address, None)

    def show_state(self) -> dict:
        resources = [{"address": a, "values": v} for a, v in self.state.items()]
        return {"values": {"root_module": {"resources": resources}}}

    def stream(self, args, say=None, on_event=None):
        from bioinfra.adaptors.terraform import StreamResult

        log = self.workdir / "terraform.log"
        if args[0] == "plan":  # -detailed-exitcode: 2 = changes
            return StreamResult(2 if self.state else 0, log, changes={"remove": len(self.state)})
        assert args[0] == "apply", args
        self.state.clear()
        return StreamResult(0, log)


@pytest.fixture
def kept_world(fake_google_apis, gcs_emulator, monkeypatch):
    """What `up gcp` leaves of cluster demo's results bucket: labelled, with a result in it (GCS on
    gcp-storage-emulator, every other API on FakeGoogleApis, empty); a bystander's bucket beside it."""
    monkeypatch.setenv("BIOINFRA_GCP_ENDPOINT_URL", fake_google_apis.url)
    session = open_session(PROJECT, REGION, fake_google_apis.url)
    storage = session.storage()
    for name, owner in (("demo-results", "demo"), ("demo-2-results", "demo-2")):
        bucket = storage.create_bucket(name, location=REGION)
        bucket.labels = labels(owner, "storage")  # by a patch: gcp-storage-emulator drops a create's labels
        bucket.patch()
    storage.bucket("demo-results").blob("run1/multiqc_report.html").upload_from_string("<html/>")
    return session


def _destroy(monkeypatch, tmp_path, states: dict, *, force_empty_buckets: bool) -> tuple[list[str], object]:
    """Provisioner.destroy (what `bioinfra destroy gcp` calls) with each stack's Terraform stood in for."""
    from bioinfra.config import parse_config
    from bioinfra.core.provision import Provisioner

    config = parse_config({"name": "demo", "target": "gcp", "project": PROJECT, "region": REGION,
                           "buckets": {"results": "demo-results"},
                           # its own Filestore instance: no wait on the CSI driver of a cluster that is not here
                           "gcp": {"filestore": True, "zones": [f"{REGION}-a"]}})
    terraforms: dict[str, StateOnlyTerraform] = {}
    monkeypatch.setattr(Provisioner, "tf", lambda self, stack: terraforms.setdefault(
        stack.name, StateOnlyTerraform(self.env_dir / stack.name, states.get(stack.name))))
    said: list[str] = []
    try:
        Provisioner(config, tmp_path / "bioinfra.yaml", said.append).destroy(force_empty_buckets=force_empty_buckets)
    except Exception as exc:  # noqa: BLE001 - returned for the test to look at
        return said, exc
    return said, None


def test_a_bucket_a_destroy_kept_is_named_as_kept_by_the_next_destroy_not_as_an_interrupted_apply(
        kept_world, monkeypatch, tmp_path):
    """Three `destroy`s through Provisioner.destroy, its Terraform stood in for (StateOnlyTerraform: no google
    provider here), GCS on gcp-storage-emulator, the other APIs on FakeGoogleApis: the first keeps the bucket
    with data and labels it bioinfra-kept=<UTC date>; the next two name it as kept by that destroy, never as
    an interrupted apply's, and keep it, then (--force-empty-buckets) delete it."""
    import time

    from bioinfra.errors import ExitCode, LeftoversError
    from bioinfra.targets.gcp import BUCKET_ADDRESS

    session = kept_world
    before = time.strftime("%Y-%m-%d", time.gmtime())
    # 1. destroy with the bucket in the storage stack's state: kept (it has data), out of the state, labelled
    said, error = _destroy(monkeypatch, tmp_path, {"storage": {
        BUCKET_ADDRESS: {"name": "demo-results"},
        "module.storage.google_storage_bucket_iam_member.workflow": {"id": "b/demo-results roles/storage.objectUser"},
    }}, force_empty_buckets=False)
    assert isinstance(error, LeftoversError) and error.exit_code == ExitCode.LEFTOVERS, error
    assert ("keeping bucket demo-results: it has 1 object version (1 live, 0 older) "
            "(re-run with --force-empty-buckets to delete them)") in said
    kept_on = session.storage().get_bucket("demo-results").labels.pop(KEPT_LABEL)
    assert kept_on in (before, time.strftime("%Y-%m-%d", time.gmtime()))  # the UTC date, YYYY-MM-DD
    # the patch kept every other label (the sweep finds the bucket by bioinfra-cluster)
    assert session.storage().get_bucket("demo-results").labels == {**labels("demo", "storage"), KEPT_LABEL: kept_on}
    assert [(lo.id, lo.kept_on) for lo in find_leftovers(session, "demo")] == [("demo-results", kept_on)]
    assert [lo.kept_on for lo in find_leftovers(session, "demo-2")] == [""]  # not kept: a bucket in use

    kept_line = (f"stack storage: gcs-bucket demo-results kept by an earlier destroy ({kept_on}) because the bucket "
                 "held data; deleting them through the API (a bucket with data only with --force-empty-buckets)")
    # 2. destroy again (nothing in any state): named as kept by that destroy, not as an interrupted apply's,
    # and kept again without --force-empty-buckets
    said, error = _destroy(monkeypatch, tmp_path, {}, force_empty_buckets=False)
    assert isinstance(error, LeftoversError), error
    assert kept_line in said and not [line for line in said if "interrupted apply" in line], said
    assert "kept gcs-bucket demo-results: it has 1 object version (1 live, 0 older) " \
           "(--force-empty-buckets deletes them)" in said

    # 3. with --force-empty-buckets: the same words, then the bucket goes; the bystander's stays
    said, error = _destroy(monkeypatch, tmp_path, {}, force_empty_buckets=True)
    assert error is None, error
    assert kept_line in said and not [line for line in said if "interrupted apply" in line], said
    assert "deleted gcs-bucket demo-results" in said
    assert [b.name for b in session.storage().list_buckets()] == ["demo-2-results"]


def test_up_takes_the_kept_label_off_once_the_bucket_is_terraforms_again(fake_google_apis, tmp_path, monkeypatch):
    """GcpTarget.adopt_kept against FakeGoogleApis' buckets.get/patch (GCS's patch semantics: labels merged,
    null deletes; gcp-storage-emulator would store the null). The google provider never takes a label it
    does not manage off (effective_labels), so bioinfra does, once the import has put the bucket back in
    the state: not at the adopting plan (a `plan`, or a declined `up`, must leave the bucket kept)."""
    from bioinfra.config import parse_config
    from bioinfra.targets.gcp import BUCKET_ADDRESS, GcpTarget

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    fake = fake_google_apis
    others = {**labels("demo", "storage"), "team": "lab"}  # "team": a label of the user's, not Terraform's
    fake.add_bucket("demo-results", labels={**others, KEPT_LABEL: "2026-12-01"})
    session = open_session(PROJECT, REGION, fake.url)
    config = parse_config({"name": "demo", "target": "gcp", "project": PROJECT, "region": REGION,
                           "buckets": {"results": "demo-results"}})
    said: list[str] = []
    path = "/storage/v1/b/demo-results"

    # the adopting plan: the import block, the label untouched
    GcpTarget().adopt_kept(config, _storage_stack(), RecordingTerraform([], tmp_path), session, said.append)
    assert (tmp_path / "adopt.tf").exists() and not fake.seen("PATCH", path)
    assert fake.buckets["demo-results"]["labels"][KEPT_LABEL] == "2026-12-01"

    # the first plan after the import: the kept label goes in one patch, every other label stays
    GcpTarget().adopt_kept(config, _storage_stack(), RecordingTerraform([BUCKET_ADDRESS], tmp_path), session,
                           said.append)
    assert fake.buckets["demo-results"]["labels"] == others
    (patch,) = fake.seen("PATCH", path)
    assert patch.body["labels"][KEPT_LABEL] is None
    assert not (tmp_path / "adopt.tf").exists()
    assert said == ["adopting bucket demo-results: kept by an earlier destroy because it held data"]

    # later plans: nothing to take off, no patch
    GcpTarget().adopt_kept(config, _storage_stack(), RecordingTerraform([BUCKET_ADDRESS], tmp_path), session,
                           said.append)
    assert len(fake.seen("PATCH", path)) == 1
