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
    genome_length: int = typer.Option(
        None, min=10_000, help="Make a seeded random reference of this many bases instead "
        "(written to OUT/<sample>.reference.fa.gz), e.g. 5000000 for a bacterial-sized genome."),
    simulator: str = typer.Option(
        "fast", help="fast: millions of pairs in seconds (error patterns drawn from a pool); exact: "
        "every base drawn on its own, ~2,200 pairs/s, the one that wrote the bundled reads."),
) -> None:
    """Simulate paired reads with planted SNPs (deterministic for a seed).

    \b
    Examples:
      bioinfra sample-data generate --out sim --pairs 100000
      bioinfra sample-data generate --out big --genome-length 5000000 --pairs 2000000 --snps 500
      bioinfra sample-data generate --out again --simulator exact   # the bundled reads, byte for byte
    """
    from bioinfra.errors import InputError
    from bioinfra.sampledata import bundled
    from bioinfra.sampledata.simulate import random_genome, simulate, simulate_fast, write_fasta

    if quality not in ("good", "poor"):
        raise InputError(f"--quality must be good or poor (got {quality!r})")
    if simulator not in ("fast", "exact"):
        raise InputError(f"--simulator must be fast or exact (got {simulator!r})")
    if genome_length is not None and reference is not None:
        raise InputError("--genome-length and --reference both name the reference: give one of them")
    written: dict[str, Path] = {}
    if genome_length is not None:
        name, seq = random_genome(genome_length, seed)
        reference = written["reference"] = write_fasta(out / f"{sample}.reference.fa.gz", name, seq)
    reference = reference or bundled().reference
    if simulator == "exact":
        paths = simulate(reference, out, sample=sample, pairs=pairs, seed=seed, snps=snps, quality=quality)
    else:
        from rich.console import Console
        from rich.progress import Progress

        # The bar on stderr: stdout carries only the "key<TAB>path" lines scripts read.
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(f"simulating {pairs:,} read pairs", total=pairs)
            try:
                paths = simulate_fast(reference, out, sample=sample, pairs=pairs, seed=seed, snps=snps, quality=quality,
                                      progress=lambda done: bar.update(task, completed=done))
            except ValueError as exc:
                raise InputError(str(exc), hint="use a longer reference (--genome-length or --reference)") from exc
    for key, p in {**written, **paths}.items():
        typer.echo(f"{key}\t{p}")
