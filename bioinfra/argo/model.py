"""One typed model of the Argo Workflow objects bioinfra uses, parsed once from a dict.

Field names follow Argo's Go types (pkg/apis/workflow/v1alpha1: Workflow, Template, DAGTask,
WorkflowStep, RetryStrategy, NodeStatus), in snake_case. Parsing is tolerant the way Go's
unmarshalling into typed structs is: a key we do not model is dropped (the strict JSON schema
reports it), a missing list is empty, a missing object is None. Values Argo stores as
`AnyString` (parameter values, enum entries) become str, as Go does: 8 -> "8", true -> "true".

Every object keeps the dict it came from (`raw`) for code that needs the exact JSON (the linter
scans it for {{tags}}, as validate.go scans json.Marshal(template)).

This module is independent of bioinfra.executor; the executor, `estimate` and the status reader
can share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The template kinds, in validate.go's validateTemplateType order, with the Go TemplateType names
# Argo prints in messages (e.g. "path must be specified for Container templates").
TEMPLATE_KINDS: dict[str, str] = {
    "container": "Container",
    "containerSet": "ContainerSet",
    "steps": "Steps",
    "script": "Script",
    "resource": "Resource",
    "dag": "DAG",
    "suspend": "Suspend",
    "data": "Data",
    "http": "HTTP",
    "plugin": "Plugin",
}
# Template.IsLeaf() / IsPodType() in Argo's v1alpha1 types.
LEAF_KINDS = frozenset({"container", "containerSet", "script", "resource", "data", "http", "plugin"})
POD_KINDS = frozenset({"container", "containerSet", "script", "resource", "data"})
# Where an artifact's location can be given (v1alpha1.ArtifactLocation).
ARTIFACT_LOCATIONS = ("s3", "git", "http", "artifactory", "hdfs", "raw", "oss", "gcs", "azure", "plugin")


def _d(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list:
    return value if isinstance(value, list) else []


def _s(value: Any) -> str:
    """A Go string field: absent or null is ""."""
    if value is None:
        return ""
    return value if isinstance(value, str) else any_string(value)


def any_string(value: Any) -> str:
    """Argo's AnyString: JSON numbers and booleans unmarshal to their text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def _opt_s(value: Any) -> str | None:
    return None if value is None else any_string(value)


@dataclass(frozen=True)
class ValueFrom:
    path: str = ""
    jq_filter: str = ""
    json_path: str = ""
    parameter: str = ""
    expression: str = ""
    event: str = ""
    supplied: bool = False  # `supplied: {}` present
    config_map_key_ref: dict | None = None
    default: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> ValueFrom | None:
        if not isinstance(raw, dict):
            return None
        return cls(
            path=_s(raw.get("path")), jq_filter=_s(raw.get("jqFilter")), json_path=_s(raw.get("jsonPath")),
            parameter=_s(raw.get("parameter")), expression=_s(raw.get("expression")), event=_s(raw.get("event")),
            supplied=raw.get("supplied") is not None,
            config_map_key_ref=raw.get("configMapKeyRef") if isinstance(raw.get("configMapKeyRef"), dict) else None,
            default=_opt_s(raw.get("default")),
        )


@dataclass(frozen=True)
class Parameter:
    name: str
    value: str | None = None
    default: str | None = None
    value_from: ValueFrom | None = None
    enum: tuple[str, ...] | None = None  # None: no enum key; (): an empty list
    global_name: str = ""
    description: str = ""

    @classmethod
    def parse(cls, raw: Any) -> Parameter:
        raw = _d(raw)
        enum = raw.get("enum")
        return cls(
            name=_s(raw.get("name")), value=_opt_s(raw.get("value")), default=_opt_s(raw.get("default")),
            value_from=ValueFrom.parse(raw.get("valueFrom")),
            enum=None if enum is None else tuple(any_string(e) for e in _l(enum)),
            global_name=_s(raw.get("globalName")), description=_s(raw.get("description")),
        )


@dataclass(frozen=True)
class Artifact:
    name: str
    path: str = ""
    from_: str = ""
    from_expression: str = ""
    optional: bool = False
    global_name: str = ""
    locations: tuple[str, ...] = ()  # which of ARTIFACT_LOCATIONS are set
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, raw: Any) -> Artifact:
        raw = _d(raw)
        return cls(
            name=_s(raw.get("name")), path=_s(raw.get("path")), from_=_s(raw.get("from")),
            from_expression=_s(raw.get("fromExpression")), optional=bool(raw.get("optional")),
            global_name=_s(raw.get("globalName")),
            locations=tuple(k for k in ARTIFACT_LOCATIONS if raw.get(k) is not None), raw=raw,
        )

    def has_location_or_key(self) -> bool:
        return bool(self.locations)


@dataclass(frozen=True)
class Arguments:
    """Arguments, Inputs and Outputs share this shape (parameters + artifacts)."""

    parameters: tuple[Parameter, ...] = ()
    artifacts: tuple[Artifact, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> Arguments:
        raw = _d(raw)
        return cls(
            parameters=tuple(Parameter.parse(p) for p in _l(raw.get("parameters"))),
            artifacts=tuple(Artifact.parse(a) for a in _l(raw.get("artifacts"))),
        )

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def artifact(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.name == name), None)


@dataclass(frozen=True)
class Backoff:
    duration: str = ""
    factor: str | None = None
    max_duration: str = ""

    @classmethod
    def parse(cls, raw: Any) -> Backoff | None:
        if not isinstance(raw, dict):
            return None
        return cls(duration=_s(raw.get("duration")), factor=_opt_s(raw.get("factor")),
                   max_duration=_s(raw.get("maxDuration")))


@dataclass(frozen=True)
class RetryStrategy:
    limit: str | None = None  # IntOrString: "3" or "{{inputs.parameters.n}}"
    retry_policy: str = ""  # Always | OnFailure | OnError | OnTransientError | "" (= OnFailure)
    expression: str = ""
    backoff: Backoff | None = None

    @classmethod
    def parse(cls, raw: Any) -> RetryStrategy | None:
        if not isinstance(raw, dict):
            return None
        return cls(limit=_opt_s(raw.get("limit")), retry_policy=_s(raw.get("retryPolicy")),
                   expression=_s(raw.get("expression")), backoff=Backoff.parse(raw.get("backoff")))


@dataclass(frozen=True)
class ContinueOn:
    error: bool = False
    failed: bool = False

    @classmethod
    def parse(cls, raw: Any) -> ContinueOn | None:
        if not isinstance(raw, dict):
            return None
        return cls(error=bool(raw.get("error")), failed=bool(raw.get("failed")))


@dataclass(frozen=True)
class Sequence:
    count: str | None = None
    start: str | None = None
    end: str | None = None
    format: str = ""

    @classmethod
    def parse(cls, raw: Any) -> Sequence | None:
        if not isinstance(raw, dict):
            return None
        return cls(count=_opt_s(raw.get("count")), start=_opt_s(raw.get("start")), end=_opt_s(raw.get("end")),
                   format=_s(raw.get("format")))


@dataclass(frozen=True)
class TemplateRef:
    name: str = ""
    template: str = ""
    cluster_scope: bool = False

    @classmethod
    def parse(cls, raw: Any) -> TemplateRef | None:
        if not isinstance(raw, dict):
            return None
        return cls(name=_s(raw.get("name")), template=_s(raw.get("template")),
                   cluster_scope=bool(raw.get("clusterScope")))


@dataclass(frozen=True)
class LifecycleHook:
    template: str = ""
    expression: str = ""
    arguments: Arguments = field(default_factory=Arguments)

    @classmethod
    def parse(cls, raw: Any) -> LifecycleHook:
        raw = _d(raw)
        return cls(template=_s(raw.get("template")), expression=_s(raw.get("expression")),
                   arguments=Arguments.parse(raw.get("arguments")))


def _hooks(raw: Any) -> dict[str, LifecycleHook]:
    return {str(k): LifecycleHook.parse(v) for k, v in _d(raw).items()}


@dataclass(frozen=True)
class _Invocation:
    """What DAGTask and Step (WorkflowStep) share: a call of a template with arguments."""

    name: str
    template: str = ""
    template_ref: TemplateRef | None = None
    inline: dict | None = None  # an inline template (parsed on demand: Template.parse(inline))
    arguments: Arguments = field(default_factory=Arguments)
    when: str = ""
    with_items: tuple[Any, ...] = ()
    with_param: str = ""
    with_sequence: Sequence | None = None
    continue_on: ContinueOn | None = None
    on_exit: str = ""
    hooks: dict[str, LifecycleHook] = field(default_factory=dict)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @staticmethod
    def _common(raw: dict) -> dict:
        return dict(
            name=_s(raw.get("name")), template=_s(raw.get("template")),
            template_ref=TemplateRef.parse(raw.get("templateRef")),
            inline=raw.get("inline") if isinstance(raw.get("inline"), dict) else None,
            arguments=Arguments.parse(raw.get("arguments")), when=_s(raw.get("when")),
            with_items=tuple(_l(raw.get("withItems"))), with_param=_s(raw.get("withParam")),
            with_sequence=Sequence.parse(raw.get("withSequence")), continue_on=ContinueOn.parse(raw.get("continueOn")),
            on_exit=_s(raw.get("onExit")), hooks=_hooks(raw.get("hooks")), raw=raw,
        )

    @property
    def is_loop(self) -> bool:
        return bool(self.with_items) or bool(self.with_param) or self.with_sequence is not None

    def has_exit_hook(self) -> bool:
        return bool(self.on_exit) or "exit" in self.hooks


@dataclass(frozen=True)
class DAGTask(_Invocation):
    depends: str = ""
    dependencies: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> DAGTask:
        raw = _d(raw)
        return cls(**cls._common(raw), depends=_s(raw.get("depends")),
                   dependencies=tuple(_s(d) for d in _l(raw.get("dependencies"))))


@dataclass(frozen=True)
class Step(_Invocation):
    @classmethod
    def parse(cls, raw: Any) -> Step:
        return cls(**cls._common(_d(raw)))


@dataclass(frozen=True)
class DAG:
    tasks: tuple[DAGTask, ...] = ()
    fail_fast: bool | None = None
    target: str = ""

    @classmethod
    def parse(cls, raw: Any) -> DAG:
        raw = _d(raw)
        ff = raw.get("failFast")
        return cls(tasks=tuple(DAGTask.parse(t) for t in _l(raw.get("tasks"))),
                   fail_fast=ff if isinstance(ff, bool) else None, target=_s(raw.get("target")))


@dataclass(frozen=True)
class Template:
    name: str
    kinds: tuple[str, ...] = ()  # every kind key present, in TEMPLATE_KINDS order: exactly one is valid
    inputs: Arguments = field(default_factory=Arguments)
    outputs: Arguments = field(default_factory=Arguments)
    dag: DAG | None = None
    steps: tuple[tuple[Step, ...], ...] | None = None  # step groups; each group runs in parallel
    container: dict | None = None
    script: dict | None = None
    resource: dict | None = None
    container_set: dict | None = None
    suspend: dict | None = None
    data: dict | None = None
    http: dict | None = None
    plugin: dict | None = None
    retry_strategy: RetryStrategy | None = None
    active_deadline_seconds: str | None = None  # IntOrString, as text
    parallelism: int | None = None
    timeout: str = ""
    daemon: bool = False
    metadata: dict = field(default_factory=dict)
    node_selector: dict = field(default_factory=dict)
    tolerations: tuple[dict, ...] = ()
    init_containers: tuple[dict, ...] = ()
    metrics: dict | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, raw: Any) -> Template:
        raw = _d(raw)
        steps = raw.get("steps")
        ads = raw.get("activeDeadlineSeconds")
        par = raw.get("parallelism")

        def obj(key: str) -> dict | None:
            v = raw.get(key)
            return v if isinstance(v, dict) else ({} if v is not None and key == "suspend" else None)

        return cls(
            name=_s(raw.get("name")),
            kinds=tuple(k for k in TEMPLATE_KINDS if raw.get(k) is not None),
            inputs=Arguments.parse(raw.get("inputs")), outputs=Arguments.parse(raw.get("outputs")),
            dag=DAG.parse(raw["dag"]) if raw.get("dag") is not None else None,
            # Each steps entry is a ParallelSteps: a list of steps (YAML `- - name: a`).
            steps=None if steps is None else tuple(
                tuple(Step.parse(s) for s in _l(group)) for group in _l(steps)),
            container=obj("container"), script=obj("script"), resource=obj("resource"),
            container_set=obj("containerSet"), suspend=obj("suspend"), data=obj("data"), http=obj("http"),
            plugin=obj("plugin"),
            retry_strategy=RetryStrategy.parse(raw.get("retryStrategy")),
            active_deadline_seconds=None if ads is None else any_string(ads),
            parallelism=par if isinstance(par, int) and not isinstance(par, bool) else None,
            timeout=_s(raw.get("timeout")), daemon=raw.get("daemon") is True,
            metadata=_d(raw.get("metadata")), node_selector=_d(raw.get("nodeSelector")),
            tolerations=tuple(_d(t) for t in _l(raw.get("tolerations"))),
            init_containers=tuple(_d(c) for c in _l(raw.get("initContainers"))),
            metrics=raw.get("metrics") if isinstance(raw.get("metrics"), dict) else None,
            raw=raw,
        )

    @property
    def kind(self) -> str:
        """The template's one kind ("" if none); with several, the first in Argo's order."""
        return self.kinds[0] if self.kinds else ""

    @property
    def type_name(self) -> str:
        """Argo's TemplateType name, as printed in its messages."""
        return TEMPLATE_KINDS.get(self.kind, "Unknown")

    def is_leaf(self) -> bool:
        return self.kind in LEAF_KINDS

    def is_pod_type(self) -> bool:
        return self.kind in POD_KINDS

    def has_output(self) -> bool:
        """Template.HasOutput(): whether {{...outputs.result}} and exitCode exist for its node."""
        if self.kind == "containerSet":
            return any(_d(c).get("name") == "main" for c in _l(_d(self.container_set).get("containers")))
        return self.kind in ("container", "script", "data", "http", "plugin")


@dataclass(frozen=True)
class NodeStatus:
    """One entry of a Workflow's status.nodes."""

    id: str
    name: str = ""
    display_name: str = ""
    type: str = ""  # Pod, DAG, Steps, StepGroup, Retry, TaskGroup, Skipped, Suspend, ...
    phase: str = ""  # Pending, Running, Succeeded, Skipped, Failed, Error, Omitted
    template_name: str = ""
    boundary_id: str = ""
    children: tuple[str, ...] = ()
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    outputs: Arguments | None = None
    exit_code: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, node_id: str, raw: Any) -> NodeStatus:
        raw = _d(raw)
        outputs = raw.get("outputs")
        return cls(
            id=_s(raw.get("id")) or node_id, name=_s(raw.get("name")), display_name=_s(raw.get("displayName")),
            type=_s(raw.get("type")), phase=_s(raw.get("phase")), template_name=_s(raw.get("templateName")),
            boundary_id=_s(raw.get("boundaryID")), children=tuple(_s(c) for c in _l(raw.get("children"))),
            message=_s(raw.get("message")), started_at=_s(raw.get("startedAt")), finished_at=_s(raw.get("finishedAt")),
            outputs=Arguments.parse(outputs) if isinstance(outputs, dict) else None,
            exit_code=_opt_s(_d(outputs).get("exitCode")), raw=raw,
        )


@dataclass(frozen=True)
class WorkflowStatus:
    phase: str = ""
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    nodes: dict[str, NodeStatus] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any) -> WorkflowStatus:
        raw = _d(raw)
        return cls(phase=_s(raw.get("phase")), message=_s(raw.get("message")), started_at=_s(raw.get("startedAt")),
                   finished_at=_s(raw.get("finishedAt")),
                   nodes={str(k): NodeStatus.parse(str(k), v) for k, v in _d(raw.get("nodes")).items()})


@dataclass(frozen=True)
class Workflow:
    name: str = ""
    generate_name: str = ""
    namespace: str = ""
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    entrypoint: str = ""
    arguments: Arguments = field(default_factory=Arguments)
    templates: tuple[Template, ...] = ()
    on_exit: str = ""
    hooks: dict[str, LifecycleHook] = field(default_factory=dict)
    parallelism: int | None = None
    pod_gc: dict | None = None
    ttl_strategy: dict | None = None
    active_deadline_seconds: int | None = None
    volumes: tuple[dict, ...] = ()
    service_account_name: str = ""
    priority: int | None = None
    template_defaults: dict | None = None
    retry_strategy: RetryStrategy | None = None  # spec.retryStrategy: for templates without their own
    workflow_metadata: dict | None = None
    workflow_template_ref: dict | None = None
    status: WorkflowStatus = field(default_factory=WorkflowStatus)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, raw: Any) -> Workflow:
        raw = _d(raw)
        meta, spec = _d(raw.get("metadata")), _d(raw.get("spec"))

        def opt_int(v: Any) -> int | None:
            return v if isinstance(v, int) and not isinstance(v, bool) else None

        def opt_obj(v: Any) -> dict | None:
            return v if isinstance(v, dict) else None

        return cls(
            name=_s(meta.get("name")), generate_name=_s(meta.get("generateName")), namespace=_s(meta.get("namespace")),
            labels=_d(meta.get("labels")), annotations=_d(meta.get("annotations")),
            entrypoint=_s(spec.get("entrypoint")), arguments=Arguments.parse(spec.get("arguments")),
            templates=tuple(Template.parse(t) for t in _l(spec.get("templates"))),
            on_exit=_s(spec.get("onExit")), hooks=_hooks(spec.get("hooks")),
            parallelism=opt_int(spec.get("parallelism")), pod_gc=opt_obj(spec.get("podGC")),
            ttl_strategy=opt_obj(spec.get("ttlStrategy")),
            active_deadline_seconds=opt_int(spec.get("activeDeadlineSeconds")),
            volumes=tuple(_d(v) for v in _l(spec.get("volumes"))),
            service_account_name=_s(spec.get("serviceAccountName")), priority=opt_int(spec.get("priority")),
            template_defaults=opt_obj(spec.get("templateDefaults")),
            retry_strategy=RetryStrategy.parse(spec.get("retryStrategy")),
            workflow_metadata=opt_obj(spec.get("workflowMetadata")),
            workflow_template_ref=opt_obj(spec.get("workflowTemplateRef")),
            status=WorkflowStatus.parse(raw.get("status")), raw=raw,
        )

    @property
    def display_name(self) -> str:
        return self.name or self.generate_name or "(unnamed)"

    def template(self, name: str) -> Template | None:
        return next((t for t in self.templates if t.name == name), None)
