"""Shared fixtures. Tests run the real CLI in a subprocess, as a user would, with a private cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
NATIVE_TOOLS = ("fastqc", "bwa", "samtools", "multiqc")


def regenerate() -> bool:
    """BIOINFRA_REGENERATE=1 rewrites golden files locally; CI never does."""
    return os.environ.get("BIOINFRA_REGENERATE") == "1" and os.environ.get("CI") != "true"


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if regenerate():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"golden file {path} is missing: run with BIOINFRA_REGENERATE=1"
    assert text == path.read_text(), f"{name} differs from its golden file; if intended, BIOINFRA_REGENERATE=1"


@pytest.fixture(scope="session")
def matplotlib_cache(tmp_path_factory) -> str:
    """One matplotlib cache for the session: MultiQC builds its font cache once, not per test."""
    return str(tmp_path_factory.mktemp("mplconfig"))


def cli_env(cache_home: Path, matplotlib_dir: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("BIOINFRA_")}
    e["XDG_CACHE_HOME"] = str(cache_home)
    e["MPLCONFIGDIR"] = matplotlib_dir
    return e


@pytest.fixture
def env(tmp_path: Path, matplotlib_cache: str) -> dict[str, str]:
    """Environment for CLI runs: a private workspace cache, no config from the caller."""
    return cli_env(tmp_path / "cache", matplotlib_cache)


@pytest.fixture
def cli(tmp_path: Path, env: dict[str, str]):
    """Run `bioinfra ...` in tmp_path; returns CompletedProcess (text)."""

    def run(*args: str, cwd: Path | None = None, check: bool | None = None, extra_env: dict | None = None, timeout=600):
        proc = subprocess.run(
            [sys.executable, "-m", "bioinfra", *args],
            cwd=cwd or tmp_path,
            env={**env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert proc.returncode == 0, f"bioinfra {' '.join(args)} exited {proc.returncode}\n{proc.stderr}"
        return proc

    return run


def require_native_tools() -> None:
    missing = [t for t in NATIVE_TOOLS if shutil.which(t) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must install {missing} (make setup)")
        pytest.skip(f"native tools missing: {missing}; run `make setup`")


def require_docker() -> None:
    """Real Docker tests: CI starts a daemon (scripts/docker-up.sh); elsewhere they skip without one."""
    from bioinfra.adaptors.docker import daemon_answers

    if daemon_answers() and subprocess.run(["docker", "image", "inspect", "bioinfra-base:bookworm"],
                                           capture_output=True).returncode == 0:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("CI must start Docker and build the base image: scripts/docker-up.sh")
    pytest.skip("no Docker daemon or no bioinfra-base:bookworm image; run scripts/docker-up.sh as root")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a server a test starts."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
