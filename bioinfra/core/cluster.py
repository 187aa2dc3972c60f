"""The cluster `bioinfra up` made: its kubeconfig and its state.

Each is a question the target answers (targets.Target: cluster_kubeconfig, status); a target whose
cluster bioinfra did not make says so (UnsupportedError with what to use instead). This module only
opens the session, writes the file and reads the recorded time-to-live: nothing here names a cloud.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from bioinfra.errors import UnsupportedError
from bioinfra.targets.base import ClusterStatus, PoolStatus

if TYPE_CHECKING:
    from bioinfra.config import Config
    from bioinfra.core.ttl import TtlCheck

__all__ = ["ClusterStatus", "KubeconfigResult", "PoolStatus", "check_supported", "default_kubeconfig_path",
           "kubeconfig", "status", "ttl_check"]


@dataclass
class KubeconfigResult:
    path: Path
    context: str
    auth: str  # "plugin" | "token"
    expires: Optional[datetime] = None  # when a stored token stops working (UTC)
    plugin: str = ""  # the command kubectl runs with auth "plugin"
    lifetime: str = ""  # how long a stored token works, in words


# -- kubeconfig -----------------------------------------------------------------------------------


def default_kubeconfig_path(config: Config, config_path: Optional[Path]) -> Path:
    """.bioinfra/<name>/<target>/kubeconfig beside bioinfra.yaml (next to the Terraform state)."""
    from bioinfra.core.provision import environment_root

    return environment_root(config, config_path) / "kubeconfig"


def kubeconfig(config: Config, config_path: Optional[Path], path: Optional[Path], auth: str) -> KubeconfigResult:
    """Write a kubeconfig for the target's cluster to `path` (default: beside the Terraform state),
    merging into the file if it already is a kubeconfig. auth: auto | plugin | token."""
    from bioinfra.adaptors import kubeconfig as kubeconfig_file

    target = _cloud(config, "kubeconfig")
    made = target.cluster_kubeconfig(config, target.open_session(config), auth)
    written = kubeconfig_file.write(path or default_kubeconfig_path(config, config_path), made.entries)
    return KubeconfigResult(written, made.context, made.auth, made.expires, plugin=made.plugin,
                            lifetime=made.lifetime)


# -- status ---------------------------------------------------------------------------------------


def status(config: Config) -> ClusterStatus:
    """The cluster and its node pools as the cloud reports them now."""
    return _cloud(config, "status").status(config)


def ttl_check(config: Config, config_path: Optional[Path]) -> Optional[TtlCheck]:
    """The time-to-live `up --ttl` recorded for this environment, against the clock (None: none set).
    Read from local state only, so it is known even when the cloud does not answer."""
    from bioinfra.core.provision import environment_root
    from bioinfra.core.ttl import check

    return check(environment_root(config, config_path))


# -- dispatch -------------------------------------------------------------------------------------

COMMANDS = ("kubeconfig", "status")


def check_supported(command: str, target: str) -> None:
    """UnsupportedError (exit 8) if `bioinfra COMMAND TARGET` has no implementation (the target is not
    a cloud bioinfra makes the cluster in); called before the config is read, so "not yet" comes before
    the target's config requirements."""
    from bioinfra.targets import TARGETS, get_target

    assert command in COMMANDS, command
    found = get_target(target)  # an unknown target is bad input (exit 4)
    if not found.is_cloud:
        clouds = sorted(name for name, t in TARGETS.items() if t.is_cloud)
        raise UnsupportedError(f"`bioinfra {command} {target}` is not available (yet); it works for "
                               f"{', '.join(clouds)}", hint=found.cluster_elsewhere or None)


def _cloud(config: Config, command: str) -> Any:
    from bioinfra.targets import get_target

    check_supported(command, config.target)
    return get_target(config.target)
