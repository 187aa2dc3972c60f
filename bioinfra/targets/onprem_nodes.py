"""onprem: the node pools the Workflows ask for, found (or not) among an existing cluster's nodes.

On aws and gcp every Workflow step requires its pool (`nodeSelector: bioinfra.io/pool: general|highcpu`):
the node groups carry those labels. On onprem the steps only *prefer* it (node affinity,
preferredDuringScheduling): an existing cluster's nodes carry no such label until someone labels them,
and a node carries one value of `bioinfra.io/pool`, so a one-node cluster could never serve both
general and highcpu; without a labelled node a step runs on any Ready node (a GPU step still needs a
node with the GPU resource). This module reads which pools the rendered Workflows ask for (with the
taints their steps tolerate), which Ready, schedulable nodes serve each, and proposes labels for the
pools nobody serves. Labelling happens only in `bioinfra up onprem` with the user's consent;
`bioinfra doctor` only reads and warns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bioinfra.errors import ClusterUnreachableError
from bioinfra.pipelines import POOL_LABEL

if TYPE_CHECKING:
    from bioinfra.config import Config

# The NVIDIA device plugin (installed by the addons stack with a gpu pool) runs on nodes labelled
# bioinfra.io/pool=gpu and tolerates this taint (bioinfra/targets/addons.py).
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_RESOURCE = "nvidia.com/gpu"
# Taints that keep pods away (PreferNoSchedule only discourages).
# Ref https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/
_REPELLING = ("NoSchedule", "NoExecute")


@dataclass
class PoolNeed:
    """A pool the Workflows select: which steps (template names) ask for it and the taint keys
    every one of them tolerates (a node tainted otherwise does not serve the pool)."""

    pool: str
    steps: list[str] = field(default_factory=list)
    tolerated: frozenset[str] = frozenset()
    # False when every step only prefers the pool (onprem Workflows: nodeAffinity preferred..., #16):
    # without a node carrying it those steps run on any Ready node, they do not stay Pending.
    required: bool = True


@dataclass(frozen=True)
class NodeFacts:
    name: str
    ready: bool
    cordoned: bool
    pool: str  # the node's bioinfra.io/pool label, "" if none
    taints: tuple[str, ...]  # keys of NoSchedule/NoExecute taints
    cpu: float  # allocatable
    gpus: int  # allocatable nvidia.com/gpu
    control_plane: bool

    def serves(self, need: PoolNeed) -> bool:
        """Could a pod of this pool run here: Ready, not cordoned, every repelling taint tolerated."""
        return self.ready and not self.cordoned and all(t in need.tolerated for t in self.taints)


@dataclass
class LabelPlan:
    """Which node gets which pool label, and the pools no node can be proposed for (with why)."""

    labels: dict[str, str] = field(default_factory=dict)  # node -> pool
    unserved: dict[str, str] = field(default_factory=dict)  # pool -> why no node was proposed


# -- what the Workflows select --------------------------------------------------------------------


def workflow_pools(config: Config) -> dict[str, PoolNeed]:
    """The pools every pipeline's Workflow selects on onprem, read from the rendered Workflows
    (bioinfra.argo.model: each template's nodeSelector and tolerations); with a gpu pool configured,
    also `gpu` (the NVIDIA device plugin runs there)."""
    from bioinfra.argo.model import Workflow

    needs: dict[str, PoolNeed] = {}
    tolerations: dict[str, list[set[str]]] = {}
    for workflow in _rendered_workflows(config):
        for template in Workflow.parse(workflow).templates:
            pool = template.node_selector.get(POOL_LABEL)
            preferred = _preferred_pool(template.raw) if not pool else None
            if not pool and not preferred:
                continue
            pool = pool or preferred
            need = needs.setdefault(str(pool), PoolNeed(str(pool), required=False))
            need.required = need.required or not preferred
            step = template.name.removesuffix("-attempt")  # the retry wrapper's inner template
            if step not in need.steps:
                need.steps.append(step)
            tolerations.setdefault(str(pool), []).append(
                {str(t.get("key", "")) for t in template.tolerations if t.get("effect") in (None, "", *_REPELLING)})
    for pool, sets in tolerations.items():
        needs[pool].tolerated = frozenset(set.intersection(*sets)) if sets else frozenset()
    if config.node_pools.gpu is not None and "gpu" not in needs:
        needs["gpu"] = PoolNeed("gpu", ["the NVIDIA device plugin (node_pools.gpu)"], frozenset({GPU_TAINT_KEY}))
    order = {"general": 0, "highcpu": 1, "gpu": 2}
    return dict(sorted(needs.items(), key=lambda kv: (order.get(kv[0], 9), kv[0])))


def _preferred_pool(raw: Any) -> str | None:
    """The pool a template prefers: affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution
    with a `bioinfra.io/pool In [pool]` expression (templates/workflows/_steps.j2 `pool`, onprem)."""
    terms = (((raw or {}).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "preferredDuringSchedulingIgnoredDuringExecution") or []
    for term in terms:
        for expr in ((term or {}).get("preference") or {}).get("matchExpressions") or []:
            if expr.get("key") == POOL_LABEL and expr.get("operator") == "In" and expr.get("values"):
                return str(expr["values"][0])
    return None


def _rendered_workflows(config: Config) -> list[dict[str, Any]]:
    """Every built-in pipeline's Workflow, each mode, as `run --target onprem` renders it
    (placeholder inputs, bioinfra.engine.preview: only the structure is read)."""
    from bioinfra.engine.preview import placeholder_workflow
    from bioinfra.engine.spec import builtin_root, load_spec

    specs = [load_spec(folder, builtin=True) for folder in sorted(builtin_root().iterdir())
             if (folder / "pipeline.yaml").is_file()]
    return [placeholder_workflow(spec, mode, config, "onprem") for spec in specs
            for mode in (spec.modes or [spec.mode_for(set())])]


# -- what the cluster has -------------------------------------------------------------------------


def read_nodes(kube: Any, **kwargs: Any) -> list[NodeFacts]:
    """The cluster's nodes (GET /api/v1/nodes), reduced to what scheduling a step needs."""
    return [node_facts(n) for n in kube.list_nodes(**kwargs)]


def node_facts(node: Any) -> NodeFacts:
    """From a V1Node: Ready is the Ready condition's status "True"; cordoned is spec.unschedulable.
    Ref https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1/"""
    meta, spec, status = node.metadata, node.spec, node.status
    labels = (meta.labels if meta else None) or {}
    conditions = (status.conditions if status else None) or []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    taints = tuple(t.key for t in ((spec.taints if spec else None) or []) if t.effect in _REPELLING)
    allocatable = (status.allocatable if status else None) or {}
    return NodeFacts(
        name=meta.name, ready=ready, cordoned=bool(spec and spec.unschedulable), pool=str(labels.get(POOL_LABEL, "")),
        taints=taints, cpu=_cpu(allocatable.get("cpu", "0")), gpus=int(_cpu(allocatable.get(GPU_RESOURCE, "0"))),
        control_plane="node-role.kubernetes.io/control-plane" in labels
        or "node-role.kubernetes.io/master" in labels,
    )


def _cpu(value: Any) -> float:
    text = str(value or "0")
    try:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        return 0.0


def serving(nodes: list[NodeFacts], need: PoolNeed) -> list[str]:
    """The nodes that carry the pool's label and can run its pods."""
    return [n.name for n in nodes if n.pool == need.pool and n.serves(need)]


def why_not(nodes: list[NodeFacts], need: PoolNeed) -> str:
    """Why the pool's labelled nodes (if any) do not serve it, e.g. "n3 is cordoned"."""
    reasons = []
    for n in nodes:
        if n.pool != need.pool:
            continue
        if not n.ready:
            reasons.append(f"{n.name} is not Ready")
        elif n.cordoned:
            reasons.append(f"{n.name} is cordoned")
        else:
            untolerated = [t for t in n.taints if t not in need.tolerated]
            reasons.append(f"{n.name} has taint {', '.join(untolerated)} its steps do not tolerate")
    return "; ".join(reasons)


def plan_labels(nodes: list[NodeFacts], needs: dict[str, PoolNeed]) -> LabelPlan:
    """One node for each pool no node serves, from the Ready, schedulable nodes without a pool label
    (a node already labelled is never relabelled): highcpu first, to the most allocatable CPU, then
    general (workers before control-plane nodes); gpu only to a node that advertises nvidia.com/gpu."""
    plan = LabelPlan()
    missing = [need for need in needs.values() if not serving(nodes, need)]
    free = [n for n in nodes if not n.pool]
    for need in sorted(missing, key=lambda n: {"highcpu": 0, "gpu": 1}.get(n.pool, 2)):
        fit = [n for n in free if n.name not in plan.labels and n.serves(need)]
        if need.pool == "gpu":
            fit = [n for n in fit if n.gpus > 0]
        if not fit:
            plan.unserved[need.pool] = _no_candidate(nodes, need, plan)
            continue
        best = max(fit, key=lambda n: (not n.control_plane, n.cpu if need.pool == "highcpu" else -n.cpu, n.name))
        plan.labels[best.name] = need.pool
    return plan


def _no_candidate(nodes: list[NodeFacts], need: PoolNeed, plan: LabelPlan) -> str:
    if need.pool == "gpu":
        return ("no unlabelled, schedulable node advertises nvidia.com/gpu (bioinfra cannot tell GPU nodes before "
                "the device plugin runs on them): label your GPU node yourself")
    usable = [n for n in nodes if n.serves(need)]
    if not usable:
        return "no node is Ready, uncordoned and free of taints its steps do not tolerate"
    if any(n.name in plan.labels for n in usable):
        return (f"every usable node is taken by another pool: a node carries one {POOL_LABEL} value, so serving "
                f"{len(plan.labels) + 1} pools takes as many nodes")
    return f"every usable node already carries another {POOL_LABEL} value (never relabelled by bioinfra)"


def label_command(node: str, pool: str) -> str:
    return f"kubectl label node {node} {POOL_LABEL}={pool}"


def apply_labels(kube: Any, plan: LabelPlan) -> list[str]:
    """PATCH each planned node's labels (adaptors.kube.Kube.label_node); returns the nodes labelled."""
    done = []
    for node, pool in plan.labels.items():
        kube.label_node(node, {POOL_LABEL: pool})
        done.append(node)
    return done


def offer_labels(config: Config, kube: Any, *, consent: bool | None, ask: Any, say: Any, warn: Any,
                 dry_run: bool = False) -> list[str]:
    """`bioinfra up onprem`'s node step: show which pools no node serves and which node would get which
    label; label them only with consent (`consent` True: --label-nodes; None: `ask(question)` if it is
    given, i.e. at a terminal; False or no answer: nothing changes, the commands are shown). Returns
    the nodes labelled."""
    needs = workflow_pools(config)
    try:
        nodes = read_nodes(kube)
    except ClusterUnreachableError as exc:
        if not forbidden(exc):
            raise
        # Shared clusters often do not let users list nodes; the addons stack does not need it.
        warn(f"node pools not checked: {exc.message} (RBAC: list nodes). Each of "
             + ", ".join(f"{POOL_LABEL}={pool}" for pool in needs)
             + " must be on a Ready, schedulable node: ask your cluster's admin, or "
             + label_command("<node>", "<pool>"))
        return []
    missing = [need for need in needs.values() if not serving(nodes, need)]
    if not missing:
        say("node pools: " + "; ".join(f"{POOL_LABEL}={n.pool} on {', '.join(serving(nodes, n))}"
                                       for n in needs.values()))
        return []
    plan = plan_labels(nodes, needs)
    for need in missing:
        warn(f"no Ready, schedulable node carries {POOL_LABEL}={need.pool} ({unserved_effect(need)})")
    for pool, why in plan.unserved.items():
        warn(f"{POOL_LABEL}={pool}: {why}: {label_command('<node>', pool)}")
    if not plan.labels:
        return []
    for node, pool in plan.labels.items():
        warn(f"proposed: node {node} gets {POOL_LABEL}={pool}   ({label_command(node, pool)})")
    if dry_run:
        warn("dry run: no node labelled")
        return []
    if consent is None and ask is not None:
        consent = bool(ask(f"Label {len(plan.labels)} node(s) as proposed above?"))
    if not consent:
        warn("no node labelled: `bioinfra up onprem --label-nodes` labels them as proposed, or run the kubectl "
             "command(s) above; `bioinfra doctor` checks it")
        return []
    try:
        done = apply_labels(kube, plan)
    except ClusterUnreachableError as exc:
        if not forbidden(exc):
            raise
        warn(f"no node labelled: {exc.message} (RBAC: patch nodes): ask your cluster's admin to run the kubectl "
             "command(s) above")
        return []
    for node in done:
        say(f"node {node} labelled {POOL_LABEL}={plan.labels[node]}")
    return done


def unserved_effect(need: PoolNeed) -> str:
    """What a pool no node serves does to its steps."""
    if need.required:
        return f"selected by {', '.join(need.steps)}: those pods would stay Pending"
    return (f"preferred by {', '.join(need.steps)}: they run on any Ready, schedulable node instead; "
            "label a node to keep them on it")


def forbidden(exc: ClusterUnreachableError) -> bool:
    """A 403: the API server answered and the credentials work, RBAC refused this one call."""
    return getattr(exc, "status", None) == 403
