"""Upstream outputs read from the state file in-process, and no `terraform init` when a stack folder is
already initialised for its configuration (issue #19.3: `bioinfra plan` at raw `terraform plan` speed).

Real: the rendered AWS network stack applied with Terraform and hashicorp/aws 5.100.0 against moto_server
(EMULATED AWS), plus a file of extra outputs of every JSON kind (one sensitive). Terraform runs through a
wrapper on BIOINFRA_TERRAFORM that records each command, so "no Terraform process" is counted, not assumed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bioinfra.adaptors.terraform import Terraform, read_state_addresses, read_state_outputs
from bioinfra.config import parse_config
from bioinfra.core.provision import UPSTREAM_FILE, Provisioner, render_environment
from tests.conftest import require_terraform

pytestmark = [pytest.mark.integration, pytest.mark.aws]

CANARY = "s3cr3t-canary-19-3"  # a sensitive output's value: never printed nor logged
EXTRA_OUTPUTS = f"""
output "canary_secret" {{
  value     = "{CANARY}"
  sensitive = true
}}

output "a_map" {{
  value = {{ a = 1, b = [true, false], c = {{ d = "e" }} }}
}}

output "a_number" {{
  value = 1.5
}}
"""


@pytest.fixture
def counting_terraform(tmp_path, monkeypatch) -> Path:
    """BIOINFRA_TERRAFORM = a wrapper that appends each command line to the returned log."""
    calls = tmp_path / "calls.log"
    wrapper = tmp_path / "bin" / "terraform"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec {require_terraform()} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("BIOINFRA_TERRAFORM", str(wrapper))
    return calls


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_upstream_outputs_come_from_the_state_with_no_terraform_process(
        tmp_path, monkeypatch, moto_endpoint, terraform_config, counting_terraform):
    home = tmp_path / "home"
    home.mkdir()
    for key, value in {**terraform_config, "HOME": str(home), "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true",
                       "BIOINFRA_AWS_ENDPOINT_URL": moto_endpoint}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE", "TF_WORKSPACE", "TF_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)
    config_path = tmp_path / "bioinfra.yaml"
    config = parse_config({"name": "outputs193", "target": "aws", "region": "eu-west-2"})
    said: list[str] = []
    first = Provisioner(config, config_path, said.append)
    render_environment(config, first.env_dir)
    network, cluster = first.stack("network"), first.stack("cluster")
    (first.env_dir / "network" / "extra_outputs.tf").write_text(EXTRA_OUTPUTS)
    first._init(network)
    assert first.tf(network).stream(["apply", "-auto-approve"]).returncode == 0

    # A new command (a new Provisioner, as `bioinfra plan` is a new process): the cluster stack's
    # upstream values are written with no Terraform process at all (no init, no output).
    before = len(_calls(counting_terraform))
    second = Provisioner(config, config_path, said.append)
    render_environment(config, second.env_dir)  # as `plan` does: the same files, rewritten
    assert second._write_upstream(cluster, allow_placeholders=False) == ()
    assert _calls(counting_terraform)[before:] == []
    upstream = json.loads((second.env_dir / "cluster" / UPSTREAM_FILE).read_text())["network"]
    assert upstream["vpc_id"].startswith("vpc-") and upstream["private_subnet_ids"]

    # The same values as Terraform's own `terraform output -json`.
    shown = subprocess.run([require_terraform(), "output", "-json"], cwd=second.env_dir / "network",
                           env={**terraform_config, "PATH": "/usr/bin:/bin", "HOME": str(home)},
                           capture_output=True, text=True, check=True)
    expected = {name: entry["value"] for name, entry in json.loads(shown.stdout).items()}
    assert second.tf(network).outputs() == expected
    assert expected["canary_secret"] == CANARY and expected["a_map"]["c"] == {"d": "e"}
    # `terraform state list` (adopt_kept and destroy ask it) from the state file too, the same names.
    listed = subprocess.run([require_terraform(), "state", "list"], cwd=second.env_dir / "network",
                            env={**terraform_config, "PATH": "/usr/bin:/bin", "HOME": str(home)},
                            capture_output=True, text=True, check=True)
    names = second.tf(network).state_list()
    assert sorted(names) == sorted(listed.stdout.split()) and any("[0]" in n for n in names), names
    assert _calls(counting_terraform)[before:] == []
    # Nothing of the sensitive value in what was said or logged.
    logs = "".join(p.read_text() for p in (second.env_dir / "network" / "logs").glob("*.log"))
    assert CANARY not in logs and not any(CANARY in line for line in said)

    # The cluster stack was never initialised: its first init runs, its second does not.
    second._init(cluster)
    assert [c.split()[0] for c in _calls(counting_terraform)[before:]] == ["init"]
    Provisioner(config, config_path, said.append)._init(cluster)
    assert len(_calls(counting_terraform)[before:]) == 1


def test_an_unknown_state_format_or_a_remote_backend_asks_terraform(tmp_path, terraform_config, counting_terraform):
    """Anything but a version-4 local state goes through `terraform output -json`."""
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "main.tf").write_text('terraform {\n  backend "local" {\n    path = "terraform.tfstate"\n  }\n}\n'
                                   'output "x" {\n  value = "from-config"\n}\n')
    env = {**terraform_config, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    tf = Terraform(stack, env)
    tf.init()
    assert tf.local_state_file() == stack / "terraform.tfstate"
    assert tf.outputs() == {}  # no state yet: as `terraform output -json` says ({})
    assert tf.stream(["apply", "-auto-approve"]).returncode == 0
    assert read_state_outputs(stack / "terraform.tfstate") == {"x": "from-config"}
    assert [c.split()[0] for c in _calls(counting_terraform)] == ["init", "apply"]

    state = json.loads((stack / "terraform.tfstate").read_text())
    (stack / "terraform.tfstate").write_text(json.dumps({**state, "version": 5}))
    assert read_state_outputs(stack / "terraform.tfstate") is None
    with pytest.raises(Exception):  # noqa: B017 - Terraform 1.11 itself refuses a version-5 state
        tf.outputs()
    assert _calls(counting_terraform)[-1].split()[0] == "output"  # it was asked
    (stack / "terraform.tfstate").write_text(json.dumps(state)[:50])  # cut short, as mid-write
    assert read_state_outputs(stack / "terraform.tfstate") is None

    # A remote backend, as init records it in the backend cache: never read from a local file.
    cache = stack / ".terraform" / "terraform.tfstate"
    cache.write_text(json.dumps({"version": 3, "backend": {"type": "s3", "config": {"bucket": "b", "key": "k"}}}))
    assert tf.local_state_file() is None
    shutil.rmtree(stack / ".terraform")
    assert tf.local_state_file() is None  # not initialised: Terraform decides


def test_state_addresses_as_terraform_state_list_prints_them(tmp_path):
    """The address forms of addrs.AbsResourceInstance.String() (hashicorp/terraform, internal/addrs):
    data sources, count and for_each keys, module instances; an object deposed beside its current one
    is one address. A key whose quoting we do not reproduce, or another state version: None (ask Terraform)."""
    state = {"version": 4, "outputs": {}, "resources": [
        {"mode": "managed", "type": "aws_vpc", "name": "this", "instances": [{"attributes": {}}]},
        {"module": "module.network", "mode": "data", "type": "aws_availability_zones", "name": "all",
         "instances": [{"attributes": {}}]},
        {"module": "module.network", "mode": "managed", "type": "aws_subnet", "name": "private", "each": "list",
         "instances": [{"index_key": 0}, {"index_key": 1}, {"index_key": 1, "deposed": "00000001"}]},
        {"module": 'module.pools["gpu"]', "mode": "managed", "type": "aws_eks_node_group", "name": "this",
         "each": "map", "instances": [{"index_key": "gpu"}, {"index_key": "high-cpu"}]},
    ]}
    path = tmp_path / "terraform.tfstate"
    path.write_text(json.dumps(state))
    assert read_state_addresses(path) == sorted([
        "aws_vpc.this", "module.network.data.aws_availability_zones.all",
        "module.network.aws_subnet.private[0]", "module.network.aws_subnet.private[1]",
        'module.pools["gpu"].aws_eks_node_group.this["gpu"]', 'module.pools["gpu"].aws_eks_node_group.this["high-cpu"]',
    ])
    state["resources"][3]["instances"].append({"index_key": 'a "quoted" key'})
    path.write_text(json.dumps(state))
    assert read_state_addresses(path) is None
    path.write_text(json.dumps({**state, "version": 3}))
    assert read_state_addresses(path) is None
    assert read_state_addresses(tmp_path / "absent.tfstate") == []
