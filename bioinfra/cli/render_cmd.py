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
) -> None:
    """Print the Argo Workflow YAML a run would execute (the same spec on every target).

    Example: bioinfra render fastqc-to-bwa --target gcp > wf.yaml && argo lint wf.yaml
    """
    import dataclasses

    from bioinfra.config import load_config
    from bioinfra.core.images import pushed_images
    from bioinfra.core.run import RunRequest, check_inputs, default_workspace, workspace_params
    from bioinfra.errors import InputError
    from bioinfra.pipelines import PIPELINES, render_fastqc_to_bwa
    from bioinfra.targets import get_target

    if pipeline not in PIPELINES:
        raise InputError(f"unknown pipeline '{pipeline}'; known: {', '.join(PIPELINES)}")
    config = load_config(ctx.obj["config_path"])
    target_name = get_target(target or config.target).name
    checked = check_inputs(RunRequest(r1=opts.as_path(r1), r2=opts.as_path(r2), reference=opts.as_path(reference),
                                      sample=sample))
    params = dataclasses.replace(workspace_params(checked, run_id), qc_gate=qc_gate)
    # Images pushed from this machine to the target's registry are named by digest.
    images = pushed_images(config, target_name, default_workspace(config))
    typer.echo(render_fastqc_to_bwa(config, target_name, params, images), nl=False)
