"""Shared fixtures. Tests run the real CLI in a subprocess, as a user would, with a private cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import pytest

from tests.fakes.fixtures import fake_google_apis, gcs_emulator  # noqa: F401
from tests.fakes.kube_api import kube_api  # noqa: F401

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


def assert_stack_goldens(folder: Path, golden_dir: str, stacks, *, remote_state: bool) -> None:
    """Each rendered stack root, the config values it reads (bioinfra.auto.tfvars.json) and, with remote
    state, its backend settings (backend-config.json) against their golden files under `golden_dir`."""
    for stack in stacks:
        assert_golden(f"{golden_dir}/{stack.name}.tf", (folder / stack.name / "main.tf").read_text())
        assert_golden(f"{golden_dir}/{stack.name}.auto.tfvars.json",
                      (folder / stack.name / "bioinfra.auto.tfvars.json").read_text())
        backend = folder / stack.name / "backend-config.json"
        assert backend.exists() == remote_state, stack.name
        if backend.exists():
            assert_golden(f"{golden_dir}/{stack.name}.backend-config.json", backend.read_text())


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


def kubectl_view(path: Path) -> dict | None:
    """The kubeconfig as kubectl itself reads it (None where kubectl is not installed)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    proc = subprocess.run([kubectl, "config", "view", "--raw", "-o", "json", "--kubeconfig", str(path)],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a server a test starts."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# AWS: the real Terraform and AWS provider against moto_server (an emulator of the AWS APIs).

TF_PLUGIN_MIRROR = Path("/opt/tf-plugins")


@contextmanager
def moto_server(log_dir: Path, argv: Optional[Callable[[int], list[str]]] = None,
                env: Optional[dict[str, str]] = None) -> Iterator[str]:
    """A moto_server of its own on 127.0.0.1 (EMULATED: AWS itself is unreachable here); yields its URL.

    Managed IAM policies are loaded so roles can attach AmazonEKSClusterPolicy and friends as the
    stacks do. `argv(port)`: another command serving moto on that port (e.g. with AWS's rules added,
    test_aws_vpc_blockers); `env`: more environment for it."""
    import time
    import urllib.request

    exe = Path(sys.executable).parent / "moto_server"
    if argv is None and not exe.exists():
        pytest.fail("moto_server missing: pip install 'bioinfra[test]'")
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "moto_server.log"
    command = argv(port) if argv is not None else [str(exe), "-H", "127.0.0.1", "-p", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not answer on {url}:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    """One moto_server for the session's short AWS tests: they share it, each with its own cluster
    name. The long `up`/`destroy` scenarios start one each (tests/integration/test_aws_stacks.py)."""
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


def require_terraform() -> str:
    """The real Terraform with the AWS provider from the filesystem mirror, or a skip saying why."""
    terraform = shutil.which("terraform")
    problem = None
    if terraform is None:
        problem = "terraform is not installed"
    elif not (TF_PLUGIN_MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        problem = f"the AWS provider mirror {TF_PLUGIN_MIRROR} is absent"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs Terraform and the provider mirror: {problem}")
        pytest.skip(problem)
    return terraform


# Go's garbage collector at GOGC=400 instead of 100, for Terraform and the providers it starts
# (they inherit the environment). Measured here (2 cores): a `terraform plan` of the network stack
# is almost all provider start-up (Terraform starts the 700 MB AWS provider three times per plan:
# schema, validate, plan) and takes 13.3 s of CPU at GOGC=100, 9.2 s at 400, for ~150 MB more
# memory per provider process. Only the collector's pacing changes, nothing Terraform does.
TF_GOGC = "400"


@pytest.fixture(scope="session")
def terraform_config(tmp_path_factory) -> dict[str, str]:
    """Our own Terraform CLI config (the machine's TF_CLI_CONFIG_FILE names a missing file): the
    provider from the local mirror, one plugin cache for the session so it is linked, not copied;
    no version check calling home (tests also run `terraform` directly); GOGC as above."""
    require_terraform()
    folder = tmp_path_factory.mktemp("terraform")
    cache = folder / "plugin-cache"
    cache.mkdir()
    rc = folder / "terraform.rc"
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{TF_PLUGIN_MIRROR}"\n  }}\n}}\n')
    return {"TF_CLI_CONFIG_FILE": str(rc), "TF_PLUGIN_CACHE_DIR": str(cache), "CHECKPOINT_DISABLE": "1",
            "GOGC": TF_GOGC}


@pytest.fixture
def aws_env(env: dict[str, str], moto_endpoint: str, terraform_config: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The CLI's environment for target aws against moto: fake keys, no ~/.aws, the endpoint set."""
    return make_aws_env(env, moto_endpoint, terraform_config, tmp_path / "home")


def make_aws_env(env: dict[str, str], moto_endpoint: str, terraform_config: dict[str, str], home: Path) -> dict[str, str]:
    """aws_env's work, for module-scoped users too: updates `env` in place (a `cli` built on it
    then runs with it) and returns it."""
    home.mkdir()
    env.update(terraform_config)
    env.update({
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "BIOINFRA_AWS_ENDPOINT_URL": moto_endpoint,
    })
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        env.pop(key, None)
    return env


# The onprem MinIO install's credentials, as its Secret holds them; tests assert they leak nowhere.
MINIO_CREDS = {"root-user": "minio-user-x", "root-password": "s3cr3t-never-printed"}


@pytest.fixture
def onprem(kube_api, moto_endpoint: str, tmp_path: Path, env: dict[str, str]):  # noqa: F811 - the fixture
    """An onprem config whose cluster is kmock (with the MinIO Secret) and whose MinIO is moto's S3."""
    import base64

    import boto3
    import yaml

    kubeconfig = kube_api.kubeconfig(tmp_path / "kubeconfig")
    (tmp_path / "bioinfra.yaml").write_text(yaml.safe_dump(
        {"name": "lab", "target": "onprem", "onprem": {"kubeconfig": str(kubeconfig)}}))
    kube_api.create("/api/v1/namespaces/bioinfra/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bioinfra-minio", "namespace": "bioinfra"},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in MINIO_CREDS.items()}})
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
    s3.create_bucket(Bucket="workspace")
    env["BIOINFRA_MINIO_URL"] = moto_endpoint
    return {"s3": s3, "api": kube_api, "kubeconfig": kubeconfig}
