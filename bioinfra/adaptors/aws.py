"""boto3 for target aws: the session, the credentials check, the remote-state bucket and table, and
the cluster's facts and kubeconfig (EKS describe_cluster / describe_nodegroup, an EKS token).

Imported lazily (the aws extra); every client goes to `endpoint_url` when one is configured, so an
emulator such as moto sees exactly what Terraform sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, Optional

from bioinfra.errors import ConfigError, InputError, PreflightError, ToolMissingError

ENDPOINT_ENV = "BIOINFRA_AWS_ENDPOINT_URL"  # overrides aws.endpoint_url (bioinfra.targets.aws.endpoint_url)

# kubectl's exec plugin for EKS is the AWS CLI: `aws eks get-token` (what `aws eks update-kubeconfig` writes).
PLUGIN = "aws"
PLUGIN_INSTALL_HINT = (
    "Install the AWS CLI (it provides `aws eks get-token`) by following "
    "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html, "
    "or run `bioinfra kubeconfig aws --auth token`"
)
# An EKS token is a presigned STS GetCallerIdentity URL, exactly as `aws eks get-token` builds it (awscli
# customizations/eks/get_token.py): the cluster name signed in as a header, the URL valid 60 s for STS,
# and the token accepted by EKS for 15 minutes after signing (the CLI reports 14 to be safe).
# Ref https://github.com/kubernetes-sigs/aws-iam-authenticator#api-authorization-from-outside-a-cluster
TOKEN_PREFIX = "k8s-aws-v1."
K8S_AWS_ID_HEADER = "x-k8s-aws-id"
TOKEN_URL_SECONDS = 60
TOKEN_LIFETIME = timedelta(minutes=14)


def boto3_module() -> Any:
    try:
        import boto3
    except ImportError:
        raise ToolMissingError("the AWS SDK (boto3) is not installed", hint="pip install 'bioinfra[aws]'") from None
    return boto3


@dataclass
class AwsSession:
    session: Any  # boto3.session.Session
    endpoint_url: Optional[str]

    @property
    def region(self) -> str:
        return self.session.region_name

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)


def open_session(region: str, profile: Optional[str], endpoint_url: Optional[str]) -> AwsSession:
    """A session for the region and profile; ConfigError naming aws.profile if the profile is unknown."""
    boto3 = boto3_module()
    import botocore.exceptions

    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound:
        raise ConfigError(
            f"AWS profile '{profile}' does not exist",
            problems=[f"aws.profile: no profile '{profile}' in ~/.aws/config or ~/.aws/credentials"],
            hint="run `aws configure --profile NAME`, or remove aws.profile to use the default credentials",
        ) from None
    return AwsSession(session, endpoint_url)


def _where(aws: AwsSession) -> str:
    return "aws.profile" if aws.session.profile_name not in (None, "default") else "aws.profile (or AWS_PROFILE)"


def _no_credentials(aws: AwsSession) -> ConfigError:
    return ConfigError(
        "no AWS credentials found",
        problems=[f"{_where(aws)}: no credentials in the environment, ~/.aws or an instance role"],
        hint="run `aws configure` (or `aws sso login`), set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or name a profile",
    )


def account_id(aws: AwsSession) -> str:
    """The account the credentials belong to (STS GetCallerIdentity); fails before Terraform runs."""
    import botocore.exceptions

    where = _where(aws)
    if aws.session.get_credentials() is None:
        raise _no_credentials(aws)
    try:
        return aws.client("sts").get_caller_identity()["Account"]
    except botocore.exceptions.ClientError as exc:
        raise ConfigError(
            "AWS rejected the credentials",
            problems=[f"{where}: {exc.response.get('Error', {}).get('Message', 'access denied')}"],
            hint="refresh them (`aws sso login`, new access keys) and try again",
        ) from None
    except botocore.exceptions.EndpointConnectionError as exc:
        raise ConfigError(
            f"cannot reach AWS: {exc}",
            problems=["aws.endpoint_url: no answer" if aws.endpoint_url else "network: AWS STS unreachable"],
        ) from None


def results_bucket_problem(aws: AwsSession, bucket: str, cluster: str, *, suggestion: str) -> Optional[str]:
    """Why `up` could not make (or take back) the results bucket, or None: the name is free, or the
    bucket is this cluster's (its bioinfra:cluster tag: in Terraform's state, or kept by a `destroy` and
    taken back by adopt_kept). Bucket names are global across all AWS accounts, so a taken name would
    fail the storage stack only after the network and the cluster (about 20 minutes, issue #18.6).
    HeadBucket: 200 the bucket exists and we may read it, 403 it exists and is not ours to read (another
    account's), 404 no such bucket; 301 it is in another region.
    Ref https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html"""
    import botocore.exceptions

    s3 = aws.client("s3")
    fix = f"set buckets.results in bioinfra.yaml to a name of your own (e.g. {suggestion})"
    try:
        s3.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchBucket", "NotFound"):
            return None
        if code in ("403", "Forbidden", "AccessDenied"):
            return (f"buckets.results: bucket {bucket} exists and belongs to another AWS account (S3 HeadBucket: "
                    f"403; bucket names are global) — {fix}")
        return f"buckets.results: bucket {bucket}: S3 HeadBucket answered {code} (it exists elsewhere) — {fix}"
    try:
        tag_set = s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
    except botocore.exceptions.ClientError:
        tag_set = []  # NoSuchTagSet: untagged, so not made by bioinfra
    owner = {t["Key"]: t["Value"] for t in tag_set}.get("bioinfra:cluster")
    if owner == cluster:
        return None
    whose = f"cluster {owner}'s" if owner else "not made by bioinfra for this cluster"
    return (f"buckets.results: bucket {bucket} already exists ({whose}: no tag bioinfra:cluster={cluster}) — {fix}, "
            f"or delete that bucket if it is unused")


def bootstrap_state(aws: AwsSession, bucket: str, table: str, tags: dict[str, str]) -> list[str]:
    """Create the remote-state bucket (versioned, encrypted, private) and lock table if missing.

    Returns what was created; safe to re-run. The bucket outlives every cluster on purpose: it holds
    the record of what exists.
    """
    import botocore.exceptions

    created = []
    s3 = aws.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if aws.region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
        s3.create_bucket(**kwargs)
        created.append(f"bucket {bucket}")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
    )
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={k: True for k in (
            "BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")},
    )
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})

    dynamodb = aws.client("dynamodb")
    try:
        dynamodb.describe_table(TableName=table)
    except dynamodb.exceptions.ResourceNotFoundException:
        # Terraform's S3 backend locks with one item per state, keyed by "LockID".
        # Ref https://developer.hashicorp.com/terraform/language/backend/s3#dynamodb-state-locking
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
        dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        created.append(f"lock table {table}")
    return created


@contextmanager
def aws_errors(aws: AwsSession, what: str) -> Iterator[None]:
    """AWS's errors as PreflightError (exit 12) naming what was being done, with AWS's own message;
    no credentials as ConfigError (exit 3), as before `up`."""
    import botocore.exceptions

    try:
        yield
    except botocore.exceptions.NoCredentialsError:
        raise _no_credentials(aws) from None
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        hint = (f"check that the credentials ({_where(aws)}) may do this in region {aws.region}"
                if code in ("AccessDenied", "AccessDeniedException", "UnrecognizedClientException",
                            "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException")
                else "set BIOINFRA_DEBUG=1 for details")
        raise PreflightError(f"{what}: {error.get('Message') or exc} ({code})", hint=hint) from None
    except botocore.exceptions.EndpointConnectionError:
        where = f"the endpoint {aws.endpoint_url} ({ENDPOINT_ENV} / aws.endpoint_url)" if aws.endpoint_url \
            else f"AWS in region {aws.region}"
        raise PreflightError(f"{what}: cannot reach {where}",
                             hint="check the network (or that the emulator is running)") from None


# -- the cluster ----------------------------------------------------------------------------------


@dataclass
class NodeGroupInfo:
    name: str
    status: str  # ACTIVE, CREATING, UPDATING, DEGRADED, ...
    instance_types: list[str]
    capacity_type: str  # ON_DEMAND, SPOT, CAPACITY_BLOCK
    ami_type: str
    min_size: Optional[int]
    max_size: Optional[int]
    desired_size: Optional[int]  # the Auto Scaling group's desired capacity: the nodes it keeps now
    labels: dict[str, str]
    taints: list[str]  # kubectl form: key=value:NoSchedule

    @property
    def spot(self) -> bool:
        return self.capacity_type == "SPOT"

    @property
    def gpu(self) -> bool:
        """An NVIDIA AMI (AL2023_*_NVIDIA, BOTTLEROCKET_*_NVIDIA*, AL2_x86_64_GPU): the nodes have NVIDIA GPUs."""
        return "NVIDIA" in self.ami_type or self.ami_type == "AL2_x86_64_GPU"


@dataclass
class EksClusterInfo:
    name: str
    arn: str  # arn:aws:eks:REGION:ACCOUNT:cluster/NAME
    region: str
    status: str  # ACTIVE, CREATING, UPDATING, DELETING, FAILED, PENDING
    endpoint: str  # https://... as EKS returns it ("" while CREATING)
    ca_certificate: str  # base64 PEM, as EKS returns it
    version: str
    node_groups: list[NodeGroupInfo] = field(default_factory=list)
    health_issues: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        """The endpoint without scheme (moto adds a trailing slash; EKS does not)."""
        return self.endpoint.removeprefix("https://").rstrip("/")


def cluster_info(aws: AwsSession, name: str, *, account: Optional[str] = None,
                 node_groups: bool = True) -> EksClusterInfo:
    """The EKS cluster `name` in the session's region (describe_cluster); with `node_groups`, each
    managed node group (list_nodegroups, then describe_nodegroup each). PreflightError (exit 12) if
    there is no such cluster; `account` only names where it was looked for."""
    eks = aws.client("eks")
    where = f"AWS account {account}, region {aws.region}" if account else f"region {aws.region}"
    with aws_errors(aws, f"reading cluster {name}"):
        try:
            cluster = eks.describe_cluster(name=name)["cluster"]
        except eks.exceptions.ResourceNotFoundException:
            raise PreflightError(f"no cluster '{name}' in {where}", hint="`bioinfra up aws` creates it") from None
    arn = cluster.get("arn", "")
    info = EksClusterInfo(
        name=cluster["name"], arn=arn, region=arn.split(":")[3] if arn.count(":") >= 5 else aws.region,
        status=cluster.get("status", ""), endpoint=cluster.get("endpoint") or "",
        ca_certificate=(cluster.get("certificateAuthority") or {}).get("data") or "",
        version=cluster.get("version", ""),
        health_issues=[i.get("message") or i.get("code", "") for i in (cluster.get("health") or {}).get("issues", [])],
    )
    if node_groups:
        with aws_errors(aws, f"reading the node groups of cluster {name}"):
            names = [n for page in eks.get_paginator("list_nodegroups").paginate(clusterName=name)
                     for n in page.get("nodegroups", [])]
            info.node_groups = [_node_group(eks.describe_nodegroup(clusterName=name, nodegroupName=n)["nodegroup"])
                                for n in names]
    return info


def _node_group(group: dict[str, Any]) -> NodeGroupInfo:
    from bioinfra.adaptors.kubeconfig import taint

    scaling = group.get("scalingConfig") or {}
    return NodeGroupInfo(
        name=group["nodegroupName"], status=group.get("status", ""),
        instance_types=list(group.get("instanceTypes") or []),
        capacity_type=group.get("capacityType", "ON_DEMAND"), ami_type=group.get("amiType", ""),
        min_size=scaling.get("minSize"), max_size=scaling.get("maxSize"), desired_size=scaling.get("desiredSize"),
        labels=dict(group.get("labels") or {}),
        taints=[taint(t["key"], t.get("value"), t.get("effect", "")) for t in group.get("taints") or []],
    )


# -- who may use the cluster (EKS access entries) ---------------------------------------------------


@dataclass
class ClusterAccess:
    mode: str  # CONFIG_MAP, API or API_AND_CONFIG_MAP (describe_cluster accessConfig.authenticationMode)
    principals: list[str]  # principal ARNs of the access entries (none are listed in CONFIG_MAP mode)
    caller: str  # who asks (STS GetCallerIdentity), e.g. arn:aws:sts::1234:assumed-role/Admin/alice

    @property
    def caller_principal(self) -> str:
        """The IAM principal to give an entry: a role session's role (without its path, which STS does
        not say), else the caller's own ARN."""
        session = _session_role(self.caller)
        return f"arn:{session[0]}:iam::{session[1]}:role/{session[2]}" if session else self.caller

    def caller_has_entry(self) -> bool:
        """The caller is one of the principals: the same ARN, or for a role session, the same account
        and role name under any path (an entry names the role with its path, STS names it without)."""
        if self.caller in self.principals:
            return True
        session = _session_role(self.caller)
        if session is None:
            return False
        partition, account, role = session
        return any(p.startswith(f"arn:{partition}:iam::{account}:role/") and p.rsplit("/", 1)[1] == role
                   for p in self.principals)


def _session_role(arn: str) -> Optional[tuple[str, str, str]]:
    """(partition, account, role name) of arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION, else None."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        return parts[1], parts[4], parts[5].split("/")[1]
    return None


def cluster_access(aws: AwsSession, name: str) -> ClusterAccess:
    """The cluster's authentication mode and its access entries (describe_cluster, list_access_entries),
    and who is asking (STS GetCallerIdentity). PreflightError (exit 12) naming what failed."""
    eks = aws.client("eks")
    with aws_errors(aws, "reading who you are"):
        caller = aws.client("sts").get_caller_identity()["Arn"]
    with aws_errors(aws, f"reading who may use cluster {name}"):
        cluster = eks.describe_cluster(name=name)["cluster"]
        # A cluster made before access entries existed reports no accessConfig: it is CONFIG_MAP.
        mode = (cluster.get("accessConfig") or {}).get("authenticationMode") or "CONFIG_MAP"
        principals: list[str] = []
        if mode != "CONFIG_MAP":
            principals = [arn for page in eks.get_paginator("list_access_entries").paginate(clusterName=name)
                          for arn in page.get("accessEntries", [])]
    return ClusterAccess(mode, sorted(principals), caller)


# -- kubeconfig -----------------------------------------------------------------------------------


def context_name(info: EksClusterInfo) -> str:
    """What `aws eks update-kubeconfig` names the cluster, context and user: the cluster's ARN."""
    return info.arn


def resolve_auth(auth: str) -> Literal["plugin", "token"]:
    """auto: `aws eks get-token` if the AWS CLI is on PATH, else a token signed here."""
    from bioinfra.adaptors import kubeconfig

    return kubeconfig.resolve_auth(auth, PLUGIN)


def eks_token(aws: AwsSession, cluster: str) -> str:
    """A bearer token for the EKS cluster, built as `aws eks get-token` builds it: a GetCallerIdentity
    URL presigned (SigV4, 60 s) with the header x-k8s-aws-id: CLUSTER signed in, as k8s-aws-v1. +
    unpadded URL-safe base64. Signed locally (no call to STS). Never printed or logged."""
    import base64

    if aws.session.get_credentials() is None:
        raise _no_credentials(aws)
    sts = aws.client("sts")

    def keep_cluster_id(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        # Not an API parameter: taken out before validation, put back as a header before signing.
        if K8S_AWS_ID_HEADER in params:
            context[K8S_AWS_ID_HEADER] = params.pop(K8S_AWS_ID_HEADER)

    def add_cluster_header(request: Any, **_: Any) -> None:
        if K8S_AWS_ID_HEADER in request.context:
            request.headers[K8S_AWS_ID_HEADER] = request.context[K8S_AWS_ID_HEADER]

    sts.meta.events.register("provide-client-params.sts.GetCallerIdentity", keep_cluster_id)
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    with aws_errors(aws, f"signing a token for cluster {cluster}"):
        url = sts.generate_presigned_url("get_caller_identity", Params={K8S_AWS_ID_HEADER: cluster},
                                         ExpiresIn=TOKEN_URL_SECONDS, HttpMethod="GET")
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode("utf-8")).decode("utf-8").rstrip("=")


def _user(info: EksClusterInfo, auth: str, profile: Optional[str], token: Optional[str]) -> dict[str, Any]:
    from bioinfra.adaptors.kubeconfig import EXEC_API_VERSION

    if auth == "plugin":
        exec_: dict[str, Any] = {
            "apiVersion": EXEC_API_VERSION,
            # The same arguments `aws eks update-kubeconfig` writes; --output json whatever the user's default.
            "args": ["--region", info.region, "eks", "get-token", "--cluster-name", info.name, "--output", "json"],
            "command": PLUGIN,
            "installHint": PLUGIN_INSTALL_HINT,
        }
        if profile:
            exec_["env"] = [{"name": "AWS_PROFILE", "value": profile}]
        return {"exec": exec_}
    if auth == "token":
        if not token:
            raise PreflightError("no token for --auth token", hint="use --auth plugin")
        return {"token": token}
    raise InputError(f"kubeconfig auth must be plugin or token (got {auth!r})")


def kubeconfig_entries(info: EksClusterInfo, *, auth: Literal["plugin", "token"], profile: Optional[str] = None,
                       token: Optional[str] = None) -> dict[str, Any]:
    """A kubeconfig with one cluster, context and user named by the cluster's ARN (as the AWS CLI does)."""
    from bioinfra.adaptors import kubeconfig

    if not info.endpoint or not info.ca_certificate:
        raise PreflightError(f"cluster {info.name} has no endpoint yet (status {info.status})",
                             hint="wait until `bioinfra status aws` shows ACTIVE, then try again")
    return kubeconfig.single(context_name(info), f"https://{info.host}", info.ca_certificate,
                             _user(info, auth, profile, token))


def write_kubeconfig(path: Path, info: EksClusterInfo, aws: AwsSession, *, auth: str = "auto",
                     profile: Optional[str] = None) -> tuple[Path, Optional[datetime]]:
    """Write (or merge into an existing kubeconfig at) `path`, 0600; returns the file written and,
    for a stored token, when it stops working (UTC).

    auth "plugin": kubectl runs `aws eks get-token` for a fresh token each time (with AWS_PROFILE set
    to `profile` when given); "token": a token signed here with the session's credentials is stored
    in the file (EKS accepts it for about 15 minutes); "auto": the plugin when `aws` is on PATH, else
    a token.
    """
    from bioinfra.adaptors import kubeconfig

    mode = resolve_auth(auth)
    token = expires = None
    if mode == "token":
        signed_at = datetime.now(timezone.utc)
        token = eks_token(aws, info.name)
        expires = signed_at + TOKEN_LIFETIME
    written = kubeconfig.write(path, kubeconfig_entries(info, auth=mode, profile=profile, token=token))
    return written, expires
