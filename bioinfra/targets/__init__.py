"""One module per target behind one small interface.

Each target answers the same few questions (declared once here: `Target` for every target,
`CloudTarget` for those provisioned with Terraform stacks); adding a cloud means adding a module and
an entry in TARGETS. `local` runs pipelines with the executor in this package; the cluster targets
submit the same Workflow to Argo (core.cluster_run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional, Protocol

from bioinfra.errors import InputError
from bioinfra.targets.aws import AwsTarget
from bioinfra.targets.base import RegistryPathTarget
from bioinfra.targets.gcp import GcpTarget
from bioinfra.targets.onprem import OnpremTarget

if TYPE_CHECKING:
    from bioinfra.config import Config
    from bioinfra.core.stacks import Stack


class Target(Protocol):
    name: str
    runs_locally: bool

    def registry(self, config: Config) -> str:
        """Where this target's tool images live (<host>/<path>, no tag)."""
        ...

    def serves(self, config: Config, ref: str) -> bool:
        """Whether an image reference lives in this target's registry (so its pods can pull it)."""
        ...


class CloudTarget(Target, Protocol):
    """A target whose infrastructure is Terraform stacks (core.provision walks them)."""

    stacks: tuple[Stack, ...]  # declared once: `up` walks it forward, `destroy` backward
    placeholder_outputs: dict[str, dict[str, Any]]  # upstream outputs a stack reads, with plan-only stand-ins
    label: str  # the tag/label key every resource carries with the cluster name (what the sweep finds)

    def stack_variables(self, config: Config, stack: Stack) -> dict[str, Any]:
        """What the stack's root template reads: structure decided by code (backend kind, which pools,
        fixed names), never a config value (issue #15)."""
        ...

    def stack_values(self, config: Config, stack: Stack) -> dict[str, Any]:
        """The stack's Terraform variables, written as JSON to <stack>/bioinfra.auto.tfvars.json: every
        value that comes from the config, so Terraform reads it as data and never as HCL."""
        ...

    def backend_config(self, config: Config, stack: Stack) -> Optional[dict[str, Any]]:
        """The remote backend's settings (JSON file for `terraform init -backend-config=`), or None."""
        ...

    def terraform_env(self, config: Config) -> dict[str, str]:
        """Extra environment for Terraform."""
        ...

    def open_session(self, config: Config) -> Any:
        """The cloud SDK session the hooks and the sweep use."""
        ...

    def results_bucket(self, config: Config, session: Any = None) -> str:
        """The results bucket's name: buckets.results, else config.results_bucket(<account or project
        id>), the one rule every reader of the name goes through (issue #18.6)."""
        ...

    def preflight(self, config: Config, session: Any, *, destroying: bool = False) -> str:
        """Checks before any Terraform call; raises with every problem; returns "account/project, region"."""
        ...

    def adopt_kept(self, config: Config, stack: Stack, tf: Any, session: Any, say: Callable[[str], None]) -> None:
        """Before planning `up`: take back a results bucket an earlier `destroy` kept."""
        ...

    def before_destroy(self, config: Config, stack: Stack, tf: Any, session: Any, *,
                       force_empty_buckets: bool, say: Callable[[str], None]) -> None:
        """Before a stack's destroy: whatever would make Terraform refuse or lose data."""
        ...

    def destroy_plan_args(self, config: Config, stack: Stack) -> list[str]:
        """Extra arguments of the stack's `plan -destroy`."""
        ...

    def skip_reason(self, config: Config, stack: Stack) -> Optional[str]:
        """Why this environment cannot have the stack (None: walk it)."""
        ...

    def find_leftovers(self, config: Config, session: Any) -> list[Any]:
        """Everything in the account/project that belongs to the cluster, by tag, label or name."""
        ...

    def delete_leftovers(self, config: Config, session: Any, leftovers: list[Any], *, force_empty_buckets: bool,
                         say: Callable[[str], None], stack: Optional[str] = None) -> Any:
        """Delete them in dependency order; returns a result with .kept and .failed."""
        ...


class LocalTarget(RegistryPathTarget):
    name = "local"
    runs_locally = True

    def registry(self, config: Config) -> str:
        # 127.0.0.1, not localhost: `up local --registry` listens on IPv4 loopback only.
        return config.registry.url or "127.0.0.1:5000/bioinfra"


TARGETS: dict[str, Target] = {t.name: t for t in (LocalTarget(), OnpremTarget(), GcpTarget(), AwsTarget())}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise InputError(f"unknown target '{name}'; choose one of: {', '.join(TARGETS)}") from None
