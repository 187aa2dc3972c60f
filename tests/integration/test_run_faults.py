"""Faults around a local run, each with its named exit and nothing left half-made (issue #15).

Real runs of the bundled sample with the real tools. The faults are real too: a full disk is a
small tmpfs, a read-only folder is a read-only tmpfs (root passes permission bits, not EROFS), a
kill -9 is a real SIGKILL that bioinfra sends itself at a fixed point of staging (no timing race).
Mounting needs root (CI runs as root); elsewhere those tests skip and say so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bioinfra.errors import ExitCode
from tests.conftest import require_native_tools

pytestmark = pytest.mark.integration


@contextmanager
def tmpfs(path: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        if os.environ.get("CI") == "true" and os.geteuid() == 0:
            pytest.fail(f"CI runs as root and must be able to mount a tmpfs: {proc.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_full_disk_stops_the_run_without_retries_and_the_manifest_says_why(cli, tmp_path):
    require_native_tools()
    with tmpfs(tmp_path / "small", "8m") as disk:
        # Room for the Workflow, the run record and the manifest reserve, not for FastQC's reports.
        filler = disk / "filler"
        with open(filler, "wb") as fh:
            os.posix_fallocate(fh.fileno(), 0, free_bytes(disk) - 1400 * 1024)
        out = disk / "out"
        proc = cli("run", "fastqc-to-bwa", "--output", str(out))
        assert proc.returncode == ExitCode.INPUT_INVALID, proc.stderr
        assert "the disk ran out of space" in proc.stderr and "not retried" in proc.stderr
        assert f"--resume --output {out}" in proc.stderr and "Traceback" not in proc.stderr
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "failed" and manifest["reason"].startswith("disk full:")
        fastqc = {k: v for k, v in manifest["steps"].items() if k.startswith("fastqc")}
        assert fastqc and all(s["attempts"] == 1 for s in fastqc.values()), fastqc  # not retried
        assert all(manifest["steps"][s]["phase"] == "Omitted" for s in ("align", "stats", "multiqc"))
        assert json.loads((out / ".bioinfra" / "run.json").read_text())["status"] == "failed"
        assert not list(out.rglob("*.tmp")) and not (out / ".bioinfra" / "manifest.reserve").exists()

        # Space freed: --resume finishes the run.
        filler.unlink()
        proc = cli("run", "fastqc-to-bwa", "--resume", "--output", str(out))
        assert proc.returncode == 0, proc.stderr
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "succeeded" and "reason" not in manifest
        assert (out / "multiqc" / "multiqc_report.html").is_file()


def test_read_only_output_is_refused_before_anything_runs(cli, tmp_path):
    require_native_tools()
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        for output, message in ((ro, "is not writable"), (ro / "new", "cannot be created")):
            proc = cli("run", "fastqc-to-bwa", "--output", str(output))
            assert proc.returncode == ExitCode.INPUT_INVALID, proc.stderr
            assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
            assert "choose a writable --output" in proc.stderr
        assert list(ro.iterdir()) == []
    assert not (tmp_path / "cache" / "bioinfra" / "workspace" / "runs").exists()


def test_output_that_is_a_symlink_loop_is_refused(cli, tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for extra in ((), ("--resume",)):
        proc = cli("run", "fastqc-to-bwa", *extra, "--output", str(loop))
        assert proc.returncode == ExitCode.INPUT_INVALID, proc.stderr
        assert "leads back to itself" in proc.stderr and "Traceback" not in proc.stderr


# bioinfra, killed with SIGKILL by itself halfway through copying the reference into the workspace
# cache: exactly the state a kill -9 during staging leaves, at a fixed point.
_KILLED_WHILE_STAGING = """
import os, shutil, signal, sys
def copy_then_die(src, dst, *args, **kwargs):
    with open(src, "rb") as fh, open(dst, "wb") as out:
        out.write(fh.read(4096))
    os.kill(os.getpid(), signal.SIGKILL)
shutil.copyfile = copy_then_die
from bioinfra.cli import main
sys.argv = ["bioinfra", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("again", [(), ("--resume",)], ids=["rerun", "resume"])
def test_a_run_killed_while_staging_can_be_run_again(cli, env, tmp_path, again):
    require_native_tools()
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", _KILLED_WHILE_STAGING, "run", "fastqc-to-bwa", "--output", str(out)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert [p.relative_to(out).as_posix() for p in sorted(out.rglob("*"))] == [".bioinfra", ".bioinfra/lock"]
    references = tmp_path / "cache" / "bioinfra" / "workspace" / "references"
    partial = list(references.glob("*/.*.tmp"))
    assert len(partial) == 1, partial

    proc = cli("run", "fastqc-to-bwa", *again, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "manifest.json").read_text())["status"] == "succeeded"
    assert not list(references.glob("*/.*.tmp")), "the killed run's partial copy is still in the cache"


def test_a_record_left_running_by_a_dead_process_reads_as_interrupted(cli, tmp_path):
    from bioinfra.engine.rundir import RunLock, read_run_record

    out = tmp_path / "out"
    (out / ".bioinfra").mkdir(parents=True)
    (out / ".bioinfra" / "run.json").write_text(json.dumps(
        {"run_id": "fastqc-to-bwa-20260101-000000-dead", "pipeline": "fastqc-to-bwa", "status": "running"}))
    (out / ".bioinfra" / "lock").write_text("999999\n")
    assert read_run_record(out)["status"] == "interrupted"
    lock = RunLock(out)
    lock.acquire()  # a live run (or a step it left running) holds the lock: still running
    try:
        assert read_run_record(out)["status"] == "running"
    finally:
        lock.release()
    proc = cli("run", "fastqc-to-bwa", "--output", str(out))
    assert proc.returncode == ExitCode.INPUT_INVALID and "(status: interrupted)" in proc.stderr, proc.stderr


def test_an_interrupt_stops_a_run_started_with_sigint_ignored(env, tmp_path):
    """A background job of a non-interactive shell (`bioinfra run ... &` in a script, some CI runners)
    starts with SIGINT ignored; an interrupt sent to it must still stop the run cleanly (exit 130)."""
    require_native_tools()
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bioinfra", "run", "fastqc-to-bwa", "--output", str(out), "--quiet"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as `cmd &` in `sh -c` leaves it
    )
    log = out / "logs" / "fastqc-r1.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "=== cwd" in log.read_text()):  # a step is running: there is work to stop
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before FastQC started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
