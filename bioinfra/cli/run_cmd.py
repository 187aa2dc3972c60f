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
    images: opts.Images = None,
    data_file: opts.DataFile = None,
    illum: opts.IllumPipeline = None,
    analysis: opts.AnalysisPipeline = None,
    batch_size: opts.BatchSize = 4,
    max_parallel: opts.MaxParallel = None,
    title: opts.Title = None,
    samples: opts.Samples = None,
    chunk_size: opts.ChunkSize = None,
    over_budget: bool = typer.Option(False, "--over-budget", help="Run even if `bioinfra estimate` is above budget.max_usd."),
) -> None:
    """Run a pipeline end to end and write its outputs, logs and manifest.json.

    \b
    Examples:
      bioinfra run fastqc-to-bwa                                  # bundled lambda sample
      bioinfra run fastqc-to-bwa --r1 a_R1.fq.gz --r2 a_R2.fq.gz --reference ref.fa -o out/a
      bioinfra run fastqc-to-bwa --resume -o out/a                # after a failure or Ctrl-C
      bioinfra run fastqc-to-bwa --target onprem -o out/b          # on your cluster (after `up onprem`)
      bioinfra run fastqc-to-bwa --target aws --r1 s3://b/a_R1.fq.gz --r2 s3://b/a_R2.fq.gz --reference ref.fa
      bioinfra run fastqc-to-bwa --samples samples.csv --reference ref.fa --max-parallel 4
      bioinfra run cellprofiler                                    # bundled synthetic screen
      bioinfra run cellprofiler --images plate1/ --data-file images.csv --illum illum.cppipe \\
          --pipeline analysis.cppipe --batch-size 50 --max-parallel 8

    On aws, gcp and onprem the same Workflow is submitted to Argo: local inputs are uploaded into
    the cluster's shared workspace (s3:// / gs:// inputs are read in place), progress comes from a
    watch, each step's log is saved under logs/, results are copied back to --output (and, on
    aws/gcp, to the results bucket). Ctrl-C stops watching, not the run (`bioinfra runs`).

    Outputs (fastqc-to-bwa): fastqc/ (html+zip per read), align/ (sorted BAM + index), stats/
    (flagstat, stats), multiqc/multiqc_report.html, logs/<step>.log, manifest.json, workflow.yaml.
    Outputs (cellprofiler): results/ (one CSV + Parquet per object, summary.html, gather.json),
    batches/<first>-<last>/ (each batch's CSVs), illum/ (illumination functions), logs/, manifest.json.
    A failed batch is retried, then named by its image-set range; the gather says what is missing.
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
    screen_flags = {"--images": images, "--data-file": data_file, "--illum": illum, "--pipeline": analysis,
                    "--title": title}
    if pipeline == "cellprofiler":
        given = [flag for flag, value in (("--r1", r1), ("--r2", r2), ("--reference", reference), ("--sample", sample),
                                          ("--qc-gate", qc_gate)) if value]
        if given:
            raise InputError(f"{', '.join(given)}: fastqc-to-bwa options; cellprofiler takes --images, --data-file, "
                             "--illum, --pipeline")
        config = load_config(ctx.obj["config_path"])
        target_obj = get_target(target or config.target)
        if not target_obj.runs_locally:
            if resume or max_cpus is not None or runtime is not None:
                raise UnsupportedError("--resume, --max-cpus and --runtime apply to local runs only",
                                       hint="on a cluster, Argo retries failed batches itself (pipeline.retries)")
            guard_budget(ctx, target_obj.name, "cellprofiler", over_budget, data_file=data_file, batch_size=batch_size,
                         dry_run=dry_run, quiet=quiet)
            run_screen_on_cluster(ctx, target_obj.name, images=images, data_file=data_file, illum=illum,
                                  analysis=analysis, batch_size=batch_size, max_parallel=max_parallel, title=title,
                                  output=output, detach=detach, dry_run=dry_run, quiet=quiet)
            return
        if detach:
            raise UnsupportedError("--detach needs a cluster target (aws, gcp, onprem)")
        run_screen_locally(config, images=images, data_file=data_file, illum=illum, analysis=analysis,
                           batch_size=batch_size, max_parallel=max_parallel, title=title, output=output, resume=resume,
                           max_cpus=max_cpus, runtime=runtime, dry_run=dry_run, quiet=quiet)
        return
    given = [flag for flag, value in screen_flags.items() if value is not None and flag != "--title"]
    if given:
        raise InputError(f"{', '.join(given)}: cellprofiler options; fastqc-to-bwa takes --r1, --r2, --reference")
    config = load_config(ctx.obj["config_path"])
    if samples is not None:
        clash = [flag for flag, value in (("--r1", r1), ("--r2", r2), ("--sample", sample), ("--qc-gate", qc_gate))
                 if value]
        if clash:
            raise InputError(f"{', '.join(clash)}: not with --samples (the sheet names each sample's reads)")
        target_obj = get_target(target or config.target)
        if not target_obj.runs_locally:
            if resume or max_cpus is not None or runtime is not None:
                raise UnsupportedError("--resume, --max-cpus and --runtime apply to local runs only",
                                       hint="on a cluster, Argo retries failed chunks itself (pipeline.retries)")
            guard_budget(ctx, target_obj.name, "fastqc-to-bwa", over_budget, samples=samples, reference=reference,
                         chunk_size=chunk_size, dry_run=dry_run, quiet=quiet)
            run_samples_on_cluster(ctx, target_obj.name, samples=samples, reference=opts.as_path(reference),
                                   chunk_size=chunk_size, max_parallel=max_parallel, title=title, output=output,
                                   detach=detach, dry_run=dry_run, quiet=quiet)
            return
        if detach:
            raise UnsupportedError("--detach needs a cluster target (aws, gcp, onprem)")
        run_samples_locally(config, samples=samples, reference=opts.as_path(reference), chunk_size=chunk_size,
                            max_parallel=max_parallel, title=title, output=output, resume=resume, max_cpus=max_cpus,
                            runtime=runtime, dry_run=dry_run, quiet=quiet)
        return
    if chunk_size is not None or title is not None:
        raise InputError("--chunk-size and --title go with --samples (or cellprofiler)")
    target_obj = get_target(target or config.target)
    if not target_obj.runs_locally:
        if resume or max_cpus is not None or runtime is not None:
            raise UnsupportedError("--resume, --max-cpus and --runtime apply to local runs only",
                                   hint="on a cluster, Argo retries failed steps itself (pipeline.retries)")
        guard_budget(ctx, target_obj.name, "fastqc-to-bwa", over_budget, r1=r1, r2=r2, reference=reference,
                     dry_run=dry_run, quiet=quiet)
        run_cluster(ctx, target_obj.name, r1=r1, r2=r2, reference=reference, sample=sample, output=output,
                    qc_gate=qc_gate, dry_run=dry_run, detach=detach, quiet=quiet)
        return
    if detach:
        raise UnsupportedError("--detach needs a cluster target (aws, gcp, onprem)")
    req = RunRequest(
        r1=opts.as_path(r1), r2=opts.as_path(r2), reference=opts.as_path(reference), sample=sample, output=output, qc_gate=qc_gate,
        resume=resume, max_cpus=max_cpus, runtime=None if runtime == "auto" else runtime, max_parallel=max_parallel,
    )

    say = sayer(quiet)

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


def guard_budget(ctx: typer.Context, target: str, pipeline: str, over_budget: bool, *, dry_run: bool, quiet: bool,
                 **inputs) -> None:
    """Refuse (exit 14) a cloud run whose estimate is above budget.max_usd, unless --over-budget.

    Only with a budget set: without one, an unpriced machine type must not block a run."""
    from bioinfra.config import load_config
    from bioinfra.core.estimate import PRICED_TARGETS, check_budget, estimate

    config = load_config(ctx.obj["config_path"], target=target)
    if config.budget.max_usd is None or target not in PRICED_TARGETS:
        return
    if over_budget:
        if not quiet:
            typer.echo(f"! --over-budget: not checking the estimate against budget.max_usd ({config.budget.max_usd:g} USD)",
                       err=True)
        return
    found = estimate(config, pipeline, **{k: (opts.as_path(v) if k in ("r1", "r2", "reference") and isinstance(v, str)
                                              and "://" not in v else v) for k, v in inputs.items()})
    for warning in found.warnings:
        if not quiet:
            typer.echo(f"! {warning}", err=True)
    check_budget(config, found)
    if not quiet:
        typer.echo(f"✓ estimate {found.total_usd:.2f} USD is within budget.max_usd {config.budget.max_usd:g} USD"
                   + (" (dry run)" if dry_run else ""), err=True)


def run_samples_locally(config, *, samples, reference, chunk_size, max_parallel, title, output, resume, max_cpus,
                        runtime, dry_run, quiet) -> None:
    """`run fastqc-to-bwa --samples SHEET` on this machine: thin over core.samples."""
    from bioinfra.core.samples import SamplesRequest, dry_run_plan, run_samples

    req = SamplesRequest(samples=samples, reference=reference, chunk_size=chunk_size, max_parallel=max_parallel,
                         title=title, output=output, resume=resume, max_cpus=max_cpus,
                         runtime=None if runtime == "auto" else runtime)
    outcome = plan_or_run(config, req, dry_run_plan, run_samples, dry_run=dry_run, quiet=quiet)
    if outcome is None:
        return
    typer.echo(f"✓ run {outcome.run_id} finished: {len(outcome.samples)} samples complete", err=True)
    typer.echo(f"results\t{outcome.output}")
    typer.echo(f"report\t{outcome.output / 'multiqc' / 'multiqc_report.html'}")
    typer.echo(f"samples\t{outcome.output / 'samples.tsv'}")
    typer.echo(f"manifest\t{outcome.manifest}")


def run_samples_on_cluster(ctx: typer.Context, target: str, *, samples, reference, chunk_size, max_parallel, title,
                           output, detach: bool, dry_run: bool, quiet: bool) -> None:
    """`run fastqc-to-bwa --samples SHEET --target aws|gcp|onprem`: thin over core.cluster_samples."""
    from bioinfra.config import load_config
    from bioinfra.core.cluster_run import run_on_cluster
    from bioinfra.core.cluster_samples import ClusterSamplesRequest, submit_samples
    from bioinfra.executor.progress import reporter_for

    config = load_config(ctx.obj["config_path"], target=target)
    if dry_run:
        from bioinfra.core.samples import check_samples, read_sheet
        from bioinfra.pipelines import check_title

        if title is not None:
            check_title(title)  # as the run itself would, before it uploads anything
        sheet = read_sheet(samples)
        checked = check_samples(sheet)
        size = sum(s.r1.bytes + s.r2.bytes for s in checked)
        typer.echo(f"would submit one Workflow for {len(checked)} samples to target {target} "
                   f"(chunk size {sheet.chunk_size(chunk_size)}); would upload up to {2 * len(checked)} FASTQ file(s), "
                   f"{size:,} bytes, skipping those already in the workspace")
        return
    req = ClusterSamplesRequest(target=target, samples=samples, reference=reference, chunk_size=chunk_size,
                                max_parallel=max_parallel, title=title, output=output, detach=detach)

    say = sayer(quiet)

    outcome = run_on_cluster(config, ctx.obj["config_path"], req, reporter=reporter_for(sys.stderr, quiet=quiet),
                             say=say, submit_run=submit_samples)
    print_cluster_outcome(outcome, detach, outcome.output, outcome.output / "multiqc" / "multiqc_report.html")


def run_screen_locally(config, *, images, data_file, illum, analysis, batch_size, max_parallel, title, output,
                       resume, max_cpus, runtime, dry_run, quiet) -> None:
    """`run cellprofiler` on this machine: thin over core.screening."""
    from bioinfra.core.screening import ScreenRequest, dry_run_plan, run_screen

    req = ScreenRequest(images=opts.as_path(images), data_file=data_file, illum_pipeline=illum,
                        analysis_pipeline=analysis, batch_size=batch_size, title=title, output=output, resume=resume,
                        max_cpus=max_cpus, max_parallel=max_parallel, runtime=None if runtime == "auto" else runtime)
    outcome = plan_or_run(config, req, dry_run_plan, run_screen, dry_run=dry_run, quiet=quiet)
    if outcome is None:
        return
    gather = outcome.gather
    typer.echo(f"✓ run {outcome.run_id} finished: {gather.get('image_sets_found', '?')} image sets, "
               f"{gather.get('nuclei', gather.get('objects', '?'))} nuclei", err=True)
    typer.echo(f"results\t{outcome.output / 'results'}")
    report = outcome.output / "results" / "summary.html"
    if report.exists():
        typer.echo(f"report\t{report}")
    typer.echo(f"manifest\t{outcome.manifest}")


def run_screen_on_cluster(ctx: typer.Context, target: str, *, images, data_file, illum, analysis, batch_size,
                          max_parallel, title, output, detach: bool, dry_run: bool, quiet: bool) -> None:
    """`run cellprofiler --target aws|gcp|onprem`: thin over core.cluster_screening."""
    from bioinfra.config import load_config
    from bioinfra.core.cluster_run import run_on_cluster
    from bioinfra.core.cluster_screening import (
        ClusterScreenRequest,
        build_screen_workflow,
        check_cluster_screen,
        submit_screen,
    )
    from bioinfra.executor.progress import reporter_for

    config = load_config(ctx.obj["config_path"], target=target)
    req = ClusterScreenRequest(target=target, images=images, data_file=data_file, illum_pipeline=illum,
                               analysis_pipeline=analysis, batch_size=batch_size, title=title,
                               max_parallel=max_parallel, output=output, detach=detach)
    if dry_run:
        paths, staged, title_used = check_cluster_screen(config, req)
        workflow = build_screen_workflow(config, "dry-run", paths, staged, batch_size=batch_size, title=title_used,
                                         max_parallel=max_parallel, stage_out="")
        tasks = [t["name"] for t in workflow["spec"]["templates"][0]["dag"]["tasks"]]
        typer.echo(f"would submit Workflow bioinfra/<run-id> to target {target} with steps: {', '.join(tasks)}")
        local = [s for s in staged if s.remote is None]
        typer.echo(f"upload\t{len(local)} file(s), {sum(s.bytes or 0 for s in local):,} bytes (skipped when already there)")
        for item in staged:
            if item.remote is not None:
                typer.echo(f"{item.role}\t{item.source} -> workspace:{item.workspace_path} (stage-in step)")
        return

    say = sayer(quiet)

    outcome = run_on_cluster(config, ctx.obj["config_path"], req, reporter=reporter_for(sys.stderr, quiet=quiet),
                             say=say, submit_run=submit_screen)
    print_cluster_outcome(outcome, detach, outcome.output / "results", outcome.output / "results" / "summary.html")


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

    say = sayer(quiet)

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
    print_cluster_outcome(outcome, detach, outcome.output, outcome.output / "multiqc" / "multiqc_report.html")


def plan_or_run(config, req, dry_run_plan, run, *, dry_run: bool, quiet: bool):
    """A local sheet or screen run: --dry-run prints its plan and returns None; else it runs with live
    progress on stderr (the "✓" check lines unless --quiet) and returns the outcome."""
    from bioinfra.executor.progress import reporter_for

    if dry_run:
        for line in dry_run_plan(config, req):
            typer.echo(line)
        return None
    return run(config, req, reporter=reporter_for(sys.stderr, quiet=quiet), on_check=sayer(quiet))


def sayer(quiet: bool):
    """The "✓ ..." progress lines on stderr, unless --quiet."""

    def say(msg: str) -> None:
        if not quiet:
            typer.echo(f"✓ {msg}", err=True)

    return say


def print_cluster_outcome(outcome, detach: bool, results: Path, report: Path) -> None:
    """What a cluster run prints on stdout (tab-separated, for scripts); --detach: the run id."""
    if detach:
        typer.echo(f"✓ run {outcome.run_id} submitted; `bioinfra runs status {outcome.run_id}`", err=True)
        typer.echo(f"run\t{outcome.run_id}")
        return
    typer.echo(f"✓ run {outcome.run_id} finished on the cluster", err=True)
    typer.echo(f"results\t{results}")
    if report.exists():
        typer.echo(f"report\t{report}")
    if outcome.results_url:
        typer.echo(f"bucket\t{outcome.results_url}")
    if outcome.manifest:
        typer.echo(f"manifest\t{outcome.manifest}")
