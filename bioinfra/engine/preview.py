"""A pipeline's Workflow with placeholder values: what `lint FOLDER` checks for every mode and
target, and what reads only a Workflow's structure (the onprem node pools it asks for). Rendered as
a run renders it (bioinfra.engine.render: Jinja from config-side variables, values set on the parsed
Workflow), but from no input at all: file inputs get a workspace path under a zero digest, scalars
their defaults (else a plain word, the minimum, 1), staging its placeholders on a cluster."""

from __future__ import annotations

from typing import Any, Optional

from bioinfra.config import Config
from bioinfra.engine.spec import ModeSpec, PipelineSpec

STAGE_IN = ":s3,provider=AWS,env_auth=true:placeholder-bucket/input\tinputs/remote-0000000000000000/input"
STAGE_OUT = ":s3,provider=AWS,env_auth=true:placeholder-results/runs/preview"
DIGEST = "0000000000000000"


def placeholders(spec: PipelineSpec, mode: ModeSpec, bools: Optional[bool] = None
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """(values for Jinja, Workflow parameters) for every input of the mode; every bool input
    `bools` (None: its default)."""
    values: dict[str, Any] = {}
    parameters: dict[str, str] = {}
    for n in mode.inputs:
        i = spec.input(n)
        value: Any = None
        if i.type == "bool":
            value = bool(i.default) if bools is None else bools
            text = "true" if value else "false"
        elif i.type == "int":
            value = i.default if isinstance(i.default, int) else (i.min if i.min is not None else 1)
            text = str(value)
        elif i.type == "string":
            value = text = i.default if isinstance(i.default, str) else "placeholder"
        elif i.type == "sample_sheet":
            text = "runs/preview/sheet.tsv"
        else:
            text = f"inputs/{DIGEST}/{i.stage_as or n}"
        if value is not None:
            values[n] = value
        if i.param:
            parameters[i.param] = text
    return values, parameters


def placeholder_workflow(spec: PipelineSpec, mode: ModeSpec, config: Config, target: str, *,
                         bools: Optional[bool] = None) -> dict[str, Any]:
    """The mode's Workflow for `target`, parsed and filled, NOT linted (the caller lints or reads it).
    Raises InputError when the template does not render; yaml's errors as they come."""
    from bioinfra.engine.render import fill, jinja_variables, render_text
    from bioinfra.pipelines import load_workflow
    from bioinfra.targets import get_target

    cluster = not get_target(target).runs_locally
    values, parameters = placeholders(spec, mode, bools)
    parameters.update({"run-dir": "runs/preview", "stage-in": STAGE_IN if cluster else "",
                       "stage-out": STAGE_OUT if cluster else ""})
    variables = jinja_variables(spec, mode, config, target, values=values, stage_in=cluster, stage_out=cluster,
                                items=dict.fromkeys(mode.items_per_pod, 1) or None, extra={"fan_out": {}})
    return fill(load_workflow(render_text(spec, mode, variables)), spec, parameters, {})
