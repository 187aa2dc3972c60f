"""What the onprem target answers about the user's own cluster: where its kubeconfig is, where a run's
results are, and `bioinfra doctor`'s onprem checks (the kubeconfig named in bioinfra.yaml, and nodes
that carry the pool labels the Workflows select, issue #16).

Mixed into OnpremTarget (targets/onprem.py, which owns the addons stack). Core code asks these
through the target interface (targets.Target); it never compares a target's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from bioinfra.errors import ClusterUnreachableError
from bioinfra.targets.base import Check, NoCloudCluster, failed, passed, warning

if TYPE_CHECKING:
    from pathlib import Path

    from bioinfra.config import Config


class OnpremCluster(NoCloudCluster):
    cluster_elsewhere = "onprem uses your own cluster: its kubeconfig is onprem.kubeconfig in bioinfra.yaml"
    # Workflows only prefer a node pool (templates/workflows/_steps.j2 `pool`): an existing cluster's nodes
    # may carry no bioinfra.io/pool label, and a one-node cluster can hold only one of general/highcpu.
    pool_preferred = True
    sample_config: dict[str, Any] = {"target": "onprem", "name": "lint"}

    def place(self, config: Config) -> str:
        return f"context {config.onprem.context or '(current)'} of {config.onprem.kubeconfig}"

    def cluster_source(self, config: Config) -> str:
        context = f" (context {config.onprem.context})" if config.onprem.context else ""
        return f"{config.onprem.kubeconfig}{context}"

    def kubeconfig_path(self, config: Config, default: Path) -> tuple[Path, Optional[str]]:
        return config.onprem.kubeconfig, config.onprem.context

    def results_location(self, config: Config, run_id: str, *, offline: bool = False) -> tuple[str, str]:
        # The run folder already is an object in the cluster's MinIO: no stage-out.
        return "", f"s3://workspace/runs/{run_id}/ (the cluster's workspace S3 server)"

    def doctor_checks(self) -> list[tuple[str, Any, tuple[str, ...]]]:
        return [("kubeconfig", check_kubeconfig, ()),
                # aws/gcp node groups carry the pool labels; an existing cluster's nodes may not (#16).
                ("node pools", check_node_pools, ("api server",))]


# -- `bioinfra doctor` (d: core.doctor.Doctor) ----------------------------------------------------


def check_kubeconfig(d: Any) -> Check:
    from bioinfra.adaptors.kube import connect

    path = d.config.onprem.kubeconfig.expanduser()
    d.kubeconfig = path
    try:
        d.kube = connect(path, d.config.onprem.context)
    except ClusterUnreachableError as exc:  # names the file or the context
        fix = "point onprem.kubeconfig (and onprem.context) in bioinfra.yaml at your cluster's kubeconfig"
        if exc.hint and not exc.hint.startswith("onprem:"):  # e.g. the contexts the file has
            fix += f"; {exc.hint}"
        return failed(exc.message, fix)
    return passed(f"{path}, context {d.kube.context}")


def check_node_pools(d: Any) -> Check:
    """For each pool the Workflows select (nodeSelector bioinfra.io/pool: general, highcpu; gpu with a
    gpu pool), at least one Ready, uncordoned node carries the label and has no taint its steps do not
    tolerate. Without one, that pool's pods stay Pending for ever."""
    from bioinfra.pipelines import POOL_LABEL
    from bioinfra.targets.onprem_nodes import (
        forbidden,
        label_command,
        plan_labels,
        read_nodes,
        serving,
        unserved_effect,
        why_not,
        workflow_pools,
    )

    assert d.kube is not None
    needs = workflow_pools(d.config)
    try:
        nodes = read_nodes(d.kube, _request_timeout=(min(d.timeout, 3.0), d.timeout))
    except ClusterUnreachableError as exc:
        if not forbidden(exc):
            raise
        return warning(f"not checked: {exc.message} (RBAC: list nodes)",
                       "ask your cluster's admin for `kubectl get nodes -L " + POOL_LABEL + "`: each of "
                       + ", ".join(f"{POOL_LABEL}={pool}" for pool in needs) + " needs a Ready, schedulable node")
    missing = [need for need in needs.values() if not serving(nodes, need)]
    if not missing:
        return passed("; ".join(f"{POOL_LABEL}={need.pool}: {', '.join(serving(nodes, need))}"
                                for need in needs.values()))
    plan = plan_labels(nodes, needs)
    problems, fixes = [], []
    for need in missing:
        reason = why_not(nodes, need)
        problems.append(f"no Ready, schedulable node carries {POOL_LABEL}={need.pool} ({unserved_effect(need)})"
                        + (f" ({reason})" if reason else ""))
        node = next((n for n, pool in plan.labels.items() if pool == need.pool), None)
        if node is not None:
            fixes.append(label_command(node, need.pool))
        else:
            fixes.append(f"{label_command('<node>', need.pool)} ({plan.unserved.get(need.pool, 'choose a node')})")
    fix = "; ".join(fixes)
    if plan.labels:
        fix = f"`bioinfra up onprem --label-nodes` labels {', '.join(f'{n} {POOL_LABEL}={p}' for n, p in plan.labels.items())}; or {fix}"
    if not any(need.required for need in missing):
        # onprem Workflows only prefer their pool (#16): the steps still run, on any node.
        return warning("; ".join(problems), fix)
    return failed("; ".join(problems), fix)
