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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Run a pipeline end to end and write its outputs, logs and manifest.json.

    \b
    Examples:
      bioinfra run fastqc-to-bwa                                  # bundled lambda sample
      bioinfra run fastqc-to-bwa --r1 a_R1.fq.gz --r2 a_R2.fq.gz --reference ref.fa -o out/a
      bioinfra run fastqc-to-bwa --resume -o out/a                # after a failure or Ctrl-C

    Outputs: fastqc/ (html+zip per read), align/ (sorted BAM + index), stats/ (flagstat, stats),
    multiqc/multiqc_report.html, logs/<step>.log, manifest.json, workflow.yaml.
    """
    from bioinfra.config import load_config
    from bioinfra.core.run import RunRequest, run_local
    from bioinfra.errors import InputError, UnsupportedError
    from bioinfra.pipelines import PIPELINES
    from bioinfra.targets import get_target

    if pipeline not in PIPELINES:
        raise InputError(f"unknown pipeline '{pipeline}'; known: {', '.join(PIPELINES)}")
    if runtime not in (None, "auto", "native", "docker"):
        raise InputError(f"--runtime must be native, docker or auto (got {runtime!r})")
    config = load_config(ctx.obj["config_path"])
    target_obj = get_target(target or config.target)
    if not target_obj.runs_locally:
        raise UnsupportedError(
            f"running on target '{target_obj.name}' is not available yet (clusters arrive with issues #4-#6)",
            hint="run on this machine with --target local, or render the Workflow with `bioinfra render`",
        )
    req = RunRequest(
        r1=r1, r2=r2, reference=reference, sample=sample, output=output, qc_gate=qc_gate,
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
    skipped = [t.name for t in outcome.result.tasks.values() if t.phase in ("Skipped", "Omitted")]
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
