"""`bioinfra run fastqc-to-bwa --samples SHEET` on the local target, through the real CLI, with the
real FastQC, bwa, samtools and MultiQC on small simulated samples.

The one fault injected comes from outside, as the OOM killer would: a watcher SIGKILLs the aligner
whenever it reads sample S2's reads. Nothing in bioinfra knows about it.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from bioinfra.errors import ExitCode
from tests.conftest import require_native_tools
from tests.process_killer import killing

pytestmark = pytest.mark.integration


@pytest.fixture
def cohort(cli, tmp_path: Path) -> Path:
    """Three small samples simulated from the lambda genome, and their sheet."""
    require_native_tools()
    reads = tmp_path / "reads"
    for i in (1, 2, 3):
        cli("sample-data", "generate", "--out", str(reads), "--sample", f"S{i}", "--pairs", "1500",
            "--seed", str(40 + i), check=True)
    sheet = tmp_path / "samples.csv"
    sheet.write_text("sample,r1,r2,rg_pl\n" + "".join(
        f"S{i},reads/S{i}_R1.fastq.gz,reads/S{i}_R2.fastq.gz,ILLUMINA\n" for i in (1, 2, 3)))
    (tmp_path / "bioinfra.yaml").write_text("pipeline:\n  retries: 1\n  retry_backoff: 0s\n")
    return sheet


def tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_three_samples_one_workflow_one_report(cli, cohort: Path, tmp_path: Path):
    out = tmp_path / "out"
    proc = cli("run", "fastqc-to-bwa", "--samples", str(cohort), "--output", str(out), "--runtime", "native",
               "--max-parallel", "1")
    assert proc.returncode == 0, proc.stderr
    assert "3 samples, 4,500 read pairs" in proc.stderr
    assert [(r["sample"], r["status"]) for r in tsv(out / "samples.tsv")] == [("S1", "ok"), ("S2", "ok"), ("S3", "ok")]
    for sample in ("S1", "S2", "S3"):
        assert (out / "samples" / sample / "align" / f"{sample}.sorted.bam.bai").is_file()
        flagstat = (out / "samples" / sample / "stats" / f"{sample}.flagstat.txt").read_text()
        assert "3000 + 0 in total" in flagstat
        header = subprocess.run(["samtools", "view", "-H", str(out / "samples" / sample / "align" / f"{sample}.sorted.bam")],
                                capture_output=True, text=True, check=True).stdout
        assert f"@RG\tID:{sample}\tSM:{sample}\tLB:{sample}\tPL:ILLUMINA" in header  # read group from the sheet
    # One MultiQC report over every sample.
    data = json.loads((out / "multiqc" / "multiqc_report_data" / "multiqc_data.json").read_text())
    names = json.dumps(data["report_general_stats_data"])
    assert all(f"S{i}" in names for i in (1, 2, 3))
    # The sheet travelled as a file: the Workflow names no sample.
    workflow = (out / "workflow.yaml").read_text()
    assert "S1" not in workflow and "runs/" in workflow and (out / "sheet.tsv").is_file()
    # --max-parallel 1: no two steps ran at the same time.
    manifest = json.loads((out / "manifest.json").read_text())
    # The engine's one manifest: the sheet is the `samples` input; its chunking is the run's fan-out.
    assert manifest["mode"] == "samples" and manifest["inputs"]["samples"]["samples"] == 3
    assert manifest["fan_out"]["per_pod"] == 1
    spans = sorted((s["started"], s["finished"]) for name, s in manifest["steps"].items()
                   if s["phase"] == "Succeeded" and not s["cached"] and s["started"] and name not in ("fastqc", "align", "stats"))
    assert len(spans) == 3 * 3 + 3  # 3 chunks x fastqc, align, stats; plan, index-reference, report
    assert all(after[0] >= before[1] - 0.01 for before, after in zip(spans, spans[1:], strict=False))
    log = (out / "logs" / "fastqc(1_first_2_last_2).log").read_text()
    assert "fastqc S2: ok" in log


def test_a_failing_sample_does_not_stop_the_others_and_resume_retries_only_it(cli, cohort: Path, tmp_path: Path):
    out = tmp_path / "out"
    # The aligner (bwa or bwa-mem2) whenever it reads S2's reads, killed on every attempt.
    with killing(lambda argv: argv[0].rsplit("/", 1)[-1] in ("bwa", "bwa-mem2") and any("S2_R1" in a for a in argv)
                 ) as killed:
        proc = cli("run", "fastqc-to-bwa", "--samples", str(cohort), "--output", str(out), "--runtime", "native")
    assert proc.returncode == ExitCode.STEP_FAILED, proc.stderr
    assert len(killed) == 2  # the chunk's attempt and its one retry
    assert "1 of 3 sample(s) failed: S2 (align: failed" in proc.stderr
    status = {r["sample"]: r for r in tsv(out / "samples.tsv")}
    assert status["S1"]["status"] == status["S3"]["status"] == "ok"
    assert status["S2"]["stage"] == "align"
    # The report still covers the samples that got through.
    names = json.dumps(json.loads((out / "multiqc" / "multiqc_report_data" / "multiqc_data.json").read_text())
                       ["report_general_stats_data"])
    assert "S1" in names and "S3" in names
    assert (out / "samples" / "S3" / "stats" / "S3.flagstat.txt").is_file()
    assert not (out / "samples" / "S2" / "stats").exists()

    resumed = cli("run", "fastqc-to-bwa", "--samples", str(cohort), "--resume", "--output", str(out),
                  "--runtime", "native")
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"]["align(0:first:1,last:1)"]["cached"] is True
    assert manifest["steps"]["align(1:first:2,last:2)"]["cached"] is False
    assert manifest["steps"]["fastqc(1:first:2,last:2)"]["cached"] is True
    assert all(r["status"] == "ok" for r in tsv(out / "samples.tsv"))


def test_bad_inputs_are_all_named_before_anything_is_made(cli, cohort: Path, tmp_path: Path):
    (tmp_path / "reads" / "S3_R2.fastq.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    bad = tmp_path / "bad.csv"
    bad.write_text(cohort.read_text() + "S4,reads/missing_R1.fq.gz,reads/missing_R2.fq.gz,ILLUMINA\n")
    out = tmp_path / "never"
    proc = cli("run", "fastqc-to-bwa", "--samples", str(bad), "--output", str(out), "--runtime", "native")
    assert proc.returncode == ExitCode.INPUT_INVALID, proc.stderr
    assert "2 of 4 sample(s) have bad inputs" in proc.stderr
    assert "line 4 (S3)" in proc.stderr and "line 5 (S4)" in proc.stderr
    assert not out.exists()
