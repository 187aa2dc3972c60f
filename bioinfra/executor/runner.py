"""The local executor: runs an Argo Workflow's DAG on this machine.

Semantics follow Argo where our Workflows rely on them: a task starts when its `depends`
expression can be decided; `when: false` makes it Skipped, an unmet `depends` Omitted; retries
follow `retryStrategy`; after a failure no new task starts (failFast, as Argo's docs describe it;
`failFast: false` or continueOn lets the rest go on) while running ones finish. The run's phase is
the DAG's as Argo decides it from its target tasks (bioinfra.executor.phase: assessDAGPhase in
workflow/controller/dag.go), not "did anything fail". Independent tasks run in parallel within a CPU budget (the sum of their CPU requests,
each capped at the budget), so two 1-CPU FastQC steps share a 2-core machine and an 8-thread
aligner takes all of it.

`resume=True` skips a task whose completion marker lists outputs that are all still present with
the recorded size and SHA-256, provided nothing upstream of it ran again in this invocation.
"""

from __future__ import annotations

import json
import queue
import re
import shlex
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bioinfra.errors import WorkflowSpecError
from bioinfra.executor.expressions import (
    ABSENT,
    ITEM,
    evaluate_depends,
    evaluate_retry_expression,
    evaluate_when,
    is_absent_reference,
    substitute,
)
from bioinfra.executor.phase import assess_dag_phase, group_phase
from bioinfra.executor.runtime import Runtime, StepCommand
from bioinfra.executor.workflow import (
    Task,
    Template,
    Workflow,
    aggregate_outputs,
    container_to_host,
    deadline_seconds,
    expand_fan_out,
    node_scope,
    topological_order,
)
from bioinfra.files import is_disk_full, sha256_file, write_json_atomic

PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, OMITTED, ERROR = (
    "Pending", "Running", "Succeeded", "Failed", "Skipped", "Omitted", "Error",
)
TERMINAL = {SUCCEEDED, FAILED, SKIPPED, OMITTED, ERROR}
# The kubelet's message for a pod past its activeDeadlineSeconds (the node ends Failed with it), and
# the controller's for the steps a Workflow past its own deadline stops (operator.go).
POD_DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
WORKFLOW_DEADLINE_MESSAGE = "Step exceeded its deadline"
MAX_RESULT_BYTES = 256 << 10  # outputs.result: at most this much of a step's output is kept

# A failed attempt on a disk with less room than this, or whose log says so, failed for lack of
# space: retrying cannot help (each retry would fail the same way after redoing the work), so the
# step is not retried and no new step starts (issue #15).
MIN_FREE_BYTES = 1 << 20
_DISK_FULL_TEXTS = (b"No space left on device", b"Disk quota exceeded")  # strerror(ENOSPC), strerror(EDQUOT)


@dataclass
class TaskState:
    name: str
    template: str
    log: Path
    phase: str = PENDING
    cached: bool = False
    attempts: int = 0
    max_attempts: int = 1
    exit_code: int | None = None
    started: float | None = None
    finished: float | None = None
    message: str = ""
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    output_parameters: dict[str, str] = field(default_factory=dict)
    group: str | None = None  # a fan-out child: the task it belongs to
    children: int = 0  # a fan-out task: how many items it expanded to
    result: str | None = None  # outputs.result: what the step printed (kept when a tag reads it)

    @property
    def wall_seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return round(self.finished - self.started, 3)


@dataclass
class RunResult:
    phase: str
    tasks: dict[str, TaskState]
    interrupted: bool = False
    disk_full: str | None = None  # why the run stopped for lack of disk space, if it did
    # The Workflow's phase as Argo names it: Succeeded, Failed or Error (an Error target: a reference
    # that could not be resolved). `phase` is Succeeded or Failed, an Error counting as Failed.
    argo_phase: str = ""

    @property
    def failed_tasks(self) -> list[TaskState]:
        """Failed nodes, and Error ones (a reference Argo could not resolve when the node was due)."""
        return [t for t in self.tasks.values() if t.phase in (FAILED, ERROR)]

    @property
    def failed_steps(self) -> list[TaskState]:
        """Failed steps that ran (a failed fan-out task is listed through its failed children)."""
        return [t for t in self.failed_tasks if not t.children]


class Reporter(Protocol):
    def started(self, tasks: list[TaskState]) -> None: ...

    def changed(self, task: TaskState) -> None: ...

    def finished(self, result: RunResult) -> None: ...


class NullReporter:
    def started(self, tasks: list[TaskState]) -> None:
        pass

    def changed(self, task: TaskState) -> None:
        pass

    def finished(self, result: RunResult) -> None:
        pass


@dataclass
class _Resolved:
    """A task with all tags substituted: what to run and what it must leave behind."""

    command: StepCommand
    script_path: Path | None
    source: str | None
    outputs: dict[str, Path]  # workspace-relative name -> host path
    output_parameters: dict[str, Path]
    max_attempts: int
    deadline: float | None = None  # activeDeadlineSeconds of each attempt
    defaults: dict[str, str] = field(default_factory=dict)  # output parameters' valueFrom.default
    values: dict[str, str] = field(default_factory=dict)  # output parameters given as `value` (substituted)


class LocalExecutor:
    def __init__(
        self,
        workflow: Workflow,
        *,
        volume_roots: dict[str, Path],
        state_dir: Path,
        log_dir: Path,
        runtime: Runtime,
        max_cpus: float,
        resume: bool = False,
        reporter: Reporter | None = None,
        sleep: Callable[[float], bool] | None = None,
        max_parallel: int | None = None,
    ) -> None:
        missing = [v for v in workflow.volumes if v not in volume_roots]
        if missing:
            raise WorkflowSpecError(f"no local folder for volume(s): {', '.join(missing)}")
        self.workflow = workflow
        self.volume_roots = volume_roots
        self.state_dir = state_dir
        self.log_dir = log_dir
        self.runtime = runtime
        self.max_cpus = max(float(max_cpus), 1.0)
        self.resume = resume
        self.reporter = reporter or NullReporter()
        self.fail_fast = workflow.fail_fast
        # --max-parallel overrides the Workflow's own spec.parallelism when given.
        self.parallelism = max_parallel or workflow.parallelism
        self._stop = threading.Event()
        self._deadline_hit = threading.Event()  # spec.activeDeadlineSeconds passed
        self._sleep = sleep or (lambda seconds: self._stop.wait(seconds))
        self.disk_full: str | None = None  # set by the first step that failed for lack of space
        topological_order(workflow.tasks)  # raises on a cycle before anything runs

    def abort(self) -> None:
        """Stop the run from another thread, as the Workflow's deadline does: no step starts any
        more, running ones are terminated, the run ends failed (used when the whole read of an input,
        beside the first steps, finds it bad: bioinfra.engine.rundir.execute, #19)."""
        self._stop.set()
        self.runtime.terminate_all()

    # -- variables and resolution ------------------------------------------------------------

    def _variables(self) -> dict[str, str]:
        """The Workflow's own tags; `run` adds each task's output parameters as the task is collected."""
        variables = dict(self.workflow.globals)
        variables.update({f"workflow.parameters.{k}": v for k, v in self.workflow.parameters.items()})
        variables["workflow.name"] = self.workflow.name
        # The entrypoint's inputs: its tasks' {{inputs.parameters.x}} (a step template's own inputs
        # shadow these when it runs).
        variables.update({f"inputs.parameters.{k}": v for k, v in self.workflow.inputs.items()})
        return variables

    def _resolve(self, task: Task, template: Template, variables: dict[str, str]) -> _Resolved:
        where = f"task '{task.name}'"
        inputs: dict[str, str] = {}
        for pname, default in template.input_parameters.items():
            # An argument that only names a Skipped/Omitted node's output with no default is not
            # supplied: the input's default applies, else the node Errors (dag.go
            # resolveDependencyReferences, markAbsentOptionalArgs).
            if pname in task.arguments and not is_absent_reference(task.arguments[pname], variables):
                inputs[pname] = substitute(task.arguments[pname], variables, where=where)
            elif default is not None:
                inputs[pname] = default
            elif pname in task.arguments:
                raise WorkflowSpecError(
                    f"{where}: input parameter '{pname}' is {task.arguments[pname].strip()}, an absent optional "
                    "(skipped/omitted node output with no default), and it has no default"
                )
            else:
                raise WorkflowSpecError(f"{where}: template '{template.name}' needs parameter '{pname}'")
        scope = {**variables, **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        scope["pod.name"] = f"{self.workflow.name}-{safe_file_name(task.name)}"  # {{pod.name}}: this step's pod
        scope.update({f"inputs.parameters.{k}": v for k, v in inputs.items()})

        def sub(text: str) -> str:
            return substitute(text, scope, where=where)

        mounts = template.volume_mounts
        if not template.working_dir:
            raise WorkflowSpecError(f"template '{template.name}' needs a workingDir on a volume to run locally")
        cwd = container_to_host(sub(template.working_dir), mounts, self.volume_roots)
        script_path = None
        source = None
        # A script runs as command + args + the source's file, and only a non-empty source is
        # appended (operator.go executeScript: mainCtr.Args = append(mainCtr.Args, script path)).
        argv = [sub(c) for c in template.command] + [sub(a) for a in template.args]
        if template.kind == "script" and template.source:
            source = sub(template.source)
            script_path = self.state_dir / "scripts" / f"{safe_file_name(task.name)}.sh"
            argv.append(str(script_path))
        # No command and no args: the pod runs its image's entrypoint; the runtime decides (a container
        # runtime runs the image as it is; a native one has nothing to run and the step fails).
        outputs = {rel: cwd / rel for rel in (sub(o) for o in template.outputs)}
        params = {
            p.name: container_to_host(sub(p.path), mounts, self.volume_roots) for p in template.output_parameters
            if p.value is None
        }
        values = {p.name: sub(p.value) for p in template.output_parameters if p.value is not None}
        command = StepCommand(
            task=task.name,
            argv=argv,
            env={k: sub(v) for k, v in template.env.items()},
            cwd=Path(cwd),
            cpus=min(template.cpu, self.max_cpus),
            image=sub(template.image),
            container_cwd=sub(template.working_dir),
            memory_bytes=template.memory_bytes,
            unset_env=template.unset_env,
        )
        deadline = deadline_seconds(sub(template.deadline), where) if template.deadline else None
        attempts = template.retry.limit + 1 if template.retry.retries_failures() else 1
        return _Resolved(command, script_path, source, outputs, params, attempts, deadline,
                         {p.name: p.default for p in template.output_parameters if p.default is not None}, values)

    # -- resume ------------------------------------------------------------------------------

    def _marker(self, task: str) -> Path:
        return self.state_dir / "steps" / f"{safe_file_name(task)}.json"

    def _cached(self, task: Task, resolved: _Resolved, ran_now: set[str]) -> dict[str, Any] | None:
        if not self.resume or any(up in ran_now for up in task.upstream) or not resolved.outputs:
            return None
        try:
            marker = json.loads(self._marker(task.name).read_text())
        except (OSError, ValueError):
            return None
        if marker.get("phase") != SUCCEEDED or set(marker.get("outputs", {})) != set(resolved.outputs):
            return None
        for rel, path in resolved.outputs.items():
            recorded = marker["outputs"][rel]
            if not path.is_file() or path.stat().st_size != recorded["bytes"] or sha256_file(path) != recorded["sha256"]:
                return None
        return marker

    # -- one task ----------------------------------------------------------------------------

    def _run_task(self, state: TaskState, resolved: _Resolved) -> None:
        marker = self._marker(state.name)
        marker.unlink(missing_ok=True)  # a re-run step is not done until it says so again
        if resolved.script_path is not None:
            resolved.script_path.parent.mkdir(parents=True, exist_ok=True)
            resolved.script_path.write_text(resolved.source or "")
        state.log.parent.mkdir(parents=True, exist_ok=True)
        state.max_attempts = resolved.max_attempts
        template = self.workflow.templates[state.template]
        for attempt in range(1, resolved.max_attempts + 1):
            state.attempts = attempt
            state.message = ""
            self.reporter.changed(state)
            with open(state.log, "ab") as log:
                log.write(
                    f"=== bioinfra: step '{state.name}' attempt {attempt}/{resolved.max_attempts} "
                    f"({self.runtime.name}) at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n"
                    f"=== command: {shlex.join(resolved.command.argv)}\n=== cwd: {resolved.command.cwd}\n".encode()
                )
                log.flush()
                attempt_start = log.tell()
                timer, expired = self._deadline_timer(resolved)
                try:
                    code = self.runtime.run(resolved.command, log)
                finally:
                    if timer is not None:
                        timer.cancel()
                if self.workflow.captures_result:
                    state.result = _printed(state.log, attempt_start)
                problem = self._check_outputs(state, resolved) if code == 0 else ""
                if expired.is_set():
                    problem = POD_DEADLINE_MESSAGE
                full = self._disk_full(state.log, attempt_start) if code != 0 else None
                if full:
                    problem = f"disk full: {full}; not retried"
                try:
                    log.write(f"=== exit {code}{'; ' + problem if problem else ''}\n".encode())
                    log.flush()
                except OSError as exc:
                    if not is_disk_full(exc):
                        raise
            state.exit_code = code
            if full:
                self.disk_full = full
                state.message = problem
                break
            if code == 0 and not problem:
                write_json_atomic(
                    marker,
                    {
                        "phase": SUCCEEDED,
                        "task": state.name,
                        "exit_code": 0,
                        "attempts": attempt,
                        "outputs": state.outputs,
                        "output_parameters": state.output_parameters,
                    },
                )
                state.phase = SUCCEEDED
                return
            state.message = problem or f"exit {code}"
            if self._deadline_hit.is_set():
                state.message = WORKFLOW_DEADLINE_MESSAGE
                break
            if self._stop.is_set():
                state.message = "interrupted"
                break
            if attempt < resolved.max_attempts and template.retry.expression:
                # retryStrategy.expression: retry only while it holds (operator.go processNodeRetries).
                try:
                    again = evaluate_retry_expression(
                        template.retry.expression, attempt - 1, code, FAILED, time.time() - (state.started or time.time()),
                        state.message)
                except WorkflowSpecError as exc:
                    state.message = f"{state.message}; {exc.message}"
                    again = False
                if not again:
                    break
            if attempt < resolved.max_attempts:
                delay = template.retry.delay(attempt)
                state.message = f"{state.message}; retrying in {delay:g}s"
                self.reporter.changed(state)
                if self._sleep(delay):  # stop requested during the backoff
                    state.message = WORKFLOW_DEADLINE_MESSAGE if self._deadline_hit.is_set() else "interrupted"
                    break
        state.phase = FAILED

    def _deadline_timer(self, resolved: _Resolved) -> tuple[threading.Timer | None, threading.Event]:
        """activeDeadlineSeconds of one attempt: after it, the step is stopped (the kubelet kills a
        pod past its deadline; the node ends Failed with POD_DEADLINE_MESSAGE)."""
        expired = threading.Event()
        if resolved.deadline is None:
            return None, expired

        def expire() -> None:
            expired.set()
            terminate_step(self.runtime, resolved.command)

        timer = threading.Timer(resolved.deadline, expire)
        timer.daemon = True
        timer.start()
        return timer, expired

    def _disk_full(self, log: Path, attempt_start: int) -> str | None:
        """Why a failed attempt failed for lack of space, or None: a folder the run writes to (its
        logs, each volume) has less than MIN_FREE_BYTES free, or the attempt's log says so."""
        for root in (self.log_dir, *self.volume_roots.values()):
            try:
                free = shutil.disk_usage(root).free
            except OSError:
                continue
            if free < MIN_FREE_BYTES:
                return f"{root} has {free:,} bytes free"
        try:
            with open(log, "rb") as fh:
                size = fh.seek(0, 2)
                fh.seek(max(attempt_start, size - (256 << 10)))
                said = fh.read()
        except OSError:
            return None
        for text in _DISK_FULL_TEXTS:
            if text in said:
                return f"the step said '{text.decode()}' (see {log})"
        return None

    def _check_outputs(self, state: TaskState, resolved: _Resolved) -> str:
        """After exit 0: every declared output and output parameter file must exist."""
        params: dict[str, str] = dict(resolved.values)
        for name, path in resolved.output_parameters.items():
            try:
                params[name] = path.read_text().strip()
            except OSError:
                if name in resolved.defaults:  # valueFrom.default: the value when the file is missing
                    params[name] = resolved.defaults[name]
                    continue
                return f"output parameter '{name}' was not written ({path})"
        outputs: dict[str, dict[str, Any]] = {}
        for rel, path in resolved.outputs.items():
            if not path.is_file():
                return f"declared output {rel} is missing"
            outputs[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
        state.output_parameters = params
        state.outputs = outputs
        return ""

    # -- the DAG -----------------------------------------------------------------------------

    def run(self) -> RunResult:
        try:
            return self._run()
        finally:
            # What a runtime keeps for the whole run (the docker runtime's containers) ends with the
            # run, whatever its outcome: succeeded, failed, deadline, Ctrl-C.
            close = getattr(self.runtime, "close", None)
            if callable(close):
                close()

    def _run(self) -> RunResult:
        if self.workflow.tree:  # steps entrypoint or nested steps/dag templates: Argo's node tree
            from bioinfra.executor.tree import TreeRun

            return TreeRun(self).run()
        wf = self.workflow
        states = {
            t.name: TaskState(name=t.name, template=t.template, log=self._log_path(t.name)) for t in wf.tasks
        }
        self.reporter.started(list(states.values()))
        done: queue.Queue[str] = queue.Queue()
        free_cpus = self.max_cpus
        running: dict[str, float] = {}
        ran_now: set[str] = set()
        resolved_tasks: dict[str, _Resolved] = {}
        waited: set[str] = set()
        # Tags known so far: grows as tasks finish (each task's output parameters once), so a pass
        # never rebuilds it: with thousands of fan-out children that rebuild made a run cubic.
        variables = self._variables()
        # Tasks still PENDING, in scheduling order: the DAG's, then each fan-out's children as they
        # are expanded. A task that leaves PENDING is dropped the next time a pass reaches it.
        pending: dict[str, Task] = {t.name: t for t in wf.tasks}
        # No task needs less than this: once fewer CPUs are free, a pass can stop looking.
        smallest_need = min((min(t.cpu, self.max_cpus) for t in wf.templates.values() if hasattr(t, "cpu")),
                            default=0.0)
        groups: dict[str, list[str]] = {}  # fan-out task -> its children
        # Per fan-out: each child's (phase, attempts) as last counted, and the counts by phase, so
        # settling a group after one child changed is O(1), not O(children).
        group_seen: dict[str, dict[str, tuple[str, int]]] = {}
        group_counts: dict[str, dict[str, int]] = {}
        tolerated: set[str] = set()  # continueOn.failed: their failure neither stops others nor fails the run
        stop_scheduling = False
        interrupted = False
        # Threads are made on demand; the CPU budget (and parallelism) is what bounds concurrency.
        pool = ThreadPoolExecutor(max_workers=256, thread_name_prefix="bioinfra-step")

        def finish(state: TaskState, phase: str, message: str = "") -> None:
            state.phase = phase
            variables[f"tasks.{state.name}.status"] = phase  # every terminal phase, as buildLocalScope
            state.message = message
            state.started = state.started or time.time()
            state.finished = time.time()
            self.reporter.changed(state)

        def work(state: TaskState, resolved: _Resolved) -> None:
            try:
                self._run_task(state, resolved)
            except Exception as exc:  # noqa: BLE001 - reported as the step's failure, never lost
                state.phase = FAILED
                state.message = f"{type(exc).__name__}: {exc}"
                if is_disk_full(exc):  # e.g. its log or marker could not be written
                    self.disk_full = self.disk_full or f"{exc.strerror} ({getattr(exc, 'filename', '') or 'a log or marker'})"
                    state.message = f"disk full: {self.disk_full}"
            finally:
                state.finished = time.time()
                done.put(state.name)

        def publish(state: TaskState) -> None:
            variables.update(node_scope(f"tasks.{state.name}", state.phase, state.output_parameters, state.result,
                                        state.exit_code))

        def publish_absent(state: TaskState) -> None:
            """A Skipped/Omitted node's outputs: each parameter's valueFrom.default, else absent
            (operator.go getTemplateOutputsFromScope; dag.go resolveDependencyReferences)."""
            template = wf.templates.get(state.template)
            if template is None:
                return
            prefix = f"tasks.{state.name}.outputs"
            for p in template.output_parameters:
                variables.setdefault(f"{prefix}.parameters.{p.name}", p.default if p.default is not None else ABSENT)
            if wf.captures_result:
                variables.setdefault(f"{prefix}.result", ABSENT)

        def publish_group(parent: str) -> None:
            """A fan-out's outputs once it is done (workflow.aggregate_outputs)."""
            variables.update(aggregate_outputs(f"tasks.{parent}", [
                (states[c].output_parameters, states[c].result) for c in groups[parent] if states[c].phase == SUCCEEDED]))

        def settle_group(parent: str, child: str | None = None) -> None:
            """A fan-out task's phase from its children's (Argo's TaskGroup node): after `child`
            changed, or recounting every child when none is named."""
            seen, counts = group_seen[parent], group_counts[parent]
            state = states[parent]
            for name in (child,) if child is not None else groups[parent]:
                now = states[name]
                phase, attempts = seen[name]
                counts[phase] -= 1
                counts[now.phase] = counts.get(now.phase, 0) + 1
                state.attempts += now.attempts - attempts
                seen[name] = (now.phase, now.attempts)
            total = len(groups[parent])
            summary = ", ".join(f"{n} {phase.lower()}" for phase, n in sorted(counts.items()) if n)
            if any(n for phase, n in counts.items() if phase not in TERMINAL):
                state.message = f"{total} items: {summary}"
                self.reporter.changed(state)
                return
            # The TaskGroup's phase (dag.go executeDAGTask, groupPhase): Succeeded unless a child
            # Failed or Errored (then the last such child's). All children Skipped is Succeeded.
            phase = group_phase([states[c].phase for c in groups[parent]]) or SUCCEEDED
            if phase in (FAILED, ERROR):
                failed = [c for c in groups[parent] if states[c].phase in (FAILED, ERROR)]  # once: the group is done
                finish(state, phase, f"{len(failed)} of {total} failed: {', '.join(failed[:5])}"
                       + (", ..." if len(failed) > 5 else ""))
            else:
                finish(state, SUCCEEDED, f"{total} items: {summary}")
            publish_group(parent)

        def expand(task: Task, variables: dict[str, str]) -> None:
            where = f"task '{task.name}'"
            state = states[task.name]
            try:
                children = expand_fan_out(task, variables, where)
            except WorkflowSpecError as exc:  # dag.go: the task's node is an Error; the others go on
                finish(state, ERROR, exc.message)
                return
            if not children:  # dag.go executeDAGTask: "DAG task with empty withParams list should be skipped"
                finish(state, SKIPPED, "Skipped, empty params")
                publish_absent(state)
                return
            groups[task.name] = [c.name for c in children]
            group_seen[task.name] = {c.name: (PENDING, 0) for c in children}
            group_counts[task.name] = {PENDING: len(children)}
            state.attempts = 0
            state.phase = RUNNING
            state.started = time.time()
            state.children = len(children)
            if task.continue_on_failed:
                tolerated.add(task.name)
            for child in children:
                states[child.name] = TaskState(
                    name=child.name, template=child.template, log=self._log_path(child.name), group=task.name
                )
                if task.continue_on_failed:
                    tolerated.add(child.name)
                pending[child.name] = child
            settle_group(task.name)  # the parent first: reporters learn the group's size from it
            for child in children:
                self.reporter.changed(states[child.name])

        def errored(task: Task, state: TaskState, message: str) -> None:
            finish(state, ERROR, message)
            if task.group:
                settle_group(task.group, task.name)

        deadline_timer = None
        if wf.deadline_seconds is not None:
            def deadline_passed() -> None:
                self._deadline_hit.set()
                self._stop.set()
                self.runtime.terminate_all()

            deadline_timer = threading.Timer(wf.deadline_seconds, deadline_passed)
            deadline_timer.daemon = True
            deadline_timer.start()

        try:
            while True:
                progressed = True
                while progressed and not stop_scheduling and not self._deadline_hit.is_set() and not self._stop.is_set():
                    progressed = False
                    for task in list(pending.values()):
                        state = states[task.name]
                        if state.phase != PENDING:
                            del pending[task.name]
                            continue
                        # A step's thread sets its phase before the main loop collects it: until
                        # then (still in `running`) its output parameters are not in `variables`.
                        if any(states[u].phase not in TERMINAL or u in running for u in task.upstream):
                            continue
                        if task.depends and not evaluate_depends(
                            task.depends, {u: states[u].phase for u in task.upstream},
                            {u: [states[c].phase for c in groups[u]] for u in task.upstream if u in groups},
                        ):
                            finish(state, OMITTED, "its depends condition is false")
                            publish_absent(state)
                            progressed = True
                            continue
                        # A fan-out's `when` may use {{item}}: each child evaluates its own.
                        if task.when and not task.fans_out:
                            try:
                                condition = substitute(task.when, with_item(task, variables),
                                                       where=f"task '{task.name}' when")
                                proceed = evaluate_when(condition)
                            except WorkflowSpecError as exc:  # dag.go: the node is an Error
                                errored(task, state, exc.message)
                                progressed = True
                                continue
                            if not proceed:
                                finish(state, SKIPPED, f"when '{condition}' evaluated false")
                                publish_absent(state)
                                progressed = True
                                if task.group:
                                    settle_group(task.group, task.name)
                                continue
                        if task.fans_out:
                            expand(task, variables)
                            progressed = True
                            continue
                        if self.parallelism is not None and len(running) >= self.parallelism:
                            break
                        # Resolved once: everything it depends on has finished, so it cannot change.
                        if task.name not in resolved_tasks:
                            try:
                                resolved_tasks[task.name] = self._resolve(task, wf.templates[task.template],
                                                                          with_item(task, variables))
                            except WorkflowSpecError as exc:
                                # A reference Argo cannot resolve when the task is due: its node is an
                                # Error (dag.go executeDAGTask, resolveDependencyReferences), the run goes on.
                                errored(task, state, exc.message)
                                progressed = True
                                continue
                        resolved = resolved_tasks[task.name]
                        marker = self._cached(task, resolved, ran_now) if task.name not in waited else None
                        if marker is not None:
                            state.cached = True
                            state.attempts = 0
                            state.exit_code = 0
                            state.outputs = marker["outputs"]
                            state.output_parameters = marker.get("output_parameters", {})
                            publish(state)
                            finish(state, SUCCEEDED, "outputs complete from an earlier run; skipped")
                            if task.group:
                                settle_group(task.group, task.name)
                            progressed = True
                            continue
                        need = resolved.command.cpus
                        if need > free_cpus + 1e-9:
                            waited.add(task.name)  # checked for resume already; now only waits for CPUs
                            if free_cpus + 1e-9 < smallest_need:
                                break  # nothing fits: the next finished step frees CPUs and starts a pass
                            continue  # a smaller ready task may still fit
                        free_cpus -= need
                        running[task.name] = need
                        ran_now.add(task.name)
                        if task.group:  # a later task that depends on the fan-out must not trust its cache
                            ran_now.add(task.group)
                        state.phase = RUNNING
                        state.started = time.time()
                        pool.submit(work, state, resolved)
                        if task.group:
                            settle_group(task.group, task.name)
                        progressed = True
                if not running:
                    break
                name = done.get()
                free_cpus += running.pop(name)
                state = states[name]
                publish(state)
                self.reporter.changed(state)
                if state.group:
                    settle_group(state.group, name)
                # failFast does not stop other tasks from starting: v3.7's executeDAG creates every
                # task whose dependencies are complete before it assesses the DAG, and assessDAGPhase
                # stays Running while any node runs (dag.go); failFast only decides, once nothing
                # runs, whether an unreached target or a failed one settles the phase.
                if self.disk_full:  # whatever failFast says: every new step would fail the same way
                    stop_scheduling = True
        except KeyboardInterrupt:
            interrupted = True
            self._stop.set()
            self.runtime.terminate_all()
            while running:
                running.pop(done.get())
        finally:
            pool.shutdown(wait=True)
            if deadline_timer is not None:
                deadline_timer.cancel()

        culprit = next((s.name for s in states.values() if s.phase in (FAILED, ERROR) and s.name not in tolerated), None)
        # Tasks that never left PENDING: Argo would have made no node for them.
        never_created = {name for name, s in states.items() if s.phase == PENDING}
        for state in list(states.values()):
            if state.phase == PENDING:
                reason = "interrupted" if interrupted else f"not started: step '{culprit}' failed"
                if self.disk_full and not interrupted:
                    reason = "not started: the disk is full"
                if self._deadline_hit.is_set() and not interrupted:
                    reason = f"not started: {WORKFLOW_DEADLINE_MESSAGE}"
                finish(state, OMITTED, reason)
        for parent in groups:
            if states[parent].phase == RUNNING:
                settle_group(parent)
        dag_phase = assess_dag_phase(
            {t.name: t.upstream for t in wf.tasks},
            {name: (None if name in never_created else s.phase) for name, s in states.items()},
            groups,
            wf.targets,
            fail_fast=self.fail_fast,
            continues_on=lambda task, phase: wf.task(task).continue_on_failed,
        )
        # "Running" at the end: a target was never reached because failFast stopped scheduling
        # (Argo's docs: the DAG is then marked failed once the running tasks are done).
        phase = SUCCEEDED if dag_phase == SUCCEEDED and not (interrupted or self.disk_full) else FAILED
        argo_phase = phase
        if dag_phase == ERROR and not (interrupted or self.disk_full or self._deadline_hit.is_set()):
            argo_phase = ERROR  # assessDAGPhase: an Error target makes the DAG, and the Workflow, Error
        result = RunResult(phase=phase, tasks=states, interrupted=interrupted, disk_full=self.disk_full,
                           argo_phase=argo_phase)
        self.reporter.finished(result)
        return result

    def _log_path(self, task: str) -> Path:
        return self.log_dir / f"{safe_file_name(task)}.log"


_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._()+=-]")


def safe_file_name(step: str) -> str:
    """A step's name as a file name: a fan-out child "align(3:sample:S1)" -> "align(3_sample_S1)"."""
    return _UNSAFE_FILE_CHARS.sub("_", step)


def with_item(task: Task, variables: dict[str, str]) -> dict[str, str]:
    """A fan-out child's scope: its item too, when an expression tag of its own may read `item`."""
    if task.group is None or task.item is None:
        return variables
    if not any("{{=" in text for text in (task.when or "", task.with_param or "", *task.arguments.values())):
        return variables
    return {**variables, ITEM: task.item}


def _printed(log: Path, start: int) -> str:
    """What an attempt printed (its log from `start`), as outputs.result: Argo keeps the main
    container's output with the trailing newline cut (locally stdout and stderr are one stream)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(start)
            data = fh.read(MAX_RESULT_BYTES)
    except OSError:
        return ""
    return data.decode(errors="replace").rstrip("\n")


def terminate_step(runtime: Runtime, command: StepCommand) -> None:
    """Stop one running step (its deadline passed) through the runtime's own terminate_step; a
    runtime without one cannot stop a single step and lets it run to its end."""
    stop = getattr(runtime, "terminate_step", None)
    if callable(stop):
        stop(command)


def task_state_dict(state: TaskState) -> dict[str, Any]:
    data = asdict(state)
    data["log"] = str(state.log)
    data["wall_seconds"] = state.wall_seconds
    return data
