"""Find and delete the AWS resources a cluster left behind, by their tags.

`bioinfra destroy aws` runs `terraform destroy` over the stacks. A `terraform apply` killed half-way
leaves resources that exist in AWS but not in Terraform's state (a node group, a NAT gateway): Terraform
cannot delete what it does not know, and they block the VPC's deletion and keep costing money. Every
resource the stacks create carries `bioinfra:cluster=<name>` and `bioinfra:stack=<stack>` (provider
default_tags), so the sweep finds them by those tags instead, together with what Kubernetes controllers
made for the cluster (load balancers, volumes) and what was left inside the cluster's VPC, and deletes
them through the AWS APIs in dependency order.

Scope: the session's region, plus the account's IAM roles and OIDC providers (IAM is global). boto3 is
not imported at module import time: the caller passes a session (`bioinfra.adaptors.aws.open_session`).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from bioinfra.errors import BioinfraError

if TYPE_CHECKING:
    import boto3

CLUSTER_TAG = "bioinfra:cluster"
STACK_TAG = "bioinfra:stack"
# The region a resource was made for (provider default_tags). IAM is global: one cluster name may have
# roles and OIDC providers for two regions of an account (their names carry the region, issue #18), and
# the sweep of one region must leave the other's alone. Resources made before the tag have none.
REGION_TAG = "bioinfra:region"
# VPC CNI tags the ENIs it allocates with this; they leak when nodes die before the CNI frees them.
CNI_CLUSTER_TAG = "cluster.k8s.amazonaws.com/name"
# Set by `destroy` on a results bucket it keeps because it holds data, and on the KMS key that encrypts
# it: the UTC date (AwsTarget.before_destroy, mark_kept). Read back only to say so; what keeps the key is
# the bucket itself (_kept_bucket). `up` takes both back, and Terraform drops the tag (default_tags only).
KEPT_TAG = "bioinfra:kept"

# Deletion order: each kind only after everything that can depend on it. Node groups hold instances
# in the subnets and block the cluster; load balancers and mount targets hold ENIs in the subnets; the
# NAT gateway holds its Elastic IP; ENIs, endpoints and gateways block subnets, security groups and
# the VPC; KMS keys last, since the bucket, EFS and ECR encrypt with them until they are gone.
ORDER: tuple[str, ...] = (
    # what runs in the VPC, and what Kubernetes controllers made for it
    "eks-nodegroup", "eks-cluster", "load-balancer", "load-balancer-v2", "target-group", "ebs-volume",
    "efs-mount-target", "efs-file-system",
    # the VPC, from the inside out
    "nat-gateway", "elastic-ip", "vpc-endpoint", "flow-log", "network-interface", "internet-gateway",
    "subnet", "route-table", "security-group", "vpc",
    # outside any VPC
    "ecr-repository", "s3-bucket", "log-group", "iam-role", "iam-oidc-provider", "kms-alias", "kms-key",
)

POLL_SECONDS = 1.0
# Bounds for AWS's asynchronous deletes, a few times what they usually take (node groups 5-15 min,
# clusters ~10 min, NAT gateways and mount targets ~1 min, load-balancer ENIs a few minutes).
WAIT_TIMEOUT_SECONDS: dict[str, float] = {
    "eks-nodegroup": 30 * 60,
    "eks-cluster": 20 * 60,
    "load-balancer-v2": 5 * 60,
    "ebs-volume": 5 * 60,
    "efs-mount-target": 10 * 60,
    "efs-file-system": 5 * 60,
    "nat-gateway": 10 * 60,
    "vpc-endpoint": 10 * 60,
    "network-interface": 10 * 60,
}
# How long deletes refused for a dependency are retried: AWS releases ENIs and public-IP mappings a
# little after the resource that held them reports deleted (eventual consistency). One budget per
# kind, shared by its items, so a dependency that never clears costs minutes, not minutes per subnet.
RETRY_SECONDS = 3 * 60
_TRANSIENT = {"DependencyViolation", "InvalidIPAddress.InUse", "ResourceInUse", "ResourceInUseException"}
KMS_PENDING_DAYS = 7  # the shortest window KMS allows, as in the stacks' deletion_window_in_days
_COUNT_CAP = 10_000  # versions counted for a report; a results bucket may hold millions
_ALREADY_GONE = "already gone"


@dataclass(frozen=True)
class Leftover:
    """One AWS resource still tagged with (or found inside) the cluster."""

    kind: str  # one of ORDER, e.g. "eks-nodegroup", "nat-gateway", "s3-bucket"
    id: str  # what identifies it to the API (for a node group "cluster/nodegroup")
    # The bioinfra:stack tag; for what cannot carry tags (EFS mount targets, KMS aliases) or was left
    # untagged inside a tagged parent (node groups), the parent's. None for what Kubernetes or AWS made
    # on the cluster's behalf (its load balancers, volumes, ENIs): only an unfiltered sweep handles those.
    stack: Optional[str]
    detail: str = ""  # e.g. "3 object versions, versioned" for a bucket with data
    # For a kms-key or kms-alias: the cluster's buckets whose default encryption is this key, when found.
    # The key (and its alias) is kept while one of them still exists: without it their objects are unreadable.
    encrypts: tuple[str, ...] = ()
    # The date an earlier `destroy` kept it (KEPT_TAG), "" for anything else: not an interrupted apply's.
    kept_on: str = ""


@dataclass
class SweepResult:
    deleted: list[Leftover] = field(default_factory=list)
    kept: list[tuple[Leftover, str]] = field(default_factory=list)  # (leftover, reason), e.g. a bucket with data
    failed: list[tuple[Leftover, str]] = field(default_factory=list)  # (leftover, error)


# --- helpers ------------------------------------------------------------------------------------


class _Keep(Exception):
    """Raised by a delete step that refuses on purpose (a bucket with data); the message is the reason."""


class _Fail(Exception):
    """Raised by a delete or wait step that knows why it cannot finish; the message is the reason."""


class _Ctx:
    """Clients shared by the steps of one find or sweep."""

    def __init__(self, session: Any, endpoint_url: Optional[str], force_empty_buckets: bool = False) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self.force_empty_buckets = force_empty_buckets
        self.owned_enis: set[str] = set()  # ENIs a found resource owns: they go with it, not on their own
        self.retry_until = 0.0  # monotonic deadline of the current kind's retries (see RETRY_SECONDS)
        self.bucket_keys: dict[str, str] = {}  # a found bucket -> the id of its default-encryption KMS key
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url)
        return self._clients[service]


def _code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else); duck-typed so botocore
    need not be imported here."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _reason(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        err = response["Error"]
        return f"{err.get('Code', '?')}: {err.get('Message', '')}".strip()[:300]
    return (str(exc) or type(exc).__name__)[:300]


def _is_gone(exc: BaseException) -> bool:
    """True when AWS says the resource does not exist: each service spells it differently
    (InvalidVpcID.NotFound, NoSuchEntity, NoSuchBucket, ResourceNotFoundException, FileSystemNotFound,
    NatGatewayNotFound, LoadBalancerNotFound, KMS NotFoundException ...)."""
    code = _code(exc)
    return code.endswith(("NotFound", "NotFoundException")) or (code.startswith("NoSuch") and code != "NoSuchTagSet")


def _quiet_gone(call: Callable[[], Any]) -> None:
    """A preparatory call whose target may already be gone (a detach, a disassociate)."""
    try:
        call()
    except Exception as exc:
        if not _is_gone(exc):
            raise


def _retry(ctx: _Ctx, call: Callable[[], Any]) -> Any:
    """`call`, retried while AWS refuses it for a dependency that is still going away."""
    while True:
        try:
            return call()
        except Exception as exc:
            if _code(exc) not in _TRANSIENT or time.monotonic() >= ctx.retry_until:
                raise
            time.sleep(POLL_SECONDS)


def _pages(client: Any, op: str, key: str, **kwargs: Any) -> Iterator[Any]:
    """Every item of a list call, through its paginator when it has one."""
    if client.can_paginate(op):
        for page in client.get_paginator(op).paginate(**kwargs):
            yield from page.get(key, [])
    else:
        yield from getattr(client, op)(**kwargs).get(key, [])


def _tags(pairs: Optional[Iterable[dict[str, str]]], key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {p[key]: p.get(value, "") for p in pairs or []}


def _k8s_owned(tags: dict[str, str], cluster: str) -> bool:
    """Tagged by the Kubernetes cloud provider or the AWS Load Balancer Controller of the cluster."""
    return f"kubernetes.io/cluster/{cluster}" in tags or tags.get("elbv2.k8s.aws/cluster") == cluster


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- finding ------------------------------------------------------------------------------------


def find_leftovers(session: boto3.session.Session, cluster: str, endpoint_url: Optional[str] = None) -> list[Leftover]:
    """Everything in the session's region still tagged with the cluster, in deletion order.

    Raises BioinfraError when a service cannot be listed (credentials, permissions): a partial list
    would let `destroy` report a clean account that is not.
    """
    ctx = _Ctx(session, endpoint_url)
    found: list[Leftover] = []
    # EFS before EC2: the mount targets' ENIs are recorded as owned, so they are not reported twice.
    finders: list[tuple[str, Callable[[_Ctx, str], list[Leftover]]]] = [
        ("EKS", _find_eks),
        ("Elastic Load Balancing", _find_load_balancers),
        ("EFS", _find_efs),
        ("EC2/VPC", _find_ec2),
        ("ECR", _find_ecr),
        ("S3", _find_s3),
        ("CloudWatch Logs", _find_log_groups),
        ("IAM", _find_iam),
        ("KMS", _find_kms),
    ]
    for service, finder in finders:
        try:
            found.extend(finder(ctx, cluster))
        except BioinfraError:
            raise
        except Exception as exc:
            if not (_code(exc) or type(exc).__module__.startswith("botocore")):
                raise  # a bug here, not an AWS answer
            raise BioinfraError(
                f"could not list {service} resources of '{cluster}': {_reason(exc)}",
                hint="check the AWS credentials and that they may list and describe resources in this region",
            ) from exc
    return sorted(found, key=_rank)


def _rank(item: Leftover) -> int:
    return ORDER.index(item.kind) if item.kind in ORDER else len(ORDER)


def _find_eks(ctx: _Ctx, cluster: str) -> list[Leftover]:
    eks = ctx.client("eks")
    found: list[Leftover] = []
    for name in _pages(eks, "list_clusters", "clusters"):
        try:
            c = eks.describe_cluster(name=name)["cluster"]
        except Exception as exc:
            if _is_gone(exc):
                continue  # deleted between the list and the describe
            raise
        tags = c.get("tags") or {}
        if tags.get(CLUSTER_TAG) != cluster:
            continue
        stack = tags.get(STACK_TAG)
        # Every node group of our cluster is ours, tagged or not: the cluster cannot go while one exists.
        for ng_name in _pages(eks, "list_nodegroups", "nodegroups", clusterName=name):
            ng = eks.describe_nodegroup(clusterName=name, nodegroupName=ng_name)["nodegroup"]
            ng_stack = (ng.get("tags") or {}).get(STACK_TAG) or stack
            found.append(Leftover("eks-nodegroup", f"{name}/{ng_name}", ng_stack, ng.get("status", "").lower()))
        found.append(Leftover("eks-cluster", name, stack, c.get("status", "").lower()))
    return found


def _find_load_balancers(ctx: _Ctx, cluster: str) -> list[Leftover]:
    """Load balancers and target groups the stacks tagged, or the cluster's controllers made for
    Services and Ingresses (tagged kubernetes.io/cluster/<name> or elbv2.k8s.aws/cluster=<name>)."""
    found: list[Leftover] = []
    elb = ctx.client("elb")
    names = [lb["LoadBalancerName"] for lb in _pages(elb, "describe_load_balancers", "LoadBalancerDescriptions")]
    for chunk in _chunks(names, 20):  # DescribeTags takes at most 20 names
        for d in elb.describe_tags(LoadBalancerNames=chunk)["TagDescriptions"]:
            tags = _tags(d.get("Tags"))
            if tags.get(CLUSTER_TAG) == cluster or _k8s_owned(tags, cluster):
                found.append(Leftover("load-balancer", d["LoadBalancerName"], tags.get(STACK_TAG), "classic"))
    elbv2 = ctx.client("elbv2")
    for kind, op, key, arn_key in (
        ("load-balancer-v2", "describe_load_balancers", "LoadBalancers", "LoadBalancerArn"),
        ("target-group", "describe_target_groups", "TargetGroups", "TargetGroupArn"),
    ):
        arns = [x[arn_key] for x in _pages(elbv2, op, key)]
        for chunk in _chunks(arns, 20):
            for d in elbv2.describe_tags(ResourceArns=chunk)["TagDescriptions"]:
                tags = _tags(d.get("Tags"))
                if tags.get(CLUSTER_TAG) == cluster or _k8s_owned(tags, cluster):
                    found.append(Leftover(kind, d["ResourceArn"], tags.get(STACK_TAG)))
    return found


def _find_efs(ctx: _Ctx, cluster: str) -> list[Leftover]:
    efs = ctx.client("efs")
    found: list[Leftover] = []
    for fs in _pages(efs, "describe_file_systems", "FileSystems"):
        tags = _tags(fs.get("Tags"))
        if tags.get(CLUSTER_TAG) != cluster or fs.get("LifeCycleState") in ("deleting", "deleted"):
            continue
        stack = tags.get(STACK_TAG)
        for mt in _pages(efs, "describe_mount_targets", "MountTargets", FileSystemId=fs["FileSystemId"]):
            if mt.get("NetworkInterfaceId"):
                ctx.owned_enis.add(mt["NetworkInterfaceId"])
            if mt.get("LifeCycleState") != "deleted":
                found.append(Leftover("efs-mount-target", mt["MountTargetId"], stack, f"of {fs['FileSystemId']}"))
        size = (fs.get("SizeInBytes") or {}).get("Value", 0)
        found.append(Leftover("efs-file-system", fs["FileSystemId"], stack, f"{size} bytes" if size else ""))
    return found


def _find_ec2(ctx: _Ctx, cluster: str) -> list[Leftover]:
    """The VPC and its contents. What lies inside a tagged VPC is swept even when untagged (a security
    group a controller made, a leaked ENI): it would block the VPC's deletion anyway. What carries
    another cluster's tag is left alone wherever it is."""
    ec2 = ctx.client("ec2")
    by_tag = [{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}]
    vpc_ids = [v["VpcId"] for v in _pages(ec2, "describe_vpcs", "Vpcs", Filters=by_tag)]

    def items(op: str, key: str, id_key: str, vpc_filter: Optional[str] = "vpc-id", param: str = "Filters",
              extra: Optional[list[list[dict[str, Any]]]] = None) -> list[tuple[dict[str, Any], dict[str, str]]]:
        searches = [by_tag, *(extra or [])]
        if vpc_filter and vpc_ids:
            searches.append([{"Name": vpc_filter, "Values": vpc_ids}])
        seen: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
        for filters in searches:
            for item in _pages(ec2, op, key, **{param: filters}):
                tags = _tags(item.get("Tags") or item.get("TagSet"))
                if tags.get(CLUSTER_TAG, cluster) == cluster:  # untagged, or ours
                    seen.setdefault(item[id_key], (item, tags))
        return list(seen.values())

    found: list[Leftover] = []

    def add(kind: str, item_id: str, tags: dict[str, str], detail: str = "") -> None:
        found.append(Leftover(kind, item_id, tags.get(STACK_TAG), detail))

    for vol, tags in items("describe_volumes", "Volumes", "VolumeId", vpc_filter=None,
                           extra=[[{"Name": f"tag:kubernetes.io/cluster/{cluster}", "Values": ["owned"]}]]):
        if vol.get("State") not in ("deleting", "deleted"):
            add("ebs-volume", vol["VolumeId"], tags, f"{vol.get('Size')} GiB {vol.get('VolumeType', '')}".strip())
    for nat, tags in items("describe_nat_gateways", "NatGateways", "NatGatewayId", param="Filter"):
        if nat.get("State") in ("deleted", "failed"):  # a failed NAT gateway holds nothing and expires
            continue
        ctx.owned_enis.update(a["NetworkInterfaceId"] for a in nat.get("NatGatewayAddresses", []) if "NetworkInterfaceId" in a)
        add("nat-gateway", nat["NatGatewayId"], tags, nat.get("State", ""))
    for addr, tags in items("describe_addresses", "Addresses", "AllocationId", vpc_filter=None):
        add("elastic-ip", addr["AllocationId"], tags, addr.get("PublicIp", ""))
    for ep, tags in items("describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId"):
        if ep.get("State", "").lower() in ("deleted", "rejected", "failed", "expired"):
            continue
        ctx.owned_enis.update(ep.get("NetworkInterfaceIds", []))
        add("vpc-endpoint", ep["VpcEndpointId"], tags, ep.get("ServiceName", ""))
    for fl, tags in items("describe_flow_logs", "FlowLogs", "FlowLogId", vpc_filter="resource-id", param="Filter"):
        add("flow-log", fl["FlowLogId"], tags, f"of {fl.get('ResourceId', '?')}")
    for eni, tags in items("describe_network_interfaces", "NetworkInterfaces", "NetworkInterfaceId",
                           extra=[[{"Name": f"tag:{CNI_CLUSTER_TAG}", "Values": [cluster]}]]):
        # Told apart by owner, not by status: in AWS a NAT gateway's or mount target's ENI is in-use and
        # requester-managed, but moto shows both as plain "available" interfaces (and keeps the NAT's
        # after the NAT gateway is deleted).
        if eni["NetworkInterfaceId"] in ctx.owned_enis:
            continue
        description = eni.get("Description", "")
        tagged = tags.get(CLUSTER_TAG) == cluster or tags.get(CNI_CLUSTER_TAG) == cluster
        # Load-balancer ENIs ("ELB app/...", "ELB net/...", "ELB <classic name>") outlive their load
        # balancer by minutes and block the subnets; detached ENIs in the VPC are orphans (VPC CNI).
        # ENIs attached to anything else (EKS control plane, instances) go with their owner.
        from_lb = description.startswith("ELB ")
        orphan = eni.get("Status") == "available" and not eni.get("RequesterManaged")
        if tagged or from_lb or orphan:
            add("network-interface", eni["NetworkInterfaceId"], tags, description)
    for igw, tags in items("describe_internet_gateways", "InternetGateways", "InternetGatewayId",
                           vpc_filter="attachment.vpc-id"):
        add("internet-gateway", igw["InternetGatewayId"], tags)
    for subnet, tags in items("describe_subnets", "Subnets", "SubnetId"):
        add("subnet", subnet["SubnetId"], tags, subnet.get("CidrBlock", ""))
    for rt, tags in items("describe_route_tables", "RouteTables", "RouteTableId"):
        if not any(a.get("Main") for a in rt.get("Associations", [])):  # the main one goes with the VPC
            add("route-table", rt["RouteTableId"], tags)
    for sg, tags in items("describe_security_groups", "SecurityGroups", "GroupId"):
        if sg.get("GroupName") != "default":  # the default one goes with the VPC
            add("security-group", sg["GroupId"], tags, sg.get("GroupName", ""))
    for vpc, tags in items("describe_vpcs", "Vpcs", "VpcId", vpc_filter=None):
        add("vpc", vpc["VpcId"], tags, vpc.get("CidrBlock", ""))
    return found


def _find_ecr(ctx: _Ctx, cluster: str) -> list[Leftover]:
    ecr = ctx.client("ecr")
    found: list[Leftover] = []
    for repo in _pages(ecr, "describe_repositories", "repositories"):
        try:
            tags = _tags(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags"))
        except Exception as exc:
            if _is_gone(exc):
                continue
            raise
        if tags.get(CLUSTER_TAG) == cluster:
            found.append(Leftover("ecr-repository", repo["repositoryName"], tags.get(STACK_TAG)))
    return found


def _bucket_region(s3: Any, bucket: dict[str, Any]) -> str:
    if bucket.get("BucketRegion"):  # AWS's ListBuckets returns it since late 2024; moto 5.2 does not
        return str(bucket["BucketRegion"])
    location = s3.get_bucket_location(Bucket=bucket["Name"]).get("LocationConstraint")
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)


def _count_versions(s3: Any, bucket: str) -> tuple[int, int]:
    """(object versions, delete markers), counted up to _COUNT_CAP in all."""
    versions = markers = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions += len(page.get("Versions", []))
        markers += len(page.get("DeleteMarkers", []))
        if versions + markers >= _COUNT_CAP:
            break
    return versions, markers


def _describe_contents(versions: int, markers: int) -> str:
    plus = "+" if versions + markers >= _COUNT_CAP else ""
    text = f"{versions}{plus} object versions"
    return text + (f" and {markers} delete markers" if markers else "")


def _find_s3(ctx: _Ctx, cluster: str) -> list[Leftover]:
    s3 = ctx.client("s3")
    region = ctx.session.region_name
    # Recent APIs filter by region on the server; older botocore does not know the parameter.
    list_params = s3.meta.service_model.operation_model("ListBuckets").input_shape.members
    by_region = {"BucketRegion": region} if "BucketRegion" in list_params else {}
    found: list[Leftover] = []
    for bucket in _pages(s3, "list_buckets", "Buckets", **by_region):
        name = bucket["Name"]
        try:
            if _bucket_region(s3, bucket) != region:
                continue  # ListBuckets lists the account's buckets in every region
            tags = _tags(s3.get_bucket_tagging(Bucket=name).get("TagSet"))
        except Exception as exc:
            # No tags, gone since the list, or another owner's policy: not a bucket we can tell is ours.
            if _code(exc) in ("NoSuchTagSet", "AccessDenied") or _is_gone(exc):
                continue
            raise
        if tags.get(CLUSTER_TAG) != cluster:
            continue
        versions, markers = _count_versions(s3, name)
        status = s3.get_bucket_versioning(Bucket=name).get("Status")
        detail = _describe_contents(versions, markers) if versions or markers else "empty"
        key = bucket_key(s3, ctx.client("kms"), name)
        if key:
            ctx.bucket_keys[name] = key
        found.append(Leftover("s3-bucket", name, tags.get(STACK_TAG), detail + (", versioned" if status == "Enabled" else ""),
                              kept_on=tags.get(KEPT_TAG, "")))
    return found


def bucket_key(s3: Any, kms: Any, bucket: str) -> Optional[str]:
    """The id of the KMS key a bucket's default encryption names (SSE-KMS or DSSE-KMS), None for none
    (SSE-S3, no such bucket) or a key KMS does not know. S3 may hold the key as an id, an ARN or an alias;
    KMS DescribeKey takes each and answers the key id.
    Ref https://docs.aws.amazon.com/AmazonS3/latest/API/API_ServerSideEncryptionByDefault.html"""
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except Exception as exc:  # noqa: BLE001 - botocore is imported lazily; match by code
        if _code(exc) == "ServerSideEncryptionConfigurationNotFoundError" or _is_gone(exc):
            return None
        raise
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        if default.get("SSEAlgorithm", "").startswith("aws:kms") and default.get("KMSMasterKeyID"):
            try:
                return str(kms.describe_key(KeyId=default["KMSMasterKeyID"])["KeyMetadata"]["KeyId"])
            except Exception as exc:  # noqa: BLE001
                if _is_gone(exc):
                    return None
                raise
    return None


def rescue_key(kms: Any, key_id: str) -> bool:
    """Cancel a key's scheduled deletion and enable it again (CancelKeyDeletion leaves it Disabled);
    whether it was scheduled. Ref https://docs.aws.amazon.com/kms/latest/APIReference/API_CancelKeyDeletion.html"""
    if kms.describe_key(KeyId=key_id)["KeyMetadata"].get("KeyState") != "PendingDeletion":
        return False
    kms.cancel_key_deletion(KeyId=key_id)
    kms.enable_key(KeyId=key_id)
    return True


def key_aliases(kms: Any, key_id: str) -> list[str]:
    """The alias names of one key."""
    return [a["AliasName"] for a in _pages(kms, "list_aliases", "Aliases", KeyId=key_id)]


def mark_kept(s3: Any, kms: Any, bucket: str, key_id: Optional[str], on: str) -> None:
    """Tag a results bucket `destroy` keeps (and its KMS key) with KEPT_TAG=<on>. PutBucketTagging
    replaces the whole set: the bucket's tags are read first."""
    try:
        tags = _tags(s3.get_bucket_tagging(Bucket=bucket).get("TagSet"))
    except Exception as exc:  # noqa: BLE001
        if _code(exc) != "NoSuchTagSet":
            raise
        tags = {}
    tags[KEPT_TAG] = on
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    if key_id:
        kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": KEPT_TAG, "TagValue": on}])


def _log_group_tags(logs: Any, group: dict[str, Any]) -> dict[str, str]:
    # ListTagsForResource wants the ARN without the ":*" that `arn` carries (moto answers {} for the
    # ":*" form rather than an error); older endpoints only have the deprecated ListTagsLogGroup.
    arn = group.get("logGroupArn") or group["arn"].removesuffix(":*")
    try:
        return dict(logs.list_tags_for_resource(resourceArn=arn).get("tags", {}))
    except Exception as exc:
        if _is_gone(exc) or not _code(exc):
            raise
        return dict(logs.list_tags_log_group(logGroupName=group["logGroupName"]).get("tags", {}))


def _find_log_groups(ctx: _Ctx, cluster: str) -> list[Leftover]:
    logs = ctx.client("logs")
    found: list[Leftover] = []
    for prefix in (f"/aws/eks/{cluster}/", f"/bioinfra/{cluster}/"):
        for group in _pages(logs, "describe_log_groups", "logGroups", logGroupNamePrefix=prefix):
            try:
                tags = _log_group_tags(logs, group)
            except Exception as exc:
                if _is_gone(exc):
                    continue
                raise
            if tags.get(CLUSTER_TAG) == cluster:
                found.append(Leftover("log-group", group["logGroupName"], tags.get(STACK_TAG)))
    return found


def _find_iam(ctx: _Ctx, cluster: str) -> list[Leftover]:
    iam = ctx.client("iam")
    found: list[Leftover] = []
    # ListRoles returns no tags, and an account may hold hundreds of roles: only the names the stacks
    # use (<cluster>-<region>-cluster, -node, -vpc-flow-logs, -workflow..., bioinfra.targets.aws.iam_role_name;
    # <cluster>-cluster... before issue #18) are looked at, then checked by tag, this region's or none.
    region = ctx.session.region_name
    for role in _pages(iam, "list_roles", "Roles"):
        if not role["RoleName"].startswith(f"{cluster}-"):
            continue
        try:
            tags = _tags(_pages(iam, "list_role_tags", "Tags", RoleName=role["RoleName"]))
        except Exception as exc:
            if _is_gone(exc):
                continue
            raise
        if tags.get(CLUSTER_TAG) == cluster and tags.get(REGION_TAG, region) == region:
            found.append(Leftover("iam-role", role["RoleName"], tags.get(STACK_TAG)))
    for provider in iam.list_open_id_connect_providers().get("OpenIDConnectProviderList", []):
        arn = provider["Arn"]
        try:
            tags = _tags(_pages(iam, "list_open_id_connect_provider_tags", "Tags", OpenIDConnectProviderArn=arn))
        except Exception as exc:
            if _is_gone(exc):
                continue
            raise
        if tags.get(CLUSTER_TAG) == cluster and tags.get(REGION_TAG, region) == region:
            found.append(Leftover("iam-oidc-provider", arn, tags.get(STACK_TAG)))
    return found


def _find_kms(ctx: _Ctx, cluster: str) -> list[Leftover]:
    """The cluster's keys and their aliases. A key that encrypts one of the cluster's buckets found by
    _find_s3 (its default encryption) names them in `encrypts`, and so does its alias."""
    kms = ctx.client("kms")
    found: list[Leftover] = []
    # key id -> (stack, buckets it encrypts, kept on), including keys already pending deletion
    ours: dict[str, tuple[Optional[str], tuple[str, ...], str]] = {}
    for key in _pages(kms, "list_keys", "Keys"):
        try:
            tags = _tags(_pages(kms, "list_resource_tags", "Tags", KeyId=key["KeyId"]), "TagKey", "TagValue")
        except Exception as exc:
            # AWS-managed keys and keys whose policy shuts this principal out answer AccessDenied.
            if _code(exc) == "AccessDeniedException" or _is_gone(exc):
                continue
            raise
        if tags.get(CLUSTER_TAG) != cluster:
            continue
        encrypts = tuple(sorted(b for b, k in ctx.bucket_keys.items() if k == key["KeyId"]))
        ours[key["KeyId"]] = (tags.get(STACK_TAG), encrypts, tags.get(KEPT_TAG, ""))
        state = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"].get("KeyState", "")
        # Scheduled already: counts as gone, unless it encrypts a bucket that is still there (a bucket a
        # bioinfra before the key was kept too kept alone): _kms_key_start cancels that deletion.
        if state not in ("PendingDeletion", "PendingReplicaDeletion") or encrypts:
            detail = ", ".join([state.lower(), *(f"encrypts s3-bucket {b}" for b in encrypts)])
            found.append(Leftover("kms-key", key["KeyId"], tags.get(STACK_TAG), detail, encrypts, tags.get(KEPT_TAG, "")))
    for alias in _pages(kms, "list_aliases", "Aliases"):
        if alias["AliasName"].startswith(f"alias/{cluster}-") and alias.get("TargetKeyId") in ours:
            stack, encrypts, kept_on = ours[alias["TargetKeyId"]]
            found.append(Leftover("kms-alias", alias["AliasName"], stack, alias["TargetKeyId"], encrypts, kept_on))
    return found


# --- deleting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    """How one kind is deleted. `start` issues the delete and returns a note for the report; for
    deletes AWS finishes later, `gone` answers True once the resource no longer exists (a not-found
    error counts as True), and the sweep waits for every item of the kind before the next kind."""

    start: Callable[[_Ctx, Leftover], str]
    gone: Optional[Callable[[_Ctx, Leftover], bool]] = None
    prepare: Optional[Callable[[_Ctx, list[Leftover]], None]] = None


def delete_leftovers(
    session: boto3.session.Session,
    leftovers: Iterable[Leftover],
    *,
    force_empty_buckets: bool,
    say: Callable[[str], None],
    endpoint_url: Optional[str] = None,
    stack: Optional[str] = None,
) -> SweepResult:
    """Delete the leftovers in dependency order, one report line each through `say`.

    With `stack`, only leftovers of that stack are handled. A bucket holding any object version or
    delete marker is kept unless `force_empty_buckets`. A failure is recorded and the sweep goes on;
    what is already gone counts as deleted, so re-running is harmless.
    """
    ctx = _Ctx(session, endpoint_url, force_empty_buckets)
    result = SweepResult()

    def deleted(item: Leftover, note: str) -> None:
        result.deleted.append(item)
        say(f"deleted {item.kind} {item.id}" + _paren(item.stack, note))

    def failed(item: Leftover, reason: str) -> None:
        result.failed.append((item, reason))
        say(f"failed {item.kind} {item.id}" + _paren(item.stack, "") + f": {reason}")

    todo = sorted((x for x in leftovers if stack is None or x.stack == stack), key=_rank)
    for kind, group in itertools.groupby(todo, key=lambda x: x.kind):
        items = list(group)
        step = _STEPS.get(kind)
        if step is None:
            for item in items:
                failed(item, f"unknown kind '{kind}'")
            continue
        ctx.retry_until = time.monotonic() + RETRY_SECONDS
        if step.prepare:
            step.prepare(ctx, items)
        waiting: list[tuple[Leftover, str]] = []
        for item in items:
            try:
                note = step.start(ctx, item)
            except _Keep as keep:
                result.kept.append((item, str(keep)))
                say(f"kept {item.kind} {item.id}" + _paren(item.stack, "") + f": {keep}")
                continue
            except Exception as exc:  # one failure must not stop the sweep
                if _is_gone(exc):
                    deleted(item, _ALREADY_GONE)
                else:
                    failed(item, str(exc) if isinstance(exc, _Fail) else _reason(exc))
                continue
            if step.gone is None or note == _ALREADY_GONE:
                deleted(item, note)
            else:
                waiting.append((item, note))
        if waiting and step.gone:
            _wait_gone(ctx, kind, step.gone, waiting, deleted, failed)
    return result


def _paren(stack: Optional[str], note: str) -> str:
    parts = [p for p in (f"stack {stack}" if stack else "", note) if p]
    return f" ({'; '.join(parts)})" if parts else ""


def _wait_gone(
    ctx: _Ctx,
    kind: str,
    gone: Callable[[_Ctx, Leftover], bool],
    waiting: list[tuple[Leftover, str]],
    deleted: Callable[[Leftover, str], None],
    failed: Callable[[Leftover, str], None],
) -> None:
    """Poll every item until it is gone, fails, or the kind's timeout passes."""
    timeout = WAIT_TIMEOUT_SECONDS.get(kind, 5 * 60)
    deadline = time.monotonic() + timeout
    while waiting:
        still: list[tuple[Leftover, str]] = []
        for item, note in waiting:
            try:
                done = gone(ctx, item)
            except Exception as exc:
                if not _is_gone(exc):
                    failed(item, str(exc) if isinstance(exc, _Fail) else _reason(exc))
                    continue
                done = True
            if done:
                deleted(item, note)
            else:
                still.append((item, note))
        waiting = still
        if waiting and time.monotonic() >= deadline:
            for item, _ in waiting:
                failed(item, f"still being deleted after {timeout:.0f} s; run the sweep again later")
            return
        if waiting:
            time.sleep(POLL_SECONDS)


def _wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise _Fail(f"{what} after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


# EKS ------------------------------------------------------------------------------------------


def _nodegroup(ctx: _Ctx, item: Leftover) -> dict[str, Any]:
    cluster, name = item.id.split("/", 1)
    return ctx.client("eks").describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]


def _nodegroup_start(ctx: _Ctx, item: Leftover) -> str:
    if _nodegroup(ctx, item).get("status") != "DELETING":  # a previous sweep may have started it
        cluster, name = item.id.split("/", 1)
        ctx.client("eks").delete_nodegroup(clusterName=cluster, nodegroupName=name)
    return ""


def _nodegroup_gone(ctx: _Ctx, item: Leftover) -> bool:
    ng = _nodegroup(ctx, item)
    if ng.get("status") == "DELETE_FAILED":
        issues = "; ".join(i.get("message", "") for i in ng.get("health", {}).get("issues", []))
        raise _Fail(f"EKS could not delete it: {issues or 'DELETE_FAILED'}")
    return False


def _cluster_start(ctx: _Ctx, item: Leftover) -> str:
    eks = ctx.client("eks")
    if eks.describe_cluster(name=item.id)["cluster"].get("status") != "DELETING":
        eks.delete_cluster(name=item.id)
    return ""


def _cluster_gone(ctx: _Ctx, item: Leftover) -> bool:
    ctx.client("eks").describe_cluster(name=item.id)
    return False


# Load balancers and volumes -------------------------------------------------------------------


def _elb_start(ctx: _Ctx, item: Leftover) -> str:
    ctx.client("elb").delete_load_balancer(LoadBalancerName=item.id)  # idempotent in AWS
    return ""


def _elbv2_start(ctx: _Ctx, item: Leftover) -> str:
    ctx.client("elbv2").delete_load_balancer(LoadBalancerArn=item.id)
    return ""


def _elbv2_gone(ctx: _Ctx, item: Leftover) -> bool:
    ctx.client("elbv2").describe_load_balancers(LoadBalancerArns=[item.id])
    return False


def _target_group_start(ctx: _Ctx, item: Leftover) -> str:
    # In use by a listener of a load balancer AWS is still removing: retried.
    _retry(ctx, lambda: ctx.client("elbv2").delete_target_group(TargetGroupArn=item.id))
    return ""


def _volume_state(ctx: _Ctx, item: Leftover) -> str:
    return str(ctx.client("ec2").describe_volumes(VolumeIds=[item.id])["Volumes"][0]["State"])


def _volume_start(ctx: _Ctx, item: Leftover) -> str:
    state = _volume_state(ctx, item)
    if state in ("deleting", "deleted"):
        return _ALREADY_GONE if state == "deleted" else ""
    if state == "in-use":
        # Attached to a node that is terminating with its node group: wait, never force-detach.
        _wait_until(lambda: _volume_state(ctx, item) == "available",
                    WAIT_TIMEOUT_SECONDS["ebs-volume"], "still attached")
    ctx.client("ec2").delete_volume(VolumeId=item.id)
    return ""


def _volume_gone(ctx: _Ctx, item: Leftover) -> bool:
    return _volume_state(ctx, item) == "deleted"


# EFS ------------------------------------------------------------------------------------------


def _mount_target_start(ctx: _Ctx, item: Leftover) -> str:
    ctx.client("efs").delete_mount_target(MountTargetId=item.id)
    return ""


def _mount_target_gone(ctx: _Ctx, item: Leftover) -> bool:
    targets = ctx.client("efs").describe_mount_targets(MountTargetId=item.id)["MountTargets"]
    return all(t.get("LifeCycleState") == "deleted" for t in targets)


def _file_system_start(ctx: _Ctx, item: Leftover) -> str:
    ctx.client("efs").delete_file_system(FileSystemId=item.id)
    return ""


def _file_system_gone(ctx: _Ctx, item: Leftover) -> bool:
    systems = ctx.client("efs").describe_file_systems(FileSystemId=item.id)["FileSystems"]
    return all(fs.get("LifeCycleState") == "deleted" for fs in systems)


# VPC ------------------------------------------------------------------------------------------


def _nat_state(ctx: _Ctx, item: Leftover) -> str:
    nats = ctx.client("ec2").describe_nat_gateways(NatGatewayIds=[item.id])["NatGateways"]
    return str(nats[0]["State"]) if nats else "deleted"


def _nat_start(ctx: _Ctx, item: Leftover) -> str:
    state = _nat_state(ctx, item)
    if state in ("deleted", "failed"):
        return _ALREADY_GONE
    if state != "deleting":
        ctx.client("ec2").delete_nat_gateway(NatGatewayId=item.id)
    return ""


def _nat_gone(ctx: _Ctx, item: Leftover) -> bool:
    # The Elastic IP and the subnet are only free once the gateway reports `deleted`.
    return _nat_state(ctx, item) in ("deleted", "failed")


def _eip_start(ctx: _Ctx, item: Leftover) -> str:
    ec2 = ctx.client("ec2")
    address = ec2.describe_addresses(AllocationIds=[item.id])["Addresses"][0]
    if address.get("AssociationId"):
        _quiet_gone(lambda: ec2.disassociate_address(AssociationId=address["AssociationId"]))
    _retry(ctx, lambda: ec2.release_address(AllocationId=item.id))
    return ""


def _unsuccessful(response: dict[str, Any]) -> None:
    """Batch EC2 deletes report per-item errors in `Unsuccessful` instead of raising (moto raises
    InvalidFlowLogId.NotFound for an unknown flow log instead; both read as gone)."""
    for entry in response.get("Unsuccessful", []):
        err = entry.get("Error", {})
        code, message = err.get("Code", "?"), err.get("Message", "")
        if code.endswith("NotFound"):
            continue
        raise _Fail(f"{code}: {message}")


def _endpoint_state(ctx: _Ctx, item: Leftover) -> str:
    endpoints = ctx.client("ec2").describe_vpc_endpoints(VpcEndpointIds=[item.id])["VpcEndpoints"]
    return str(endpoints[0].get("State", "")).lower() if endpoints else "deleted"


def _endpoint_start(ctx: _Ctx, item: Leftover) -> str:
    # State first: a deleted endpoint stays listed as `deleted` for a while, and deleting it again
    # is an error (moto answers InvalidRoute.NotFound for a gateway endpoint).
    state = _endpoint_state(ctx, item)
    if state == "deleted":
        return _ALREADY_GONE
    if state != "deleting":
        _unsuccessful(ctx.client("ec2").delete_vpc_endpoints(VpcEndpointIds=[item.id]))
    return ""


def _endpoint_gone(ctx: _Ctx, item: Leftover) -> bool:
    # Interface endpoints hold ENIs in the subnets until they are fully deleted.
    return _endpoint_state(ctx, item) == "deleted"


def _flow_log_start(ctx: _Ctx, item: Leftover) -> str:
    _unsuccessful(ctx.client("ec2").delete_flow_logs(FlowLogIds=[item.id]))
    return ""


def _eni(ctx: _Ctx, item: Leftover) -> dict[str, Any]:
    return ctx.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[item.id])["NetworkInterfaces"][0]


def _eni_start(ctx: _Ctx, item: Leftover) -> str:
    ec2 = ctx.client("ec2")
    eni = _eni(ctx, item)
    if eni.get("RequesterManaged") or (eni.get("Status") == "in-use" and eni.get("Description", "").startswith("ELB ")):
        # AWS owns it (a load balancer's, an endpoint's): only AWS can remove it, after its owner.
        return "removed by AWS"
    attachment = eni.get("Attachment") or {}
    if eni.get("Status") == "in-use" and attachment.get("AttachmentId"):
        ec2.detach_network_interface(AttachmentId=attachment["AttachmentId"], Force=True)
        _wait_until(lambda: _eni(ctx, item).get("Status") == "available",
                    WAIT_TIMEOUT_SECONDS["network-interface"], "still attached")
    ec2.delete_network_interface(NetworkInterfaceId=item.id)
    return ""


def _eni_gone(ctx: _Ctx, item: Leftover) -> bool:
    _eni(ctx, item)
    return False


def _igw_start(ctx: _Ctx, item: Leftover) -> str:
    ec2 = ctx.client("ec2")
    igw = ec2.describe_internet_gateways(InternetGatewayIds=[item.id])["InternetGateways"][0]
    for attachment in igw.get("Attachments", []):
        if attachment.get("State") == "detached":
            continue
        # Refused while the VPC still maps public addresses (NAT, load balancers) being released.
        _retry(ctx, lambda a=attachment: _quiet_gone(
            lambda: ec2.detach_internet_gateway(InternetGatewayId=item.id, VpcId=a["VpcId"])))
    ec2.delete_internet_gateway(InternetGatewayId=item.id)
    return ""


def _subnet_start(ctx: _Ctx, item: Leftover) -> str:
    _retry(ctx, lambda: ctx.client("ec2").delete_subnet(SubnetId=item.id))
    return ""


def _route_table_start(ctx: _Ctx, item: Leftover) -> str:
    ec2 = ctx.client("ec2")
    table = ec2.describe_route_tables(RouteTableIds=[item.id])["RouteTables"][0]
    for association in table.get("Associations", []):
        if association.get("Main"):
            raise _Fail("it is the main route table of its VPC; it goes with the VPC")
        _quiet_gone(lambda a=association: ec2.disassociate_route_table(AssociationId=a["RouteTableAssociationId"]))
    _retry(ctx, lambda: ec2.delete_route_table(RouteTableId=item.id))
    return ""


def _security_groups_prepare(ctx: _Ctx, items: list[Leftover]) -> None:
    """Revoke the rules that name another security group: a group referenced by another group's rule
    cannot be deleted, and groups in one VPC often reference each other (nodes <-> control plane).
    (moto deletes a referenced group anyway, so there this step is not needed.)"""
    ec2 = ctx.client("ec2")
    for item in items:
        try:
            sg = ec2.describe_security_groups(GroupIds=[item.id])["SecurityGroups"][0]
            ingress = [p for p in sg.get("IpPermissions", []) if p.get("UserIdGroupPairs")]
            egress = [p for p in sg.get("IpPermissionsEgress", []) if p.get("UserIdGroupPairs")]
            if ingress:
                ec2.revoke_security_group_ingress(GroupId=item.id, IpPermissions=ingress)
            if egress:
                ec2.revoke_security_group_egress(GroupId=item.id, IpPermissions=egress)
        except Exception:
            pass  # the delete that follows reports what is wrong with this group


def _security_group_start(ctx: _Ctx, item: Leftover) -> str:
    _retry(ctx, lambda: ctx.client("ec2").delete_security_group(GroupId=item.id))
    return ""


def _vpc_start(ctx: _Ctx, item: Leftover) -> str:
    _retry(ctx, lambda: ctx.client("ec2").delete_vpc(VpcId=item.id))  # its default SG, main table, ACL go with it
    return ""


# Storage, logs, IAM, KMS ----------------------------------------------------------------------


def _ecr_start(ctx: _Ctx, item: Leftover) -> str:
    # Images are rebuilt from images/ at any time (the stacks set force_delete for the same reason).
    ctx.client("ecr").delete_repository(repositoryName=item.id, force=True)
    return ""


def bucket_contents(s3: Any, bucket: str) -> str:
    """'' for an empty (or missing) bucket, else e.g. '3 object versions and 1 delete markers'."""
    try:
        versions, markers = _count_versions(s3, bucket)
    except Exception as exc:  # noqa: BLE001 - botocore is imported lazily; match by code
        if _code(exc) in ("NoSuchBucket", "404"):
            return ""
        raise
    return _describe_contents(versions, markers) if versions or markers else ""


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version, delete marker and unfinished upload; returns how many versions."""
    emptied = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objects = [{"Key": o["Key"], "VersionId": o["VersionId"]} for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for chunk in _chunks(objects, 1000):  # DeleteObjects takes at most 1000 keys
            errors = s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True}).get("Errors", [])
            if errors:
                raise RuntimeError(f"could not delete {len(errors)} object versions, e.g. {errors[0].get('Key')}: "
                                   f"{errors[0].get('Code')} {errors[0].get('Message', '')}")
            emptied += len(chunk)
    for upload in _pages(s3, "list_multipart_uploads", "Uploads", Bucket=bucket):
        _quiet_gone(lambda u=upload: s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]))
    return emptied


def _bucket_start(ctx: _Ctx, item: Leftover) -> str:
    s3 = ctx.client("s3")
    versions, markers = _count_versions(s3, item.id)  # counted now: data may have arrived since the find
    if not versions and not markers:
        s3.delete_bucket(Bucket=item.id)
        return ""
    if not ctx.force_empty_buckets:
        raise _Keep(f"has {_describe_contents(versions, markers)}; re-run with --force-empty-buckets to delete them")
    try:
        emptied = empty_bucket(s3, item.id)
    except RuntimeError as exc:
        raise _Fail(str(exc)) from None
    s3.delete_bucket(Bucket=item.id)
    return f"emptied {emptied} object versions and delete markers first"


def _log_group_start(ctx: _Ctx, item: Leftover) -> str:
    ctx.client("logs").delete_log_group(logGroupName=item.id)
    return ""


def _role_start(ctx: _Ctx, item: Leftover) -> str:
    iam = ctx.client("iam")
    # DeleteRole refuses a role with attached or inline policies or in an instance profile.
    for policy in list(_pages(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=item.id)):
        _quiet_gone(lambda p=policy: iam.detach_role_policy(RoleName=item.id, PolicyArn=p["PolicyArn"]))
    for name in list(_pages(iam, "list_role_policies", "PolicyNames", RoleName=item.id)):
        _quiet_gone(lambda n=name: iam.delete_role_policy(RoleName=item.id, PolicyName=n))
    for profile in list(_pages(iam, "list_instance_profiles_for_role", "InstanceProfiles", RoleName=item.id)):
        profile_name = profile["InstanceProfileName"]
        _quiet_gone(lambda n=profile_name: iam.remove_role_from_instance_profile(InstanceProfileName=n, RoleName=item.id))
        # A profile holds one role at most: with ours removed it is empty and exists only for it.
        _quiet_gone(lambda n=profile_name: iam.delete_instance_profile(InstanceProfileName=n))
    iam.delete_role(RoleName=item.id)
    return ""


def _oidc_start(ctx: _Ctx, item: Leftover) -> str:
    ctx.client("iam").delete_open_id_connect_provider(OpenIDConnectProviderArn=item.id)
    return ""


def _kept_bucket(ctx: _Ctx, item: Leftover) -> Optional[str]:
    """The first bucket the key (or the alias's key) encrypts that still exists: checked now, since the
    sweep deletes buckets before keys (an emptied or empty one is gone by then)."""
    s3 = ctx.client("s3")
    for bucket in item.encrypts:
        try:
            s3.head_bucket(Bucket=bucket)
        except Exception as exc:  # noqa: BLE001 - botocore is imported lazily; match by code
            if _code(exc) in ("404", "NoSuchBucket"):
                continue
            raise  # not known to be gone (403, throttling): the key is not deleted
        return bucket
    return None


def _kms_alias_start(ctx: _Ctx, item: Leftover) -> str:
    if bucket := _kept_bucket(ctx, item):
        raise _Keep(f"names kms-key {item.detail}, kept with s3-bucket {bucket}; it goes with them (--force-empty-buckets)")
    ctx.client("kms").delete_alias(AliasName=item.id)
    return ""


def _kms_key_start(ctx: _Ctx, item: Leftover) -> str:
    kms = ctx.client("kms")
    if bucket := _kept_bucket(ctx, item):
        # Never scheduled for deletion while the bucket it encrypts exists: KMS would delete it after the
        # window, and every object in the bucket would be unreadable for good. A deletion scheduled already
        # is cancelled.
        rescued = " (its deletion, scheduled earlier, is cancelled)" if rescue_key(kms, item.id) else ""
        raise _Keep(f"encrypts s3-bucket {bucket}, which is kept: its objects cannot be read without this key{rescued}, "
                    "so it goes only after the bucket (--force-empty-buckets); a KMS key costs about $1 a month")
    # KMS never deletes a key at once: it schedules the deletion, which counts as gone here. State
    # first: AWS refuses to schedule a pending key again (KMSInvalidStateException); moto accepts it.
    if kms.describe_key(KeyId=item.id)["KeyMetadata"].get("KeyState") in ("PendingDeletion", "PendingReplicaDeletion"):
        return "deletion already scheduled"
    kms.schedule_key_deletion(KeyId=item.id, PendingWindowInDays=KMS_PENDING_DAYS)
    return f"deletion scheduled in {KMS_PENDING_DAYS} days"


_STEPS: dict[str, _Step] = {
    "eks-nodegroup": _Step(_nodegroup_start, _nodegroup_gone),
    "eks-cluster": _Step(_cluster_start, _cluster_gone),
    "load-balancer": _Step(_elb_start),
    "load-balancer-v2": _Step(_elbv2_start, _elbv2_gone),
    "target-group": _Step(_target_group_start),
    "ebs-volume": _Step(_volume_start, _volume_gone),
    "efs-mount-target": _Step(_mount_target_start, _mount_target_gone),
    "efs-file-system": _Step(_file_system_start, _file_system_gone),
    "nat-gateway": _Step(_nat_start, _nat_gone),
    "elastic-ip": _Step(_eip_start),
    "vpc-endpoint": _Step(_endpoint_start, _endpoint_gone),
    "flow-log": _Step(_flow_log_start),
    "network-interface": _Step(_eni_start, _eni_gone),
    "internet-gateway": _Step(_igw_start),
    "subnet": _Step(_subnet_start),
    "route-table": _Step(_route_table_start),
    "security-group": _Step(_security_group_start, prepare=_security_groups_prepare),
    "vpc": _Step(_vpc_start),
    "ecr-repository": _Step(_ecr_start),
    "s3-bucket": _Step(_bucket_start),
    "log-group": _Step(_log_group_start),
    "iam-role": _Step(_role_start),
    "iam-oidc-provider": _Step(_oidc_start),
    "kms-alias": _Step(_kms_alias_start),
    "kms-key": _Step(_kms_key_start),
}


# --- clearing the VPC before the network stack's destroy ----------------------------------------
#
# What AWS or Kubernetes put inside the cluster's VPC without our tags holds its subnets, security groups
# or the VPC itself, so the network stack's `terraform destroy` fails with DependencyViolation (and every
# re-run the same way), and the final sweep, which would delete them, never runs:
# - GuardDuty Runtime Monitoring's VPC endpoint `com.amazonaws.<region>.guardduty-data` and its security
#   group `GuardDutyManagedSecurityGroup-<vpc>`, made in every VPC of an account where the agent is
#   managed automatically. Ref https://docs.aws.amazon.com/guardduty/latest/ug/runtime-monitoring-agent-resource-clean-up.html
# - ENIs the VPC CNI allocated (description `aws-K8S-i-...` / `aws-K8S-eni-...`) and never freed because
#   their node went first: status `available`. Ref https://github.com/aws/amazon-vpc-cni-k8s/issues/1223
# - ENIs of a load balancer a Service left (requester-managed: AWS removes them after the load balancer;
#   here they are named with what holds them).
# Terraform's own resources carry `bioinfra:cluster` (provider default_tags) and are Terraform's to delete.

_GONE_STATES = ("deleted", "rejected", "failed", "expired")


def clear_vpc_blockers(session: boto3.session.Session, cluster: str, *, say: Callable[[str], None],
                       endpoint_url: Optional[str] = None) -> SweepResult:
    """Delete what blocks the deletion of the cluster's VPC and is not Terraform's: its VPC endpoints
    (waited for, bounded), its `available` ENIs, and its non-default security groups (their rules naming
    other groups revoked first, and other groups' rules naming them), each named through `say`.

    Only inside the VPC tagged `bioinfra:cluster=<cluster>`, and nothing that carries a `bioinfra:cluster`
    tag (ours is Terraform's; another cluster's is not ours). ENIs still in use are not touched: named,
    with what holds them. Safe to re-run: with nothing left it says nothing and returns an empty result.
    """
    ctx = _Ctx(session, endpoint_url)
    result = SweepResult()
    vpc = "(the cluster's)"
    try:
        by_tag = [{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}]
        for found in list(_pages(ctx.client("ec2"), "describe_vpcs", "Vpcs", Filters=by_tag)):
            vpc = found["VpcId"]
            _clear_vpc(ctx, vpc, cluster, say, result)
    except Exception as exc:
        if not (_code(exc) or type(exc).__module__.startswith("botocore")):
            raise  # a bug here, not an AWS answer
        # Not fatal: Terraform's destroy may still go through (nothing blocks), and says so if it does not.
        result.failed.append((Leftover("vpc", vpc, None), _reason(exc)))
        say(f"VPC {vpc}: could not clear what blocks its deletion ({_reason(exc)}); the network stack's "
            "destroy may fail with DependencyViolation: check the credentials may describe and delete "
            "VPC endpoints, network interfaces and security groups")
    return result


def _foreign(tags: dict[str, str], cluster: str) -> bool:
    """Not made by our Terraform (no bioinfra tag) and not claimed by another cluster."""
    return CLUSTER_TAG not in tags and tags.get(CNI_CLUSTER_TAG, cluster) == cluster


def _clear_vpc(ctx: _Ctx, vpc: str, cluster: str, say: Callable[[str], None], result: SweepResult) -> None:
    ec2 = ctx.client("ec2")
    in_vpc = [{"Name": "vpc-id", "Values": [vpc]}]
    owned: set[str] = set()  # ENIs a live endpoint or NAT gateway holds: they go with it

    def merge(part: SweepResult) -> None:
        result.deleted += part.deleted
        result.failed += part.failed

    # 1. VPC endpoints: an interface endpoint holds an ENI in each of its subnets and uses its groups.
    endpoints, endpoint_enis = [], {}
    for ep in _pages(ec2, "describe_vpc_endpoints", "VpcEndpoints", Filters=in_vpc):
        if ep.get("State", "").lower() in _GONE_STATES:
            continue
        endpoint_enis[ep["VpcEndpointId"]] = set(ep.get("NetworkInterfaceIds", []))
        owned.update(endpoint_enis[ep["VpcEndpointId"]])
        if _foreign(_tags(ep.get("Tags")), cluster):
            endpoints.append(Leftover("vpc-endpoint", ep["VpcEndpointId"], None, ep.get("ServiceName", "")))
    for nat in _pages(ec2, "describe_nat_gateways", "NatGateways", Filter=in_vpc):
        if nat.get("State") not in ("deleted", "failed"):
            owned.update(a["NetworkInterfaceId"] for a in nat.get("NatGatewayAddresses", []) if "NetworkInterfaceId" in a)
    if endpoints:
        _say_found(say, vpc, endpoints)
        merge(_delete_quietly(ctx, endpoints, say))
        # A deleted endpoint's ENIs are AWS's to remove (requester-managed, in use until then: named below);
        # moto leaves them as plain available ENIs, deleted below like any orphan.
        for item in result.deleted:
            owned.difference_update(endpoint_enis.get(item.id, set()))

    # 2. ENIs in its subnets: the available ones are orphans (deleted); in-use ones are named.
    enis, busy = [], []
    for eni in _pages(ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=in_vpc):
        if eni["NetworkInterfaceId"] in owned or not _foreign(_tags(eni.get("TagSet")), cluster):
            continue
        if eni.get("Status") == "available" and not eni.get("RequesterManaged"):
            enis.append(Leftover("network-interface", eni["NetworkInterfaceId"], None, eni.get("Description", "")))
        else:
            busy.append(eni)
    if enis:
        _say_found(say, vpc, enis)
        deleted: list[Leftover] = []
        for item in enis:
            try:
                ec2.delete_network_interface(NetworkInterfaceId=item.id)
                note = ""
            except Exception as exc:
                if not _is_gone(exc):  # e.g. InvalidNetworkInterface.InUse: attached since it was listed
                    result.failed.append((item, _reason(exc)))
                    say(f"failed network-interface {item.id}: {_reason(exc)}")
                    continue
                note = f" ({_ALREADY_GONE})"
            deleted.append(item)
            say(f"deleted network-interface {item.id}{note}")
        result.deleted += deleted
    for eni in busy:
        say(f"VPC {vpc}: network-interface {eni['NetworkInterfaceId']} is in use, left to its owner: "
            f"{_eni_holder(eni)}")

    # 3. Security groups not Terraform's (not the default one: it goes with the VPC).
    groups = list(_pages(ec2, "describe_security_groups", "SecurityGroups", Filters=in_vpc))
    foreign = [Leftover("security-group", sg["GroupId"], None, sg.get("GroupName", "")) for sg in groups
               if sg.get("GroupName") != "default" and _foreign(_tags(sg.get("Tags")), cluster)]
    if foreign:
        _say_found(say, vpc, foreign)
        _unreference(ec2, groups, {x.id for x in foreign})
        merge(_delete_quietly(ctx, foreign, say))


def _say_found(say: Callable[[str], None], vpc: str, items: list[Leftover]) -> None:
    names = ", ".join(f"{x.kind} {x.id}" + (f" ({x.detail})" if x.detail else "") for x in items)
    say(f"VPC {vpc}: removing what blocks its deletion and is not Terraform's: {names}")


def _delete_quietly(ctx: _Ctx, items: list[Leftover], say: Callable[[str], None]) -> SweepResult:
    return delete_leftovers(ctx.session, items, force_empty_buckets=False, say=say, endpoint_url=ctx.endpoint_url)


def _eni_holder(eni: dict[str, Any]) -> str:
    """What holds an in-use ENI, in the words AWS gives it."""
    attachment = eni.get("Attachment") or {}
    parts = [f"{k} {v}" for k, v in (("instance", attachment.get("InstanceId")),
                                     ("owner", attachment.get("InstanceOwnerId") if not attachment.get("InstanceId") else None),
                                     ("type", eni.get("InterfaceType") if eni.get("InterfaceType") != "interface" else None),
                                     # AWS's service that made it; moto fills RequesterId in on every ENI
                                     ("requester", eni.get("RequesterId") if eni.get("RequesterManaged") else None),
                                     ) if v]
    description = eni.get("Description") or ""
    what = ", ".join(parts) or "status " + str(eni.get("Status", "?"))
    return f"{description!r}, {what}" if description else what


def _unreference(ec2: Any, groups: list[dict[str, Any]], doomed: set[str]) -> None:
    """Revoke the rules that stand between a doomed group and its deletion: its own rules naming another
    group, and other groups' rules naming it (AWS refuses to delete a referenced group)."""
    for sg in groups:
        for key, revoke in (("IpPermissions", ec2.revoke_security_group_ingress),
                            ("IpPermissionsEgress", ec2.revoke_security_group_egress)):
            rules = []
            for rule in sg.get(key, []):
                pairs = [p for p in rule.get("UserIdGroupPairs", [])
                         if sg["GroupId"] in doomed or p.get("GroupId") in doomed]
                if pairs:
                    rules.append({k: v for k, v in rule.items() if k in ("IpProtocol", "FromPort", "ToPort")}
                                 | {"UserIdGroupPairs": [{"GroupId": p["GroupId"]} for p in pairs]})
            if rules:
                try:
                    revoke(GroupId=sg["GroupId"], IpPermissions=rules)
                except Exception as exc:  # the delete that follows says what is wrong
                    if not _code(exc):
                        raise
