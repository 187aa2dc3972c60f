"""Target onprem: a cluster that already exists (EBI-style clusters, k3s, minikube), named by a
kubeconfig and context. bioinfra adds only the in-cluster pieces (the addons stack) and `destroy`
removes only those: nodes, networks, the user's own services and claims are never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from bioinfra.targets.base import RegistryPathTarget, Stack
from bioinfra.targets.onprem_cluster import OnpremCluster

if TYPE_CHECKING:
    from bioinfra.config import Config

STACKS: tuple[Stack, ...] = (Stack("addons", "addons/stacks/addons.tf.j2", upstream=()),)


@dataclass
class NothingLeft:
    """delete_leftovers' answer: onprem has no cloud resources outside Terraform's state."""

    kept: list[Any] = field(default_factory=list)
    failed: list[Any] = field(default_factory=list)


class OnpremTarget(OnpremCluster, RegistryPathTarget):
    name = "onprem"
    runs_locally = False
    stacks = STACKS
    placeholder_outputs: dict[str, dict[str, Any]] = {}
    label = "bioinfra.io/cluster"

    def registry(self, config: Config) -> str:
        return config.registry.url or "localhost:5000/bioinfra"

    def stack_variables(self, config: Config, stack: Stack) -> dict[str, Any]:
        from bioinfra.targets.addons import addons_variables

        return addons_variables(config, "onprem")

    def stack_values(self, config: Config, stack: Stack) -> dict[str, Any]:
        from bioinfra.targets.addons import addons_values

        return addons_values(config, "onprem")

    def backend_config(self, config: Config, stack: Stack) -> Optional[dict[str, Any]]:
        return None  # state stays on this machine (backend "local")

    def terraform_env(self, config: Config) -> dict[str, str]:
        return {}

    def open_session(self, config: Config) -> Any:
        """The cluster's API client (the kubeconfig and context from onprem.*)."""
        from bioinfra.adaptors.kube import connect

        return connect(config.onprem.kubeconfig, config.onprem.context)

    def preflight(self, config: Config, session: Any, *, destroying: bool = False) -> str:
        """The API server answers with these credentials (exit 13 naming the kubeconfig if not); before
        `up`/`plan`, an Argo Workflows the cluster already runs fits onprem.argo (exit 12 naming both
        fixes if not: targets/onprem_argo.py)."""
        where = f"cluster {session.server} (context {session.context}, Kubernetes {session.version()})"
        if destroying:
            return where
        from bioinfra.targets.onprem_argo import check_argo

        return f"{where}; {check_argo(config, session)}"

    def skip_reason(self, config: Config, stack: Stack) -> Optional[str]:
        return None

    def adopt_kept(self, config: Config, stack: Stack, tf: Any, session: Any, say: Callable[[str], None]) -> None:
        return None

    def before_destroy(self, config: Config, stack: Stack, tf: Any, session: Any, *,
                       force_empty_buckets: bool, say: Callable[[str], None]) -> None:
        return None

    def destroy_plan_args(self, config: Config, stack: Stack) -> list[str]:
        return []

    def find_leftovers(self, config: Config, session: Any) -> list[Any]:
        # Everything bioinfra adds to an existing cluster is in the addons stack's state.
        return []

    def delete_leftovers(self, config: Config, session: Any, leftovers: list[Any], *, force_empty_buckets: bool,
                         say: Callable[[str], None], stack: Optional[str] = None) -> Any:
        return NothingLeft()
