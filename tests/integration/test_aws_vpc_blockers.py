"""Issue #18 point 4: `destroy aws` stuck on what sits in the cluster's VPC without our tags.

A GuardDuty VPC endpoint (`com.amazonaws.<region>.guardduty-data`) and its GuardDuty-managed security
group, and an ENI the VPC CNI leaked (`aws-K8S-...`, available), make AWS refuse the network stack's
subnet, security-group and VPC deletes with DependencyViolation; the final sweep runs after that stack,
so it never gets there. `clear_vpc_blockers` (run by the aws target before the network stack's destroy)
removes them first.

Stand-ins, named: AWS is moto 5.2.5's server, in this process on its own loopback port per test
(ThreadedMotoServer), so that AWS's dependency rules can be added to it. moto alone refuses a VPC's
deletion only while it has subnets, a non-main route table or a VPN gateway; it deletes a subnet that
still holds ENIs, a security group an ENI uses or another group's rule names, and a VPC with endpoints
or non-default groups in it. `aws_dependency_rules` adds exactly those refusals, with AWS's error code
(DependencyViolation), and `test_moto_alone_models_only_subnets` records what moto models without them.
The endpoint's ENI: in AWS it is requester-managed and AWS removes it after the endpoint; moto removes
it with the endpoint at once.

The real `bioinfra up aws` / `destroy aws` through Terraform with these blockers in the VPC is part of
the full cycle in test_aws_stacks.py (its moto_server runs with these rules: `moto_server_with_aws_rules`),
so that the stacks are applied once for both (CI time: a separate up/destroy here took 214 s).
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from bioinfra.adaptors import aws_sweep
from bioinfra.adaptors.aws_sweep import clear_vpc_blockers
from tests.conftest import REPO, free_port, moto_server

REGION = "eu-west-2"
CLUSTER = "blocked"


@pytest.fixture
def moto_url(monkeypatch) -> Iterator[str]:
    """A moto server of this test's own on 127.0.0.1 (EMULATED: AWS is unreachable here), reset first
    (moto's backends live in the process)."""
    from moto.server import ThreadedMotoServer

    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", REGION)):
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(aws_sweep, "RETRY_SECONDS", 5)  # a refusal that never clears fails in seconds
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST"), timeout=10).close()
        yield url
    finally:
        server.stop()


@pytest.fixture
def aws_dependency_rules(monkeypatch) -> None:
    """AWS's DependencyViolation refusals that moto lacks (see the module docstring): a subnet with ENIs
    in it; a security group used by an ENI or named in another group's rule; a VPC with live endpoints
    or non-default security groups."""
    add_dependency_rules(monkeypatch, subnets=True)


def add_dependency_rules(monkeypatch, *, subnets: bool) -> None:
    """The rules above; without `subnets` for the full stacks, whose NAT gateway's ENI moto keeps (as an
    available interface) after the gateway is deleted, which the subnet rule would then wrongly count."""
    from moto.ec2.exceptions import DependencyViolationError
    from moto.ec2.models import EC2Backend

    delete_subnet, delete_group, delete_vpc = (EC2Backend.delete_subnet, EC2Backend.delete_security_group,
                                               EC2Backend.delete_vpc)

    def strict_delete_subnet(self, subnet_id):
        if self.get_all_network_interfaces(filters={"subnet-id": [subnet_id]}):
            raise DependencyViolationError(f"The subnet '{subnet_id}' has dependencies and cannot be deleted.")
        return delete_subnet(self, subnet_id)

    def strict_delete_group(self, name=None, group_id=None):
        group = self.get_security_group_from_id(group_id) if group_id else None
        if group is not None and group.name != "default":
            others = [g for groups in self.groups.values() for g in groups.values() if g.id != group_id]
            named = any(pair.get("GroupId") == group_id for g in others
                        for rule in g.ingress_rules + g.egress_rules if (pair := rule.source_group or {}))
            if named or self.get_all_network_interfaces(filters={"group-id": [group_id]}):
                raise DependencyViolationError(f"resource {group_id} has a dependent object")
        return delete_group(self, name=name, group_id=group_id)

    def strict_delete_vpc(self, vpc_id):
        live = [e for e in self.describe_vpc_endpoints(None, filters={"vpc-id": [vpc_id]}) if e.state != "deleted"]
        groups = [g for g in self.groups.get(vpc_id, {}).values() if g.name != "default"]
        if live or groups:
            raise DependencyViolationError(f"The vpc '{vpc_id}' has dependencies and cannot be deleted.")
        return delete_vpc(self, vpc_id)

    if subnets:
        monkeypatch.setattr(EC2Backend, "delete_subnet", strict_delete_subnet)
    monkeypatch.setattr(EC2Backend, "delete_security_group", strict_delete_group)
    monkeypatch.setattr(EC2Backend, "delete_vpc", strict_delete_vpc)


def serve_with_aws_rules(port: int) -> None:
    """moto_server with AWS's rules (subnets=False, as for the full stacks), in this process: the body of
    the process `moto_server_with_aws_rules` starts."""
    from moto.server import main

    add_dependency_rules(pytest.MonkeyPatch(), subnets=False)
    main(["-H", "127.0.0.1", "-p", str(port)])


@contextmanager
def moto_server_with_aws_rules(log_dir: Path) -> Iterator[str]:
    """As conftest.moto_server (EMULATED: AWS; a process of its own on 127.0.0.1, managed IAM policies
    loaded), with AWS's DependencyViolation rules for security groups and the VPC added; yields its URL."""
    def argv(port: int) -> list[str]:
        code = f"from tests.integration.test_aws_vpc_blockers import serve_with_aws_rules; serve_with_aws_rules({port})"
        return [sys.executable, "-c", code]

    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    with moto_server(log_dir, argv, {"PYTHONPATH": path}) as url:
        yield url


def _session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


def _tags(**tags: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _spec(kind: str, tags: list[dict[str, str]]) -> list[dict]:
    return [{"ResourceType": kind, "Tags": tags}] if tags else []


def _code(call) -> str:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return "ok"


def _vpc(ec2, cidr: str, tags: list[dict[str, str]]) -> dict[str, str]:
    """A VPC as the network stack makes it (tagged: Terraform's subnets, endpoint security group and ECR
    interface endpoint), plus what GuardDuty and the VPC CNI leave in it untagged."""
    ids: dict[str, str] = {}
    vpc = ids["vpc"] = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=_spec("vpc", tags))["Vpc"]["VpcId"]
    prefix = cidr.rsplit(".", 2)[0]
    ids["subnet_a"], ids["subnet_b"] = (
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"{prefix}.{i * 16}.0/20", AvailabilityZone=f"{REGION}{zone}",
                          TagSpecifications=_spec("subnet", tags))["Subnet"]["SubnetId"]
        for i, zone in ((0, "a"), (1, "b")))
    subnets = [ids["subnet_a"], ids["subnet_b"]]
    ours = ids["sg"] = ec2.create_security_group(GroupName="endpoints", Description="https from the VPC", VpcId=vpc,
                                                 TagSpecifications=_spec("security-group", tags))["GroupId"]
    ids["ecr_endpoint"] = ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.ecr.api", VpcEndpointType="Interface", SubnetIds=subnets,
        SecurityGroupIds=[ours], TagSpecifications=_spec("vpc-endpoint", tags))["VpcEndpoint"]["VpcEndpointId"]
    # GuardDuty Runtime Monitoring: its group allows 443 from the VPC; here it also names ours and ours
    # names it, the references that make AWS refuse to delete either.
    gd = ids["gd_sg"] = ec2.create_security_group(GroupName=f"GuardDutyManagedSecurityGroup-{vpc}",
                                                  Description="Associated with VPC-" + vpc, VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gd, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": cidr}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": ours}]}])
    ec2.authorize_security_group_ingress(GroupId=ours, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": gd}]}])
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.guardduty-data", VpcEndpointType="Interface",
        SubnetIds=subnets, SecurityGroupIds=[gd], PrivateDnsEnabled=True)["VpcEndpoint"]
    ids["gd_endpoint"] = endpoint["VpcEndpointId"]
    ids["gd_enis"] = endpoint["NetworkInterfaceIds"]
    # A node's secondary ENI the VPC CNI never freed (the node went first).
    ids["cni_eni"] = ec2.create_network_interface(
        SubnetId=ids["subnet_b"], Description="aws-K8S-i-0123456789abcdef0", TagSpecifications=_spec(
            "network-interface", _tags(**{"cluster.k8s.amazonaws.com/name": CLUSTER, "node.k8s.amazonaws.com/instance_id":
                                          "i-0123456789abcdef0"})))["NetworkInterface"]["NetworkInterfaceId"]
    return ids


def _terraform_destroy(ec2, ids: dict[str, str]) -> None:
    """The network stack's destroy, in Terraform's order: what it made, then the subnets, its group, the VPC."""
    ec2.delete_vpc_endpoints(VpcEndpointIds=[ids["ecr_endpoint"]])
    for subnet in (ids["subnet_a"], ids["subnet_b"]):
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_security_group(GroupId=ids["sg"])
    ec2.delete_vpc(VpcId=ids["vpc"])


def test_moto_alone_models_only_subnets(moto_url):
    """What moto 5.2.5 refuses by itself: a VPC with subnets (DependencyViolation). The untagged endpoint,
    group and ENI block nothing there, which is why the tests below add AWS's rules."""
    ec2 = _session().client("ec2", endpoint_url=moto_url)
    ids = _vpc(ec2, "10.20.0.0/16", _tags(**{"bioinfra:cluster": CLUSTER, "bioinfra:stack": "network"}))
    assert _code(lambda: ec2.delete_vpc(VpcId=ids["vpc"])) == "DependencyViolation"  # its subnets
    _terraform_destroy(ec2, ids)  # moto lets every step through; AWS would refuse the subnets and the VPC
    [endpoint] = ec2.describe_vpc_endpoints(VpcEndpointIds=[ids["gd_endpoint"]])["VpcEndpoints"]
    assert endpoint["State"] == "available"  # left behind in a VPC that no longer exists


def test_clearing_unblocks_the_vpc_and_touches_nothing_else(moto_url, aws_dependency_rules):
    session = _session()
    ec2 = session.client("ec2", endpoint_url=moto_url)
    ours = _vpc(ec2, "10.20.0.0/16", _tags(**{"bioinfra:cluster": CLUSTER, "bioinfra:stack": "network",
                                             "managed-by": "bioinfra"}))
    # The same things in a VPC of nobody's and in another cluster's: never touched.
    nobody = _vpc(ec2, "10.30.0.0/16", [])
    other = _vpc(ec2, "10.40.0.0/16", _tags(**{"bioinfra:cluster": "other", "bioinfra:stack": "network"}))

    # Before the fix: the network stack's destroy stops at the first subnet, and so does every re-run.
    for _ in range(2):
        assert _code(lambda: _terraform_destroy(ec2, ours)) == "DependencyViolation"
    assert _code(lambda: ec2.delete_security_group(GroupId=ours["gd_sg"])) == "DependencyViolation"
    assert _code(lambda: ec2.delete_vpc(VpcId=ours["vpc"])) == "DependencyViolation"

    lines: list[str] = []
    result = clear_vpc_blockers(session, CLUSTER, say=lines.append, endpoint_url=moto_url)

    assert result.failed == []
    assert [(x.kind, x.id) for x in result.deleted] == [
        ("vpc-endpoint", ours["gd_endpoint"]), ("network-interface", ours["cni_eni"]),
        ("security-group", ours["gd_sg"])]
    vpc = ours["vpc"]
    assert lines == [
        f"VPC {vpc}: removing what blocks its deletion and is not Terraform's: vpc-endpoint {ours['gd_endpoint']} "
        f"(com.amazonaws.{REGION}.guardduty-data)",
        f"deleted vpc-endpoint {ours['gd_endpoint']}",
        f"VPC {vpc}: removing what blocks its deletion and is not Terraform's: network-interface {ours['cni_eni']} "
        "(aws-K8S-i-0123456789abcdef0)",
        f"deleted network-interface {ours['cni_eni']}",
        f"VPC {vpc}: removing what blocks its deletion and is not Terraform's: security-group {ours['gd_sg']} "
        f"(GuardDutyManagedSecurityGroup-{vpc})",
        f"deleted security-group {ours['gd_sg']}",
    ]
    # Terraform's own subnets and group are still there, for Terraform to delete (its endpoint went in
    # the failed destroys above), and so is the rule the group has of its own.
    assert len(ec2.describe_subnets(SubnetIds=[ours["subnet_a"], ours["subnet_b"]])["Subnets"]) == 2
    [group] = ec2.describe_security_groups(GroupIds=[ours["sg"]])["SecurityGroups"]
    assert group["IpPermissions"] == []  # its one rule named the GuardDuty group: revoked
    # The other VPCs keep everything.
    for ids in (nobody, other):
        [gd] = ec2.describe_vpc_endpoints(VpcEndpointIds=[ids["gd_endpoint"]])["VpcEndpoints"]
        assert gd["State"] == "available"
        assert ec2.describe_security_groups(GroupIds=[ids["gd_sg"]])["SecurityGroups"]
        assert ec2.describe_network_interfaces(NetworkInterfaceIds=[ids["cni_eni"], *ids["gd_enis"]])["NetworkInterfaces"]

    # Safe to re-run: nothing left to clear, nothing said.
    lines.clear()
    again = clear_vpc_blockers(session, CLUSTER, say=lines.append, endpoint_url=moto_url)
    assert (again.deleted, again.failed, lines) == ([], [], [])

    _terraform_destroy(ec2, ours)  # now goes through
    assert _code(lambda: ec2.describe_vpcs(VpcIds=[vpc])) == "InvalidVpcID.NotFound"
    assert ec2.describe_vpcs(VpcIds=[nobody["vpc"], other["vpc"]])["Vpcs"]


def test_an_eni_in_use_is_named_with_its_holder_and_left(moto_url, aws_dependency_rules):
    """Not ours to detach (an instance someone runs in the VPC): said, with what holds it, and left."""
    session = _session()
    ec2 = session.client("ec2", endpoint_url=moto_url)
    ids = _vpc(ec2, "10.50.0.0/16", _tags(**{"bioinfra:cluster": CLUSTER, "bioinfra:stack": "network"}))
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=ids["subnet_a"],
                                 InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    ec2.attach_network_interface(NetworkInterfaceId=ids["cni_eni"], InstanceId=instance, DeviceIndex=1)

    lines: list[str] = []
    result = clear_vpc_blockers(session, CLUSTER, say=lines.append, endpoint_url=moto_url)

    assert {x.kind for x in result.deleted} == {"vpc-endpoint", "security-group"} and result.failed == []
    held = [line for line in lines if ids["cni_eni"] in line]
    assert held == [f"VPC {ids['vpc']}: network-interface {ids['cni_eni']} is in use, left to its owner: "
                    f"'aws-K8S-i-0123456789abcdef0', instance {instance}"]
    assert ec2.describe_network_interfaces(NetworkInterfaceIds=[ids["cni_eni"]])["NetworkInterfaces"][0]["Status"] == "in-use"


def test_the_aws_target_clears_before_the_network_stack_only(moto_url, aws_dependency_rules):
    """The hook `destroy` calls before each stack's `terraform destroy` (core.provision): the network stack's
    clears the VPC; the others leave it alone."""
    from bioinfra.adaptors.aws import AwsSession
    from bioinfra.config import parse_config
    from bioinfra.targets.aws import STACKS, AwsTarget

    session = _session()
    ec2 = session.client("ec2", endpoint_url=moto_url)
    ids = _vpc(ec2, "10.60.0.0/16", _tags(**{"bioinfra:cluster": CLUSTER, "bioinfra:stack": "network"}))
    config = parse_config({"name": CLUSTER, "target": "aws", "region": REGION}, source="test")
    stacks = {s.name: s for s in STACKS}
    aws = AwsSession(session, moto_url)
    lines: list[str] = []

    AwsTarget().before_destroy(config, stacks["cluster"], None, aws, force_empty_buckets=False, say=lines.append)
    assert lines == [] and ec2.describe_vpc_endpoints(VpcEndpointIds=[ids["gd_endpoint"]])["VpcEndpoints"][0]["State"] == "available"

    AwsTarget().before_destroy(config, stacks["network"], None, aws, force_empty_buckets=False, say=lines.append)
    assert [line.split()[:3] for line in lines if line.startswith("deleted ")] == [
        ["deleted", "vpc-endpoint", ids["gd_endpoint"]], ["deleted", "network-interface", ids["cni_eni"]],
        ["deleted", "security-group", ids["gd_sg"]]]
    _terraform_destroy(ec2, ids)


def test_an_aws_refusal_is_said_and_does_not_stop_the_destroy():
    """Credentials that may not list endpoints: said, with what to check, and the destroy goes on (Terraform
    may still get through). Stand-in: a session whose EC2 client answers AccessDenied as botocore does."""

    class Ec2:
        def can_paginate(self, op):
            return False

        def describe_vpcs(self, **_):
            return {"Vpcs": [{"VpcId": "vpc-1"}]}

        def describe_vpc_endpoints(self, **_):
            raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}},
                              "DescribeVpcEndpoints")

    class Session:
        def client(self, service, endpoint_url=None):
            return Ec2()

    lines: list[str] = []
    result = clear_vpc_blockers(Session(), CLUSTER, say=lines.append)
    [(item, reason)] = result.failed
    assert (item.kind, item.id, reason) == ("vpc", "vpc-1", "UnauthorizedOperation: not allowed")
    assert lines == ["VPC vpc-1: could not clear what blocks its deletion (UnauthorizedOperation: not allowed); "
                     "the network stack's destroy may fail with DependencyViolation: check the credentials may "
                     "describe and delete VPC endpoints, network interfaces and security groups"]
