"""Find and delete what belongs to a GCP cluster after (or instead of) `terraform destroy`.

What is ours, per kind (GCP has no one tagging API, so each kind is asked on its own):
  - by label `bioinfra-cluster=<name>` (the provider's default_labels; GKE copies the cluster's
    labels to its VMs and disks; the workspace's storage class passes it to the Filestore CSI
    driver): GKE clusters, Filestore instances, disks, forwarding rules, Artifact Registry
    repositories, GCS buckets;
  - Filestore instances the GKE Filestore CSI driver made in our VPC, by the labels the driver
    itself sets (CSI_CREATED_BY and the kubernetes_io_created-for_* keys): an instance made before
    the class passed our label, or by a class of the user's, still bills and its VPC peering still
    blocks the network's deletion;
  - by place: networks, subnets, routers and firewalls take no labels, so our VPC is the network
    named <name> whose description says "bioinfra cluster <name>", and every subnet, router and
    firewall attached to that VPC is ours (GKE's own gke-<name>-... rules included);
  - by id: the service accounts bioinfra names (<name>-nodes, <name>-workflow), if their
    description says bioinfra.

Deleted in dependency order (ORDER): the cluster first (its node VMs, instance groups and GKE
firewall rules go with it), the VPC last. Every call goes through the Google client libraries
(IAM through google-auth's AuthorizedSession: google-cloud-iam has no REST transport), so a local
stand-in at `api_endpoint` sees exactly what Google would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

from bioinfra.adaptors import gcs

LABEL = "bioinfra-cluster"
# Set by `destroy` on a results bucket it keeps because it holds data, valued the UTC date
# (GcpTarget.before_destroy); read back into Leftover.kept_on so the next destroy names the bucket as kept,
# not as left by an interrupted apply. GCS label keys and values take lowercase letters, digits, "-" and
# "_" (keys start with a letter, 63 characters at most): "bioinfra-kept" and "2026-12-06" do.
# Ref https://cloud.google.com/storage/docs/tags-and-labels#bucket-labels
# Ref https://cloud.google.com/resource-manager/docs/labels-overview#requirements
KEPT_LABEL = "bioinfra-kept"

# The labels the GKE Filestore CSI driver puts on every instance it creates: created-by is the driver's
# name with "." as "_"; the created-for_* keys name the claim and volume (GKE's external-provisioner runs
# with --extra-create-metadata). Ref https://github.com/kubernetes-sigs/gcp-filestore-csi-driver
# pkg/csi_driver/controller.go (tagKeyCreatedBy, tagKeyCreatedForClaimNamespace/ClaimName/VolumeName,
# extractLabels); docs/kubernetes/resize.md shows them on an instance.
CSI_CREATED_BY = ("storage_gke_io_created-by", "filestore_csi_storage_gke_io")
CSI_FOR_PVC_NAMESPACE = "kubernetes_io_created-for_pvc_namespace"
CSI_FOR_PVC_NAME = "kubernetes_io_created-for_pvc_name"
CSI_FOR_PV_NAME = "kubernetes_io_created-for_pv_name"

ORDER = (
    "gke-cluster",
    "filestore-instance",
    "forwarding-rule",
    "disk",
    "firewall",
    "router",
    "subnetwork",
    "network",
    "artifact-registry-repository",
    "gcs-bucket",
    "service-account",
)

# Which stack made each kind (destroy deletes a stack's leftovers before destroying the stack).
STACK_OF = {
    "gke-cluster": "cluster", "disk": "cluster", "forwarding-rule": "cluster",
    "firewall": "network", "router": "network", "subnetwork": "network", "network": "network",
    "filestore-instance": "storage", "artifact-registry-repository": "storage", "gcs-bucket": "storage",
}


@dataclass(frozen=True)
class Leftover:
    """One Google Cloud resource that belongs to the cluster."""

    kind: str  # one of ORDER
    id: str  # the resource's path, as Terraform's id: projects/P/global/networks/N, or a bucket name
    stack: str  # network / cluster / storage
    detail: str = ""
    # A gcs-bucket an earlier `destroy` kept (KEPT_LABEL): the date it did; "" for anything else.
    kept_on: str = ""


@dataclass
class SweepResult:
    deleted: list[Leftover] = field(default_factory=list)
    kept: list[tuple[Leftover, str]] = field(default_factory=list)  # e.g. a bucket with data
    failed: list[tuple[Leftover, str]] = field(default_factory=list)


def _is(exc: BaseException, *names: str) -> bool:
    return type(exc).__name__ in names  # google.api_core.exceptions, imported lazily


def _name(url_or_path: str) -> str:
    return url_or_path.rstrip("/").rsplit("/", 1)[-1]


def _labelled(labels: Any, cluster: str) -> bool:
    return dict(labels or {}).get(LABEL) == cluster


def _label_filter(cluster: str) -> str:
    return f'labels.{LABEL} = "{cluster}"'


# ---------------------------------------------------------------------------------------------
# finding


def find_leftovers(session: Any, cluster: str, *, extra_service_accounts: Iterable[str] = ()) -> list[Leftover]:
    """Everything in the project that belongs to the cluster, in deletion order."""
    project, region = session.project, session.region
    found: list[Leftover] = []

    container = session.container()
    for c in container.list_clusters(parent=f"projects/{project}/locations/-").clusters:
        if _labelled(c.resource_labels, cluster):
            found.append(Leftover("gke-cluster", f"projects/{project}/locations/{c.location}/clusters/{c.name}",
                                  "cluster", f"{len(c.node_pools)} node pool(s), {c.location}"))

    network = _our_network(session, cluster)
    for inst in session.filestore().list_instances(parent=f"projects/{project}/locations/-"):
        labels = dict(inst.labels or {})
        by_driver = labels.get(CSI_CREATED_BY[0]) == CSI_CREATED_BY[1]
        in_our_vpc = network is not None and any(_same_network(n.network, network.name, project)
                                                 for n in inst.networks)
        if _labelled(labels, cluster) or (by_driver and in_our_vpc):
            found.append(_filestore_leftover(inst, labels, by_driver))

    for kind, client_kind, key in (("forwarding-rule", "ForwardingRules", "forwarding_rules"),
                                   ("disk", "Disks", "disks")):
        pairs = session.compute(client_kind).aggregated_list(request={"project": project,
                                                                      "filter": _label_filter(cluster)})
        for scope, scoped in pairs:
            for item in getattr(scoped, key, []):
                # A disk still attached (a node's boot disk, labelled through the cluster's labels)
                # goes with its VM; only detached ones (PVCs whose pods are gone) are leftovers.
                if kind == "disk" and list(item.users):
                    continue
                if _labelled(item.labels, cluster):  # the filter is honoured by Google; checked again here
                    found.append(Leftover(kind, f"projects/{project}/{scope}/{_plural(kind)}/{item.name}",
                                          dict(item.labels).get("bioinfra-stack", STACK_OF[kind])))

    if network is not None:
        link = network.self_link
        for fw in session.compute("Firewalls").list(project=project):
            if fw.network == link:
                found.append(Leftover("firewall", f"projects/{project}/global/firewalls/{fw.name}", "network"))
        for router in session.compute("Routers").list(project=project, region=region):
            if router.network == link:
                found.append(Leftover("router", f"projects/{project}/regions/{region}/routers/{router.name}",
                                      "network", f"{len(router.nats)} NAT"))
        for subnet in session.compute("Subnetworks").list(project=project, region=region):
            if subnet.network == link:
                found.append(Leftover("subnetwork", f"projects/{project}/regions/{region}/subnetworks/{subnet.name}",
                                      "network", subnet.ip_cidr_range))
        found.append(Leftover("network", f"projects/{project}/global/networks/{network.name}", "network"))

    for repo in session.artifact_registry().list_repositories(parent=f"projects/{project}/locations/{region}"):
        if _labelled(repo.labels, cluster):
            found.append(Leftover("artifact-registry-repository", repo.name, "storage"))

    for bucket in session.storage().list_buckets(project=project):
        if _labelled(bucket.labels, cluster):
            found.append(Leftover("gcs-bucket", bucket.name, "storage",
                                  kept_on=dict(bucket.labels or {}).get(KEPT_LABEL) or ""))

    wanted = set(extra_service_accounts)
    for account in _service_accounts(session):
        account_id = account.get("email", "").split("@")[0]
        if account_id in wanted and "bioinfra" in account.get("description", "") + account.get("displayName", ""):
            stack = "cluster" if account_id.endswith("-nodes") else "storage"
            found.append(Leftover("service-account", account["name"], stack, account.get("email", "")))

    return sorted(found, key=lambda lo: ORDER.index(lo.kind))


def _same_network(value: str, name: str, project: str) -> bool:
    """An instance's network: the VPC's name (DIRECT_PEERING) or its path (projects/P/global/networks/N)."""
    return value == name or value.endswith(f"projects/{project}/global/networks/{name}")


def _filestore_leftover(inst: Any, labels: dict[str, str], by_driver: bool) -> Leftover:
    """Ours (storage stack: gcp.filestore) or the CSI driver's. The driver's goes with the cluster stack:
    the cluster's driver made it for the workspace claim, and the teardown gives the driver until the
    storage stack is destroyed to delete it itself."""
    state = getattr(inst.state, "name", str(inst.state or ""))
    if by_driver:
        claim = f"{labels.get(CSI_FOR_PVC_NAMESPACE, '?')}/{labels.get(CSI_FOR_PVC_NAME, '?')}"
        detail = f"made by the Filestore CSI driver for claim {claim}, volume {labels.get(CSI_FOR_PV_NAME, '?')}"
        stack = labels.get("bioinfra-stack", "cluster")
    else:
        detail, stack = "", labels.get("bioinfra-stack", STACK_OF["filestore-instance"])
    if state == "DELETING":
        detail = f"{detail}; being deleted" if detail else "being deleted"
    return Leftover("filestore-instance", inst.name, stack, detail)


def _plural(kind: str) -> str:
    return {"forwarding-rule": "forwardingRules", "disk": "disks"}[kind]


def _our_network(session: Any, cluster: str) -> Any:
    """The VPC named <cluster> that bioinfra made (its description says so), or None."""
    try:
        network = session.compute("Networks").get(project=session.project, network=cluster)
    except Exception as exc:
        if _is(exc, "NotFound"):
            return None
        raise
    return network if f"bioinfra cluster {cluster}" in (network.description or "") else None


def _service_accounts(session: Any) -> list[dict[str, Any]]:
    http, base = session.iam_http()
    accounts: list[dict[str, Any]] = []
    token = ""
    while True:
        params = {"pageSize": 100, **({"pageToken": token} if token else {})}
        response = http.get(f"{base}/v1/projects/{session.project}/serviceAccounts", params=params, timeout=60)
        response.raise_for_status()
        body = response.json()
        accounts += body.get("accounts", [])
        token = body.get("nextPageToken", "")
        if not token:
            return accounts


# ---------------------------------------------------------------------------------------------
# deleting


class _Keep(Exception):
    """A delete that refuses on purpose (a bucket with data); the message is the reason."""


def delete_leftovers(session: Any, leftovers: Iterable[Leftover], *, force_empty_buckets: bool,
                     say: Callable[[str], None], stack: Optional[str] = None,
                     timeout: float = 1800.0) -> SweepResult:
    """Delete in ORDER, one line each through `say`; a failure is recorded and the sweep goes on
    (a later run retries). With `stack`, only that stack's leftovers."""
    result = SweepResult()
    todo = sorted((lo for lo in leftovers if stack is None or lo.stack == stack), key=lambda lo: ORDER.index(lo.kind))
    for leftover in todo:
        try:
            _DELETE[leftover.kind](session, leftover, force_empty_buckets, timeout)
        except _Keep as why:
            result.kept.append((leftover, str(why)))
            say(f"kept {leftover.kind} {leftover.id}: {why}")
        except Exception as exc:  # noqa: BLE001 - reported, the sweep goes on
            if _is(exc, "NotFound"):
                result.deleted.append(leftover)
                continue
            message = getattr(exc, "message", None) or str(exc)
            result.failed.append((leftover, message))
            say(f"could not delete {leftover.kind} {leftover.id}: {message}")
        else:
            result.deleted.append(leftover)
            say(f"deleted {leftover.kind} {leftover.id}")
    return result


def _wait_container(session: Any, location_path: str, operation: Any, timeout: float) -> None:
    """Poll a GKE operation until DONE (cluster deletion takes minutes on Google)."""
    from google.cloud import container_v1

    done = container_v1.Operation.Status.DONE
    deadline = time.monotonic() + timeout
    while operation.status != done:
        if time.monotonic() > deadline:
            raise TimeoutError(f"GKE operation {operation.name} still running after {timeout:.0f} s")
        time.sleep(5)
        operation = session.container().get_operation(name=f"{location_path}/operations/{operation.name}")
    if operation.error and operation.error.message:
        raise RuntimeError(operation.error.message)


def _delete_cluster(session: Any, lo: Leftover, force: bool, timeout: float) -> None:
    operation = session.container().delete_cluster(name=lo.id)
    _wait_container(session, lo.id.rsplit("/clusters/", 1)[0], operation, timeout)


def _delete_filestore(session: Any, lo: Leftover, force: bool, timeout: float) -> None:
    """Delete and wait. One the CSI driver is deleting already (DELETING: a second delete is refused) is
    waited for until it is gone: the network can be deleted only after its VPC peering is."""
    client = session.filestore()
    instance = client.get_instance(name=lo.id)  # NotFound: gone already, counted as deleted
    if getattr(instance.state, "name", "") != "DELETING":
        client.delete_instance(name=lo.id).result(timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(min(FILESTORE_POLL, max(deadline - time.monotonic(), 0)))
        try:
            client.get_instance(name=lo.id)
        except Exception as exc:
            if _is(exc, "NotFound"):
                return
            raise
        if time.monotonic() >= deadline:
            raise TimeoutError(f"Filestore instance {lo.id} is still being deleted after {timeout:.0f} s")


FILESTORE_POLL = 10.0  # seconds between two looks at an instance being deleted


def _delete_compute(session: Any, lo: Leftover, force: bool, timeout: float) -> None:
    parts = lo.id.split("/")  # projects/P/(global|regions/R|zones/Z)/<plural>/NAME
    project, name = parts[1], parts[-1]
    kind = {"forwarding-rule": "ForwardingRules", "disk": "Disks", "firewall": "Firewalls", "router": "Routers",
            "subnetwork": "Subnetworks", "network": "Networks"}[lo.kind]
    field_name = {"ForwardingRules": "forwarding_rule", "Disks": "disk", "Firewalls": "firewall",
                  "Routers": "router", "Subnetworks": "subnetwork", "Networks": "network"}[kind]
    request: dict[str, Any] = {"project": project, field_name: name}
    if parts[2] == "regions":
        request["region"] = parts[3]
    elif parts[2] == "zones":
        request["zone"] = parts[3]
    elif kind == "ForwardingRules":
        kind = "GlobalForwardingRules"
    session.compute(kind).delete(request=request).result(timeout=timeout)


def _delete_repository(session: Any, lo: Leftover, force: bool, timeout: float) -> None:
    session.artifact_registry().delete_repository(name=lo.id).result(timeout=timeout)


def _delete_bucket(session: Any, lo: Leftover, force: bool, timeout: float) -> None:
    contents = gcs.bucket_contents(session, lo.id)
    if contents:
        if not force:
            raise _Keep(f"it has {contents} (--force-empty-buckets deletes them)")
        gcs.empty_bucket(session, lo.id)
    gcs.delete_bucket(session, lo.id)


def _delete_service_account(session: Any, lo: Leftover, force: bool, timeout: float) -> None:
    http, base = session.iam_http()
    response = http.delete(f"{base}/v1/{lo.id}", timeout=60)
    if response.status_code != 404:
        response.raise_for_status()


_DELETE: dict[str, Callable[[Any, Leftover, bool, float], None]] = {
    "gke-cluster": _delete_cluster,
    "filestore-instance": _delete_filestore,
    "forwarding-rule": _delete_compute,
    "disk": _delete_compute,
    "firewall": _delete_compute,
    "router": _delete_compute,
    "subnetwork": _delete_compute,
    "network": _delete_compute,
    "artifact-registry-repository": _delete_repository,
    "gcs-bucket": _delete_bucket,
    "service-account": _delete_service_account,
}
