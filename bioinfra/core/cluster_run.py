"""Argo on a cluster, at the Kubernetes level: connecting, following a Workflow, its steps' states
and pod logs, and `bioinfra runs list|status|logs|cancel` (runs already submitted).

`bioinfra run --target aws|gcp|onprem` is the engine's cluster backend (bioinfra.engine.cluster):
it checks, stages, submits and finishes a run with the functions here. The Workflow's status is
read through the one typed Argo model (bioinfra.argo.model); a large run's compressed nodes are
decoded first (core.argo_nodes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from bioinfra.argo.model import NodeStatus, Workflow
from bioinfra.config import Config
from bioinfra.errors import InputError
from bioinfra.executor.runner import (
    FAILED,
    OMITTED,
    PENDING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    TaskState,
    safe_file_name,
)
from bioinfra.pipelines import MINIO_SECRET, PREEMPTION_MESSAGE_PATTERN, label_value

if TYPE_CHECKING:
    from bioinfra.engine.inputs import RemoteInput

NAMESPACE = "bioinfra"
MINIO_SERVICE = "bioinfra-minio"
MINIO_USER_KEY, MINIO_PASSWORD_KEY = "root-user", "root-password"
RUN_LABEL = "bioinfra.io/run-id"


def run_label(run_id: str) -> str:
    """The bioinfra.io/run-id label value of a run: a run id may be 100 characters and end in '_'
    (engine.rundir.check_run_id), a label value may not (63, alphanumeric ends: the API server answers
    422). Set and selected through this one function so both always agree."""
    return label_value(run_id)


MANAGED_LABEL = ("app.kubernetes.io/managed-by", "bioinfra")
# Argo's phases -> the executor's (the progress display and manifest speak the executor's).
_PHASES = {"Pending": PENDING, "Running": RUNNING, "Succeeded": SUCCEEDED, "Failed": FAILED, "Error": FAILED,
           "Skipped": SKIPPED, "Omitted": OMITTED}
DONE = ("Succeeded", "Failed", "Error")
# What Kubernetes/Argo say when a node, not the program, ended a pod (spot reclaim, eviction, lost
# node): the same pattern the Workflow's node-level retry matches (bioinfra.pipelines).
PREEMPTED = re.compile(PREEMPTION_MESSAGE_PATTERN)


def executor_phase(argo_phase: Optional[str]) -> str:
    """The executor's phase for a Workflow's or node's Argo phase (unknown: failed)."""
    return _PHASES.get(argo_phase or "", FAILED)


# -- connecting -----------------------------------------------------------------------------------


def kube_for(config: Config, config_path: Optional[Path]) -> Any:
    """The target's cluster through target.kubeconfig_path: onprem's kubeconfig/context, or the one
    `bioinfra kubeconfig` writes (written now if missing) for a cloud."""
    from bioinfra.adaptors.kube import connect
    from bioinfra.core.cluster import default_kubeconfig_path, kubeconfig
    from bioinfra.targets import get_target

    target = get_target(config.target)
    path, context = target.kubeconfig_path(config, default_kubeconfig_path(config, config_path))
    if target.is_cloud and not path.is_file():
        kubeconfig(config, config_path, None, "auto")
    return connect(path, context)


def open_workspace(kube: Any) -> Any:
    from bioinfra.adaptors.workspace_store import open_store

    return open_store(kube, NAMESPACE, MINIO_SERVICE, MINIO_SECRET, user_key=MINIO_USER_KEY,
                      password_key=MINIO_PASSWORD_KEY)


def check_remote(config: Config, ref: RemoteInput, role: str) -> None:
    """The object exists and this machine's credentials can see it (the pod reads it with its own).
    `role` is the input's flag (e.g. --r1), or its name."""
    from bioinfra.targets import get_target

    flag = role if role.startswith("-") else f"--{role}"
    get_target(config.target).check_remote(config, ref, flag)


# -- the Workflow ---------------------------------------------------------------------------------


def results_location(config: Config, run_id: str, *, offline: bool = False) -> tuple[str, str]:
    """(rclone destination for the stage-out step, the URL users see) of a run's results: the
    target's answer (target.results_location; the bucket's name is targets.<t>.results_bucket).
    `offline` (render, --dry-run): the cloud is not asked (aws: no STS call for the account id)."""
    from bioinfra.targets import get_target

    return get_target(config.target).results_location(config, run_id, offline=offline)


def checked_submission(workflow: dict[str, Any]) -> dict[str, Any]:
    """The Workflow exactly as it will be submitted (name, namespace, run labels set), linted as the
    Argo v3.7 controller and the API server admit it: WorkflowInvalidError (exit 4) with their
    messages, before anything is uploaded or created. (The render was linted too; this covers what
    the cluster path adds to it.)"""
    from bioinfra.argo import check_workflow

    check_workflow(workflow)
    return workflow


def as_workflow(workflow: Union[dict[str, Any], Workflow]) -> Workflow:
    """The typed Argo model (bioinfra.argo.model) of a Workflow object, parsed once. A large run's
    nodes, which Argo stores compressed in status.compressedNodes, are decoded first (argo_nodes)."""
    from bioinfra.core.argo_nodes import inflate_nodes

    return workflow if isinstance(workflow, Workflow) else Workflow.parse(inflate_nodes(workflow))


def dag_tasks(workflow: Union[dict[str, Any], Workflow]) -> list[str]:
    """The entrypoint DAG's task names, in the Workflow's order."""
    wf = as_workflow(workflow)
    main = wf.template(wf.entrypoint)
    if main is None or main.dag is None:
        raise InputError(f"Workflow {wf.display_name}: its entrypoint {wf.entrypoint!r} is not a DAG template",
                         hint="bioinfra follows the Workflows it renders (a DAG entrypoint)")
    return [task.name for task in main.dag.tasks]


# -- following a run ------------------------------------------------------------------------------


def _epoch(stamp: Optional[str]) -> Optional[float]:
    if not stamp:
        return None
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def task_of(node_name: str, workflow_name: str) -> Optional[str]:
    """The DAG task a node belongs to: "<wf>.align(0)[0].attempt(1)" -> "align"."""
    if not node_name.startswith(workflow_name + "."):
        return None
    return re.split(r"[(.\[]", node_name[len(workflow_name) + 1:], maxsplit=1)[0]


# A fan-out child is named "<task>(<index>:<item>)", as the local executor names it too.
_CHILD_RE = re.compile(r"^([^(.\[]+)(\(\d+:[^)]*\))?")


def step_of(node_name: str, workflow_name: str) -> Optional[str]:
    """The step a node belongs to: its DAG task, or for a fan-out the child:
    "<wf>.analyze(1:first:5,last:8)(0)[0].run(0)" -> "analyze(1:first:5,last:8)"."""
    if not node_name.startswith(workflow_name + "."):
        return None
    match = _CHILD_RE.match(node_name[len(workflow_name) + 1:])
    return match.group(0) if match else None


def _state_from_node(state: TaskState, node: Optional[NodeStatus], pods: list[NodeStatus]) -> TaskState:
    if node is not None:
        state.phase = _PHASES.get(node.phase or "Pending", PENDING)
        state.started, state.finished = _epoch(node.started_at), _epoch(node.finished_at)
        state.message = node.message
        if node.outputs is not None:  # what the step's outputs.parameters held (e.g. align.aligner)
            state.output_parameters = {p.name: p.value for p in node.outputs.parameters if p.value is not None}
    preempted = [p for p in pods if p.phase in ("Failed", "Error") and PREEMPTED.search(p.message)]
    state.attempts = max(len(pods) - len(preempted), 1 if pods else 0)
    if preempted:
        note = f"{len(preempted)} node loss(es) retried, not counted as failures"
        state.message = f"{state.message}; {note}" if state.message else note
    return state


def task_states(workflow: Union[dict[str, Any], Workflow], tasks: list[str], log_dir: Path, retries: int
                ) -> dict[str, TaskState]:
    """Each DAG task's state from status.nodes (read through the typed model, NodeStatus): Argo names
    a DAG task's node "<workflow>.<task>"; its pods are below it ("<workflow>.<task>(0)[0].<step>(1)").
    A fan-out task (a TaskGroup node) also gets one state per child, "<task>(<i>:<item>)", right after it."""
    wf = as_workflow(workflow)
    name = wf.name
    nodes = list(wf.status.nodes.values())
    by_name = {n.name: n for n in nodes}
    pods_of: dict[str, list[NodeStatus]] = {}
    for node in nodes:
        if node.type == "Pod":
            pods_of.setdefault(step_of(node.name, name) or "", []).append(node)
    main = wf.template(wf.entrypoint)
    templates = {t.name: t.template for t in main.dag.tasks} if main is not None and main.dag is not None else {}
    states = {}
    for task in tasks:
        node = by_name.get(f"{name}.{task}")
        children = sorted(
            {step for step in (step_of(n.name, name) for n in nodes) if step and step.startswith(task + "(")},
            key=lambda step: int(step[len(task) + 1:].split(":", 1)[0]),
        )
        own_pods = [p for p in nodes if p.type == "Pod" and task_of(p.name, name) == task]
        template = templates.get(task) or task
        state = _state_from_node(TaskState(task, template, log_dir / f"{task}.log", max_attempts=retries + 1), node,
                                 [] if children else own_pods)
        states[task] = state
        if not children:
            continue
        state.children = len(children)
        state.attempts = 0
        for child in children:
            child_state = TaskState(child, template, log_dir / f"{safe_file_name(child)}.log", max_attempts=retries + 1,
                                    group=task)
            states[child] = _state_from_node(child_state, by_name.get(f"{name}.{child}"), pods_of.get(child, []))
            state.attempts += states[child].attempts
    return states


def follow(kube: Any, submitted_name: str, tasks: list[str], log_dir: Path, retries: int, reporter: Any,
           namespace: str = NAMESPACE, keeper: Optional[LogKeeper] = None) -> dict[str, Any]:
    """Watch the Workflow until it ends, reporting each step's changes and (with `keeper`) saving each
    step's log as its node finishes; returns the final object."""
    from bioinfra.core.argo_nodes import inflate_nodes

    watch = kube.watch_workflow(namespace, submitted_name)
    seen: dict[str, tuple[Any, ...]] = {}
    started = False
    workflow = inflate_nodes(next(watch))
    try:
        while True:
            wf = as_workflow(workflow)  # parsed once per status seen
            states = task_states(wf, tasks, log_dir, retries)
            if not started:
                reporter.started(list(states.values()))
                started = True
            for state in states.values():
                key = (state.phase, state.attempts, state.message)
                if seen.get(state.name) != key:
                    seen[state.name] = key
                    reporter.changed(state)
            if keeper is not None:
                keeper.update(wf)
            if wf.status.phase in DONE:
                try:
                    watch.send(True)
                except StopIteration:
                    pass
                return workflow
            workflow = inflate_nodes(next(watch))
    finally:
        watch.close()


def pod_names(kube: Any, workflow_name: str, namespace: str = NAMESPACE) -> dict[str, str]:
    """node id -> pod name of the run's pods that still exist. Pods carry the node id in the
    workflows.argoproj.io/node-id annotation (stable across Argo's pod-naming versions)."""
    pods = kube.call("listing the run's pods", kube.core.list_namespaced_pod, namespace,
                     label_selector=f"workflows.argoproj.io/workflow={workflow_name}")
    by_node = {}
    for pod in pods.items:
        labels = pod.metadata.labels or {}
        if labels.get("workflows.argoproj.io/workflow") != workflow_name:
            continue  # selectors are filtered again here (not every API server stand-in honours them)
        node_id = (pod.metadata.annotations or {}).get("workflows.argoproj.io/node-id")
        if node_id:
            by_node[node_id] = pod.metadata.name
    return by_node


def pod_nodes_by_step(wf: Workflow, steps: list[str]) -> dict[str, list[NodeStatus]]:
    """The Pod nodes (one per attempt) of each step, oldest first: a fan-out child's pods are its own
    step's ("analyze(1:first:5,last:8)"), any other pod its DAG task's."""
    found: dict[str, list[NodeStatus]] = {s: [] for s in steps}
    for node in sorted(wf.status.nodes.values(), key=lambda n: n.started_at):
        if node.type != "Pod":
            continue
        for step in (step_of(node.name, wf.name), task_of(node.name, wf.name)):
            if step in found:
                found[step].append(node)
                break
    return found


POD_GONE = ("(log not available: the pod is gone. Argo deletes a Workflow's pods when it succeeds "
            "(podGC OnWorkflowSuccess) and after a node is lost; bioinfra reads each pod's log as soon as its "
            "node finishes, so this one ended together with the Workflow or while nobody was following the run)\n")


class LogKeeper:
    """Each step's pod logs, read as soon as its node finishes, and written to <log_dir>/<step>.log.

    The Workflows ask Argo to delete their pods once they succeed (podGC OnWorkflowSuccess: Argo
    v3.7.18 workflow/controller/operator.go queues every pod of the Workflow for deletion right after
    the update that completes it, `queuePodsForCleanup`; pod/cleanup.go `determinePodCleanupAction`
    deletes on OnWorkflowSuccess + Succeeded; docs/workflow-controller-configmap.md: 5 s later by
    default). Reading the logs only at the end lost them; so the follow loop calls `update` with each
    status it sees and a log is on disk once its node is done. A pod already gone is said in the file,
    never an error."""

    def __init__(self, kube: Any, log_dir: Path, namespace: str = NAMESPACE):
        self.kube, self.log_dir, self.namespace = kube, log_dir, namespace
        self.texts: dict[str, tuple[str, str]] = {}  # node id -> (pod name, its log)

    def update(self, workflow: Union[dict[str, Any], Workflow], *, final: bool = False) -> dict[str, Path]:
        """Read the log of each Pod node that finished since the last call (with `final`, of every Pod
        node left, and say so for a pod that is gone); rewrite the log of each step that gained one."""
        wf = as_workflow(workflow)
        by_step = pod_nodes_by_step(wf, _log_steps(wf))
        wanted = [n for nodes in by_step.values() for n in nodes
                  if n.id not in self.texts and (final or n.phase in DONE)]
        if not wanted:
            return self._write(by_step) if final else {}
        pods = pod_names(self.kube, wf.name, self.namespace)
        changed = set()
        for node in wanted:
            pod = pods.get(node.id)
            if pod is None:
                self.texts[node.id] = ("(deleted)", POD_GONE)
            else:
                try:
                    self.texts[node.id] = (pod, self.kube.pod_log(self.namespace, pod))
                except Exception as exc:  # noqa: BLE001 - e.g. deleted between the list and the read
                    if not final:
                        continue  # tried again with the next status
                    self.texts[node.id] = (pod, f"(log not available: {exc})\n")
            changed.add(node.id)
        return self._write({s: nodes for s, nodes in by_step.items()
                            if final or any(n.id in changed for n in nodes)})

    def _write(self, by_step: dict[str, list[NodeStatus]]) -> dict[str, Path]:

        self.log_dir.mkdir(parents=True, exist_ok=True)
        written = {}
        for step, nodes in by_step.items():
            parts = []
            for i, node in enumerate((n for n in nodes if n.id in self.texts), 1):
                pod, text = self.texts[node.id]
                parts.append(f"===== attempt {i}: pod {pod}, {node.phase}"
                             + (f": {node.message}" if node.message else "") + " =====\n" + text)
            if parts:
                path = self.log_dir / f"{safe_file_name(step)}.log"
                path.write_text("\n".join(parts))
                written[step] = path
        return written


def _log_steps(workflow: Union[dict[str, Any], Workflow]) -> list[str]:
    """The steps that run pods, each with a log of its own: the DAG's tasks, a fan-out's children."""
    states = task_states(workflow, dag_tasks(workflow), Path("logs"), 0)
    return [name for name, state in states.items() if not state.children]


def save_logs(kube: Any, workflow: Union[dict[str, Any], Workflow], log_dir: Path, namespace: str = NAMESPACE,
              keeper: Optional[LogKeeper] = None) -> dict[str, Path]:
    """Every attempt's log of every step into <log_dir>/<step>.log (attempts in order, headed): the
    logs `keeper` read while following the run, the others read now (or said to be gone)."""
    keeper = keeper or LogKeeper(kube, log_dir, namespace)
    return keeper.update(workflow, final=True)


def fetch_results(store: Any, run_id: str, output: Path, progress: Optional[Callable[[int], None]] = None) -> list[Path]:
    return store.download(f"runs/{run_id}/", output, progress)


# -- runs list | status | logs | cancel | fetch -----------------------------------------------------


@dataclass
class RunSummary:
    run_id: str
    phase: str
    sample: str
    started: Optional[str]
    finished: Optional[str]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def list_runs(kube: Any) -> list[RunSummary]:
    key, value = MANAGED_LABEL
    found = []
    for wf in kube.list_workflows(NAMESPACE, label_selector=f"{key}={value}"):
        run = as_workflow(wf)
        labels = run.labels
        if labels.get(key) != value:
            continue
        found.append(RunSummary(run.name, run.status.phase or "Pending",
                                labels.get("bioinfra.io/sample", ""), run.status.started_at or None,
                                run.status.finished_at or None, run.status.message))
    return sorted(found, key=lambda r: r.started or "", reverse=True)


def get_run(kube: Any, run_id: str) -> dict[str, Any]:
    from bioinfra.adaptors.kube import KubeApiError
    from bioinfra.core.argo_nodes import inflate_nodes

    try:
        return inflate_nodes(kube.get_workflow(NAMESPACE, run_id))
    except KubeApiError as exc:
        if exc.status == 404:
            raise InputError(f"no run {run_id} on the cluster ({NAMESPACE} namespace)",
                             hint="`bioinfra runs list` shows the runs there; finished ones are removed after a day"
                             ) from None
        raise


def run_status(kube: Any, run_id: str, retries: int) -> tuple[dict[str, Any], dict[str, TaskState]]:
    workflow = get_run(kube, run_id)
    return workflow, task_states(workflow, dag_tasks(workflow), Path("logs"), retries)


def run_logs(kube: Any, run_id: str, step: Optional[str]) -> Iterator[tuple[str, str]]:
    """(step, text) for every attempt of every step (or one step); a pod already gone (Argo deletes a
    succeeded run's pods) is said, with where bioinfra saved its log while following the run."""
    workflow = get_run(kube, run_id)
    tasks = dag_tasks(workflow)
    if step is not None and step not in tasks:
        raise InputError(f"run {run_id} has no step '{step}'", hint=f"steps: {', '.join(tasks)}")
    wf = as_workflow(workflow)
    pods = pod_names(kube, wf.name, NAMESPACE)
    steps = [s for s in _log_steps(workflow) if step is None or s == step or task_of(f"{wf.name}.{s}", wf.name) == step]
    for name, nodes in pod_nodes_by_step(wf, steps).items():
        for node in nodes:
            pod = pods.get(node.id)
            if pod is None:
                yield (f"{name} (pod deleted, {node.phase})",
                       f"(the pod is gone: Argo deletes a succeeded run's pods; `bioinfra run` saved its log as "
                       f"<output>/logs/{safe_file_name(name)}.log while following the run, `bioinfra runs fetch "
                       f"{run_id}` cannot read it any more)\n")
                continue
            yield f"{name} (pod {pod}, {node.phase})", kube.pod_log(NAMESPACE, pod)


def cancel_run(kube: Any, run_id: str) -> str:
    """Terminate: Argo stops every running pod now and marks the run Failed (`argo terminate`)."""
    workflow = get_run(kube, run_id)
    phase = as_workflow(workflow).status.phase or None
    if phase in DONE:
        return f"run {run_id} already ended ({phase}); nothing to cancel"
    kube.patch_workflow(NAMESPACE, run_id, {"spec": {"shutdown": "Terminate"}})
    return f"run {run_id}: cancel requested; its pods are being stopped"
