"""Render a pipeline folder's Workflow for a target: the one place every pipeline is rendered
(`render`, local runs, cluster runs, `lint`, `estimate`).

Two stages keep user values out of the template's text (issue "inputs are data, never code"):
1. Jinja renders the template from config-side variables only: images, pools, retry budgets,
   deadlines, the folder's step scripts, and the validated int/bool inputs (`values`).
2. The YAML is parsed, and each input's value is set on its `spec.arguments.parameters` entry,
   the run's labels on metadata: data in a dict, never text. Steps read parameters through
   environment variables (templates/workflows/_steps.j2 `env`).
The result is linted as the Argo v3.7 controller admits it (bioinfra.argo.check_workflow) before
anything is staged, uploaded or submitted.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Optional

from bioinfra.config import Config
from bioinfra.engine.spec import ModeSpec, PipelineSpec
from bioinfra.errors import InputError
from bioinfra.render import HEADER, templates_root, yaml_str

PIPELINE_LABEL = "bioinfra.io/pipeline"
# Parameters every pipeline's Workflow declares and the engine fills (besides one per input).
ENGINE_PARAMETERS = ("run-dir", "stage-in", "stage-out")


@functools.cache
def _environment(folder: str):
    import jinja2

    env = jinja2.Environment(
        # The pipeline's own folder first, then templates/ (for "workflows/_steps.j2").
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(folder), jinja2.FileSystemLoader(str(templates_root()))]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["yaml_str"] = yaml_str
    return env


def step_scripts(spec: PipelineSpec) -> dict[str, str]:
    """The folder's step scripts, pasted verbatim into their steps. Argo substitutes every `{{...}}`
    in a script's source, so a program may not contain `{{`."""
    scripts = {}
    for name in spec.scripts:
        path = spec.folder / name
        text = path.read_text()
        if "{{" in text or "BIOINFRA_PY" in text:
            raise InputError(f"{path} contains '{{{{' or BIOINFRA_PY: Argo substitutes every '{{{{...}}}}' in a "
                             "step's source, and BIOINFRA_PY ends the heredoc a script is pasted into",
                             hint="write it another way (e.g. '{' '{')")
        scripts[name] = scripts[Path(name).stem] = text.rstrip("\n")
    return scripts


def jinja_variables(spec: PipelineSpec, mode: ModeSpec, config: Config, target_name: str, *,
                    values: dict[str, Any], images: Optional[dict[str, str]] = None, stage_in: bool = False,
                    stage_out: bool = False, items: Optional[dict[str, int]] = None,
                    extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    from bioinfra.pipelines import MAX_CHUNKS, MAX_FAN_OUT_PODS, SAMPLE_STAGES, common_variables, deadline_variables

    scalars = {k: v for k, v in values.items() if type(v) in (int, bool)}  # noqa: E721 - exactly int/bool
    steps = tuple(mode.steps)
    return {
        **common_variables(config, target_name, images),
        **deadline_variables(config, steps, items, spec.deadlines),
        "align_threads": config.pipeline.align_threads,
        "align_memory": config.pipeline.align_memory,
        "max_fan_out": MAX_FAN_OUT_PODS,
        "max_fan_out_chunks": MAX_FAN_OUT_PODS // SAMPLE_STAGES,
        "max_chunks": MAX_CHUNKS,
        "stage_in": bool(stage_in),
        "stage_out": bool(stage_out),
        "scripts": step_scripts(spec),
        "values": scalars,
        **(extra or {}),
    }


def render_text(spec: PipelineSpec, mode: ModeSpec, variables: dict[str, Any]) -> str:
    """Stage 1: the template's text from config-side variables (no user value in it)."""
    import jinja2

    if spec.plain:  # a plain Workflow file: its `{{...}}` are Argo's, never Jinja's
        return (spec.folder / mode.workflow).read_text()
    try:
        body = _environment(str(spec.folder)).get_template(mode.workflow).render(**variables)
    except jinja2.TemplateError as exc:
        where = f"{spec.folder / mode.workflow}" + (f":{exc.lineno}" if getattr(exc, "lineno", None) else "")
        raise InputError(f"pipeline {spec.name}: {where} does not render: {exc}",
                         hint="the variables a template sees are listed in docs/pipelines/write-your-own.md") from None
    return body


def fill(workflow: dict[str, Any], spec: PipelineSpec, parameters: dict[str, str], labels: dict[str, str],
         parallelism: Optional[int] = None) -> dict[str, Any]:
    """Stage 2: the run's values set on the parsed Workflow: `parameters` (name -> text) on
    spec.arguments.parameters, `labels` on metadata. A parameter the template does not declare is
    the pipeline's mistake, named here."""
    from bioinfra.pipelines import label_value

    if not isinstance(workflow, dict) or not isinstance(workflow.get("spec"), dict):
        raise InputError(f"pipeline {spec.name}: its template does not render an Argo Workflow (no spec)")
    declared = workflow["spec"].setdefault("arguments", {}).setdefault("parameters", [])
    by_name = {p.get("name"): p for p in declared if isinstance(p, dict)}
    missing = [name for name in parameters if name not in by_name]
    if missing:
        raise InputError(
            f"pipeline {spec.name}: its Workflow declares no parameter {', '.join(missing)} "
            f"(spec.arguments.parameters)",
            hint="declare one `- name: NAME` with `value: \"\"` per input (and run-dir, stage-in, stage-out); "
                 "the engine sets the values")
    for name, value in parameters.items():
        if not isinstance(value, str):
            raise TypeError(f"parameter {name}: {value!r} is not text")
        by_name[name]["value"] = value
    meta = workflow.setdefault("metadata", {})
    meta_labels = meta.setdefault("labels", {}) or {}
    meta["labels"] = meta_labels
    meta_labels.setdefault("app.kubernetes.io/managed-by", "bioinfra")
    meta_labels[PIPELINE_LABEL] = label_value(spec.name)
    for key, value in labels.items():
        meta_labels[key] = label_value(value)
    if parallelism:
        workflow["spec"]["parallelism"] = int(parallelism)
    return workflow


def dump(workflow: dict[str, Any], spec: PipelineSpec, mode: ModeSpec) -> str:
    """The Workflow as YAML text, headed by where it came from (`render` prints this)."""
    import yaml

    where = f"templates/pipelines/{spec.name}/{mode.workflow}" if spec.builtin else str(spec.folder / mode.workflow)
    return HEADER.format(template=where) + yaml.safe_dump(workflow, sort_keys=False, width=120,
                                                           allow_unicode=True)


def render_pipeline(spec: PipelineSpec, mode: ModeSpec, config: Config, target_name: str, *,
                    values: dict[str, Any], parameters: dict[str, str], labels: dict[str, str],
                    images: Optional[dict[str, str]] = None, stage_in: bool = False, stage_out: bool = False,
                    items: Optional[dict[str, int]] = None, parallelism: Optional[int] = None,
                    extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The Workflow for one run (or `render`), linted: WorkflowInvalidError (exit 4) with Argo's
    message when the controller would refuse it."""
    from bioinfra.argo import check_workflow
    from bioinfra.pipelines import load_workflow

    variables = {} if spec.plain else jinja_variables(
        spec, mode, config, target_name, values=values, images=images, stage_in=stage_in, stage_out=stage_out,
        items=items, extra=extra)
    text = render_text(spec, mode, variables)
    try:
        workflow = load_workflow(text)
    except Exception as exc:  # noqa: BLE001 - yaml's errors, named with the template
        raise InputError(f"pipeline {spec.name}: {mode.workflow} does not render valid YAML: {exc}") from None
    workflow = fill(workflow, spec, parameters, labels, parallelism)
    if spec.plain:  # its `workspace` claim is bioinfra's workspace; locally, where its steps run
        from bioinfra.engine.workflow_file import shape

        shape(workflow, target_name)
    check_workflow(workflow)
    return workflow
