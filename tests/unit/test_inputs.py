"""Bad input is refused before any step runs, with a message naming the file, and nothing made."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from bioinfra.core.inputs import check_distinct, check_pair, inspect_fasta, inspect_fastq
from bioinfra.errors import ExitCode, InputError
from bioinfra.sampledata import bundled
from tests.conftest import require_native_tools

DATA = bundled()
RECORD = "@r{n}\nACGTACGTAC\n+\nIIIIIIIIII\n"


def fastq(path: Path, n: int, *, gz: bool = True) -> Path:
    text = "".join(RECORD.format(n=i) for i in range(n))
    path.write_bytes(gzip.compress(text.encode(), mtime=0) if gz else text.encode())
    return path


def put(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_bundled_sample_facts():
    r1 = inspect_fastq(DATA.r1)
    assert r1.reads == 6000 and r1.gzipped and len(r1.sha256) == 64
    ref = inspect_fasta(DATA.reference)
    assert ref.sequences == 1 and ref.length == 48502


def test_plain_and_multi_member_gzip_fastq(tmp_path):
    assert inspect_fastq(fastq(tmp_path / "a.fastq", 3, gz=False)).reads == 3
    # bgzip-style: several gzip members back to back
    part = gzip.compress("".join(RECORD.format(n=i) for i in range(2)).encode())
    (tmp_path / "m.fastq.gz").write_bytes(part + part + part)
    assert inspect_fastq(tmp_path / "m.fastq.gz").reads == 6


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.fastq.gz", "does not exist"),
        (lambda p: put(p / "empty.fastq", b""), r"is empty \(0 bytes\)"),
        (lambda p: put(p / "blank.fastq.gz", gzip.compress(b"")), "holds no reads"),
        (lambda p: put(p / "cut.fastq.gz", fastq(p / "x.gz", 500).read_bytes()[:-30]), "truncated gzip"),
        (lambda p: put(p / "ref.fastq", ">chr1\nACGT\n"), "is not FASTQ"),
        (lambda p: put(p / "half.fastq", RECORD.format(n=1) + "@r2\nACGT\n"), "ends in the middle of a record"),
    ],
)
def test_bad_fastq(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        inspect_fastq(make(tmp_path), "R1 file")


def test_r1_and_r2_must_be_two_files(tmp_path):
    fastq(tmp_path / "a.fastq.gz", 2)
    (tmp_path / "link.fastq.gz").symlink_to(tmp_path / "a.fastq.gz")
    with pytest.raises(InputError, match="are the same file"):
        check_distinct(tmp_path / "a.fastq.gz", tmp_path / "link.fastq.gz")


def test_pair_counts_must_match(tmp_path):
    a = inspect_fastq(fastq(tmp_path / "a.fastq.gz", 4))
    b = inspect_fastq(fastq(tmp_path / "b.fastq.gz", 3))
    with pytest.raises(InputError, match="different numbers of reads: .* has 4, .* has 3"):
        check_pair(a, b)


def named_fastq(path: Path, names: list[str]) -> Path:
    path.write_bytes(gzip.compress("".join(f"@{n}\nACGTACGTAC\n+\nIIIIIIIIII\n" for n in names).encode(), mtime=0))
    return path


def test_mates_must_carry_the_same_names(tmp_path):
    names = [f"r{i}" for i in range(50)]
    # bwa's rule: the first word of the name, less a trailing /1 or /2; comments may differ.
    check_pair(inspect_fastq(named_fastq(tmp_path / "a.fq.gz", [f"{n}/1 1:N:0:ACGT" for n in names])),
               inspect_fastq(named_fastq(tmp_path / "b.fq.gz", [f"{n}/2 2:N:0:ACGT" for n in names])))
    swapped = names[:30] + [names[31], names[30]] + names[32:]
    with pytest.raises(InputError, match=r"R1 and R2 are not mates: record 31 is named 'r30' in .* but 'r31' in"):
        check_pair(inspect_fastq(named_fastq(tmp_path / "c.fq.gz", names)),
                   inspect_fastq(named_fastq(tmp_path / "d.fq.gz", swapped)))


def test_a_hostile_read_name_is_shown_escaped_and_cut_short(tmp_path):
    evil = "x" + "\x1b[2J" + "$(touch${IFS}CANARY)" * 10  # one word: a read name ends at white space
    with pytest.raises(InputError) as err:
        check_pair(inspect_fastq(named_fastq(tmp_path / "a.fq.gz", ["r0"])),
                   inspect_fastq(named_fastq(tmp_path / "b.fq.gz", [evil])))
    assert "\x1b" not in err.value.message and "\\x1b" in err.value.message and "..." in err.value.message


@pytest.mark.parametrize(
    "content, message",
    [
        ("ACGT\nACGT\n", "is not FASTA"),
        ("@r1\nACGT\n+\nIIII\n", "is not FASTA"),
        (">chr1\nAC GT 12\n", "is not FASTA \\(line 2"),
        (">chr1\n", "no '>name' line or no sequence"),
    ],
)
def test_bad_reference(tmp_path, content, message):
    (tmp_path / "ref.fa").write_text(content)
    with pytest.raises(InputError, match=message):
        inspect_fasta(tmp_path / "ref.fa")


def bad_input_cases(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    good = ["--r1", str(DATA.r1), "--r2", str(DATA.r2), "--reference", str(DATA.reference)]
    fastq(tmp_path / "short_R2.fastq.gz", 10)
    (tmp_path / "cut_R1.fastq.gz").write_bytes(DATA.r1.read_bytes()[:200_000])
    (tmp_path / "empty_R1.fastq").write_bytes(b"")
    (tmp_path / "notfasta.fa").write_text("this is a sample sheet,not a genome\n")
    shutil.copy(DATA.r1, tmp_path / "same.fastq.gz")
    return {
        "missing file": (["--r1", str(tmp_path / "nope.fq.gz"), *good[2:]], "does not exist"),
        "empty fastq": (["--r1", str(tmp_path / "empty_R1.fastq"), *good[2:]], "is empty"),
        "truncated gzip": (["--r1", str(tmp_path / "cut_R1.fastq.gz"), *good[2:]], "truncated gzip"),
        "read counts differ": ([*good[:2], "--r2", str(tmp_path / "short_R2.fastq.gz"), *good[4:]], "different numbers of reads"),
        "reference not fasta": ([*good[:4], "--reference", str(tmp_path / "notfasta.fa")], "is not FASTA"),
        "only some inputs": (["--r1", str(DATA.r1)], "missing --r2, --reference"),
        "bad sample name": ([*good, "--sample", "a b/c"], "sample name 'a b/c' is not allowed"),
        "mates named differently": (
            [*good[:2], "--r2", str(named_fastq(tmp_path / "other_R2.fastq.gz", [f"x{i}" for i in range(6000)])),
             *good[4:]], "R1 and R2 are not mates: record 1 is named"),
    }


def test_each_bad_input_is_refused_and_nothing_is_created(cli, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for name, (args, message) in bad_input_cases(tmp_path).items():
        proc = cli("run", "fastqc-to-bwa", *args, "--output", str(work / "out"), cwd=work)
        assert proc.returncode == ExitCode.INPUT_INVALID, (name, proc.stderr)
        assert message in proc.stderr, (name, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert list(work.iterdir()) == [], f"{name}: something was created"
        assert not (tmp_path / "cache").exists(), f"{name}: the workspace was touched"


def test_output_folder_holding_something_else_is_refused(cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = cli("run", "fastqc-to-bwa", "--output", str(out))
    assert proc.returncode == ExitCode.INPUT_INVALID and "is not empty and holds no bioinfra run" in proc.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_resume_with_nothing_to_resume(cli, tmp_path):
    proc = cli("run", "fastqc-to-bwa", "--resume", "--output", str(tmp_path / "nothing"))
    assert proc.returncode == ExitCode.INPUT_INVALID and "holds no bioinfra run" in proc.stderr


def test_unusable_workspace_is_refused_before_the_output_exists(cli, tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    (tmp_path / "bioinfra.yaml").write_text(f"local: {{workspace: {tmp_path / 'not-a-folder' / 'ws'}}}\n")
    require_native_tools()  # the tool check comes first
    proc = cli("run", "fastqc-to-bwa", "--output", str(tmp_path / "out"))
    assert proc.returncode == ExitCode.INPUT_INVALID, proc.stderr
    assert "cannot be created" in proc.stderr and "local.workspace" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_resume_without_output_picks_the_latest_run(tmp_path, monkeypatch):
    import json
    import os

    from bioinfra.engine.rundir import vet_output

    monkeypatch.chdir(tmp_path)
    for i, name in enumerate(["fastqc-to-bwa-20260101-000000-aaaa", "fastqc-to-bwa-20260102-000000-bbbb"]):
        state = tmp_path / "results" / name / ".bioinfra"
        state.mkdir(parents=True)
        (state / "run.json").write_text(json.dumps({"run_id": name, "pipeline": "fastqc-to-bwa"}))
        os.utime(state / "run.json", (1_000_000 + i, 1_000_000 + i))
    output, run_id, record = vet_output("fastqc-to-bwa", None, True, "single")
    assert run_id == "fastqc-to-bwa-20260102-000000-bbbb" and output.name == run_id and record["run_id"] == run_id
