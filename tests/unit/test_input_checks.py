"""Input checks bounded in time (#19.1): before a run, a large FASTQ is looked at in constant bytes
(its first records, the end of its gzip stream, a quick fingerprint); the whole read (every gzip
member, read counts, the SHA-256) happens during the run, in verify_inputs, and refuses the same
problems with the same messages."""

from __future__ import annotations

import builtins
import functools
import gzip
import hashlib
import os
import random
from pathlib import Path

import pytest

import bioinfra.core.inputs as facts_mod
from bioinfra.engine import inputs as inputs_mod
from bioinfra.engine.spec import find_pipeline
from bioinfra.errors import InputError
from bioinfra.files import sha256_file
from bioinfra.sampledata import bundled

DATA = bundled()


_BASES = bytes.maketrans(bytes(range(256)), b"ACGT" * 64)


@functools.cache
def records(first: int, n: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    return b"".join(b"@r%d 1:N:0:ACGT\n%s\n+\n%s\n" % (i, rng.randbytes(100).translate(_BASES), b"I" * 100)
                    for i in range(first, first + n))


@functools.cache
def member(seed: int, per_member: int) -> bytes:
    return gzip.compress(records(0, per_member, seed), mtime=0)


def multi_member(path: Path, members: int, per_member: int = 2000) -> Path:
    """bgzip-like: gzip members back to back (RFC 1952 section 2.2: a gzip file is a series of members)."""
    path.write_bytes(b"".join(member(m % 5, per_member) for m in range(members)))
    return path


def single_member(path: Path, reads: int) -> Path:
    """Plain `gzip` output: one member for the whole file."""
    path.write_bytes(gzip.compress(b"".join(records(0, 2000, seed=k) for k in range(reads // 2000)), compresslevel=1, mtime=0))
    return path


@pytest.fixture
def big(tmp_path):
    """A multi-member FASTQ pair above WHOLE_READ_BYTES (about 3 MiB, 80,000 reads each)."""
    r1 = multi_member(tmp_path / "big_R1.fastq.gz", 40)
    r2 = multi_member(tmp_path / "big_R2.fastq.gz", 40)
    assert r1.stat().st_size > facts_mod.WHOLE_READ_BYTES
    return r1, r2


def counting_reads(monkeypatch) -> list[int]:
    """Bytes read through open() in bioinfra.core.inputs and bioinfra.files (a wrapper, not a mock of
    the filesystem: the real files are read)."""
    read: list[int] = []
    real_open = builtins.open

    class Counted:
        def __init__(self, fh):
            self.fh = fh

        def read(self, n=-1):
            data = self.fh.read(n)
            read.append(len(data))
            return data

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def counted_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        return Counted(fh) if "b" in mode else fh

    for module in (facts_mod, inputs_mod, __import__("bioinfra.files", fromlist=["x"])):
        monkeypatch.setattr(module, "open", counted_open, raising=False)
    return read


def check_pair_inputs(r1: Path, r2: Path) -> dict[str, inputs_mod.CheckedInput]:
    spec = find_pipeline("fastqc-to-bwa")
    given = {"r1": r1, "r2": r2, "reference": DATA.reference}
    mode = spec.mode_for(set(given))
    values = inputs_mod.resolve_values(spec, mode, given)
    return inputs_mod.check_inputs(spec, mode, values, "local")


def test_checks_before_the_run_read_a_bounded_number_of_bytes(big, monkeypatch, tmp_path):
    """Fails before #19.1: every FASTQ was read end to end before the run (3 MiB here, 80 GB for a
    30x genome)."""
    r1, r2 = big
    grown = [multi_member(tmp_path / f"grown_R{n}.fastq.gz", 120) for n in (1, 2)]  # three times bigger
    read = counting_reads(monkeypatch)
    check_pair_inputs(r1, r2)
    small = sum(read)
    read.clear()
    check_pair_inputs(*grown)
    bound = facts_mod.HEAD_BYTES + facts_mod.TAIL_BYTES + 2 * facts_mod.FINGERPRINT_BYTES
    reference = DATA.reference.stat().st_size
    assert sum(read) == small, "the bytes read before the run grew with the input"
    assert sum(read) <= 2 * bound + 2 * reference


def test_a_large_input_is_recorded_with_a_quick_fingerprint_then_its_full_digest(big):
    r1, r2 = big
    checked = check_pair_inputs(r1, r2)
    record = checked["r1"].record
    assert record["digest"] == "quick" and record["sha256"] is None and record["reads"] is None
    assert checked["r1"].parameter.startswith("inputs/q")  # never a SHA-256 folder of the workspace
    assert "read whole during the run" in checked["r1"].summary
    assert checked["r1"].fingerprint == "quick:" + facts_mod.quick_fingerprint(r1)
    updated = inputs_mod.verify_inputs(checked)
    assert set(updated) == {"r1", "r2"}
    assert record["digest"] == "sha256" and record["sha256"] == sha256_file(r1) and record["reads"] == 80_000
    assert checked["r1"].staged[0].sha256 == sha256_file(r1)  # what an upload names the object by
    assert checked["r1"].fingerprint == "quick:" + facts_mod.quick_fingerprint(r1)  # what --resume compares


def test_a_small_input_is_still_read_whole_before_the_run():
    checked = check_pair_inputs(DATA.r1, DATA.r2)
    assert checked["r1"].record["digest"] == "sha256" and checked["r1"].record["reads"] == 6000
    assert inputs_mod.verify_inputs(checked) == {}


def test_a_truncated_multi_member_gzip_is_refused_before_the_run(big, tmp_path):
    """The end of a bgzip-style file shows the cut: whole members, CRC-checked, then one cut short."""
    r1, r2 = big
    cut = tmp_path / "cut_R1.fastq.gz"
    cut.write_bytes(r1.read_bytes()[:-1000])
    with pytest.raises(InputError, match="R1 file .*cut_R1.fastq.gz is a truncated gzip file"):
        check_pair_inputs(cut, r2)


def test_zero_padding_after_the_last_member_is_not_a_cut(big, tmp_path):
    r1, r2 = big
    padded = tmp_path / "padded_R1.fastq.gz"
    padded.write_bytes(r1.read_bytes() + b"\0" * 512)
    assert facts_mod._gzip_end(padded) is True
    check_pair_inputs(padded, r2)


def test_a_truncated_single_member_gzip_is_refused_by_the_whole_read(tmp_path):
    """One member started long before the file's end: its end cannot show the cut (RFC 1952 gives
    no member length), so the whole read during the run refuses it, with the same message."""
    r1 = single_member(tmp_path / "one_R1.fastq.gz", 100_000)
    r2 = single_member(tmp_path / "one_R2.fastq.gz", 100_000)
    assert r1.stat().st_size > facts_mod.WHOLE_READ_BYTES + facts_mod.TAIL_BYTES
    cut = tmp_path / "cut_R1.fastq.gz"
    cut.write_bytes(r1.read_bytes()[:-5000])
    assert facts_mod._gzip_end(cut) is None and facts_mod._gzip_end(r1) is None
    checked = check_pair_inputs(cut, r2)
    with pytest.raises(InputError, match="R1 file .*cut_R1.fastq.gz is a truncated gzip file"):
        inputs_mod.verify_inputs(checked)


def test_read_counts_that_differ_are_refused_by_the_whole_read(big, tmp_path):
    r1, _r2 = big
    short = multi_member(tmp_path / "short_R2.fastq.gz", 39)
    checked = check_pair_inputs(r1, short)
    with pytest.raises(InputError, match="different numbers of reads: .* has 80,000, .* has 78,000"):
        inputs_mod.verify_inputs(checked)


def test_a_bad_first_record_and_mates_named_differently_are_refused_before_the_run(big, tmp_path):
    r1, r2 = big
    fasta = tmp_path / "ref_R1.fastq"
    fasta.write_bytes(b">chr1\n" + b"ACGT" * (facts_mod.WHOLE_READ_BYTES // 4 + 10) + b"\n")
    with pytest.raises(InputError, match="is not FASTQ"):
        check_pair_inputs(fasta, r2)
    other = tmp_path / "other_R2.fastq.gz"
    other.write_bytes(gzip.compress(records(0, 1000).replace(b"@r", b"@x"), mtime=0) + r2.read_bytes())
    with pytest.raises(InputError, match="R1 and R2 are not mates: record 1 is named 'r0'"):
        check_pair_inputs(r1, other)


def test_a_byte_changed_inside_with_size_and_mtime_kept_is_caught_by_the_full_digest(tmp_path):
    """The quick fingerprint cannot see it (by design); the full digest of the run being resumed,
    compared by the whole read, does."""
    r1, r2 = tmp_path / "plain_R1.fastq", tmp_path / "plain_R2.fastq"
    for path in (r1, r2):
        path.write_bytes(b"".join(records(0, 2000, seed=k) for k in range(12)))
    assert r1.stat().st_size > facts_mod.WHOLE_READ_BYTES + 2 * facts_mod.FINGERPRINT_BYTES
    first = check_pair_inputs(r1, r2)
    inputs_mod.verify_inputs(first)
    recorded = {n: dict(c.record) for n, c in first.items()}
    st = r1.stat()
    middle = r1.read_bytes().index(b"\n", st.st_size // 2) + 1 + len(b"@r0 1:N:0:ACGT\n")  # inside a read name's line
    with open(r1, "r+b") as fh:  # same inode, same size: one base changed
        fh.seek(middle)
        base = fh.read(1)
        fh.seek(middle)
        fh.write(b"C" if base != b"C" else b"G")
    os.utime(r1, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = check_pair_inputs(r1, r2)
    assert again["r1"].fingerprint == first["r1"].fingerprint  # what the quick look cannot tell
    with pytest.raises(InputError, match="changed since the run started: its SHA-256 is"):
        inputs_mod.verify_inputs(again, recorded)


def test_quick_fingerprint_changes_when_the_file_is_touched_or_its_end_changes(big):
    r1, _ = big
    before = facts_mod.quick_fingerprint(r1)
    st = r1.stat()
    os.utime(r1, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert facts_mod.quick_fingerprint(r1) != before
    assert len(before) == len(hashlib.sha256().hexdigest())


def test_a_sheet_of_large_samples_is_checked_quickly_then_read_whole_naming_the_bad_row(big, tmp_path):
    r1, r2 = big
    short = multi_member(tmp_path / "short_R2.fastq.gz", 39)
    sheet = tmp_path / "samples.csv"
    sheet.write_text(f"sample,r1,r2\ngood,{r1},{r2}\nbad,{r1},{short}\n")
    spec = find_pipeline("fastqc-to-bwa")
    given = {"samples": sheet}
    mode = spec.mode_for(set(given))
    values = inputs_mod.resolve_values(spec, mode, given)
    checked = inputs_mod.check_inputs(spec, mode, values, "local")  # before the run: counts not known yet
    row = checked["samples"].record["inputs"]["good"]["r1"]
    assert row["digest"] == "quick" and row["reads"] is None
    with pytest.raises(InputError, match=r"line 3 \(bad\): R1 and R2 hold different numbers of reads"):
        inputs_mod.verify_inputs(checked)
    assert row["digest"] == "sha256" and row["sha256"] == sha256_file(r1) and row["reads"] == 80_000
