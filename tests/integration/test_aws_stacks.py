"""`bioinfra plan|up|destroy aws`: the real Terraform and the real AWS provider (5.100, from the
local mirror) applying the rendered stacks against moto_server.

EMULATED: AWS itself (moto_server on 127.0.0.1). Everything else is real: the CLI in a subprocess,
Terraform, the provider, boto3. Each test uses its own cluster name (moto is shared per session).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from bioinfra.adaptors.aws_sweep import find_leftovers
from bioinfra.errors import ExitCode

pytestmark = [pytest.mark.integration, pytest.mark.aws]

REGION = "eu-west-2"

# What `up` must create, per stack (addresses in each stack's state).
EXPECTED = {
    "network": {
        "module.network.aws_vpc.this", "module.network.aws_subnet.public[0]", "module.network.aws_subnet.public[1]",
        "module.network.aws_subnet.private[0]", "module.network.aws_subnet.private[1]",
        "module.network.aws_internet_gateway.this", "module.network.aws_nat_gateway.this[0]",
        "module.network.aws_eip.nat[0]", "module.network.aws_route_table.public",
        "module.network.aws_route_table.private[0]", "module.network.aws_route.private_nat[1]",
        "module.network.aws_vpc_endpoint.s3", 'module.network.aws_vpc_endpoint.interface["ecr.api"]',
        'module.network.aws_vpc_endpoint.interface["ecr.dkr"]', "module.network.aws_flow_log.this",
    },
    "cluster": {
        "module.cluster.aws_eks_cluster.this", "module.cluster.aws_iam_role.cluster", "module.cluster.aws_iam_role.node",
        "module.cluster.aws_iam_openid_connect_provider.this", "module.cluster.module.key.aws_kms_key.this",
        "module.cluster.aws_cloudwatch_log_group.cluster",
        "aws_eks_node_group.general", "aws_eks_node_group.highcpu", "aws_eks_node_group.gpu",
    },
    "storage": {
        "module.storage.aws_s3_bucket.results", "module.storage.aws_s3_bucket_versioning.results",
        "module.storage.aws_s3_bucket_public_access_block.results",
        "module.storage.aws_s3_bucket_server_side_encryption_configuration.results",
        "module.storage.aws_s3_bucket_lifecycle_configuration.results", "module.storage.aws_efs_file_system.shared",
        "module.storage.aws_efs_mount_target.shared[0]", "module.storage.aws_efs_mount_target.shared[1]",
        'module.storage.aws_ecr_repository.tools["{name}/fastqc"]', "module.storage.aws_iam_role.workflow",
    },
}


def write_config(folder: Path, name: str, extra: str = "") -> None:
    (folder / "bioinfra.yaml").write_text(
        f"name: {name}\ntarget: aws\nregion: {REGION}\n"
        "node_pools:\n  gpu:\n    machine_type: g5.xlarge\n    max: 2\n    gpu: {count: 1}\n" + extra
    )


def session(endpoint: str) -> tuple[boto3.session.Session, str]:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name=REGION), endpoint


def state_list(folder: Path, env: dict[str, str]) -> set[str]:
    proc = subprocess.run(["terraform", "state", "list"], cwd=folder, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def assert_nothing_left(name: str, endpoint: str) -> None:
    """Checked with boto3 directly, not only through bioinfra's own sweep."""
    sess, url = session(endpoint)
    ec2 = sess.client("ec2", endpoint_url=url)
    tagged = [{"Name": "tag:bioinfra:cluster", "Values": [name]}]
    assert ec2.describe_vpcs(Filters=tagged)["Vpcs"] == []
    assert ec2.describe_nat_gateways(Filter=tagged + [{"Name": "state", "Values": ["available", "pending"]}])["NatGateways"] == []
    assert ec2.describe_addresses(Filters=tagged)["Addresses"] == []
    assert ec2.describe_network_interfaces(Filters=tagged)["NetworkInterfaces"] == []
    assert name not in sess.client("eks", endpoint_url=url).list_clusters()["clusters"]
    buckets = [b["Name"] for b in sess.client("s3", endpoint_url=url).list_buckets()["Buckets"]]
    assert f"{name}-results" not in buckets
    repos = sess.client("ecr", endpoint_url=url).describe_repositories()["repositories"]
    assert not [r for r in repos if r["repositoryName"].startswith(f"{name}/")]
    roles = sess.client("iam", endpoint_url=url).list_roles()["Roles"]
    assert not [r for r in roles if r["RoleName"].startswith(f"{name}-")]
    efs = sess.client("efs", endpoint_url=url).describe_file_systems()["FileSystems"]
    assert not [f for f in efs if f.get("CreationToken") == f"{name}-shared"]
    assert find_leftovers(sess, name, url) == []


def test_up_plan_destroy_leaves_nothing(cli, aws_env, tmp_path, moto_endpoint):
    name = "cycle"
    write_config(tmp_path, name)
    up = cli("up", "aws", "--yes", extra_env=aws_env, timeout=1200)
    assert up.returncode == 0, up.stderr
    assert f"bucket\t{name}-results" in up.stdout
    # moto's EKS serves no Kubernetes API: the addons stack is skipped here, and says so.
    assert "stack addons: skipped (the AWS emulator's EKS has no Kubernetes API server)" in up.stderr
    env_dir = tmp_path / ".bioinfra" / name / "aws"
    for stack, expected in EXPECTED.items():
        listed = state_list(env_dir / stack, aws_env)
        missing = {a.format(name=name) for a in expected} - listed
        assert not missing, f"stack {stack} lacks {missing}"
        # the raw log of every Terraform call is kept
        assert list((env_dir / stack / "logs").glob("*-apply.log")), stack

    # every tag-able network resource carries the cluster tag (the sweep depends on it)
    sess, url = session(moto_endpoint)
    ec2 = sess.client("ec2", endpoint_url=url)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:bioinfra:cluster", "Values": [name]}])["Vpcs"]
    assert len(vpc) == 1
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc[0]["VpcId"]]}])["Subnets"]
    assert len(subnets) == 4 and len({s["AvailabilityZone"] for s in subnets}) == 2
    assert all({"Key": "bioinfra:cluster", "Value": name} in s["Tags"] for s in subnets)
    groups = sess.client("eks", endpoint_url=url).list_nodegroups(clusterName=name)["nodegroups"]
    assert sorted(groups) == ["general", "gpu", "highcpu"]
    gpu = sess.client("eks", endpoint_url=url).describe_nodegroup(clusterName=name, nodegroupName="gpu")["nodegroup"]
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert gpu["scalingConfig"]["minSize"] == 0

    # a second plan shows no changes (--verbose adds Terraform's own plan text per stack)
    plan = cli("plan", "aws", "--verbose", extra_env=aws_env, timeout=600)
    assert plan.returncode == 0, plan.stderr
    for stack in EXPECTED:
        assert f"{stack:<10} +0 add  ~0 change  -0 destroy" in plan.stdout, plan.stdout
    assert "total      0 change(s)" in plan.stdout
    assert plan.stdout.count("No changes.") == 3, plan.stdout

    # results are never deleted silently: a bucket with data is kept and reported (exit 11)
    s3 = sess.client("s3", endpoint_url=url)
    # The bucket policy denies requests without TLS, and moto enforces it on its plain-HTTP endpoint:
    # EMULATOR-ONLY step, lift that policy so this test (and the sweep) can write and empty the bucket.
    assert "aws:SecureTransport" in s3.get_bucket_policy(Bucket=f"{name}-results")["Policy"]
    s3.delete_bucket_policy(Bucket=f"{name}-results")
    s3.put_object(Bucket=f"{name}-results", Key="run-1/multiqc_report.html", Body=b"<html/>")
    kept = cli("destroy", "aws", "--yes", extra_env=aws_env, timeout=1200)
    assert kept.returncode == ExitCode.LEFTOVERS, kept.stderr
    assert f"s3-bucket {name}-results" in kept.stderr and "--force-empty-buckets" in kept.stderr
    assert s3.get_object(Bucket=f"{name}-results", Key="run-1/multiqc_report.html")["Body"].read() == b"<html/>"
    assert [lo.kind for lo in find_leftovers(sess, name, url)] == ["s3-bucket"]

    # `up` again adopts the kept bucket (an import), with its data, instead of failing on the name
    again_up = cli("up", "aws", "--yes", extra_env=aws_env, timeout=1200)
    assert again_up.returncode == 0, again_up.stderr
    assert f"adopting bucket {name}-results" in again_up.stderr
    assert "module.storage.aws_s3_bucket.results" in state_list(env_dir / "storage", aws_env)
    s3.delete_bucket_policy(Bucket=f"{name}-results")  # EMULATOR-ONLY again: `up` put the TLS-only policy back
    assert s3.get_object(Bucket=f"{name}-results", Key="run-1/multiqc_report.html")["Body"].read() == b"<html/>"

    # re-running is safe; with --force-empty-buckets the bucket goes too
    done = cli("destroy", "aws", "--yes", "--force-empty-buckets", extra_env=aws_env, timeout=1200)
    assert done.returncode == 0, done.stderr
    assert f"emptying bucket {name}-results" in done.stderr
    assert_nothing_left(name, moto_endpoint)
    again = cli("destroy", "aws", "--yes", extra_env=aws_env, timeout=600)
    assert again.returncode == 0, again.stderr


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _lock_items(sess, url: str, table: str) -> list[dict]:
    items = sess.client("dynamodb", endpoint_url=url).scan(TableName=table)["Items"]
    return [i for i in items if "Info" in i]  # digest items ("...-md5") are not locks


def test_up_killed_mid_apply_then_destroy(cli, aws_env, tmp_path, moto_endpoint):
    """kill -9 of bioinfra and Terraform while node groups are being created, with S3 state and
    DynamoDB locking: the lock stays behind and resources exist outside the state. `destroy` clears
    the lock (provably ours), deletes the leftovers and the stacks: nothing remains."""
    name = "killed"
    state = "state: {backend: s3, bucket: killed-tfstate, lock_table: killed-tflocks}\n"
    write_config(tmp_path, name, state)
    boot = cli("state", "bootstrap", extra_env=aws_env)
    assert boot.returncode == 0, boot.stderr
    assert "created bucket killed-tfstate" in boot.stderr
    sess, url = session(moto_endpoint)

    up = subprocess.Popen([sys.executable, "-m", "bioinfra", "up", "aws", "--yes"], cwd=tmp_path, env=aws_env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    cluster_logs = tmp_path / ".bioinfra" / name / "aws" / "cluster" / "logs"

    def node_groups_started() -> bool:
        for log in cluster_logs.glob("*-apply.log") if cluster_logs.exists() else []:
            if '"apply_start"' in log.read_text() and "aws_eks_node_group" in log.read_text():
                return True
        return up.poll() is not None

    _wait_for(node_groups_started, 600, "the cluster stack to start creating node groups")
    assert up.poll() is None, up.stdout.read()
    marker = json.loads((tmp_path / ".bioinfra" / name / "aws" / "cluster" / ".bioinfra-terraform.json").read_text())
    # A hard kill: bioinfra, and Terraform with its provider (their own process group).
    os.killpg(up.pid, signal.SIGKILL)
    os.killpg(marker["terraform_pid"], signal.SIGKILL)
    up.wait()
    assert _lock_items(sess, url, "killed-tflocks"), "expected a stale lock after kill -9"

    held = cli("plan", "aws", extra_env=aws_env, timeout=600)
    assert held.returncode == ExitCode.STATE_LOCKED, held.stderr
    assert "is locked: held by" in held.stderr and "OperationTypeApply" in held.stderr

    done = cli("destroy", "aws", "--yes", extra_env=aws_env, timeout=1200)
    assert done.returncode == 0, done.stderr
    assert "clearing a stale state lock" in done.stderr
    assert_nothing_left(name, moto_endpoint)
    assert _lock_items(sess, url, "killed-tflocks") == []


def test_a_lock_held_by_someone_else_is_named_and_not_cleared(cli, aws_env, tmp_path, moto_endpoint):
    name = "held"
    write_config(tmp_path, name, "state: {backend: s3, bucket: held-tfstate, lock_table: held-tflocks}\n")
    assert cli("state", "bootstrap", extra_env=aws_env).returncode == 0
    sess, url = session(moto_endpoint)
    # The item Terraform's S3 backend writes when it takes a lock.
    info = {"ID": "11111111-2222-3333-4444-555555555555", "Operation": "OperationTypeApply", "Info": "",
            "Who": "alice@lab-42", "Version": "1.11.4", "Created": "2026-11-26T10:00:00Z",
            "Path": "held-tfstate/held/aws/network/terraform.tfstate"}
    sess.client("dynamodb", endpoint_url=url).put_item(TableName="held-tflocks", Item={
        "LockID": {"S": "held-tfstate/held/aws/network/terraform.tfstate"}, "Info": {"S": json.dumps(info)}})
    proc = cli("plan", "aws", extra_env=aws_env, timeout=600)
    assert proc.returncode == ExitCode.STATE_LOCKED, proc.stderr
    assert "stack 'network' is locked: held by alice@lab-42 (OperationTypeApply" in proc.stderr
    assert "lock ID 11111111-2222-3333-4444-555555555555" in proc.stderr
    # destroy stops at the foreign lock too, and leaves it alone: it cannot prove the holder is dead
    proc = cli("destroy", "aws", "--yes", extra_env=aws_env, timeout=600)
    assert proc.returncode == ExitCode.STATE_LOCKED, proc.stderr
    assert "held by alice@lab-42" in proc.stderr
    assert len(_lock_items(sess, url, "held-tflocks")) == 1  # never cleared: not ours


def test_ctrl_c_during_up_stops_terraform_cleanly(cli, aws_env, tmp_path, moto_endpoint):
    """SIGINT to bioinfra's process group (what a terminal's Ctrl-C sends) while the network stack is
    being applied: Terraform gets one SIGINT, saves state and releases the DynamoDB lock; exit 130."""
    name = "ctrlc"
    write_config(tmp_path, name, "state: {backend: s3, bucket: ctrlc-tfstate, lock_table: ctrlc-tflocks}\n")
    assert cli("state", "bootstrap", extra_env=aws_env).returncode == 0
    sess, url = session(moto_endpoint)
    up = subprocess.Popen([sys.executable, "-m", "bioinfra", "up", "aws", "--yes"], cwd=tmp_path, env=aws_env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    network_logs = tmp_path / ".bioinfra" / name / "aws" / "network" / "logs"

    def applying() -> bool:
        logs = list(network_logs.glob("*-apply.log")) if network_logs.exists() else []
        return any('"apply_start"' in log.read_text() for log in logs) or up.poll() is not None

    _wait_for(applying, 600, "the network stack to start applying")
    os.killpg(up.pid, signal.SIGINT)
    out, _ = up.communicate(timeout=600)
    assert up.returncode == ExitCode.INTERRUPTED, out
    assert "interrupted: Terraform stopped network cleanly" in out
    assert _lock_items(sess, url, "ctrlc-tflocks") == []  # released, not left stale
    assert not (tmp_path / ".bioinfra" / name / "aws" / "network" / ".bioinfra-terraform.json").exists()
    # Measured: a resource whose create call was in flight can still miss the state (1 run in 2 here:
    # an IAM role and a KMS key, the provider cancelled while waiting for them); destroy sweeps it.
    done = cli("destroy", "aws", "--yes", extra_env=aws_env, timeout=1200)
    assert done.returncode == 0, done.stderr
    assert_nothing_left(name, moto_endpoint)
