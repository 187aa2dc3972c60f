"""Pieces more than one target shares, and the shapes of their answers (kept apart from
targets/__init__ so target modules can import them, and free of core/ so targets never import core at
module import time).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from bioinfra.errors import UnsupportedError

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    from bioinfra.config import Config
    from bioinfra.engine.inputs import RemoteInput


# What a target's `adopt_kept` writes into a stack folder before `up` plans it: import blocks (and
# their variable) taking back what an earlier `destroy` kept, and those variables' values as JSON data.
# A destroy plan imports nothing: Provisioner removes both before it.
ADOPT_TF_FILE = "adopt.tf"
ADOPT_VALUES_FILE = "adopt.auto.tfvars.json"
ADOPT_FILES = (ADOPT_TF_FILE, ADOPT_VALUES_FILE)


@dataclass(frozen=True)
class Stack:
    """A Terraform stack as data: its name, its root template, and the stacks whose outputs it reads."""

    name: str
    template: str  # under terraform/, rendered to <workdir>/<name>/main.tf
    upstream: tuple[str, ...] = ()


# -- what a target answers ------------------------------------------------------------------------


@dataclass
class ClusterKubeconfig:
    """A one-cluster kubeconfig for the cluster a cloud target made (target.cluster_kubeconfig)."""

    entries: dict[str, Any]  # apiVersion/kind/clusters/contexts/users/current-context
    context: str
    auth: str  # "plugin" | "token"
    expires: Optional[datetime] = None  # when a stored token stops working (UTC)
    plugin: str = ""  # the command kubectl runs with auth "plugin"
    lifetime: str = ""  # how long a stored token works, in words


@dataclass
class PoolStatus:
    name: str
    status: str
    machine_type: str  # aws: the node group's instance types joined by "," (first is the primary)
    spot: bool
    min_nodes: Optional[int]
    max_nodes: Optional[int]
    nodes: Optional[int]  # current size; None when the cloud does not say
    accelerators: list[str] = field(default_factory=list)  # per node: "1× nvidia-tesla-t4" (gcp), "NVIDIA GPU(s)" (aws)
    taints: list[str] = field(default_factory=list)  # key=value:Effect


@dataclass
class ClusterStatus:
    target: str
    name: str
    location: str  # the region (gcp and aws)
    account: str  # GCP project / AWS account
    status: str  # as the cloud says it: RUNNING, PROVISIONING, ... (gcp); ACTIVE, CREATING, ... (aws)
    endpoint: str  # host of the Kubernetes API, without https://
    version: str
    pools: list[PoolStatus]
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- `bioinfra doctor`'s verdicts (core.doctor walks them; targets write their own checks) ---------

OK, FAILED, SKIPPED, WARNING = "ok", "failed", "skipped", "warning"
MARKS = {OK: "✓", FAILED: "✗", SKIPPED: "!", WARNING: "!"}


@dataclass
class Check:
    name: str
    status: str  # ok | failed | skipped | warning (warning: not a failure, but worth knowing; or "not checked")
    detail: str = ""
    fix: str = ""

    @property
    def ok(self) -> bool:
        """Not a failure (a warning or a skip does not make the target "not ready" by itself)."""
        return self.status != FAILED

    @property
    def mark(self) -> str:
        return MARKS[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def passed(detail: str) -> Check:
    return Check("", OK, detail)


def failed(detail: str, fix: str = "") -> Check:
    return Check("", FAILED, detail, fix)


def warning(detail: str, fix: str = "") -> Check:
    return Check("", WARNING, detail, fix)


def split_ref(ref: str) -> tuple[str, str, str]:
    """host/path:tag or host/path@digest -> (host, path, tag-or-digest)."""
    if "@" in ref:
        repo, reference = ref.split("@", 1)
    else:
        repo, _, reference = ref.rpartition(":")
    host, _, path = repo.partition("/")
    return host, path, reference


# -- shared implementations -----------------------------------------------------------------------


class RegistryPathTarget:
    """Targets whose images live under one registry path: a reference is theirs if it starts with it."""

    def registry(self, config: Config) -> str:
        raise NotImplementedError

    def serves(self, config: Config, ref: str) -> bool:
        return ref.startswith(self.registry(config).rstrip("/") + "/")


class CloudCluster:
    """What every cluster bioinfra makes in a cloud answers alike (aws_cluster, gcp_cluster)."""

    name: str
    is_cloud = True
    cluster_elsewhere = ""
    pool_preferred = False  # its node pools carry the pool label (Terraform): Workflows require it

    def place(self, config: Config) -> str:
        return str(config.region)

    def cluster_source(self, config: Config) -> str:
        return f"the {self.name} cluster of `bioinfra kubeconfig {self.name}`"


class NoCloudCluster:
    """The cloud-only answers of a target whose cluster bioinfra did not make (local, onprem): each says
    so (UnsupportedError, exit 8) with `cluster_elsewhere` as what to use instead."""

    name: str
    cluster_elsewhere: str
    is_cloud = False
    remote_schemes: tuple[str, ...] = ()
    workload_identity_annotation: Optional[str] = None
    pool_preferred = False

    def place(self, config: Config) -> str:
        return "this machine"

    def cluster_source(self, config: Config) -> str:
        return "this machine (no cluster)"

    def _unsupported(self, command: str) -> UnsupportedError:
        return UnsupportedError(f"`bioinfra {command} {self.name}` is not available (yet); it works for the cloud "
                                "targets", hint=self.cluster_elsewhere)

    def cluster_kubeconfig(self, config: Config, session: Any, auth: str) -> ClusterKubeconfig:
        raise self._unsupported("kubeconfig")

    def status(self, config: Config) -> ClusterStatus:
        raise self._unsupported("status")

    def registry_login(self, config: Config, names: list[str], *, endpoint_url: Optional[str] = None) -> tuple[str, Any]:
        from bioinfra.errors import InputError

        raise InputError(f"target {self.name} has no cloud registry")

    def check_remote(self, config: Config, ref: RemoteInput, flag: str) -> None:
        from bioinfra.errors import InputError

        raise InputError(f"{flag} {ref.url}: target {self.name} does not read {ref.scheme}:// objects in place")

    def results_location(self, config: Config, run_id: str, *, offline: bool = False) -> tuple[str, str]:
        raise self._unsupported("run --target")

    def results_bucket(self, config: Config, session: Any = None) -> str:
        raise UnsupportedError(f"target {self.name} has no results bucket",
                               hint="a run's results stay in the cluster's workspace (`bioinfra runs fetch`)")

    def kubernetes_support(self, config: Config, today: Optional[date] = None) -> Any:
        return None

    def location_problems(self, project: Any, region: Any) -> list[str]:
        return []  # no project or region: the cluster is this machine, or the user's own

    def config_problems(self, config: Config) -> list[str]:
        return []

    def bucket_name_problem(self, name: str) -> Optional[str]:
        return None  # no bucket of its own

    def kubeconfig_path(self, config: Config, default: Path) -> tuple[Path, Optional[str]]:
        raise UnsupportedError(f"target {self.name} has no cluster", hint="use --target aws, gcp or onprem")
