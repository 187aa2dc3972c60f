"""boto3 for target aws: the session, the credentials check, and the remote-state bucket and table.

Imported lazily (the aws extra); every client goes to `endpoint_url` when one is configured, so an
emulator such as moto sees exactly what Terraform sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from bioinfra.errors import ConfigError, ToolMissingError


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


def account_id(aws: AwsSession) -> str:
    """The account the credentials belong to (STS GetCallerIdentity); fails before Terraform runs."""
    import botocore.exceptions

    where = "aws.profile" if aws.session.profile_name not in (None, "default") else "aws.profile (or AWS_PROFILE)"
    if aws.session.get_credentials() is None:
        raise ConfigError(
            "no AWS credentials found",
            problems=[f"{where}: no credentials in the environment, ~/.aws or an instance role"],
            hint="run `aws configure` (or `aws sso login`), set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or name a profile",
        )
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
