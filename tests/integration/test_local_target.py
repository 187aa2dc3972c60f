"""`bioinfra up local` / `destroy local` with the real Docker daemon and a real registry."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import free_port, require_docker

pytestmark = [pytest.mark.integration, pytest.mark.docker]
BASE = "bioinfra-base:bookworm"


def _exists(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0


def test_up_then_destroy_removes_exactly_what_up_made(env, tmp_path):
    require_docker()
    import shutil

    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed (scripts/docker-up.sh installs it)")
    port = free_port()
    (tmp_path / "bioinfra.yaml").write_text(f"local: {{workspace: {tmp_path / 'ws'}}}\n")
    env = {**env, "BIOINFRA_CONFIG": str(tmp_path / "bioinfra.yaml")}
    bystander = f"127.0.0.1:{port}/bioinfra/not-ours:1"  # made by someone else: destroy must leave it
    subprocess.run(["docker", "tag", BASE, bystander], check=True)

    def bioinfra(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bioinfra", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=timeout)

    try:
        up = bioinfra("up", "local", "--registry", "--registry-port", str(port), "--base-image", BASE, "--aligner", "bwa")
        assert up.returncode == 0, up.stderr
        refs = dict(line.split("\t") for line in up.stdout.splitlines())
        assert refs["registry"] == f"127.0.0.1:{port}"
        for name in ("fastqc", "bwa-mem2"):
            assert refs[name].startswith(f"127.0.0.1:{port}/bioinfra/{name}:") and _exists(refs[name])
        catalog = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/_catalog", timeout=5))
        assert {"bioinfra/fastqc", "bioinfra/bwa-mem2"} <= set(catalog["repositories"])

        plan = bioinfra("run", "fastqc-to-bwa", "--dry-run", timeout=300)
        assert plan.returncode == 0, plan.stderr
        assert "runtime\tdocker (auto:" in plan.stdout

        again = bioinfra("up", "local", "--registry", "--registry-port", str(port), "--base-image", BASE, "--aligner", "bwa")
        assert again.returncode == 0 and "registry already running" in again.stderr and "unchanged" in again.stderr

        down = bioinfra("destroy", "local", timeout=300)
        assert down.returncode == 0, down.stderr
        assert "removed registry" in down.stderr
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2)
        assert not _exists(refs["fastqc"]) and not _exists(refs["bwa-mem2"])
        assert _exists(bystander)

        twice = bioinfra("destroy", "local", timeout=300)
        assert twice.returncode == 0 and "nothing to remove" in twice.stderr
    finally:
        subprocess.run(["docker", "image", "rm", bystander], capture_output=True)
        bioinfra("destroy", "local", timeout=300)


def test_onprem_without_a_kubeconfig_exits_13_before_anything(cli, tmp_path):
    # onprem has stacks now (#6): without a kubeconfig every command stops at the preflight
    (tmp_path / "bioinfra.yaml").write_text(f"target: onprem\nonprem:\n  kubeconfig: {tmp_path / 'missing'}\n")
    for command in (["up", "onprem", "--yes"], ["destroy", "onprem", "--yes"], ["plan", "onprem"]):
        proc = cli(*command)
        assert proc.returncode == 13, proc.stderr
        assert "kubeconfig" in proc.stderr and "does not exist" in proc.stderr
    assert not (tmp_path / ".bioinfra").exists()
