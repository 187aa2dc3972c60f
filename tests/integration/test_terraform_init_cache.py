"""Two bioinfra processes on one machine share Terraform's plugin cache (~/.cache/bioinfra/terraform-plugins):
their `terraform init`s take turns on it (bioinfra.adaptors.terraform._plugin_cache_lock).

Real: Terraform and the AWS provider from the local mirror, one process per init (the adaptor swaps
os.environ while Terraform runs, so processes, not threads, as two bioinfra commands would be).
Measured before the lock: four plain `terraform init` at once into an empty cache failed 1 round in 3
with `failed to create directory .../hashicorp/aws/5.100.0/linux_amd64: file exists` (one CI run of the
AWS scenarios, which start four `up`s together, failed that way).
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import require_terraform

pytestmark = pytest.mark.integration

MAIN_TF = 'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws", version = "5.100.0" }\n  }\n}\n'
# One bioinfra-side init in a process of its own; exits with Terraform's failure text on stderr.
INIT = "import os, sys; from pathlib import Path; from bioinfra.adaptors.terraform import Terraform; " \
       "Terraform(Path(sys.argv[1]), dict(os.environ)).init()"


def _stack(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "main.tf").write_text(MAIN_TF)
    return folder


def _start_init(stack: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", INIT, str(stack)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def init_env(env, terraform_config, tmp_path) -> dict[str, str]:
    """The CLI's environment with our Terraform config, and a plugin cache of this test's own (empty)."""
    require_terraform()
    return {**env, **terraform_config, "TF_PLUGIN_CACHE_DIR": str(tmp_path / "plugin-cache")}


def test_concurrent_inits_into_an_empty_cache_all_succeed(init_env, tmp_path):
    rounds, width = 6, 4  # unlocked, 6 rounds of 4 would all pass about 1 time in 10 (measured rate above)
    for round_ in range(rounds):
        env = {**init_env, "TF_PLUGIN_CACHE_DIR": str(tmp_path / f"cache-{round_}")}
        procs = [_start_init(_stack(tmp_path / f"r{round_}" / f"s{i}"), env) for i in range(width)]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, f"round {round_}: init failed:\n{err}"
        provider = next((tmp_path / f"cache-{round_}" / "registry.terraform.io" / "hashicorp" / "aws").iterdir())
        assert provider.name == "5.100.0"
        for i in range(width):  # every stack uses the one cached copy
            linked = tmp_path / f"r{round_}" / f"s{i}" / ".terraform" / "providers" / "registry.terraform.io" / \
                "hashicorp" / "aws" / "5.100.0" / "linux_amd64"
            assert linked.resolve() == (provider / "linux_amd64").resolve()


def test_an_init_waits_while_another_holds_the_cache(init_env, tmp_path):
    cache = Path(init_env["TF_PLUGIN_CACHE_DIR"])
    cache.mkdir()
    stack = _stack(tmp_path / "stack")
    with open(cache / ".bioinfra-init.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as another bioinfra's init would hold it
        proc = _start_init(stack, init_env)
        time.sleep(3)  # an unhindered init takes ~1 s here
        assert proc.poll() is None, "init ran although the cache was locked"
        assert not (stack / ".terraform").exists()
    _, err = proc.communicate(timeout=300)  # released: it goes ahead
    assert proc.returncode == 0, err
    assert (stack / ".terraform" / "providers").is_dir()


# ---------------------------------------------------------------------------------------------
# Skipping `terraform init` when the folder is already initialised for this configuration (#19.3).
# Real Terraform through a wrapper on BIOINFRA_TERRAFORM that records every command it is asked to
# run (the count of `terraform init` processes is what the skip saves).

MODULE_TF = 'output "answer" {\n  value = 42\n}\n'
ROOT_TF = MAIN_TF.replace("terraform {\n", 'terraform {\n  backend "local" {\n    path = "terraform.tfstate"\n  }\n', 1) + \
    'module "m" {\n  source = "../modules/m"\n}\n'


def _wrapper(folder: Path, name: str = "terraform") -> tuple[Path, Path]:
    """A `terraform` that appends its argv to calls.log and runs the real one."""
    folder.mkdir(parents=True, exist_ok=True)
    calls = folder / "calls.log"
    script = folder / name
    script.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec {require_terraform()} "$@"\n')
    script.chmod(0o755)
    return script, calls


def _inits(calls: Path) -> int:
    return sum(1 for line in calls.read_text().splitlines() if line.split()[:1] == ["init"]) if calls.exists() else 0


@pytest.fixture
def counted(init_env, tmp_path, monkeypatch):
    """A stack folder (local backend, the AWS provider, one local module) and a fresh-process-like
    init of it: each call makes a new adaptor, as each bioinfra command does. Returns (init, calls)."""
    from bioinfra.adaptors.terraform import Terraform

    script, calls = _wrapper(tmp_path / "bin")
    monkeypatch.setenv("BIOINFRA_TERRAFORM", str(script))
    stack = tmp_path / "env" / "stack"
    stack.mkdir(parents=True)
    (stack / "main.tf").write_text(ROOT_TF)
    (tmp_path / "env" / "modules" / "m").mkdir(parents=True)
    (tmp_path / "env" / "modules" / "m" / "main.tf").write_text(MODULE_TF)

    def init(backend_config_file=None) -> int:
        before = _inits(calls)
        Terraform(stack, init_env).init(backend_config_file)
        return _inits(calls) - before

    assert init() == 1
    return stack, init


def test_a_second_init_runs_no_terraform(counted):
    stack, init = counted
    assert init() == 0
    assert init() == 0
    fingerprint = stack / ".bioinfra-init.json"
    assert fingerprint.stat().st_mode & 0o777 == 0o600
    assert "terraform.tfstate" not in fingerprint.read_text()  # hashes only


def _set_backend_config(stack: Path, text: str) -> str:
    (stack / "backend-config.json").write_text(text)
    return "backend-config.json"


# Each: what changes between two inits -> the -backend-config file given to the second init.
CHANGES = {
    "backend settings added": lambda stack, tmp: _set_backend_config(stack, '{"path": "other.tfstate"}'),
    "backend block changed": lambda stack, tmp: (stack / "main.tf").write_text(
        ROOT_TF.replace('path = "terraform.tfstate"', 'path = "moved.tfstate"')) and None,
    "backend cache changed by hand": lambda stack, tmp: (stack / ".terraform" / "terraform.tfstate").write_text(
        (stack / ".terraform" / "terraform.tfstate").read_text().replace('"terraform.tfstate"', '"x.tfstate"')) and None,
    "required provider changed": lambda stack, tmp: (stack / "main.tf").write_text(
        ROOT_TF.replace('version = "5.100.0"', 'version = ">= 5.0"')) and None,
    "lock file removed": lambda stack, tmp: (stack / ".terraform.lock.hcl").unlink(),
    "module source added": lambda stack, tmp: ((tmp / "env" / "modules" / "n").mkdir(),
                                               (tmp / "env" / "modules" / "n" / "main.tf").write_text(MODULE_TF),
                                               (stack / "main.tf").write_text(
                                                   ROOT_TF + 'module "n" {\n  source = "../modules/n"\n}\n'))[0],
    "module gains a nested module": lambda stack, tmp: (tmp / "env" / "modules" / "m" / "main.tf").write_text(
        MODULE_TF + 'module "inner" {\n  source = "../n"\n}\n') and (tmp / "env" / "modules" / "n").mkdir(),
    ".terraform removed": lambda stack, tmp: __import__("shutil").rmtree(stack / ".terraform"),
    "plugin cache emptied (provider link dangling)": lambda stack, tmp: __import__("shutil").rmtree(
        tmp / "plugin-cache" / "registry.terraform.io"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_changed_configuration_inits_again(counted, tmp_path, change):
    stack, init = counted
    backend_config_file = CHANGES[change](stack, tmp_path)
    assert init(backend_config_file) == 1, f"{change}: no init"
    assert init(backend_config_file) == 0, f"{change}: initialised for it, yet another init"


def test_a_changed_backend_config_file_inits_again(counted):
    stack, init = counted
    name = _set_backend_config(stack, '{"path": "a.tfstate"}')
    assert init(name) == 1
    assert init(name) == 0
    _set_backend_config(stack, '{"path": "b.tfstate"}')  # same file name, other settings
    assert init(name) == 1
    assert init(None) == 1  # and back to no -backend-config at all


def test_another_terraform_binary_inits_again(counted, tmp_path, monkeypatch):
    stack, init = counted
    other, _ = _wrapper(tmp_path / "bin2")  # as after upgrading Terraform
    other.write_text(other.read_text().replace(str(tmp_path / "bin2" / "calls.log"), str(tmp_path / "bin" / "calls.log")))
    monkeypatch.setenv("BIOINFRA_TERRAFORM", str(other))
    assert init() == 1


def test_a_failed_init_leaves_no_fingerprint(counted):
    from bioinfra.errors import TerraformFailedError

    stack, init = counted
    (stack / "main.tf").write_text(ROOT_TF.replace('"5.100.0"', '"0.0.1"'))  # not in the mirror
    with pytest.raises(TerraformFailedError):
        init()
    assert not (stack / ".bioinfra-init.json").exists()
    (stack / "main.tf").write_text(ROOT_TF)
    assert init() == 1
