from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="The bundled lambda phage sample and its read simulator.", no_args_is_help=True)


@app.command("path")
def path() -> None:
    """Print the bundled sample's files (reference, R1, R2, planted SNPs)."""
    from bioinfra.sampledata import bundled

    data = bundled()
    for key in ("reference", "r1", "r2", "planted_snps"):
        typer.echo(f"{key}\t{getattr(data, key)}")


@app.command("generate")
def generate(
    out: Path = typer.Option(..., "--out", help="Folder to write <sample>_R1/_R2.fastq.gz and planted SNPs into."),
    sample: str = typer.Option("lambda", help="Sample name (file prefix)."),
    pairs: int = typer.Option(6000, min=1, help="Read pairs to simulate."),
    seed: int = typer.Option(20261126, help="Random seed; the same seed gives the same reads."),
    snps: int = typer.Option(12, min=1, help="SNPs to plant."),
    quality: str = typer.Option("good", help="good | poor (poor FAILs FastQC's per-base quality)."),
    reference: Path = typer.Option(None, help="Reference FASTA (default: the bundled lambda phage)."),
) -> None:
    """Simulate paired reads with planted SNPs (deterministic for a seed)."""
    from bioinfra.errors import InputError
    from bioinfra.sampledata import bundled
    from bioinfra.sampledata.simulate import simulate

    if quality not in ("good", "poor"):
        raise InputError(f"--quality must be good or poor (got {quality!r})")
    paths = simulate(reference or bundled().reference, out, sample=sample, pairs=pairs, seed=seed, snps=snps, quality=quality)
    for key, p in paths.items():
        typer.echo(f"{key}\t{p}")
