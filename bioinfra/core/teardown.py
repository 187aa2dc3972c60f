"""Before a cloud cluster is destroyed: release what Kubernetes made in the cloud on its own.

A Service of type LoadBalancer makes a cloud load balancer (ELB/NLB, a Google forwarding rule) and a
PersistentVolumeClaim a disk (EBS, PD, an EFS access point); Kubernetes' controllers delete them
only while the cluster runs. Terraform knows nothing of them, so destroying the cluster first would
orphan them (and on aws the load balancer's ENIs then block deleting the VPC). So before the addons
stack goes, every such object is deleted and waited for, cluster-wide.

The workspace claim itself is Terraform's (the addons stack deletes it after MinIO, which mounts
it). Where its volume is backed by a cloud resource only the CSI driver deletes (gcp: a Filestore
instance of at least 1 TiB, made by the class's Retain policy to outlive its claim), the target names
that driver: its volume is switched to Delete before the addons stack goes, and waited for after, so
the driver deletes the instance while the cluster still runs (release_workspace_volumes,
wait_for_workspace_volumes).

onprem never comes here: on the user's own cluster bioinfra removes only what it added.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from bioinfra.errors import BioinfraError, ClusterUnreachableError
from bioinfra.targets.addons import WORKFLOW_NAMESPACE, WORKSPACE_PVC

if TYPE_CHECKING:
    from bioinfra.adaptors.kube import Kube
    from bioinfra.config import Config

Say = Callable[[str], None]


@dataclass(frozen=True)
class Held:
    """One object whose deletion is waited for."""

    kind: str  # Workflow | Service | PersistentVolumeClaim | PersistentVolume
    namespace: str  # "" for a cluster-scoped PersistentVolume
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


def _status(exc: BioinfraError) -> Optional[int]:
    return getattr(exc, "status", None)


def _ignore_404(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except BioinfraError as exc:
        if _status(exc) == 404:
            return None
        raise


# -- what is there --------------------------------------------------------------------------------


def _workflows(kube: Kube) -> Optional[set[Held]]:
    """Workflows in bioinfra's namespace; None when Argo's resource is not served (not installed)."""
    from bioinfra.adaptors.kube import ARGO, WORKFLOWS

    found = _ignore_404(lambda: kube.call(f"listing Workflows in {WORKFLOW_NAMESPACE}",
                                          kube.custom.list_namespaced_custom_object, *ARGO, WORKFLOW_NAMESPACE,
                                          WORKFLOWS))
    if found is None:
        return None
    return {Held("Workflow", WORKFLOW_NAMESPACE, w["metadata"]["name"]) for w in found.get("items", [])
            if (w.get("metadata") or {}).get("namespace", WORKFLOW_NAMESPACE) == WORKFLOW_NAMESPACE}


def _load_balancers(kube: Kube) -> set[Held]:
    found = kube.call("listing Services", kube.core.list_service_for_all_namespaces)
    return {Held("Service", s.metadata.namespace, s.metadata.name) for s in found.items
            if s.spec is not None and s.spec.type == "LoadBalancer"}


def _claims(kube: Kube) -> dict[Held, Any]:
    """Every PVC but the workspace one (Terraform's: the addons stack destroys it with its storage
    class and CSI driver, in dependency order), with the claim object."""
    found = kube.call("listing PersistentVolumeClaims", kube.core.list_persistent_volume_claim_for_all_namespaces)
    return {Held("PersistentVolumeClaim", c.metadata.namespace, c.metadata.name): c for c in found.items
            if (c.metadata.namespace, c.metadata.name) != (WORKFLOW_NAMESPACE, WORKSPACE_PVC)}


def _volumes(kube: Kube) -> set[Held]:
    found = kube.call("listing PersistentVolumes", kube.core.list_persistent_volume)
    return {Held("PersistentVolume", "", v.metadata.name) for v in found.items}


def _volumes_to_wait_for(kube: Kube, claims: dict[Held, Any]) -> set[Held]:
    """The PVs bound to these claims that the cluster deletes with them (reclaimPolicy Delete): their
    disks go only when the PV goes. Retain volumes outlive the claim on purpose (kept data)."""
    names = {c.spec.volume_name for c in claims.values() if c.spec is not None and c.spec.volume_name}
    if not names:
        return set()
    found = kube.call("listing PersistentVolumes", kube.core.list_persistent_volume)
    return {Held("PersistentVolume", "", v.metadata.name) for v in found.items
            if v.metadata.name in names and (v.spec.persistent_volume_reclaim_policy or "Delete") == "Delete"}


# -- delete and wait ------------------------------------------------------------------------------


def _delete(kube: Kube, held: Held) -> None:
    from bioinfra.adaptors.kube import ARGO, WORKFLOWS

    if held.kind == "Workflow":
        fn, args = kube.custom.delete_namespaced_custom_object, (*ARGO, held.namespace, WORKFLOWS, held.name)
    elif held.kind == "Service":
        fn, args = kube.core.delete_namespaced_service, (held.name, held.namespace)
    else:
        fn, args = kube.core.delete_namespaced_persistent_volume_claim, (held.name, held.namespace)
    _ignore_404(lambda: kube.call(f"deleting {held}", fn, *args))  # already gone: fine


def _still_there(kube: Kube, waiting: set[Held]) -> set[Held]:
    """Which of `waiting` still exist (one list per kind; an object being finalized still exists)."""
    kinds = {h.kind for h in waiting}
    present: set[Held] = set()
    if "Workflow" in kinds:
        present |= _workflows(kube) or set()
    if "Service" in kinds:
        present |= _load_balancers(kube)
    if "PersistentVolumeClaim" in kinds:
        present |= set(_claims(kube))
    if "PersistentVolume" in kinds:
        present |= _volumes(kube)
    return waiting & present


def release_cluster_resources(kube: Kube, say: Say, *, timeout: float = 600, poll: float = 5) -> list[str]:
    """Delete, cluster-wide, what holds cloud resources outside Terraform, and wait until it is gone:
    (1) Argo Workflows in `bioinfra` (their pods may mount claims), (2) every Service of type
    LoadBalancer, (3) every PVC except bioinfra/bioinfra-workspace; then (4) wait for all of them, and
    for the PVs those claims were bound to when their reclaimPolicy is Delete.

    Returns what is still there after `timeout` seconds (named, e.g. "Service web/ingress"): the
    caller reports them and goes on; the final cloud sweep finds any real leftover."""
    workflows = _workflows(kube) or set()
    balancers = _load_balancers(kube)
    claims = _claims(kube)
    volumes = _volumes_to_wait_for(kube, claims)
    doomed = sorted(workflows, key=str) + sorted(balancers, key=str) + sorted(claims, key=str)
    if not doomed:
        say("cluster: no Workflows, LoadBalancer Services or volume claims to release")
        return []
    for held in doomed:
        say(f"cluster: deleting {held}")
        _delete(kube, held)
    waiting = set(doomed) | volumes
    deadline = time.monotonic() + timeout
    said: set[Held] = set()
    while True:
        waiting = _still_there(kube, waiting)
        if not waiting:
            say("cluster: load balancers and volumes released")
            return []
        if time.monotonic() >= deadline:
            return sorted(str(h) for h in waiting)
        if waiting != said:  # say it when the set changes, not every poll
            names = ", ".join(sorted(str(h) for h in waiting))
            say(f"cluster: waiting for the cloud to release {len(waiting)}: {names}")
            said = set(waiting)
        time.sleep(min(poll, max(deadline - time.monotonic(), 0)))


# -- the workspace volume, where only its CSI driver deletes what backs it -------------------------

# How long `destroy` waits for the driver to delete the workspace's backing (a Filestore deletion takes
# minutes), and how often it looks.
WORKSPACE_TIMEOUT = 900.0
WORKSPACE_POLL = 10.0


@dataclass(frozen=True)
class DriverVolume:
    """A CSI driver whose volumes are backed by a billed cloud resource that only the driver deletes
    (gcp: filestore.csi.storage.gke.io, a "Filestore instance")."""

    driver: str
    backing: str


def _workspace_volumes(kube: Kube, made_by: DriverVolume) -> dict[str, Any]:
    """The PVs of the workspace claim that the driver made: bound to it, or released by a claim
    deleted earlier (claimRef still names it). A static volume (spec.nfs: an instance of ours) is not."""
    found = kube.call("listing PersistentVolumes", kube.core.list_persistent_volume)
    volumes = {}
    for volume in found.items:
        spec = volume.spec
        if spec is None or spec.csi is None or spec.csi.driver != made_by.driver or spec.claim_ref is None:
            continue
        if (spec.claim_ref.namespace, spec.claim_ref.name) == (WORKFLOW_NAMESPACE, WORKSPACE_PVC):
            volumes[volume.metadata.name] = volume
    return volumes


def _backing(volume: Any, made_by: DriverVolume) -> str:
    """"PersistentVolume pvc-1 (Filestore instance projects/p/locations/z/instances/pvc-1)"."""
    handle = getattr(volume.spec.csi, "volume_handle", "") or ""
    # The Filestore driver's handle is modeInstance/<location>/<instance>/<share>.
    # Ref https://github.com/kubernetes-sigs/gcp-filestore-csi-driver (pkg/csi_driver/controller.go)
    parts = handle.split("/")
    what = f"{made_by.backing} {parts[2]} in {parts[1]}" if len(parts) == 4 else made_by.backing
    return f"PersistentVolume {volume.metadata.name} ({what})"


def release_workspace_volumes(kube: Kube, say: Say, made_by: DriverVolume) -> list[str]:
    """Before the addons stack is destroyed: set the workspace's volumes that `made_by.driver` made to
    reclaimPolicy Delete, so that when Terraform deletes the claim the driver deletes what backs them
    (a volume already released by an earlier deletion of its claim is deleted now). Returns their names.

    The class keeps Retain so that no deletion of the claim but `destroy` loses the workspace; this is
    the moment the user asked for it. Changing a PV's reclaim policy is the documented way:
    Ref https://kubernetes.io/docs/tasks/administer-cluster/change-pv-reclaim-policy/"""
    volumes = _workspace_volumes(kube, made_by)
    for name, volume in sorted(volumes.items()):
        if volume.spec.persistent_volume_reclaim_policy != "Delete":
            kube.call(f"setting PersistentVolume {name} to reclaimPolicy Delete", kube.core.patch_persistent_volume,
                      name, {"spec": {"persistentVolumeReclaimPolicy": "Delete"}})
        say(f"cluster: the workspace's {_backing(volume, made_by)} will be deleted with its claim "
            f"{WORKFLOW_NAMESPACE}/{WORKSPACE_PVC}: every file in the workspace goes (results already in the "
            "results bucket stay)")
    return sorted(volumes)


def wait_for_workspace_volumes(kube: Kube, say: Say, made_by: DriverVolume, *, timeout: float,
                               poll: float) -> list[str]:
    """After the addons stack deleted the workspace claim: wait until the driver has deleted the
    volumes release_workspace_volumes switched to Delete (the PV goes once the driver deleted what backs
    it). Returns what is still there after `timeout` seconds, named; the cloud sweep deletes it."""
    volumes = _workspace_volumes(kube, made_by)
    if not volumes:
        return []
    names = ", ".join(_backing(v, made_by) for _, v in sorted(volumes.items()))
    say(f"cluster: waiting (at most {int(timeout)} s) for {made_by.driver} to delete {names}")
    deadline = time.monotonic() + timeout
    while True:
        left = _workspace_volumes(kube, made_by)
        if not left:
            say(f"cluster: the workspace's {made_by.backing} is deleted")
            return []
        if time.monotonic() >= deadline:
            return [_backing(v, made_by) for _, v in sorted(left.items())]
        time.sleep(min(poll, max(deadline - time.monotonic(), 0)))


# -- the hook: a client for the cloud cluster about to be destroyed -------------------------------


@contextlib.contextmanager
def _private_kubeconfig(text: str) -> Iterator[Path]:
    """A kubeconfig in a private temp folder (file 0600), removed afterwards: it holds a token."""
    with tempfile.TemporaryDirectory(prefix="bioinfra-teardown-") as folder:  # mode 0700
        path = Path(folder) / "kubeconfig"
        path.touch(mode=0o600)
        path.write_text(text, encoding="utf-8")
        yield path


def token_kubeconfig(config: Config, session: Any) -> str:
    """The cluster's kubeconfig with a token from the cloud's API (target.cluster_kubeconfig, auth
    "token": the one place a target builds it); PreflightError when there is no cluster or no endpoint yet."""
    import yaml

    from bioinfra.targets import get_target

    made = get_target(config.target).cluster_kubeconfig(config, session, "token")
    return yaml.safe_dump(made.entries, sort_keys=False)


@contextlib.contextmanager
def _cluster(config: Config, session: Any, env_dir: Path, say: Say, what: str, *,
             skip: Optional[Say] = None) -> Iterator[Optional[Kube]]:
    """A client for the cluster (a fresh token from the cloud's API, else `bioinfra kubeconfig`'s file
    in `env_dir`), or None when there is no session, no cluster or it does not answer (an interrupted
    `up`): not an error, said through `skip` (default `say`) as "skipping <what>: why". An API refusal
    inside is said, not raised: destroy goes on, and the final sweep reports any cloud resource left."""
    from bioinfra.adaptors.kube import connect

    skip = skip or say
    if session is None:
        skip(f"cluster: no cloud session; skipping {what}")
        yield None
        return
    text = None
    why = ""
    try:
        text = token_kubeconfig(config, session)
    except BioinfraError as exc:  # no cluster or no endpoint yet (PreflightError), no token (anonymous credentials)
        why = exc.message
    fallback = env_dir / "kubeconfig"  # = core.cluster.default_kubeconfig_path: `bioinfra kubeconfig`'s file
    if text is None and not fallback.is_file():
        skip(f"cluster: skipping {what}: {why}")
        yield None
        return
    with contextlib.ExitStack() as stack:
        kube: Optional[Kube] = None
        try:
            path = stack.enter_context(_private_kubeconfig(text)) if text is not None else fallback
            kube = connect(path)
            kube.version_within(10)  # an endpoint that does not answer: fail fast, skip
        except ClusterUnreachableError as exc:
            skip(f"cluster: skipping {what}: {exc.message}")
            kube = None
        except BioinfraError as exc:
            say(f"cluster: could not finish {what}: {exc.message}; going on (the final sweep reports any cloud "
                "resource left)")
            kube = None
        if kube is None:
            yield None
            return
        try:
            yield kube
        except ClusterUnreachableError as exc:
            say(f"cluster: skipping {what}: {exc.message}")
        except BioinfraError as exc:  # the API refused a list or delete (e.g. 500): destroy goes on regardless
            say(f"cluster: could not finish {what}: {exc.message}; going on (the final sweep reports any cloud "
                "resource left)")


def release_before_addons_destroy(config: Config, session: Any, env_dir: Path, say: Say, *,
                                  workspace: Optional[DriverVolume] = None, timeout: float = 600,
                                  poll: float = 5) -> list[str]:
    """The aws/gcp `before_destroy` hook for the addons stack: connect to the cluster and release its
    load balancers and volumes (and, with `workspace`, switch the workspace's volumes that driver made to
    Delete: release_workspace_volumes). Returns what is still there after the timeout (also said)."""
    remaining: list[str] = []
    with _cluster(config, session, env_dir, say, "the release of load balancers and volumes") as kube:
        if kube is None:
            return []
        if workspace is not None:
            try:
                release_workspace_volumes(kube, say, workspace)
            except BioinfraError as exc:  # said; the rest is still released, and the sweep deletes the instance
                say(f"cluster: could not set the workspace volume to be deleted with its claim: {exc.message}")
        remaining = release_cluster_resources(kube, say, timeout=timeout, poll=poll)
    if remaining:
        say(f"cluster: still there after {int(timeout)} s (the final sweep reports any cloud resource they "
            f"leave): {', '.join(remaining)}")
    return remaining


def wait_after_addons_destroy(config: Config, session: Any, env_dir: Path, say: Say, workspace: DriverVolume, *,
                              timeout: Optional[float] = None, poll: Optional[float] = None) -> list[str]:
    """The hook after the addons stack is destroyed (before the next stack's): wait, at most `timeout`
    (WORKSPACE_TIMEOUT) seconds, for the driver to delete the workspace's volumes
    (wait_for_workspace_volumes). Returns what is left (said)."""
    timeout = WORKSPACE_TIMEOUT if timeout is None else timeout
    poll = WORKSPACE_POLL if poll is None else poll
    remaining: list[str] = []
    # Quiet when there is no cluster to ask: the addons hook just said why.
    with _cluster(config, session, env_dir, say, f"the wait for {workspace.driver}", skip=lambda _: None) as kube:
        if kube is None:
            return []
        remaining = wait_for_workspace_volumes(kube, say, workspace, timeout=timeout, poll=poll)
    if remaining:
        say(f"cluster: still there after {int(timeout)} s (the sweep deletes the {workspace.backing} before the "
            f"network): {', '.join(remaining)}")
    return remaining
