"""Registry logins for the cloud targets: ECR (boto3) and Artifact Registry (google-auth).

The only place that imports those SDKs for images; imported lazily, failing with the extra to
install. Passwords are returned to the caller for `docker login` and never printed or logged.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Optional

from bioinfra.errors import BioinfraError, ToolMissingError


@dataclass(frozen=True)
class RegistryLogin:
    registry: str  # host, as `docker login` takes it
    username: str
    password: str = field(repr=False)  # never in a repr, a log or an error message


def ecr_client(region: str, endpoint_url: Optional[str] = None) -> Any:
    from bioinfra.adaptors.aws import boto3_module

    return boto3_module().client("ecr", region_name=region, endpoint_url=endpoint_url)


def ecr_login(ecr: Any) -> RegistryLogin:
    """Docker credentials from GetAuthorizationToken (valid 12 hours).

    Ref https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetAuthorizationToken.html
    """
    data = ecr.get_authorization_token()["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    registry = data["proxyEndpoint"].removeprefix("https://").removeprefix("http://")
    return RegistryLogin(registry, username, password)


def ensure_ecr_repositories(ecr: Any, names: list[str], *, tags: dict[str, str]) -> list[str]:
    """Create each repository that is missing; returns the ones created. Safe to re-run.

    Tags are immutable: a tag is a content hash, so it must never point at another image.
    """
    created = []
    for name in names:
        try:
            ecr.describe_repositories(repositoryNames=[name])
            continue
        except ecr.exceptions.RepositoryNotFoundException:
            pass
        ecr.create_repository(
            repositoryName=name,
            imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "AES256"},
            tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        )
        created.append(name)
    return created


def artifact_registry_login(region: str, credentials: Any = None) -> RegistryLogin:
    """Docker credentials for REGION-docker.pkg.dev from google-auth (ADC or given credentials).

    Ref https://cloud.google.com/artifact-registry/docs/docker/authentication#token
    """
    try:
        import google.auth
        import google.auth.transport.requests
    except ImportError:
        raise ToolMissingError("google-auth is not installed", hint="pip install 'bioinfra[gcp]'") from None
    if credentials is None:
        try:
            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        except google.auth.exceptions.DefaultCredentialsError:
            raise BioinfraError(
                "no Google credentials found", hint="run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS"
            ) from None
    if not credentials.valid:
        credentials.refresh(google.auth.transport.requests.Request())
    return RegistryLogin(f"{region}-docker.pkg.dev", "oauth2accesstoken", credentials.token)
