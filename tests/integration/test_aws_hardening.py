"""Issue #18 point 11 on AWS against moto_server (real boto3 and the real AWS provider over HTTP):
what the full cycle (test_aws_stacks.py) cannot show because moto drops it, and the sweep's region tag.

Stand-in, named: AWS is moto_server (`moto_endpoint`). moto 5.2.5 ignores upgradePolicy on
CreateCluster and never returns it, so the stacks leave it off against an endpoint (EMULATOR-ONLY in
terraform/aws/stacks/cluster.tf.j2); here the provider only *plans* it, which is as far as moto can
take it: that EKS then reports STANDARD is not checked here.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from bioinfra.config import parse_config
from bioinfra.core.provision import render_environment
from bioinfra.targets.aws import PLACEHOLDER_OUTPUTS, iam_role_name

pytestmark = [pytest.mark.integration, pytest.mark.aws]

EMULATOR_POLICY = 'upgrade_support_type = var.endpoint_url == null ? "STANDARD" : null'


def test_the_provider_plans_standard_support_and_node_groups_at_the_clusters_version(
        tmp_path, moto_endpoint, terraform_config):
    """The cluster stack as real AWS gets it (upgrade_support_type STANDARD), planned by hashicorp/aws
    5.100.0 against moto: the cluster's upgrade_policy, every node group at the cluster's version, and
    the role names with the region. Plan only: moto would drop the policy on apply."""
    name = "hard18-plan"
    config = parse_config({"name": name, "target": "aws", "region": "eu-west-2",
                           "aws": {"endpoint_url": moto_endpoint, "kubernetes_version": "1.34"}})
    render_environment(config, tmp_path)
    folder = tmp_path / "cluster"
    main = folder / "main.tf"
    assert main.read_text().count(EMULATOR_POLICY) == 1
    main.write_text(main.read_text().replace(EMULATOR_POLICY, 'upgrade_support_type = "STANDARD"'))
    (folder / "upstream.auto.tfvars.json").write_text(json.dumps({"network": PLACEHOLDER_OUTPUTS["network"]}))
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), **terraform_config,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true",
           "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}

    def terraform(*args: str) -> str:
        proc = subprocess.run(["terraform", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    terraform("init", "-input=false", "-no-color")
    terraform("plan", "-input=false", "-no-color", "-out=plan.bin")
    changes = {c["address"]: c["change"]["after"] for c in json.loads(terraform("show", "-json", "plan.bin"))[
        "resource_changes"]}
    cluster = changes["module.cluster.aws_eks_cluster.this"]
    assert cluster["upgrade_policy"] == [{"support_type": "STANDARD"}]
    assert cluster["version"] == "1.34"
    groups = {address: after for address, after in changes.items() if address.startswith("aws_eks_node_group.this[")}
    assert len(groups) == 2 and {after["version"] for after in groups.values()} == {"1.34"}
    assert changes["module.cluster.aws_iam_role.cluster"]["name"] == iam_role_name(name, "eu-west-2", "cluster")
    assert changes["module.cluster.aws_iam_role.node"]["name"] == "hard18-plan-eu-west-2-node"


# -- the sweep leaves another region's IAM alone (moto) ---------------------------------------------------


def test_the_sweep_of_one_region_leaves_another_regions_roles(moto_endpoint, monkeypatch):
    """With role names per region, `demo` can live in two regions of one account; IAM is global, so the
    destroy of one (its final sweep lists the account's roles) must not take the other's roles and OIDC
    provider. Stand-in, named: AWS is a moto_server (real boto3 over HTTP). Roles from before the region
    tag (none) are still found, as before."""
    import boto3

    from bioinfra.adaptors.aws_sweep import find_leftovers

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    name = "hard18-sweep"
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="eu-west-2")
    iam = session.client("iam", endpoint_url=moto_endpoint)
    assume = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})

    def tags(region: str | None) -> list[dict[str, str]]:
        found = {"bioinfra:cluster": name, "bioinfra:stack": "cluster"}
        if region:
            found["bioinfra:region"] = region
        return [{"Key": k, "Value": v} for k, v in found.items()]

    for region in ("eu-west-2", "us-east-1"):
        iam.create_role(RoleName=iam_role_name(name, region, "cluster"), AssumeRolePolicyDocument=assume,
                        Tags=tags(region))
    iam.create_role(RoleName=f"{name}-node", AssumeRolePolicyDocument=assume, Tags=tags(None))  # before #18
    virginia = iam.create_open_id_connect_provider(
        Url="https://oidc.eks.us-east-1.amazonaws.com/id/HARD18", ClientIDList=["sts.amazonaws.com"],
        Tags=tags("us-east-1"))["OpenIDConnectProviderArn"]
    london = iam.create_open_id_connect_provider(
        Url="https://oidc.eks.eu-west-2.amazonaws.com/id/HARD18", ClientIDList=["sts.amazonaws.com"],
        Tags=tags("eu-west-2"))["OpenIDConnectProviderArn"]
    found = find_leftovers(session, name, moto_endpoint)
    assert {item.id for item in found if item.kind == "iam-role"} == \
        {iam_role_name(name, "eu-west-2", "cluster"), f"{name}-node"}
    assert {item.id for item in found if item.kind == "iam-oidc-provider"} == {london}
    assert virginia not in {item.id for item in found}
