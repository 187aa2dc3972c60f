"""A DAG's phase as Argo v3.7 decides it: `assessDAGPhase` in workflow/controller/dag.go (v3.7.18).

Argo does not fail a DAG because some task failed: it walks the DAG's node graph breadth first from
its root tasks, carrying a "branch phase" (a completed node, i.e. Succeeded/Failed/Error, sets it to
its own phase; a Skipped or Omitted node passes on the one it was reached with), and reads the
phase of each *target* task (`dag.target`, by default the leaves: findLeafTaskNames). An Omitted or
Skipped target inherits the phase of the branches that reach it, Failed or Error in preference to
Succeeded. Then, in the targets' order: one not reached yet makes the DAG Running (with `failFast:
false` at once; with failFast the others are still looked at); a Failed/Error one fails the DAG
unless the task has continueOn for that phase (with failFast at once).

The node graph is Argo's (executeDAGTask, connectDependencies): a root task is a child of the DAG;
any other task's node is a child of every outbound node of each task in its `depends`; a fan-out is
a TaskGroup node whose children are the expanded tasks, and its outbound nodes are theirs. A task
with no node (never created) is simply not in the graph. Retry nodes are collapsed into their task:
Argo's walk skips their attempts and goes on from the last one (getRetryNodeChildrenIds), whose
phase is the task's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence

SUCCEEDED, FAILED, ERROR, RUNNING = "Succeeded", "Failed", "Error", "Running"
_COMPLETED = {SUCCEEDED, FAILED, ERROR}  # NodePhase.Completed(); Skipped and Omitted are only Fulfilled
_FULFILLED = _COMPLETED | {"Skipped", "Omitted"}
_BOUNDARY = "\x00dag"


def _failed_or_error(phase: str) -> bool:
    return phase in (FAILED, ERROR)


def group_phase(child_phases: Sequence[str | None]) -> str | None:
    """A TaskGroup's phase once every child is fulfilled (executeDAGTask's groupPhase): Succeeded
    unless a child Failed or Errored (the last such child's phase); None while one is not."""
    phase = SUCCEEDED
    for child in child_phases:
        if child not in _FULFILLED:
            return None
        if _failed_or_error(child):
            phase = child
    return phase


def assess_dag_phase(
    upstream: Mapping[str, Sequence[str]],
    phase_of: Mapping[str, str | None],
    children: Mapping[str, Sequence[str]],
    targets: Sequence[str],
    *,
    fail_fast: bool = True,
    continues_on: Callable[[str, str], bool] = lambda task, phase: False,
) -> str:
    """The DAG's phase (Succeeded, Failed, Error or Running), as assessDAGPhase computes it.

    upstream: each task's `depends` tasks; phase_of: each task's (and fan-out child's) node phase,
    None or absent for a node never created; children: a fan-out task's expanded tasks (a task
    expanded to none has no children: its own node is its outbound node); targets: dag.target or
    the leaves; continues_on(task, phase): the task's continueOn covers that phase."""

    def phase(name: str) -> str | None:
        if name in children and children[name]:
            return group_phase([phase_of.get(c) for c in children[name]])
        return phase_of.get(name)

    def created(name: str) -> bool:
        return phase_of.get(name) is not None or bool(children.get(name))

    def outbound(name: str) -> list[str]:
        kids = children.get(name) or ()
        return [c for c in kids if phase_of.get(c) is not None] if kids else [name]

    # The node graph Argo builds as it creates nodes (connectDependencies).
    graph: dict[str, list[str]] = {_BOUNDARY: []}
    for task, ups in upstream.items():
        if not created(task):
            continue
        parents = [o for u in ups if created(u) for o in outbound(u)] if ups else [_BOUNDARY]
        for parent in parents:
            graph.setdefault(parent, []).append(task)
        for child in children.get(task) or ():
            if phase_of.get(child) is not None:
                graph.setdefault(task, []).append(child)

    target_phase: dict[str, str] = {t: "" for t in targets}
    seen: set[tuple[str, str]] = set()
    queue: deque[tuple[str, str]] = deque()

    def add(nodes: Sequence[str], branch: str) -> None:  # newUniquePhaseNodeQueue: unique (node, phase)
        for n in nodes:
            if (n, branch) not in seen:
                seen.add((n, branch))
                queue.append((n, branch))

    add(graph[_BOUNDARY], SUCCEEDED)
    while queue:
        name, branch = queue.popleft()
        now = phase(name)
        if now not in _FULFILLED:
            return RUNNING
        if now in _COMPLETED:
            branch = now
        if name in target_phase and not _failed_or_error(target_phase[name]):
            target_phase[name] = branch
        add(graph.get(name, ()), branch)

    result = SUCCEEDED
    for task in targets:
        branch = target_phase[task]
        if branch == "":
            result = RUNNING
            if not fail_fast:
                break
        elif _failed_or_error(branch):
            if continues_on(task, branch):
                continue
            result = branch
            if fail_fast:
                break
    return result


def leaf_tasks(upstream: Mapping[str, Sequence[str]]) -> list[str]:
    """findLeafTaskNames: the tasks no other task depends on, sorted (Argo's default targets)."""
    depended = {u for ups in upstream.values() for u in ups}
    return sorted(t for t in upstream if t not in depended)
