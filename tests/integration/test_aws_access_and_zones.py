"""Issue #18, points 3 and 7, with the real Terraform and the real AWS provider (5.100, from the local
mirror) *planning* the real-AWS rendering against moto_server.

EMULATED: AWS itself (moto_server). Only planned, never applied: moto 5.2.5 has no EKS access-entry
API (CreateAccessEntry answers 404, measured with a minimal apply) and drops a cluster's accessConfig,
so the emulator profile leaves access entries out (terraform/aws/stacks/cluster.tf.j2) and the
apply tests (test_aws_stacks.py) cannot cover them. A plan still runs everything up to the EKS calls:
the provider's schema and validation, the data sources (STS, IAM, EC2 against moto), and what each
resource would be created with. The stacks are the real-AWS rendering; the provider is pointed at moto
by AWS_ENDPOINT_URL in its environment, not by the stacks' endpoint_url variable.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import boto3
import pytest

from bioinfra.config import parse_config
from bioinfra.core.provision import render_environment
from bioinfra.targets.aws import PLACEHOLDER_OUTPUTS

pytestmark = [pytest.mark.integration, pytest.mark.aws]

ACCOUNT = "123456789012"  # moto's
LAB_ADMINS = f"arn:aws:iam::{ACCOUNT}:role/lab-admins"


@pytest.fixture
def tf_env(moto_endpoint, terraform_config, tmp_path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), **terraform_config,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": moto_endpoint, "TF_IN_AUTOMATION": "1"}


def render(folder: Path, region: str, aws: dict) -> Path:
    render_environment(parse_config({"name": "access", "target": "aws", "region": region, "aws": aws}), folder)
    assert json.loads((folder / "cluster" / "bioinfra.auto.tfvars.json").read_text())["endpoint_url"] is None
    (folder / "cluster" / "upstream.auto.tfvars.json").write_text(json.dumps({"network": PLACEHOLDER_OUTPUTS["network"]}))
    return folder


def plan(folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    init = subprocess.run(["terraform", "init", "-input=false", "-no-color"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stderr
    return subprocess.run(["terraform", "plan", "-input=false", "-no-color", "-out=tfplan"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)


def planned(folder: Path, env: dict[str, str]) -> dict[str, dict]:
    """address -> the resource's planned attributes."""
    proc = plan(folder, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    shown = subprocess.run(["terraform", "show", "-json", "tfplan"], cwd=folder, env=env, capture_output=True,
                           text=True, timeout=300, check=True)
    return {r["address"]: r["change"]["after"] for r in json.loads(shown.stdout)["resource_changes"]}


def test_the_cluster_grants_admin_to_its_creator_and_aws_admins(tmp_path, tf_env, moto_endpoint):
    """The identity running `up` is a role session (as with SSO or CI): its entry names the role, with
    its path, not the session. Each principal gets AmazonEKSClusterAdminPolicy on the whole cluster."""
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="eu-west-2",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}]}
    role = iam.create_role(RoleName="AccessAdmin", Path="/team/", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    sts = boto3.client("sts", endpoint_url=moto_endpoint, region_name="eu-west-2",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    creds = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="alice")["Credentials"]
    env = {**tf_env, "AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
           "AWS_SESSION_TOKEN": creds["SessionToken"]}

    folder = render(tmp_path, "eu-west-2", {"admins": [LAB_ADMINS]})
    after = planned(folder / "cluster", env)

    creator = f"arn:aws:iam::{ACCOUNT}:role/team/AccessAdmin"
    assert after["module.cluster.aws_eks_cluster.this"]["access_config"] == [
        {"authentication_mode": "API_AND_CONFIG_MAP", "bootstrap_cluster_creator_admin_permissions": False}]
    entries = {a: v for a, v in after.items() if ".aws_eks_access_entry." in a}
    assert {v["principal_arn"] for v in entries.values()} == {creator, LAB_ADMINS}
    assert all(v["type"] == "STANDARD" for v in entries.values())
    associations = [v for a, v in after.items() if ".aws_eks_access_policy_association." in a]
    assert sorted(v["principal_arn"] for v in associations) == sorted([creator, LAB_ADMINS])
    for association in associations:
        assert association["policy_arn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        assert association["access_scope"] == [{"namespaces": None, "type": "cluster"}]


def test_zones_skip_those_eks_refuses(tmp_path, tf_env):
    """moto's us-east-1 has six zones; us-east-1e is use1-az3, where EKS puts no control plane: five
    zones are planned without it, six are refused before anything is made, saying why."""
    folder = render(tmp_path / "five", "us-east-1", {"availability_zones": 5})
    after = planned(folder / "network", tf_env)
    zones = sorted(v["availability_zone"] for a, v in after.items() if a.startswith("module.network.aws_subnet.private"))
    assert zones == ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f"]

    folder = render(tmp_path / "six", "us-east-1", {"availability_zones": 6})
    proc = plan(folder / "network", tf_env)
    assert proc.returncode != 0
    assert "This region has 5 availability zones EKS can use" in proc.stderr
    assert "aws.availability_zones asks for 6" in proc.stderr
