"""Before a cloud cluster is destroyed, its LoadBalancer Services and volume claims are deleted and
waited for, so no cloud load balancer or disk is orphaned (issue #6).

STAND-IN, named: the cluster is kmock's Kubernetes emulator (tests/fakes/kube_api.py). The cloud's
controllers are played by the test, as in a real cluster: every LoadBalancer Service carries the
service controller's finalizer `service.kubernetes.io/load-balancer-cleanup` and every claim the
`kubernetes.io/pvc-protection` finalizer, so a DELETE only marks them (kmock sets deletionTimestamp
and keeps the object, as kube-apiserver does); the "controller" then removes the finalizer (the load
balancer or disk is gone) and deletes the released PV, a second later or never (the timeout path).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bioinfra.adaptors.kube import connect
from bioinfra.config import parse_config
from bioinfra.core import teardown
from bioinfra.core.stacks import Stack
from bioinfra.core.teardown import release_before_addons_destroy, release_cluster_resources
from bioinfra.errors import PreflightError
from tests.fakes.kube_api import unreachable_kubeconfig

pytestmark = pytest.mark.integration

LB_FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
PVC_FINALIZER = "kubernetes.io/pvc-protection"
LOAD_BALANCERS = [("web", "ingress"), ("shop", "front")]
CLAIMS = [("lab", "scratch", "pv-scratch", "Delete"), ("lab", "archive", "pv-archive", "Retain")]


def _service(api, namespace: str, name: str, kind: str, finalizers: bool) -> None:
    meta = {"name": name, "namespace": namespace}
    if finalizers and kind == "LoadBalancer":
        meta["finalizers"] = [LB_FINALIZER]
    api.create(f"/api/v1/namespaces/{namespace}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": meta,
        "spec": {"type": kind, "ports": [{"port": 80}]}})


def _claim(api, namespace: str, name: str, volume: str, policy: str, finalizers: bool) -> None:
    api.create("/api/v1/persistentvolumes", {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": policy, "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-1"},
                 "claimRef": {"namespace": namespace, "name": name}}})
    meta = {"name": name, "namespace": namespace}
    if finalizers:
        meta["finalizers"] = [PVC_FINALIZER]
    api.create(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
        "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": volume,
                 "resources": {"requests": {"storage": "10Gi"}}},
        "status": {"phase": "Bound"}})


def populate(api, *, finalizers: bool = True) -> None:
    """Two LoadBalancer Services, a ClusterIP one, two claims (Delete and Retain), the workspace claim
    (Terraform's own) and a Workflow whose pod may still mount a claim."""
    for namespace, name in LOAD_BALANCERS:
        _service(api, namespace, name, "LoadBalancer", finalizers)
    _service(api, "bioinfra", "bioinfra-minio", "ClusterIP", finalizers)
    for namespace, name, volume, policy in CLAIMS:
        _claim(api, namespace, name, volume, policy, finalizers)
    _claim(api, "bioinfra", "bioinfra-workspace", "pv-workspace", "Retain", finalizers)
    api.create("/apis/argoproj.io/v1alpha1/namespaces/bioinfra/workflows", {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": "fastqc-to-bwa-1", "namespace": "bioinfra"}, "spec": {"entrypoint": "main"}})


def play_cloud_controllers(api, delay: float) -> threading.Timer:
    """After `delay`: the load balancers and disks are gone, so their finalizers are removed and the
    Delete-policy PV is deleted (the Retain one stays, as in a real cluster)."""

    def release() -> None:
        for namespace, name in LOAD_BALANCERS:
            assert api.request("PATCH", f"/api/v1/namespaces/{namespace}/services/{name}",
                               {"metadata": {"finalizers": []}}) == 200
        for namespace, name, _, _ in CLAIMS:
            assert api.request("PATCH", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}",
                               {"metadata": {"finalizers": []}}) == 200
        assert api.request("DELETE", "/api/v1/persistentvolumes/pv-scratch") == 200

    timer = threading.Timer(delay, release)
    timer.daemon = True
    timer.start()
    return timer


def deleted_paths(api) -> list[str]:
    return sorted(str(r.url.path) for r in api.requests("DELETE") if "persistentvolumes/" not in str(r.url.path))


EXPECTED_DELETES = sorted([
    "/api/v1/namespaces/web/services/ingress",
    "/api/v1/namespaces/shop/services/front",
    "/api/v1/namespaces/lab/persistentvolumeclaims/scratch",
    "/api/v1/namespaces/lab/persistentvolumeclaims/archive",
    "/apis/argoproj.io/v1alpha1/namespaces/bioinfra/workflows/fastqc-to-bwa-1",
])


def test_waits_until_the_cloud_released_every_load_balancer_and_disk(kube_api, tmp_path):
    populate(kube_api)
    kube = connect(kube_api.kubeconfig(tmp_path / "kc"))
    said: list[str] = []
    timer = play_cloud_controllers(kube_api, delay=1.0)

    started = time.monotonic()
    remaining = release_cluster_resources(kube, said.append, timeout=20, poll=0.2)
    elapsed = time.monotonic() - started
    timer.join()

    assert remaining == []
    assert elapsed >= 1.0, "returned before the cloud released anything"
    assert elapsed < 5
    # The wire: one DELETE per LoadBalancer Service, claim and Workflow; the ClusterIP Service, the
    # workspace claim and the PVs themselves (the cluster deletes those) untouched by bioinfra.
    assert deleted_paths(kube_api) == EXPECTED_DELETES
    assert not kube_api.requests("DELETE", "/services/bioinfra-minio")
    assert not kube_api.requests("DELETE", "/persistentvolumeclaims/bioinfra-workspace")
    assert [str(r.url.path) for r in kube_api.requests("DELETE", "/persistentvolumes/")] == [
        "/api/v1/persistentvolumes/pv-scratch"]  # the test's own "controller"
    # Cluster-wide lists, then polls of each kind until empty.
    assert kube_api.requests("GET", "/api/v1/services")
    assert kube_api.requests("GET", "/api/v1/persistentvolumeclaims")
    waiting = [s for s in said if s.startswith("cluster: waiting")]
    assert waiting and "PersistentVolume pv-scratch" in waiting[0] and "Service web/ingress" in waiting[0]
    assert "pv-archive" not in " ".join(said)  # Retain: its disk is meant to outlive the claim
    assert said[-1] == "cluster: load balancers and volumes released"


def test_timeout_returns_what_is_still_there(kube_api, tmp_path):
    populate(kube_api)  # finalizers, and no controller to remove them
    kube = connect(kube_api.kubeconfig(tmp_path / "kc"))

    started = time.monotonic()
    remaining = release_cluster_resources(kube, lambda _: None, timeout=0.6, poll=0.2)

    assert 0.6 <= time.monotonic() - started < 3
    assert remaining == [
        "PersistentVolume pv-scratch",
        "PersistentVolumeClaim lab/archive",
        "PersistentVolumeClaim lab/scratch",
        "Service shop/front",
        "Service web/ingress",
    ]
    assert deleted_paths(kube_api) == EXPECTED_DELETES  # each deleted once, not again per poll


def test_nothing_to_release_makes_no_delete(kube_api, tmp_path):
    _service(kube_api, "bioinfra", "bioinfra-minio", "ClusterIP", False)
    _claim(kube_api, "bioinfra", "bioinfra-workspace", "pv-workspace", "Delete", True)
    said: list[str] = []

    assert release_cluster_resources(connect(kube_api.kubeconfig(tmp_path / "kc")), said.append) == []
    assert not kube_api.requests("DELETE")
    assert said == ["cluster: no Workflows, LoadBalancer Services or volume claims to release"]


def test_without_argo_the_rest_is_still_released(kube_api, tmp_path):
    kube_api.call(lambda: kube_api.k.resources.__delitem__("argoproj.io/v1alpha1/workflows"))
    _service(kube_api, "web", "ingress", "LoadBalancer", False)  # no finalizer: kmock deletes at once

    remaining = release_cluster_resources(connect(kube_api.kubeconfig(tmp_path / "kc")), lambda _: None,
                                          timeout=5, poll=0.1)

    assert remaining == []
    assert deleted_paths(kube_api) == ["/api/v1/namespaces/web/services/ingress"]


# -- the hook in the aws and gcp targets ----------------------------------------------------------


def _config(target: str):
    return parse_config({"name": "demo", "target": target, "project": "my-project-123",
                         "region": "eu-west-2" if target == "aws" else "europe-west2"}, source="test")


@pytest.mark.parametrize("target", ["aws", "gcp"])
def test_destroying_the_addons_stack_releases_first_through_a_private_kubeconfig(kube_api, tmp_path, monkeypatch,
                                                                                target):
    from bioinfra.targets import get_target

    populate(kube_api, finalizers=False)  # kmock deletes at once: nothing to wait for...
    assert kube_api.request("DELETE", "/api/v1/persistentvolumes/pv-scratch") == 200  # ...once its PV is gone
    text = kube_api.kubeconfig(tmp_path / "cloud-kc").read_text()
    seen: dict[str, object] = {}

    def from_cloud(config, session):
        seen["session"] = session
        return text

    def spy_connect(path, context=None):
        seen["path"], seen["mode"] = path, path.stat().st_mode & 0o777
        return connect(path, context)

    monkeypatch.setattr(teardown, "token_kubeconfig", from_cloud)
    monkeypatch.setattr("bioinfra.adaptors.kube.connect", spy_connect)  # imported inside the hook
    said: list[str] = []
    env_dir = tmp_path / ".bioinfra" / "demo" / target
    tf = SimpleNamespace(workdir=env_dir / "addons", state_list=lambda: [])
    session = object()

    get_target(target).before_destroy(_config(target), Stack("addons", "addons/stacks/addons.tf.j2", upstream=()),
                                      tf, session, force_empty_buckets=False, say=said.append)

    assert seen["session"] is session
    assert seen["mode"] == 0o600
    assert not Path(seen["path"]).exists()  # the token's file is removed afterwards
    assert deleted_paths(kube_api) == EXPECTED_DELETES
    assert said[-1] == "cluster: load balancers and volumes released"


def test_no_cluster_is_said_and_skipped(kube_api, tmp_path, monkeypatch):
    def absent(config, session):
        raise PreflightError("no cluster 'demo' in region eu-west-2", hint="`bioinfra up aws` creates it")

    monkeypatch.setattr(teardown, "token_kubeconfig", absent)
    said: list[str] = []

    assert release_before_addons_destroy(_config("aws"), object(), tmp_path, said.append) == []
    assert said == ["cluster: skipping the release of load balancers and volumes: "
                    "no cluster 'demo' in region eu-west-2"]
    assert not kube_api.requests("DELETE")


def test_a_cluster_that_does_not_answer_is_skipped_quickly(tmp_path, monkeypatch):
    dead = unreachable_kubeconfig()
    monkeypatch.setattr(teardown, "token_kubeconfig", lambda config, session: dead)
    said: list[str] = []

    started = time.monotonic()
    assert release_before_addons_destroy(_config("gcp"), object(), tmp_path, said.append) == []
    assert time.monotonic() - started < 10
    assert said[0].startswith("cluster: skipping the release of load balancers and volumes: ")
    assert "does not answer" in said[0]


def test_falls_back_to_bioinfra_kubeconfig_file(kube_api, tmp_path, monkeypatch):
    """gcp with anonymous credentials (a stand-in endpoint) has no token: `bioinfra kubeconfig`'s file."""
    def no_token(config, session):
        raise PreflightError("the credentials in use carry no access token")

    monkeypatch.setattr(teardown, "token_kubeconfig", no_token)
    kube_api.kubeconfig(tmp_path / "kubeconfig")
    _service(kube_api, "web", "ingress", "LoadBalancer", False)

    assert release_before_addons_destroy(_config("gcp"), object(), tmp_path, lambda _: None, poll=0.1) == []
    assert deleted_paths(kube_api) == ["/api/v1/namespaces/web/services/ingress"]


# -- gcp: the workspace's Filestore instance, made and deleted only by the CSI driver (issue #18) -----

FILESTORE_CSI = "filestore.csi.storage.gke.io"
WORKSPACE_PV = "pvc-0a1b2c3d"


def _workspace_on_filestore(api) -> None:
    """The workspace claim as the addons stack leaves it without gcp.filestore: bound to a volume the
    GKE Filestore CSI driver provisioned through the Retain class (handle modeInstance/<zone>/<instance>/<share>),
    plus a static NFS volume and another driver's volume that name the same claim and must stay untouched."""
    api.create("/api/v1/persistentvolumes", {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": WORKSPACE_PV, "annotations": {"pv.kubernetes.io/provisioned-by": FILESTORE_CSI}},
        "spec": {"capacity": {"storage": "1Ti"}, "accessModes": ["ReadWriteMany"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "bioinfra-rwx",
                 "csi": {"driver": FILESTORE_CSI,
                         "volumeHandle": f"modeInstance/europe-west2-b/{WORKSPACE_PV}/vol1"},
                 "claimRef": {"namespace": "bioinfra", "name": "bioinfra-workspace"}}})
    api.create("/api/v1/namespaces/bioinfra/persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "bioinfra-workspace",
                                                                           "namespace": "bioinfra"},
        "spec": {"accessModes": ["ReadWriteMany"], "volumeName": WORKSPACE_PV, "storageClassName": "bioinfra-rwx",
                 "resources": {"requests": {"storage": "100Gi"}}},
        "status": {"phase": "Bound"}})
    for name, source in (("demo-workspace", {"nfs": {"server": "10.0.0.2", "path": "/workspace"}}),
                         ("pv-efs", {"csi": {"driver": "efs.csi.aws.com", "volumeHandle": "fs-1::fsap-1"}})):
        api.create("/api/v1/persistentvolumes", {
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Ti"}, "accessModes": ["ReadWriteMany"],
                     "persistentVolumeReclaimPolicy": "Retain", **source,
                     "claimRef": {"namespace": "bioinfra", "name": "bioinfra-workspace"}}})


def _reclaim_policy(api, tmp_path: Path, name: str) -> str | None:
    kube = connect(api.kubeconfig(tmp_path / "read-kc"))
    names = {v.metadata.name: v.spec.persistent_volume_reclaim_policy for v in kube.core.list_persistent_volume().items}
    return names.get(name)


def _play_terraform_and_the_driver(api, tmp_path: Path, delay: float) -> threading.Timer:
    """Terraform's addons destroy deletes the claim (MinIO, which mounts it, went first); the driver
    then deletes the Filestore instance and the PV, `delay` s later, but only if the PV says Delete
    (with Retain a released PV and its instance stay, as in a real cluster)."""
    assert api.request("DELETE", "/api/v1/namespaces/bioinfra/persistentvolumeclaims/bioinfra-workspace") == 200

    def driver() -> None:
        if _reclaim_policy(api, tmp_path, WORKSPACE_PV) == "Delete":
            assert api.request("DELETE", f"/api/v1/persistentvolumes/{WORKSPACE_PV}") == 200

    timer = threading.Timer(delay, driver)
    timer.daemon = True
    timer.start()
    return timer


def _gcp_hooks(monkeypatch, api, tmp_path: Path):
    """GcpTarget.before_destroy for addons then storage, with kmock as the cluster."""
    from bioinfra.targets.gcp import STACKS, GcpTarget

    text = api.kubeconfig(tmp_path / "cloud-kc").read_text()
    monkeypatch.setattr(teardown, "token_kubeconfig", lambda config, session: text)
    env_dir = tmp_path / ".bioinfra" / "demo" / "gcp"
    stacks = {s.name: s for s in STACKS}

    def hook(stack: str, said: list[str]) -> None:
        tf = SimpleNamespace(workdir=env_dir / stack, state_list=lambda: [])
        GcpTarget().before_destroy(_config("gcp"), stacks[stack], tf, object(), force_empty_buckets=False,
                                   say=said.append)
    return hook


def test_gcp_destroy_has_the_driver_delete_the_workspace_filestore_instance_and_waits(kube_api, tmp_path,
                                                                                      monkeypatch):
    _workspace_on_filestore(kube_api)
    monkeypatch.setattr(teardown, "WORKSPACE_POLL", 0.2)
    hook = _gcp_hooks(monkeypatch, kube_api, tmp_path)

    said: list[str] = []
    hook("addons", said)
    # Retain (the class) -> Delete, on the driver's volume only; the claim is left to Terraform
    assert _reclaim_policy(kube_api, tmp_path, WORKSPACE_PV) == "Delete"
    assert _reclaim_policy(kube_api, tmp_path, "demo-workspace") == "Retain"  # static NFS: not the driver's
    assert _reclaim_policy(kube_api, tmp_path, "pv-efs") == "Retain"  # another driver's
    assert not kube_api.requests("DELETE", "/persistentvolumeclaims/bioinfra-workspace")
    assert [str(r.url.path) for r in kube_api.requests("PATCH")] == [f"/api/v1/persistentvolumes/{WORKSPACE_PV}"]
    assert (f"cluster: the workspace's PersistentVolume {WORKSPACE_PV} (Filestore instance {WORKSPACE_PV} in "
            "europe-west2-b) will be deleted with its claim bioinfra/bioinfra-workspace: every file in the workspace "
            "goes (results already in the results bucket stay)") in said

    timer = _play_terraform_and_the_driver(kube_api, tmp_path, delay=1.0)
    said = []
    started = time.monotonic()
    hook("storage", said)
    elapsed = time.monotonic() - started
    timer.join()

    assert 1.0 <= elapsed < 6, "returned before the driver deleted the instance, or waited on"
    assert said == [
        f"cluster: waiting (at most 900 s) for {FILESTORE_CSI} to delete PersistentVolume {WORKSPACE_PV} "
        f"(Filestore instance {WORKSPACE_PV} in europe-west2-b)",
        "cluster: the workspace's Filestore instance is deleted",
    ]
    assert _reclaim_policy(kube_api, tmp_path, WORKSPACE_PV) is None


def test_gcp_wait_for_the_filestore_driver_is_bounded_and_names_what_is_left(kube_api, tmp_path, monkeypatch):
    _workspace_on_filestore(kube_api)
    monkeypatch.setattr(teardown, "WORKSPACE_POLL", 0.1)
    monkeypatch.setattr(teardown, "WORKSPACE_TIMEOUT", 0.5)
    hook = _gcp_hooks(monkeypatch, kube_api, tmp_path)
    hook("addons", [])
    assert kube_api.request("DELETE", "/api/v1/namespaces/bioinfra/persistentvolumeclaims/bioinfra-workspace") == 200

    said: list[str] = []
    started = time.monotonic()
    hook("storage", said)  # no driver: the PV stays

    assert 0.5 <= time.monotonic() - started < 3
    assert said[-1] == (f"cluster: still there after 0 s (the sweep deletes the Filestore instance before the "
                        f"network): PersistentVolume {WORKSPACE_PV} (Filestore instance {WORKSPACE_PV} in "
                        "europe-west2-b)")


def test_gcp_with_its_own_filestore_instance_leaves_the_static_volume_to_terraform(kube_api, tmp_path, monkeypatch):
    """gcp.filestore: the instance is the storage stack's (Terraform deletes it); nothing is switched or waited for."""
    from bioinfra.targets.gcp import STACKS, GcpTarget

    _workspace_on_filestore(kube_api)
    assert kube_api.request("DELETE", f"/api/v1/persistentvolumes/{WORKSPACE_PV}") == 200
    text = kube_api.kubeconfig(tmp_path / "cloud-kc").read_text()
    monkeypatch.setattr(teardown, "token_kubeconfig", lambda config, session: text)
    config = parse_config({"name": "demo", "target": "gcp", "project": "my-project-123", "region": "europe-west2",
                           "gcp": {"filestore": True, "zones": ["europe-west2-a"]}}, source="test")
    stacks = {s.name: s for s in STACKS}
    said: list[str] = []
    for stack in ("addons", "storage"):
        tf = SimpleNamespace(workdir=tmp_path / stack, state_list=lambda: [])
        GcpTarget().before_destroy(config, stacks[stack], tf, object(), force_empty_buckets=False, say=said.append)
    assert not kube_api.requests("PATCH")
    assert not any("Filestore" in line for line in said)
