"""Reading an Argo Workflow into what the local executor runs (issue #16: Argo v3.7 is the spec).

The Workflow is read once through the typed model (bioinfra.argo.model: Workflow, Template,
DAGTask, Step, RetryStrategy, Parameter, ...); its raw keys are looked at only to refuse what the
model drops and the executor does not run. Whatever it cannot run as Argo does is refused here,
before anything runs, with a WorkflowSpecError naming the feature (artifacts, resource / suspend /
http / plugin / data / containerSet templates, daemons, sidecars, memoize, synchronization,
metrics, hooks run on an expression, template `timeout`, ...): see docs/architecture.md, "Local executor: which Argo
features run, which are rejected".

Two shapes come out of parse_workflow:
- an entrypoint DAG whose tasks call script/container templates or the one-step retry wrapper
  (our pipelines' shape; `Workflow.tasks`), run by the flat DAG runner (runner.py). A retry
  wrapper (issue #6: a `steps` template with a retryStrategy and one group of one step calling a
  script/container template, passing its inputs and re-exporting its outputs through
  valueFrom.parameter) runs as the attempt template with the wrapper's name, inputs and retry; the
  attempt's own node-level retryStrategy only applies on a cluster. A pod entrypoint runs as a
  one-task DAG whose task is named after the Workflow (Argo's one node).
- anything else with a steps/dag template (a steps entrypoint, templates calling templates at any
  depth), spec.onExit / hooks.exit, step or task exit hooks or spec.retryStrategy: `Workflow.entry` and `Workflow.composites`, run by the tree engine (tree.py).

Fan-out (withParam / withItems / withSequence) children are named as Argo names them
("<task>(<i>:<item>)"). `dag.target` runs only the targets and what they depend on, and names the
tasks whose phases make the DAG's (else the leaves; bioinfra.executor.phase, Argo's assessDAGPhase).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from bioinfra.argo import model
from bioinfra.errors import WorkflowSpecError
from bioinfra.executor.expressions import depends_tasks, substitute

OUTPUTS_ANNOTATION = "bioinfra.io/outputs"

# Template keys that only matter on a cluster (scheduling, pod shape): the local executor ignores them.
_CLUSTER_ONLY_TEMPLATE_KEYS = {
    "name", "inputs", "outputs", "metadata", "nodeSelector", "tolerations", "affinity", "retryStrategy",
    "activeDeadlineSeconds", "podSpecPatch", "serviceAccountName", "securityContext", "priorityClassName",
    "script", "container", "dag", "volumes",
}
# spec keys the local executor honours or that only shape pods on a cluster; any other is rejected.
_SPEC_KEYS = {
    "entrypoint", "arguments", "templates", "volumes", "parallelism", "activeDeadlineSeconds", "serviceAccountName",
    "podGC", "ttlStrategy", "ttlSecondsAfterFinished", "nodeSelector", "tolerations", "affinity", "securityContext",
    "imagePullSecrets", "podMetadata", "priority", "podPriorityClassName", "podPriority", "workflowMetadata",
    "archiveLogs", "dnsPolicy", "dnsConfig", "executor", "podDisruptionBudget", "hostAliases",
    "automountServiceAccountToken", "schedulerName", "shutdown", "hostNetwork", "podSpecPatch", "onExit",
    "retryStrategy", "hooks",
}
_TASK_KEYS = {
    "name", "template", "arguments", "depends", "dependencies", "when", "withParam", "withItems", "withSequence",
    "continueOn", "hooks", "onExit",
}
# A retry wrapper (see the module docstring): what its template and its one step may use.
_WRAPPER_KEYS = {"name", "inputs", "outputs", "metadata", "retryStrategy", "steps"}
_WRAPPER_STEP_KEYS = {"name", "template", "arguments"}
_INPUT_TAG_RE = re.compile(r"\{\{\s*inputs\.parameters\.([^{}\s]+)\s*\}\}")


@dataclass(frozen=True)
class RetryPolicy:
    limit: int = 0
    backoff_seconds: float = 0.0
    factor: float = 1.0
    max_backoff_seconds: float | None = None
    # retryPolicy (Argo's default: OnFailure). Locally a step fails (exit code, deadline, missing
    # output): Always and OnFailure retry it; OnError and OnTransientError retry only Errors, which a
    # local step does not end in (workflow/controller/operator.go: processNodeRetries / shouldRetry).
    policy: str = "OnFailure"
    expression: str | None = None  # retryStrategy.expression (expr), over lastRetry.*

    def retries_failures(self) -> bool:
        return self.policy in ("Always", "OnFailure")

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before retry `retry_number` (1-based), as Argo's backoff does."""
        delay = self.backoff_seconds * (self.factor ** (retry_number - 1))
        if self.max_backoff_seconds is not None:
            delay = min(delay, self.max_backoff_seconds)
        return delay


@dataclass(frozen=True)
class OutputParameter:
    name: str
    path: str  # container path, tags not yet substituted
    default: str | None = None  # valueFrom.default: the value when the file is missing, or the node Skipped/Omitted
    # `value` with no valueFrom: the controller substitutes it with the pod's inputs and the
    # executor keeps it as it is (workflow/executor/executor.go SaveParameters skips a parameter
    # without valueFrom.path), so the node's output is that text.
    value: str | None = None


@dataclass(frozen=True)
class Template:
    name: str
    kind: str  # "script" or "container"
    command: list[str]
    args: list[str]
    source: str | None
    working_dir: str | None
    env: dict[str, str]
    volume_mounts: dict[str, str]  # mountPath -> volume name
    cpu: float
    memory_bytes: int | None  # limits.memory, else requests.memory
    image: str
    input_parameters: dict[str, str | None]  # name -> default
    output_parameters: list[OutputParameter]
    outputs: list[str]  # from the bioinfra.io/outputs annotation, tags not yet substituted
    retry: RetryPolicy
    unset_env: tuple[str, ...] = ()  # from optional secretKeyRefs: unset locally (no Secrets here)
    attempt: str | None = None  # for a retry wrapper: the template it runs
    # activeDeadlineSeconds: each attempt is stopped after this long and its node Failed with the
    # kubelet's message (a pod's activeDeadlineSeconds), tags not yet substituted.
    deadline: str | None = None


@dataclass(frozen=True)
class Sequence:
    """withSequence: `count` items from `start`, or `start`..`end` inclusive (either direction)."""

    count: str | None = None
    start: str | None = None
    end: str | None = None
    format: str | None = None


@dataclass(frozen=True)
class Task:
    name: str
    template: str
    arguments: dict[str, str]
    depends: str | None
    when: str | None
    with_param: str | None = None  # a JSON list once its tags are substituted
    with_items: tuple[Any, ...] | None = None
    with_sequence: Sequence | None = None
    continue_on_failed: bool = False
    continue_on_error: bool = False
    continue_on_failed_only: bool = False  # continueOn.failed itself (continue_on_failed: failed or error)
    item: Any = None  # a fan-out child's item (for expression tags reading `item`)
    group: str | None = None  # for a fan-out child: the task it was expanded from
    upstream_of_group: tuple[str, ...] = ()  # a child's upstream is its parent's
    # hooks.exit / onExit of the step or task: (template, arguments), run after its node completes
    # as "<node>.onExit" (exit_handler.go runOnExitNode); `hook_of` is "steps" or "tasks".
    exit_hook: tuple[str, tuple[tuple[str, str], ...]] | None = None
    hook_of: str = "tasks"

    @property
    def upstream(self) -> list[str]:
        if self.group is not None:
            return list(self.upstream_of_group)
        return depends_tasks(self.depends) if self.depends else []

    @property
    def fans_out(self) -> bool:
        return self.with_param is not None or self.with_items is not None or self.with_sequence is not None


@dataclass
class Workflow:
    name: str
    parameters: dict[str, str]
    tasks: list[Task]
    templates: dict[str, Template]
    volumes: list[str] = field(default_factory=list)
    fail_fast: bool = True  # the entrypoint DAG's failFast (Argo's default: true)
    # dag.target (split on spaces), else the leaves: the tasks whose phases make the DAG's
    # (bioinfra.executor.phase.assess_dag_phase, Argo's assessDAGPhase).
    targets: list[str] = field(default_factory=list)
    parallelism: int | None = None  # spec.parallelism: at most this many steps at once
    # spec.activeDeadlineSeconds: the run stops after this long; running steps are stopped and
    # their nodes, and the Workflow, end Failed (operator.go: failSuspendedAndPendingNodesAfterDeadline).
    deadline_seconds: float | None = None
    # The entrypoint's own input parameters (spec.arguments bound to them): {{inputs.parameters.x}} in its tasks.
    inputs: dict[str, str] = field(default_factory=dict)
    # Some tag reads a step's outputs.result: each step's stdout is kept as its result (Argo's
    # includeScriptOutput captures it only then, too).
    captures_result: bool = False
    # The tree engine's Workflows (bioinfra.executor.tree): steps/dag templates by name, and the entrypoint.
    composites: dict[str, Any] = field(default_factory=dict)
    entry: str | None = None
    on_exit: str | None = None  # spec.onExit / hooks.exit: the exit handler's template (runs after the entrypoint)
    on_exit_arguments: dict[str, str] = field(default_factory=dict)  # hooks.exit's arguments (else the Workflow's)
    # The global variables Argo documents (docs/variables.md "Global"): workflow.namespace, uid,
    # creationTimestamp (and its strftime forms), labels, annotations, parameters.json, ...
    globals: dict[str, str] = field(default_factory=dict)

    @property
    def tree(self) -> bool:
        return self.entry is not None

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)


_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def parse_duration(value: Any, where: str) -> float:
    text = str(value).strip()
    m = _DURATION_RE.match(text)
    if not m:
        raise WorkflowSpecError(f"{where}: cannot read duration {value!r} (use e.g. 10s, 2m)")
    number, unit = float(m.group(1)), m.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def parse_cpu(value: Any, where: str) -> float:
    """Kubernetes CPU quantity: "2", "500m", 1.5."""
    text = str(value).strip()
    try:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise WorkflowSpecError(f"{where}: cannot read CPU quantity {value!r}") from None


_MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def parse_memory(value: Any, where: str) -> int:
    """Kubernetes memory quantity: "16Gi", "500Mi", "1G", 1048576."""
    m = re.match(r"^(\d+(?:\.\d+)?)([kMGT]i?)?$", str(value).strip())
    if not m:
        raise WorkflowSpecError(f"{where}: cannot read memory quantity {value!r}")
    return int(float(m.group(1)) * _MEMORY_UNITS[m.group(2) or ""])


def _retry(rs: model.RetryStrategy | None, where: str) -> RetryPolicy:
    """retryStrategy, read through the typed model (bioinfra.argo.model.RetryStrategy)."""
    if rs is None:
        return RetryPolicy()
    try:
        limit = int(rs.limit if rs.limit is not None else 0)
    except ValueError:
        raise WorkflowSpecError(f"{where}.retryStrategy.limit must be a whole number") from None
    policy = rs.retry_policy or "OnFailure"
    if policy not in ("Always", "OnFailure", "OnError", "OnTransientError"):
        raise WorkflowSpecError(f"{where}.retryStrategy.retryPolicy {policy!r} is not one of Always, OnFailure, OnError, OnTransientError")
    backoff = rs.backoff or model.Backoff()
    return RetryPolicy(
        expression=rs.expression or None,
        policy=policy,
        limit=limit,
        backoff_seconds=parse_duration(backoff.duration or "0s", f"{where}.retryStrategy.backoff"),
        factor=float(backoff.factor if backoff.factor is not None else 1),
        max_backoff_seconds=(
            parse_duration(backoff.max_duration, f"{where}.retryStrategy.backoff") if backoff.max_duration else None
        ),
    )


def _env(entries: list[dict[str, Any]], where: str) -> tuple[dict[str, str], list[str]]:
    """Plain values; an optional secretKeyRef is left unset (no Secrets here), anything else refused."""
    env: dict[str, str] = {}
    unset: list[str] = []
    for e in entries:
        name = e["name"]
        if str(name).startswith("ARGO_DEBUG_PAUSE"):
            raise WorkflowSpecError(f"{where}: env {name} pauses the pod for debugging, which the local executor does not do")
        source = e.get("valueFrom")
        if source is None:
            env[name] = str(e.get("value", ""))
            continue
        ref = source.get("secretKeyRef") if isinstance(source, dict) and set(source) == {"secretKeyRef"} else None
        if ref is None:
            raise WorkflowSpecError(
                f"{where}: env {name} takes its value from {', '.join(sorted(source))}, which the local executor "
                "does not provide"
            )
        if ref.get("optional") is not True:
            raise WorkflowSpecError(
                f"{where}: env {name} needs Kubernetes secret '{ref.get('name')}' (key '{ref.get('key')}'), and "
                "there are no Secrets on this machine",
                hint="mark the secretKeyRef `optional: true` if the step can run without it",
            )
        unset.append(name)
    return env, unset


def _template(t: model.Template) -> Template:
    """A script or container template, read through the typed model (its raw keys only to refuse
    what the model does not carry and the local executor does not run)."""
    name = t.name or "<unnamed>"
    where = f"template '{name}'"
    unknown = set(t.raw) - _CLUSTER_ONLY_TEMPLATE_KEYS
    if unknown:
        raise WorkflowSpecError(f"{where} uses {', '.join(sorted(unknown))}, which the local executor does not run")
    if t.script is not None:
        kind, body = "script", t.script
    elif t.container is not None:
        kind, body = "container", t.container
    else:
        raise WorkflowSpecError(f"{where} has neither script nor container")
    # What changes how the container runs and has no local equivalent (a pod's terminal, stdin, env
    # from ConfigMaps/Secrets, raw devices).
    refused = sorted(k for k in ("tty", "stdin", "stdinOnce", "envFrom", "volumeDevices") if body.get(k))
    if refused:
        raise WorkflowSpecError(f"{where}: its {kind} uses {', '.join(refused)}, which the local executor does not run")
    resources = (body.get("resources") or {}).get("requests") or {}
    limits = (body.get("resources") or {}).get("limits") or {}
    memory = limits.get("memory", resources.get("memory"))
    annotations = t.metadata.get("annotations") or {}
    outputs = [line.strip() for line in str(annotations.get(OUTPUTS_ANNOTATION, "")).splitlines() if line.strip()]
    env, unset_env = _env(body.get("env") or [], where)
    output_parameters = []
    for p in t.outputs.parameters:
        if p.value_from is None and p.value is not None:
            output_parameters.append(OutputParameter(p.name, "", None, _param_text(p.value)))
            continue
        source = p.value_from or model.ValueFrom()
        unknown = [k for k, v in (("jqFilter", source.jq_filter), ("jsonPath", source.json_path),
                                  ("parameter", source.parameter), ("expression", source.expression),
                                  ("event", source.event), ("supplied", source.supplied),
                                  ("configMapKeyRef", source.config_map_key_ref)) if v]
        if not source.path or unknown:
            what = ", ".join(f"valueFrom.{k}" for k in unknown) or "no valueFrom.path"
            raise WorkflowSpecError(
                f"{where}: output parameter '{p.name}' uses {what}; the local executor reads output "
                "parameters from valueFrom.path (with valueFrom.default)"
            )
        _check_on_a_volume(source.path, body, f"{where}: output parameter '{p.name}'")
        output_parameters.append(OutputParameter(p.name, source.path, source.default))
    return Template(
        name=name,
        kind=kind,
        command=[str(c) for c in body.get("command") or []],
        args=[str(a) for a in body.get("args") or []],
        source=body.get("source"),
        working_dir=body.get("workingDir"),
        env=env,
        unset_env=tuple(unset_env),
        # subPath is ignored: locally the volume's root already is the folder a cluster mounts.
        volume_mounts={m["mountPath"]: m["name"] for m in body.get("volumeMounts") or []},
        cpu=parse_cpu(resources.get("cpu", "1"), f"{where}.resources.requests.cpu"),
        memory_bytes=parse_memory(memory, f"{where}.resources") if memory is not None else None,
        image=str(body.get("image", "")),
        input_parameters=_input_defaults(t),
        output_parameters=output_parameters,
        outputs=outputs,
        retry=_retry(t.retry_strategy, where),
        deadline=_deadline(t.active_deadline_seconds, where),
    )


def _input_defaults(t: model.Template) -> dict[str, str | None]:
    """A template's input parameters: name -> its value (else default), None when it has neither."""
    for p in t.inputs.parameters:
        _no_value_from(p, f"template '{t.name}': input parameter '{p.name}'")
    return {p.name: (p.value if p.value is not None else p.default) for p in t.inputs.parameters}


def _no_value_from(p: model.Parameter, where: str) -> None:
    """A parameter whose value comes from a ConfigMap, an event or a resume (valueFrom) has nothing
    to come from on this machine."""
    if p.value_from is not None and p.value is None:
        source = p.value_from
        kinds = [k for k, v in (("configMapKeyRef", source.config_map_key_ref), ("supplied", source.supplied),
                                ("event", source.event), ("expression", source.expression),
                                ("parameter", source.parameter), ("path", source.path)) if v]
        raise WorkflowSpecError(
            f"{where} takes its value from valueFrom.{', valueFrom.'.join(kinds) or 'default'}, which the local "
            "executor does not provide"
        )


def _check_on_a_volume(path: str, body: dict[str, Any], where: str) -> None:
    """Locally a step has no filesystem of its own: what it leaves behind must be on a volume mount.
    A path with tags is checked when the step runs."""
    if "{{" in path:
        return
    mounts = [str(m.get("mountPath", "")) for m in body.get("volumeMounts") or []]
    p = PurePosixPath(path)
    if not any(p == PurePosixPath(m) or PurePosixPath(m) in p.parents for m in mounts if m):
        raise WorkflowSpecError(
            f"{where} reads {path}, on the pod's own filesystem, which a local step does not have: the local "
            "executor reads outputs from the template's volume mounts"
        )


def _param_text(value: Any) -> str:
    """A parameter value as Argo's AnyString holds it: YAML scalars as their text, lists/maps as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _deadline(value: Any, where: str) -> str | None:
    """activeDeadlineSeconds: a whole number of seconds, or a tag resolved when the step runs."""
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit() and not (text.startswith("{{") and text.endswith("}}")):
        raise WorkflowSpecError(f"{where}: activeDeadlineSeconds must be a whole number of seconds (got {value!r})")
    return text


def deadline_seconds(text: str, where: str) -> float:
    if not text.strip().isdigit():
        raise WorkflowSpecError(f"{where}: activeDeadlineSeconds {text!r} is not a whole number of seconds")
    return float(text)


def _unsupported(doc: dict[str, Any]) -> None:
    """Refuse, before anything runs, what the local executor cannot do as Argo does."""
    spec = doc.get("spec") or {}
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        raise WorkflowSpecError(f"spec uses {', '.join(unknown)}, which the local executor does not run")

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "artifacts" and v:
                    raise WorkflowSpecError(f"{where} uses artifacts, which the local executor does not provide")
                walk(v, where)
        elif isinstance(node, list):
            for x in node:
                walk(x, where)
        elif isinstance(node, str) and _EXPRESSION_TAG_RE.search(node) and not _expressions_available():
            raise WorkflowSpecError(
                f"{where} uses an expression tag ({{{{=...}}}}), which the local executor does not evaluate yet"
            )

    for t in spec.get("templates") or []:
        if isinstance(t, dict):
            walk(t, f"template '{t.get('name')}'")
    walk({k: v for k, v in spec.items() if k != "templates"}, "spec")


_EXPRESSION_TAG_RE = re.compile(r"\{\{\s*=")


def _expressions_available() -> bool:
    """Expression tags and retry expressions run once the expr evaluator is there (exprlang)."""
    try:
        from bioinfra.executor import exprlang  # noqa: F401
    except ImportError:
        return False
    return True


def _wrapper(t: model.Template, templates: dict[str, model.Template], leaves: dict[str, Template]) -> Template:
    """A retry wrapper as the attempt template it runs, with the wrapper's name, inputs and retry."""
    name = t.name or "<unnamed>"
    where = f"template '{name}'"
    shape = (
        "the local executor runs a steps template only as a retry wrapper: one group of one step "
        "calling a script or container template"
    )
    unknown = set(t.raw) - _WRAPPER_KEYS
    if unknown:
        raise WorkflowSpecError(f"{where} uses {', '.join(sorted(unknown))}, which the local executor does not run")
    groups = t.steps or ()
    if len(groups) != 1 or len(groups[0]) != 1:
        raise WorkflowSpecError(f"{where} has {sum(len(g) for g in groups)} step(s) in {len(groups)} group(s); {shape}")
    step = groups[0][0]
    step_name = step.name or "<unnamed>"
    unknown = set(step.raw) - _WRAPPER_STEP_KEYS
    if unknown:
        raise WorkflowSpecError(
            f"{where}: step '{step_name}' uses {', '.join(sorted(unknown))}, which the local executor does not run; "
            f"{shape}"
        )
    target = step.template
    if target not in leaves:
        kind = "unknown" if target not in templates else "a dag or steps"
        raise WorkflowSpecError(f"{where}: step '{step_name}' calls {kind} template '{target}'; {shape}")
    attempt = leaves[target]
    if (t.metadata.get("annotations") or {}).get(OUTPUTS_ANNOTATION) is not None:
        raise WorkflowSpecError(
            f"{where}: put the {OUTPUTS_ANNOTATION} annotation on '{target}', the template whose pod writes the files"
        )
    # The attempt's {{inputs.parameters.x}} become the step's argument text, which the runner
    # substitutes in the wrapper's scope (its own inputs, the workflow's parameters).
    if step.arguments.artifacts:
        raise WorkflowSpecError(f"{where}: step '{step_name}' passes artifacts, which the local executor does not run")
    passed = {p.name: p.value or "" for p in step.arguments.parameters}
    extra = set(passed) - set(attempt.input_parameters)
    if extra:
        raise WorkflowSpecError(f"{where}: step '{step_name}' passes {', '.join(sorted(extra))}, which '{target}' does not take")
    bound: dict[str, str] = {}
    for pname, default in attempt.input_parameters.items():
        if pname in passed:
            bound[pname] = passed[pname]
        elif default is not None:
            bound[pname] = default
        else:
            raise WorkflowSpecError(f"{where}: step '{step_name}' does not pass parameter '{pname}' that '{target}' needs")

    def bind(text: str) -> str:
        def replace(m: re.Match[str]) -> str:
            if m.group(1) not in bound:
                raise WorkflowSpecError(f"template '{target}' uses {m.group(0)}, an input it does not declare")
            return bound[m.group(1)]

        return _INPUT_TAG_RE.sub(replace, text)

    inner_outputs = {p.name: p for p in attempt.output_parameters}
    ref_re = re.compile(r"^\{\{\s*steps\." + re.escape(step_name) + r"\.outputs\.parameters\.([^{}\s]+)\s*\}\}$")
    output_parameters = []
    for p in t.outputs.parameters:
        source = p.value_from or model.ValueFrom()
        m = ref_re.match(source.parameter) if source == model.ValueFrom(parameter=source.parameter) else None
        if not m or m.group(1) not in inner_outputs:
            raise WorkflowSpecError(
                f"{where}: output parameter '{p.name}' must be valueFrom.parameter "
                f"\"{{{{steps.{step_name}.outputs.parameters.<p>}}}}\" naming an output parameter of '{target}'"
            )
        inner = inner_outputs[m.group(1)]
        output_parameters.append(OutputParameter(p.name, bind(inner.path), None,
                                                 bind(inner.value) if inner.value is not None else None))
    return dataclasses.replace(
        attempt,
        name=name,
        command=[bind(c) for c in attempt.command],
        args=[bind(a) for a in attempt.args],
        source=bind(attempt.source) if attempt.source is not None else None,
        working_dir=bind(attempt.working_dir) if attempt.working_dir else attempt.working_dir,
        env={k: bind(v) for k, v in attempt.env.items()},
        image=bind(attempt.image),
        input_parameters=_input_defaults(t),
        output_parameters=output_parameters,
        outputs=[bind(o) for o in attempt.outputs],
        retry=_retry(t.retry_strategy, where),
        attempt=target,
    )


# Template types (wfv1.TemplateType): a templateDefaults section of one applies only to templates of
# that type (operator.go mergedTemplateDefaultsInto unsets the others).
_TEMPLATE_TYPES = ("container", "containerSet", "steps", "script", "resource", "dag", "suspend", "data", "http",
                   "plugin")
# Lists the strategic merge merges by a key (their patchMergeKey in the Kubernetes / Argo types);
# any other list of the template replaces the default's.
_MERGE_KEYS = {"env": "name", "volumeMounts": "mountPath", "ports": "containerPort", "volumes": "name",
               "volumeDevices": "devicePath", "hostAliases": "ip", "tolerations": None, "imagePullSecrets": "name"}


def _strategic_merge(default: Any, own: Any) -> Any:
    """strategicpatch.StrategicMergePatch(defaults, template): maps merge key by key with the
    template's values winning, lists with a merge key merge item by item, other lists and scalars are
    the template's."""
    if isinstance(default, dict) and isinstance(own, dict):
        out = dict(default)
        for k, v in own.items():
            if k in out and isinstance(out[k], list) and isinstance(v, list) and _MERGE_KEYS.get(k):
                key = _MERGE_KEYS[k]
                merged = {x.get(key): x for x in out[k] if isinstance(x, dict)}
                for x in v:
                    if isinstance(x, dict) and x.get(key) in merged:
                        merged[x.get(key)] = _strategic_merge(merged[x.get(key)], x)
                    elif isinstance(x, dict):
                        merged[x.get(key)] = x
                # the template's items first, in its order, then the defaults' own (the patch's order)
                own_keys = [x.get(key) for x in v if isinstance(x, dict)]
                out[k] = [merged[n] for n in own_keys] + [merged[n] for n in merged if n not in own_keys]
            else:
                out[k] = _strategic_merge(out[k], v) if k in out else v
        return out
    return own


INLINE_SUFFIX = ".inline"


def is_inline_template(name: str) -> bool:
    """A name hoist_inline_templates gave an inline template (no user template has a '.' in its name:
    validate.go validateWorkflowFieldNames allows only letters, digits and '-')."""
    return name.endswith(INLINE_SUFFIX) and "." in name[: -len(INLINE_SUFFIX)]


def hoist_inline_templates(doc: dict[str, Any]) -> dict[str, Any]:
    """Every DAG task's or step's `inline` template made a template of the Workflow's own, named
    '<caller>.<task or step>.inline', and the task or step made to call it by that name. Argo resolves an
    inline template in place (templateresolution/context.go resolveTemplateImpl: GetTemplate returns the
    holder's Inline; workflow_types.go DAGTask/WorkflowStep.GetTemplate) and runs it as any other
    (operator.go executeTemplate, templateDefaults merged in as well), its node carrying no templateName
    (operator.go initializeNode: orgTmpl.GetTemplateName() is the holder's empty Template). An inline
    template may itself hold inline templates (validate.go validates them in place, nesting allowed)."""
    spec = doc.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("templates"), list):
        return doc
    out: list[Any] = []

    def hoist(t: Any) -> Any:
        if not isinstance(t, dict):
            return t
        caller = str(t.get("name") or "")
        t = dict(t)

        def fix(inv: Any, kind: str) -> Any:
            if not isinstance(inv, dict) or "inline" not in inv:
                return inv
            where = f"{kind} '{inv.get('name')}'"
            body = inv.get("inline")
            if not isinstance(body, dict):
                raise WorkflowSpecError(f"{where}: inline must be a template")
            if inv.get("template") or inv.get("templateRef"):
                raise WorkflowSpecError(f"{where} names a template and an inline template; a {kind} takes one")
            name = f"{caller}.{inv.get('name')}{INLINE_SUFFIX}"
            out.append(hoist({**body, "name": name}))
            return {**{k: v for k, v in inv.items() if k != "inline"}, "template": name}

        if isinstance(t.get("dag"), dict) and isinstance(t["dag"].get("tasks"), list):
            t["dag"] = {**t["dag"], "tasks": [fix(x, "task") for x in t["dag"]["tasks"]]}
        if isinstance(t.get("steps"), list):
            t["steps"] = [[fix(x, "step") for x in g] if isinstance(g, list) else g for g in t["steps"]]
        return t

    templates = [hoist(t) for t in spec["templates"]]
    if not out:
        return doc
    return {**doc, "spec": {**spec, "templates": templates + out}}


def apply_template_defaults(doc: dict[str, Any]) -> dict[str, Any]:
    """spec.templateDefaults merged into every template (operator.go mergedTemplateDefaultsInto, as
    executeTemplate does for each template it runs): a strategic merge of the template over the
    defaults, a type's section (container, script, steps, ...) only into templates of that type.
    Returns the Workflow without templateDefaults (applying it again changes nothing)."""
    spec = doc.get("spec")
    if not isinstance(spec, dict) or "templateDefaults" not in spec:
        return doc
    defaults = spec.get("templateDefaults")
    if defaults is not None and not isinstance(defaults, dict):
        raise WorkflowSpecError("spec.templateDefaults must be a template")
    templates = []
    for t in spec.get("templates") or []:
        if isinstance(t, dict) and defaults:
            kinds = [k for k in _TEMPLATE_TYPES if k in t]
            applicable = {k: v for k, v in defaults.items() if k not in _TEMPLATE_TYPES or k in kinds}
            t = _strategic_merge(applicable, t)
        templates.append(t)
    new_spec = {k: v for k, v in spec.items() if k != "templateDefaults"}
    new_spec["templates"] = templates
    return {**doc, "spec": new_spec}


def parse_workflow(doc: dict[str, Any]) -> Workflow:
    """The Workflow the local executor runs, read once through the typed Argo model
    (bioinfra.argo.model.Workflow); what it cannot run as Argo does is refused here, naming it."""
    if doc.get("apiVersion") != "argoproj.io/v1alpha1" or doc.get("kind") != "Workflow":
        raise WorkflowSpecError("not an Argo Workflow (apiVersion argoproj.io/v1alpha1, kind Workflow)")
    doc = apply_template_defaults(hoist_inline_templates(doc))
    _unsupported(doc)
    wf = model.Workflow.parse(doc)
    templates = {t.name: t for t in wf.templates}
    name = (wf.name or wf.generate_name or "workflow").rstrip("-")
    for p in wf.arguments.parameters:
        _no_value_from(p, f"spec.arguments parameter '{p.name}'")
    parameters = {p.name: p.value or "" for p in wf.arguments.parameters}
    entry = templates.get(wf.entrypoint)
    if entry is not None and entry.kind in ("script", "container"):
        inputs_of = entry
        entry = _pod_entry(f"{name}\x00entry", name, entry.name, {p.name: "" for p in entry.inputs.parameters})
    elif entry is None or entry.kind not in ("dag", "steps"):
        raise WorkflowSpecError(
            "the local executor runs Workflows whose entrypoint is a steps, dag, script or container template"
            + (f" ('{entry.name}' is a {entry.kind or 'unknown'} template)" if entry is not None else "")
        )
    else:
        inputs_of = entry
    # The entrypoint's inputs come from spec.arguments (operator.go: the entrypoint is executed with
    # the Workflow's arguments), else their defaults.
    inputs: dict[str, str] = {}
    own_scope = {**global_variables(doc, name, parameters),
                 **{f"workflow.parameters.{k}": v for k, v in parameters.items()}}
    for p in inputs_of.inputs.parameters:
        if p.name in parameters:
            inputs[p.name] = parameters[p.name]
        elif p.value is not None or p.default is not None:
            # Its own value/default may use the globals and the inputs before it (SubstituteParams).
            text = p.value if p.value is not None else (p.default or "")
            scope = {**own_scope, **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
            inputs[p.name] = substitute(text, scope, where=f"the entrypoint's input '{p.name}'")
        else:
            raise WorkflowSpecError(f"the entrypoint needs parameter '{p.name}', which spec.arguments does not give")
    dag = entry.dag or model.DAG()
    if entry.steps is not None or wf.on_exit or wf.hooks or wf.retry_strategy is not None or any(
        t.has_exit_hook() or t.hooks for t in dag.tasks) or any(
        t.template in templates and _is_composite(templates[t.template], templates) for t in dag.tasks
    ):
        return _tree_workflow(wf, name, parameters, inputs, entry.name, templates)
    tasks: list[Task] = []
    seen: set[str] = set()
    for raw in dag.tasks:
        task = _task(raw, templates, composite_ok=False)
        if task.name in seen:
            raise WorkflowSpecError(f"two tasks are named '{task.name}'")
        seen.add(task.name)
        tasks.append(task)
    for t in tasks:
        called = templates[t.template]
        if called.retry_strategy is not None and called.retry_strategy.expression and not _expressions_available() \
                and called.steps is None:
            raise WorkflowSpecError(
                f"template '{t.template}'.retryStrategy uses expression, which the local executor does not evaluate yet"
            )
    names = {t.name for t in tasks}
    for t in tasks:
        for up in t.upstream:
            if up not in names:
                raise WorkflowSpecError(f"task '{t.name}' depends on unknown task '{up}'")
    _check_acyclic(tasks)
    target = dag.target
    if target:
        scope = {f"workflow.parameters.{k}": v for k, v in parameters.items()}
        scope.update({f"inputs.parameters.{k}": v for k, v in inputs.items()})
        target = substitute(target, scope, where="dag.target")
    targets = _targets(target, tasks)
    if target:
        # Argo runs only the targets and what they depend on (executeDAG calls executeDAGTask per
        # target, which recurses into its dependencies): no node is ever made for any other task.
        needed: set[str] = set()
        upstream = {t.name: t.upstream for t in tasks}
        stack = list(targets)
        while stack:
            tname = stack.pop()
            if tname not in needed:
                needed.add(tname)
                stack.extend(upstream[tname])
        tasks = [t for t in tasks if t.name in needed]
    parallelism, deadline = _spec_numbers(wf)
    return Workflow(
        name=name,
        parameters=parameters,
        inputs=inputs,
        deadline_seconds=deadline,
        captures_result=_reads_result(doc),
        globals=global_variables(doc, name, parameters),
        tasks=tasks,
        templates=_templates(templates),
        volumes=[str(v.get("name")) for v in wf.volumes],
        fail_fast=dag.fail_fast is not False,
        targets=targets,
        parallelism=parallelism,
    )


def global_variables(doc: dict[str, Any], name: str, parameters: dict[str, str]) -> dict[str, str]:
    """Argo's global variables for this run (operator.go setGlobalParameters; docs/variables.md)."""
    import datetime
    import uuid

    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    labels = {str(k): _param_text(v) for k, v in (meta.get("labels") or {}).items()}
    annotations = {str(k): _param_text(v) for k, v in (meta.get("annotations") or {}).items()}
    params_json = json.dumps([{"name": k, "value": v} for k, v in parameters.items()], separators=(",", ":"))
    out = {
        "workflow.name": name,
        "workflow.namespace": str(meta.get("namespace") or "default"),
        "workflow.mainEntrypoint": str(spec.get("entrypoint", "")),
        "workflow.serviceAccountName": str(spec.get("serviceAccountName") or "default"),
        "workflow.uid": str(uuid.uuid4()),
        "workflow.creationTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "workflow.creationTimestamp.RFC3339": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "workflow.parameters": params_json,
        "workflow.parameters.json": params_json,
        "workflow.labels.json": json.dumps(labels, separators=(",", ":")),
        "workflow.annotations.json": json.dumps(annotations, separators=(",", ":")),
        "workflow.duration": "0",
    }
    for ch in "aAbBcdfHIjmMpSUwWxXyYzZ":
        out[f"workflow.creationTimestamp.{ch}"] = now.strftime(f"%{ch}")
    if spec.get("priority") is not None:
        out["workflow.priority"] = _param_text(spec["priority"])
    out.update({f"workflow.labels.{k}": v for k, v in labels.items()})
    out.update({f"workflow.annotations.{k}": v for k, v in annotations.items()})
    return out


_RESULT_RE = re.compile(r"\.outputs\.result\b")


def _reads_result(doc: dict[str, Any]) -> bool:
    return bool(_RESULT_RE.search(json.dumps(doc.get("spec") or {})))


def _task(inv: model.DAGTask | model.Step, templates: dict[str, model.Template], *, composite_ok: bool,
          kind: str = "task") -> Task:
    """A DAG task or a step (the same fields: a step has no depends), read through the typed model."""
    where = f"{kind} '{inv.name}'"
    allowed = _TASK_KEYS if kind == "task" else _TASK_KEYS - {"depends", "dependencies"}
    unknown = set(inv.raw) - allowed
    if unknown:
        raise WorkflowSpecError(f"{where} uses {', '.join(sorted(unknown))}, which the local executor does not run")
    depends = (inv.depends or (" && ".join(inv.dependencies) if inv.dependencies else None)) \
        if isinstance(inv, model.DAGTask) else None
    if inv.template not in templates:
        raise WorkflowSpecError(f"{where} calls unknown template '{inv.template}'")
    if not composite_ok and _is_composite(templates[inv.template], templates):
        raise WorkflowSpecError(f"{where} calls nested template '{inv.template}'")
    fan_out = [k for k in ("withParam", "withItems", "withSequence") if k in inv.raw]
    if len(fan_out) > 1:
        raise WorkflowSpecError(f"{where} uses {' and '.join(fan_out)}; a {kind} takes one of them")
    if "withItems" in inv.raw and not isinstance(inv.raw["withItems"], list):
        raise WorkflowSpecError(f"{where}: withItems must be a list")
    if inv.arguments.artifacts:
        raise WorkflowSpecError(f"{where} passes artifacts, which the local executor does not provide")
    continue_on = inv.continue_on or model.ContinueOn()
    exit_hook = _exit_hook(inv.on_exit, inv.hooks, templates, where)
    return Task(
        exit_hook=exit_hook,
        hook_of="tasks" if kind == "task" else "steps",
        name=inv.name,
        template=inv.template,
        arguments={p.name: p.value or "" for p in inv.arguments.parameters},
        depends=depends,
        when=inv.when or None,
        with_param=inv.with_param if "withParam" in inv.raw else None,
        with_items=inv.with_items if "withItems" in inv.raw else None,
        with_sequence=_sequence(inv.with_sequence, where) if "withSequence" in inv.raw else None,
        # Locally a step either exits non-zero or not: Argo's Failed and Errored are one phase here.
        continue_on_failed=continue_on.failed or continue_on.error,
        continue_on_error=continue_on.error,
        continue_on_failed_only=continue_on.failed,
    )


def _exit_hook(on_exit: str, hooks: dict[str, model.LifecycleHook], templates: dict[str, model.Template],
               where: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """onExit, else hooks.exit (workflow_types.go GetExitHook: onExit wins; a hook's own arguments,
    else the Workflow's: LifecycleHook.WithArgs). Hooks run on an expression (any other key) are refused."""
    other = sorted(k for k in hooks if k != "exit")
    if other or any(h.expression for h in hooks.values()):
        raise WorkflowSpecError(
            f"{where} uses hooks run on an expression ({', '.join(other) or 'exit.expression'}), which the local "
            "executor does not run (only hooks.exit)"
        )
    hook = hooks.get("exit")
    if not on_exit and hook is None:
        return None
    if hook is not None and not on_exit:
        if hook.arguments.artifacts:
            raise WorkflowSpecError(f"{where}: hooks.exit passes artifacts, which the local executor does not provide")
        if not hook.template:
            raise WorkflowSpecError(f"{where}: hooks.exit names no template (templateRef is not run locally)")
        template, args = hook.template, tuple((p.name, _param_text(p.value) if p.value is not None else "")
                                              for p in hook.arguments.parameters)
    else:
        template, args = on_exit, ()
    if template not in templates:
        raise WorkflowSpecError(f"{where}: its exit handler names unknown template '{template}'")
    return template, args


def _is_composite(template: model.Template, templates: dict[str, model.Template]) -> bool:
    """A dag template, or a steps template that is not shaped as a retry wrapper (a retryStrategy and
    one group of one step, with only a wrapper's keys, calling a script or container template): the
    tree engine runs it."""
    if template.dag is not None:
        return True
    if template.steps is None:
        return False
    groups = template.steps
    # A wrapper holds a failure budget: without a retryStrategy it is a steps template like any other.
    if template.retry_strategy is None or set(template.raw) - _WRAPPER_KEYS or len(groups) != 1 or len(groups[0]) != 1:
        return True
    step = groups[0][0]
    called = templates.get(step.template)
    return bool(set(step.raw) - _WRAPPER_STEP_KEYS) or called is None or called.dag is not None \
        or called.steps is not None


@dataclass(frozen=True)
class Composite:
    """A steps or dag template run by the tree engine (bioinfra.executor.tree)."""

    name: str
    kind: str  # "steps" or "dag"
    inputs: dict[str, str | None]  # name -> default
    groups: tuple[tuple[Task, ...], ...] = ()  # steps: the groups, run one after another
    tasks: tuple[Task, ...] = ()  # dag
    targets: tuple[str, ...] = ()
    target_text: str | None = None  # dag.target before substitution (it may use tags)
    fail_fast: bool = True
    outputs: tuple[tuple[str, str | None, str | None], ...] = ()  # (name, valueFrom.parameter, default)
    deadline: str | None = None
    # spec.retryStrategy, which Argo applies to every template without its own, steps and dag ones
    # too (operator.go wfOperationCtx.retryStrategy, used by executeTemplate): a Retry node whose
    # children "<node>(0)", "<node>(1)", ... each run the template.
    retry: RetryPolicy | None = None
    output_expressions: dict[str, str] = field(default_factory=dict)  # output name -> valueFrom.expression


_COMPOSITE_KEYS = {"name", "inputs", "outputs", "metadata", "steps", "dag", "activeDeadlineSeconds", "parallelism"}


def _composite(t: model.Template, templates: dict[str, model.Template]) -> Composite:
    """A steps or dag template, read through the typed model."""
    name = t.name or "<unnamed>"
    where = f"template '{name}'"
    unknown = set(t.raw) - _COMPOSITE_KEYS
    if unknown:
        raise WorkflowSpecError(f"{where} uses {', '.join(sorted(unknown))}, which the local executor does not run")
    if t.raw.get("parallelism") is not None:
        raise WorkflowSpecError(f"{where} uses parallelism, which the local executor runs only on spec")
    outputs = []
    expressions: dict[str, str] = {}
    for p in t.outputs.parameters:
        source = p.value_from or model.ValueFrom()
        if source.expression and source == model.ValueFrom(expression=source.expression, default=source.default):
            # scope.go wfScope.resolveParameter: expr over the node's scope (getTemplateOutputsFromScope).
            expressions[p.name] = source.expression
            outputs.append((p.name, None, source.default))
            continue
        if source != model.ValueFrom(parameter=source.parameter, default=source.default) or not source.parameter:
            raise WorkflowSpecError(
                f"{where}: output parameter '{p.name}' of a {t.kind} template must be valueFrom.parameter "
                "or valueFrom.expression"
            )
        outputs.append((p.name, source.parameter, source.default))
    if t.outputs.artifacts:
        raise WorkflowSpecError(f"{where} uses artifacts, which the local executor does not provide")
    deadline = _deadline(t.active_deadline_seconds, where)
    if t.steps is not None:
        if any(not isinstance(g, list) for g in t.raw.get("steps") or []):
            raise WorkflowSpecError(f"{where}: each steps entry must be a list of parallel steps")
        groups = tuple(tuple(_task(s, templates, composite_ok=True, kind="step") for s in g) for g in t.steps)
        return Composite(name, "steps", _input_defaults(t), groups=groups, outputs=tuple(outputs), deadline=deadline,
                         output_expressions=expressions)
    dag = t.dag or model.DAG()
    extra = set(t.raw.get("dag") or {}) - {"tasks", "target", "failFast"}
    if extra:
        raise WorkflowSpecError(f"{where}: dag uses {', '.join(sorted(extra))}")
    tasks = [_task(x, templates, composite_ok=True) for x in dag.tasks]
    if len({x.name for x in tasks}) != len(tasks):
        raise WorkflowSpecError(f"{where}: two tasks have the same name")
    for x in tasks:
        for up in x.upstream:
            if up not in {y.name for y in tasks}:
                raise WorkflowSpecError(f"{where}: task '{x.name}' depends on unknown task '{up}'")
    topological_order(tasks)
    return Composite(name, "dag", _input_defaults(t), tasks=tuple(tasks), target_text=dag.target or None,
                     fail_fast=dag.fail_fast is not False, outputs=tuple(outputs), deadline=deadline,
                     output_expressions=expressions)


def _targets(target: Any, tasks: list[Task]) -> list[str]:
    """dag.target's task names in its order, else findLeafTaskNames: the tasks nothing depends on, sorted."""
    from bioinfra.executor.phase import leaf_tasks

    if not target:
        return leaf_tasks({t.name: t.upstream for t in tasks})
    names = {t.name for t in tasks}
    out = [n for n in str(target).split(" ") if n]
    unknown = [n for n in out if n not in names]
    if unknown:
        raise WorkflowSpecError(f"dag.target names unknown task(s): {', '.join(unknown)}")
    return out


def _sequence(seq: model.Sequence | None, where: str) -> Sequence:
    if seq is None:
        raise WorkflowSpecError(f"{where}: withSequence takes count, start, end and format")
    if (seq.count is None) == (seq.end is None):
        raise WorkflowSpecError(f"{where}: withSequence needs either count or end")
    return Sequence(count=seq.count, start=seq.start, end=seq.end, format=seq.format or None)


_ITEM_TAG_RE = re.compile(r"\{\{\s*item(?:\.([^{}\s]+))?\s*\}\}")


def resolve_sequence(sequence: Sequence | None, scope: dict[str, str], where: str) -> Sequence | None:
    """withSequence's fields with their tags substituted (e.g. count: "{{steps.x.outputs.result}}")."""
    if sequence is None:
        return None
    return Sequence(**{k: (substitute(v, scope, where=f"{where} withSequence") if isinstance(v, str) else v)
                       for k, v in dataclasses.asdict(sequence).items()})


def expand_items(values: list[Any], sequence: Sequence | None = None) -> list[Any]:
    """withSequence's items as Argo makes them (strings, `format` applied); lists pass through."""
    if sequence is None:
        return values
    try:
        start = int(sequence.start or 0)
        count = int(sequence.count) if sequence.count is not None else None
        end = int(sequence.end or 0)
    except ValueError:
        raise WorkflowSpecError(f"withSequence needs whole numbers (got {sequence})") from None
    if count is not None:
        numbers = list(range(start, start + count))
    else:
        numbers = list(range(start, end + 1)) if end >= start else list(range(start, end - 1, -1))
    fmt = sequence.format or "%d"
    return [fmt % n for n in numbers]


def item_label(item: Any) -> str:
    """How Argo shows an item in a child's name: maps as sorted key:value pairs, scalars as text."""
    if isinstance(item, dict):
        return ",".join(f"{k}:{_scalar_text(item[k])}" for k in sorted(item))
    return _scalar_text(item)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def bind_item(text: str, item: Any, where: str) -> str:
    """Substitute `{{item}}` and `{{item.<key>}}` (the rest is substituted when the child runs)."""

    def replace(m: re.Match[str]) -> str:
        key = m.group(1)
        if key is None:
            return json.dumps(item, separators=(",", ":")) if isinstance(item, (dict, list)) else _scalar_text(item)
        if not isinstance(item, dict) or key not in item:
            raise WorkflowSpecError(f"{where}: item {item_label(item)!r} has no field '{key}'")
        return _scalar_text(item[key])

    return _ITEM_TAG_RE.sub(replace, text)


def expand_fan_out(task: Task, variables: dict[str, str], where: str) -> list[Task]:
    """A fanned-out task's or step's children: `withParam` (a JSON list once its tags are
    substituted), else `withItems`, or `withSequence` (its fields may be tags). A WorkflowSpecError
    here is the node's Error in Argo (dag.go executeDAGTask, steps.go expandStepGroup)."""
    if task.with_param is not None:
        text = substitute(task.with_param, variables, where=f"{where} withParam")
        try:
            values = json.loads(text)
        except ValueError:
            raise WorkflowSpecError(f"{where}: withParam is not JSON: {text[:200]!r}") from None
        if not isinstance(values, list):
            raise WorkflowSpecError(f"{where}: withParam must be a JSON list, not {type(values).__name__}")
    else:
        values = list(task.with_items or ())
    return children_of(task, expand_items(values, resolve_sequence(task.with_sequence, variables, where)))


def node_scope(prefix: str, phase: str, parameters: dict[str, str], result: str | None,
               exit_code: int | None) -> dict[str, str]:
    """The tags a finished node gives the nodes after it, under `tasks.X` / `steps.X` (operator.go
    buildLocalScope and addOutputsToLocalScope): `.status`, `.outputs.parameters.<p>`,
    `.outputs.result` and `.exitCode` (docs/variables.md; there is no `.outputs.exitCode`)."""
    scope = {f"{prefix}.status": phase}
    scope.update({f"{prefix}.outputs.parameters.{k}": v for k, v in parameters.items()})
    if result is not None:
        scope[f"{prefix}.outputs.result"] = result
    if exit_code is not None:
        scope[f"{prefix}.exitCode"] = str(exit_code)
    return scope


def aggregate_outputs(prefix: str, succeeded: list[tuple[dict[str, str], str | None]]) -> dict[str, str]:
    """A fan-out's outputs once it is done, from its Succeeded children's (output parameters,
    result) in item order, as operator.go processAggregateNodeOutputs makes them: each output
    parameter as the JSON list of the children's values (aggregatedJSONValueList: as JSON if every
    value parses, else as strings), `outputs.parameters` as the list of each child's map, and
    `outputs.result` as the list of the children's results parsed as JSON (set even when empty)."""
    variables: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for parameters, _ in succeeded:
        for key, value in parameters.items():
            values.setdefault(key, []).append(value)
    for key, vals in values.items():
        try:
            variables[f"{prefix}.outputs.parameters.{key}"] = json.dumps([json.loads(v) for v in vals])
        except ValueError:
            variables[f"{prefix}.outputs.parameters.{key}"] = json.dumps(vals)
    variables[f"{prefix}.outputs.parameters"] = json.dumps([p for p, _ in succeeded if p])
    items: list[Any] = []
    for _, result in succeeded:
        if result is not None:
            try:
                items.append(json.loads(result))
            except ValueError:
                items.append(result)
    variables[f"{prefix}.outputs.result"] = json.dumps(items)
    return variables


def children_of(task: Task, items: list[Any]) -> list[Task]:
    """One child task per item, named "<task>(<i>:<item>)" as Argo names them."""
    children = []
    for i, item in enumerate(items):
        name = f"{task.name}({i}:{item_label(item)})"
        children.append(dataclasses.replace(
            task,
            item=item,
            name=name,
            arguments={k: bind_item(v, item, f"task '{name}'") for k, v in task.arguments.items()},
            depends=None,
            when=bind_item(task.when, item, f"task '{name}' when") if task.when else None,
            with_param=None,
            with_items=None,
            with_sequence=None,
            group=task.name,
            upstream_of_group=tuple(task.upstream),
        ))
    return children


def _templates(templates: dict[str, model.Template], *, composites_ok: bool = False) -> dict[str, Template]:
    leaves = {n: _template(t) for n, t in templates.items() if t.dag is None and t.steps is None}
    wrappers = {n: _wrapper(t, templates, leaves) for n, t in templates.items()
                if t.steps is not None and not (composites_ok and _is_composite(t, templates))}
    return {**leaves, **wrappers}


def _spec_numbers(wf: model.Workflow) -> tuple[int | None, float | None]:
    """spec.parallelism and spec.activeDeadlineSeconds (the model keeps only integers; anything else
    given is refused here rather than dropped)."""
    spec = wf.raw.get("spec") or {}
    parallelism = spec.get("parallelism")
    if parallelism is not None and (not str(parallelism).isdigit() or int(parallelism) < 1):
        raise WorkflowSpecError(f"spec.parallelism must be a whole number >= 1 (got {parallelism!r})")
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not str(deadline).strip().isdigit():
        raise WorkflowSpecError(f"spec.activeDeadlineSeconds must be a whole number of seconds (got {deadline!r})")
    return (int(parallelism) if parallelism is not None else None,
            float(deadline) if deadline is not None else None)


def _tree_workflow(wf: model.Workflow, name: str, parameters: dict[str, str], inputs: dict[str, str], entry: str,
                   templates: dict[str, model.Template]) -> Workflow:
    """A Workflow the tree engine runs (bioinfra.executor.tree): a steps entrypoint, templates
    calling steps/dag templates at any depth, or an exit handler."""
    if "\x00entry" in entry:  # a pod entrypoint, run as the one-task DAG made for it
        templates = {**templates, entry: _pod_entry(entry, name, wf.entrypoint, inputs)}
    if wf.on_exit and wf.on_exit not in templates:
        raise WorkflowSpecError(f"spec.onExit names unknown template '{wf.on_exit}'")
    # spec.onExit, else spec.hooks.exit (workflow_types.go WorkflowSpec.GetExitHook): one exit handler.
    exit_hook = _exit_hook(wf.on_exit, wf.hooks, templates, "spec")
    composites = {n: _composite(t, templates) for n, t in templates.items() if _is_composite(t, templates)}
    leaves = _templates(templates, composites_ok=True)
    if wf.retry_strategy is not None:
        # spec.retryStrategy is the retryStrategy of every template that has none (operator.go
        # wfOperationCtx.retryStrategy): pods retry in the attempt loop, steps/dag templates as a
        # Retry node. The pod entrypoint's one-task DAG is ours, not Argo's: its pod retries instead.
        default = _retry(wf.retry_strategy, "spec")
        if default.expression and composites:
            raise WorkflowSpecError(
                "spec.retryStrategy uses expression, which the local executor evaluates only on script and "
                "container templates"
            )
        leaves = {n: t if templates.get(n) is None or templates[n].retry_strategy is not None
                  else dataclasses.replace(t, retry=default) for n, t in leaves.items()}
        composites = {n: c if "\x00entry" in n else dataclasses.replace(
                          c, retry=_retry(templates[n].retry_strategy, f"template '{n}'")
                          if templates[n].retry_strategy is not None else default)
                      for n, c in composites.items()}
    for c in composites.values():
        for t in (*c.tasks, *(s for g in c.groups for s in g)):
            called = templates[t.template]
            if called.retry_strategy is not None and called.retry_strategy.expression \
                    and not _expressions_available() and t.template in leaves and leaves[t.template].attempt is None:
                raise WorkflowSpecError(
                    f"template '{t.template}'.retryStrategy uses expression, which the local executor does not "
                    "evaluate yet"
                )
            if called.retry_strategy is not None and t.template in composites:
                raise WorkflowSpecError(
                    f"template '{t.template}' is a {composites[t.template].kind} template with a retryStrategy, "
                    "which the local executor retries only on script and container templates"
                )
    parallelism, deadline = _spec_numbers(wf)
    return Workflow(
        name=name, parameters=parameters, inputs=inputs, tasks=[], templates=leaves,
        volumes=[str(v.get("name")) for v in wf.volumes],
        parallelism=parallelism, deadline_seconds=deadline,
        captures_result=_reads_result(wf.raw), composites=composites, entry=entry,
        on_exit=exit_hook[0] if exit_hook else None, on_exit_arguments=dict(exit_hook[1]) if exit_hook else {},
        globals=global_variables(wf.raw, name, parameters),
    )


def _pod_entry(entry: str, name: str, pod: str, inputs: dict[str, str]) -> model.Template:
    """A pod template as the entrypoint: Argo's one node is that pod, named after the Workflow
    (operator.go executeTemplate on the entrypoint). It runs as a DAG of that one task, which is its
    own target: the Workflow's phase is the pod's."""
    return model.Template.parse({"name": entry, "dag": {"tasks": [{
        "name": name, "template": pod,
        "arguments": {"parameters": [{"name": k, "value": f"{{{{inputs.parameters.{k}}}}}"} for k in inputs]},
    }]}})


def topological_order(tasks: list[Task]) -> list[str]:
    """Kahn's algorithm, ties broken by declaration order (so output is stable)."""
    order: list[str] = []
    remaining = {t.name: set(t.upstream) for t in tasks}
    while remaining:
        ready = [t.name for t in tasks if t.name in remaining and not remaining[t.name]]
        if not ready:
            cycle = ", ".join(sorted(remaining))
            raise WorkflowSpecError(f"the DAG has a cycle among: {cycle}")
        for name in ready:
            order.append(name)
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def _check_acyclic(tasks: list[Task]) -> None:
    topological_order(tasks)


def container_to_host(path: str, mounts: dict[str, str], volume_roots: dict[str, PurePosixPath | Any]) -> Any:
    """Map a container path under a volume mount to the volume's host folder."""
    p = PurePosixPath(path)
    for mount_path in sorted(mounts, key=len, reverse=True):
        try:
            rel = p.relative_to(mount_path)
        except ValueError:
            continue
        volume = mounts[mount_path]
        if volume not in volume_roots:
            raise WorkflowSpecError(f"volume '{volume}' has no local folder")
        return volume_roots[volume] / rel
    raise WorkflowSpecError(f"path {path} is not under any volume mount of its template")
