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
