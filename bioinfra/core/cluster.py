"""The cluster `bioinfra up` made: its kubeconfig and its state, per target.

Each operation is declared once here and dispatched on config.target; a target without one says so
(UnsupportedError with what to use instead). gcp and aws have both; another cloud joins by adding
its function to the tables below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from bioinfra.errors import UnsupportedError

if TYPE_CHECKING:
    from bioinfra.adaptors.aws import AwsSession
    from bioinfra.adaptors.gcp import GcpSession
    from bioinfra.config import Config
    from bioinfra.core.ttl import TtlCheck


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


@dataclass
class KubeconfigResult:
    path: Path
    context: str
    auth: str  # "plugin" | "token"
    expires: Optional[datetime] = None  # when a stored token stops working (UTC)
    plugin: str = ""  # the command kubectl runs with auth "plugin"
    lifetime: str = ""  # how long a stored token works, in words


def gcp_session(config: Config) -> GcpSession:
    from bioinfra.adaptors.gcp import endpoint_url, open_session

    return open_session(config.project, config.region, endpoint_url(config))


def aws_session(config: Config) -> AwsSession:
    from bioinfra.adaptors.aws import open_session
    from bioinfra.targets.aws import endpoint_url

    return open_session(config.region, config.aws.profile, endpoint_url(config))


# -- kubeconfig -----------------------------------------------------------------------------------


def default_kubeconfig_path(config: Config, config_path: Optional[Path]) -> Path:
    """.bioinfra/<name>/<target>/kubeconfig beside bioinfra.yaml (next to the Terraform state)."""
    from bioinfra.core.provision import environment_root

    return environment_root(config, config_path) / "kubeconfig"


def _gcp_kubeconfig(config: Config, path: Path, auth: str) -> KubeconfigResult:
    from bioinfra.adaptors.gcp import cluster_info, context_name, resolve_auth, write_kubeconfig

    session = gcp_session(config)
    info = cluster_info(session, config.name, sizes=False)
    mode = resolve_auth(auth)
    written = write_kubeconfig(path, info, config.project, auth=mode, credentials=session.credentials)
    expires = getattr(session.credentials, "expiry", None) if mode == "token" else None
    return KubeconfigResult(written, context_name(config.project, info.location, info.name), mode, expires,
                            plugin="gke-gcloud-auth-plugin", lifetime="about 1 hour")


def _aws_kubeconfig(config: Config, path: Path, auth: str) -> KubeconfigResult:
    from bioinfra.adaptors.aws import account_id, cluster_info, context_name, resolve_auth, write_kubeconfig

    session = aws_session(config)
    info = cluster_info(session, config.name, account=account_id(session), node_groups=False)
    mode = resolve_auth(auth)
    written, expires = write_kubeconfig(path, info, session, auth=mode, profile=config.aws.profile)
    return KubeconfigResult(written, context_name(info), mode, expires, plugin="aws eks get-token",
                            lifetime="about 15 minutes")


KUBECONFIG: dict[str, Callable[[Config, Path, str], KubeconfigResult]] = {
    "aws": _aws_kubeconfig, "gcp": _gcp_kubeconfig}


def kubeconfig(config: Config, config_path: Optional[Path], path: Optional[Path], auth: str) -> KubeconfigResult:
    """Write a kubeconfig for the target's cluster to `path` (default: beside the Terraform state),
    merging into the file if it already is a kubeconfig. auth: auto | plugin | token."""
    write = _supported(KUBECONFIG, config, "kubeconfig")
    return write(config, path or default_kubeconfig_path(config, config_path), auth)


# -- status ---------------------------------------------------------------------------------------


def _gcp_status(config: Config) -> ClusterStatus:
    from bioinfra.adaptors.gcp import cluster_info

    info = cluster_info(gcp_session(config), config.name)
    pools = [PoolStatus(p.name, p.status, p.machine_type, p.spot, p.min_nodes, p.max_nodes, p.node_count,
                        list(p.accelerators), list(p.taints)) for p in info.node_pools]
    return ClusterStatus("gcp", info.name, info.location, config.project or "", info.status, info.endpoint,
                         info.version, pools, info.status_message)


def _aws_status(config: Config) -> ClusterStatus:
    from bioinfra.adaptors.aws import account_id, cluster_info

    session = aws_session(config)
    account = account_id(session)
    info = cluster_info(session, config.name, account=account)
    # EKS names no GPU count: the instance type implies it (g5.xlarge 1, g5.12xlarge 4, ...); not guessed here.
    pools = [PoolStatus(g.name, g.status, ",".join(g.instance_types), g.spot, g.min_size, g.max_size,
                        g.desired_size, ["NVIDIA GPU(s)"] if g.gpu else [], list(g.taints)) for g in info.node_groups]
    return ClusterStatus("aws", info.name, info.region, account, info.status, info.host, info.version, pools,
                         "; ".join(info.health_issues))


STATUS: dict[str, Callable[[Config], ClusterStatus]] = {"aws": _aws_status, "gcp": _gcp_status}


def status(config: Config) -> ClusterStatus:
    """The cluster and its node pools as the cloud reports them now."""
    return _supported(STATUS, config, "status")(config)


def ttl_check(config: Config, config_path: Optional[Path]) -> Optional[TtlCheck]:
    """The time-to-live `up --ttl` recorded for this environment, against the clock (None: none set).
    Read from local state only, so it is known even when the cloud does not answer."""
    from bioinfra.core.provision import environment_root
    from bioinfra.core.ttl import check

    return check(environment_root(config, config_path))


# -- dispatch -------------------------------------------------------------------------------------

_INSTEAD = {
    "local": "target local runs on this machine without Kubernetes: there is no cluster to reach",
    "onprem": "onprem uses your own cluster: its kubeconfig is onprem.kubeconfig in bioinfra.yaml",
}
TABLES = {"kubeconfig": KUBECONFIG, "status": STATUS}


def check_supported(command: str, target: str) -> None:
    """UnsupportedError (exit 8) if `bioinfra COMMAND TARGET` has no implementation; called before
    the config is read, so "not yet" comes before the target's config requirements."""
    from bioinfra.targets import get_target

    get_target(target)  # an unknown target is bad input (exit 4)
    table = TABLES[command]
    if target not in table:
        raise UnsupportedError(f"`bioinfra {command} {target}` is not available (yet); it works for "
                               f"{', '.join(sorted(table))}", hint=_INSTEAD.get(target))


def _supported(table: dict[str, Any], config: Config, command: str) -> Any:
    check_supported(command, config.target)
    return table[config.target]
