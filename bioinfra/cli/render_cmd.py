from __future__ import annotations

import typer

from bioinfra.cli import options as opts


def render(
    ctx: typer.Context,
    pipeline: opts.Pipeline,
    r1: opts.R1 = None,
    r2: opts.R2 = None,
    reference: opts.Reference = None,
    sample: opts.Sample = None,
    qc_gate: opts.QcGate = False,
    target: opts.Target = None,
    run_id: str = typer.Option("preview", "--run-id", help="Run id used in workspace paths."),
    images: opts.Images = None,
    data_file: opts.DataFile = None,
    illum: opts.IllumPipeline = None,
    analysis: opts.AnalysisPipeline = None,
    batch_size: opts.BatchSize = 4,
    max_parallel: opts.MaxParallel = None,
    title: opts.Title = None,
    samples: opts.Samples = None,
    chunk_size: opts.ChunkSize = None,
) -> None:
    """Print the Argo Workflow YAML a run would execute (the same spec on every target).

    \b
    Examples:
      bioinfra render fastqc-to-bwa --target gcp > wf.yaml && argo lint wf.yaml
      bioinfra render fastqc-to-bwa --samples samples.csv --target aws   # same size for 10 or 100,000 rows
      bioinfra render cellprofiler --images plate1/ --data-file images.csv --illum illum.cppipe --pipeline analysis.cppipe
    """
    import dataclasses

    from bioinfra.config import load_config
    from bioinfra.core.images import pushed_images
    from bioinfra.core.run import RunRequest, check_inputs, check_run_id, default_workspace, workspace_params
    from bioinfra.errors import InputError
    from bioinfra.pipelines import PIPELINES, render_fastqc_to_bwa
    from bioinfra.targets import get_target

    if pipeline not in PIPELINES:
        raise InputError(f"unknown pipeline '{pipeline}'; known: {', '.join(PIPELINES)}")
    check_run_id(run_id)
    config = load_config(ctx.obj["config_path"])
    target_name = get_target(target or config.target).name
    images_pushed = pushed_images(config, target_name, default_workspace(config))
    if pipeline == "cellprofiler":
        from bioinfra.core.screening import ScreenRequest, check_screen, screen_params
        from bioinfra.pipelines import render_cellprofiler

        req = ScreenRequest(images=opts.as_path(images), data_file=data_file, illum_pipeline=illum,
                            analysis_pipeline=analysis, batch_size=batch_size, title=title, max_parallel=max_parallel)
        params = screen_params(check_screen(req), run_id, req)
        typer.echo(render_cellprofiler(config, target_name, params, images_pushed), nl=False)
        return
    if samples is not None:
        from bioinfra.core.samples import read_sheet, samples_params
        from bioinfra.pipelines import render_samples

        # The sheet's shape is checked; its FASTQs are read by `run`, not here (render stays fast).
        sheet = read_sheet(samples)
        ref = checked_reference(reference)
        params = samples_params(config, sheet, ref, run_id, chunk_size=chunk_size, max_parallel=max_parallel,
                                title=title)
        typer.echo(render_samples(config, target_name, params, images_pushed), nl=False)
        return
    checked = check_inputs(RunRequest(r1=opts.as_path(r1), r2=opts.as_path(r2), reference=opts.as_path(reference),
                                      sample=sample))
    params = dataclasses.replace(workspace_params(checked, run_id), qc_gate=qc_gate)
    # Images pushed from this machine to the target's registry are named by digest.
    typer.echo(render_fastqc_to_bwa(config, target_name, params, images_pushed), nl=False)


def checked_reference(reference) -> str:
    """The reference's workspace path (content-addressed): the bundled one without --reference."""
    from bioinfra.core import inputs as inputs_mod
    from bioinfra.core.samples import reference_path
    from bioinfra.sampledata import bundled

    path = opts.as_path(reference) or bundled().reference
    return reference_path(inputs_mod.inspect_fasta(path, "reference"))
