"""`bioinfra runs list|status|logs|cancel|fetch`: runs already submitted to a cluster (thin over
core.cluster_run; `fetch` finishes a run as `run` does, bioinfra.engine.cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from bioinfra.cli import options as opts

app = typer.Typer(
    help="Runs submitted to a cluster (aws, gcp, onprem): list, status, logs, cancel, fetch.",
    no_args_is_help=True,
)

RunId = typer.Argument(..., help="The run id (`bioinfra runs list`), e.g. fastqc-to-bwa-20261127-081500-1a2b.")


def _cluster(ctx: typer.Context, target: Optional[str]):
    from bioinfra.config import load_config
    from bioinfra.core.cluster_run import kube_for
    from bioinfra.errors import UnsupportedError

    config = load_config(ctx.obj["config_path"])
    name = target or config.target
    from bioinfra.targets import get_target

    if get_target(name).runs_locally:
        raise UnsupportedError("`bioinfra runs` is for runs on a cluster; local runs live in their output folder",
                               hint="give --target aws|gcp|onprem, or set target in bioinfra.yaml")
    config = load_config(ctx.obj["config_path"], target=name)
    return config, kube_for(config, ctx.obj["config_path"])


@app.command("list")
def list_(ctx: typer.Context, target: opts.Target = None,
          as_json: bool = typer.Option(False, "--json", help="JSON on stdout, for scripts.")) -> None:
    """Runs on the cluster, newest first (finished ones stay for a day)."""
    from bioinfra.core.cluster_run import list_runs

    _config, kube = _cluster(ctx, target)
    runs = list_runs(kube)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in runs], indent=2))
        return
    if not runs:
        typer.echo("no runs on the cluster", err=True)
        return
    typer.echo(f"{'RUN':<42} {'PHASE':<10} {'SAMPLE':<16} STARTED")
    for r in runs:
        typer.echo(f"{r.run_id:<42} {r.phase:<10} {r.sample:<16} {r.started or '-'}")


@app.command()
def status(ctx: typer.Context, run_id: str = RunId, target: opts.Target = None,
           as_json: bool = typer.Option(False, "--json", help="JSON on stdout, for scripts.")) -> None:
    """Each step's phase, attempts and message. Exit 0 succeeded, 5 failed, 0 still running."""
    from bioinfra.core.cluster_run import as_workflow, run_status
    from bioinfra.errors import ExitCode

    config, kube = _cluster(ctx, target)
    workflow, states = run_status(kube, run_id, config.pipeline.retries)
    phase = as_workflow(workflow).status.phase or "Pending"
    if as_json:
        typer.echo(json.dumps({"run_id": run_id, "phase": phase,
                               "steps": {n: {"phase": s.phase, "attempts": s.attempts, "message": s.message}
                                         for n, s in states.items()}}, indent=2))
    else:
        typer.echo(f"run {run_id}: {phase}")
        for s in states.values():
            extra = f"  {s.message}" if s.message else ""
            typer.echo(f"  {s.name:<18} {s.phase:<10} attempts {s.attempts}{extra}")
    if phase in ("Failed", "Error"):
        raise typer.Exit(int(ExitCode.STEP_FAILED))


@app.command()
def logs(ctx: typer.Context, run_id: str = RunId,
         step: Optional[str] = typer.Option(None, "--step", "-s", help="Only this step (e.g. align)."),
         target: opts.Target = None) -> None:
    """The pod logs of a run's steps, every attempt, oldest first."""
    from bioinfra.core.cluster_run import run_logs

    _config, kube = _cluster(ctx, target)
    for header, text in run_logs(kube, run_id, step):
        typer.echo(f"===== {header} =====")
        typer.echo(text, nl=not text.endswith("\n"))


@app.command()
def cancel(ctx: typer.Context, run_id: str = RunId, target: opts.Target = None) -> None:
    """Stop a run now: Argo terminates its pods (`argo terminate`); finished steps' files stay."""
    from bioinfra.core.cluster_run import cancel_run

    _config, kube = _cluster(ctx, target)
    typer.echo(f"✓ {cancel_run(kube, run_id)}", err=True)


@app.command()
def fetch(ctx: typer.Context, run_id: str = RunId,
          output: Path = typer.Option(..., "--output", "-o", help="Folder for results, logs and manifest.json."),
          target: opts.Target = None) -> None:
    """Copy a finished run's results, logs and manifest here (e.g. after `run --detach` or Ctrl-C)."""
    from bioinfra.cli.run_cmd import search_path
    from bioinfra.engine.cluster import fetch_run

    config, kube = _cluster(ctx, target)
    outcome = fetch_run(config, kube, run_id, output.resolve(), lambda m: typer.echo(f"✓ {m}", err=True),
                        tuple(search_path(ctx.obj or {})))
    typer.echo(f"results\t{outcome.output}")
    if outcome.manifest:
        typer.echo(f"manifest\t{outcome.manifest}")
