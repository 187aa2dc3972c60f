"""Target aws without AWS: config checks, the rendered stacks (golden files), lock handling."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bioinfra.adaptors.terraform import MARKER, LockInfo, Terraform, who_am_i
from bioinfra.config import parse_config
from bioinfra.core.provision import render_environment
from bioinfra.errors import ConfigError, ExitCode
from bioinfra.render import hcl
from bioinfra.targets.aws import STACKS, node_group
from tests.conftest import assert_stack_goldens

BASE = {"name": "demo", "target": "aws", "region": "eu-west-2"}
GPU = {"gpu": {"machine_type": "g5.xlarge", "max": 2, "gpu": {"count": 1}}}


def problems_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


# -- bad configs fail before Terraform, naming the field ----------------------------------------


def test_unknown_region_is_named_with_a_suggestion():
    assert problems_of({**BASE, "region": "eu-west-9"}) == ["region: 'eu-west-9' is not an AWS region; did you mean 'eu-west-3'?"]
    assert "region: required for target aws" in problems_of({"target": "aws"})[0]


def test_min_above_max_is_named():
    problems = problems_of({**BASE, "node_pools": {"highcpu": {"machine_type": "c6i.4xlarge", "min": 5, "max": 2}}})
    assert problems == ["node_pools.highcpu: min (5) is greater than max (2)"]


def test_gpu_pool_needs_a_gpu_instance_type():
    problems = problems_of({**BASE, "node_pools": {"gpu": {"machine_type": "m6i.xlarge", "gpu": {"count": 1}}}})
    assert problems == ["node_pools.gpu.machine_type: 'm6i.xlarge' has no NVIDIA GPU; use a GPU family such as g4dn, g5, g6 or p4d"]
    problems = problems_of({**BASE, "node_pools": {"gpu": {"machine_type": "g5.xlarge"}}})
    assert problems == ["node_pools: the gpu pool needs a 'gpu:' entry with type and count"]


def test_instance_types_and_alternatives_are_checked_for_aws():
    problems = problems_of({**BASE, "node_pools": {"highcpu": {"machine_type": "c2-standard-16", "spot": True,
                                                               "alternatives": ["c6a.4xlarge", "bogus"]}}})
    assert problems == [
        "node_pools.highcpu.machine_type: 'c2-standard-16' is not an EC2 instance type (e.g. m6i.xlarge)",
        "node_pools.highcpu.alternatives.1: 'bogus' is not an EC2 instance type (e.g. m6i.xlarge)",
    ]


def test_aws_settings_are_checked():
    problems = problems_of({**BASE, "aws": {"endpoint_url": "localhost:4566", "vpc_cidr": "10.0.0.0/8",
                                            "kubernetes_version": "1.31.2", "availability_zones": 1}})
    assert sorted(p.split(":")[0] for p in problems) == [
        "aws.availability_zones", "aws.endpoint_url", "aws.kubernetes_version", "aws.vpc_cidr"]


def test_aws_gets_aws_pools_by_default():
    config = parse_config(BASE)
    assert config.node_pools.general.machine_type == "m6i.xlarge"
    assert config.node_pools.highcpu.spot and len(config.node_pools.highcpu.alternatives) >= 2
    assert parse_config({}).node_pools.general.machine_type == "e2-standard-4"


def test_bad_aws_config_exits_3_and_renders_nothing(cli, tmp_path):
    (tmp_path / "bioinfra.yaml").write_text("name: demo\ntarget: aws\nregion: mars-north-1\n")
    proc = cli("plan", "aws")
    assert proc.returncode == ExitCode.CONFIG_INVALID, proc.stderr
    assert "region: 'mars-north-1' is not an AWS region" in proc.stderr
    assert not (tmp_path / ".bioinfra").exists()


def test_missing_credentials_exit_3_naming_the_field(cli, env, tmp_path):
    (tmp_path / "bioinfra.yaml").write_text("name: demo\nregion: eu-west-2\n")
    home = tmp_path / "home"
    home.mkdir()
    bare = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    bare.update(HOME=str(home), AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(home / "none"),
                AWS_SHARED_CREDENTIALS_FILE=str(home / "none"))
    proc = cli("up", "aws", "--yes", extra_env=bare)
    assert proc.returncode == ExitCode.CONFIG_INVALID, proc.stderr
    assert "no AWS credentials found" in proc.stderr and "aws.profile" in proc.stderr
    assert not (tmp_path / ".bioinfra").exists()

    (tmp_path / "bioinfra.yaml").write_text("name: demo\nregion: eu-west-2\naws: {profile: lab}\n")
    proc = cli("plan", "aws", extra_env=bare)
    assert proc.returncode == ExitCode.CONFIG_INVALID
    assert "aws.profile: no profile 'lab'" in proc.stderr


# -- rendering ------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["real", "emulator"])
def test_rendered_stacks_match_golden_files(tmp_path, variant):
    data = {**BASE, "node_pools": GPU}
    if variant == "emulator":
        data["aws"] = {"endpoint_url": "http://127.0.0.1:4566"}
    else:
        data["state"] = {"backend": "s3", "bucket": "demo-tfstate", "lock_table": "demo-tflocks"}
    render_environment(parse_config(data), tmp_path)
    # every config value: the variables (and the backend's settings) as Terraform reads them
    assert_stack_goldens(tmp_path, f"terraform/aws/{variant}", STACKS, remote_state=variant == "real")
    # the static modules are copied as they are, so the stacks are self-contained
    assert (tmp_path / "modules" / "cluster" / "main.tf").read_text() == \
        (Path(__file__).resolve().parents[2] / "terraform" / "aws" / "modules" / "cluster" / "main.tf").read_text()


def test_emulator_profile_is_data_only(tmp_path):
    """The emulator endpoint is a variable: the HCL of both renderings is the same text, and only the
    tfvars say where the provider goes (the endpoints block is a dynamic block over it)."""
    render_environment(parse_config({**BASE, "aws": {"endpoint_url": "http://127.0.0.1:4566"}}), tmp_path / "e")
    render_environment(parse_config(BASE), tmp_path / "r")
    for stack in ("network", "cluster", "storage"):
        assert (tmp_path / "e" / stack / "main.tf").read_text() == (tmp_path / "r" / stack / "main.tf").read_text()
        emulated = json.loads((tmp_path / "e" / stack / "bioinfra.auto.tfvars.json").read_text())
        real = json.loads((tmp_path / "r" / stack / "bioinfra.auto.tfvars.json").read_text())
        assert emulated["endpoint_url"] == "http://127.0.0.1:4566" and real["endpoint_url"] is None
    cluster = (tmp_path / "e" / "cluster" / "main.tf").read_text()
    assert 'dynamic "endpoints"' in cluster and "127.0.0.1" not in cluster


def test_a_remote_backend_is_configured_by_a_json_file_not_hcl(tmp_path):
    state = {"backend": "s3", "bucket": "lab-tfstate", "lock_table": "lab-tflocks"}
    render_environment(parse_config({**BASE, "state": state, "aws": {"profile": "lab",
                                                                     "endpoint_url": "http://127.0.0.1:4566"}}),
                       tmp_path)
    for stack in STACKS:
        main = (tmp_path / stack.name / "main.tf").read_text()
        assert 'backend "s3" {\n    encrypt = true\n  }' in main and "lab-tf" not in main
        settings = json.loads((tmp_path / stack.name / "backend-config.json").read_text())
        assert settings == {"bucket": "lab-tfstate", "key": f"demo/aws/{stack.name}/terraform.tfstate",
                            "region": "eu-west-2", "dynamodb_table": "lab-tflocks", "profile": "lab",
                            "use_path_style": True,
                            "endpoints": dict.fromkeys(("dynamodb", "iam", "s3", "sts"), "http://127.0.0.1:4566")}
        assert (tmp_path / stack.name / "backend-config.json").stat().st_mode & 0o777 == 0o600
    # back to local state: the file goes, so `init` is not given stale settings
    render_environment(parse_config(BASE), tmp_path)
    assert not list(tmp_path.glob("*/backend-config.json"))


def test_node_groups_carry_autoscaler_tags_for_labels_taints_and_gpus():
    config = parse_config({**BASE, "node_pools": GPU})
    gpu = node_group("demo", "gpu", config.node_pools.gpu)
    assert gpu["ami_type"] == "AL2023_x86_64_NVIDIA"
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    tags = gpu["autoscaler_tags"]
    assert tags["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == "present:NoSchedule"
    assert tags["k8s.io/cluster-autoscaler/node-template/label/bioinfra.io/pool"] == "gpu"
    assert tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "1"
    spot = node_group("demo", "highcpu", config.node_pools.highcpu)
    assert spot["capacity_type"] == "SPOT" and spot["min"] == 0 and len(spot["instance_types"]) == 4
    # spot pools repel what does not tolerate a reclaim (#18.8; tests/unit/test_aws_hardening.py)
    assert spot["taints"] == [{"key": "bioinfra.io/spot", "value": "true", "effect": "NO_SCHEDULE"}]
    graviton = node_group("demo", "general", parse_config(
        {**BASE, "node_pools": {"general": {"machine_type": "m7g.large"}}}).node_pools.general)
    assert graviton["ami_type"] == "AL2023_ARM_64_STANDARD"


@pytest.mark.parametrize(("itype", "gpus"), [("g5.xlarge", "1"), ("g5.12xlarge", "4"), ("g5.48xlarge", "8"),
                                          ("p4d.24xlarge", "8"), ("g4dn.12xlarge", "4"), ("g5g.16xlarge", "2")])
def test_the_gpu_count_tag_is_the_instance_types_not_gpu_count(tmp_path, itype, gpus):
    """Issue #18: the autoscaler's node-template GPU tag overrides what it knows of the instance type;
    it came from gpu.count (default 1), so a 4-GPU pod never scaled a g5.12xlarge pool up from zero."""
    pools = {"gpu": {"machine_type": itype, "max": 2, "gpu": {"count": 1}}}
    render_environment(parse_config({**BASE, "node_pools": pools}), tmp_path)
    tfvars = json.loads((tmp_path / "cluster" / "bioinfra.auto.tfvars.json").read_text())
    tags = tfvars["node_groups"]["gpu"]["autoscaler_tags"]
    assert tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == gpus
    assert "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu" not in \
        tfvars["node_groups"]["general"]["autoscaler_tags"]


def test_no_gpu_count_tag_when_the_count_is_unknown_or_differs():
    """A fractional-GPU type (g6f: part of one L4) or alternatives with other counts: no tag, so the
    autoscaler uses its own instance-type table rather than a count bioinfra would have to guess."""
    key = "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"
    for pool in ({"machine_type": "g6f.xlarge"}, {"machine_type": "g5.xlarge", "alternatives": ["g5.12xlarge"]}):
        config = parse_config({**BASE, "node_pools": {"gpu": {**pool, "gpu": {"count": 1}}}})
        group = node_group("demo", "gpu", config.node_pools.gpu)
        assert key not in group["autoscaler_tags"], pool
        assert group["ami_type"] == "AL2023_x86_64_NVIDIA" and group["taints"], pool  # still a GPU pool


def test_every_gpu_family_has_counts_unless_fractional():
    from bioinfra.config import AWS_GPU_COUNTS, AWS_GPU_FAMILIES

    assert {t.split(".")[0] for t in AWS_GPU_COUNTS} == AWS_GPU_FAMILIES - {"g6f", "gr6f"}
    assert all(n in (1, 2, 4, 8) for n in AWS_GPU_COUNTS.values())


# -- who may use the cluster (issue #18) -----------------------------------------------------------


def test_admins_reach_terraform_only_as_tfvars(tmp_path):
    admins = ["arn:aws:iam::123456789012:role/lab-admins", "arn:aws:iam::123456789012:user/ci/deploy-bot"]
    render_environment(parse_config({**BASE, "aws": {"admins": admins}}), tmp_path)
    assert json.loads((tmp_path / "cluster" / "bioinfra.auto.tfvars.json").read_text())["admins"] == admins
    for root in tmp_path.glob("*/main.tf"):
        assert "123456789012" not in root.read_text(), root
    assert json.loads((tmp_path / "network" / "bioinfra.auto.tfvars.json").read_text()).get("admins") is None
    stack = (tmp_path / "cluster" / "main.tf").read_text()
    assert "admin_arns          = var.admins" in stack and "access_entries = var.endpoint_url == null" in stack


def test_the_cluster_module_gives_access_entries_to_the_creator_and_admins(tmp_path):
    """Statically (moto 5.2.5 has no access-entry API; tests/integration/test_aws_access.py plans it with
    the real provider): API_AND_CONFIG_MAP, no hidden bootstrap admin, one entry and one cluster-admin
    association per principal."""
    render_environment(parse_config(BASE), tmp_path)
    module = (tmp_path / "modules" / "cluster" / "main.tf").read_text()
    assert 'authentication_mode                         = "API_AND_CONFIG_MAP"' in module
    assert "bootstrap_cluster_creator_admin_permissions = false" in module
    assert "ignore_changes = [access_config[0].bootstrap_cluster_creator_admin_permissions]" in module
    assert "concat([data.aws_iam_session_context.current.issuer_arn], var.admin_arns)" in module
    assert 'resource "aws_eks_access_entry" "admin" {\n  for_each = local.admins' in module
    assert 'resource "aws_eks_access_policy_association" "admin" {\n  for_each = local.admins' in module
    assert "cluster-access-policy/AmazonEKSClusterAdminPolicy" in module
    assert 'access_scope {\n    type = "cluster"\n  }' in module


@pytest.mark.parametrize(("arn", "problem"), [
    ("arn:aws:sts::123456789012:assumed-role/Admin/alice",
     "aws.admins: item 0: 'arn:aws:sts::123456789012:assumed-role/Admin/alice' is a role session; give the "
     "role's ARN, arn:aws:iam::123456789012:role/Admin"),
    ("arn:aws:iam::12345:role/x", "aws.admins: item 0: 'arn:aws:iam::12345:role/x' is not an IAM role or user ARN"),
    ("arn:aws:iam::123456789012:group/admins", "aws.admins: item 0: 'arn:aws:iam::123456789012:group/admins' is not"),
    ('arn:aws:iam::123456789012:role/${file("/etc/passwd")}', "aws.admins: item 0: 'arn:aws:iam::123456789012:role/${"),
    ("arn:aws:iam::123456789012:role/a b", "aws.admins: item 0: "),
])
def test_admins_must_be_iam_role_or_user_arns(arn, problem):
    [found] = problems_of({**BASE, "aws": {"admins": [arn]}})
    assert found.startswith(problem), found


def test_admins_accept_paths_and_partitions():
    admins = ["arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-2/AWSReservedSSO_Admin_0a1b",
              "arn:aws-us-gov:iam::123456789012:user/alice", "arn:aws-cn:iam::123456789012:role/ci"]
    assert parse_config({**BASE, "aws": {"admins": admins}}).aws.admins == admins
    assert problems_of({**BASE, "aws": {"admins": admins[:1] * 2}}) == ["aws.admins: lists an ARN twice"]


def test_hcl_literals():
    assert hcl(True) == "true"
    assert hcl(["a", 'b"c']) == '["a", "b\\"c"]'
    # a quoted HCL string is a template: ${ and %{ are escaped, and control characters (HCL has no \\b)
    assert hcl('${file("/etc/hostname")} %{ for x in y }') == '"$${file(\\"/etc/hostname\\")} %%{ for x in y }"'
    assert hcl("a\nb\x08") == '"a\\nb\\u0008"'
    assert hcl({"k": "v", "longer": 1}, indent=2) == '{\n    "k"      = "v"\n    "longer" = 1\n  }'


# -- locks ----------------------------------------------------------------------------------------

LOCK_DETAIL = """Error message: operation error DynamoDB: PutItem, ConditionalCheckFailedException
Lock Info:
  ID:        6b7c8f0e-1234-4bcd-9f00-000000000000
  Path:      demo-tfstate/demo/aws/cluster/terraform.tfstate
  Operation: OperationTypeApply
  Who:       alice@lab-42
  Version:   1.11.4
  Created:   2026-11-26 23:59:01.123456789 +0000 UTC
  Info:
"""


def test_lock_info_is_parsed_from_terraforms_message():
    lock = LockInfo.parse(LOCK_DETAIL)
    assert lock.id == "6b7c8f0e-1234-4bcd-9f00-000000000000"
    assert lock.who == "alice@lab-42" and lock.operation == "OperationTypeApply"
    assert "held by alice@lab-42" in lock.describe()
    assert LockInfo.parse("no lock here") is None


def _marker(folder: Path, **overrides) -> None:
    data = {"terraform_pid": 2 ** 22 + 7, "bioinfra_pid": 2 ** 22 + 8, "who": who_am_i(), "command": "apply",
            "started": "2026-11-26T23:58:00+00:00", **overrides}
    (folder / MARKER).write_text(json.dumps(data))


def test_a_stale_lock_is_ours_only_with_proof(tmp_path, monkeypatch):
    monkeypatch.setenv("BIOINFRA_TERRAFORM", "/bin/true")  # no Terraform call is made here
    tf = Terraform(tmp_path, dict(os.environ))
    ours = LockInfo("id-1", who=who_am_i(), operation="OperationTypeApply",
                    created="2026-11-26 23:59:01.1 +0000 UTC")
    assert tf.stale_lock_is_ours(ours)[0] is False  # no marker: no proof
    _marker(tmp_path)
    assert tf.stale_lock_is_ours(ours)[0] is True
    assert tf.stale_lock_is_ours(LockInfo("id-2", who="alice@lab-42", created=ours.created))[0] is False
    _marker(tmp_path, terraform_pid=os.getppid())  # that process is alive
    ok, why = tf.stale_lock_is_ours(ours)
    assert not ok and "still running" in why
    _marker(tmp_path, started="2026-11-27T02:00:00+00:00")  # the lock predates our run
    assert tf.stale_lock_is_ours(ours)[0] is False


def test_the_marker_of_a_dead_run_is_kept_as_evidence(tmp_path, monkeypatch):
    """A new Terraform call must not overwrite the record that proves an old stale lock is ours."""
    from bioinfra.adaptors.terraform import DEAD_MARKER

    monkeypatch.setenv("BIOINFRA_TERRAFORM", "/bin/true")
    tf = Terraform(tmp_path, dict(os.environ))
    _marker(tmp_path)  # left by a run that was killed
    tf._write_marker(os.getpid(), "plan")  # the next run starts
    assert json.loads((tmp_path / DEAD_MARKER).read_text())["command"] == "apply"
    lock = LockInfo("id-1", who=who_am_i(), created="2026-11-26 23:59:01.1 +0000 UTC")
    assert tf.stale_lock_is_ours(lock)[0] is True
    tf.forget_dead_run()
    assert not (tmp_path / DEAD_MARKER).exists()
