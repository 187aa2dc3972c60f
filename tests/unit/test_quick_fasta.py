"""A reference over WHOLE_READ_BYTES is checked in bounded time before a run (#19.1): its start must be
FASTA and a gzip file must not end mid-member; the rest is read during the run
(tests/integration/test_input_checks_run.py runs that part with the real tools)."""

from __future__ import annotations

import gzip

import pytest

from bioinfra.core.inputs import WHOLE_READ_BYTES, check_fasta
from bioinfra.errors import InputError
from bioinfra.sampledata.simulate import random_genome


def _fasta_text(bases: int) -> str:
    _, seq = random_genome(bases, 5)
    return ">chr1 test\n" + "".join(f"{seq[i:i + 60]}\n" for i in range(0, len(seq), 60))


def test_a_small_reference_is_read_whole(tmp_path):
    path = tmp_path / "small.fa"
    path.write_text(_fasta_text(50_000))
    facts = check_fasta(path)
    assert facts.complete and facts.length == 50_000 and facts.sequences == 1 and facts.key == facts.sha256[:16]


def test_a_large_reference_gets_bounded_checks_and_a_quick_key(tmp_path):
    path = tmp_path / "big.fa"
    path.write_text(_fasta_text(2_300_000))
    assert path.stat().st_size > WHOLE_READ_BYTES
    facts = check_fasta(path)
    assert not facts.complete and facts.sha256 is None and facts.length is None
    assert facts.key.startswith("q") and len(facts.key) == 16


def test_a_large_file_that_does_not_start_as_fasta_is_refused_before_the_run(tmp_path):
    path = tmp_path / "reads.fa"
    path.write_text("@read1\nACGT\n+\nIIII\n" * 200_000)  # a FASTQ given as the reference
    assert path.stat().st_size > WHOLE_READ_BYTES
    with pytest.raises(InputError, match=r"is not FASTA \(line 1: b'@read1'"):
        check_fasta(path)


def test_a_large_gzip_reference_cut_short_is_refused_before_the_run(tmp_path):
    text = _fasta_text(9_000_000).encode()
    # bgzip-like: members of 64 KiB of text back to back (RFC 1952 2.2); cut inside the last one.
    members = b"".join(gzip.compress(text[i:i + 65536], mtime=0) for i in range(0, len(text), 65536))
    path = tmp_path / "cut.fa.gz"
    path.write_bytes(members[:-3000])
    assert path.stat().st_size > WHOLE_READ_BYTES
    with pytest.raises(InputError, match="is a truncated gzip file"):
        check_fasta(path)
    whole = tmp_path / "whole.fa.gz"
    whole.write_bytes(members)
    assert not check_fasta(whole).complete  # the same file whole passes the bounded checks
