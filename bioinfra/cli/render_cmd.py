from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def render(
    ctx: typer.Context,
    pipeline: str = typer.Argument(..., help="Pipeline to render: fastqc-to-bwa."),
    r1: Optional[Path] = typer.Option(None, "--r1", help="Read 1 FASTQ (.fastq or .fastq.gz). Default: bundled sample."),
    r2: Optional[Path] = typer.Option(None, "--r2", help="Read 2 FASTQ."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Reference FASTA (.fa or .fa.gz)."),
    sample: Optional[str] = typer.Option(None, "--sample", help="Sample name (default: from the R1 file name)."),
    qc_gate: bool = typer.Option(False, "--qc-gate", help="Skip alignment when FastQC FAILs per-base quality."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="Render for this target (default: the config's)."),
    run_id: str = typer.Option("preview", "--run-id", help="Run id used in workspace paths."),
) -> None:
    """Print the Argo Workflow YAML a run would execute (the same spec on every target).

    Example: bioinfra render fastqc-to-bwa --target gcp > wf.yaml && argo lint wf.yaml
    """
    from bioinfra.config import load_config
    from bioinfra.core.run import RunRequest, check_inputs, workspace_params
    from bioinfra.errors import InputError
    from bioinfra.pipelines import PIPELINES, render_fastqc_to_bwa
    from bioinfra.targets import get_target

    if pipeline not in PIPELINES:
        raise InputError(f"unknown pipeline '{pipeline}'; known: {', '.join(PIPELINES)}")
    config = load_config(ctx.obj["config_path"])
    target_name = get_target(target or config.target).name
    checked = check_inputs(RunRequest(r1=r1, r2=r2, reference=reference, sample=sample))
    params = workspace_params(checked, run_id)
    params = type(params)(**{**params.__dict__, "qc_gate": qc_gate})
    typer.echo(render_fastqc_to_bwa(config, target_name, params), nl=False)
