"""Options shared by `run` and `render`, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Pipeline = Annotated[str, typer.Argument(help="Pipeline: fastqc-to-bwa.")]
# Strings, not Paths: on aws/gcp an input may be s3://BUCKET/KEY or gs://BUCKET/KEY, read in place.
R1 = Annotated[Optional[str], typer.Option("--r1", help="Read 1 FASTQ (.fastq or .fastq.gz); on aws/gcp also s3:// / gs://. Default: the bundled sample.")]
R2 = Annotated[Optional[str], typer.Option("--r2", help="Read 2 FASTQ, mates in the same order as R1.")]
Reference = Annotated[
    Optional[str], typer.Option("--reference", help="Reference FASTA (.fa or .fa.gz); indexed once and cached.")
]


def as_path(value: Optional[str]) -> Optional[Path]:
    return Path(value) if value is not None else None
Sample = Annotated[Optional[str], typer.Option("--sample", help="Sample name (default: from the R1 file name).")]
QcGate = Annotated[bool, typer.Option("--qc-gate", help="Skip alignment when FastQC FAILs per-base sequence quality.")]
Target = Annotated[Optional[str], typer.Option("--target", "-t", help="local | onprem | gcp | aws (default: the config's).")]
