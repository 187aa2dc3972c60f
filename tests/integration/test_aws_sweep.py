"""The sweep of AWS leftovers (bioinfra.adaptors.aws_sweep) against a real moto_server over HTTP.

Stand-ins, named: AWS is moto_server on 127.0.0.1 (real boto3, real HTTP, fake credentials). Where
moto differs from AWS, and what that leaves unexercised here:
- every delete completes at once (node groups, clusters, NAT gateways, mount targets, endpoints never
  pass through DELETING), so the waits end on their first poll; only the timeout of a wait is tested,
  with an emulated load-balancer ENI that never goes;
- load balancers get no ENIs: an untagged ENI described "ELB net/..." stands for one a deleted
  Network Load Balancer left in a subnet (in AWS it is requester-managed);
- moto checks few dependencies: a subnet goes with ENIs in it, a VPC with its internet gateway still
  attached, a security group while another group's rule references it. The order is checked only
  where moto refuses as AWS does (cluster with node groups, file system with mount targets, attached
  internet gateway, route table with associations, VPC with subnets, role with policies or an
  instance profile, target group in use);
- a NAT gateway's and a mount target's ENIs are plain "available" interfaces (AWS: in-use,
  requester-managed), and the NAT's stays after the NAT gateway is deleted.
As in AWS, a classic load balancer made without a security group gets one (default_elb_...) in the VPC.
"""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from bioinfra.adaptors import aws_sweep
from bioinfra.adaptors.aws_sweep import ORDER, Leftover, delete_leftovers, find_leftovers
from tests.fakes.terraform_state import RecordingTerraform

pytestmark = pytest.mark.integration

REGION = "eu-west-2"


@pytest.fixture
def aws(moto_endpoint, monkeypatch) -> boto3.session.Session:
    # Explicit fake keys: nothing from the caller's environment or ~/.aws can reach real AWS.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # moto never answers DependencyViolation for a dependency still going away; if it ever does,
    # fail within seconds rather than the minutes real AWS is given.
    monkeypatch.setattr(aws_sweep, "RETRY_SECONDS", 5)
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


def _tags(cluster: str, stack: str | None) -> list[dict[str, str]]:
    tags = {"bioinfra:cluster": cluster, "managed-by": "bioinfra"}
    if stack:
        tags["bioinfra:stack"] = stack
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _spec(resource_type: str, tags: list[dict[str, str]]) -> list[dict]:
    return [{"ResourceType": resource_type, "Tags": tags}]


def _gone(call, *codes: str) -> bool:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"] in codes
    return False


def _make_cluster(aws: boto3.session.Session, url: str, name: str) -> dict[str, str]:
    """What the three stacks create, plus what the cluster's controllers create, all as a killed
    `terraform apply` could leave them. Returns the ids the assertions need."""
    c = {s: aws.client(s, endpoint_url=url) for s in ("ec2", "iam", "eks", "efs", "ecr", "s3", "logs", "kms", "elb", "elbv2")}
    ec2 = c["ec2"]
    net, clu, sto = _tags(name, "network"), _tags(name, "cluster"), _tags(name, "storage")
    ids: dict[str, str] = {}

    # network stack
    vpc = ids["vpc"] = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=_spec("vpc", net))["Vpc"]["VpcId"]
    ids["subnet_a"] = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/20", AvailabilityZone=f"{REGION}a",
                                        TagSpecifications=_spec("subnet", net))["Subnet"]["SubnetId"]
    ids["subnet_b"] = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.128.0/20", AvailabilityZone=f"{REGION}b",
                                        TagSpecifications=_spec("subnet", net))["Subnet"]["SubnetId"]
    igw = ids["igw"] = ec2.create_internet_gateway(TagSpecifications=_spec("internet-gateway", net))["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    eip = ids["eip"] = ec2.allocate_address(Domain="vpc", TagSpecifications=_spec("elastic-ip", net))["AllocationId"]
    ids["nat"] = ec2.create_nat_gateway(SubnetId=ids["subnet_a"], AllocationId=eip,
                                        TagSpecifications=_spec("natgateway", net))["NatGateway"]["NatGatewayId"]
    rt = ids["route_table"] = ec2.create_route_table(VpcId=vpc, TagSpecifications=_spec("route-table", net))["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=ids["nat"])
    ec2.associate_route_table(RouteTableId=rt, SubnetId=ids["subnet_b"])
    sg = ids["sg"] = ec2.create_security_group(GroupName=f"{name}-endpoints", Description="https", VpcId=vpc,
                                               TagSpecifications=_spec("security-group", net))["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}])
    ids["endpoint"] = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3", VpcEndpointType="Gateway",
                                              RouteTableIds=[rt], TagSpecifications=_spec("vpc-endpoint", net))["VpcEndpoint"]["VpcEndpointId"]
    flow_group = f"/bioinfra/{name}/vpc-flow-logs"
    c["logs"].create_log_group(logGroupName=flow_group, tags={t["Key"]: t["Value"] for t in net})
    assume = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                                 "Principal": {"Service": "ec2.amazonaws.com"}}]})
    c["iam"].create_role(RoleName=f"{name}-vpc-flow-logs", AssumeRolePolicyDocument=assume, Tags=net)
    c["iam"].put_role_policy(RoleName=f"{name}-vpc-flow-logs", PolicyName="write-flow-logs", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}]}))
    ids["flow_log"] = ec2.create_flow_logs(
        ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL", LogDestinationType="cloud-watch-logs",
        LogGroupName=flow_group, DeliverLogsPermissionArn=f"arn:aws:iam::123456789012:role/{name}-vpc-flow-logs",
        TagSpecifications=_spec("vpc-flow-log", net))["FlowLogIds"][0]

    # cluster stack
    for role, policies in ((f"{name}-cluster", ["AmazonEKSClusterPolicy"]), (f"{name}-node", ["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy"])):
        c["iam"].create_role(RoleName=role, AssumeRolePolicyDocument=assume, Tags=clu)
        for policy in policies:
            c["iam"].attach_role_policy(RoleName=role, PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
    # EKS makes an instance profile for the node role of a managed node group.
    c["iam"].create_instance_profile(InstanceProfileName=f"eks-{name}-general")
    c["iam"].add_role_to_instance_profile(InstanceProfileName=f"eks-{name}-general", RoleName=f"{name}-node")
    cluster_tags = {t["Key"]: t["Value"] for t in clu}
    c["eks"].create_cluster(name=name, roleArn=f"arn:aws:iam::123456789012:role/{name}-cluster",
                            resourcesVpcConfig={"subnetIds": [ids["subnet_a"], ids["subnet_b"]]}, tags=cluster_tags)
    c["eks"].create_nodegroup(clusterName=name, nodegroupName="general", nodeRole=f"arn:aws:iam::123456789012:role/{name}-node",
                              subnets=[ids["subnet_a"], ids["subnet_b"]], tags=cluster_tags)
    c["logs"].create_log_group(logGroupName=f"/aws/eks/{name}/cluster", tags=cluster_tags)
    ids["key"] = c["kms"].create_key(Description=f"secrets of {name}", Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in clu])["KeyMetadata"]["KeyId"]
    c["kms"].create_alias(AliasName=f"alias/{name}-eks-secrets", TargetKeyId=ids["key"])
    ids["oidc"] = c["iam"].create_open_id_connect_provider(
        Url=f"https://oidc.eks.{REGION}.amazonaws.com/id/{name.upper()}", ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"], Tags=clu)["OpenIDConnectProviderArn"]

    # storage stack
    c["ecr"].create_repository(repositoryName=f"{name}/fastqc", tags=sto)
    ids["fs"] = c["efs"].create_file_system(CreationToken=f"{name}-shared", Tags=sto)["FileSystemId"]
    efs_sg = ids["efs_sg"] = ec2.create_security_group(GroupName=f"{name}-efs", Description="nfs", VpcId=vpc,
                                                       TagSpecifications=_spec("security-group", sto))["GroupId"]
    # A rule naming another group: the kind of reference that makes AWS refuse to delete `sg`.
    ec2.authorize_security_group_ingress(GroupId=efs_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "UserIdGroupPairs": [{"GroupId": sg}]}])
    ids["mount_target"] = c["efs"].create_mount_target(FileSystemId=ids["fs"], SubnetId=ids["subnet_b"], SecurityGroups=[efs_sg])["MountTargetId"]
    ids["bucket"] = f"{name}-results"
    c["s3"].create_bucket(Bucket=ids["bucket"], CreateBucketConfiguration={"LocationConstraint": REGION})
    c["s3"].put_bucket_tagging(Bucket=ids["bucket"], Tagging={"TagSet": sto})
    c["iam"].create_role(RoleName=f"{name}-workflow", AssumeRolePolicyDocument=assume, Tags=sto)

    # made by the cluster's controllers, not Terraform: no bioinfra tags
    ids["clb"] = "a0123456789abcdef"
    c["elb"].create_load_balancer(LoadBalancerName=ids["clb"], Subnets=[ids["subnet_a"]], Tags=[{"Key": f"kubernetes.io/cluster/{name}", "Value": "owned"}],
                                  Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}])
    k8s = [{"Key": "elbv2.k8s.aws/cluster", "Value": name}]
    ids["nlb"] = c["elbv2"].create_load_balancer(Name=f"k8s-{name}-web"[:32], Subnets=[ids["subnet_a"], ids["subnet_b"]], Type="network",
                                                 Tags=k8s)["LoadBalancers"][0]["LoadBalancerArn"]
    tg = c["elbv2"].create_target_group(Name=f"k8s-{name}-tg"[:32], Protocol="TCP", Port=80, VpcId=vpc, TargetType="ip", Tags=k8s)
    c["elbv2"].create_listener(LoadBalancerArn=ids["nlb"], Protocol="TCP", Port=80,
                               DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroups"][0]["TargetGroupArn"]}])
    ids["volume"] = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=10, TagSpecifications=_spec(
        "volume", [{"Key": f"kubernetes.io/cluster/{name}", "Value": "owned"}]))["VolumeId"]
    # Emulated: in AWS this ENI belongs to the NLB (requester-managed); moto's load balancers make none.
    ids["elb_eni"] = ec2.create_network_interface(SubnetId=ids["subnet_a"], Description="ELB net/k8s-web/0123456789abcdef")["NetworkInterface"]["NetworkInterfaceId"]
    return ids


def _make_bystanders(aws: boto3.session.Session, url: str, name: str) -> dict[str, str]:
    ec2, s3, iam = (aws.client(s, endpoint_url=url) for s in ("ec2", "s3", "iam"))
    ids = {"vpc": ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"], "bucket": f"{name}-other-results", "role": f"{name}-by-hand"}
    s3.create_bucket(Bucket=ids["bucket"], CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_tagging(Bucket=ids["bucket"], Tagging={"TagSet": _tags("other-cluster", "storage")})
    iam.create_role(RoleName=ids["role"], AssumeRolePolicyDocument="{}")  # our name prefix, not our tag
    return ids


def test_every_kind_has_a_delete_step():
    assert set(aws_sweep._STEPS) == set(ORDER)


def test_finds_everything_tagged_deletes_it_and_leaves_bystanders(aws, moto_endpoint):
    url, name = moto_endpoint, "sweep-all"
    ids = _make_cluster(aws, url, name)
    others = _make_bystanders(aws, url, name)

    found = find_leftovers(aws, name, endpoint_url=url)

    assert {x.kind for x in found} == set(ORDER)  # every kind the stacks and controllers make
    assert [ORDER.index(x.kind) for x in found] == sorted(ORDER.index(x.kind) for x in found)
    by_kind = {k: {x.id for x in found if x.kind == k} for k in ORDER}
    assert by_kind["subnet"] == {ids["subnet_a"], ids["subnet_b"]}
    # Not the VPC's default group; but the one the classic load balancer made (default_elb_..., in AWS
    # too, when Kubernetes names no group), untagged inside our VPC.
    groups = {x.detail.split("_")[0] + "_": x.stack for x in found if x.kind == "security-group" and x.id not in (ids["sg"], ids["efs_sg"])}
    assert by_kind["security-group"] >= {ids["sg"], ids["efs_sg"]} and groups == {"default_": None}
    assert by_kind["iam-role"] == {f"{name}-{r}" for r in ("vpc-flow-logs", "cluster", "node", "workflow")}
    assert by_kind["eks-nodegroup"] == {f"{name}/general"}
    assert by_kind["network-interface"] == {ids["elb_eni"]}  # not the NAT's nor the mount target's
    assert by_kind["log-group"] == {f"/aws/eks/{name}/cluster", f"/bioinfra/{name}/vpc-flow-logs"}
    assert by_kind["kms-alias"] == {f"alias/{name}-eks-secrets"}
    assert by_kind["s3-bucket"] == {ids["bucket"]}
    assert by_kind["vpc"] == {ids["vpc"]}
    stacks = {(x.kind, x.id): x.stack for x in found}
    assert stacks[("nat-gateway", ids["nat"])] == "network"
    assert stacks[("eks-nodegroup", f"{name}/general")] == "cluster"
    assert stacks[("efs-mount-target", ids["mount_target"])] == "storage"  # untaggable: its file system's
    assert stacks[("load-balancer", ids["clb"])] is None  # made by Kubernetes
    all_ids = {x.id for x in found}
    assert not all_ids & {others["vpc"], others["bucket"], others["role"]}

    lines: list[str] = []
    result = delete_leftovers(aws, found, force_empty_buckets=False, say=lines.append, endpoint_url=url)

    assert result.failed == [] and result.kept == []
    assert result.deleted == found and len(lines) == len(found)
    assert f"deleted nat-gateway {ids['nat']} (stack network)" in lines
    assert f"deleted kms-key {ids['key']} (stack cluster; deletion scheduled in 7 days)" in lines
    assert find_leftovers(aws, name, endpoint_url=url) == []

    ec2, eks, iam, kms, s3 = (aws.client(s, endpoint_url=url) for s in ("ec2", "eks", "iam", "kms", "s3"))
    assert _gone(lambda: ec2.describe_vpcs(VpcIds=[ids["vpc"]]), "InvalidVpcID.NotFound")
    assert _gone(lambda: ec2.describe_addresses(AllocationIds=[ids["eip"]]), "InvalidAllocationID.NotFound")
    assert _gone(lambda: ec2.describe_volumes(VolumeIds=[ids["volume"]]), "InvalidVolume.NotFound")
    assert name not in eks.list_clusters()["clusters"]
    assert _gone(lambda: iam.get_role(RoleName=f"{name}-node"), "NoSuchEntity")
    assert _gone(lambda: iam.get_instance_profile(InstanceProfileName=f"eks-{name}-general"), "NoSuchEntity")
    assert kms.describe_key(KeyId=ids["key"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert _gone(lambda: s3.head_bucket(Bucket=ids["bucket"]), "404")
    # bystanders untouched
    assert ec2.describe_vpcs(VpcIds=[others["vpc"]])["Vpcs"]
    assert s3.head_bucket(Bucket=others["bucket"])
    assert iam.get_role(RoleName=others["role"])["Role"]


def test_bucket_with_data_is_kept_unless_forced(aws, moto_endpoint):
    url, name = moto_endpoint, "sweep-data"
    s3 = aws.client("s3", endpoint_url=url)
    bucket = f"{name}-results"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": _tags(name, "storage")})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="run1/multiqc_report.html", Body=b"v1")
    s3.put_object(Bucket=bucket, Key="run1/multiqc_report.html", Body=b"v2")
    s3.delete_object(Bucket=bucket, Key="run1/multiqc_report.html")  # a delete marker over both versions

    found = find_leftovers(aws, name, endpoint_url=url)
    assert found == [Leftover("s3-bucket", bucket, "storage", "2 object versions and 1 delete markers, versioned")]

    lines: list[str] = []
    kept = delete_leftovers(aws, found, force_empty_buckets=False, say=lines.append, endpoint_url=url)
    assert kept.deleted == [] and kept.failed == []
    [(item, reason)] = kept.kept
    assert item.id == bucket and reason.startswith("has 2 object versions") and "--force-empty-buckets" in reason
    assert lines == [f"kept s3-bucket {bucket} (stack storage): {reason}"]
    versions = s3.list_object_versions(Bucket=bucket)
    assert len(versions["Versions"]) == 2 and len(versions["DeleteMarkers"]) == 1  # nothing touched

    forced = delete_leftovers(aws, found, force_empty_buckets=True, say=lines.append, endpoint_url=url)
    assert forced.deleted == found and forced.kept == [] and forced.failed == []
    assert "emptied 3 object versions and delete markers first" in lines[-1]
    assert _gone(lambda: s3.head_bucket(Bucket=bucket), "404")


def test_stack_filter_touches_only_that_stack(aws, moto_endpoint):
    url, name = moto_endpoint, "sweep-stacks"
    ec2, ecr, logs, elb = (aws.client(s, endpoint_url=url) for s in ("ec2", "ecr", "logs", "elb"))
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16", TagSpecifications=_spec("vpc", _tags(name, "network")))["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.0.0/20", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    ecr.create_repository(repositoryName=f"{name}/bwa", tags=_tags(name, "storage"))
    logs.create_log_group(logGroupName=f"/aws/eks/{name}/cluster", tags={"bioinfra:cluster": name, "bioinfra:stack": "cluster"})
    elb.create_load_balancer(LoadBalancerName="k8s-stacks", Subnets=[subnet], Tags=[{"Key": f"kubernetes.io/cluster/{name}", "Value": "owned"}],
                             Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}])
    found = find_leftovers(aws, name, endpoint_url=url)
    assert {(x.kind, x.stack) for x in found} == {
        ("vpc", "network"), ("subnet", None), ("ecr-repository", "storage"), ("log-group", "cluster"),
        ("load-balancer", None), ("security-group", None)}  # the group the classic load balancer made

    result = delete_leftovers(aws, found, force_empty_buckets=False, say=lambda _: None, endpoint_url=url, stack="storage")
    assert [x.kind for x in result.deleted] == ["ecr-repository"]
    assert _gone(lambda: ecr.describe_repositories(repositoryNames=[f"{name}/bwa"]), "RepositoryNotFoundException")
    assert {x.kind for x in find_leftovers(aws, name, endpoint_url=url)} == {"vpc", "subnet", "log-group", "load-balancer", "security-group"}

    result = delete_leftovers(aws, found, force_empty_buckets=False, say=lambda _: None, endpoint_url=url, stack="cluster")
    assert [x.kind for x in result.deleted] == ["log-group"]
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"] and elb.describe_load_balancers(LoadBalancerNames=["k8s-stacks"])

    # The final unfiltered pass takes what no stack claims (untagged subnet, Kubernetes' load balancer).
    rest = find_leftovers(aws, name, endpoint_url=url)
    result = delete_leftovers(aws, rest, force_empty_buckets=False, say=lambda _: None, endpoint_url=url)
    assert result.failed == [] and {x.kind for x in result.deleted} == {"vpc", "subnet", "load-balancer", "security-group"}
    assert find_leftovers(aws, name, endpoint_url=url) == []


def test_rerunning_the_sweep_is_harmless(aws, moto_endpoint):
    url, name = moto_endpoint, "sweep-again"
    lines: list[str] = []
    empty = delete_leftovers(aws, [], force_empty_buckets=False, say=lines.append, endpoint_url=url)
    assert (empty.deleted, empty.kept, empty.failed, lines) == ([], [], [], [])

    _make_cluster(aws, url, name)
    found = find_leftovers(aws, name, endpoint_url=url)
    first = delete_leftovers(aws, found, force_empty_buckets=False, say=lines.append, endpoint_url=url)
    assert first.failed == []

    lines.clear()
    again = delete_leftovers(aws, found, force_empty_buckets=False, say=lines.append, endpoint_url=url)
    assert again.failed == [] and again.kept == [] and again.deleted == found
    # Each kind answers "not found" its own way; all of them read as already gone.
    assert all(line.startswith("deleted ") for line in lines)
    assert f"deleted eks-cluster {name} (stack cluster; already gone)" in lines
    assert f"deleted s3-bucket {name}-results (stack storage; already gone)" in lines
    assert any(line.startswith("deleted kms-key ") and "deletion already scheduled" in line for line in lines)
    assert find_leftovers(aws, name, endpoint_url=url) == []


def test_one_failure_does_not_stop_the_others(aws, moto_endpoint):
    url, name = moto_endpoint, "sweep-fail"
    ec2, efs, logs = (aws.client(s, endpoint_url=url) for s in ("ec2", "efs", "logs"))
    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.2.0.0/20", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    fs = efs.create_file_system(CreationToken=f"{name}-shared", Tags=_tags(name, "storage"))["FileSystemId"]
    efs.create_mount_target(FileSystemId=fs, SubnetId=subnet)
    logs.create_log_group(logGroupName=f"/bioinfra/{name}/vpc-flow-logs", tags={"bioinfra:cluster": name, "bioinfra:stack": "network"})
    # Without its mount target in the list, the file system cannot go (FileSystemInUse).
    found = [x for x in find_leftovers(aws, name, endpoint_url=url) if x.kind != "efs-mount-target"]

    lines: list[str] = []
    result = delete_leftovers(aws, found, force_empty_buckets=False, say=lines.append, endpoint_url=url)

    [(item, reason)] = result.failed
    assert item.id == fs and "FileSystemInUse" in reason
    assert [x.id for x in result.deleted] == [f"/bioinfra/{name}/vpc-flow-logs"]
    assert lines[0].startswith(f"failed efs-file-system {fs} (stack storage): FileSystemInUse")
    assert efs.describe_file_systems(FileSystemId=fs)["FileSystems"]
    assert not logs.describe_log_groups(logGroupNamePrefix=f"/bioinfra/{name}/")["logGroups"]


def test_a_wait_that_never_ends_is_bounded(aws, moto_endpoint, monkeypatch):
    url = moto_endpoint
    ec2 = aws.client("ec2", endpoint_url=url)
    vpc = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.3.0.0/20", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet, InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    # Emulated: a live load balancer's ENI. In AWS it is requester-managed and only AWS removes it,
    # after its load balancer; moto cannot make one, so an in-use ENI described "ELB app/..." stands in.
    eni = ec2.create_network_interface(SubnetId=subnet, Description="ELB app/k8s-live/0123456789abcdef")["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=instance, DeviceIndex=1)
    monkeypatch.setattr(aws_sweep, "POLL_SECONDS", 0.05)
    monkeypatch.setitem(aws_sweep.WAIT_TIMEOUT_SECONDS, "network-interface", 0.5)

    started = time.monotonic()
    result = delete_leftovers(aws, [Leftover("network-interface", eni, None)], force_empty_buckets=False,
                              say=lambda _: None, endpoint_url=url)

    assert time.monotonic() - started < 5
    [(item, reason)] = result.failed
    assert item.id == eni and reason.startswith("still being deleted after")
    assert ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["Status"] == "in-use"


# -- a results bucket `destroy` keeps, and the KMS key that encrypts it ------------------------------


def _kept_results(aws: boto3.session.Session, url: str, name: str, *, kept_on: str = "") -> tuple[str, str]:
    """A results bucket with data, encrypted (aws:kms, bucket keys on) with the storage stack's key and
    alias, as the storage stack makes them: (bucket, key id). With `kept_on`, tagged as `destroy` leaves
    them when it keeps them."""
    s3, kms = aws.client("s3", endpoint_url=url), aws.client("kms", endpoint_url=url)
    tags = _tags(name, "storage") + ([{"Key": "bioinfra:kept", "Value": kept_on}] if kept_on else [])
    key = kms.create_key(Description=f"storage of {name}",
                         Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in tags])["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"alias/{name}-storage", TargetKeyId=key)
    bucket = f"{name}-results"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                               "KMSMasterKeyID": f"arn:aws:kms:{REGION}:123456789012:key/{key}"},
        "BucketKeyEnabled": True}]})
    s3.put_object(Bucket=bucket, Key="run1/multiqc_report.html", Body=b"<html/>")
    return bucket, key


def _key_state(aws: boto3.session.Session, url: str, key: str) -> str:
    return aws.client("kms", endpoint_url=url).describe_key(KeyId=key)["KeyMetadata"]["KeyState"]


def test_the_key_of_a_kept_bucket_stays_until_the_bucket_goes(aws, moto_endpoint):
    """The sweep never schedules the deletion of a key that encrypts a bucket it keeps (KMS would delete
    it after 7 days: every object in the bucket unreadable); the key and its alias are kept and reported
    with the bucket, and go after it once --force-empty-buckets deletes it (point 1 and 3)."""
    url, name = moto_endpoint, "sweep-keykept"
    bucket, key = _kept_results(aws, url, name, kept_on="2026-12-06")

    found = find_leftovers(aws, name, endpoint_url=url)
    assert [(x.kind, x.id) for x in found] == [("s3-bucket", bucket), ("kms-alias", f"alias/{name}-storage"),
                                               ("kms-key", key)]
    assert all(x.kept_on == "2026-12-06" for x in found)
    assert {x.kind: x.encrypts for x in found if x.kind != "s3-bucket"} == {"kms-alias": (bucket,), "kms-key": (bucket,)}
    assert found[2].detail == f"enabled, encrypts s3-bucket {bucket}"

    lines: list[str] = []
    kept = delete_leftovers(aws, found, force_empty_buckets=False, say=lines.append, endpoint_url=url)
    assert kept.deleted == [] and kept.failed == []
    assert [(x.kind, x.id) for x, _ in kept.kept] == [(x.kind, x.id) for x in found]
    reasons = dict((x.kind, why) for x, why in kept.kept)
    assert reasons["kms-key"].startswith(f"encrypts s3-bucket {bucket}, which is kept")
    assert "--force-empty-buckets" in reasons["kms-alias"]
    assert lines[2] == f"kept kms-key {key} (stack storage): {reasons['kms-key']}"
    assert _key_state(aws, url, key) == "Enabled"
    kms = aws.client("kms", endpoint_url=url)
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=key)["Aliases"]] == [f"alias/{name}-storage"]
    s3 = aws.client("s3", endpoint_url=url)
    assert s3.get_object(Bucket=bucket, Key="run1/multiqc_report.html")["Body"].read() == b"<html/>"

    # a later sweep that deletes the bucket (--force-empty-buckets, or it was emptied) takes the key too
    lines.clear()
    forced = delete_leftovers(aws, found, force_empty_buckets=True, say=lines.append, endpoint_url=url)
    assert forced.kept == [] and forced.failed == [] and forced.deleted == found
    assert _gone(lambda: s3.head_bucket(Bucket=bucket), "404")
    assert kms.list_aliases(KeyId=key)["Aliases"] == []
    assert _key_state(aws, url, key) == "PendingDeletion"
    assert lines[-1] == f"deleted kms-key {key} (stack storage; deletion scheduled in 7 days)"
    assert find_leftovers(aws, name, endpoint_url=url) == []


def test_a_key_whose_bucket_is_empty_goes_with_it(aws, moto_endpoint):
    """An empty kept bucket (its data deleted by hand) needs no --force-empty-buckets: bucket, alias and
    key all go in one sweep (the bucket first: ORDER)."""
    url, name = moto_endpoint, "sweep-keyempty"
    bucket, key = _kept_results(aws, url, name)
    s3 = aws.client("s3", endpoint_url=url)
    for v in s3.list_object_versions(Bucket=bucket)["Versions"]:
        s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])

    result = delete_leftovers(aws, find_leftovers(aws, name, endpoint_url=url), force_empty_buckets=False,
                              say=lambda _: None, endpoint_url=url)
    assert result.kept == [] and result.failed == []
    assert [x.kind for x in result.deleted] == ["s3-bucket", "kms-alias", "kms-key"]
    assert _key_state(aws, url, key) == "PendingDeletion"


# The storage stack's state after `up` (tests/integration/test_aws_stacks.py applies it for real).
STORAGE_STATE = [
    "module.storage.aws_s3_bucket.results", "module.storage.aws_s3_bucket_versioning.results",
    "module.storage.aws_s3_bucket_server_side_encryption_configuration.results",
    "module.storage.aws_efs_file_system.shared", 'module.storage.aws_ecr_repository.tools["x/fastqc"]',
    "module.storage.module.key.aws_kms_key.this", "module.storage.module.key.aws_kms_alias.this",
    "module.storage.module.key.data.aws_iam_policy_document.key", "module.storage.aws_iam_role.workflow",
]


def test_destroy_keeps_the_key_with_the_bucket_and_up_takes_both_back(aws, moto_endpoint, tmp_path):
    """AwsTarget.before_destroy takes the key and its alias out of the state with the bucket (EFS, ECR,
    the role stay: destroyed) and says so; adopt_kept then imports all three, ids as data (rule 1)."""
    from bioinfra.adaptors.aws import AwsSession
    from bioinfra.config import parse_config
    from bioinfra.targets.aws import ADOPT_VALUES_FILE, STACKS, AwsTarget

    url, name = moto_endpoint, "sweep-hooks"
    storage = next(s for s in STACKS if s.name == "storage")
    config = parse_config({"name": name, "target": "aws", "region": REGION,
                           "buckets": {"results": f"{name}-results"}}, source="test")
    bucket, key = _kept_results(aws, url, name)
    session = AwsSession(aws, url)
    said: list[str] = []
    tf = RecordingTerraform(STORAGE_STATE, tmp_path)

    days = {time.strftime("%Y-%m-%d", time.gmtime())}  # the UTC date, read on both sides: a run may cross midnight
    AwsTarget().before_destroy(config, storage, tf, session, force_empty_buckets=False, say=said.append)
    days.add(time.strftime("%Y-%m-%d", time.gmtime()))
    assert sorted(tf.removed) == sorted(STORAGE_STATE[:3] + STORAGE_STATE[5:7])
    assert said == [f"keeping bucket {bucket}: it has 1 object versions; keeping its KMS key {key} "
                    f"(alias/{name}-storage) too, without which they cannot be read (about $1 a month while kept; "
                    "re-run with --force-empty-buckets to delete them)"]
    s3, kms = aws.client("s3", endpoint_url=url), aws.client("kms", endpoint_url=url)
    today = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}["bioinfra:kept"]
    assert today in days
    assert {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key)["Tags"]}["bioinfra:kept"] == today
    assert {x.kind: x.kept_on for x in find_leftovers(aws, name, endpoint_url=url)} == {
        "s3-bucket": today, "kms-alias": today, "kms-key": today}

    # the next `up`: import blocks take back bucket, key and alias; their ids are JSON, not HCL text
    fresh = RecordingTerraform([], tmp_path)
    AwsTarget().adopt_kept(config, storage, fresh, session, said.append)
    adopt = (tmp_path / "adopt.tf").read_text()
    assert key not in adopt and f"{name}-" not in adopt
    for address, ident in (("module.storage.aws_s3_bucket.results", "var.bucket"),
                           ("module.storage.module.key.aws_kms_key.this", "var.kept_key.id"),
                           ("module.storage.module.key.aws_kms_alias.this", "var.kept_key.alias")):
        assert f"import {{\n  to = {address}\n  id = {ident}\n}}\n" in adopt
    values = tmp_path / ADOPT_VALUES_FILE
    assert json.loads(values.read_text()) == {"kept_key": {"id": key, "alias": f"alias/{name}-storage"}}
    assert values.stat().st_mode & 0o077 == 0
    assert said[-1] == (f"adopting bucket {bucket} with its KMS key {key} (alias/{name}-storage): "
                        "kept by an earlier destroy because it held data")

    # a bucket whose key a destroy before this fix scheduled for deletion: `up` cancels it, then imports
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    AwsTarget().adopt_kept(config, storage, fresh, session, said.append)
    assert _key_state(aws, url, key) == "Enabled"
    assert "var.kept_key.id" in (tmp_path / "adopt.tf").read_text()
    assert said[-2] == f"KMS key {key} of bucket {bucket} was scheduled for deletion: cancelled, so its objects stay readable"

    # once in the state again, or for a plain plan of another stack, nothing is written
    AwsTarget().adopt_kept(config, storage, RecordingTerraform(STORAGE_STATE, tmp_path), session, said.append)
    assert not (tmp_path / "adopt.tf").exists() and not values.exists()


def test_a_bucket_emptied_before_destroy_keeps_nothing(aws, moto_endpoint, tmp_path):
    """--force-empty-buckets: the bucket is emptied and nothing leaves the state (Terraform destroys the
    bucket, the key with it)."""
    from bioinfra.adaptors.aws import AwsSession
    from bioinfra.config import parse_config
    from bioinfra.targets.aws import STACKS, AwsTarget

    url, name = moto_endpoint, "sweep-hooks-force"
    storage = next(s for s in STACKS if s.name == "storage")
    config = parse_config({"name": name, "target": "aws", "region": REGION,
                           "buckets": {"results": f"{name}-results"}}, source="test")
    bucket, _ = _kept_results(aws, url, name)
    tf = RecordingTerraform(STORAGE_STATE, tmp_path)
    AwsTarget().before_destroy(config, storage, tf, AwsSession(aws, url), force_empty_buckets=True, say=lambda _: None)
    assert tf.removed == []
    assert "Versions" not in aws.client("s3", endpoint_url=url).list_object_versions(Bucket=bucket)


@pytest.mark.aws
@pytest.mark.slow
def test_destroy_names_what_an_earlier_destroy_kept_and_takes_it_when_forced(cli, aws_env, aws, moto_endpoint, tmp_path):
    """`bioinfra destroy aws` (the real CLI and Terraform, stacks with no state) after a destroy that kept
    a results bucket with data and its key: it says they were kept by that destroy, not left by an
    interrupted apply (point 4); without --force-empty-buckets all three stay (exit 11, the key enabled);
    with it the bucket goes and the key's deletion is scheduled (point 3)."""
    from bioinfra.errors import ExitCode

    url, name = moto_endpoint, "sweep-cli-kept"
    (tmp_path / "bioinfra.yaml").write_text(f"name: {name}\ntarget: aws\nregion: {REGION}\n"
                                            f"buckets:\n  results: {name}-results\n")
    bucket, key = _kept_results(aws, url, name, kept_on="2026-12-01")
    kept_line = (f"stack storage: s3-bucket {bucket}, kms-alias alias/{name}-storage, kms-key {key} kept by an earlier "
                 "destroy (2026-12-01) because the bucket held data")

    again = cli("destroy", "aws", "--yes", extra_env=aws_env, timeout=600)
    assert again.returncode == ExitCode.LEFTOVERS, again.stderr
    assert kept_line in again.stderr and "interrupted apply" not in again.stderr
    assert f"kept kms-key {key} (stack storage): encrypts s3-bucket {bucket}, which is kept" in again.stderr
    assert f"kms-key {key} (enabled, encrypts s3-bucket {bucket})" in again.stderr  # named with the bucket
    assert _key_state(aws, url, key) == "Enabled"

    forced = cli("destroy", "aws", "--yes", "--force-empty-buckets", extra_env=aws_env, timeout=600)
    assert forced.returncode == 0, forced.stderr
    assert kept_line in forced.stderr and "interrupted apply" not in forced.stderr
    assert f"deleted kms-key {key} (stack storage; deletion scheduled in 7 days)" in forced.stderr
    assert _key_state(aws, url, key) == "PendingDeletion"
    assert find_leftovers(aws, name, endpoint_url=url) == []


def test_a_kept_bucket_whose_key_is_pending_deletion_gets_it_back(aws, moto_endpoint):
    """A bucket kept by a bioinfra from before the key was kept too: its key's deletion is scheduled. The
    sweep finds that key (it encrypts a bucket that is still there), cancels the deletion and keeps it."""
    url, name = moto_endpoint, "sweep-keyrescue"
    bucket, key = _kept_results(aws, url, name)
    aws.client("kms", endpoint_url=url).schedule_key_deletion(KeyId=key, PendingWindowInDays=7)

    found = find_leftovers(aws, name, endpoint_url=url)
    assert [(x.kind, x.id, x.detail) for x in found if x.kind == "kms-key"] == [
        ("kms-key", key, f"pendingdeletion, encrypts s3-bucket {bucket}")]
    result = delete_leftovers(aws, found, force_empty_buckets=False, say=lambda _: None, endpoint_url=url)
    assert result.deleted == [] and result.failed == []
    reasons = {x.kind: why for x, why in result.kept}
    assert "(its deletion, scheduled earlier, is cancelled)" in reasons["kms-key"]
    assert _key_state(aws, url, key) == "Enabled"

    # and goes again with the bucket
    forced = delete_leftovers(aws, find_leftovers(aws, name, endpoint_url=url), force_empty_buckets=True,
                              say=lambda _: None, endpoint_url=url)
    assert [x.kind for x in forced.deleted] == ["s3-bucket", "kms-alias", "kms-key"]
    assert _key_state(aws, url, key) == "PendingDeletion"
    assert find_leftovers(aws, name, endpoint_url=url) == []
