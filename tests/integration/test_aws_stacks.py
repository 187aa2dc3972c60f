"""`bioinfra plan|up|destroy aws`: the real Terraform and the real AWS provider (5.100, from the
local mirror) applying the rendered stacks against moto_server.

EMULATED: AWS itself (moto_server on 127.0.0.1). Everything else is real: the CLI in a subprocess,
Terraform, the provider, boto3. Each test uses its own cluster name (moto is shared per session).

The five tests run at the same time (`scenarios` below): each is a long chain of Terraform calls
that mostly waits (on the provider's own waiters and on moto), so side by side they take about as
long as the longest one alone. Each runs in its own folder with its own environment, cluster name,
state bucket and lock table, and its own moto_server (issue #16: sharing one, two clusters' stacks
met on moto's one OIDC issuer URL, an IAM 409 no real account would give).

The full cycle is two scenarios, side by side (it was the suite's longest test, 511-551 s in CI, as
one): up_plan_destroy_leaves_nothing (up, a 0-change plan, destroy keeping a bucket with data and the
KMS key that encrypts it, destroy --force-empty-buckets taking both) and
up_adopts_a_kept_bucket_and_destroy_clears_vpc_blockers (`up` adopting a kept bucket and its key made
with boto3 as `destroy` leaves them, then destroy meeting what GuardDuty and the VPC CNI leave in the
VPC, issue #18.4). Both run with canary credentials (tests/canaries.py) and check
that they reach no file under .bioinfra/ (state, plans, tfvars, logs), and the first that they reach
no command line while `up` runs. Both moto_servers also refuse, as AWS does, to delete a VPC or a
security group something still depends on (test_aws_vpc_blockers.py: `moto_server_with_aws_rules`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from bioinfra.adaptors.aws_sweep import find_leftovers
from bioinfra.errors import ExitCode
from bioinfra.targets.aws import iam_role_name
from tests import canaries
from tests.conftest import cli_env, make_aws_env, moto_server
from tests.integration.test_aws_vpc_blockers import moto_server_with_aws_rules

pytestmark = [pytest.mark.integration, pytest.mark.aws]

REGION = "eu-west-2"
# The default results bucket carries the account id (issue #18.6): moto's default account.
MOTO_ACCOUNT = "123456789012"

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
        'aws_eks_node_group.this["general"]', 'aws_eks_node_group.this["highcpu"]', 'aws_eks_node_group.this["gpu"]',
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
    nats = ec2.describe_nat_gateways(Filter=tagged + [{"Name": "state", "Values": ["available", "pending"]}])["NatGateways"]
    # EMULATOR-ONLY: moto's DescribeNatGateways ignores tag: filters (it answers every cluster's NAT
    # gateways, and the tests share moto and run at the same time), so the tag is checked here too.
    assert [n for n in nats if {"Key": "bioinfra:cluster", "Value": name} in n.get("Tags", [])] == []
    assert ec2.describe_addresses(Filters=tagged)["Addresses"] == []
    assert ec2.describe_network_interfaces(Filters=tagged)["NetworkInterfaces"] == []
    assert name not in sess.client("eks", endpoint_url=url).list_clusters()["clusters"]
    buckets = [b["Name"] for b in sess.client("s3", endpoint_url=url).list_buckets()["Buckets"]]
    assert f"{name}-results-{MOTO_ACCOUNT}" not in buckets
    repos = sess.client("ecr", endpoint_url=url).describe_repositories()["repositories"]
    assert not [r for r in repos if r["repositoryName"].startswith(f"{name}/")]
    roles = sess.client("iam", endpoint_url=url).list_roles()["Roles"]
    assert not [r for r in roles if r["RoleName"].startswith(f"{name}-")]
    efs = sess.client("efs", endpoint_url=url).describe_file_systems()["FileSystems"]
    assert not [f for f in efs if f.get("CreationToken") == f"{name}-shared"]
    assert find_leftovers(sess, name, url) == []


# The results bucket as `destroy` leaves it when it keeps it (its objects aside): the storage stack made
# it with the stacks' default tags and these settings, and `destroy` only took it out of the state with the
# KMS key that encrypts it and the key's alias (AwsTarget.before_destroy: `terraform state rm` of
# module.storage.aws_s3_bucket* and module.storage.module.key.aws_kms_*), tagging both bioinfra:kept=<the
# UTC date>. The key must outlive the bucket: KMS deletes a key 7 days after its deletion is scheduled,
# and then no object in the bucket can be read again. The full cycle's first half checks a kept bucket
# against this; its second half builds one from it (`make_kept_bucket`).
def kept_bucket(name: str, kept_on: str) -> dict:
    stack_tags = {"bioinfra:cluster": name, "bioinfra:stack": "storage", "bioinfra:region": REGION,
                  "managed-by": "bioinfra", "bioinfra:kept": kept_on}
    return {
        # what AwsTarget.adopt_kept and the preflight's results_bucket_problem read: bioinfra:cluster
        "tags": stack_tags,
        "ownership": "BucketOwnerEnforced",
        "public_access_block": {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                                "RestrictPublicBuckets": True},
        "versioning": "Enabled",
        "encryption": ("aws:kms", True),  # the storage stack's KMS key, bucket keys on
        # (id, status, days to GLACIER_IR (aws.glacier_after_days), noncurrent expiry, multipart abort)
        "lifecycle": [("results-to-glacier", "Enabled", 90, "GLACIER_IR", 30, 7)],
        "policy": False,  # its TLS-only policy was lifted by the test (EMULATOR-ONLY, see below)
        # the key the bucket's default encryption names: there, enabled, no deletion scheduled, with the
        # storage module's alias and rotation (terraform/aws/modules/kms-key)
        "key": {"state": "Enabled", "enabled": True, "deletion_date": None, "tags": stack_tags,
                "aliases": [f"alias/{name}-storage"], "rotation": True, "usage": "ENCRYPT_DECRYPT"},
    }


def bucket_settings(sess, url: str, bucket: str) -> dict:
    """A bucket's settings in kept_bucket's shape, as S3 and KMS answer them."""
    s3, kms = sess.client("s3", endpoint_url=url), sess.client("kms", endpoint_url=url)

    def missing(call) -> bool:
        try:
            call(Bucket=bucket)
        except ClientError:
            return True
        return False

    [encryption] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    key = kms.describe_key(KeyId=encryption["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"])["KeyMetadata"]
    return {
        "tags": {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]},
        "ownership": s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"][0]["ObjectOwnership"],
        "public_access_block": s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"],
        "versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status"),
        "encryption": (encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
                       encryption.get("BucketKeyEnabled")),
        "lifecycle": [(r["ID"], r["Status"], r["Transitions"][0]["Days"], r["Transitions"][0]["StorageClass"],
                       r["NoncurrentVersionExpiration"]["NoncurrentDays"],
                       r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]) for r in rules],
        "policy": not missing(s3.get_bucket_policy),
        "key": {"state": key["KeyState"], "enabled": key["Enabled"], "deletion_date": key.get("DeletionDate"),
                "tags": {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]},
                "aliases": sorted(a["AliasName"] for a in kms.list_aliases(KeyId=key["KeyId"])["Aliases"]),
                "rotation": kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"],
                "usage": key.get("KeyUsage")},
    }


def bucket_key(sess, url: str, bucket: str) -> str:
    """The id of the KMS key the bucket's default encryption names."""
    [rule] = sess.client("s3", endpoint_url=url).get_bucket_encryption(Bucket=bucket)[
        "ServerSideEncryptionConfiguration"]["Rules"]
    arn = rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    return sess.client("kms", endpoint_url=url).describe_key(KeyId=arn)["KeyMetadata"]["KeyId"]


def storage_keys(sess, url: str, name: str) -> list[str]:
    """The storage stack's KMS keys of cluster `name` not pending deletion: one, or something was made twice."""
    kms = sess.client("kms", endpoint_url=url)
    keys = []
    for key in kms.list_keys()["Keys"]:
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]}
        state = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"]
        if tags.get("bioinfra:cluster") == name and tags.get("bioinfra:stack") == "storage" and state != "PendingDeletion":
            keys.append(key["KeyId"])
    return keys


def make_kept_bucket(sess, url: str, name: str, objects: dict[str, bytes]) -> str:
    """The results bucket of cluster `name` as a `destroy` that kept it leaves it (kept_bucket), holding
    `objects`, with its KMS key and alias: made with boto3, not by `up` and `destroy`, so the scenario
    that adopts it needs no cycle of its own first (see up_adopts_a_kept_bucket)."""
    bucket = f"{name}-results-{MOTO_ACCOUNT}"
    want = kept_bucket(name, "2026-12-01")
    s3, kms = sess.client("s3", endpoint_url=url), sess.client("kms", endpoint_url=url)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION},
                     ObjectOwnership=want["ownership"])
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in want["tags"].items()]})
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=want["public_access_block"])
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": want["versioning"]})
    # KeyUsage and KeySpec as the provider sends them. EMULATOR-ONLY: AWS answers a key's defaults, but
    # moto answers no KeyUsage for a key made without one, and the provider, reading "" after the import,
    # plans to replace the key (key_usage forces a new key): a second key, the kept one deleted.
    key = kms.create_key(Description=f"Encryption of results, shared volume and images of {name}",
                         KeyUsage=want["key"]["usage"], KeySpec="SYMMETRIC_DEFAULT",
                         Tags=[{"TagKey": k, "TagValue": v} for k, v in want["key"]["tags"].items()])["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    [alias] = want["key"]["aliases"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    algorithm, bucket_key_enabled = want["encryption"]
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm, "KMSMasterKeyID": key["Arn"]},
        "BucketKeyEnabled": bucket_key_enabled}]})
    [(rule_id, status, days, storage_class, noncurrent, abort)] = want["lifecycle"]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
        "ID": rule_id, "Status": status, "Filter": {}, "Transitions": [{"Days": days, "StorageClass": storage_class}],
        "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": abort}}]})
    for key_name, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key_name, Body=body)
    # `destroy` kept the storage stack's key with the bucket: no deletion scheduled (the defect this
    # replaces: it was, and 7 days later the bucket's objects could not be read)
    assert bucket_settings(sess, url, bucket) == want
    return bucket


def up_plan_destroy_leaves_nothing(cli, aws_env, tmp_path, moto_endpoint):
    """The full cycle's first half: up, a 0-change plan, destroy keeping a bucket with data (exit 11),
    destroy --force-empty-buckets, destroy again. Its second half, `up` adopting a kept bucket and the
    VPC blockers, is up_adopts_a_kept_bucket_and_destroy_clears_vpc_blockers (see there why)."""
    name = "cycle"
    write_config(tmp_path, name)
    # Canary credentials (moto takes any key): never in a file, a log or a command line.
    aws_env.update(AWS_ACCESS_KEY_ID=canaries.AWS_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=canaries.AWS_SECRET_KEY)
    with canaries.command_lines_watched(canaries.ALL) as command_lines:
        up = cli("up", "aws", "--yes", extra_env=aws_env, timeout=1200)
    assert up.returncode == 0, up.stderr
    assert command_lines == [], command_lines
    assert not [c for c in canaries.ALL if c in up.stdout + up.stderr]
    assert canaries.files_with([tmp_path / ".bioinfra", tmp_path / "cache"], canaries.ALL) == []
    assert f"bucket\t{name}-results-{MOTO_ACCOUNT}" in up.stdout
    assert "adopting bucket" not in up.stderr  # nothing kept to adopt: the bucket is created
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
    eks = sess.client("eks", endpoint_url=url)
    gpu = eks.describe_nodegroup(clusterName=name, nodegroupName="gpu")["nodegroup"]
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert gpu["scalingConfig"]["minSize"] == 0
    assert gpu["labels"]["k8s.amazonaws.com/accelerator"] == "nvidia-a10g"  # g5 (#18.11)
    # the spot pool repels what does not tolerate its loss (#18.8); general takes the system pods
    highcpu = eks.describe_nodegroup(clusterName=name, nodegroupName="highcpu")["nodegroup"]
    assert highcpu["taints"] == [{"key": "bioinfra.io/spot", "value": "true", "effect": "NO_SCHEDULE"}]
    assert not eks.describe_nodegroup(clusterName=name, nodegroupName="general")["nodegroup"].get("taints")
    # node groups at the control plane's version (#18.11), through the provider and the EKS API
    cluster = eks.describe_cluster(name=name)["cluster"]
    assert {eks.describe_nodegroup(clusterName=name, nodegroupName=g)["nodegroup"]["version"] for g in groups} == \
        {cluster["version"]}
    # IAM is global: every role's name carries the region, and its region tag (#18.11)
    roles = {r["RoleName"] for r in sess.client("iam", endpoint_url=url).list_roles()["Roles"]
             if r["RoleName"].startswith(f"{name}-")}
    assert roles == {iam_role_name(name, REGION, role) for role in
                     ("flow_logs", "cluster", "node", "workflow", "efs_csi", "autoscaler")}, roles
    # IRSA: each role trusts one service account of this cluster's OIDC issuer, for STS only
    iam = sess.client("iam", endpoint_url=url)
    for role, account in (("workflow", "bioinfra:bioinfra-workflow"), ("efs_csi", "kube-system:efs-csi-controller-sa"),
                          ("autoscaler", "kube-system:cluster-autoscaler")):
        got = iam.get_role(RoleName=iam_role_name(name, REGION, role))["Role"]
        assert {"Key": "bioinfra:region", "Value": REGION} in got["Tags"], role
        trust = got["AssumeRolePolicyDocument"]
        statement = trust if isinstance(trust, dict) else json.loads(trust)
        [only] = statement["Statement"]
        assert only["Action"] == "sts:AssumeRoleWithWebIdentity", role
        conditions = only["Condition"]["StringEquals"]
        assert {k.rsplit(":", 1)[1]: v for k, v in conditions.items()} == {
            "sub": f"system:serviceaccount:{account}", "aud": "sts.amazonaws.com"}, role

    # a second plan shows no changes (--verbose adds Terraform's own plan text per stack)
    plan = cli("plan", "aws", "--verbose", extra_env=aws_env, timeout=600)
    assert plan.returncode == 0, plan.stderr
    for stack in EXPECTED:
        assert f"{stack:<10} +0 add  ~0 change  -0 destroy" in plan.stdout, plan.stdout
    assert "total      0 change(s)" in plan.stdout
    assert plan.stdout.count("No changes.") == 3, plan.stdout

    # results are never deleted silently: a bucket with data is kept and reported (exit 11)
    bucket = f"{name}-results-{MOTO_ACCOUNT}"
    s3 = sess.client("s3", endpoint_url=url)
    # The bucket policy denies requests without TLS, and moto enforces it on its plain-HTTP endpoint:
    # EMULATOR-ONLY step, lift that policy so this test (and the sweep) can write and empty the bucket.
    assert "aws:SecureTransport" in s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="run-1/multiqc_report.html", Body=b"<html/>")
    key = bucket_key(sess, url, bucket)
    days = {time.strftime("%Y-%m-%d", time.gmtime())}
    kept = cli("destroy", "aws", "--yes", extra_env=aws_env, timeout=1200)
    days.add(time.strftime("%Y-%m-%d", time.gmtime()))
    assert kept.returncode == ExitCode.LEFTOVERS, kept.stderr
    assert f"s3-bucket {bucket}" in kept.stderr and "--force-empty-buckets" in kept.stderr
    # the key that encrypts it is kept with it, said so, and reported with it (not scheduled for deletion)
    assert f"keeping bucket {bucket}: it has 1 object versions; keeping its KMS key {key} (alias/{name}-storage)" \
        in kept.stderr, kept.stderr
    assert f"kms-key {key} (enabled, encrypts s3-bucket {bucket})" in kept.stderr
    assert s3.get_object(Bucket=bucket, Key="run-1/multiqc_report.html")["Body"].read() == b"<html/>"
    # EFS, ECR and the rest of the storage stack are gone (destroyed with the key staying): only these remain
    assert [(lo.kind, lo.id) for lo in find_leftovers(sess, name, url)] == [
        ("s3-bucket", bucket), ("kms-alias", f"alias/{name}-storage"), ("kms-key", key)]
    # kept as it was, settings, tags and key: what the adopting scenario starts from (make_kept_bucket)
    settings = bucket_settings(sess, url, bucket)
    assert settings["tags"].get("bioinfra:kept") in days
    assert settings == kept_bucket(name, settings["tags"]["bioinfra:kept"])

    # with --force-empty-buckets the kept bucket goes too (out of every state now: the sweep empties
    # and deletes it), and then its key (deletion scheduled, the stacks' 7 days); re-running is safe
    done = cli("destroy", "aws", "--yes", "--force-empty-buckets", extra_env=aws_env, timeout=1200)
    assert done.returncode == 0, done.stderr
    assert f"deleted s3-bucket {bucket} (stack storage; emptied 1 object versions" in done.stderr, done.stderr
    assert "kept by an earlier destroy" in done.stderr and "interrupted apply" not in done.stderr, done.stderr
    assert f"deleted kms-key {key} (stack storage; deletion scheduled in 7 days)" in done.stderr, done.stderr
    assert done.stderr.index(f"deleted s3-bucket {bucket}") < done.stderr.index(f"deleted kms-key {key}")
    kms = sess.client("kms", endpoint_url=url)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert kms.list_aliases(KeyId=key)["Aliases"] == []
    assert "removing what blocks" not in done.stderr  # nothing but our own stacks were in the VPC
    assert_nothing_left(name, moto_endpoint)
    again = cli("destroy", "aws", "--yes", extra_env=aws_env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "deleted " not in again.stderr  # nothing left to sweep
    assert_nothing_left(name, moto_endpoint)
    assert canaries.files_with([tmp_path / ".bioinfra", tmp_path / "cache"], canaries.ALL) == []


def up_adopts_a_kept_bucket_and_destroy_clears_vpc_blockers(cli, aws_env, tmp_path, moto_endpoint):
    """The full cycle's second half: `up` adopts a kept results bucket (an import) with its data, then
    `destroy --force-empty-buckets` clears GuardDuty's and the VPC CNI's leftovers from the VPC before
    the network stack (#18.4) and leaves nothing; `destroy` again is a no-op.

    Its kept bucket is made with boto3 (make_kept_bucket), not by an `up` and a `destroy` of its own:
    up_plan_destroy_leaves_nothing shows that `destroy` keeps a bucket with data and checks the kept
    bucket against the same description (kept_bucket); this one shows that `up` adopts such a bucket.
    As one scenario (up, destroy, up, destroy) it was the suite's longest test (511-551 s in CI); as
    two side by side each is about half of it."""
    name = "adopt"
    write_config(tmp_path, name)
    # Canary credentials here too: this `up` imports, and its files are checked at the end.
    aws_env.update(AWS_ACCESS_KEY_ID=canaries.AWS_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=canaries.AWS_SECRET_KEY)
    sess, url = session(moto_endpoint)
    bucket = make_kept_bucket(sess, url, name, {"run-1/multiqc_report.html": b"<html/>"})
    s3, ec2 = sess.client("s3", endpoint_url=url), sess.client("ec2", endpoint_url=url)

    key = bucket_key(sess, url, bucket)

    # `up` adopts the kept bucket and its key and alias (imports), with its data, instead of failing on the
    # name: the re-created stack encrypts with the same key, and nothing is made twice
    up = cli("up", "aws", "--yes", extra_env=aws_env, timeout=1200)
    assert up.returncode == 0, up.stderr
    assert f"adopting bucket {bucket} with its KMS key {key} (alias/{name}-storage)" in up.stderr, up.stderr
    assert not [c for c in canaries.ALL if c in up.stdout + up.stderr]
    env_dir = tmp_path / ".bioinfra" / name / "aws"
    assert {"module.storage.aws_s3_bucket.results", "module.storage.module.key.aws_kms_key.this",
            "module.storage.module.key.aws_kms_alias.this"} <= state_list(env_dir / "storage", aws_env)
    assert bucket_key(sess, url, bucket) == key and storage_keys(sess, url, name) == [key]
    adopted = bucket_settings(sess, url, bucket)
    assert adopted["key"]["state"] == "Enabled" and adopted["key"]["aliases"] == [f"alias/{name}-storage"]
    # back in Terraform's hands: the kept mark is gone (default_tags only)
    assert "bioinfra:kept" not in adopted["tags"] and "bioinfra:kept" not in adopted["key"]["tags"]
    s3.delete_bucket_policy(Bucket=bucket)  # EMULATOR-ONLY again: `up` put the TLS-only policy back
    assert s3.get_object(Bucket=bucket, Key="run-1/multiqc_report.html")["Body"].read() == b"<html/>"

    # Issue #18.4: what GuardDuty and the VPC CNI put in the VPC without our tags (a GuardDuty endpoint
    # and its group, an ENI a node left) blocks the network stack's destroy (this moto refuses as AWS
    # does: moto_server_with_aws_rules). Without the clearing (measured once, clear_vpc_blockers stubbed
    # out in the CLI's process): moto answers Terraform's VPC delete with DependencyViolation every 10 s,
    # the provider keeps retrying ("Still destroying... [17m40s elapsed]"), and `destroy` had not
    # finished after 1200 s.
    [vpc_id] = [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "tag:bioinfra:cluster", "Values": [name]}])["Vpcs"]]
    in_vpc = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    gd_sg = ec2.create_security_group(GroupName=f"GuardDutyManagedSecurityGroup-{vpc_id}", Description="GuardDuty",
                                      VpcId=vpc_id)["GroupId"]
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc_id, ServiceName=f"com.amazonaws.{REGION}.guardduty-data", VpcEndpointType="Interface",
        SubnetIds=[s["SubnetId"] for s in in_vpc][:2], SecurityGroupIds=[gd_sg])["VpcEndpoint"]["VpcEndpointId"]
    eni = ec2.create_network_interface(SubnetId=in_vpc[-1]["SubnetId"], Description="aws-K8S-i-0123456789abcdef0")[
        "NetworkInterface"]["NetworkInterfaceId"]
    # AWS's rules are in force in this moto (moto alone deletes a VPC with a security group in it).
    probe = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="probe", Description="probe", VpcId=probe)["GroupId"]
    with pytest.raises(ClientError, match="DependencyViolation"):
        ec2.delete_vpc(VpcId=probe)
    ec2.delete_security_group(GroupId=group)
    ec2.delete_vpc(VpcId=probe)

    # with --force-empty-buckets the adopted bucket, back in the state, is emptied and destroyed
    done = cli("destroy", "aws", "--yes", "--force-empty-buckets", extra_env=aws_env, timeout=1200)
    assert done.returncode == 0, done.stderr
    assert f"emptying bucket {bucket}" in done.stderr
    for line in (f"deleted vpc-endpoint {endpoint}", f"deleted network-interface {eni}", f"deleted security-group {gd_sg}"):
        assert line in done.stderr and done.stderr.index(line) < done.stderr.index("stack network: destroyed"), done.stderr
    assert ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]["State"] == "deleted"
    # the adopted key went with its stack: Terraform scheduled its deletion
    assert sess.client("kms", endpoint_url=url).describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert_nothing_left(name, moto_endpoint)
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"] == []
    again = cli("destroy", "aws", "--yes", extra_env=aws_env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "removing what blocks" not in again.stderr
    assert canaries.files_with([tmp_path / ".bioinfra", tmp_path / "cache"], canaries.ALL) == []


def _wait_for(predicate, timeout: float, what: str) -> None:
    # Polled often: moto creates a node group at once, so the kill -9 below has about a second
    # between the node groups' apply_start and the end of the cluster stack's apply.
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _logs_tail(folder: Path) -> str:
    """The end of every Terraform log of a stack, for a failure message."""
    logs = sorted(folder.glob("*.log")) if folder.exists() else []
    return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs) or f"(no logs in {folder})"


def _lock_items(sess, url: str, table: str) -> list[dict]:
    items = sess.client("dynamodb", endpoint_url=url).scan(TableName=table)["Items"]
    return [i for i in items if "Info" in i]  # digest items ("...-md5") are not locks


def up_killed_mid_apply_then_destroy(cli, aws_env, tmp_path, moto_endpoint):
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

    up = subprocess.Popen([*cli.argv, "up", "aws", "--yes"], cwd=tmp_path, env=aws_env,
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


def a_lock_held_by_someone_else_is_named_and_not_cleared(cli, aws_env, tmp_path, moto_endpoint):
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


def ctrl_c_during_up_stops_terraform_cleanly(cli, aws_env, tmp_path, moto_endpoint):
    """SIGINT to bioinfra's process group (what a terminal's Ctrl-C sends) while the network stack is
    being applied: Terraform gets one SIGINT, saves state and releases the DynamoDB lock; exit 130."""
    name = "ctrlc"
    write_config(tmp_path, name, "state: {backend: s3, bucket: ctrlc-tfstate, lock_table: ctrlc-tflocks}\n")
    assert cli("state", "bootstrap", extra_env=aws_env).returncode == 0
    sess, url = session(moto_endpoint)
    up = subprocess.Popen([*cli.argv, "up", "aws", "--yes"], cwd=tmp_path, env=aws_env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    network_logs = tmp_path / ".bioinfra" / name / "aws" / "network" / "logs"

    def applying() -> bool:
        logs = list(network_logs.glob("*-apply.log")) if network_logs.exists() else []
        return any('"apply_start"' in log.read_text() for log in logs) or up.poll() is not None

    _wait_for(applying, 600, "the network stack to start applying")
    if up.poll() is not None:  # it ended before there was anything to interrupt: say why
        pytest.fail(f"up ended (exit {up.returncode}) before the network stack began applying:\n"
                    f"{up.communicate()[0]}\n{_logs_tail(network_logs)}")
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


# ---------------------------------------------------------------------------------------------
# The tests: each scenario above runs in a thread of its own, all five started together by the
# module's first test; each test waits for its own scenario and fails with its assertion.


class Cli:
    """The `cli` fixture's runner (conftest), for one scenario: `bioinfra ARGS` in its folder with
    its environment. `argv` is the command prefix, also for the scenarios' own Popen of `up`.

    Scenarios off the critical path run under `nice`: the full cycle's two halves take longest, so they
    get the CPU first (2 cores here, and a Terraform plan is mostly CPU-bound provider start-up) and the
    others use what it leaves while it waits. `nice` execs the CLI: same pid, same process group.
    """

    def __init__(self, folder: Path, env: dict[str, str], niceness: int, cancelled: threading.Event):
        self.folder = folder
        self.env = env
        self.argv = [*(["nice", "-n", str(niceness)] if niceness else []), sys.executable, "-m", "bioinfra"]
        self.cancelled = cancelled

    def __call__(self, *args: str, cwd: Path | None = None, check: bool | None = None, extra_env: dict | None = None,
                 timeout=600) -> subprocess.CompletedProcess:
        if self.cancelled.is_set():  # the session is stopping (-x, Ctrl-C): start nothing new
            raise RuntimeError("cancelled: the test session is stopping")
        proc = subprocess.run([*self.argv, *args], cwd=cwd or self.folder, env={**self.env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, f"bioinfra {' '.join(args)} exited {proc.returncode}\n{proc.stderr}"
        return proc


# name of the test -> (scenario, niceness of its processes)
SCENARIOS: dict[str, tuple[Callable[..., None], int]] = {
    "test_up_plan_destroy_leaves_nothing": (up_plan_destroy_leaves_nothing, 0),
    "test_up_adopts_a_kept_bucket_and_destroy_clears_vpc_blockers": (
        up_adopts_a_kept_bucket_and_destroy_clears_vpc_blockers, 0),
    "test_up_killed_mid_apply_then_destroy": (up_killed_mid_apply_then_destroy, 10),
    "test_ctrl_c_during_up_stops_terraform_cleanly": (ctrl_c_during_up_stops_terraform_cleanly, 10),
    "test_a_lock_held_by_someone_else_is_named_and_not_cleared": (a_lock_held_by_someone_else_is_named_and_not_cleared, 10),
}

# The scenarios whose moto_server refuses deletes as AWS does (test_aws_vpc_blockers.py).
WITH_AWS_RULES = {"test_up_plan_destroy_leaves_nothing", "test_up_adopts_a_kept_bucket_and_destroy_clears_vpc_blockers"}


class Scenarios:
    """Starts the scenarios of the selected tests at once; `result(test)` waits for one."""

    def __init__(self, tmp_path_factory, matplotlib_cache: str, terraform_config: dict[str, str]):
        self.tmp_path_factory = tmp_path_factory
        self.matplotlib_cache = matplotlib_cache
        self.terraform_config = terraform_config
        self.cancelled = threading.Event()
        self.futures: dict[str, Future] = {}
        self.seconds: dict[str, float] = {}
        self.pool = ThreadPoolExecutor(max_workers=len(SCENARIOS), thread_name_prefix="aws-scenario")

    def start(self, test: str) -> None:
        if test in self.futures:
            return
        scenario, niceness = SCENARIOS[test]
        # What the function-scoped fixtures gave the test: its own tmp_path, `env` (a private cache),
        # `aws_env` on top of it, and `cli` running with that environment in tmp_path.
        tmp_path = self.tmp_path_factory.mktemp(test.removeprefix("test_")[:30], numbered=True)

        def run() -> None:
            started = time.monotonic()
            try:
                server = moto_server_with_aws_rules if test in WITH_AWS_RULES else moto_server
                with server(tmp_path / "moto") as moto_endpoint:  # its own AWS: nothing shared
                    aws_env = make_aws_env(cli_env(tmp_path / "cache", self.matplotlib_cache), moto_endpoint,
                                           self.terraform_config, tmp_path / "home")
                    # A plugin cache of its own (an entry is only a link into the mirror, so this costs
                    # nothing): with one cache for the four concurrent scenarios, a `terraform output`
                    # of one twice found "no package for hashicorp/aws 5.100.0 cached in
                    # .terraform/providers" while the others initialised (two runs of 2026-12-06; each
                    # scenario alone passes). Concurrent bioinfra projects on one machine still share
                    # ~/.cache/bioinfra/terraform-plugins: docs/troubleshooting.md.
                    aws_env["TF_PLUGIN_CACHE_DIR"] = str(tmp_path / "plugin-cache")
                    cli = Cli(tmp_path, aws_env, niceness, self.cancelled)
                    scenario(cli, aws_env, tmp_path, moto_endpoint)
            finally:
                self.seconds[test] = time.monotonic() - started

        self.futures[test] = self.pool.submit(run)

    def result(self, test: str) -> float:
        """Waits for the test's scenario; re-raises its failure; returns its own wall time."""
        self.start(test)
        self.futures[test].result()
        return self.seconds[test]


@pytest.fixture(scope="module")
def scenarios(request, tmp_path_factory, matplotlib_cache, terraform_config):
    runner = Scenarios(tmp_path_factory, matplotlib_cache, terraform_config)
    selected = [item.originalname for item in request.session.items
                if getattr(item, "module", None) is request.module and item.originalname in SCENARIOS]
    for test in sorted(selected, key=lambda t: SCENARIOS[t][1]):  # the critical path first
        runner.start(test)
    yield runner
    if request.session.shouldstop or request.session.shouldfail:
        runner.cancelled.set()  # each scenario stops after the CLI call it is in
    runner.pool.shutdown(wait=True)


def _run(scenarios: Scenarios, request) -> None:
    seconds = scenarios.result(request.node.originalname)
    request.node.user_properties.append(("scenario_seconds", round(seconds, 1)))
    print(f"{request.node.originalname}: scenario took {seconds:.1f}s (run concurrently with the others)")


def test_up_plan_destroy_leaves_nothing(scenarios, request):
    """up, a 0-change plan, destroy keeping a bucket with data (exit 11), destroy
    --force-empty-buckets leaving nothing, destroy again: `up_plan_destroy_leaves_nothing`."""
    _run(scenarios, request)


def test_up_adopts_a_kept_bucket_and_destroy_clears_vpc_blockers(scenarios, request):
    """up adopting a kept bucket with its data, destroy --force-empty-buckets clearing GuardDuty's and
    the VPC CNI's leftovers before the network stack and leaving nothing, destroy again:
    `up_adopts_a_kept_bucket_and_destroy_clears_vpc_blockers`."""
    _run(scenarios, request)


def test_up_killed_mid_apply_then_destroy(scenarios, request):
    """kill -9 while node groups are created, then destroy clears our stale lock and every leftover:
    `up_killed_mid_apply_then_destroy`."""
    _run(scenarios, request)


def test_ctrl_c_during_up_stops_terraform_cleanly(scenarios, request):
    """Ctrl-C while the network stack is applied: one SIGINT, state saved, lock released, exit 130:
    `ctrl_c_during_up_stops_terraform_cleanly`."""
    _run(scenarios, request)


def test_a_lock_held_by_someone_else_is_named_and_not_cleared(scenarios, request):
    """A foreign lock stops plan and destroy and is never cleared:
    `a_lock_held_by_someone_else_is_named_and_not_cleared`."""
    _run(scenarios, request)
