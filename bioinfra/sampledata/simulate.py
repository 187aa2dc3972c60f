"""A seeded paired-end read simulator: the bundled demo data, and inputs of real size for benches.

From a reference it makes a donor genome with known SNPs, samples fragments (normal insert size),
and writes both ends as reads with a position-dependent error rate and matching Phred qualities.
The same seed gives the same reads on every machine (Python's `random.Random` is specified to be
reproducible across platforms for a given seed), and gzip is written with mtime 0.

Two simulators share that model. `simulate` (exact) draws every base's error and quality on its own:
about 2,200 pairs per second, the one that wrote the bundled reads. `simulate_fast` (#19.2) draws each
read's error-and-quality pattern from a pool of patterns made once by the same per-base model, and
takes both ends as slices of the donor and of its reverse complement, so its cost per pair is a few
random numbers and two slices: millions of pairs in seconds (bench/results.md, "Real sizes"). Its reads
differ from the exact one's for the same seed (another draw), with the same error and quality profile.

`quality="poor"` writes reads whose qualities collapse along the read, which FastQC's per-base
sequence quality module FAILs: the input for testing the QC gate.
"""

from __future__ import annotations

import gzip
import io
import math
import random
import threading
from collections.abc import Callable
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


def output_paths(out_dir: Path, sample: str) -> dict[str, Path]:
    """Where both simulators write a sample's reads and its planted SNPs."""
    return {
        "r1": out_dir / f"{sample}_R1.fastq.gz",
        "r2": out_dir / f"{sample}_R2.fastq.gz",
        "snps": out_dir / f"{sample}.planted_snps.tsv",
    }


def write_planted_snps(path: Path, planted: list[Snp]) -> None:
    lines = ["chrom\tpos\tref\talt"] + [f"{s.chrom}\t{s.pos}\t{s.ref}\t{s.alt}" for s in planted]
    path.write_text("\n".join(lines) + "\n")


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
    paths = output_paths(out_dir, sample)
    for key, buf in (("r1", r1), ("r2", r2)):
        with open(paths[key], "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=9) as gz:
            gz.write(buf.getvalue().encode())
    write_planted_snps(paths["snps"], planted)
    return paths


def read_planted_snps(path: Path) -> list[Snp]:
    rows = path.read_text().splitlines()[1:]
    out = []
    for row in rows:
        chrom, pos, ref, alt = row.split("\t")
        out.append(Snp(chrom, int(pos), ref, alt))
    return out


# -- the fast simulator (#19.2) ---------------------------------------------------------------------

PATTERNS = 4096  # error-and-quality patterns per run: drawn with getrandbits(12)
_PATTERN_BITS = 12
CHUNK_PAIRS = 50_000  # pairs formatted per chunk, then compressed by a thread per mate
# A substituted base: shift 1..3 along ACGT from the true base (the exact simulator's uniform choice
# among the three others, drawn once per pattern instead of once per read).
_TO_ACGT = bytes.maketrans(bytes(range(256)), b"ACGT" * 64)  # a random byte -> a uniform base
_SHIFT = [bytes.maketrans(b"ACGT", (b"ACGT" * 2)[k:k + 4]) for k in range(4)]


def random_genome(length: int, seed: int, *, name: str = "chr1") -> tuple[str, str]:
    """A seeded random genome of `length` bases (uniform ACGT), for benches at a chosen size."""
    rng = random.Random(seed)
    return name, rng.randbytes(length).translate(_TO_ACGT).decode()


# Interspersed repeats and duplications in the proportions of a mammalian genome (a human-like mix, for
# an aligner's cost: reads from repeats seed many places and are extended against each):
# (name, share of the genome, consensus length or None for copies of the genome itself,
#  copy length range, divergence range of each copy from its source).
# Ref (shares): Lander et al. 2001, Nature 409:860, "Initial sequencing and analysis of the human genome",
# Table 11: SINEs 13 %, LINEs 20 %, LTR 8 %, DNA transposons 3 %; segmental duplications ~5 %
# (Bailey et al. 2002, Science 297:1003); simple sequence repeats ~3 %.
REPEAT_FAMILIES = (
    ("sine", 0.13, 300, (280, 310), (0.02, 0.18)),
    ("line", 0.20, 6000, (500, 6000), (0.03, 0.25)),
    ("ltr", 0.08, 1500, (300, 1500), (0.05, 0.25)),
    ("dna", 0.03, 1200, (200, 1200), (0.10, 0.30)),
    ("segdup", 0.05, None, (10_000, 60_000), (0.005, 0.05)),
)
MICROSATELLITE_SHARE = 0.03


def repeat_genome(length: int, seed: int, *, name: str = "chr1") -> tuple[str, str]:
    """A seeded genome with a human-like share of repeats (REPEAT_FAMILIES, ~50 %, and 3 % simple
    repeats) on a random background: a more honest input for an aligner's cost than random sequence."""
    rng = random.Random(seed)
    _, background = random_genome(length, seed)
    genome = bytearray(background.encode())
    acgt = b"ACGT"

    def mutated(source: bytes, divergence: float) -> bytes:
        copy = bytearray(source)
        for _ in range(int(len(copy) * divergence)):
            i = rng.randrange(len(copy))
            copy[i] = acgt[(acgt.index(copy[i]) + rng.randint(1, 3)) % 4]
        return bytes(copy)

    for _family, share, consensus_length, (low, high), (d_low, d_high) in REPEAT_FAMILIES:
        consensus = rng.randbytes(consensus_length).translate(_TO_ACGT) if consensus_length else b""
        placed = 0
        while placed < share * length:
            size = min(rng.randint(low, high), length // 4)
            if consensus:  # a copy of the family's consensus, often truncated at its 5' end
                source = consensus[len(consensus) - min(size, len(consensus)):]
            else:  # a duplication of another stretch of the genome as it stands
                start = rng.randrange(0, length - size)
                source = bytes(genome[start:start + size])
            copy = mutated(source, rng.uniform(d_low, d_high))
            if rng.random() < 0.5:
                copy = revcomp(copy.decode()).encode()
            at = rng.randrange(0, length - len(copy))
            genome[at:at + len(copy)] = copy
            placed += len(copy)
    placed = 0
    while placed < MICROSATELLITE_SHARE * length:
        unit = bytes(rng.choice(acgt) for _ in range(rng.randint(1, 6)))
        copy = (unit * (rng.randint(20, 200) // len(unit) + 1))[:rng.randint(20, 200)]
        at = rng.randrange(0, length - len(copy))
        genome[at:at + len(copy)] = copy
        placed += len(copy)
    return name, genome.decode()


def write_fasta(path: Path, name: str, seq: str, *, width: int = 60) -> Path:
    """FASTA, gzipped when the name ends in .gz (mtime 0, so the same genome gives the same bytes)."""
    body = "".join(f"{seq[i:i + width]}\n" for i in range(0, len(seq), width))
    data = f">{name}\n{body}".encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz:
            gz.write(data)
    else:
        path.write_bytes(data)
    return path


def _patterns(read_length: int, quality: str, rng: random.Random) -> list[tuple[bytes, tuple[tuple[int, int], ...]]]:
    """PATTERNS (qualities, substitutions) drawn base by base with the exact simulator's model
    (each base's quality jittered by -2..+2, an error with the position's probability lowering it by 8)."""
    probability = [_error_probability(i, read_length, quality) for i in range(read_length)]
    nominal = [int(round(-10 * math.log10(p))) for p in probability]
    random_ = rng.random
    out = []
    for _ in range(PATTERNS):
        quals = bytearray()
        subs = []
        for i in range(read_length):
            q = max(2, min(41, nominal[i] + int(random_() * 5) - 2))
            if random_() < probability[i]:
                subs.append((i, 1 + int(random_() * 3)))
                q = max(2, q - 8)
            quals.append(33 + q)
        out.append((bytes(quals), tuple(subs)))
    return out


def _apply(read: bytes, subs: tuple[tuple[int, int], ...]) -> bytes:
    if not subs:
        return read
    buf = bytearray(read)
    for i, shift in subs:
        buf[i:i + 1] = buf[i:i + 1].translate(_SHIFT[shift])
    return bytes(buf)


class _GzipWriter:
    """Compresses chunks in a thread of its own (zlib releases the GIL), so both mates and the
    formatting share the cores."""

    def __init__(self, path: Path, compresslevel: int) -> None:
        self._raw = open(path, "wb")
        self._gz = gzip.GzipFile(filename="", fileobj=self._raw, mode="wb", mtime=0, compresslevel=compresslevel)
        self._thread: threading.Thread | None = None

    def write(self, data: bytes) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._gz.write, args=(data,), daemon=True)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self.wait()
        self._gz.close()
        self._raw.close()


def simulate_fast(
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
    compresslevel: int = 6,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Path]:
    """The same files as `simulate`, millions of pairs in seconds (see the module's docstring).

    `progress(n)` is called with the pairs written so far after each chunk."""
    rng = random.Random(seed)
    chrom, seq = read_fasta(reference)[0]
    if len(seq) < 3 * insert_mean + 2 * 500:
        raise ValueError(f"the reference's first sequence ({len(seq):,} bases) is shorter than three inserts")
    planted = plant_snps(chrom, seq, snps, rng)
    donor = bytearray(seq.encode())
    for snp in planted:
        donor[snp.pos - 1] = ord(snp.alt)
    forward = bytes(donor)
    reverse = revcomp(forward.decode()).encode()  # reverse[n - end : n - start] = revcomp(forward[start:end])
    n = len(forward)
    patterns = _patterns(read_length, quality, rng)
    low, high = read_length + 50, 3 * insert_mean

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = output_paths(out_dir, sample)
    writers = (_GzipWriter(paths["r1"], compresslevel), _GzipWriter(paths["r2"], compresslevel))
    gauss, randrange, random_, bits = rng.gauss, rng.randrange, rng.random, rng.getrandbits
    prefix = sample.encode()
    try:
        for first in range(1, pairs + 1, CHUNK_PAIRS):
            r1: list[bytes] = []
            r2: list[bytes] = []
            for k in range(first, min(first + CHUNK_PAIRS, pairs + 1)):
                frag_len = int(min(max(gauss(insert_mean, insert_sd), low), high))
                start = randrange(0, n - frag_len)
                end = start + frag_len
                # The fragment's two ends: its start on the forward strand, its end on the reverse.
                fwd = forward[start:start + read_length]
                rev = reverse[n - end:n - end + read_length]
                if random_() < 0.5:
                    fwd, rev = rev, fwd
                q1, s1 = patterns[bits(_PATTERN_BITS)]
                q2, s2 = patterns[bits(_PATTERN_BITS)]
                name = b"%s.%06d" % (prefix, k)
                r1.append(b"@%s/1\n%s\n+\n%s\n" % (name, _apply(fwd, s1), q1))
                r2.append(b"@%s/2\n%s\n+\n%s\n" % (name, _apply(rev, s2), q2))
            writers[0].write(b"".join(r1))
            writers[1].write(b"".join(r2))
            if progress is not None:
                progress(min(first + CHUNK_PAIRS - 1, pairs))
    finally:
        for writer in writers:
            writer.close()
    write_planted_snps(paths["snps"], planted)
    return paths
