"""The bundled sample is exactly what the seeded simulator writes, and small."""

from __future__ import annotations

import gzip
import hashlib

from bioinfra.sampledata import DATA_DIR, bundled
from bioinfra.sampledata.simulate import read_planted_snps, simulate


def _content_sha(path) -> str:
    # Compare decompressed bytes: zlib builds may compress the same text differently.
    return hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()


def test_committed_reads_are_reproducible(tmp_path):
    data = bundled()
    fresh = simulate(data.reference, tmp_path)
    assert _content_sha(fresh["r1"]) == _content_sha(data.r1)
    assert _content_sha(fresh["r2"]) == _content_sha(data.r2)
    assert fresh["snps"].read_text() == data.planted_snps.read_text()


def test_sample_is_small_and_snps_are_real_substitutions():
    total = sum(p.stat().st_size for p in DATA_DIR.iterdir())
    assert total < 5 * 1024 * 1024
    snps = read_planted_snps(bundled().planted_snps)
    assert len(snps) == 12 and all(s.ref != s.alt and s.alt in "ACGT" for s in snps)
    # the donor base differs from the reference at each planted position
    from bioinfra.sampledata.simulate import read_fasta

    seq = read_fasta(bundled().reference)[0][1]
    assert all(seq[s.pos - 1] == s.ref for s in snps)


def test_other_seeds_differ(tmp_path):
    a = simulate(bundled().reference, tmp_path / "a", pairs=50, seed=1)
    b = simulate(bundled().reference, tmp_path / "b", pairs=50, seed=2)
    assert _content_sha(a["r1"]) != _content_sha(b["r1"])
