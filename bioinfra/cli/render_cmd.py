"""`bioinfra render PIPELINE|FOLDER [its options] --target T --run-id R`: the Workflow a run would
submit, printed. Thin over bioinfra.engine.prepare, like `run` (the pipeline's own options come from
its pipeline.yaml, built by run_cmd.input_option): no per-pipeline code here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import click
import typer

RENDER_HELP = """Print the Argo Workflow YAML a run would submit (one spec for every target).

\b
PIPELINE is a pipeline name (`bioinfra pipelines list`) or a pipeline folder; its own options are
those of `bioinfra run PIPELINE` (see `bioinfra render PIPELINE --help`). The Workflow is the one a
run renders, checked (Argo v3.7 rules) before it is printed, with this target's images (pushed ones
by digest), less what is made per run: nothing is staged in or out, no output folder is looked at.
A sample sheet is read for its shape only (its FASTQs are read by `run`), so this stays fast for
100,000 rows.

\b
Examples:
  bioinfra render fastqc-to-bwa --target gcp > wf.yaml && bioinfra lint wf.yaml
  bioinfra render fastqc-to-bwa --samples samples.csv --target aws   # same size for 10 or 100,000 rows
  bioinfra render cellprofiler --images plate1/ --data-file images.csv --illum illum.cppipe --pipeline analysis.cppipe
  bioinfra render ./my-pipeline/ --input data.csv --target onprem
"""


def render(
    ctx: typer.Context,
    pipeline: Optional[str] = typer.Argument(None, metavar="PIPELINE", show_default=False,
                                             help="A pipeline name or a pipeline folder."),
) -> None:
    from bioinfra.cli.run_cmd import invoke, pipeline_or_help, resolve

    if pipeline_or_help(ctx, pipeline, "render"):
        assert pipeline is not None
        invoke(ctx, render_command(ctx, resolve(ctx, pipeline), pipeline), "render", pipeline)


render.__doc__ = RENDER_HELP


def render_command(ctx: typer.Context, spec: Any, ref: str) -> click.Command:
    from bioinfra.cli.run_cmd import input_option

    def callback(**kwargs: Any) -> None:
        given = {i.name: kwargs.get(i.name) for i in spec.inputs}
        text = render_text(ctx.obj or {}, spec, given, target=kwargs["target"], run_id=kwargs["run_id"],
                           max_parallel=kwargs["max_parallel"])
        typer.echo(text, nl=False)

    params = [input_option(i) for i in spec.inputs] + [
        click.Option(["--target", "-t"], help="local | onprem | gcp | aws (default: the config's)."),
        click.Option(["--run-id"], default="preview", show_default=True, help="Run id used in workspace paths."),
        click.Option(["--max-parallel"], type=click.IntRange(min=1),
                     help="At most this many steps at once (Argo's spec.parallelism)."),
    ]
    source = "built-in" if spec.builtin else f"from {spec.folder}"
    return click.Command(name=ref, callback=callback, params=params, context_settings={"max_content_width": 110},
                         help=f"Print the Workflow of {spec.name} {spec.version} ({source}) as a run would submit it.")


@dataclass
class RenderBackend:
    """The engine's Backend for `render`: no preflight (no tools, runtime or cluster needed), the
    target's pushed images, nothing staged out, no object looked at. It never runs anything."""

    target: str
    pushed: dict[str, str] = field(default_factory=dict)

    def preflight(self, spec: Any, say: Any) -> None:
        return None

    def images(self) -> Optional[dict[str, str]]:
        return self.pushed or None

    def stage_out(self, run_id: str) -> tuple[str, str]:
        return "", ""

    def check_remote(self, ref: Any, role: str) -> None:
        return None  # render reads no bucket; `run` checks the objects exist

    def max_cpus(self, options: Any) -> Optional[int]:
        return None

    def run(self, prepared: Any, options: Any, *, say: Any, reporter: Any) -> Any:  # pragma: no cover
        raise NotImplementedError("render never runs a Workflow")

    def dry_run(self, prepared: Any, options: Any) -> list[str]:  # pragma: no cover
        return []


def render_text(ctx_obj: dict[str, Any], spec: Any, given: dict[str, Any], *, target: Optional[str],
                run_id: str = "preview", max_parallel: Optional[int] = None) -> str:
    """The Workflow text `render` prints: engine.prepare without the output-folder check, with a
    sample sheet's shape only, then the YAML dumped from the filled, linted Workflow."""
    from bioinfra.config import load_config
    from bioinfra.core.images import pushed_images
    from bioinfra.engine.engine import RunOptions, prepare
    from bioinfra.engine.render import dump
    from bioinfra.engine.rundir import check_run_id, default_workspace
    from bioinfra.targets import get_target

    check_run_id(run_id)
    config_path = ctx_obj.get("config_path")
    # As before the engine: the config as written (a preview needs no cluster settings of the target).
    config = load_config(config_path)
    target_name = get_target(target or config.target).name
    backend = RenderBackend(target_name, pushed_images(config, target_name, default_workspace(config)))
    options = RunOptions(target=target_name, max_parallel=max_parallel)
    prepared = prepare(config, spec, given, options, backend, say=lambda _m: None, vet=False, run_id=run_id,
                       check_files=False)
    return dump(prepared.workflow, spec, prepared.mode)
