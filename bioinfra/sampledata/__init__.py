"""The bundled demo data: the lambda phage genome and reads simulated from it.

lambda_phage.fa.gz is Enterobacteria phage lambda, NCBI RefSeq NC_001416.1 (48,502 bp), as shipped
in Debian's bowtie2-examples package (example/reference/lambda_virus.fa). The reads were written by
`bioinfra sample-data generate --simulator exact` (bioinfra/sampledata/simulate.py) with the defaults below;
tests/unit/test_sampledata.py proves the committed files are what that command writes.

data/cellprofiler/ is the bundled high-content screen for `bioinfra run cellprofiler`: 16 synthetic
fields of nuclei (2 plates x 4 wells x 2 sites) with truth.csv (nuclei planted per image), written
by bioinfra/sampledata/screening.py, and the illumination and analysis pipelines built by
scripts/make_cppipes.py (tests/unit/test_screening.py proves the files are what they write).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
SAMPLE = "lambda"


@dataclass(frozen=True)
class SampleData:
    sample: str
    reference: Path
    r1: Path
    r2: Path
    planted_snps: Path


def bundled() -> SampleData:
    return SampleData(
        sample=SAMPLE,
        reference=DATA_DIR / "lambda_phage.fa.gz",
        r1=DATA_DIR / f"{SAMPLE}_R1.fastq.gz",
        r2=DATA_DIR / f"{SAMPLE}_R2.fastq.gz",
        planted_snps=DATA_DIR / f"{SAMPLE}.planted_snps.tsv",
    )
