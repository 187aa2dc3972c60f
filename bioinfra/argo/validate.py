"""`bioinfra lint`: the admission rules of the Argo v3.7 controller, with Argo's own messages.

Argo is the spec. When a Workflow is submitted, the v3.7 controller runs
`validate.ValidateWorkflow(..., ValidateOpts{})` (workflow/controller/operator.go) and fails the
Workflow with "invalid spec: <message>" at the first rule it breaks. This module ports those rules
from workflow/validate/validate.go (v3.7.18) function by function, in the same order, with the
same message text and the same prefixes ("templates.main.tasks.b templates.align ..."), so the
first problem `lint()` reports is the one Argo would report, word for word. Each function below
names the Go function it follows. Helpers it leans on are ported as well: common.ProcessArgs /
SubstituteParams (workflow/common/util.go), GetTaskDependencies / ValidateTaskResults
(workflow/common/ancestry.go), sorting.TopologicalSorting (util/sorting), template.Validate
(util/template, fasttemplate's {{tag}} scanner).

What the Argo controller sees first, the Kubernetes API server checks before it: metadata.name /
generateName (apimachinery's ValidateObjectMeta) are reported too, with the API server's message.
And the strict JSON schema (tests/schemas/argo-workflow.schema.json, generated from hera's models
of Argo's API by scripts/generate_argo_schema.py) reports unknown keys and wrong types, which Go's
decoder would drop or refuse.

Not checked (they need the cluster): templateRef / workflowTemplateRef targets (WorkflowTemplates
live in the cluster), the controller's workflowDefaults, ConfigMap-backed parameters. A reference
to a WorkflowTemplate is reported as a note, not a problem.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bioinfra.argo.model import (
    Arguments,
    Artifact,
    DAGTask,
    Parameter,
    Step,
    Template,
    Workflow,
)

ARGO_VERSION = "v3.7"

# validate.go constants
MAX_CHARS_IN_OBJECT_NAME = 63  # maxCharsInObjectName: a Kubernetes label value
WORKFLOW_FIELD_MAX_LENGTH = 128  # workflowFieldMaxLength
WORKFLOW_FIELD_NAME_RE = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")  # workflowFieldNameFmt
WORKFLOW_FIELD_NAME_ERR = (
    "name must consist of alpha-numeric characters or '-', and must start with an alpha-numeric character"
)
PARAM_OR_ARTIFACT_NAME_RE = re.compile(r"^[-a-zA-Z0-9_]+[-a-zA-Z0-9_]*$")  # paramOrArtifactNameRegex
PARAM_RE = re.compile(r"{{[-a-zA-Z0-9]+(\.[-a-zA-Z0-9_]+)*}}")  # paramRegex (isParameter)
# common.GlobalVarValidWorkflowVariablePrefix: only tags with these prefixes are checked. A bare
# {{item}} has none of them ("item." needs the dot), so Argo does not check it: nor do we.
VALID_VARIABLE_PREFIXES = ("item.", "steps.", "inputs.", "outputs.", "pod.", "workflow.", "tasks.")
RETRY_POLICIES = ("Always", "OnError", "OnFailure", "OnTransientError", "")  # validateTemplateHolder
POD_GC_STRATEGIES = ("", "OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess")
LABEL_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
RESOURCE_ACTIONS = ("get", "create", "apply", "delete", "replace", "patch")
# common.TaskResult values (ancestry.go)
TASK_RESULTS = ("Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed")
TASK_NAME_RE = re.compile(r"([a-zA-Z0-9][-a-zA-Z0-9]*?\.[A-Z][a-zA-Z]+)|([a-zA-Z0-9][-a-zA-Z0-9]*)")  # taskNameRegex
TASK_RESULT_RE = re.compile(r"([a-zA-Z0-9][-a-zA-Z0-9]*?\.[A-Z][a-zA-Z]+)")  # taskResultRegex
METRIC_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Kubernetes (apimachinery validation.IsDNS1123Subdomain), checked by the API server before Argo.
DNS1123_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


@dataclass(frozen=True)
class LintProblem:
    """One thing the linter found. `source`: "argo" (the controller's admission rules, message as
    Argo prints it), "kubernetes" (the API server refuses it before Argo sees it), "schema" (the
    strict Argo JSON schema) or "bioinfra" (Argo admits it, but it cannot work as meant).
    `severity`: "error" (Argo refuses it), "warning" (admitted, but see the message) or "note"
    (could not be checked here, e.g. a templateRef into the cluster). Only errors fail lint."""

    message: str
    source: str = "argo"
    severity: str = "error"

    def __str__(self) -> str:
        return self.message


class ArgoError(Exception):
    """An admission error; its text is exactly what Argo's controller would report."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _wrap(prefix: str, exc: ArgoError) -> ArgoError:
    return ArgoError(f"{prefix} {exc.message}")


# --- {{tag}} handling: util/template (fasttemplate with "{{" "}}") --------------------------------

def _go_json(value: Any) -> str:
    """Roughly Go's json.Marshal: compact, with <, >, & escaped (only tag text matters here)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _scan(text: str) -> list[tuple[int, int, str]]:
    """fasttemplate.NewTemplate: every {{tag}} as (start, end, tag); an unclosed {{ is an error."""
    out = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            return out
        end = text.find("}}", start + 2)
        if end < 0:
            raise ArgoError(f'Cannot find end tag="}}}}" in the template={json.dumps(text)} '
                            f"starting from {json.dumps(text[start + 2:])}")
        out.append((start, end + 2, text[start + 2:end]))
        pos = end + 2


def _is_expression(tag: str) -> bool:
    return tag.startswith("=")  # template/kind.go parseTag: "=" tags are expressions, never validated


def template_validate(text: str, validator: Callable[[str], None]) -> None:
    """template.Validate: call `validator` on every simple (non-expression) tag, in order."""
    for _, _, tag in _scan(text):
        if not _is_expression(tag):
            validator(tag)


def _replace(text: str, values: dict[str, str]) -> str:
    """template.Replace(s, values, allowUnresolved=true) on JSON text: known simple tags are replaced
    (JSON-escaped, as Go's strconv.Quote does), unknown ones and expressions are kept."""
    out, pos = [], 0
    for start, end, tag in _scan(text):
        out.append(text[pos:start])
        key = tag.strip()
        if not _is_expression(tag) and key in values:
            out.append(json.dumps(values[key], ensure_ascii=False)[1:-1])
        else:
            out.append(text[start:end])
        pos = end
    out.append(text[pos:])
    return "".join(out)


def is_parameter(text: str) -> bool:
    return PARAM_RE.search(text) is not None


# --- names: validateWorkflowFieldNames, isValidWorkflowFieldName, isValidParamOrArtifactName --------

def is_valid_workflow_field_name(name: str) -> list[str]:
    errs = []
    if len(name) > WORKFLOW_FIELD_MAX_LENGTH:
        errs.append(f"must be no more than {WORKFLOW_FIELD_MAX_LENGTH} characters")  # apivalidation.MaxLenError
    if not WORKFLOW_FIELD_NAME_RE.match(name):
        errs.append(WORKFLOW_FIELD_NAME_ERR + " (e.g. My-name1-2, 123-NAME)")
    return errs


def is_valid_param_or_artifact_name(name: str) -> list[str]:
    if not PARAM_OR_ARTIFACT_NAME_RE.match(name):
        return ["Parameter/Artifact name must consist of alpha-numeric characters, '_' or '-' e.g. my_param_1, MY-PARAM-1"]
    return []


def validate_workflow_field_names(names: list[str], params_or_artifacts: bool = False) -> None:
    """validateWorkflowFieldNames: non-empty, well-formed, unique; the message starts with [i]."""
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name == "":
            raise ArgoError(f"[{i}].name is required")
        errs = is_valid_param_or_artifact_name(name) if params_or_artifacts else is_valid_workflow_field_name(name)
        if errs:
            raise ArgoError(f"[{i}].name: '{name}' is invalid: {';'.join(errs)}")
        if name in seen:
            raise ArgoError(f"[{i}].name '{name}' is not unique")
        seen.add(name)


# --- arguments: validateArguments ----------------------------------------------------------------

def validate_arguments(prefix: str, args: Arguments, allow_empty_values: bool) -> None:
    # validateArgumentsFieldNames iterates a Go map (parameters, artifacts): either may be reported first.
    for field_name, names in (("parameters", [p.name for p in args.parameters]),
                              ("artifacts", [a.name for a in args.artifacts])):
        try:
            validate_workflow_field_names(names, params_or_artifacts=True)
        except ArgoError as exc:
            raise ArgoError(f"{prefix}{field_name}{exc.message}") from None
    _validate_arguments_values(prefix, args, allow_empty_values)


def _validate_arguments_values(prefix: str, args: Arguments, allow_empty_values: bool) -> None:
    for p in args.parameters:
        vf = p.value_from
        if vf is None and p.value is None and not allow_empty_values:
            raise ArgoError(f"{prefix}{p.name}.value or {prefix}{p.name}.valueFrom is required")
        if vf is not None:
            if vf.config_map_key_ref is None and not vf.event and not vf.supplied:
                raise ArgoError(f"{prefix}{p.name}.valueFrom only allows: default, configMapKeyRef and supplied")
            if vf.path or vf.json_path or vf.parameter or vf.expression:
                raise ArgoError(f"{prefix}{p.name}.valueFrom only allows: default, configMapKeyRef and supplied")
        if p.enum is not None:
            if len(p.enum) == 0:
                raise ArgoError(f"{prefix}{p.name}.enum should contain at least one value")
            if p.value is None:
                if allow_empty_values:
                    return  # sic: validate.go returns here, skipping the remaining arguments
                raise ArgoError(f"{prefix}{p.name}.value is required")
            if p.value not in p.enum:
                raise ArgoError(f"{prefix}{p.name}.value should be present in {prefix}{p.name}.enum list")
    for a in args.artifacts:
        if not a.from_ and not a.has_location_or_key():
            raise ArgoError(f"{prefix}{a.name}.from, artifact location, or key is required")
        if a.from_ and a.from_expression:
            raise ArgoError(f"{prefix}{a.name} shouldn't have both `from` and `fromExpression` in Artifact")


# --- arguments providers (wfv1.ArgumentsProvider) ------------------------------------------------

class _ArgsProvider(Protocol):
    def parameter(self, name: str) -> Parameter | None: ...
    def artifact(self, name: str) -> Artifact | None: ...


class _FakeArguments:
    """validate.go FakeArguments: every parameter has a placeholder value, every artifact exists."""

    def __init__(self, ctx: _Ctx) -> None:
        self._ctx = ctx

    def parameter(self, name: str) -> Parameter | None:
        return Parameter(name=name, value=self._ctx.placeholder())

    def artifact(self, name: str) -> Artifact | None:
        return Artifact(name=name)


# --- the holder of a template reference: a task, a step, the entrypoint, onExit -------------------

@dataclass(frozen=True)
class _Holder:
    template: str = ""
    template_ref: Any = None
    inline: dict | None = None


def _holder(inv: DAGTask | Step) -> _Holder:
    return _Holder(template=inv.template, template_ref=inv.template_ref, inline=inv.inline)


class _Ctx:
    """templateValidationCtx."""

    def __init__(self, wf: Workflow, lint_mode: bool) -> None:
        self.wf = wf
        self.lint_mode = lint_mode
        self.global_params: dict[str, str] = {}
        self.results: set[str] = set()
        self.notes: list[str] = []
        self._placeholders = 0

    def placeholder(self) -> str:  # common.NewPlaceholderGenerator
        self._placeholders += 1
        return f"placeholder-{self._placeholders}"


# --- ValidateWorkflow ----------------------------------------------------------------------------

def validate_workflow(wf: Workflow, *, lint_mode: bool = False) -> list[str]:
    """ValidateWorkflow with ValidateOpts{} (what the controller runs at admission) or, with
    lint_mode, ValidateOpts{Lint: true} (`argo lint`: spec.arguments may lack values). Raises
    ArgoError at the first problem, as Argo does; returns notes on what was not checked."""
    ctx = _Ctx(wf, lint_mode)
    if len(wf.name) > MAX_CHARS_IN_OBJECT_NAME:
        raise ArgoError(f"workflow name {json.dumps(wf.name)} must not be more than 63 characters long "
                        f"(currently {len(wf.name)})")
    if wf.workflow_template_ref is not None:
        if wf.templates:  # ValidateWorkflowTemplateRefFields
            raise ArgoError("Templates is invalid field in spec if workflow referred WorkflowTemplate reference")
        ref = wf.workflow_template_ref.get("name", "")
        ctx.notes.append(f"spec.workflowTemplateRef {ref!s} not checked: WorkflowTemplates live in the cluster")
        return ctx.notes
    names_err = None
    try:
        validate_workflow_field_names([t.name for t in wf.templates])
    except ArgoError as exc:
        names_err = exc
    if names_err is not None:
        raise ArgoError(f"spec.templates{names_err.message}")

    validate_arguments("spec.arguments.", wf.arguments, allow_empty_values=lint_mode)
    g = ctx.global_params
    for key in ("workflow.name", "workflow.namespace", "workflow.mainEntrypoint", "workflow.serviceAccountName",
                "workflow.uid"):
        g[key] = ctx.placeholder()
    if wf.arguments.parameters:
        g["workflow.parameters"] = ctx.placeholder()
        g["workflow.parameters.json"] = ctx.placeholder()
    for p in wf.arguments.parameters:
        if p.name:
            g["workflow.parameters." + p.name] = p.value if p.value is not None else ctx.placeholder()
    meta = wf.workflow_metadata or {}
    annotations = set(wf.annotations) | set(meta.get("annotations") or {})
    labels = set(wf.labels) | set(meta.get("labels") or {}) | set(meta.get("labelsFrom") or {})
    for k in annotations:
        g[f"workflow.annotations.{k}"] = ctx.placeholder()
    g["workflow.annotations"] = ctx.placeholder()
    g["workflow.annotations.json"] = ctx.placeholder()
    for k in labels:
        g[f"workflow.labels.{k}"] = ctx.placeholder()
    g["workflow.labels"] = ctx.placeholder()
    g["workflow.labels.json"] = ctx.placeholder()
    if wf.priority is not None:
        g["workflow.priority"] = str(wf.priority)
    g["workflow.status"] = ctx.placeholder()

    if not wf.entrypoint:
        raise ArgoError("spec.entrypoint is required")
    _validate_template_holder(ctx, _Holder(template=wf.entrypoint), wf.arguments)

    if wf.on_exit:
        g["workflow.failures"] = ctx.placeholder()
        # Parameterised global artifact names are resolved at run time: allow them in exit handlers.
        if any(a.global_name and is_parameter(a.global_name) for t in wf.templates for a in t.outputs.artifacts):
            g["workflow.outputs.artifacts.*"] = "true"
        _validate_template_holder(ctx, _Holder(template=wf.on_exit), wf.arguments)
    _validate_hooks(wf.hooks, "hooks")

    strategy = str((wf.pod_gc or {}).get("strategy") or "")
    if strategy not in POD_GC_STRATEGIES:
        raise ArgoError(f"podGC.strategy unknown strategy '{strategy}'")
    selector = (wf.pod_gc or {}).get("labelSelector")
    for expr in (selector or {}).get("matchExpressions") or []:
        op = (expr or {}).get("operator", "")
        if op not in LABEL_SELECTOR_OPERATORS:
            raise ArgoError(f'podGC.labelSelector invalid: "{op}" is not a valid label selector operator')

    for tmpl in wf.templates:
        try:
            _validate_template_holder(ctx, _Holder(template=tmpl.name), _FakeArguments(ctx))
        except ArgoError as exc:
            raise _wrap(f"templates.{tmpl.name}", exc) from None
    return ctx.notes


def _validate_hooks(hooks: dict, base: str) -> None:
    """validateHooks: every hook but `exit` needs an expression."""
    for name, hook in hooks.items():
        if name != "exit" and not hook.expression:
            raise ArgoError(f"{base}.{name} Expression required")


# --- validateTemplateHolder / validateTemplate -------------------------------------------------

def _validate_template_holder(ctx: _Ctx, holder: _Holder, args: Any) -> Template | None:
    ref = holder.template_ref
    if ref is not None:
        if holder.template:
            raise ArgoError("template name cannot be specified with templateRef.")
        if not ref.name:
            raise ArgoError("resource name is required")
        if not ref.template:
            raise ArgoError("template name is required")
        kind = "ClusterWorkflowTemplate" if ref.cluster_scope else "WorkflowTemplate"
        ctx.notes.append(f"templateRef {ref.name}.{ref.template} not checked: {kind}s live in the cluster")
        return None
    if holder.template:
        tmpl = ctx.wf.template(holder.template)
        if tmpl is None:
            raise ArgoError(f"template name '{holder.template}' undefined")
    elif holder.inline is not None:
        tmpl = Template.parse(holder.inline)
    else:
        raise ArgoError("failed to get a template")  # templateresolution.Context.GetTemplate
    rs = tmpl.retry_strategy
    if rs is not None and rs.retry_policy not in RETRY_POLICIES:
        raise ArgoError(f"{rs.retry_policy} is not a valid RetryPolicy")
    _validate_template(ctx, tmpl, args)
    return tmpl


def _validate_template_type(tmpl: Template) -> None:
    choices = "choose one of: container, containerSet, steps, script, resource, dag, suspend, template, template ref"
    if not tmpl.kinds:
        raise ArgoError(f"templates.{tmpl.name} template type unspecified. {choices}")
    if len(tmpl.kinds) > 1:
        raise ArgoError(f"templates.{tmpl.name} multiple template types specified. {choices}")


def _validate_inputs(tmpl: Template) -> dict[str, Any]:
    try:
        validate_workflow_field_names([p.name for p in tmpl.inputs.parameters], params_or_artifacts=True)
    except ArgoError as exc:
        raise ArgoError(f"templates.{tmpl.name}.inputs.parameters{exc.message}") from None
    try:
        validate_workflow_field_names([a.name for a in tmpl.inputs.artifacts], params_or_artifacts=True)
    except ArgoError as exc:
        raise ArgoError(f"templates.{tmpl.name}.inputs.artifacts{exc.message}") from None
    scope: dict[str, Any] = {f"inputs.parameters.{p.name}": True for p in tmpl.inputs.parameters}
    if tmpl.inputs.parameters:
        scope["inputs.parameters"] = True
    for art in tmpl.inputs.artifacts:
        ref = f"inputs.artifacts.{art.name}"
        scope[ref] = True
        if tmpl.is_leaf():
            err = clean_path_error(art)
            if err:
                raise ArgoError(f"error in templates.{tmpl.name}.{ref}: {err}")
            scope[f"{ref}.path"] = True
        elif art.path:
            raise ArgoError(f"templates.{tmpl.name}.{ref}.path only valid in container/script templates")
        if art.from_:
            raise ArgoError(f"templates.{tmpl.name}.{ref}.from not valid in inputs")
        _validate_artifact_location(f"templates.{tmpl.name}.{ref}", art)
    return scope


def clean_path_error(art: Artifact) -> str | None:
    """v1alpha1 Artifact.CleanPath: a leaf's artifact needs a path, and a `..` in it must not climb
    out of the folder before it."""
    path = art.path
    if not path:
        return f"Artifact '{art.name}' did not specify a path"
    safe_dir = ""
    if "/../" in path:
        safe_dir = path[:path.index("/../")]
    elif path.endswith("/.."):
        safe_dir = path[:-3]
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")  # Go's filepath.Clean keeps one leading slash
    with_slash = safe_dir + "/"
    if safe_dir and (not cleaned.startswith(with_slash) or len(cleaned) <= len(with_slash)):
        return f"Artifact '{art.name}' attempted to use a path containing '..'. Directory traversal is not permitted"
    return None


def _validate_artifact_location(prefix: str, art: Artifact) -> None:
    git = art.raw.get("git")
    if isinstance(git, dict) and not git.get("repo"):
        raise ArgoError(f"{prefix}.git.repo is required")


def _process_args(ctx: _Ctx, tmpl: Template, args: Any, local_params: dict[str, str]) -> Template:
    """common.ProcessArgs (validateOnly): each input parameter takes its default, then the
    argument's value; none -> "was not supplied". Then SubstituteParams: globals and locals first,
    then inputs, on the template's JSON."""
    raw = json.loads(json.dumps(tmpl.raw))
    raw_inputs = raw.get("inputs") if isinstance(raw.get("inputs"), dict) else {}
    raw_params = raw_inputs.get("parameters") if isinstance(raw_inputs.get("parameters"), list) else []
    for p, p_raw in zip(tmpl.inputs.parameters, raw_params, strict=False):
        value, value_from = p.value if p.value is not None else p.default, p.value_from
        arg = args.parameter(p.name)
        if arg is not None:
            if arg.value is not None:
                value, value_from = arg.value, None
            else:
                value, value_from = None, arg.value_from
        if not (value_from is not None and value_from.config_map_key_ref is not None) and value is None:
            raise ArgoError(f"inputs.parameters.{p.name} was not supplied")
        if isinstance(p_raw, dict):
            if value is not None:
                p_raw["value"] = value
            else:
                p_raw.pop("value", None)
    for art in tmpl.inputs.artifacts:
        if not art.optional and not art.has_location_or_key() and args.artifact(art.name) is None:
            raise ArgoError(f"inputs.artifacts.{art.name} was not supplied")
    # SubstituteParams: globals and locals first (an input's value may use them), then the inputs
    # and the artifact/output paths, read from the template the first pass produced.
    replace: dict[str, str] = {**ctx.global_params, **local_params}
    text = _replace(_go_json(raw), replace)
    first = Template.parse(json.loads(text))
    replace.update({f"inputs.parameters.{p.name}": p.value for p in first.inputs.parameters if p.value is not None})
    replace["inputs.parameters"] = json.dumps(
        [{"name": p.name, **({"value": p.value} if p.value is not None else {})} for p in first.inputs.parameters])
    for art in first.inputs.artifacts:
        if art.path:
            replace[f"inputs.artifacts.{art.name}.path"] = art.path
    for art in first.outputs.artifacts:
        if art.path:
            replace[f"outputs.artifacts.{art.name}.path"] = art.path
    for p in first.outputs.parameters:
        if p.value_from is not None and p.value_from.path:
            replace[f"outputs.parameters.{p.name}.path"] = p.value_from.path
    return Template.parse(json.loads(_replace(text, replace)))


def _validate_template(ctx: _Ctx, tmpl: Template, args: Any) -> None:
    """validateTemplate."""
    _validate_template_type(tmpl)
    scope = _validate_inputs(tmpl)
    if any(not c.get("name") for c in tmpl.init_containers):  # validateInitContainers
        raise ArgoError("initContainers must all have container name")
    local: dict[str, str] = {}
    if tmpl.is_pod_type():
        local["pod.name"] = ctx.placeholder()
        scope["pod.name"] = ctx.placeholder()
    if tmpl.retry_strategy is not None:
        for key in ("retries", "lastRetry.exitCode", "lastRetry.status", "lastRetry.duration", "lastRetry.message"):
            local[key] = ctx.placeholder()
            scope[key] = ctx.placeholder()
    if tmpl.is_leaf():
        for art in tmpl.outputs.artifacts:
            if art.path:
                scope[f"outputs.artifacts.{art.name}.path"] = True
        for p in tmpl.outputs.parameters:
            if p.value_from is not None and p.value_from.path:
                scope[f"outputs.parameters.{p.name}.path"] = True
    try:
        new = _process_args(ctx, tmpl, args, local)
    except ArgoError as exc:
        raise _wrap(f"templates.{tmpl.name}", exc) from None

    if new.timeout:
        if not new.is_leaf():
            raise ArgoError(f"{new.type_name} template doesn't support timeout field.")
        if re.fullmatch(r"[+-]?\d+", new.timeout):
            raise ArgoError(f"{new.name} has invalid duration format in timeout.")

    if tmpl.name in ctx.results:  # validated already (templateScope + name; one scope for a Workflow)
        return
    ctx.results.add(tmpl.name)
    scope.update(ctx.global_params)
    if new.kind == "steps":
        _validate_steps(ctx, scope, new)
    elif new.kind == "dag":
        _validate_dag(ctx, scope, new)
    else:
        _validate_leaf(ctx, scope, new)
    _validate_outputs(ctx, scope, new)
    if new.raw.get("archiveLocation") is not None:
        git = (new.raw.get("archiveLocation") or {}).get("git")
        if isinstance(git, dict) and not git.get("repo"):
            raise ArgoError(f"templates.{new.name}.archiveLocation.git.repo is required")
    _validate_metrics(tmpl, new)


def _validate_metrics(tmpl: Template, new: Template) -> None:
    for metric in (new.metrics or {}).get("prometheus") or []:
        metric = metric if isinstance(metric, dict) else {}
        name = str(metric.get("name", ""))
        if not METRIC_NAME_RE.match(name):
            raise ArgoError(f"templates.{tmpl.name} metric name '{name}' is invalid. "
                            "Metric names must contain alphanumeric characters or '_'")
        for label in metric.get("labels") or []:
            key = str((label or {}).get("key", ""))
            if not METRIC_NAME_RE.match(key):
                raise ArgoError(f"metric label '{key}' is invalid: keys may only contain alphanumeric characters or '_'")
        if not metric.get("help"):
            raise ArgoError(f"templates.{tmpl.name} metric '{name}' must contain a help string under 'help: ' field")
        gauge = metric.get("gauge")
        if isinstance(gauge, dict):
            if not gauge.get("value"):
                raise ArgoError(f"templates.{tmpl.name} metric '{name}' error: missing gauge.value")
            if gauge.get("realtime") and "resourcesDuration." in str(gauge.get("value")):
                raise ArgoError(f"templates.{tmpl.name} metric '{name}' error: "
                                "'resourcesDuration.*' metrics cannot be used in real-time")
        for kind in ("counter", "histogram"):  # metrics.ValidateMetricValues
            spec = metric.get(kind)
            if isinstance(spec, dict) and not spec.get("value"):
                raise ArgoError(f"templates.{tmpl.name} metric '{name}' error: missing {kind}.value")


# --- resolveAllVariables ------------------------------------------------------------------------

def _resolve_all_variables(ctx: _Ctx, scope: dict[str, Any], text: str) -> None:
    allow_items = "item.*" in scope
    allow_wf_out_params = "workflow.outputs.parameters.*" in scope
    allow_wf_out_arts = "workflow.outputs.artifacts.*" in scope or "workflow.outputs.artifacts.*" in ctx.global_params

    def check(tag: str) -> None:
        t = tag.strip()
        if not t.startswith(VALID_VARIABLE_PREFIXES):
            return
        if t in scope or t in ctx.global_params:
            return
        if (t == "item" or t.startswith("item.")) and allow_items:
            return
        if t.startswith("workflow.outputs.parameters.") and allow_wf_out_params:
            return
        if t.startswith("workflow.outputs.artifacts.") and allow_wf_out_arts:
            return
        if t.startswith(("outputs.", "workflow.creationTimestamp", "workflow.scheduledTime", "workflow.duration",
                         "tasks.name", "steps.name", "node.name")):
            return
        raise ArgoError(f"failed to resolve {{{{{tag}}}}}")

    template_validate(text, check)


def _validate_non_leaf(tmpl: Template) -> None:
    if tmpl.active_deadline_seconds is not None:
        raise ArgoError(f"templates.{tmpl.name}.activeDeadlineSeconds is only valid for leaf templates")


def _is_valid_int_or_argo_variable(value: str) -> bool:
    """intstr.IsValidIntOrArgoVariable: an integer, or a {{...}} reference."""
    return bool(re.fullmatch(r"[+-]?\d+", value)) or (value.startswith("{{") and value.endswith("}}"))


def _validate_leaf(ctx: _Ctx, scope: dict[str, Any], tmpl: Template) -> None:
    try:
        _resolve_all_variables(ctx, scope, _go_json(tmpl.raw))
    except ArgoError as exc:
        raise ArgoError(f"templates.{tmpl.name}: {exc.message}") from None
    defaults = ctx.wf.template_defaults or {}
    if tmpl.container is not None:
        mounts: dict[str, str] = {}
        for i, vm in enumerate(tmpl.container.get("volumeMounts") or []):
            vm = vm if isinstance(vm, dict) else {}
            mp = vm.get("mountPath", "")
            if mp in mounts:
                raise ArgoError(f"templates.{tmpl.name}.container.volumeMounts[{i}].mountPath '{mp}' "
                                f"already mounted in {mounts[mp]}")
            mounts[mp] = f"container.volumeMounts.{vm.get('name', '')}"
        for i, art in enumerate(tmpl.inputs.artifacts):
            if art.path in mounts:
                raise ArgoError(f"templates.{tmpl.name}.inputs.artifacts[{i}].path '{art.path}' "
                                f"already mounted in {mounts[art.path]}")
            mounts[art.path] = f"inputs.artifacts.{art.name}"
        if not tmpl.container.get("image") and not ((defaults.get("container") or {}).get("image")):
            raise ArgoError(f"templates.{tmpl.name}.container.image may not be empty")
    if tmpl.container_set is not None:
        _validate_container_set(tmpl)
    if tmpl.resource is not None:
        _validate_resource(tmpl)
    if tmpl.script is not None:
        if not tmpl.script.get("image") and not ((defaults.get("script") or {}).get("image")):
            raise ArgoError(f"templates.{tmpl.name}.script.image may not be empty")
    ads = tmpl.active_deadline_seconds
    if ads is not None and not ads.startswith("placeholder-"):
        if not _is_valid_int_or_argo_variable(ads) or (re.fullmatch(r"[+-]?\d+", ads) and int(ads) < 0):
            raise ArgoError(f"templates.{tmpl.name}.activeDeadlineSeconds must be a positive integer > 0 "
                            "or an argo variable")
    if tmpl.raw.get("parallelism") is not None:
        raise ArgoError(f"templates.{tmpl.name}.parallelism is only valid for steps and dag templates")


def _validate_container_set(tmpl: Template) -> None:
    """ContainerSetTemplate.Validate, then the "main" container rule."""
    cs = tmpl.container_set or {}
    containers = [c if isinstance(c, dict) else {} for c in cs.get("containers") or []]
    prefix = f"templates.{tmpl.name}.containerSet."
    if not containers:
        raise ArgoError(prefix + "containers must have at least one container")
    try:
        validate_workflow_field_names([str(c.get("name", "")) for c in containers])
    except ArgoError as exc:
        raise ArgoError(f"{prefix}containers{exc.message}") from None
    mounts: dict[str, str] = {}
    for i, vm in enumerate(cs.get("volumeMounts") or []):
        vm = vm if isinstance(vm, dict) else {}
        mp = str(vm.get("mountPath", ""))
        if mp in mounts:
            raise ArgoError(f"{prefix}volumeMounts[{i}].mountPath '{mp}' already mounted in {mounts[mp]}")
        mounts[mp] = f"volumeMounts.{vm.get('name', '')}"
    names = {c.get("name") for c in containers}
    for c in containers:
        for dep in c.get("dependencies") or []:
            if dep not in names:
                raise ArgoError(f"{prefix}containers.{c.get('name')} dependency '{dep}' not defined")
    graph = {str(c.get("name")): [str(d) for d in c.get("dependencies") or []] for c in containers}
    cycle = _no_cycles(graph)
    if cycle:
        raise ArgoError(f"{prefix}containers dependency cycle detected: {cycle}")
    if tmpl.inputs.artifacts or tmpl.outputs.parameters or tmpl.outputs.artifacts:
        if "main" not in names:
            raise ArgoError(f'{prefix}containers must have a container named "main" for input or output')


def _no_cycles(graph: dict[str, list[str]]) -> str | None:
    """v1alpha1 validateNoCycles (depth first, names sorted): the cycle as Argo prints it."""
    visited: set[str] = set()

    def walk(name: str, cycle: list[str]) -> str | None:
        if name in visited or name not in graph:
            return None
        for dep in graph[name]:
            if dep in cycle:
                return "->".join(cycle) + "->" + dep
            cycle.append(dep)
            found = walk(dep, cycle)
            if found:
                return found
            cycle.pop()
        visited.add(name)
        return None

    for name in sorted(graph):
        found = walk(name, [])
        if found:
            return found
    return None


def _validate_resource(tmpl: Template) -> None:
    import yaml

    res = tmpl.resource or {}
    action = str(res.get("action", ""))
    if not action.startswith("placeholder-") and action not in RESOURCE_ACTIONS:
        raise ArgoError(f"templates.{tmpl.name}.resource.action must be one of: get, create, apply, delete, "
                        "replace, patch")
    if action in ("delete", "get"):
        return
    manifest, manifest_from = res.get("manifest") or "", res.get("manifestFrom")
    if not manifest and manifest_from is None:
        raise ArgoError(f"either templates.{tmpl.name}.resource.manifest or templates.{tmpl.name}.resource.manifestFrom "
                        "must be specified")
    if manifest and manifest_from is not None:
        raise ArgoError("shouldn't have both `manifest` and `manifestFrom` specified in `Manifest` for resource template")
    art = (manifest_from or {}).get("artifact") if isinstance(manifest_from, dict) else None
    if isinstance(art, dict) and tmpl.inputs.artifact(str(art.get("name", ""))) is None:
        raise ArgoError(f"artifact {art.get('name', '')} in `manifestFrom` refer to a non-exist artifact")
    if manifest and not manifest.startswith("placeholder-"):
        text = re.sub(r"{{\s*=\s*(.+?)\s*}}", "placeholder", manifest)  # SubstituteResourceManifestExpressions
        try:
            yaml.safe_load(text)
        except yaml.YAMLError:
            raise ArgoError(f"templates.{tmpl.name}.resource.manifest must be a valid yaml") from None


# --- steps: validateSteps, addItemsToScope, addOutputsToScope ------------------------------------

def _add_items_to_scope(inv: DAGTask | Step, scope: dict[str, Any]) -> None:
    defined = sum([bool(inv.with_items), bool(inv.with_param), inv.with_sequence is not None])
    if defined > 1:
        raise ArgoError("only one of withItems, withParam, withSequence can be specified")
    if inv.with_items:
        for val in inv.with_items:
            if isinstance(val, (str, int, float, bool)):
                scope["item"] = True
            elif isinstance(val, list):
                for i in range(len(val)):
                    scope[f"item.[{i}]"] = True
            elif isinstance(val, dict):
                for key in val:
                    scope[f"item.{key}"] = True
            else:
                raise ArgoError(f"unsupported withItems type: {val}")
    elif inv.with_param:
        scope["item"] = True
        scope["item.*"] = True
    elif inv.with_sequence is not None:
        if inv.with_sequence.count is not None and inv.with_sequence.end is not None:
            raise ArgoError("only one of count or end can be defined in withSequence")
        scope["item"] = True


def _add_outputs_to_scope(ctx: _Ctx, tmpl: Template | None, prefix: str, scope: dict[str, Any],
                          aggregate: bool, is_ancestor: bool) -> None:
    for key in ("id", "startedAt", "finishedAt", "hostNodeName"):
        scope[f"{prefix}.{key}"] = True
    if tmpl is None:
        return
    if tmpl.daemon:
        scope[f"{prefix}.ip"] = True
    if tmpl.has_output():
        scope[f"{prefix}.outputs.result"] = True
        scope[f"{prefix}.exitCode"] = True
    for p in tmpl.outputs.parameters:
        scope[f"{prefix}.outputs.parameters.{p.name}"] = True
        if p.global_name:
            if not is_parameter(p.global_name):
                key = f"workflow.outputs.parameters.{p.global_name}"
                scope[key] = True
                ctx.global_params[key] = ctx.placeholder()
            else:
                scope["workflow.outputs.parameters.*"] = True
    for a in tmpl.outputs.artifacts:
        scope[f"{prefix}.outputs.artifacts.{a.name}"] = True
        if a.global_name:
            if not is_parameter(a.global_name):
                key = f"workflow.outputs.artifacts.{a.global_name}"
                scope[key] = True
                ctx.global_params[key] = ctx.placeholder()
            else:
                scope["workflow.outputs.artifacts.*"] = True
    if aggregate:
        if tmpl.kind in ("script", "containerSet"):
            scope[f"{prefix}.outputs.result"] = True
            scope[f"{prefix}.exitCode"] = True
        scope[f"{prefix}.outputs.parameters"] = True
    if is_ancestor:
        scope[f"{prefix}.status"] = True


def _validate_steps(ctx: _Ctx, scope: dict[str, Any], tmpl: Template) -> None:
    _validate_non_leaf(tmpl)
    names: set[str] = set()
    for i, group in enumerate(tmpl.steps or ()):
        for step in group:
            where = f"templates.{tmpl.name}.steps[{i}]"
            if not step.name:
                raise ArgoError(f"{where}.name is required")
            if step.name in names:
                raise ArgoError(f"{where}.name '{step.name}' is not unique")
            errs = is_valid_workflow_field_name(step.name)
            if errs:
                raise ArgoError(f"{where}.name '{step.name}' is invalid: {';'.join(errs)}")
            names.add(step.name)
            scope[f"steps.{step.name}.status"] = True
            try:
                _add_items_to_scope(step, scope)
            except ArgoError as exc:
                raise _wrap(f"{where}.{step.name}", exc) from None
            validate_arguments(f"{where}.{step.name}.arguments.", step.arguments, False)
            try:
                resolved = _validate_template_holder(ctx, _holder(step), _FakeArguments(ctx))
            except ArgoError as exc:
                raise _wrap(f"{where}.{step.name}", exc) from None
            if step.has_exit_hook():
                _add_outputs_to_scope(ctx, resolved, f"steps.{step.name}", scope, False, False)
            _validate_hooks(step.hooks, f"{where}.{step.name}")
            step_scope = dict(scope)
            if step.inline is not None:
                for p in Template.parse(step.inline).inputs.parameters:
                    step_scope["inputs.parameters." + p.name] = ctx.placeholder()
            try:
                _resolve_all_variables(ctx, step_scope, _go_json(step.raw))
            except ArgoError as exc:
                raise _wrap(f"templates.{tmpl.name}.steps", exc) from None
            aggregate = bool(step.with_items) or bool(step.with_param)
            _add_outputs_to_scope(ctx, resolved, f"steps.{step.name}", scope, aggregate, False)
            try:
                _validate_template_holder(ctx, _holder(step), step.arguments)
            except ArgoError as exc:
                raise _wrap(f"{where}.{step.name}", exc) from None


# --- DAG: validateDAG and its helpers ------------------------------------------------------------

def _expand_dependency(dep: str, dep_task: DAGTask | None) -> str:
    results = [f"{dep}.Succeeded", f"{dep}.Skipped", f"{dep}.Daemoned"]
    if dep_task is not None and dep_task.continue_on is not None:
        if dep_task.continue_on.error:
            results.append(f"{dep}.Errored")
        if dep_task.continue_on.failed:
            results.append(f"{dep}.Failed")
    return "(" + " || ".join(results) + ")"


def task_dependencies(task: DAGTask, tasks: dict[str, DAGTask]) -> dict[str, str]:
    """common.GetTaskDependencies: the tasks a task's `depends` (or `dependencies`) names, each
    "task" or "items" (named with .AnySucceeded / .AllFailed)."""
    depends = task.depends or " && ".join(_expand_dependency(d, tasks.get(d)) for d in task.dependencies)
    deps: dict[str, str] = {}
    for m in TASK_NAME_RE.finditer(depends):
        if m.group(1):
            name, result = m.group(1).split(".", 1)
            if result in ("AnySucceeded", "AllFailed"):
                deps[name] = "items"
            elif name not in deps:
                deps[name] = "task"
        elif m.group(2):
            deps[m.group(2)] = "task"
    return deps


def _validate_task_results(task: DAGTask) -> None:
    """common.ValidateTaskResults."""
    if not task.depends:
        return
    for m in TASK_RESULT_RE.finditer(task.depends):
        name, result = m.group(1).split(".", 1)
        if result not in TASK_RESULTS:
            raise ArgoError(f"task result '{result}' for task '{name}' is invalid")


def _topological_sort(tmpl: Template, deps: dict[str, dict[str, str]]) -> list[DAGTask]:
    """sortDAGTasks / sorting.TopologicalSorting (Kahn's algorithm; ties in the order written,
    where Go's map order is random)."""
    tasks = tmpl.dag.tasks if tmpl.dag else ()
    by_name: dict[str, DAGTask] = {}
    for t in tasks:
        if t.name in by_name:
            raise ArgoError(f"duplicated nodeName {t.name}")
        by_name[t.name] = t
    prior = {t.name: len(deps[t.name]) for t in tasks}
    nxt: dict[str, list[str]] = {}
    for t in tasks:
        for d in deps[t.name]:
            if d not in by_name:
                raise ArgoError(f"invalid dependency {d}")
            nxt.setdefault(d, []).append(t.name)
    queue = [t.name for t in tasks if prior[t.name] == 0]
    head = 0
    while head < len(queue):
        for n in nxt.get(queue[head], []):
            prior[n] -= 1
            if prior[n] == 0:
                queue.append(n)
        head += 1
    if len(queue) < len(tasks):
        raise ArgoError("graph with cycle")
    return [by_name[n] for n in queue]


def _ancestry(name: str, deps: dict[str, dict[str, str]]) -> list[str]:
    """common.GetTaskAncestry: every task `name` transitively depends on."""
    seen: list[str] = []

    def walk(cur: str) -> None:
        if cur in seen:
            return
        for d in deps.get(cur, {}):
            walk(d)
        if cur != name and cur not in seen:
            seen.append(cur)

    walk(name)
    return seen


def _validate_dag(ctx: _Ctx, scope: dict[str, Any], tmpl: Template) -> None:
    _validate_non_leaf(tmpl)
    dag = tmpl.dag
    assert dag is not None
    if not dag.tasks:
        raise ArgoError(f"templates.{tmpl.name} must have at least one task")
    using_depends = any(t.depends for t in dag.tasks)
    name_to_task = {t.name: t for t in dag.tasks}
    deps = {t.name: task_dependencies(t, name_to_task) for t in dag.tasks}
    try:
        tasks = _topological_sort(tmpl, deps)
    except ArgoError as exc:
        raise ArgoError(f"templates.{tmpl.name} sorting failed: {exc.message}") from None
    try:
        validate_workflow_field_names([t.name for t in tasks])
    except ArgoError as exc:
        raise ArgoError(f"templates.{tmpl.name}.tasks{exc.message}") from None

    resolved: dict[str, Template | None] = {}
    for task in tasks:
        where = f"templates.{tmpl.name}.tasks.{task.name}"
        if (using_depends or task.dependencies) and task.name[0].isdigit():
            raise ArgoError(f"{where} name cannot begin with a digit when using either 'depends' or 'dependencies'")
        if using_depends and task.dependencies:
            raise ArgoError(f"templates.{tmpl.name} cannot use both 'depends' and 'dependencies' in the same DAG template")
        if using_depends and task.continue_on is not None:
            raise ArgoError(f"templates.{tmpl.name} cannot use 'continueOn' when using 'depends'. "
                            "Instead use 'dep-task.Failed'/'dep-task.Errored'")
        try:
            r = _validate_template_holder(ctx, _holder(task), _FakeArguments(ctx))
        except ArgoError as exc:
            raise _wrap(where, exc) from None
        resolved[task.name] = r
        _add_outputs_to_scope(ctx, r, f"tasks.{task.name}", scope, bool(task.with_items) or bool(task.with_param), False)
        try:
            _validate_task_results(task)
        except ArgoError as exc:
            raise _wrap(where, exc) from None
        for dep, dep_type in deps[task.name].items():
            dep_task = name_to_task.get(dep)
            if dep_task is None:
                raise ArgoError(f"{where} dependency '{dep}' not defined")
            if dep_type == "items" and not dep_task.is_loop:
                raise ArgoError(f"{where} dependency '{dep}' uses an items-based condition such as .AnySucceeded "
                                "or .AllFailed but does not contain any items")
    # verifyNoCycles: a cycle already failed the sort above ("graph with cycle").
    try:
        _resolve_all_variables(ctx, scope, dag.target)
    except ArgoError as exc:
        raise _wrap(f"templates.{tmpl.name}.targets", exc) from None
    if dag.target:  # validateDAGTargets
        for target in dag.target.split(" "):
            if not is_parameter(target) and target not in name_to_task:
                raise ArgoError(f"templates.{tmpl.name}.targets: target '{target}' is not defined")

    for task in tasks:
        where = f"templates.{tmpl.name}.tasks.{task.name}"
        r = resolved[task.name]
        prefix = f"tasks.{task.name}"
        if task.hooks:
            scope[f"{prefix}.status"] = True
        _add_outputs_to_scope(ctx, r, prefix, scope, False, False)
        task_scope = dict(scope)
        ancestry = _ancestry(task.name, deps)
        for anc in ancestry:
            anc_task = name_to_task[anc]
            _add_outputs_to_scope(ctx, resolved.get(anc), f"tasks.{anc}", task_scope,
                                  bool(anc_task.with_items) or bool(anc_task.with_param), True)
        if task.inline is not None:
            for p in Template.parse(task.inline).inputs.parameters:
                task_scope["inputs.parameters." + p.name] = ctx.placeholder()
        try:
            _add_items_to_scope(task, task_scope)
            _resolve_all_variables(ctx, task_scope, _go_json(task.raw))
        except ArgoError as exc:
            raise _wrap(where, exc) from None
        validate_arguments(f"{where}.arguments.", task.arguments, False)
        try:
            _validate_task_argument_dependency(task.arguments, ancestry)
            _validate_template_holder(ctx, _holder(task), task.arguments)
        except ArgoError as exc:
            raise _wrap(where, exc) from None


def _validate_task_argument_dependency(args: Arguments, ancestry: list[str]) -> None:
    """validateDAGTaskArgumentDependency: an argument that starts with {{tasks.X needs X upstream."""
    for p in args.parameters:
        if p.value is not None and p.value.startswith("{{tasks."):
            ref = p.value.split(".")[1]
            if ref not in ancestry:
                raise ArgoError(f"missing dependency '{ref}' for parameter '{p.name}'")
    for a in args.artifacts:
        if a.from_.startswith("{{tasks."):
            ref = a.from_.split(".")[1]
            if ref not in ancestry:
                raise ArgoError(f"missing dependency '{ref}' for artifact '{a.name}'")


# --- outputs: validateOutputs, validateOutputParameter -------------------------------------------

def _validate_outputs(ctx: _Ctx, scope: dict[str, Any], tmpl: Template) -> None:
    try:
        validate_workflow_field_names([p.name for p in tmpl.outputs.parameters], params_or_artifacts=True)
    except ArgoError as exc:
        raise ArgoError(f"templates.{tmpl.name}.outputs.parameters {exc.message}") from None
    try:
        validate_workflow_field_names([a.name for a in tmpl.outputs.artifacts], params_or_artifacts=True)
    except ArgoError as exc:
        raise ArgoError(f"templates.{tmpl.name}.outputs.artifacts {exc.message}") from None
    try:
        _resolve_all_variables(ctx, scope, _go_json(tmpl.raw.get("outputs") or {}))
    except ArgoError as exc:
        raise _wrap(f"templates.{tmpl.name}.outputs", exc) from None
    for art in tmpl.outputs.artifacts:
        ref = f"outputs.artifacts.{art.name}"
        if tmpl.is_leaf():
            err = clean_path_error(art)
            if err:
                raise ArgoError(f"error in templates.{tmpl.name}.{ref}: {err}")
        elif art.path:
            raise ArgoError(f"templates.{tmpl.name}.{ref}.path only valid in container/script templates")
        if art.global_name and not is_parameter(art.global_name):
            errs = is_valid_param_or_artifact_name(art.global_name)
            if errs:
                raise ArgoError(f"templates.{tmpl.name}.{ref}.globalName: {errs[0]}")
    for p in tmpl.outputs.parameters:
        ref = f"templates.{tmpl.name}.outputs.parameters.{p.name}"
        _validate_output_parameter(ref, p)
        vf = p.value_from
        if vf is not None:
            kind, type_name = tmpl.kind, tmpl.type_name
            if kind in ("container", "containerSet", "script"):
                if not vf.path:
                    raise ArgoError(f"{ref}.path must be specified for {type_name} templates")
            elif kind == "resource":
                if not vf.jq_filter and not vf.json_path:
                    raise ArgoError(f"{ref} .jqFilter or jsonPath must be specified for {type_name} templates")
            elif kind in ("dag", "steps"):
                if not vf.parameter and not vf.expression:
                    raise ArgoError(f"{ref}.parameter or expression must be specified for {type_name} templates")
                if vf.expression and vf.parameter:
                    raise ArgoError(f"{ref} shouldn't have both `from` and `expression` specified in `ValueFrom` "
                                    f"for {type_name} templates")
        if p.global_name and not is_parameter(p.global_name):
            errs = is_valid_param_or_artifact_name(p.global_name)
            if errs:
                raise ArgoError(f"{ref}.globalName: {errs[0]}")


def _validate_output_parameter(ref: str, p: Parameter) -> None:
    vf = p.value_from
    if vf is not None and p.value is not None:
        raise ArgoError(f"{ref} has both valueFrom and value specified. Choose one.")
    if p.value is not None:
        return
    if vf is None:
        raise ArgoError(f"{ref} does not have valueFrom or value specified")
    kinds = sum(bool(x) for x in (vf.path, vf.jq_filter, vf.json_path, vf.parameter, vf.expression)) + int(vf.supplied)
    if kinds == 0:
        raise ArgoError("valueFrom type unspecified. choose one of: path, jqFilter, jsonPath, parameter, raw, expression")
    if kinds > 1:
        raise ArgoError("multiple valueFrom types specified. choose one of: path, jqFilter, jsonPath, parameter, raw")


# --- Kubernetes API server: metadata.name / generateName (apimachinery ValidateObjectMeta) ---------

def _kubernetes_metadata_problems(wf: Workflow) -> list[str]:
    out = []
    if not wf.name and not wf.generate_name:
        out.append("metadata.name: Required value: name or generateName is required")
    if wf.name:
        if len(wf.name) > 253:
            out.append(f"metadata.name: Invalid value: {json.dumps(wf.name)}: must be no more than 253 characters")
        if not DNS1123_SUBDOMAIN_RE.match(wf.name):
            out.append(f"metadata.name: Invalid value: {json.dumps(wf.name)}: {DNS1123_SUBDOMAIN_MSG}")
    if wf.generate_name:
        masked = wf.generate_name[:-1] + "a" if wf.generate_name.endswith("-") else wf.generate_name  # maskTrailingDash
        if not DNS1123_SUBDOMAIN_RE.match(masked):
            out.append(f"metadata.generateName: Invalid value: {json.dumps(wf.generate_name)}: {DNS1123_SUBDOMAIN_MSG}")
    return out


# --- beyond admission: specs Argo admits but that cannot work (warnings, never refusals) -----------

_DEPENDS_TOKEN_RE = re.compile(r"\s*(?:(&&|\|\||!|\(|\))|([a-zA-Z0-9][-a-zA-Z0-9]*(?:\.[A-Za-z]+)?))")


def _depends_syntax_error(depends: str) -> str | None:
    """Whether a `depends` expression parses as Argo's runtime reads it (task, task.Result, !, &&, ||,
    parentheses). None when it does, else what is wrong."""
    tokens: list[str] = []
    pos = 0
    text = depends.rstrip()
    while pos < len(text):
        m = _DEPENDS_TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            return f"unexpected {text[pos:].strip()[:20]!r}"
        tok = m.group(1) or m.group(2)
        tokens.append(tok)  # a word is a task name, as taskNameRegex reads it ("or" too: then an unknown task)
        pos = m.end()
    i = 0

    def operand() -> str | None:
        nonlocal i
        if i >= len(tokens):
            return "ends where a task was expected"
        tok = tokens[i]
        if tok == "!":
            i += 1
            return operand()
        if tok == "(":
            i += 1
            err = expression()
            if err:
                return err
            if i >= len(tokens) or tokens[i] != ")":
                return "a '(' is not closed"
            i += 1
            return None
        if tok in ("&&", "||", ")"):
            return f"{tok!r} where a task was expected"
        i += 1
        return None

    def expression() -> str | None:
        nonlocal i
        err = operand()
        while not err and i < len(tokens) and tokens[i] in ("&&", "||"):
            i += 1
            err = operand()
        return err

    if not tokens:
        return None
    err = expression()
    if not err and i < len(tokens):
        err = f"unexpected {tokens[i]!r}"
    return err


def _warnings(wf: Workflow) -> list[str]:
    """What Argo v3.7 admits but cannot run as meant (operator.go checkParallelism, the deadline
    check, dag.go evaluateDependsLogic). Warnings: lint still exits 0 for them."""
    out = []
    if wf.parallelism is not None and wf.parallelism < 1:
        out.append(f"spec.parallelism {wf.parallelism}: Argo admits it, but no pod ever starts "
                   "(checkParallelism: active pods >= parallelism)")
    if wf.active_deadline_seconds is not None and wf.active_deadline_seconds <= 0:
        out.append(f"spec.activeDeadlineSeconds {wf.active_deadline_seconds}: Argo admits it, but stops the "
                   "Workflow as soon as it starts (0 is how Argo terminates a running Workflow)")
    for tmpl in wf.templates:
        if tmpl.kind in ("dag", "steps") and tmpl.parallelism is not None and tmpl.parallelism < 1:
            out.append(f"templates.{tmpl.name}.parallelism {tmpl.parallelism}: Argo admits it, but none of "
                       "its children ever starts")
        for task in tmpl.dag.tasks if tmpl.dag else ():
            err = _depends_syntax_error(task.depends) if task.depends else None
            if err:
                out.append(f"templates.{tmpl.name}.tasks.{task.name} depends {task.depends!r} is not a valid "
                           f"expression ({err}): Argo admits it, but the task ends in Error at run time "
                           "(evaluateDependsLogic: unable to evaluate expression)")
    return out


# --- the strict JSON schema -----------------------------------------------------------------------

_SCHEMA_VALIDATOR: Any = None


def _schema_problems(doc: dict) -> list[str]:
    """Unknown keys and wrong types, against the strict schema generated from hera's models of
    Argo's API (bioinfra/argo/workflow.schema.json, a copy of tests/schemas/...)."""
    global _SCHEMA_VALIDATOR
    if _SCHEMA_VALIDATOR is None:
        try:
            import jsonschema
        except ImportError:  # jsonschema is a test dependency today
            return []
        from importlib import resources

        schema = json.loads(resources.files("bioinfra.argo").joinpath("workflow.schema.json").read_text())
        _SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(schema)
    out = []
    for err in sorted(_SCHEMA_VALIDATOR.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        err = _deepest(err)
        path = ".".join(str(p) for p in err.absolute_path) or "(document)"
        message = err.message if len(err.message) <= 300 else err.message[:300] + "..."
        out.append(f"{path}: {message}")
    return list(dict.fromkeys(out))


def _deepest(err: Any) -> Any:
    """An anyOf error (hera's schema wraps every optional field in anyOf [T, null]) says only that
    the whole value is invalid; the useful error is the deepest one inside that is not "null"."""
    if not err.context:
        return err
    leaves = [_deepest(c) for c in err.context]
    leaves = [e for e in leaves if "is not of type 'null'" not in e.message] or leaves
    return max(leaves, key=lambda e: len(e.absolute_path))


def schema_available() -> bool:
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        return False
    return True


# --- entry points -------------------------------------------------------------------------------

def lint(doc: dict, *, schema: bool = True, lint_mode: bool = False) -> list[LintProblem]:
    """Every problem the Argo v3.7 controller (and the API server before it) would refuse `doc`
    for, with their messages; [] when Argo would accept it.

    Argo stops at its first broken rule, so the "argo" part is at most one problem (the one Argo
    would report); Kubernetes metadata and schema problems are all listed. `lint_mode=True` applies
    `argo lint`'s relaxation (spec.arguments parameters may lack a value, given at submit time).
    Notes (severity "note") say what needs the cluster to check (templateRef targets); warnings
    (severity "warning") what Argo admits but cannot run as meant (spec.parallelism 0, a `depends`
    that does not parse)."""
    if not isinstance(doc, dict):
        return [LintProblem("a Workflow must be a mapping (apiVersion, kind, metadata, spec)", "schema")]
    wf = Workflow.parse(doc)
    problems = [LintProblem(m, "kubernetes") for m in _kubernetes_metadata_problems(wf)]
    schema_problems = _schema_problems(doc) if schema else []
    problems += [LintProblem(m, "schema") for m in schema_problems]
    notes: list[str] = []
    try:
        notes = validate_workflow(wf, lint_mode=lint_mode)
    except ArgoError as exc:
        problems.append(LintProblem(exc.message, "argo"))
    except RecursionError:  # a template that calls itself: Argo stops at its max depth as well
        problems.append(LintProblem("template reference exceeded max depth", "argo"))
    except (AttributeError, TypeError, ValueError):
        # A field of the wrong shape (a string where Argo has an object): Go's decoder would refuse
        # the document before any rule ran. The schema names the field; without it, say so.
        if not schema_problems:
            problems.append(LintProblem("the document does not decode as an Argo Workflow (a field has the "
                                        "wrong type); run with the schema check for details", "schema"))
    problems += [LintProblem(n, "argo", "note") for n in dict.fromkeys(notes)]
    problems += [LintProblem(w, "bioinfra", "warning") for w in _warnings(wf)]
    return problems


@dataclass(frozen=True)
class LintedDocument:
    name: str  # the Workflow's name or generateName, or "document N"
    problems: tuple[LintProblem, ...]

    @property
    def errors(self) -> list[LintProblem]:
        return [p for p in self.problems if p.severity == "error"]


def lint_yaml(text: str, *, schema: bool = True, lint_mode: bool = False) -> list[LintedDocument]:
    """lint() every document of a YAML stream (`---`-separated); empty documents are skipped.
    Raises InputError when the text is not YAML."""
    import yaml

    from bioinfra.errors import InputError

    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}") from None
    if not docs:
        raise InputError("no YAML document to lint (the input is empty)")
    out = []
    for i, doc in enumerate(docs, 1):
        name = Workflow.parse(doc).display_name if isinstance(doc, dict) else f"document {i}"
        if name == "(unnamed)":
            name = f"document {i}"
        out.append(LintedDocument(name, tuple(lint(doc, schema=schema, lint_mode=lint_mode))))
    return out


def check_workflow(doc: dict, *, schema: bool = True, lint_mode: bool = False) -> list[LintProblem]:
    """lint(), raising WorkflowInvalidError when there is any error (notes are returned)."""
    from bioinfra.errors import WorkflowInvalidError

    problems = lint(doc, schema=schema, lint_mode=lint_mode)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        name = Workflow.parse(doc).display_name if isinstance(doc, dict) else "(not a Workflow)"
        raise WorkflowInvalidError(name, [p.message for p in errors])
    return problems


__all__ = ["ARGO_VERSION", "ArgoError", "LintProblem", "LintedDocument", "check_workflow", "lint", "lint_yaml",
           "schema_available", "task_dependencies", "validate_workflow"]
