"""The typed model of bioinfra.yaml.

Every key is declared here; unknown keys are errors with a "did you mean ...?" so a typo never
silently falls back to a default. Validation collects every problem at once, each with its field
path, and nothing is created before a config validates.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bioinfra.errors import ConfigError

CONFIG_FILENAME = "bioinfra.yaml"
TARGETS = ("local", "onprem", "gcp", "aws")

# DNS-1123 label: the name becomes part of cluster, bucket and Kubernetes object names.
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
# Regions as listed in botocore's endpoint data (partitions aws, aws-us-gov, aws-cn), so a typo such
# as eu-west-9 fails here and not minutes later inside Terraform.
AWS_REGIONS = frozenset(
    "af-south-1 ap-east-1 ap-east-2 ap-northeast-1 ap-northeast-2 ap-northeast-3 ap-south-1 ap-south-2 "
    "ap-southeast-1 ap-southeast-2 ap-southeast-3 ap-southeast-4 ap-southeast-5 ap-southeast-6 ap-southeast-7 "
    "ca-central-1 ca-west-1 cn-north-1 cn-northwest-1 eu-central-1 eu-central-2 eu-north-1 eu-south-1 "
    "eu-south-2 eu-west-1 eu-west-2 eu-west-3 il-central-1 me-central-1 me-south-1 mx-central-1 sa-east-1 "
    "us-east-1 us-east-2 us-gov-east-1 us-gov-west-1 us-west-1 us-west-2".split()
)
# EC2 instance types: family (letters, digits, options) '.' size. Ref https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html
_EC2_TYPE_RE = re.compile(r"^([a-z]+\d+[a-z-]*)\.(nano|micro|small|medium|large|\d*xlarge|metal(-\d+xl)?)$")
# Families with NVIDIA GPUs (the GPU AMI and the nvidia.com/gpu resource need them).
# Ref https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html
AWS_GPU_FAMILIES = frozenset("p3 p3dn p4d p4de p5 p5e p5en p6-b200 g4dn g5 g5g g6 g6e g6f gr6 gr6f".split())
# NVIDIA GPUs per instance of those families, from the same page's specification tables ("GPUs"
# column). g6f and gr6f carry a fraction of one L4 and are left out: a type missing here gets no
# GPU-count tag, and the cluster autoscaler falls back on its own instance-type table (issue #18).
# Ref https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html
_ONE_GPU = ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")
AWS_GPU_COUNTS: dict[str, int] = {
    **{f"g4dn.{size}": 1 for size in _ONE_GPU}, "g4dn.12xlarge": 4, "g4dn.metal": 8,
    **{f"g5.{size}": 1 for size in _ONE_GPU}, "g5.12xlarge": 4, "g5.24xlarge": 4, "g5.48xlarge": 8,
    **{f"g5g.{size}": 1 for size in _ONE_GPU[:4]}, "g5g.16xlarge": 2, "g5g.metal": 2,
    **{f"g6.{size}": 1 for size in _ONE_GPU}, "g6.12xlarge": 4, "g6.24xlarge": 4, "g6.48xlarge": 8,
    **{f"g6e.{size}": 1 for size in _ONE_GPU}, "g6e.12xlarge": 4, "g6e.24xlarge": 4, "g6e.48xlarge": 8,
    "gr6.4xlarge": 1, "gr6.8xlarge": 1,
    "p3.2xlarge": 1, "p3.8xlarge": 4, "p3.16xlarge": 8, "p3dn.24xlarge": 8,
    "p4d.24xlarge": 8, "p4de.24xlarge": 8,
    "p5.4xlarge": 1, "p5.48xlarge": 8, "p5e.48xlarge": 8, "p5en.48xlarge": 8, "p6-b200.48xlarge": 8,
}
# Ref https://cloud.google.com/compute/docs/regions-zones (e.g. europe-west2)
_GCP_REGION_RE = re.compile(r"^[a-z]+-[a-z]+\d+$")
# Ref https://cloud.google.com/resource-manager/docs/creating-managing-projects (project ID rules)
_GCP_PROJECT_RE = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")


# Ref https://cloud.google.com/compute/docs/machine-resource (e2-standard-4, n2d-highcpu-32, custom-4-8192)
_GCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9]+(-[a-z0-9]+)*$")
# Families that take NVIDIA GPUs on GKE. Ref https://cloud.google.com/compute/docs/gpus
GCE_GPU_FAMILIES = ("n1", "a2", "a3", "a4", "g2")

# -- every string field has a pattern (issue #15) ----------------------------------------------
# Config values reach Terraform only as data (*.auto.tfvars.json), but a strict pattern per field is
# the first wall: a value that is not a bucket name, a region, a URL... is refused here, naming the
# field, before anything is rendered. None of these patterns admits a quote, a backslash, '$', '%{',
# a backtick, whitespace (except local.workspace: spaces) or a control character.

# S3: 3-63 of a-z, 0-9, '.', '-', starting and ending with a letter or digit, no '..', not an IPv4
# address, none of the reserved prefixes and suffixes.
# Ref https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_S3_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# GCS: 3-63 of a-z, 0-9, '-', '_', '.' (up to 222 with dots, each part at most 63), starting and
# ending with a letter or digit, not an IP address, not starting with "goog" nor containing "google".
# Ref https://cloud.google.com/storage/docs/buckets#naming
_GCS_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
# DynamoDB table names: 3-255 of a-z, A-Z, 0-9, '_', '-', '.'.
# Ref https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
_DYNAMODB_TABLE_RE = re.compile(r"[A-Za-z0-9_.-]{3,255}")
# AWS region names (eu-west-2, us-gov-west-1, ap-southeast-7); the known ones are AWS_REGIONS.
# Ref https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html
_AWS_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
# GCP zones: <region>-<letter>. Ref https://cloud.google.com/compute/docs/regions-zones
_GCP_ZONE_RE = re.compile(r"[a-z]+-[a-z]+\d+-[a-z]")
# IAM principals that may be given EKS access entries: a role or a user (optionally under a path), in
# one of the three partitions. Names and path parts are IAM's safe set ([A-Za-z0-9_+=,.@-]; IAM allows
# more in a path, bioinfra does not). Ref https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns
# and https://docs.aws.amazon.com/IAM/latest/APIReference/API_Role.html (RoleName 1-64, Path)
_IAM_PRINCIPAL_ARN_RE = re.compile(
    r"arn:aws(-cn|-us-gov)?:iam::\d{12}:(role|user)/([A-Za-z0-9_+=,.@-]{1,128}/){0,16}[A-Za-z0-9_+=,.@-]{1,64}")
_ASSUMED_ROLE_RE = re.compile(r"arn:aws(-cn|-us-gov)?:sts::(\d{12}):assumed-role/([A-Za-z0-9_+=,.@-]{1,64})/.*")
# Named profiles are section names of ~/.aws/config; the CLI documents no character set, so bioinfra
# takes the safe subset. Ref https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-files.html
_AWS_PROFILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+=,-]{0,63}")
# GPU accelerator types of Compute Engine (nvidia-tesla-t4, nvidia-l4, nvidia-a100-80gb, nvidia-h100-mega-80gb).
# Ref https://cloud.google.com/compute/docs/gpus
_GCP_ACCELERATOR_RE = re.compile(r"nvidia-[a-z0-9]+(-[a-z0-9]+)*")
# Any target's instance / machine type (checked per cloud by aws_pool_problems / gcp_pool_problems; onprem pools only label nodes).
_MACHINE_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")
# kubeconfig context names are free-form strings to Kubernetes; these characters cover the names
# kubectl, kind, minikube, k3s, EKS (arn:aws:eks:...:cluster/x) and GKE (gke_p_z_c) write.
# Ref https://kubernetes.io/docs/reference/config-api/kubeconfig.v1/#NamedContext
_KUBE_CONTEXT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:/+=-]{0,252}")
# A Kubernetes object name (a storage class): a DNS-1123 subdomain.
# Ref https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#dns-subdomain-names
_DNS_SUBDOMAIN_RE = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# A host name (RFC 1123 labels). Ref https://datatracker.ietf.org/doc/html/rfc1123#page-13
_HOSTNAME_RE = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*")
# An NFS export path: absolute, of safe characters.
_EXPORT_PATH_RE = re.compile(r"/|(/[A-Za-z0-9._+@,=-]+)+/?")
# A local file path (kubeconfig): safe characters only, '~' expanded by bioinfra and the providers.
_FILE_PATH_RE = re.compile(r"[A-Za-z0-9_./~+@,=-]+")
# A Kubernetes label value (Argo's controller instance ID is one). Ref
# https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set
_LABEL_VALUE_RE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_WORKSPACE_PATH_RE = re.compile(r"[A-Za-z0-9_./~+@,=-][A-Za-z0-9_./~+@,= -]*")
# An image registry: host[:port][/path], as Docker's reference grammar names them.
# Ref https://github.com/distribution/reference/blob/main/reference.go
_REGISTRY_RE = re.compile(
    r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*(:\d{1,5})?"
    r"(/[a-z0-9]+([._-]+[a-z0-9]+)*)*/?"
)
# URLs: scheme http or https, a host (name, IPv4 or [IPv6]), an optional port and a path of safe characters.
_URL_RE = re.compile(r"https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?(/[A-Za-z0-9._~/-]*)?")

# Environment variables that override config fields; validated exactly like the file's values.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "BIOINFRA_AWS_ENDPOINT_URL": ("aws", "endpoint_url"),
    "BIOINFRA_GCP_ENDPOINT_URL": ("gcp", "endpoint_url"),
}


def shown(value: Any, limit: int = 60) -> str:
    """A value as it may appear in a message: at most `limit` characters, quotes, newlines, control
    and non-ASCII characters escaped. Never the whole of a huge input."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value) if abs(value) < 10**18 else "a very large integer"
    if isinstance(value, float):
        return repr(value)
    if not isinstance(value, (str, Path)):
        return f"a {type(value).__name__}"
    text = str(value)
    cut = text[:limit].encode("unicode_escape").decode("ascii").replace("'", "\\'")
    return f"'{cut}'" + (f"... ({len(text)} characters)" if len(text) > limit else "")


def _must_match(pattern: re.Pattern[str], v: Optional[str], what: str) -> Optional[str]:
    if v is not None and not pattern.fullmatch(v):
        raise ValueError(f"not {what}")
    return v


def _is_ip(v: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def s3_bucket_problem(v: str) -> Optional[str]:
    """Why v is not an S3 bucket name (None if it is one)."""
    if not _S3_BUCKET_RE.fullmatch(v) or ".." in v or _is_ip(v):
        return ("not an S3 bucket name (3-63 of a-z, 0-9, '.' and '-', starting and ending "
                "with a letter or digit, no '..', not an IP address)")
    if v.startswith(_S3_RESERVED_PREFIXES) or v.endswith(_S3_RESERVED_SUFFIXES):
        return f"not an S3 bucket name: S3 reserves the prefixes {', '.join(_S3_RESERVED_PREFIXES)} and these suffixes " \
               f"{', '.join(_S3_RESERVED_SUFFIXES)}"
    return None


def gcs_bucket_problem(v: str) -> Optional[str]:
    """Why v is not a GCS bucket name (None if it is one)."""
    parts = v.split(".")
    if (not _GCS_BUCKET_RE.fullmatch(v) or (len(v) > 63 and "." not in v) or any(not p or len(p) > 63 for p in parts)
            or _is_ip(v)):
        return ("not a GCS bucket name (3-63 of a-z, 0-9, '-', '_' and '.', starting and "
                "ending with a letter or digit, not an IP address)")
    if v.startswith("goog") or "google" in v:
        return "not a GCS bucket name: it may not start with 'goog' nor contain 'google'"
    return None


def _bucket(v: Optional[str]) -> Optional[str]:
    """A name valid as an S3 bucket (the stricter rules; also a valid GCS name but for 'goog' and '_')."""
    if v is not None and (problem := s3_bucket_problem(v)):
        raise ValueError(problem)
    return v


def _url(v: Optional[str], example: str) -> Optional[str]:
    """An http(s) URL with a host; no quotes, spaces, query, fragment or credentials."""
    if v is None:
        return None
    from urllib.parse import urlsplit

    ok = _URL_RE.fullmatch(v) is not None
    if ok:
        try:
            parts = urlsplit(v)
            ok = bool(parts.hostname) and (parts.port is None or 0 < parts.port < 65536)
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(f"not an http(s) URL with a host (e.g. {example}; no quotes, spaces, "
                         "query or credentials)")
    return v.rstrip("/")


def _endpoint_url(v: Optional[str], example: str) -> Optional[str]:
    """An http(s) URL of an emulator or stand-in, without a trailing slash."""
    return _url(v, example)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GpuSpec(StrictModel):
    type: Optional[str] = Field(
        None, description="accelerator type, e.g. nvidia-tesla-t4 (GCP; required there); on AWS the instance type implies it"
    )
    count: int = Field(1, ge=1, le=16, description="GPUs per node")

    @field_validator("type")
    @classmethod
    def _accelerator(cls, v: Optional[str]) -> Optional[str]:
        return _must_match(_GCP_ACCELERATOR_RE, v, "a GPU accelerator type (e.g. nvidia-tesla-t4, nvidia-l4)")


class NodePool(StrictModel):
    machine_type: str = Field(description="instance / machine type, e.g. e2-standard-4 or m6i.xlarge")
    min: int = Field(0, ge=0, description="fewest nodes; 0 lets the pool scale to zero")
    max: int = Field(3, ge=1, le=1000, description="most nodes the autoscaler may add")
    spot: bool = Field(False, description="use spot / preemptible capacity")
    alternatives: list[str] = Field(
        default_factory=list,
        description="other instance types the pool may use (AWS): more types, fewer spot interruptions",
    )
    disk_gb: int = Field(100, ge=20, le=16384, description="root disk of each node, GB")
    gpu: Optional[GpuSpec] = Field(None, description="accelerators attached to each node")

    @field_validator("machine_type")
    @classmethod
    def _machine_type(cls, v: str) -> str:
        return _must_match(_MACHINE_TYPE_RE, v, "an instance / machine type (e.g. m6i.xlarge, e2-standard-4)")

    @field_validator("alternatives")
    @classmethod
    def _alternatives(cls, v: list[str]) -> list[str]:
        for itype in v:
            _must_match(_MACHINE_TYPE_RE, itype, "an instance type (e.g. c6a.4xlarge)")
        return v

    @model_validator(mode="after")
    def _min_not_above_max(self) -> NodePool:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


# Pools a config gets when it names none, per target (the GCP ones also serve local/onprem renders).
DEFAULT_POOLS: dict[str, dict[str, dict[str, Any]]] = {
    "gcp": {
        "general": {"machine_type": "e2-standard-4", "min": 1, "max": 3},
        "highcpu": {"machine_type": "c2-standard-16", "min": 0, "max": 10, "spot": True},
    },
    "aws": {
        "general": {"machine_type": "m6i.xlarge", "min": 1, "max": 3},
        "highcpu": {
            "machine_type": "c6i.4xlarge", "min": 0, "max": 10, "spot": True,
            "alternatives": ["c6a.4xlarge", "c5.4xlarge", "c7i.4xlarge"],
        },
    },
}


class NodePools(StrictModel):
    general: NodePool = Field(default_factory=lambda: NodePool(**DEFAULT_POOLS["gcp"]["general"]))
    highcpu: NodePool = Field(default_factory=lambda: NodePool(**DEFAULT_POOLS["gcp"]["highcpu"]))
    gpu: Optional[NodePool] = None

    @model_validator(mode="after")
    def _gpu_pool_has_gpus(self) -> NodePools:
        if self.gpu is not None and self.gpu.gpu is None:
            raise ValueError("the gpu pool needs a 'gpu:' entry with type and count")
        return self


class Buckets(StrictModel):
    results: Optional[str] = Field(None, description="bucket for outputs; default <name>-results-<AWS account id or GCP project id>")

    @field_validator("results")
    @classmethod
    def _bucket_name(cls, v: Optional[str]) -> Optional[str]:
        return _bucket(v)


class Registry(StrictModel):
    url: Optional[str] = Field(None, description="image registry; default depends on the target")

    @field_validator("url")
    @classmethod
    def _registry(cls, v: Optional[str]) -> Optional[str]:
        return _must_match(_REGISTRY_RE, v, "an image registry, host[:port]/path (e.g. 127.0.0.1:5000/bioinfra)")


class LocalSettings(StrictModel):
    runtime: Literal["auto", "native", "docker"] = "auto"
    workspace: Optional[Path] = Field(None, description="shared workspace (reference cache, staged inputs)")
    max_cpus: Optional[int] = Field(None, ge=1, description="CPU budget for concurrent steps; default all cores")

    @field_validator("workspace", mode="before")
    @classmethod
    def _workspace(cls, v: Any) -> Any:
        if isinstance(v, (str, Path)):
            _must_match(_WORKSPACE_PATH_RE, str(v), "a folder path of letters, digits, spaces and _ . / ~ + @ , = -")
        return v


class PipelinePathSettings(StrictModel):
    """Where `bioinfra run NAME` and `bioinfra pipelines list` find pipelines besides the built-ins
    (docs/pipelines/write-your-own.md): each entry a folder of pipeline folders, or one pipeline
    folder. Relative paths are relative to the config file's folder."""

    path: list[Path] = Field(default_factory=list, description="folders searched for pipeline folders, in order")

    @field_validator("path", mode="before")
    @classmethod
    def _paths(cls, v: Any) -> Any:
        if isinstance(v, (str, Path)):
            v = [v]
        if isinstance(v, list):
            for item in v:
                if isinstance(item, (str, Path)):
                    _must_match(_WORKSPACE_PATH_RE, str(item), "a folder path of letters, digits, spaces and _ . / ~ + @ , = -")
        return v


class OnpremSettings(StrictModel):
    kubeconfig: Path = Path("~/.kube/config")
    context: Optional[str] = None
    storage_class: Optional[str] = Field(
        None, description="existing ReadWriteMany storage class; default: install an NFS provisioner"
    )
    nfs_server: Optional[str] = Field(
        None, description="an existing NFS server (host or IP) to provision the workspace on (with nfs_path)"
    )
    nfs_path: Optional[str] = Field(None, description="the exported path on nfs_server, e.g. /srv/bioinfra")
    argo: Literal["install", "existing"] = Field(
        "install", description="install: bioinfra installs Argo Workflows; existing: use the Argo the cluster "
        "already runs (docs/targets/onprem.md)")
    argo_instance_id: Optional[str] = Field(
        None, description="an Argo controller instance ID: bioinfra's Workflows carry it; with argo: install, "
        "bioinfra's Argo is installed beside an existing one with it, without CRDs")

    @field_validator("argo_instance_id")
    @classmethod
    def _instance_id(cls, v: Optional[str]) -> Optional[str]:
        return _must_match(_LABEL_VALUE_RE, v, "a Kubernetes label value (letters, digits and - _ ., at most 63)")

    @field_validator("kubeconfig", mode="before")
    @classmethod
    def _kubeconfig(cls, v: Any) -> Any:
        # Whether it exists is checked before any cluster call (the onprem preflight: exit 13 naming it).
        if isinstance(v, (str, Path)):
            _must_match(_FILE_PATH_RE, str(v), "a file path of letters, digits and _ . / ~ + @ , = -")
        return v

    @field_validator("context")
    @classmethod
    def _context(cls, v: Optional[str]) -> Optional[str]:
        return _must_match(_KUBE_CONTEXT_RE, v, "a kubeconfig context name (letters, digits and _ . @ : / + = -)")

    @field_validator("storage_class")
    @classmethod
    def _storage_class(cls, v: Optional[str]) -> Optional[str]:
        return _must_match(_DNS_SUBDOMAIN_RE, v, "a Kubernetes storage class name (a DNS-1123 subdomain)")

    @field_validator("nfs_server")
    @classmethod
    def _nfs_server(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not (_HOSTNAME_RE.fullmatch(v) or _is_ip(v)):
            raise ValueError("not a host name or IP address (e.g. nfs.lab.example or 10.0.0.5)")
        return v

    @field_validator("nfs_path")
    @classmethod
    def _absolute_export(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not v.startswith("/"):
            raise ValueError("must be an absolute path (e.g. /srv/bioinfra)")
        if v is not None and (not _EXPORT_PATH_RE.fullmatch(v) or "/../" in f"{v}/"):
            raise ValueError("not an export path (absolute, of letters, digits and _ . + @ , = -)")
        return v

    @model_validator(mode="after")
    def _nfs_server_and_path_together(self) -> OnpremSettings:
        if self.nfs_server and not self.nfs_path:
            raise ValueError("nfs_server needs nfs_path, the exported directory (e.g. /srv/bioinfra)")
        if self.nfs_path and not self.nfs_server:
            raise ValueError("nfs_path needs nfs_server, the host that exports it")
        if self.storage_class and self.nfs_server:
            raise ValueError("give storage_class (an existing class) or nfs_server/nfs_path (install a "
                             "provisioner for it), not both")
        return self


class AddonsSettings(StrictModel):
    """What the addons stack installs inside a cluster (aws, gcp, onprem)."""

    workspace_size_gb: int = Field(
        100, ge=1, le=102400, description="size of the shared workspace volume (ReadWriteMany), GB"
    )
    argo_server: bool = Field(
        True, description="install the Argo Workflows server (UI/API, ClusterIP, the caller's own token)"
    )


class StateSettings(StrictModel):
    backend: Literal["local", "s3", "gcs"] = "local"
    bucket: Optional[str] = None
    lock_table: Optional[str] = None

    @field_validator("bucket")
    @classmethod
    def _state_bucket(cls, v: Optional[str]) -> Optional[str]:
        # As an S3 or GCS name, whichever it is for (checked again by the backend's own rules below).
        if v is not None and s3_bucket_problem(v) and gcs_bucket_problem(v):
            raise ValueError(s3_bucket_problem(v))
        return v

    @field_validator("lock_table")
    @classmethod
    def _table(cls, v: Optional[str]) -> Optional[str]:
        return _must_match(_DYNAMODB_TABLE_RE, v, "a DynamoDB table name (3-255 of A-Z, a-z, 0-9, '_', '-', '.')")

    @model_validator(mode="after")
    def _remote_needs_bucket(self) -> StateSettings:
        if self.backend != "local" and not self.bucket:
            raise ValueError(f"backend '{self.backend}' needs 'bucket'")
        if self.backend == "s3" and not self.lock_table:
            raise ValueError("backend 's3' needs 'lock_table' (a DynamoDB table) for locking")
        problem = {"s3": s3_bucket_problem, "gcs": gcs_bucket_problem}.get(self.backend, lambda v: None)(self.bucket or "")
        if self.bucket and problem:
            raise ValueError(f"bucket: {problem} (got {shown(self.bucket)})")
        return self


class AwsSettings(StrictModel):
    endpoint_url: Optional[str] = Field(
        None,
        description="send every AWS call (Terraform and bioinfra) to this endpoint, e.g. an emulator; "
        "$BIOINFRA_AWS_ENDPOINT_URL overrides it",
    )
    profile: Optional[str] = Field(None, description="named profile from ~/.aws/config; default: the usual chain")
    kubernetes_version: str = Field(
        "1.35",
        # 1.31 left EKS extended support on 2026-11-26; 1.35 is in standard support to 2027-03-27.
        # Ref https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html
        description="EKS control-plane version (a minor in standard support costs 0.10 USD/h, extended 0.60)",
    )
    availability_zones: int = Field(2, ge=2, le=6, description="zones to spread subnets over (EKS needs 2+)")
    vpc_cidr: str = Field("10.0.0.0/16", description="IPv4 range of the VPC")
    single_nat_gateway: bool = Field(True, description="one NAT gateway (cheaper) instead of one per zone")
    private_endpoint: bool = Field(False, description="Kubernetes API reachable only inside the VPC")
    public_access_cidrs: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0"], description="who may reach the public API endpoint"
    )
    glacier_after_days: int = Field(
        90, ge=1, le=3650,
        description="move results to S3 Glacier Instant Retrieval after this many days (cheaper, still read "
        "without a restore)",
    )
    log_retention_days: int = Field(30, ge=1, le=3653, description="days to keep control-plane and flow logs")
    admins: list[str] = Field(
        default_factory=list, max_length=100,
        description="IAM role or user ARNs given cluster-admin access to the EKS cluster (access entries), "
        "besides the identity that runs `bioinfra up`",
    )

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, v: Optional[str]) -> Optional[str]:
        return _endpoint_url(v, "http://127.0.0.1:4566")

    @field_validator("admins")
    @classmethod
    def _principal_arns(cls, v: list[str]) -> list[str]:
        for i, arn in enumerate(v):
            if _IAM_PRINCIPAL_ARN_RE.fullmatch(arn):
                continue
            session = _ASSUMED_ROLE_RE.fullmatch(arn)
            if session:  # what `aws sts get-caller-identity` prints for a role; EKS wants the role itself
                raise ValueError(f"item {i}: {shown(arn)} is a role session; give the role's ARN, "
                                 f"arn:aws{session.group(1) or ''}:iam::{session.group(2)}:role/{session.group(3)} "
                                 "(with its path, if it has one: `aws iam get-role --role-name NAME`)")
            raise ValueError(f"item {i}: {shown(arn)} is not an IAM role or user ARN "
                             "(e.g. arn:aws:iam::123456789012:role/lab-admins)")
        if len(set(v)) != len(v):
            raise ValueError("lists an ARN twice")
        return v

    @field_validator("profile")
    @classmethod
    def _profile(cls, v: Optional[str]) -> Optional[str]:
        return _must_match(_AWS_PROFILE_RE, v, "an AWS profile name (letters, digits and _ . @ + = , -)")

    @field_validator("kubernetes_version")
    @classmethod
    def _minor_version(cls, v: str) -> str:
        if not re.fullmatch(r"1\.\d{2}", v):
            raise ValueError("must be a Kubernetes minor version such as 1.35")
        return v

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr16(cls, v: str) -> str:
        import ipaddress

        try:
            net = ipaddress.IPv4Network(v)
        except ValueError:
            raise ValueError("must be an IPv4 CIDR such as 10.0.0.0/16") from None
        if not 16 <= net.prefixlen <= 20:
            raise ValueError("must be a /16 to /20 (each zone gets two subnets of 1/16 of it)")
        return v

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        import ipaddress

        for cidr in v:
            try:
                ipaddress.IPv4Network(cidr)
            except ValueError:
                raise ValueError(f"{shown(cidr)} is not an IPv4 CIDR") from None
        return v



def _ipv4_cidr(v: str, low: int, high: int, what: str) -> str:
    import ipaddress

    try:
        net = ipaddress.IPv4Network(v)
    except ValueError:
        try:
            loose = ipaddress.IPv4Network(v, strict=False)
        except ValueError:
            raise ValueError(f"must be an IPv4 CIDR such as {what}") from None
        raise ValueError(f"has host bits set; did you mean {loose}?") from None
    if not low <= net.prefixlen <= high:
        raise ValueError(f"must be a /{low} to /{high}" if low != high else f"must be a /{low}")
    return v


# Prefix lengths each range may have, and an example. Ref
# https://cloud.google.com/kubernetes-engine/docs/concepts/alias-ips#cluster_sizing
_GCP_RANGE_SIZES = {
    "subnet_cidr": (16, 24, "10.10.0.0/20"),
    "pods_cidr": (9, 21, "10.16.0.0/14"),
    "services_cidr": (16, 27, "10.20.0.0/20"),
    "master_cidr": (28, 28, "172.16.0.0/28"),
}


class GcpSettings(StrictModel):
    endpoint_url: Optional[str] = Field(
        None,
        description="send bioinfra's Google API calls (not Terraform's) to this endpoint, e.g. a local "
        "stand-in; $BIOINFRA_GCP_ENDPOINT_URL overrides it",
    )
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = Field(
        "REGULAR", description="GKE release channel: Google upgrades the cluster within it"
    )
    zones: list[str] = Field(
        default_factory=list, description="zones of the region the nodes run in; default: all of them"
    )
    subnet_cidr: str = Field("10.10.0.0/20", description="IPv4 range of the nodes' subnet")
    pods_cidr: str = Field("10.16.0.0/14", description="secondary range for pods (a /14 gives ~1000 nodes)")
    services_cidr: str = Field("10.20.0.0/20", description="secondary range for Kubernetes services")
    master_cidr: str = Field("172.16.0.0/28", description="the control plane's private /28 (peered)")
    private_endpoint: bool = Field(False, description="Kubernetes API reachable only inside the VPC")
    master_authorized_networks: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0"], description="who may reach the Kubernetes API endpoint"
    )
    deletion_protection: bool = Field(
        True, description="Terraform refuses to delete the cluster; `bioinfra destroy` turns it off first"
    )
    archive_after_days: int = Field(90, ge=1, le=3650, description="move results to ARCHIVE storage after this many days")
    filestore: bool = Field(False, description="a Filestore instance for ReadWriteMany volumes (from 1 TiB, billed while up)")
    filestore_tier: Literal["BASIC_HDD", "BASIC_SSD", "ZONAL", "REGIONAL"] = "BASIC_HDD"
    filestore_capacity_gb: int = Field(
        1024, ge=1024, le=102400,
        description="Filestore size in GiB: BASIC_HDD 1024-65433, BASIC_SSD 2560-65433, ZONAL/REGIONAL 1024-9984 "
        "in steps of 256, or 10240-102400 in steps of 2560",
    )

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, v: Optional[str]) -> Optional[str]:
        return _endpoint_url(v, "http://127.0.0.1:8089")

    @field_validator("zones")
    @classmethod
    def _zone_names(cls, v: list[str]) -> list[str]:
        for zone in v:
            if not _GCP_ZONE_RE.fullmatch(zone):
                raise ValueError(f"{shown(zone)} is not a GCP zone (e.g. europe-west2-a)")
        return v

    @field_validator("subnet_cidr", "pods_cidr", "services_cidr", "master_cidr")
    @classmethod
    def _ranges(cls, v: str, info: Any) -> str:
        low, high, example = _GCP_RANGE_SIZES[info.field_name]
        return _ipv4_cidr(v, low, high, example)

    @field_validator("master_authorized_networks")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for cidr in v:
            _ipv4_cidr(cidr, 0, 32, "203.0.113.0/24")
        return v

    @model_validator(mode="after")
    def _filestore_size_fits_its_tier(self) -> GcpSettings:
        # What the Filestore API accepts per tier (else `up` fails after the network and cluster are made).
        # Ref https://cloud.google.com/filestore/docs/service-tiers
        tier, size = self.filestore_tier, self.filestore_capacity_gb
        if tier.startswith("BASIC_"):
            low = 2560 if tier == "BASIC_SSD" else 1024
            if not low <= size <= 65433:
                raise ValueError(f"filestore_capacity_gb {size}: {tier} takes {low} to 65433 GiB (63.9 TiB)")
        elif size < 10240 and (size % 256 or size > 9984):
            raise ValueError(f"filestore_capacity_gb {size}: {tier} below 10 TiB takes 1024 to 9984 GiB in steps "
                             f"of 256 (e.g. {min(9984, max(1024, size // 256 * 256))})")
        elif size >= 10240 and size % 2560:
            raise ValueError(f"filestore_capacity_gb {size}: {tier} from 10 TiB takes steps of 2560 GiB "
                             f"(e.g. {size // 2560 * 2560})")
        return self

    @model_validator(mode="after")
    def _ranges_do_not_overlap(self) -> GcpSettings:
        import ipaddress

        named = {k: ipaddress.IPv4Network(getattr(self, k))
                 for k in ("subnet_cidr", "pods_cidr", "services_cidr", "master_cidr")}
        keys = list(named)
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                if named[a].overlaps(named[b]):
                    raise ValueError(f"{a} {named[a]} overlaps {b} {named[b]}")
        return self


class PipelineSettings(StrictModel):
    align_threads: int = Field(8, ge=1, le=128, description="threads (and CPU request) of the align step")
    align_memory: str = Field("16Gi", description="memory request and limit of the align step")
    retries: int = Field(2, ge=0, le=10, description="retries per step on failure")
    retry_backoff: str = Field("10s", description="wait before the first retry; doubles each time")
    preemption_retries: int = Field(
        5,
        ge=0,
        le=20,
        description="on a cluster, retries per step after its node is lost (spot preemption, eviction); "
        "they do not count against `retries`",
    )

    @field_validator("align_memory")
    @classmethod
    def _memory_quantity(cls, v: str) -> str:
        if not re.fullmatch(r"\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?", v):
            raise ValueError("must be a Kubernetes memory quantity such as 16Gi or 8000Mi")
        return v

    @field_validator("retry_backoff")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not re.fullmatch(r"\d+(s|m|h)", v):
            raise ValueError("must be a duration such as 10s, 2m or 1h")
        return v


# -- deadlines (issue #16) -------------------------------------------------------------------------
# Argo stops a pod at its template's activeDeadlineSeconds (the pod's own activeDeadlineSeconds,
# set per pod in workflow/controller/workflowpod.go createWorkflowPod, so each retried attempt gets
# it afresh) and fails the Workflow at spec.activeDeadlineSeconds (operator.go getWorkflowDeadline;
# a pod never outlives it either). Without them a hung step holds its (spot) node for ever.
# Defaults per step, for one attempt; a fan-out step's pod that is given several samples (a chunk
# of --samples) or image sets (a cellprofiler batch) gets this times how many it was given.
STEP_DEADLINE_DEFAULTS: dict[str, str] = {
    "stage-in": "6h",          # copying inputs in from a bucket
    "plan": "1h",              # reading the sheet / data file, checking every input is there
    "index-reference": "12h",  # bwa-mem2 index of a human genome takes about an hour on 16 cores
    "fastqc": "4h",            # per sample
    "align": "48h",            # per sample: 30x whole-genome on 8 threads is about a day
    "samtools-stats": "6h",
    "call": "48h",             # variant-calling: bcftools mpileup | call, single-threaded, per sample
    "bcftools-stats": "6h",
    "compare-truth": "1h",     # variant-calling: scoring the calls against a truth set
    "stats": "6h",             # per sample (--samples)
    "multiqc": "2h",
    "report": "2h",            # --samples: MultiQC over every sample
    "illum": "12h",            # the whole screen's illumination functions
    "analyze": "30m",          # per image set of a batch
    "gather": "6h",
    "stage-out": "6h",         # copying results to the bucket
}
WORKFLOW_DEADLINE_DEFAULT = "7d"
MIN_STEP_DEADLINE = 60
MAX_DEADLINE = 30 * 86400
MIN_WORKFLOW_DEADLINE = 600
_DURATION_RE = re.compile(r"([1-9]\d{0,7})(s|m|h|d)")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_STEP_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def duration_seconds(value: Any) -> int:
    """A duration as whole seconds: an integer (seconds) or a number and a unit, 90s, 30m, 12h, 7d."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("must be a duration such as 30m, 12h or 7d (or whole seconds)")
    if isinstance(value, int):
        return value
    match = _DURATION_RE.fullmatch(value)
    if not match:
        raise ValueError("must be a duration such as 30m, 12h or 7d (or whole seconds)")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def shown_duration(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds % _SECONDS[unit] == 0:
            return f"{seconds // _SECONDS[unit]}{unit}"
    return f"{seconds}s"


class RunSettings(StrictModel):
    """Deadlines of every run's Workflow, on every target (rendered as activeDeadlineSeconds)."""

    workflow_deadline: int = Field(
        default_factory=lambda: duration_seconds(WORKFLOW_DEADLINE_DEFAULT),
        description="the whole run: Argo fails the Workflow (and stops its pods) after this long, e.g. 7d",
    )
    step_deadlines: dict[str, int] = Field(
        default_factory=dict,
        description="per step, for one attempt (a retry starts afresh), e.g. {align: 24h}; a --samples chunk "
        "or cellprofiler batch gets it once per sample / image set it holds; unnamed steps take bioinfra's "
        "defaults",
    )

    @field_validator("workflow_deadline", mode="before")
    @classmethod
    def _workflow_deadline(cls, v: Any) -> int:
        seconds = duration_seconds(v)
        if not MIN_WORKFLOW_DEADLINE <= seconds <= MAX_DEADLINE:
            raise ValueError(f"must be between {shown_duration(MIN_WORKFLOW_DEADLINE)} and "
                             f"{shown_duration(MAX_DEADLINE)}")
        return seconds

    @field_validator("step_deadlines", mode="before")
    @classmethod
    def _step_deadlines(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v  # pydantic says what it wanted
        problems, out = [], {}
        for step, value in v.items():
            if step not in STEP_DEADLINE_DEFAULTS:
                close = difflib.get_close_matches(str(step), STEP_DEADLINE_DEFAULTS, n=1)
                key = step if isinstance(step, str) and _STEP_KEY_RE.fullmatch(step) else shown(step)
                problems.append(f"{key}: no such step" + (f"; did you mean '{close[0]}'?" if close else
                                                          f"; steps: {', '.join(STEP_DEADLINE_DEFAULTS)}"))
                continue
            try:
                seconds = duration_seconds(value)
            except ValueError as exc:
                problems.append(f"{step}: {exc} (got {shown(value)})")
                continue
            if not MIN_STEP_DEADLINE <= seconds <= MAX_DEADLINE:
                problems.append(f"{step}: must be between {shown_duration(MIN_STEP_DEADLINE)} and "
                                f"{shown_duration(MAX_DEADLINE)} (got {shown(value)})")
                continue
            out[step] = seconds
        if problems:
            raise ValueError("\n".join(problems))
        return out

    @model_validator(mode="after")
    def _steps_within_the_workflow(self) -> RunSettings:
        longer = [f"step_deadlines.{step}: {shown_duration(s)} is longer than workflow_deadline "
                  f"({shown_duration(self.workflow_deadline)}); the Workflow would stop it first"
                  for step, s in self.step_deadlines.items() if s > self.workflow_deadline]
        if longer:
            raise ValueError("\n".join(longer))
        return self

    def step_deadline(self, step: str, items: int = 1, default: Optional[str] = None) -> int:
        """activeDeadlineSeconds of one attempt of `step` whose pod is given `items` samples / image
        sets: the configured deadline, else the pipeline's own default (pipeline.yaml `deadlines`),
        else bioinfra's, else a day; times items, never past the Workflow's own."""
        fallback = default or STEP_DEADLINE_DEFAULTS.get(step, "24h")
        per_item = self.step_deadlines.get(step) or duration_seconds(fallback)
        return min(per_item * max(items, 1), self.workflow_deadline)


class BudgetSettings(StrictModel):
    """The cost guard (issue #8): `bioinfra run` on aws/gcp refuses a run whose estimate is above it."""

    max_usd: Optional[float] = Field(
        None,
        gt=0,
        description="most a run may cost, in USD, by `bioinfra estimate`'s model and price table; above it `run` "
        "refuses (exit 14) unless --over-budget; unset: no limit",
    )


class Config(StrictModel):
    version: Literal[1] = 1
    name: str = Field("bioinfra", description="project / cluster name, a DNS label")
    target: Literal["local", "onprem", "gcp", "aws"] = "local"
    project: Optional[str] = Field(None, description="GCP project id (gcp only)")
    region: Optional[str] = None
    node_pools: NodePools = Field(default_factory=NodePools)
    buckets: Buckets = Field(default_factory=Buckets)
    registry: Registry = Field(default_factory=Registry)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    pipelines: PipelinePathSettings = Field(default_factory=PipelinePathSettings)
    local: LocalSettings = Field(default_factory=LocalSettings)
    onprem: OnpremSettings = Field(default_factory=OnpremSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    gcp: GcpSettings = Field(default_factory=GcpSettings)
    addons: AddonsSettings = Field(default_factory=AddonsSettings)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    run: RunSettings = Field(default_factory=RunSettings)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections_are_defaults(cls, data: Any) -> Any:
        # A section whose keys are all commented out parses as None: treat it as "use defaults".
        if isinstance(data, dict):
            sections = ("node_pools", "buckets", "registry", "pipeline", "pipelines", "local", "onprem", "state", "aws", "gcp",
                        "addons", "budget", "run")
            data = {k: v for k, v in data.items() if not (k in sections and v is None)}
            # Pools not named take the target's defaults (AWS instance types on aws, GCP ones elsewhere).
            defaults = DEFAULT_POOLS.get(str(data.get("target")))
            pools = data.get("node_pools", {})
            if defaults and isinstance(pools, dict):
                data["node_pools"] = {**{k: dict(v) for k, v in defaults.items()}, **pools}
                # A pool written without `min` keeps the default pool's (general: 1): on aws the general
                # pool cannot start at zero (aws_pool_problems says why), and changing only its machine
                # type must not turn into a refusal over a default the user never wrote.
                for k, pool in pools.items():
                    if k in defaults and isinstance(pool, dict) and "min" not in pool:
                        data["node_pools"][k] = {**pool, "min": defaults[k]["min"]}
        return data

    @field_validator("project")
    @classmethod
    def _project_id(cls, v: Optional[str]) -> Optional[str]:
        return _must_match(_GCP_PROJECT_RE, v, "a GCP project id (6-30 of a-z, 0-9 and '-', starting with a letter)")

    @field_validator("region")
    @classmethod
    def _region_name(cls, v: Optional[str]) -> Optional[str]:
        # Either cloud's shape here; the target's own list or pattern in target_problems.
        if v is not None and not (_AWS_REGION_RE.fullmatch(v) or _GCP_REGION_RE.fullmatch(v)):
            raise ValueError("not a region name (e.g. eu-west-2 on AWS, europe-west2 on GCP)")
        return v

    @field_validator("name")
    @classmethod
    def _dns_label(cls, v: str) -> str:
        if not _NAME_RE.fullmatch(v):
            raise ValueError(
                "must be 1-40 characters of a-z, 0-9 and '-', starting with a letter "
                "(it becomes part of cluster and bucket names)"
            )
        return v

    @model_validator(mode="after")
    def _target_requirements(self) -> Config:
        problems = target_problems(self.target, self.project, self.region)
        problems += _target(self.target).config_problems(self)  # its pools, state backend, ...
        if problems:
            # One ValueError per model is what pydantic allows; join so every problem is reported.
            raise ValueError("\n".join(problems))
        return self

    def results_bucket(self, owner: str) -> str:
        """The results bucket: buckets.results, else default_results_bucket(name, owner). `owner` is the
        AWS account id or the GCP project id: the target knows it (targets.<t>.results_bucket), the config
        alone does not. Every reader of the bucket's name (the storage stack's variables, adopt_kept,
        before_destroy, the run's stage-out) goes through this one function."""
        if self.buckets.results:
            return self.buckets.results
        name = default_results_bucket(self.name, owner)
        problem = _target(self.target).bucket_name_problem(name)
        if problem:
            raise ConfigError(f"buckets.results: the default name {name} is refused: {problem}",
                              hint="set buckets.results in bioinfra.yaml to a bucket name of your own")
        return name


# Bucket names are global across every S3 account (and every GCS project): "<name>-results" is almost
# surely someone else's, found out only after the network and cluster stacks (issue #18.6). The default
# carries the account or project, and the preflight checks the name is free (targets/<t>.preflight).
# Bounds: S3 3-63 (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html),
# GCS 3-63 without dots (https://cloud.google.com/storage/docs/buckets#naming).
_BUCKET_MAX = 63


def default_results_bucket(name: str, owner: str) -> str:
    """"<name>-results-<owner>" (owner: the 12-digit AWS account id, or the GCP project id, 6-30
    characters). Within 63 characters as is on AWS (40 + 9 + 12); on GCP a long name is cut and a hash
    of the whole name added, so two long names in one project never share a bucket."""
    suffix = f"-results-{owner}"
    if len(name) + len(suffix) <= _BUCKET_MAX:
        return f"{name}{suffix}"
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    keep = _BUCKET_MAX - len(suffix) - len(digest) - 1
    return f"{name[:keep].rstrip('-')}-{digest}{suffix}"


def _target(name: str) -> Any:
    """The target that validates its own part of the config (targets.<t>.config_problems), imported
    when a config is validated, not when this module is: bioinfra.targets imports this module only
    while type checking, so there is no import cycle."""
    from bioinfra.targets import get_target

    return get_target(name)


def target_problems(target: Any, project: Any, region: Any) -> list[str]:
    """What a target needs besides well-typed fields (project id, region format): its
    location_problems, from the raw values (also run when other fields failed, so every problem is
    said at once)."""
    from bioinfra.targets import TARGETS

    found = TARGETS.get(target) if isinstance(target, str) else None
    return found.location_problems(project, region) if found is not None else []


# -- the per-cloud validators the targets call (beside the region lists and type patterns they use) ---


def gcp_location_problems(project: Any, region: Any) -> list[str]:
    problems = []
    if not project:
        problems.append("project: required for target gcp (your GCP project id)")
    elif not isinstance(project, str) or not _GCP_PROJECT_RE.fullmatch(project):
        problems.append(f"project: {shown(project)} is not a valid GCP project id")
    if not region:
        problems.append("region: required for target gcp (e.g. europe-west2)")
    elif not isinstance(region, str) or not _GCP_REGION_RE.fullmatch(region):
        problems.append(f"region: {shown(region)} is not a GCP region (e.g. europe-west2)")
    return problems


def aws_location_problems(region: Any) -> list[str]:
    problems = []
    if not region:
        problems.append("region: required for target aws (e.g. eu-west-2)")
    elif not isinstance(region, str) or region not in AWS_REGIONS:
        close = difflib.get_close_matches(region, sorted(AWS_REGIONS), n=1, cutoff=0.8) \
            if isinstance(region, str) and len(region) < 40 else []
        hint = f"; did you mean '{close[0]}'?" if close else " (e.g. eu-west-2)"
        problems.append(f"region: {shown(region)} is not an AWS region{hint}")
    return problems


def _pools(pools: NodePools) -> list[tuple[str, NodePool]]:
    return [(name, pool) for name in ("general", "highcpu", "gpu") if (pool := getattr(pools, name)) is not None]


def aws_pool_problems(pools: NodePools) -> list[str]:
    """Instance types EC2 cannot use: checked here so Terraform never sees them."""
    problems = []
    for name, pool in _pools(pools):
        where = f"node_pools.{name}"
        if name == "general" and pool.min < 1:
            # The cluster autoscaler runs on the general pool with Argo and the workspace S3 server
            # (addons.system_pool, #18.8): with no general node it cannot start, so nothing would ever add one.
            problems.append(f"{where}.min: must be at least 1 on aws: the cluster autoscaler, Argo and the workspace S3 server "
                            "run on the general pool, and with no general node nothing could add one")
        for i, itype in enumerate([pool.machine_type, *pool.alternatives]):
            field = f"{where}.machine_type" if i == 0 else f"{where}.alternatives.{i - 1}"
            if not _EC2_TYPE_RE.fullmatch(itype):
                problems.append(f"{field}: {shown(itype)} is not an EC2 instance type (e.g. m6i.xlarge)")
            elif name == "gpu" and itype.split(".")[0] not in AWS_GPU_FAMILIES:
                problems.append(
                    f"{field}: {shown(itype)} has no NVIDIA GPU; use a GPU family such as g4dn, g5, g6 or p4d"
                )
    return problems


def gcp_pool_problems(pools: NodePools) -> list[str]:
    """Machine types GKE cannot use: checked here so Terraform never sees them."""
    problems = []
    for name, pool in _pools(pools):
        where = f"node_pools.{name}"
        if not _GCE_TYPE_RE.fullmatch(pool.machine_type):
            problems.append(f"{where}.machine_type: {shown(pool.machine_type)} is not a Compute Engine machine type "
                            "(e.g. e2-standard-4)")
        elif name == "gpu" and pool.machine_type.split("-")[0] not in GCE_GPU_FAMILIES:
            problems.append(f"{where}.machine_type: {shown(pool.machine_type)} cannot take GPUs; use an "
                            f"{', '.join(GCE_GPU_FAMILIES[:-1])} or {GCE_GPU_FAMILIES[-1]} machine type")
        if pool.alternatives:
            problems.append(f"{where}.alternatives: AWS only (a GKE node pool has one machine type)")
        if name == "gpu" and pool.gpu is not None and not pool.gpu.type:
            problems.append(f"{where}.gpu.type: required on gcp (e.g. nvidia-tesla-t4)")
    return problems


# Which cloud keeps each remote state backend (state.backend), as said to the user.
STATE_BACKEND_CLOUDS = {"s3": "aws", "gcs": "gcp"}


def state_backend_problems(config: Config, own: str) -> list[str]:
    """A remote state backend of another cloud than the target's (`own`: its backend kind)."""
    backend = config.state.backend
    if backend in STATE_BACKEND_CLOUDS and backend != own:
        return [f"state.backend: '{backend}' keeps state on {STATE_BACKEND_CLOUDS[backend]}; "
                f"target {config.target} uses '{own}' (or 'local')"]
    return []


def gcp_config_problems(config: Config) -> list[str]:
    """gcp's needs of a config: machine types, the state backend, the bucket name, Filestore zones."""
    problems = gcp_pool_problems(config.node_pools) + state_backend_problems(config, "gcs")
    if config.buckets.results and (problem := gcs_bucket_problem(config.buckets.results)):
        problems.append(f"buckets.results: {problem} (got {shown(config.buckets.results)})")
    if config.gcp.filestore and config.gcp.filestore_tier != "REGIONAL" and not config.gcp.zones:
        problems.append(f"gcp.zones: a {config.gcp.filestore_tier} Filestore instance lives in one zone; "
                        "name the zones (e.g. [europe-west2-a]) or use filestore_tier: REGIONAL")
    return problems


def aws_config_problems(config: Config) -> list[str]:
    """aws's needs of a config: instance types and the state backend."""
    return aws_pool_problems(config.node_pools) + state_backend_problems(config, "s3")


# ---------------------------------------------------------------------------------------------
# Loading and error reporting


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found by walking `loc` from `model` (for did-you-mean)."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = _unwrap(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    if args:  # Optional[X] -> X
        for arg in args:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return annotation


def format_validation_error(exc: ValidationError) -> list[str]:
    """Turn pydantic's errors into 'field.path: message' lines, with did-you-mean for typos."""
    problems = []
    # include_input: only to show a short, escaped form of a scalar (shown()); never repr() of the input,
    # which for a YAML alias bomb is gigabytes (issue #15).
    for err in exc.errors(include_url=False, include_context=False, include_input=True):
        loc = tuple(err["loc"])
        path = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = _fields_at(Config, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
            msg = "unknown key"
            if close:
                msg += f"; did you mean '{close[0]}'?"
            elif allowed:
                msg += f"; allowed here: {', '.join(allowed)}"
            problems.append(f"{path}: {msg}")
            continue
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "value_error" and re.match(r"[A-Za-z0-9_][A-Za-z0-9_.-]*: ", msg):
            # model-level validators already name their fields ("region: required ..."), one per line
            for part in msg.split("\n"):
                sub, _, text = part.partition(": ")
                prefix = f"{path}." if loc else ""
                problems.append(f"{prefix}{sub}: {text}")
            continue
        if "input" in err and err["type"] != "missing" \
                and isinstance(err["input"], (str, int, float, bool)):
            msg += f" (got {shown(err['input'])})"
        problems.append(f"{path}: {msg}")
    return problems


def parse_config(data: Any, source: str = CONFIG_FILENAME) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of keys to values",
            problems=[f"(top level): expected a mapping, got {type(data).__name__}"],
        )
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(exc)
        # Model-level checks do not run when a field failed; run the target checks anyway so the
        # user sees every problem in one go.
        for problem in target_problems(data.get("target"), data.get("project"), data.get("region")):
            if problem not in problems:
                problems.append(problem)
        raise ConfigError(
            f"{source} is invalid ({len(problems)} problem{'s' if len(problems) != 1 else ''})",
            problems=problems,
            hint="fix the fields named above; `bioinfra init --target TARGET` writes a commented example",
        ) from None


MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: a bioinfra.yaml is a few KB; anything near this is not one


class _Refused(Exception):
    """A YAML construct bioinfra.yaml may not use (raised inside the loader, reported as ConfigError)."""


def _safe_loader() -> type:
    """yaml.SafeLoader without anchors and aliases (a "billion laughs" alias bomb expands to gigabytes
    once anything walks it), and with duplicate keys refused (YAML says keys are unique; PyYAML keeps
    the last one silently)."""
    import yaml

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent):
                raise _Refused(f"line {event.start_mark.line + 1}: YAML aliases (*{shown(event.anchor)[1:-1]}) are "
                               "not accepted in bioinfra.yaml; write the value out")
            if getattr(event, "anchor", None) is not None:
                raise _Refused(f"line {event.start_mark.line + 1}: YAML anchors (&{shown(event.anchor)[1:-1]}) are "
                               "not accepted in bioinfra.yaml; write the value out")
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                if key is None:
                    continue
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _Refused(f"duplicate key {shown(key)} at lines {seen[key]} and {line} (YAML keys are "
                                   "unique; keep one)")
                seen[key] = line
            return super().construct_mapping(node, deep)

    return Loader


def load_yaml_file(path: Path) -> Any:
    """The YAML in `path`, read safely: at most MAX_CONFIG_BYTES, no anchors or aliases, no duplicate
    keys; messages name the line and never echo more than a short, escaped piece of the input."""
    import yaml

    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KiB: not a bioinfra.yaml",
                          hint="a bioinfra.yaml is a few KB; `bioinfra init` writes a commented example")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_safe_loader())  # noqa: S506 - a SafeLoader subclass
    except _Refused as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise ConfigError(f"{path} is not valid YAML{where}: {shown(problem, 120)[1:-1]}") from None
    except RecursionError:
        raise ConfigError(f"{path} is nested too deeply to be a bioinfra.yaml") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{path}: a value cannot be read ({shown(str(exc), 80)[1:-1]})") from None


def env_overrides(data: Any) -> Any:
    """The config data with the BIOINFRA_* variables that override fields applied, each checked as the
    file's value would be; a bad one is refused naming the variable (ConfigError, exit 3)."""
    problems = []
    for var, (section, key) in ENV_OVERRIDES.items():
        value = os.environ.get(var)
        if not value:
            continue
        try:
            value = _url(value, "http://127.0.0.1:4566" if section == "aws" else "http://127.0.0.1:8089")
        except ValueError as exc:
            problems.append(f"{var}: {exc} (got {shown(value)})")
            continue
        if isinstance(data, dict) and isinstance(data.get(section) or {}, dict):
            data = {**data, section: {**(data.get(section) or {}), key: value}}
    if problems:
        raise ConfigError(f"environment variable{'s' if len(problems) > 1 else ''} invalid ({len(problems)} problem"
                          f"{'s' if len(problems) > 1 else ''})", problems=problems,
                          hint="fix or unset the variables named above")
    return data


def env_endpoint_url(var: str, configured: Optional[str]) -> Optional[str]:
    """$var if set (checked like the config field it overrides, ConfigError naming it), else `configured`."""
    value = os.environ.get(var)
    if not value:
        return configured.rstrip("/") if configured else None
    section, key = ENV_OVERRIDES[var]
    return env_overrides({section: {}})[section][key]


def find_config_path(explicit: Optional[Path] = None) -> Optional[Path]:
    """The config to use: --config, then $BIOINFRA_CONFIG, then ./bioinfra.yaml if it exists."""
    if explicit is not None:
        if not explicit.exists():
            raise ConfigError(
                f"config file {explicit} does not exist",
                hint="create one with `bioinfra init`, or drop --config to use the built-in defaults",
            )
        return explicit
    env = os.environ.get("BIOINFRA_CONFIG")
    if env:
        return find_config_path(Path(env))
    default = Path.cwd() / CONFIG_FILENAME
    return default if default.exists() else None


def load_config(explicit: Optional[Path] = None, target: Optional[str] = None) -> Config:
    """Load and validate the config; with no file at all, the embedded default (target local).

    `target` (from `bioinfra up TARGET`) overrides the file's target before validation, so the
    target's own requirements (region, instance types) are checked against the file's values.
    """
    path = find_config_path(explicit)
    data = load_yaml_file(path) if path is not None else {}
    if target is not None:
        if data is None:
            data = {}
        if isinstance(data, dict):
            data = {**data, "target": target}
    data = env_overrides({} if data is None else data)
    if path is None and target is None and data == {}:
        return Config()
    return parse_config(data, source=str(path) if path else "the built-in defaults")
