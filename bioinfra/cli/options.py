"""Options shared by `run` and `render`, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Pipeline = Annotated[str, typer.Argument(help="Pipeline: fastqc-to-bwa | cellprofiler.")]
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

# cellprofiler (a screen): without any of these four, the bundled synthetic screen runs.
Images = Annotated[Optional[str], typer.Option("--images", help="cellprofiler: folder of the screen's images (FileName_* in the data file are relative to it).")]
DataFile = Annotated[Optional[Path], typer.Option("--data-file", help="cellprofiler: LoadData CSV, one row per image set (FileName_DNA, Metadata_Plate, ...).")]
IllumPipeline = Annotated[Optional[Path], typer.Option("--illum", help="cellprofiler: illumination pipeline (.cppipe, LoadData input; saves <Plate>_IllumDNA.npy).")]
AnalysisPipeline = Annotated[Optional[Path], typer.Option("--pipeline", help="cellprofiler: analysis pipeline (.cppipe, LoadData input; ExportToSpreadsheet).")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="cellprofiler: image sets per analysis batch (one pod each on a cluster).")]
MaxParallel = Annotated[Optional[int], typer.Option("--max-parallel", min=1, help="At most this many steps at once (Argo's spec.parallelism on a cluster).")]
Title = Annotated[Optional[str], typer.Option("--title", help="cellprofiler: title of the HTML summary (default: the data file's name).")]
Samples = Annotated[Optional[Path], typer.Option("--samples", help="fastqc-to-bwa: sample sheet (CSV/TSV: sample,r1,r2[,rg_id,rg_sm,rg_lb,rg_pl,rg_pu]); one Workflow for all.")]
ChunkSize = Annotated[Optional[int], typer.Option("--chunk-size", min=1, help="--samples: samples per pod and stage (default: 1, or enough for at most 200 chunks).")]
