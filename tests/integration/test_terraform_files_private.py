"""What Terraform writes for bioinfra is readable by this user only (issue #15): the state and its
backup (the addons state holds MinIO's generated password), saved plans, the tfvars and backend
settings bioinfra writes, the backend cache and the logs are 0600, whatever the caller's umask.

Real: Terraform 1.11 through bioinfra's adaptor (init, plan -out, apply, apply again for a backup),
on a local-backend root with a `random_password`-like secret held by `terraform_data` (built into
Terraform: no provider, no network).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from bioinfra.adaptors.terraform import Terraform
from bioinfra.config import parse_config
from bioinfra.core.provision import render_environment

pytestmark = pytest.mark.integration

MAIN_TF = """
terraform {
  backend "local" {
    path = "terraform.tfstate"
  }
}

variable "secret" {
  description = "Stands in for the MinIO password the addons state holds."
  type        = string
  sensitive   = true
}

resource "terraform_data" "secret" {
  input = var.secret
}
"""


@pytest.fixture
def loose_umask():
    """The usual 022: files made without care come out 0644 (what the reviewer measured)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_plans_tfvars_and_logs_are_0600(tmp_path, loose_umask):
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on PATH")
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "main.tf").write_text(MAIN_TF)
    (stack / "secret.auto.tfvars.json").write_text('{"secret": "canary-3f1b"}')  # written loosely, on purpose
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(TF_CLI_CONFIG_FILE="/dev/null", TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
    tf = Terraform(stack, env)
    tf.init()
    assert tf.stream(["plan", "-out=tfplan"]).returncode == 0
    assert tf.stream(["apply", "tfplan"]).returncode == 0
    (stack / "secret.auto.tfvars.json").write_text('{"secret": "canary-4c2d"}')
    assert tf.stream(["apply", "-auto-approve"]).returncode == 0  # a change: Terraform writes a .backup
    assert "canary-4c2d" in (stack / "terraform.tfstate").read_text()  # the secret really is in the state
    private = [stack / "terraform.tfstate", stack / "terraform.tfstate.backup", stack / "tfplan",
               stack / "secret.auto.tfvars.json", *sorted((stack / "logs").glob("*.log"))]
    assert len(private) >= 7
    loose = {str(p.relative_to(stack)): oct(mode(p)) for p in private if mode(p) != 0o600}
    assert not loose, f"readable by others: {loose}"
    assert mode(stack / ".terraform") & 0o077 == 0  # made under umask 077


def test_rendered_tfvars_and_backend_settings_are_0600(tmp_path, loose_umask):
    config = parse_config({"name": "demo", "target": "aws", "region": "eu-west-2",
                           "state": {"backend": "s3", "bucket": "demo-tfstate", "lock_table": "demo-tflocks"}})
    render_environment(config, tmp_path)
    files = sorted(tmp_path.glob("*/*.json"))
    assert {p.name for p in files} == {"bioinfra.auto.tfvars.json", "backend-config.json"}
    assert all(mode(p) == 0o600 for p in files), {str(p): oct(mode(p)) for p in files}
    assert mode(tmp_path) == 0o700
