"""`bioinfra run WORKFLOW.yaml [-p NAME=VALUE ...]`: a plain Argo Workflow, run as `argo submit` would.

Thin: bioinfra.engine.workflow_file makes the file a pipeline; bioinfra.cli.run_cmd.run_pipeline runs
it through the one engine, like any pipeline (same options, run folder, manifest, backends).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import typer

HELP = """Run the plain Argo Workflow {path} ({name}), as `argo submit` would: on this machine with
the local executor, or submitted to the cluster's workflow namespace with --target.

\b
Parameters (spec.arguments.parameters; set with -p NAME=VALUE, repeatable):
{parameters}

A value is data: it becomes the parameter's value on the parsed Workflow, never text pasted into
it (quotes, $(...), newlines and {{{{...}}}} arrive as written). A parameter without a value in the
file must be given; a -p naming no declared parameter is refused.

\b
Volumes: a persistentVolumeClaim named `workspace` is bioinfra's workspace (locally its folder,
on a cluster the workspace claim). Locally, any other volume, and what the local executor does not
run (artifacts, resource/suspend/http templates, daemons, sidecars, templateRef, ...), is refused
before anything is made (exit 8) with the executor's reason: run those on a cluster.

Every local run writes logs/<step>.log, workflow.yaml and manifest.json into --output."""


def workflow_command(ctx: typer.Context, path: str) -> click.Command:
    from bioinfra.cli.run_cmd import common_options
    from bioinfra.engine import workflow_file as wf_mod
    from bioinfra.errors import BioinfraError

    try:
        wf = wf_mod.load(Path(path))
    except BioinfraError as exc:
        problem = exc

        def refuse(**_kwargs: Any) -> None:
            raise problem

        return click.Command(name=path, callback=refuse, params=_options(common_options()),
                             help=f"Run the plain Argo Workflow {path}. It is refused: "
                                  + "; ".join([exc.message, *getattr(exc, "problems", [])]))

    def callback(parameter: tuple[str, ...], **kwargs: Any) -> None:
        from bioinfra.cli.run_cmd import run_pipeline

        obj = ctx.obj or {}
        values = wf_mod.given(wf, parameter)
        if kwargs["resume"]:
            values = wf_mod.resume_values(wf, values, kwargs["output"])
        wf_mod.require_values(wf, values)
        if _runs_locally(obj, kwargs["target"]):
            wf_mod.check_runs_locally(wf, values)
        elif not kwargs["detach"]:
            wf_mod.check_followable(wf)
        run_pipeline(obj, wf.spec, values, **kwargs)

    listed = "\n".join(f"  {p.get('name')}\t" + (f"default {p['value']!r}" if p.get("value") is not None else
                                                   "(no default: required)")
                       + (f"  {p['description']}" if p.get("description") else "") for p in wf.parameters)
    return click.Command(
        name=path, callback=callback, params=_options(common_options()), context_settings={"max_content_width": 110},
        help=HELP.format(path=path, name=wf.spec.name, parameters=listed or "  (none)"))


def _options(common: list[click.Parameter]) -> list[click.Parameter]:
    return [click.Option(["--parameter", "-p"], multiple=True, metavar="NAME=VALUE",
                         help="Set a Workflow parameter (spec.arguments.parameters), as `argo submit -p`.")] + common


def _runs_locally(obj: dict[str, Any], target: str | None) -> bool:
    from bioinfra.config import load_config
    from bioinfra.targets import get_target

    return get_target(target or load_config(obj.get("config_path")).target).runs_locally
