"""A small, seeded paired-end read simulator for the bundled demo data.

From a reference it makes a donor genome with known SNPs, samples fragments (normal insert size),
and writes both ends as reads with a position-dependent error rate and matching Phred qualities.
The same seed gives the same reads on every machine (Python's `random.Random` is specified to be
reproducible across platforms for a given seed), and gzip is written with mtime 0.

`quality="poor"` writes reads whose qualities collapse along the read, which FastQC's per-base
sequence quality module FAILs: the input for testing the QC gate.
"""

from __future__ import annotations

import gzip
import io
import math
import random
from dataclasses import dataclass
from pathlib import Path

BASES = "ACGT"
_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


@dataclass(frozen=True)
class Snp:
    chrom: str
    pos: int  # 1-based
    ref: str
    alt: str


def read_fasta(path: Path) -> list[tuple[str, str]]:
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    records: list[tuple[str, list[str]]] = []
    with opener(path, "rt") as fh:
        for line in fh:
            line = line.strip()
            if line.startswith(">"):
                records.append((line[1:].split()[0], []))
            elif line:
                records[-1][1].append(line.upper())
    return [(name, "".join(parts)) for name, parts in records]


def revcomp(seq: str) -> str:
    return seq.translate(_COMPLEMENT)[::-1]


def plant_snps(chrom: str, seq: str, count: int, rng: random.Random, margin: int = 500) -> list[Snp]:
    """`count` SNPs spread over the genome (one per equal slice, at a random offset in it)."""
    span = (len(seq) - 2 * margin) // count
    snps = []
    for i in range(count):
        pos0 = margin + i * span + rng.randrange(span // 4, 3 * span // 4)
        ref = seq[pos0]
        alt = rng.choice([b for b in BASES if b != ref])
        snps.append(Snp(chrom, pos0 + 1, ref, alt))
    return snps


def _error_probability(i: int, read_length: int, quality: str) -> float:
    frac = i / max(1, read_length - 1)
    if quality == "poor":
        return min(0.45, 0.01 + 0.6 * frac**1.5)  # median quality falls below Q10 well before the end
    return 0.0005 + 0.0095 * frac**2  # Q33 at the start, Q20 at the end: a typical good run


def _read(fragment: str, read_length: int, rng: random.Random, quality: str) -> tuple[str, str]:
    bases = []
    quals = []
    for i, base in enumerate(fragment[:read_length]):
        p = _error_probability(i, read_length, quality)
        q = max(2, min(41, int(round(-10 * math.log10(p))) + rng.randint(-2, 2)))
        if rng.random() < p:
            base = rng.choice([b for b in BASES if b != base])
            q = max(2, q - 8)
        bases.append(base)
        quals.append(chr(33 + q))
    return "".join(bases), "".join(quals)


def simulate(
    reference: Path,
    out_dir: Path,
    *,
    sample: str = "lambda",
    pairs: int = 6000,
    read_length: int = 100,
    insert_mean: int = 300,
    insert_sd: int = 30,
    snps: int = 12,
    seed: int = 20261126,
    quality: str = "good",
) -> dict[str, Path]:
    """Write <sample>_R1.fastq.gz, <sample>_R2.fastq.gz and <sample>.planted_snps.tsv into out_dir."""
    rng = random.Random(seed)
    chrom, seq = read_fasta(reference)[0]
    planted = plant_snps(chrom, seq, snps, rng)
    donor = list(seq)
    for snp in planted:
        donor[snp.pos - 1] = snp.alt
    donor_seq = "".join(donor)

    r1 = io.StringIO()
    r2 = io.StringIO()
    for n in range(1, pairs + 1):
        frag_len = int(min(max(rng.gauss(insert_mean, insert_sd), read_length + 50), 3 * insert_mean))
        start = rng.randrange(0, len(donor_seq) - frag_len)
        fragment = donor_seq[start : start + frag_len]
        if rng.random() < 0.5:
            fragment = revcomp(fragment)
        s1, q1 = _read(fragment, read_length, rng, quality)
        s2, q2 = _read(revcomp(fragment), read_length, rng, quality)
        name = f"{sample}.{n:06d}"
        r1.write(f"@{name}/1\n{s1}\n+\n{q1}\n")
        r2.write(f"@{name}/2\n{s2}\n+\n{q2}\n")

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "r1": out_dir / f"{sample}_R1.fastq.gz",
        "r2": out_dir / f"{sample}_R2.fastq.gz",
        "snps": out_dir / f"{sample}.planted_snps.tsv",
    }
    for key, buf in (("r1", r1), ("r2", r2)):
        with open(paths[key], "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=9) as gz:
            gz.write(buf.getvalue().encode())
    lines = ["chrom\tpos\tref\talt"] + [f"{s.chrom}\t{s.pos}\t{s.ref}\t{s.alt}" for s in planted]
    paths["snps"].write_text("\n".join(lines) + "\n")
    return paths


def read_planted_snps(path: Path) -> list[Snp]:
    rows = path.read_text().splitlines()[1:]
    out = []
    for row in rows:
        chrom, pos, ref, alt = row.split("\t")
        out.append(Snp(chrom, int(pos), ref, alt))
    return out
