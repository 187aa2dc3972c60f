"""The fast read simulator (#19.2): seeded, reads taken from the donor genome with the exact simulator's
error profile, planted SNPs real, and `sample-data generate` choosing between the two simulators."""

from __future__ import annotations

import gzip
import hashlib
import statistics

from typer.testing import CliRunner

from bioinfra.cli import app
from bioinfra.errors import InputError
from bioinfra.sampledata import bundled
from bioinfra.sampledata.simulate import (
    PATTERNS,
    _patterns,
    random_genome,
    read_fasta,
    read_planted_snps,
    revcomp,
    simulate_fast,
    write_fasta,
)


def _records(path):
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    return [(lines[i], lines[i + 1], lines[i + 3]) for i in range(0, len(lines), 4)]


def _genome(tmp_path, length=60_000, seed=3):
    name, seq = random_genome(length, seed)
    return write_fasta(tmp_path / "genome.fa.gz", name, seq), seq


def test_same_seed_same_bytes_other_seed_other_reads(tmp_path):
    ref, _ = _genome(tmp_path)
    a = simulate_fast(ref, tmp_path / "a", pairs=2000, seed=5)
    b = simulate_fast(ref, tmp_path / "b", pairs=2000, seed=5)
    c = simulate_fast(ref, tmp_path / "c", pairs=2000, seed=6)
    for key in ("r1", "r2", "snps"):
        assert a[key].read_bytes() == b[key].read_bytes()
    assert hashlib.sha256(a["r1"].read_bytes()).digest() != hashlib.sha256(c["r1"].read_bytes()).digest()


def test_random_genome_is_seeded_acgt_and_written_as_fasta(tmp_path):
    name, seq = random_genome(10_000, 1)
    assert len(seq) == 10_000 and set(seq) == set("ACGT")
    assert random_genome(10_000, 1)[1] == seq and random_genome(10_000, 2)[1] != seq
    assert read_fasta(write_fasta(tmp_path / "g.fa.gz", name, seq)) == [(name, seq)]
    assert read_fasta(write_fasta(tmp_path / "g.fa", name, seq)) == [(name, seq)]


def test_reads_come_from_both_strands_of_the_donor_as_proper_pairs(tmp_path):
    ref, seq = _genome(tmp_path)
    paths = simulate_fast(ref, tmp_path / "out", pairs=3000, snps=20, seed=11)
    donor = list(seq)
    for snp in read_planted_snps(paths["snps"]):
        donor[snp.pos - 1] = snp.alt
    forward = "".join(donor)
    reverse = revcomp(forward)
    r1, r2 = _records(paths["r1"]), _records(paths["r2"])
    assert len(r1) == len(r2) == 3000
    placed, strands, inserts = 0, [0, 0], []
    for (n1, s1, q1), (n2, s2, q2) in zip(r1, r2, strict=True):
        assert n1[:-2] == n2[:-2] and n1.endswith("/1") and n2.endswith("/2")
        assert len(s1) == len(q1) == len(s2) == len(q2) == 100
        # The first 25 bases of both ends are error-free in most reads (Q33 at the start): find them.
        f1, f2 = forward.find(s1[:25]), forward.find(revcomp(s2)[-25:])
        b1 = reverse.find(s1[:25])
        if f1 >= 0 and f2 >= 0:  # R1 on the forward strand, R2 on the reverse: the fragment's two ends
            placed += 1
            strands[0] += 1
            inserts.append(f2 + 25 - f1)
        elif b1 >= 0 and reverse.find(revcomp(s2)[-25:]) >= 0:
            placed += 1
            strands[1] += 1
    assert placed / 3000 > 0.95
    assert min(strands) > 1200  # both orientations, about half each
    assert 280 < statistics.median(inserts) < 320 and min(inserts) >= 150  # insert 300 +- 30, at least 150


def test_planted_snps_are_substitutions_in_the_reads(tmp_path):
    ref, seq = _genome(tmp_path)
    paths = simulate_fast(ref, tmp_path / "out", pairs=6000, snps=10, seed=2)
    snps = read_planted_snps(paths["snps"])
    assert len(snps) == 10 and all(seq[s.pos - 1] == s.ref != s.alt for s in snps)
    # Reads covering a SNP carry its alt base (one read in ~100 has an error at a given position).
    reads = [s for _, s, _ in _records(paths["r1"])]
    for snp in snps[:3]:
        left = seq[snp.pos - 21:snp.pos - 1]
        alt_hits = sum(read.count(left + snp.alt) + revcomp(read).count(left + snp.alt) for read in reads)
        ref_hits = sum(read.count(left + snp.ref) + revcomp(read).count(left + snp.ref) for read in reads)
        assert alt_hits > 3 * max(ref_hits, 1)


def test_error_and_quality_profile_follows_the_exact_model():
    import random

    good = _patterns(100, "good", random.Random(1))
    poor = _patterns(100, "poor", random.Random(1))
    assert len(good) == PATTERNS

    def mean_quality(patterns, i):
        return statistics.fmean(q[i] - 33 for q, _ in patterns)

    assert mean_quality(good, 0) > 30 > 20 > mean_quality(good, 99) - 5  # Q33 at the start, ~Q20 at the end
    assert mean_quality(poor, 99) < 10
    errors_at = [sum(1 for _, subs in good for i, _ in subs if i == pos) / PATTERNS for pos in (0, 99)]
    assert errors_at[0] < 0.003 and 0.005 < errors_at[1] < 0.02  # 0.05 % -> 1 % per base


def test_cli_fast_is_the_default_and_exact_writes_the_bundled_reads(tmp_path):
    runner = CliRunner()
    fast = runner.invoke(app, ["sample-data", "generate", "--out", str(tmp_path / "fast"), "--pairs", "100"])
    assert fast.exit_code == 0, fast.output
    assert len(_records(tmp_path / "fast" / "lambda_R1.fastq.gz")) == 100
    exact = runner.invoke(app, ["sample-data", "generate", "--out", str(tmp_path / "exact"), "--simulator", "exact"])
    assert exact.exit_code == 0, exact.output
    data = bundled()
    assert gzip.decompress((tmp_path / "exact" / "lambda_R1.fastq.gz").read_bytes()) == gzip.decompress(data.r1.read_bytes())


def test_cli_genome_length_writes_the_reference_beside_the_reads(tmp_path):
    result = CliRunner().invoke(app, ["sample-data", "generate", "--out", str(tmp_path), "--genome-length", "50000",
                                      "--pairs", "500", "--sample", "g"])
    assert result.exit_code == 0, result.output
    written = dict(line.split("\t") for line in result.stdout.splitlines())
    assert set(written) == {"reference", "r1", "r2", "snps"}
    assert len(read_fasta(tmp_path / "g.reference.fa.gz")[0][1]) == 50_000


def test_cli_refuses_two_references_a_short_genome_and_unknown_simulators(tmp_path):
    runner = CliRunner()
    both = runner.invoke(app, ["sample-data", "generate", "--out", str(tmp_path / "a"), "--genome-length", "50000",
                               "--reference", str(bundled().reference)])
    # CliRunner calls the app without bioinfra's main(), which turns an InputError into exit 4.
    assert isinstance(both.exception, InputError) and both.exception.exit_code == 4
    assert "give one of them" in str(both.exception)
    name, seq = random_genome(1500, 1)
    tiny = write_fasta(tmp_path / "tiny.fa", name, seq)
    short = runner.invoke(app, ["sample-data", "generate", "--out", str(tmp_path / "b"), "--reference", str(tiny)])
    assert isinstance(short.exception, InputError) and "shorter than three inserts" in str(short.exception)
    assert not (tmp_path / "b").exists()
    other = runner.invoke(app, ["sample-data", "generate", "--out", str(tmp_path / "c"), "--simulator", "art"])
    assert isinstance(other.exception, InputError) and "fast or exact" in str(other.exception)


def test_repeat_genome_is_seeded_and_about_half_repeats():
    from bioinfra.sampledata.simulate import repeat_genome

    name, seq = repeat_genome(400_000, 4)
    assert len(seq) == 400_000 and set(seq) == set("ACGT")
    assert repeat_genome(400_000, 4)[1] == seq and repeat_genome(400_000, 5)[1] != seq

    def repeated_share(genome: str, k: int = 16) -> float:
        # Positions whose k-mer (or its reverse complement) occurs elsewhere too: repeats a read can
        # seed in more than one place.
        counts: dict[str, int] = {}
        kmers = [genome[i:i + k] for i in range(0, len(genome) - k, 7)]
        for kmer in kmers:
            key = min(kmer, revcomp(kmer))
            counts[key] = counts.get(key, 0) + 1
        return sum(1 for kmer in kmers if counts[min(kmer, revcomp(kmer))] > 1) / len(kmers)

    # Random sequence has no repeated 16-mers; copies of families diverge 0.5-30 %, so only the
    # younger ones keep exact 16-mers in common: a lower bound of the repeat share.
    assert repeated_share(random_genome(400_000, 4)[1]) < 0.001
    assert repeated_share(seq) > 0.15  # 0.23 measured for this seed
