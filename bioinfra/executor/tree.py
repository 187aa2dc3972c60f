"""The tree engine: Argo's node tree for Workflows whose entrypoint is a steps template, or whose
templates call steps/dag templates at any depth (the flat DAG runner in runner.py keeps running our
own pipelines' DAG-of-pods Workflows).

Each template call is a node. A script/container call is a pod, run by LocalExecutor's own attempt
loop (retries, logs, deadlines, outputs); a steps or dag call runs its children in threads:

- steps (workflow/controller/steps.go executeSteps / executeStepGroup): the groups run one after
  another, the steps of a group in parallel. A step expands withItems/withParam/withSequence into
  children "name(i:item)" (an empty list: one Skipped node), is Skipped when its `when` is false,
  and is an Error node when a reference cannot be resolved or its `when` cannot be evaluated. Once
  every node of a group is done, a Failed or Error one without continueOn for that phase fails the
  group, and the steps node ends Failed with the group's message; later groups never start.
  Each step's outputs join the scope as steps.<name>.outputs.* (a fanned-out step's as JSON lists,
  processAggregateNodeOutputs) and steps.<name>.status.
- dag (dag.go executeDAG): a task starts when its dependencies are done; `depends` false makes it
  Omitted; fan-outs make a TaskGroup; the DAG's phase is assessDAGPhase's (bioinfra.executor.phase).
- A node's outputs.parameters come from valueFrom.parameter in its own scope (else
  valueFrom.default), as getTemplateOutputsFromScope does.

The Workflow's phase is its entrypoint node's (Succeeded, Failed or Error).
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from bioinfra.errors import WorkflowSpecError
from bioinfra.executor.expressions import (
    ABSENT,
    evaluate_depends,
    evaluate_when,
    is_absent_reference,
    substitute,
)
from bioinfra.executor.phase import assess_dag_phase, leaf_tasks
from bioinfra.executor.runner import with_item
from bioinfra.executor.workflow import (
    Composite,
    Task,
    aggregate_outputs,
    deadline_seconds,
    expand_fan_out,
    is_inline_template,
    node_scope,
)

if TYPE_CHECKING:
    from bioinfra.executor.runner import LocalExecutor, RunResult, TaskState

SUCCEEDED, FAILED, ERROR, SKIPPED, OMITTED, RUNNING, PENDING = (
    "Succeeded", "Failed", "Error", "Skipped", "Omitted", "Running", "Pending",
)
_DONE = {SUCCEEDED, FAILED, ERROR, SKIPPED, OMITTED}


class _Outcome:
    """What a node leaves to its caller's scope."""

    def __init__(self, state: TaskState, outputs: dict[str, str] | None = None) -> None:
        self.state = state
        self.outputs = outputs or {}

    @property
    def phase(self) -> str:
        return self.state.phase


class TreeRun:
    def __init__(self, executor: LocalExecutor) -> None:
        self.ex = executor
        self.wf = executor.workflow
        self.states: dict[str, TaskState] = {}
        self._lock = threading.Lock()
        self._cpu = threading.Condition()
        self._free = executor.max_cpus
        self._running = 0
        self._pool = ThreadPoolExecutor(max_workers=512, thread_name_prefix="bioinfra-node")

    # -- nodes ---------------------------------------------------------------------------------

    def _node(self, display: str, parent: str | None, template: str) -> TaskState:
        from bioinfra.executor.runner import TaskState

        with self._lock:
            name = display
            if name in self.states:
                name = f"{parent}.{display}" if parent else display
                n = 1
                while name in self.states:
                    n += 1
                    name = f"{parent}.{display}#{n}"
            state = TaskState(name=name, template=template, log=self.ex._log_path(name))
            self.states[name] = state
        return state

    def _finish(self, state: TaskState, phase: str, message: str = "") -> None:
        state.phase = phase
        state.message = message
        state.started = state.started or time.time()
        state.finished = time.time()
        self.ex.reporter.changed(state)

    def _globals(self) -> dict[str, str]:
        return {k: v for k, v in self.ex._variables().items() if not k.startswith("inputs.")}

    # -- calling a template ---------------------------------------------------------------------

    def call(self, step: Task, caller_scope: dict[str, str], display: str, parent: str | None) -> _Outcome:
        """Run `step`'s template with its arguments substituted in the caller's scope."""
        composite = self.wf.composites.get(step.template)
        if composite is None:
            return self._pod(step, caller_scope, display, parent)
        state = self._node(display, parent, step.template)
        state.phase = RUNNING
        state.started = time.time()
        self.ex.reporter.changed(state)
        try:
            inputs = self._inputs(step, composite.inputs, caller_scope)
        except WorkflowSpecError as exc:
            self._finish(state, ERROR, exc.message)
            return _Outcome(state)
        if composite.retry is None:
            phase, message, outputs = self._composite_body(composite, inputs, state.name)
            state.output_parameters = outputs
            self._finish(state, phase, message)
            return _Outcome(state, outputs)
        return self._retry_node(composite, inputs, state)

    def _retry_node(self, composite: Composite, inputs: dict[str, str], state: TaskState) -> _Outcome:
        """A Retry node (operator.go executeTemplate + processNodeRetries): each attempt is a child
        "<node>(i)" running the template; another starts while the last one Failed (Error: with
        retryPolicy Always/OnError) and the limit allows, after the backoff. The Retry node ends with
        its last child's phase, message and outputs."""
        policy = composite.retry
        assert policy is not None
        attempt = 0
        while True:
            child = self._node(f"{state.name}({attempt})", state.name, composite.name)
            child.phase = RUNNING
            child.started = time.time()
            self.ex.reporter.changed(child)
            phase, message, outputs = self._composite_body(composite, inputs, child.name)
            child.output_parameters = outputs
            self._finish(child, phase, message)
            retries = phase == FAILED and policy.retries_failures() or \
                phase == ERROR and policy.policy in ("Always", "OnError")
            if not retries or attempt >= policy.limit or self._stopped():
                break
            attempt += 1
            delay = policy.delay(attempt)
            if delay > 0 and self.ex._stop.wait(delay):
                break
        state.output_parameters = outputs
        self._finish(state, phase, message)
        return _Outcome(state, outputs)

    def _composite_body(self, composite: Composite, inputs: dict[str, str], node: str) -> tuple[str, str, dict[str, str]]:
        """Run a steps/dag template's body as node `node`: its phase, message and outputs."""
        scope = {**self._globals(), **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        timer = None
        if composite.deadline:
            try:
                seconds = deadline_seconds(substitute(composite.deadline, scope, where=f"template '{composite.name}'"),
                                           f"template '{composite.name}'")
            except WorkflowSpecError as exc:
                return ERROR, exc.message, {}
            deadline_hit = threading.Event()
            timer = threading.Timer(seconds, deadline_hit.set)
            timer.daemon = True
            timer.start()
        try:
            if composite.kind == "steps":
                phase, message = self._steps(composite, scope, node)
            else:
                phase, message = self._dag(composite, scope, node)
        finally:
            if timer is not None:
                timer.cancel()
        outputs: dict[str, str] = {}
        if phase == SUCCEEDED:
            try:
                outputs = self._outputs(composite, scope)
            except WorkflowSpecError as exc:
                phase, message = ERROR, exc.message
        return phase, message, outputs

    def _inputs(self, step: Task, declared: dict[str, str | None], scope: dict[str, str]) -> dict[str, str]:
        where = f"step '{step.name}'"
        inputs: dict[str, str] = {}
        for pname, default in declared.items():
            if pname in step.arguments and not is_absent_reference(step.arguments[pname], scope):
                inputs[pname] = substitute(step.arguments[pname], scope, where=where)
            elif default is not None:
                # A template's own value/default may use the globals and the inputs before it
                # (SubstituteParams: inputs are read after the globals pass).
                own = {**self._globals(), **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
                inputs[pname] = substitute(default, own, where=f"{where} input '{pname}'")
            elif pname in step.arguments:
                raise WorkflowSpecError(f"{where}: input parameter '{pname}' is an absent optional and has no default")
            else:
                raise WorkflowSpecError(f"{where}: template '{step.template}' needs parameter '{pname}'")
        return inputs

    def _outputs(self, composite: Composite, scope: dict[str, str]) -> dict[str, str]:
        """getTemplateOutputsFromScope: valueFrom.parameter in the node's scope, else its default."""
        out: dict[str, str] = {}
        for name, parameter, default in composite.outputs:
            try:
                if name in composite.output_expressions:
                    out[name] = _output_expression(composite.output_expressions[name], scope,
                                                   f"template '{composite.name}' output '{name}'")
                    continue
                out[name] = substitute(parameter or "", scope, where=f"template '{composite.name}' output '{name}'")
            except WorkflowSpecError:
                if default is None:
                    raise
                out[name] = default
        return out

    def _pod(self, step: Task, scope: dict[str, str], display: str, parent: str | None) -> _Outcome:
        from bioinfra.executor.runner import SUCCEEDED as OK

        template = self.wf.templates[step.template]
        state = self._node(display, parent, step.template)
        self.ex.reporter.changed(state)
        try:
            resolved = self.ex._resolve(
                Task(name=state.name, template=step.template, arguments=step.arguments, depends=None, when=None),
                template, scope,
            )
        except WorkflowSpecError as exc:
            self._finish(state, ERROR, exc.message)
            return _Outcome(state)
        need = resolved.command.cpus
        with self._cpu:
            while not self._stopped() and (
                need > self._free + 1e-9 or (self.ex.parallelism is not None and self._running >= self.ex.parallelism)
            ):
                self._cpu.wait(0.2)
            if self._stopped():
                self._finish(state, OMITTED, self._stop_reason())
                return _Outcome(state)
            self._free -= need
            self._running += 1
        state.phase = RUNNING
        state.started = time.time()
        try:
            self.ex._run_task(state, resolved)
        except Exception as exc:  # noqa: BLE001 - reported as the step's failure, never lost
            state.phase = FAILED
            state.message = f"{type(exc).__name__}: {exc}"
        finally:
            with self._cpu:
                self._free += need
                self._running -= 1
                self._cpu.notify_all()
        state.finished = time.time()
        self.ex.reporter.changed(state)
        return _Outcome(state, dict(state.output_parameters) if state.phase == OK else {})

    def _stopped(self) -> bool:
        return self.ex._stop.is_set()

    def _stop_reason(self) -> str:
        from bioinfra.executor.runner import WORKFLOW_DEADLINE_MESSAGE

        return f"not started: {WORKFLOW_DEADLINE_MESSAGE}" if self.ex._deadline_hit.is_set() else "interrupted"

    # -- scope -----------------------------------------------------------------------------------

    def _publish(self, scope: dict[str, str], prefix: str, outcome: _Outcome, template: str) -> None:
        state = outcome.state
        scope[f"{prefix}.status"] = state.phase
        if state.phase in (SKIPPED, OMITTED):
            self._publish_absent(scope, prefix, template)
            return
        scope.update(node_scope(prefix, state.phase, outcome.outputs, state.result, state.exit_code))

    def _publish_absent(self, scope: dict[str, str], prefix: str, template: str) -> None:
        pod = self.wf.templates.get(template)
        composite = self.wf.composites.get(template)
        declared = [(p.name, p.default) for p in pod.output_parameters] if pod is not None else (
            [(n, d) for n, _, d in composite.outputs] if composite is not None else [])
        for name, default in declared:
            scope.setdefault(f"{prefix}.outputs.parameters.{name}", default if default is not None else ABSENT)
        if self.wf.captures_result:
            scope.setdefault(f"{prefix}.outputs.result", ABSENT)

    @staticmethod
    def _publish_group(scope: dict[str, str], prefix: str, outcomes: list[_Outcome]) -> None:
        scope.update(aggregate_outputs(
            prefix, [(o.outputs, o.state.result) for o in outcomes if o.phase == SUCCEEDED]))

    def _expand(self, step: Task, scope: dict[str, str]) -> list[Task]:
        return expand_fan_out(step, scope, f"'{step.name}'")

    def _when(self, step: Task, scope: dict[str, str]) -> tuple[bool, str]:
        if not step.when:
            return True, ""
        condition = substitute(step.when, with_item(step, scope), where=f"'{step.name}' when")
        return evaluate_when(condition), condition

    def _leaf_step(self, step: Task, scope: dict[str, str], parent: str) -> _Outcome:
        """One (expanded) step or task: its `when`, then its template, then its exit hook."""
        outcome = self._leaf_node(step, scope, parent)
        if step.exit_hook is not None and not self._stopped():
            self._step_exit_hook(step, outcome, scope)
        return outcome

    def _step_exit_hook(self, step: Task, outcome: _Outcome, scope: dict[str, str]) -> None:
        """A step's or task's hooks.exit / onExit (exit_handler.go runOnExitNode, called by steps.go
        executeStepGroup and dag.go processTask once the node is completed, Skipped included): node
        "<node>.onExit", its arguments substituted in the caller's scope plus the node's own outputs
        and status as steps.<name>.* / tasks.<name>.* (resolveExitTmplArgument); empty arguments are
        the Workflow's (WithArgs). The step group or DAG waits for it; its phase changes neither the
        step's node nor the group's (only Workflow-level onExit decides a Workflow's phase)."""
        assert step.exit_hook is not None
        template, args = step.exit_hook
        hook_scope = dict(with_item(step, scope))
        self._publish(hook_scope, f"{step.hook_of}.{step.name}", outcome, step.template)
        display = f"{outcome.state.name}.onExit"
        arguments = dict(args) if args else dict(self.wf.parameters)
        self.call(Task(name=display, template=template, arguments=arguments, depends=None, when=None),
                  hook_scope, display, outcome.state.name)

    def _leaf_node(self, step: Task, scope: dict[str, str], parent: str) -> _Outcome:
        try:
            proceed, condition = self._when(step, scope)
        except WorkflowSpecError as exc:
            state = self._node(step.name, parent, step.template)
            self._finish(state, ERROR, exc.message)
            return _Outcome(state)
        if not proceed:
            state = self._node(step.name, parent, step.template)
            self._finish(state, SKIPPED, f"when '{condition}' evaluated false")
            return _Outcome(state)
        if self._stopped():
            state = self._node(step.name, parent, step.template)
            self._finish(state, OMITTED, self._stop_reason())
            return _Outcome(state)
        return self.call(step, with_item(step, scope), step.name, parent)

    # -- steps -----------------------------------------------------------------------------------

    def _steps(self, composite: Composite, scope: dict[str, str], node: str) -> tuple[str, str]:
        for group in composite.groups:
            if self._stopped():
                return FAILED, self._stop_reason()
            futures: list[tuple[Task, bool, Any]] = []
            # The group's references resolve before any of its steps starts (executeStepGroup:
            # resolveReferences, then expandStepGroup); a failure there is the group's Error.
            for step in group:
                try:
                    children = self._expand(step, scope) if step.fans_out else None
                except WorkflowSpecError as exc:
                    state = self._node(step.name, node, step.template)
                    self._finish(state, ERROR, exc.message)
                    futures.append((step, False, [_done(_Outcome(state))]))
                    continue
                if children is None:
                    futures.append((step, False, [self._pool.submit(self._leaf_step, step, dict(scope), node)]))
                elif not children:
                    state = self._node(step.name, node, step.template)
                    self._finish(state, SKIPPED, "Skipped, empty params")
                    futures.append((step, True, [_done(_Outcome(state))]))
                else:
                    futures.append((step, True, [self._pool.submit(self._leaf_step, c, dict(scope), node)
                                                 for c in children]))
            failed: list[str] = []
            for step, fanned, fs in futures:
                outcomes = [f.result() for f in fs]
                prefix = f"steps.{step.name}"
                if fanned and not (len(outcomes) == 1 and outcomes[0].state.name == step.name):
                    self._publish_group(scope, prefix, outcomes)
                else:
                    self._publish(scope, prefix, outcomes[0], step.template)
                for o in outcomes:
                    if o.phase in (FAILED, ERROR) and not _continues(step, o.phase):
                        failed.append(o.state.name)
            if failed:
                # executeStepGroup: "child '...' failed"; executeSteps fails the steps node with it.
                return FAILED, f"child '{failed[0]}' failed"
        return SUCCEEDED, ""

    # -- dag -------------------------------------------------------------------------------------

    def _dag(self, composite: Composite, scope: dict[str, str], node: str) -> tuple[str, str]:
        tasks = {t.name: t for t in composite.tasks}
        if composite.target_text:
            text = substitute(composite.target_text, scope, where=f"template '{composite.name}' dag.target")
            targets = [t for t in text.split(" ") if t]
            unknown = [t for t in targets if t not in tasks]
            if unknown:
                return ERROR, f"dag.target names unknown task(s): {', '.join(unknown)}"
            needed: set[str] = set()
            stack = list(targets)
            while stack:
                name = stack.pop()
                if name not in needed:
                    needed.add(name)
                    stack.extend(tasks[name].upstream)
            tasks = {n: t for n, t in tasks.items() if n in needed}
        else:
            targets = leaf_tasks({t.name: t.upstream for t in tasks.values()})
        phase_of: dict[str, str | None] = {}
        groups: dict[str, list[str]] = {}
        child_phase: dict[str, str] = {}
        done_cv = threading.Condition()
        pending = dict(tasks)
        running: dict[str, Any] = {}

        def run_task(task: Task) -> None:
            outcome: _Outcome
            try:
                if task.fans_out:
                    try:
                        children = self._expand(task, scope_snapshot[task.name])
                    except WorkflowSpecError as exc:
                        state = self._node(task.name, node, task.template)
                        self._finish(state, ERROR, exc.message)
                        phase_of[task.name] = ERROR
                        self._publish(scope, f"tasks.{task.name}", _Outcome(state), task.template)
                        return
                    if not children:
                        state = self._node(task.name, node, task.template)
                        self._finish(state, SKIPPED, "Skipped, empty params")
                        phase_of[task.name] = SKIPPED
                        self._publish(scope, f"tasks.{task.name}", _Outcome(state), task.template)
                        return
                    group = self._node(task.name, node, task.template)
                    group.phase = RUNNING
                    group.children = len(children)
                    self.ex.reporter.changed(group)
                    fs = [self._pool.submit(self._leaf_step, c, dict(scope_snapshot[task.name]), group.name)
                          for c in children]
                    outcomes = [f.result() for f in fs]
                    groups[task.name] = [c.name for c in children]
                    for c, o in zip(children, outcomes, strict=True):
                        child_phase[c.name] = o.phase
                    gphase = SUCCEEDED
                    for o in outcomes:
                        if o.phase in (FAILED, ERROR):
                            gphase = o.phase
                    for o in outcomes:
                        o.state.group = group.name
                    self._finish(group, gphase, f"{len(children)} items")
                    phase_of[task.name] = gphase
                    self._publish_group(scope, f"tasks.{task.name}", outcomes)
                    scope[f"tasks.{task.name}.status"] = gphase
                    return
                outcome = self._leaf_step(task, scope_snapshot[task.name], node)
                phase_of[task.name] = outcome.phase
                self._publish(scope, f"tasks.{task.name}", outcome, task.template)
            finally:
                with done_cv:
                    running.pop(task.name, None)
                    done_cv.notify_all()

        scope_snapshot: dict[str, dict[str, str]] = {}
        with done_cv:
            while pending or running:
                progressed = False
                for name, task in list(pending.items()):
                    ups = task.upstream
                    if any(phase_of.get(u) not in _DONE for u in ups):
                        continue
                    del pending[name]
                    progressed = True
                    if task.depends and not evaluate_depends(
                        task.depends, {u: phase_of[u] or "" for u in ups},
                        {u: [child_phase[c] for c in groups[u]] for u in ups if u in groups},
                    ):
                        state = self._node(task.name, node, task.template)
                        self._finish(state, OMITTED, "its depends condition is false")
                        phase_of[name] = OMITTED
                        self._publish(scope, f"tasks.{name}", _Outcome(state), task.template)
                        continue
                    if self._stopped():
                        continue  # never created
                    scope_snapshot[name] = dict(scope)
                    running[name] = True
                    self._pool.submit(run_task, task)
                if not progressed:
                    if not running:
                        break
                    done_cv.wait(0.5)
        phase = assess_dag_phase(
            {t.name: t.upstream for t in tasks.values()},
            {**{n: p for n, p in phase_of.items()}, **child_phase},
            groups,
            targets,
            fail_fast=composite.fail_fast,
            continues_on=lambda task, ph: _continues(tasks[task], ph),
        )
        if phase == RUNNING:
            return FAILED, "a target task was never reached"
        return phase, ""

    def _exit_handler(self, status: str) -> str:
        """spec.onExit: after the entrypoint, the exit handler runs as node "<workflow>.onExit" with
        workflow.status and workflow.failures; the Workflow keeps the entrypoint's phase unless that
        Succeeded and the handler Failed or Errored (operator.go operate, the onExit switch)."""
        scope = {**self._globals(), "workflow.status": status, "workflow.failures": _failures(list(self.states.values()))}
        display = f"{self.wf.name}.onExit"
        # The handler's arguments: hooks.exit's own, else the Workflow's (GetExitHook / WithArgs).
        arguments = self.wf.on_exit_arguments or dict(self.wf.parameters)
        outcome = self.call(Task(name=display, template=self.wf.on_exit or "", arguments=arguments, depends=None,
                                 when=None), scope, display, None)
        if status == SUCCEEDED and outcome.phase in (FAILED, ERROR):
            return outcome.phase
        return status

    def run(self) -> RunResult:
        from bioinfra.executor.runner import RunResult

        self.ex.reporter.started([])
        entry = Task(name=self.wf.name, template=self.wf.entry or "",
                     arguments={k: f"{{{{inputs.parameters.{k}}}}}" for k in self.wf.inputs},
                     depends=None, when=None)
        caller = {**self._globals(), **{f"inputs.parameters.{k}": v for k, v in self.wf.inputs.items()}}
        interrupted = False
        timer = None
        if self.wf.deadline_seconds is not None:
            def deadline_passed() -> None:
                self.ex._deadline_hit.set()
                self.ex._stop.set()
                with self._cpu:
                    self._cpu.notify_all()
                self.ex.runtime.terminate_all()

            timer = threading.Timer(self.wf.deadline_seconds, deadline_passed)
            timer.daemon = True
            timer.start()
        future = self._pool.submit(self.call, entry, caller, self.wf.name, None)
        self._future = future
        try:
            while True:
                try:
                    outcome = future.result(timeout=0.5)
                    break
                except FutureTimeout:
                    continue
        except KeyboardInterrupt:
            interrupted = True
            self.ex._stop.set()
            with self._cpu:
                self._cpu.notify_all()
            self.ex.runtime.terminate_all()
            outcome = future.result()
        finally:
            if timer is not None:
                timer.cancel()
        argo_phase = {SKIPPED: SUCCEEDED, OMITTED: SUCCEEDED}.get(outcome.phase, outcome.phase)
        if self.ex._deadline_hit.is_set() or interrupted:
            argo_phase = FAILED
        if self.wf.on_exit and not (interrupted or self.ex._deadline_hit.is_set()):
            argo_phase = self._exit_handler(argo_phase)
        self._pool.shutdown(wait=True)
        phase = SUCCEEDED if argo_phase == SUCCEEDED else FAILED
        result = RunResult(phase=phase, tasks=self.states, interrupted=interrupted, disk_full=self.ex.disk_full,
                           argo_phase=argo_phase)
        self.ex.reporter.finished(result)
        return result


def _output_expression(expression: str, scope: dict[str, str], where: str) -> str:
    """valueFrom.expression of a steps/dag output (scope.go wfScope.resolveParameter): expr over the
    node's scope, an absent optional as nil; a nil result is an error (then valueFrom.default, in
    getTemplateOutputsFromScope), anything else its fmt "%v" text (ParseAnyString)."""
    from bioinfra.executor import exprlang

    env = {k: (None if v is ABSENT else v) for k, v in scope.items()}
    try:
        value = exprlang.evaluate(expression, env)
    except exprlang.ExprError as exc:
        raise WorkflowSpecError(f"{where}: {exc.message}") from None
    if value is None:
        raise WorkflowSpecError(f"{where}: failed to evaluate expression {expression!r}")
    return exprlang.go_fmt_v(value)


def _failures(states: list[TaskState]) -> str:
    """{{workflow.failures}}: the Failed and Error nodes as JSON (operator.go failedNodeStatus)."""
    return json.dumps([
        {"displayName": s.name, "message": s.message, "templateName": "" if is_inline_template(s.template) else s.template, "phase": s.phase,
         "podName": s.name, "finishedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.finished or 0))}
        for s in states if s.phase in (FAILED, ERROR)
    ], separators=(",", ":"))


def _continues(step: Task, phase: str) -> bool:
    """continueOn.failed / continueOn.error for that phase (WorkflowStep.ContinuesOn)."""
    if phase == ERROR:
        return step.continue_on_error
    return step.continue_on_failed_only


class _done:
    """An already-finished future."""

    def __init__(self, outcome: _Outcome) -> None:
        self._outcome = outcome

    def result(self) -> _Outcome:
        return self._outcome
