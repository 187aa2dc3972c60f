"""The whole read of large inputs runs inside the run, beside the first steps (#19.1).

Real runs of fastqc-to-bwa with the real tools, on FASTQs above WHOLE_READ_BYTES made from the
bundled sample: a good pair gets its full SHA-256 and read count into the manifest; a truncated one
(one gzip member, so its end cannot show the cut before the run) fails the run with the refusal's
exit code and message, and leaves nothing marked complete.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bioinfra.core.inputs import WHOLE_READ_BYTES
from bioinfra.errors import ExitCode
from bioinfra.files import sha256_file
from bioinfra.sampledata import bundled
from tests.conftest import require_native_tools

pytestmark = pytest.mark.integration
DATA = bundled()
COPIES = 5  # 5 x 6,000 read pairs, 2.5 MB per file


def members(path: Path, source: Path) -> Path:
    """COPIES gzip members back to back (RFC 1952 section 2.2), as bgzip writes."""
    path.write_bytes(source.read_bytes() * COPIES)
    assert path.stat().st_size > WHOLE_READ_BYTES
    return path


def test_a_large_pair_is_read_whole_during_the_run_and_the_manifest_holds_its_digest(cli, tmp_path):
    require_native_tools()
    r1, r2 = members(tmp_path / "big_R1.fastq.gz", DATA.r1), members(tmp_path / "big_R2.fastq.gz", DATA.r2)
    args = ["--r1", str(r1), "--r2", str(r2), "--reference", str(DATA.reference)]
    dry = cli("run", "fastqc-to-bwa", *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "read whole during the run" in dry.stdout
    out = tmp_path / "out"
    proc = cli("run", "fastqc-to-bwa", *args, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    for name, path in (("r1", r1), ("r2", r2)):
        record = manifest["inputs"][name]
        assert record["digest"] == "sha256" and record["sha256"] == sha256_file(path), record
        assert record["reads"] == 6000 * COPIES and record["quick_fingerprint"]
    run = json.loads((out / ".bioinfra" / "run.json").read_text())
    assert run["inputs"]["r1"]["sha256"] == sha256_file(r1)


def test_a_truncated_single_member_gzip_fails_the_run_and_nothing_stays_complete(cli, tmp_path):
    require_native_tools()
    whole = gzip.compress(gzip.decompress(DATA.r1.read_bytes()) * 8, compresslevel=1, mtime=0)
    assert len(whole) > WHOLE_READ_BYTES + (1 << 20)
    r1 = tmp_path / "cut_R1.fastq.gz"
    r1.write_bytes(whole[:-5000])
    r2 = tmp_path / "big_R2.fastq.gz"
    r2.write_bytes(DATA.r2.read_bytes() * 8)
    out = tmp_path / "out"
    proc = cli("run", "fastqc-to-bwa", "--r1", str(r1), "--r2", str(r2), "--reference", str(DATA.reference),
               "--output", str(out))
    assert proc.returncode == ExitCode.INPUT_INVALID, proc.stderr
    assert f"R1 file {r1} is a truncated gzip file" in proc.stderr
    assert "Traceback" not in proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["reason"].startswith("input check failed: R1 file")
    assert json.loads((out / ".bioinfra" / "run.json").read_text())["status"] == "failed"
    assert not (out / ".bioinfra" / "steps").exists() or not any((out / ".bioinfra" / "steps").iterdir())


def big_reference(path: Path, bad_line_at: int | None = None) -> tuple[Path, int]:
    """The lambda phage plus a seeded random contig, plain FASTA over WHOLE_READ_BYTES (bwa indexes it
    in seconds); with `bad_line_at`, a line that is not sequence that far into the random contig
    (past the first HEAD_BYTES, which the pre-run check reads)."""
    from bioinfra.sampledata.simulate import random_genome, read_fasta

    (name, lam), = read_fasta(DATA.reference)
    _, pad = random_genome(2_200_000, 3)
    lines = [f">{name}", *(lam[i:i + 60] for i in range(0, len(lam), 60)), ">pad"]
    lines += [pad[i:i + 60] for i in range(0, len(pad), 60)]
    if bad_line_at is not None:
        lines[bad_line_at] = "this is not sequence: 12345"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > WHOLE_READ_BYTES
    return path, len(lam) + len(pad)


def test_a_large_reference_is_read_whole_during_the_run_and_the_manifest_holds_its_digest(cli, tmp_path):
    require_native_tools()
    ref, length = big_reference(tmp_path / "big.fa")
    args = ["--r1", str(DATA.r1), "--r2", str(DATA.r2), "--reference", str(ref)]
    dry = cli("run", "fastqc-to-bwa", *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"reference {ref} (2 MB, read whole during the run)" in dry.stdout
    out = tmp_path / "out"
    proc = cli("run", "fastqc-to-bwa", *args, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "manifest.json").read_text())["inputs"]["reference"]
    assert record["digest"] == "sha256" and record["sha256"] == sha256_file(ref), record
    assert record["length"] == length and record["quick_fingerprint"]


def test_a_reference_bad_past_its_first_lines_fails_the_run_and_nothing_stays_complete(cli, tmp_path):
    require_native_tools()
    ref, _ = big_reference(tmp_path / "bad.fa", bad_line_at=30_000)  # ~1.8 MB in
    args = ["--r1", str(DATA.r1), "--r2", str(DATA.r2), "--reference", str(ref)]
    assert cli("run", "fastqc-to-bwa", *args, "--dry-run").returncode == 0  # bounded checks see its start only
    out = tmp_path / "out"
    proc = cli("run", "fastqc-to-bwa", *args, "--output", str(out))
    assert proc.returncode == ExitCode.INPUT_INVALID, proc.stderr
    assert f"reference {ref} is not FASTA (line 30,001" in proc.stderr or \
        f"reference {ref} is not FASTA (line 30001" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["reason"].startswith("input check failed: reference")
    steps = out / ".bioinfra" / "steps"
    assert not steps.exists() or not any(steps.iterdir())
