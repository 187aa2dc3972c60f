"""`bioinfra run PIPELINE|FOLDER|WORKFLOW.yaml [its options]`: thin over bioinfra.engine.

The pipeline's own options come from its pipeline.yaml (typed inputs), so `bioinfra run NAME --help`
shows exactly what NAME takes; the options every run has are declared once below. There is no
per-pipeline code here: a new pipeline is a folder (docs/pipelines/write-your-own.md).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import click
import typer

RUN_HELP = """Run a pipeline end to end and write its outputs, logs and manifest.json.

\b
PIPELINE is one of:
  NAME            a built-in pipeline or one on the config's pipelines.path (`bioinfra pipelines list`)
  ./FOLDER/       a pipeline folder anywhere (pipeline.yaml + its Workflow template)
  WORKFLOW.yaml   a plain Argo Workflow, run as `argo submit` would (-p NAME=VALUE sets a parameter)

\b
Examples:
  bioinfra run fastqc-to-bwa                                  # bundled lambda sample, this machine
  bioinfra run fastqc-to-bwa --help                           # that pipeline's own options
  bioinfra run fastqc-to-bwa --r1 a_R1.fq.gz --r2 a_R2.fq.gz --reference ref.fa -o out/a
  bioinfra run fastqc-to-bwa --resume -o out/a                # after a failure or Ctrl-C
  bioinfra run fastqc-to-bwa --samples samples.csv --reference ref.fa --max-parallel 4
  bioinfra run variant-calling                                # calls the bundled sample's 12 planted SNPs
  bioinfra run cellprofiler --target onprem                   # on your cluster (after `up onprem`)
  bioinfra run ./my-pipeline/ --input data.csv                # your own pipeline folder
  bioinfra run hello.yaml -p message=hi                       # a plain Argo Workflow

On aws, gcp and onprem the same Workflow is submitted to Argo: local inputs are uploaded into the
cluster's shared workspace (s3:// / gs:// inputs are read in place), progress comes from a watch,
each step's log is saved under logs/, results are copied back to --output (and, on aws/gcp, to the
results bucket). Ctrl-C stops watching, not the run (`bioinfra runs`).
"""


def run(
    ctx: typer.Context,
    pipeline: Optional[str] = typer.Argument(None, metavar="PIPELINE", show_default=False,
                                             help="A pipeline name, a pipeline folder, or an Argo Workflow file."),
) -> None:
    if not pipeline_or_help(ctx, pipeline, "run"):
        return
    assert pipeline is not None
    if pipeline.endswith((".yaml", ".yml")) and Path(pipeline).is_file():
        from bioinfra.cli.workflow_file import workflow_command

        command = workflow_command(ctx, pipeline)
    else:
        command = pipeline_command(ctx, resolve(ctx, pipeline), pipeline)
    invoke(ctx, command, "run", pipeline)


def pipeline_or_help(ctx: typer.Context, pipeline: Optional[str], verb: str) -> bool:
    """The PIPELINE argument of run/render/estimate: False when help was printed instead.
    `VERB --help` is an answer (exit 0, stdout); a bare `VERB` is a usage error (exit 2, stderr)."""
    if pipeline is None or pipeline in ("--help", "-h"):
        asked = pipeline is not None
        typer.echo(ctx.get_help(), err=not asked)
        typer.echo("\nPipelines (`bioinfra pipelines list`):", err=not asked)
        for name, spec in known_pipelines(ctx).items():
            typer.echo(f"  {name:<18} {spec.description.split(': ')[0].split('. ')[0].rstrip('.')}", err=not asked)
        if not asked:
            raise typer.Exit(code=2)
        return False
    if pipeline.startswith("-"):
        raise click.UsageError(f"{pipeline}: name the pipeline first: bioinfra {verb} PIPELINE [OPTIONS]")
    return True


def resolve(ctx: typer.Context, ref: str):
    """A pipeline by name (built-in, or on the config's pipelines.path) or by folder."""
    from bioinfra.engine.spec import looks_like_path

    return find(ctx, ref) if not looks_like_path(ref) else _folder(ref)


def invoke(ctx: typer.Context, command: click.Command, verb: str, ref: str) -> None:
    """The pipeline's own command, given every argument after PIPELINE (its --help included)."""
    command.main(args=list(ctx.args), prog_name=f"bioinfra {verb} {ref}", standalone_mode=False, obj=ctx.obj)


run.__doc__ = RUN_HELP


def _folder(ref: str):
    from bioinfra.engine.spec import find_pipeline

    return find_pipeline(ref)


def search_path(ctx_obj: dict[str, Any]) -> list[Path]:
    """The config's pipelines.path, relative entries taken from the config file's folder."""
    from bioinfra.config import find_config_path, load_config

    config = load_config(ctx_obj.get("config_path"))
    where = find_config_path(ctx_obj.get("config_path"))
    base = where.parent if where is not None else Path.cwd()
    return [p.expanduser() if p.expanduser().is_absolute() else base / p for p in config.pipelines.path]


def known_pipelines(ctx: typer.Context):
    from bioinfra.engine.spec import discover

    return discover(search_path(ctx.obj or {}))


def find(ctx: typer.Context, name: str):
    from bioinfra.engine.spec import find_pipeline

    return find_pipeline(name, search_path(ctx.obj or {}))


# -- the options every run has -------------------------------------------------------------------


def common_options() -> list[click.Parameter]:
    return [
        click.Option(["--output", "-o"], type=click.Path(path_type=Path), help="Output folder (default: results/<run-id>/)."),
        click.Option(["--resume"], is_flag=True, help="Continue the run in --output (default: the latest under results/), "
                                                        "skipping complete steps."),
        click.Option(["--target", "-t"], help="local | onprem | gcp | aws (default: the config's)."),
        click.Option(["--runtime"], type=click.Choice(["native", "docker", "auto"]),
                     help="Local runs: native tools or the images under Docker (default: the config's local.runtime)."),
        click.Option(["--max-cpus"], type=click.IntRange(min=1), help="Local runs: CPU budget for concurrent steps (default: all cores)."),
        click.Option(["--max-parallel"], type=click.IntRange(min=1),
                     help="At most this many steps at once (Argo's spec.parallelism on a cluster)."),
        click.Option(["--dry-run"], is_flag=True, help="Check config, tools and inputs, show the steps; create nothing."),
        click.Option(["--detach"], is_flag=True, help="Cluster: submit and return; follow with `bioinfra runs status|fetch`."),
        click.Option(["--quiet", "-q"], is_flag=True, help="No progress display."),
        click.Option(["--over-budget"], is_flag=True, help="Run even if `bioinfra estimate` is above budget.max_usd."),
    ]


def input_option(i) -> click.Option:
    """The CLI option of one typed input (pipeline.yaml `inputs`)."""
    names = [i.name, i.option] + ([i.short] if i.short else [])
    default = i.default if not (isinstance(i.default, str) and i.default.startswith("bundled:")) else None
    shown = f" [default: {'the bundled sample' if i.default is not None and default is None else default}]" \
        if i.default is not None else (" [required]" if i.required else "")
    help_text = f"{i.help} ({i.type}){shown}"
    if i.type == "bool":
        flag = i.option
        return click.Option([i.name, f"{flag}/--no-{flag[2:]}"], default=None, help=help_text)
    kind = click.INT if i.type == "int" else click.STRING
    metavar = {"fastq": "FASTQ", "fasta": "FASTA", "sample_sheet": "SHEET", "image_folder": "FOLDER",
               "folder": "FOLDER", "data_file": "CSV", "file": "FILE", "int": "N", "string": "TEXT"}[i.type]
    return click.Option(names, type=kind, default=None, metavar=metavar, help=help_text)


def pipeline_command(ctx: typer.Context, spec, ref: str) -> click.Command:
    modes = ""
    if spec.modes:
        modes = "\n\n\b\nModes:\n" + "\n".join(
            f"  {m.name:<10} " + (f"with {spec.input(m.when).option}: " if m.when else "default: ")
            + ", ".join(spec.input(n).option for n in m.inputs) for m in spec.modes)
    outputs = spec.outputs
    out_help = f"\n\nReport: {outputs.report}." if outputs.report else ""

    def callback(**kwargs: Any) -> None:
        given = {i.name: kwargs.get(i.name) for i in spec.inputs}
        run_pipeline(ctx.obj or {}, spec, given, **{k: kwargs[k] for k in (
            "output", "resume", "target", "runtime", "max_cpus", "max_parallel", "dry_run", "detach", "quiet",
            "over_budget")})

    params = [input_option(i) for i in spec.inputs] + common_options()
    source = "built-in" if spec.builtin else f"from {spec.folder}"
    return click.Command(name=ref, callback=callback, params=params, context_settings={"max_content_width": 110},
                         help=f"{spec.name} {spec.version} ({source}): {spec.description}{modes}{out_help}\n\n"
                              "Every run writes logs/<step>.log, manifest.json and workflow.yaml into --output.")


# -- running -------------------------------------------------------------------------------------


def backend_for(config, config_path, target_name: str, runtime: Optional[str], *, dry_run: bool = False):
    """The one switch between the two backends: this machine's executor, or Argo on a cluster (not
    contacted by a dry run)."""
    from bioinfra.targets import get_target

    target = get_target(target_name)
    if target.runs_locally:
        from bioinfra.engine.local import LocalBackend

        return LocalBackend(config, requested_runtime=None if runtime in (None, "auto") else runtime)
    from bioinfra.engine.cluster import ClusterBackend

    return ClusterBackend(config, config_path, target.name, offline=dry_run)


def run_pipeline(ctx_obj: dict[str, Any], spec, given: dict[str, Any], *, output, resume, target, runtime, max_cpus,
                 max_parallel, dry_run, detach, quiet, over_budget) -> None:
    from bioinfra.config import load_config
    from bioinfra.engine.engine import RunOptions, execute
    from bioinfra.engine.engine import dry_run as plan_run
    from bioinfra.errors import UnsupportedError
    from bioinfra.executor.progress import reporter_for
    from bioinfra.targets import get_target

    config_path = ctx_obj.get("config_path")
    base = load_config(config_path)
    target_name = get_target(target or base.target).name
    config = load_config(config_path, target=target_name) if target_name != base.target else base
    local = get_target(target_name).runs_locally
    if not local and (resume or max_cpus is not None or runtime is not None):
        raise UnsupportedError("--resume, --max-cpus and --runtime apply to local runs only",
                               hint="on a cluster, Argo retries failed steps itself (pipeline.retries)")
    if local and detach:
        raise UnsupportedError("--detach needs a cluster target (aws, gcp, onprem)")
    options = RunOptions(target=target_name, output=output, resume=resume, max_cpus=max_cpus, runtime=runtime,
                         max_parallel=max_parallel, detach=detach)
    backend = backend_for(config, config_path, target_name, runtime, dry_run=dry_run)
    if not local:
        guard_budget(config, spec, given, target_name, over_budget, dry_run=dry_run, quiet=quiet)
    if dry_run:
        for line in plan_run(config, spec, given, options, backend):
            typer.echo(line)
        return
    say = sayer(quiet)
    outcome = execute(config, spec, given, options, backend, say=say, reporter=reporter_for(sys.stderr, quiet=quiet))
    print_outcome(outcome, detach)


def guard_budget(config, spec, given: dict[str, Any], target: str, over_budget: bool, *, dry_run: bool,
                 quiet: bool) -> None:
    """Refuse (exit 14) a cloud run whose estimate is above budget.max_usd, unless --over-budget.
    Only with a budget set: without one, an unpriced machine type must not block a run."""
    from bioinfra.core.estimate import PRICED_TARGETS, check_budget, estimate_pipeline

    if config.budget.max_usd is None or target not in PRICED_TARGETS:
        return
    if over_budget:
        if not quiet:
            typer.echo(f"! --over-budget: not checking the estimate against budget.max_usd ({config.budget.max_usd:g} USD)",
                       err=True)
        return
    found = estimate_pipeline(config, spec, given)
    for warning in found.warnings:
        if not quiet:
            typer.echo(f"! {warning}", err=True)
    check_budget(config, found)
    if not quiet:
        typer.echo(f"✓ estimate {found.total_usd:.2f} USD is within budget.max_usd {config.budget.max_usd:g} USD"
                   + (" (dry run)" if dry_run else ""), err=True)


def sayer(quiet: bool):
    """The "✓ ..." progress lines on stderr, unless --quiet."""

    def say(msg: str) -> None:
        if not quiet:
            typer.echo(f"✓ {msg}", err=True)

    return say


def print_outcome(outcome, detach: bool) -> None:
    """What a run prints on stdout (tab-separated, for scripts); --detach: the run id."""
    if detach:
        typer.echo(f"✓ run {outcome.run_id} submitted; `bioinfra runs status {outcome.run_id}`", err=True)
        typer.echo(f"run\t{outcome.run_id}")
        return
    for note in outcome.notes:
        typer.echo(f"! {note}", err=True)
    skipped = [t.name for t in outcome.tasks.values()
               if t.phase == "Omitted" or (t.phase == "Skipped" and not t.name.startswith("stage-"))]
    if skipped:
        typer.echo(f"! steps not run: {', '.join(skipped)}", err=True)
    where = " on the cluster" if outcome.results_url or outcome.result is None else ""
    summary = f": {'; '.join(outcome.summary)}" if outcome.summary else ""
    typer.echo(f"✓ run {outcome.run_id} finished{where}{summary}", err=True)
    typer.echo(f"results\t{outcome.results or outcome.output}")
    if outcome.report is not None and outcome.report.exists():
        typer.echo(f"report\t{outcome.report}")
    for label, path in outcome.files.items():
        if path.exists():
            typer.echo(f"{label}\t{path}")
    if outcome.results_url:
        typer.echo(f"bucket\t{outcome.results_url}")
    if outcome.manifest:
        typer.echo(f"manifest\t{outcome.manifest}")
