"""The demo, end to end, with the real tools (FastQC, bwa, samtools, MultiQC) through the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from bioinfra.engine.rundir import lock_holders
from bioinfra.errors import ExitCode
from bioinfra.sampledata import bundled
from bioinfra.sampledata.simulate import read_planted_snps, simulate
from tests.conftest import cli_env, require_native_tools

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _tools():
    require_native_tools()


@pytest.fixture(scope="module")
def demo(tmp_path_factory, matplotlib_cache):
    """One real demo run shared by the assertions below."""
    root = tmp_path_factory.mktemp("demo")
    env = cli_env(root / "cache", matplotlib_cache)
    proc = subprocess.run([sys.executable, "-m", "bioinfra", "run", "fastqc-to-bwa", "--output", str(root / "out")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return root, root / "out", proc, env


def samtools(*args: str) -> str:
    return subprocess.run(["samtools", *args], check=True, capture_output=True, text=True).stdout


def test_outputs_are_all_there(demo):
    _, out, proc, _ = demo
    for rel in [
        "fastqc/lambda_R1_fastqc.html", "fastqc/lambda_R1_fastqc.zip",
        "fastqc/lambda_R2_fastqc.html", "fastqc/lambda_R2_fastqc.zip",
        "align/lambda.sorted.bam", "align/lambda.sorted.bam.bai",
        "stats/lambda.flagstat.txt", "stats/lambda.stats.txt",
        "multiqc/multiqc_report.html", "manifest.json", "workflow.yaml",
    ]:
        assert (out / rel).is_file() and (out / rel).stat().st_size > 0, rel
    for step in ("fastqc-r1", "fastqc-r2", "index-reference", "align", "stats", "multiqc"):
        assert (out / "logs" / f"{step}.log").is_file()
    assert f"results\t{out}" in proc.stdout and "report\t" in proc.stdout
    report = (out / "multiqc" / "multiqc_report.html").read_text(errors="replace")
    assert "lambda_R1" in report and "samtools" in report.lower()


def test_manifest_records_inputs_versions_and_steps(demo):
    _, out, _, _ = demo
    manifest = json.loads((out / "manifest.json").read_text())
    data = bundled()
    from bioinfra.files import sha256_file

    assert manifest["status"] == "succeeded"
    assert manifest["inputs"]["r1"]["sha256"] == sha256_file(data.r1)
    assert manifest["inputs"]["r2"]["reads"] == 6000
    assert manifest["inputs"]["reference"]["length"] == 48502
    versions = manifest["tool_versions"]
    assert versions["fastqc"].startswith("FastQC v") and versions["samtools"].startswith("samtools 1.")
    assert versions["multiqc"].startswith("multiqc") and versions["aligner"].split()[0] in ("bwa", "bwa-mem2")
    for name, step in manifest["steps"].items():
        if name in ("stage-in", "stage-out"):  # cluster-only staging (issue #6): Skipped here
            assert step["phase"] == "Skipped", name
            continue
        assert step["phase"] == "Succeeded" and step["exit_code"] == 0 and step["wall_seconds"] >= 0, name
    bam = manifest["outputs"]["align/lambda.sorted.bam"]
    assert bam["sha256"] == sha256_file(out / "align/lambda.sorted.bam")
    if manifest["aligner"] == "bwa":  # bwa-mem2 is not packaged for Debian: the fallback must say so
        assert any("bwa mem" in n for n in manifest["notes"])
        assert "bwa-mem2 is not installed here" in (out / "logs" / "align.log").read_text()


def test_bam_maps_at_least_95_percent(demo):
    _, out, _, _ = demo
    flagstat = (out / "stats" / "lambda.flagstat.txt").read_text()
    total = int(flagstat.splitlines()[0].split()[0])
    mapped = int(next(line for line in flagstat.splitlines() if " mapped (" in line).split()[0])
    assert total == 12000
    assert mapped / total >= 0.95, flagstat


def test_every_planted_snp_is_covered_and_seen(demo):
    _, out, _, _ = demo
    bam = out / "align" / "lambda.sorted.bam"
    for snp in read_planted_snps(bundled().planted_snps):
        pile = samtools("mpileup", "-Q", "0", "-r", f"{snp.chrom}:{snp.pos}-{snp.pos}", str(bam))
        fields = pile.rstrip("\n").split("\t")
        assert len(fields) >= 5, f"no coverage at {snp}"
        depth, bases = int(fields[3]), fields[4].upper()
        assert depth >= 5, f"{snp}: depth {depth}"
        assert bases.count(snp.alt) / depth >= 0.8, f"{snp}: alt {snp.alt} in {bases}"


def test_reference_index_is_built_once(demo):
    root, _, _, env = demo
    again = subprocess.run([sys.executable, "-m", "bioinfra", "run", "fastqc-to-bwa", "--output", str(root / "again")],
                           cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "index of" in (root / "again" / "logs" / "index-reference.log").read_text()
    assert "already built; reusing it" in (root / "again" / "logs" / "index-reference.log").read_text()
    refs = list((root / "cache" / "bioinfra" / "workspace" / "references").iterdir())
    assert len(refs) == 1


def test_output_folder_with_a_finished_run_is_refused(demo, cli):
    _, out, _, _ = demo
    proc = cli("run", "fastqc-to-bwa", "--output", str(out))
    assert proc.returncode == ExitCode.INPUT_INVALID and "already holds run" in proc.stderr and "--resume" in proc.stderr


def _fastqc_data(zip_path: Path) -> str:
    with zipfile.ZipFile(zip_path) as z:
        name = next(n for n in z.namelist() if n.endswith("fastqc_data.txt"))
        return z.read(name).decode()


def test_killed_run_resumes_with_identical_outputs(demo, tmp_path, env):
    _, reference_out, _, _ = demo
    out = tmp_path / "killed"
    # One CPU: fastqc-r1 finishes, then bioinfra is killed while fastqc-r2 runs.
    cmd = [sys.executable, "-m", "bioinfra", "run", "fastqc-to-bwa", "--output", str(out), "--max-cpus", "1", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = out / "logs" / "fastqc-r2.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "=== cwd" in log.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before FastQC started"
        time.sleep(0.05)
    time.sleep(1.0)  # FastQC is now part-way through its file
    proc.kill()  # kill -9 of bioinfra itself, as an OOM killer or a closed laptop would
    proc.wait()
    assert not (out / "manifest.json").exists()
    done_before = {p.stem for p in (out / ".bioinfra" / "steps").glob("*.json")}
    assert done_before == {"fastqc-r1"}

    # The steps it started live on and still hold the run's lock: freeze them, and resume must refuse.
    orphans = [p for p in lock_holders(out / ".bioinfra" / "lock") if p != proc.pid]
    assert orphans, "expected FastQC steps still running after bioinfra was killed"
    groups = {os.getpgid(p) for p in orphans}
    for g in groups:
        os.killpg(g, signal.SIGSTOP)
    busy = subprocess.run([*cmd[:-1], "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert busy.returncode == ExitCode.RUN_LOCKED, busy.stderr
    assert "holds" in busy.stderr and str(orphans[0]) in busy.stderr
    for g in groups:
        os.killpg(g, signal.SIGKILL)
    for p in orphans:
        for _ in range(200):
            if not Path(f"/proc/{p}").exists() or "Z" in Path(f"/proc/{p}/stat").read_text().split()[2]:
                break
            time.sleep(0.05)

    resumed = subprocess.run([*cmd[:-1], "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    cached = {name for name, step in manifest["steps"].items() if step["cached"]}
    assert cached == done_before  # finished steps kept, the interrupted one and all after it re-ran
    assert (out / "stats/lambda.flagstat.txt").read_text() == (reference_out / "stats/lambda.flagstat.txt").read_text()
    assert samtools("view", str(out / "align/lambda.sorted.bam")) == samtools("view", str(reference_out / "align/lambda.sorted.bam"))
    for mate in ("R1", "R2"):
        assert _fastqc_data(out / f"fastqc/lambda_{mate}_fastqc.zip") == _fastqc_data(reference_out / f"fastqc/lambda_{mate}_fastqc.zip")


def test_qc_gate_skips_alignment_on_poor_reads(cli, tmp_path):
    poor = simulate(bundled().reference, tmp_path / "poor", sample="poor", pairs=1500, quality="poor", seed=7)
    proc = cli("run", "fastqc-to-bwa", "--r1", str(poor["r1"]), "--r2", str(poor["r2"]),
               "--reference", str(bundled().reference), "--qc-gate", "--output", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    phases = {name: step["phase"] for name, step in manifest["steps"].items()}
    assert phases == {"stage-in": "Skipped", "fastqc-r1": "Succeeded", "fastqc-r2": "Succeeded",
                      "index-reference": "Succeeded", "align": "Skipped", "stats": "Omitted", "multiqc": "Succeeded",
                      "stage-out": "Skipped"}
    assert any("QC gate" in n for n in manifest["notes"])
    assert (tmp_path / "out" / "multiqc" / "multiqc_report.html").is_file()
    assert not (tmp_path / "out" / "align" / "poor.sorted.bam").exists()
    assert "steps not run: align, stats" in proc.stderr


def test_a_failing_step_names_itself_and_its_log(cli, tmp_path):
    # Real failure: mates whose names disagree only past the records checked up front (the first
    # 1,000: the check reads no further) pass those checks but make `bwa mem` stop with "paired
    # reads have different names".
    import gzip

    from bioinfra.core.inputs import PAIR_CHECK_RECORDS

    lines = gzip.decompress(bundled().r2.read_bytes()).decode().splitlines(keepends=True)
    first_bad = 4 * 3 * PAIR_CHECK_RECORDS  # record 3,000 on
    r2 = "".join(lines[:first_bad]) + "".join(lines[first_bad:]).replace("@lambda.", "@other.")
    (tmp_path / "bad_R2.fastq.gz").write_bytes(gzip.compress(r2.encode()))
    (tmp_path / "bioinfra.yaml").write_text("pipeline: {retries: 1, retry_backoff: 0s}\n")
    proc = cli("run", "fastqc-to-bwa", "--r1", str(bundled().r1), "--r2", str(tmp_path / "bad_R2.fastq.gz"),
               "--reference", str(bundled().reference), "--sample", "bad", "--output", str(tmp_path / "out"))
    assert proc.returncode == ExitCode.STEP_FAILED, proc.stderr
    log = tmp_path / "out" / "logs" / "align.log"
    assert f"step 'align' failed (exit 1); log: {log}" in proc.stderr
    assert "paired reads have different names" in proc.stderr  # the log's tail is shown
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["steps"]["align"]["attempts"] == 2
    assert manifest["steps"]["multiqc"]["phase"] == "Omitted"
    assert not (tmp_path / "out" / ".bioinfra" / "steps" / "align.json").exists()  # not marked complete


def test_sigterm_stops_every_step_and_resume_finishes(tmp_path, env):
    out = tmp_path / "stopped"
    cmd = [sys.executable, "-m", "bioinfra", "run", "fastqc-to-bwa", "--output", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = out / "logs" / "fastqc-r1.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "=== cwd" in log.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before FastQC started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # what `kill`, systemd or a batch scheduler sends
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    assert "interrupted" in stderr and f"--resume --output {out}" in stderr
    assert lock_holders(out / ".bioinfra" / "lock") == []  # no step outlived bioinfra
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    resumed = subprocess.run([*cmd, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "manifest.json").read_text())["status"] == "succeeded"
