from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from bioinfra.cli import options as opts


def run(
    ctx: typer.Context,
    pipeline: opts.Pipeline,
    r1: opts.R1 = None,
    r2: opts.R2 = None,
    reference: opts.Reference = None,
    sample: opts.Sample = None,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder (default: results/<run-id>/)."),
    qc_gate: opts.QcGate = False,
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --output (default: the latest under results/), skipping complete steps."),
    max_cpus: Optional[int] = typer.Option(None, "--max-cpus", min=1, help="CPU budget for concurrent steps (default: all cores)."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="native | docker | auto (default: the config's local.runtime)."),
    target: opts.Target = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="Check config, tools and inputs, show the steps; create nothing."),
    detach: bool = typer.Option(False, "--detach", help="Cluster: submit and return; follow with `bioinfra runs status|fetch`."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Run a pipeline end to end and write its outputs, logs and manifest.json.

    \b
    Examples:
      bioinfra run fastqc-to-bwa                                  # bundled lambda sample
      bioinfra run fastqc-to-bwa --r1 a_R1.fq.gz --r2 a_R2.fq.gz --reference ref.fa -o out/a
      bioinfra run fastqc-to-bwa --resume -o out/a                # after a failure or Ctrl-C
      bioinfra run fastqc-to-bwa --target onprem -o out/b          # on your cluster (after `up onprem`)
      bioinfra run fastqc-to-bwa --target aws --r1 s3://b/a_R1.fq.gz --r2 s3://b/a_R2.fq.gz --reference ref.fa

    On aws, gcp and onprem the same Workflow is submitted to Argo: local inputs are uploaded into
    the cluster's shared workspace (s3:// / gs:// inputs are read in place), progress comes from a
    watch, each step's log is saved under logs/, results are copied back to --output (and, on
    aws/gcp, to the results bucket). Ctrl-C stops watching, not the run (`bioinfra runs`).

    Outputs: fastqc/ (html+zip per read), align/ (sorted BAM + index), stats/ (flagstat, stats),
    multiqc/multiqc_report.html, logs/<step>.log, manifest.json, workflow.yaml.
    """
    from bioinfra.config import load_config
    from bioinfra.core.run import RunRequest, run_local
    from bioinfra.errors import InputError, UnsupportedError  # noqa: F401 - UnsupportedError used above
    from bioinfra.pipelines import PIPELINES
    from bioinfra.targets import get_target

    if pipeline not in PIPELINES:
        raise InputError(f"unknown pipeline '{pipeline}'; known: {', '.join(PIPELINES)}")
    if runtime not in (None, "auto", "native", "docker"):
        raise InputError(f"--runtime must be native, docker or auto (got {runtime!r})")
    config = load_config(ctx.obj["config_path"])
    target_obj = get_target(target or config.target)
    if not target_obj.runs_locally:
        if resume or max_cpus is not None or runtime is not None:
            raise UnsupportedError("--resume, --max-cpus and --runtime apply to local runs only",
                                   hint="on a cluster, Argo retries failed steps itself (pipeline.retries)")
        run_cluster(ctx, target_obj.name, r1=r1, r2=r2, reference=reference, sample=sample, output=output,
                    qc_gate=qc_gate, dry_run=dry_run, detach=detach, quiet=quiet)
        return
    if detach:
        raise UnsupportedError("--detach needs a cluster target (aws, gcp, onprem)")
    req = RunRequest(
        r1=opts.as_path(r1), r2=opts.as_path(r2), reference=opts.as_path(reference), sample=sample, output=output, qc_gate=qc_gate,
        resume=resume, max_cpus=max_cpus, runtime=None if runtime == "auto" else runtime,
    )

    def say(msg: str) -> None:
        if not quiet:
            typer.echo(f"✓ {msg}", err=True)

    if dry_run:
        from bioinfra.core.run import dry_run_plan

        for line in dry_run_plan(config, req):
            typer.echo(line)
        return

    from bioinfra.executor.progress import reporter_for

    with input_progress(req, quiet) as progress:
        outcome = run_local(config, req, reporter=reporter_for(sys.stderr, quiet=quiet), on_check=say, input_progress=progress)
    for note in outcome.notes:
        typer.echo(f"! {note}", err=True)
    # stage-in/stage-out only run on a cluster (their parameters are empty here): Skipped as designed.
    skipped = [
        t.name for t in outcome.result.tasks.values()
        if t.phase == "Omitted" or (t.phase == "Skipped" and not t.name.startswith("stage-"))
    ]
    if skipped:
        typer.echo(f"! steps not run: {', '.join(skipped)}", err=True)
    typer.echo(f"✓ run {outcome.run_id} finished", err=True)
    report = outcome.output / "multiqc" / "multiqc_report.html"
    typer.echo(f"results\t{outcome.output}")
    if report.exists():
        typer.echo(f"report\t{report}")
    typer.echo(f"manifest\t{outcome.manifest}")


# Inputs are read end to end before the run (checksums, read counts, gzip integrity); on large
# files that takes a while, so show a bar on a terminal.
_BAR_THRESHOLD_BYTES = 256 * 1024 * 1024


class input_progress:  # noqa: N801 - used as a context manager
    def __init__(self, req, quiet: bool) -> None:
        files = [p for p in (req.r1, req.r2, req.reference) if p is not None and p.is_file()]
        self.total = sum(p.stat().st_size for p in files)
        self.enabled = not quiet and sys.stderr.isatty() and self.total >= _BAR_THRESHOLD_BYTES
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("checking inputs"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                            transient=True, console=Console(stderr=True))
        self.bar.start()
        task = self.bar.add_task("inputs", total=self.total)

        def advance(n: int) -> None:
            self.bar.advance(task, n)
            if self.bar.tasks[task].completed >= self.total:
                self.bar.stop()

        return advance

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def run_cluster(ctx: typer.Context, target: str, *, r1, r2, reference, sample, output, qc_gate: bool, dry_run: bool,
                detach: bool, quiet: bool) -> None:
    """`run --target aws|gcp|onprem`: thin over core.cluster_run."""
    from bioinfra.config import load_config
    from bioinfra.core.cluster_run import ClusterRunRequest, build_workflow, check_cluster_inputs, run_on_cluster
    from bioinfra.executor.progress import reporter_for

    config = load_config(ctx.obj["config_path"], target=target)
    req = ClusterRunRequest(target=target, r1=r1, r2=r2, reference=reference, sample=sample, output=output,
                            qc_gate=qc_gate, detach=detach)

    def say(msg: str) -> None:
        if not quiet:
            typer.echo(f"✓ {msg}", err=True)

    if dry_run:
        sample_name, staged, _bundled = check_cluster_inputs(config, req)
        workflow = build_workflow(config, "dry-run", sample_name, staged, qc_gate=qc_gate, stage_out="")
        typer.echo(f"would submit Workflow bioinfra/<run-id> to target {target} with steps:")
        from bioinfra.core.cluster_run import dag_tasks

        for task in dag_tasks(workflow):
            typer.echo(f"  {task}")
        for item in staged:
            how = "read in place" if item.remote else "uploaded (if not there yet)"
            typer.echo(f"{item.role}\t{item.source} -> workspace:{item.workspace_path} ({how})")
        return
    outcome = run_on_cluster(config, ctx.obj["config_path"], req, reporter=reporter_for(sys.stderr, quiet=quiet),
                             say=say)
    if detach:
        typer.echo(f"✓ run {outcome.run_id} submitted; `bioinfra runs status {outcome.run_id}`", err=True)
        typer.echo(f"run\t{outcome.run_id}")
        return
    typer.echo(f"✓ run {outcome.run_id} finished on the cluster", err=True)
    typer.echo(f"results\t{outcome.output}")
    report = outcome.output / "multiqc" / "multiqc_report.html"
    if report.exists():
        typer.echo(f"report\t{report}")
    if outcome.results_url:
        typer.echo(f"bucket\t{outcome.results_url}")
    if outcome.manifest:
        typer.echo(f"manifest\t{outcome.manifest}")
