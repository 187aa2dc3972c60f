"""`bioinfra status aws` and `bioinfra kubeconfig aws` (bioinfra.adaptors.aws) with real boto3 over HTTP.

Stand-in, named: AWS is moto_server on 127.0.0.1 (`moto_endpoint`, fake credentials). The EKS
cluster and its node groups are created directly with boto3, as `up aws` would configure them
(bioinfra.targets.aws.node_group), without Terraform, so each test takes about a second. The CLI runs
in a subprocess, as a user would run it. Where moto differs from AWS, and what that leaves
unexercised here:
- every cluster and node group is ACTIVE at once, with a random CA (not a PEM) and the same endpoint
  host for every cluster of the server, written with a trailing slash (EKS writes none);
- nothing checks a token: a presigned GetCallerIdentity URL sent to moto is answered as an S3
  ListBuckets (moto routes a request without an Authorization header to S3). The token's SigV4
  signature is therefore checked here by recomputing it (`sigv4_valid`), and its form against the
  AWS CLI's own `aws eks get-token` where that is installed;
- the exec plugin itself (`aws eks get-token` run by kubectl) and a real API server.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import shutil
import stat
import subprocess
import urllib.parse
import uuid
from pathlib import Path

import boto3
import pytest
import yaml

from bioinfra.config import parse_config
from bioinfra.core import ttl
from bioinfra.errors import ExitCode
from bioinfra.targets.aws import node_group, pools
from tests.conftest import kubectl_view

pytestmark = pytest.mark.integration

REGION = "eu-west-2"
ACCOUNT = "123456789012"  # moto's default account
VERSION = "1.31"
NODE_POOLS = {"gpu": {"machine_type": "g5.xlarge", "min": 0, "max": 2, "gpu": {"count": 1}}}
DESIRED = {"general": 2, "highcpu": 0, "gpu": 1}
GPU_TAINT = "nvidia.com/gpu=present:NoSchedule"
SPOT_TAINT = "bioinfra.io/spot=true:NoSchedule"  # spot pools but general (#18.8)


@pytest.fixture
def name() -> str:
    """moto_server is shared by the session: every test has its own cluster."""
    return f"eks-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def eks(aws_env, moto_endpoint):
    """boto3's EKS client on moto_server, with the same fake keys as the CLI (aws_env, which the `cli`
    fixture's environment now is)."""
    session = boto3.session.Session(aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
                                    aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"], region_name=REGION)
    return session.client("eks", endpoint_url=moto_endpoint)


def make_cluster(eks, name: str) -> dict:
    """An ACTIVE cluster with the general, spot highcpu and GPU node groups `up aws` makes from
    NODE_POOLS; returns describe_cluster's cluster."""
    eks.create_cluster(name=name, version=VERSION, roleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}-cluster",
                       resourcesVpcConfig={"subnetIds": ["subnet-0a", "subnet-0b"]})
    config = parse_config({"name": name, "target": "aws", "region": REGION, "node_pools": NODE_POOLS})
    for pool_name, pool in pools(config):
        group = node_group(name, pool_name, pool)
        eks.create_nodegroup(
            clusterName=name, nodegroupName=pool_name, nodeRole=f"arn:aws:iam::{ACCOUNT}:role/{name}-node",
            subnets=["subnet-0a", "subnet-0b"], instanceTypes=group["instance_types"], amiType=group["ami_type"],
            capacityType=group["capacity_type"], labels=group["labels"], taints=group["taints"],
            scalingConfig={"minSize": group["min"], "maxSize": group["max"], "desiredSize": DESIRED[pool_name]},
        )
    return eks.describe_cluster(name=name)["cluster"]


def write_config(tmp_path: Path, name: str, **aws: str) -> str:
    """bioinfra.yaml for the cluster; the endpoint comes from BIOINFRA_AWS_ENDPOINT_URL (aws_env)."""
    data = {"name": name, "target": "aws", "region": REGION, "node_pools": NODE_POOLS}
    if aws:
        data["aws"] = aws
    path = tmp_path / "bioinfra.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def decode_token(token: str) -> str:
    assert token.startswith("k8s-aws-v1.")
    body = token.removeprefix("k8s-aws-v1.")
    assert "=" not in body  # unpadded, as aws eks get-token
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def sigv4_valid(url: str, cluster: str, secret: str) -> bool:
    """Recompute the SigV4 query signature of a presigned GET, with the x-k8s-aws-id header the EKS
    authenticator sends with it (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html)."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    signature = query.pop("X-Amz-Signature")

    def q(value: str) -> str:
        return urllib.parse.quote(value, safe="-_.~")

    headers = {"host": parts.netloc, "x-k8s-aws-id": cluster}
    signed = query["X-Amz-SignedHeaders"].split(";")
    canonical = "\n".join(["GET", parts.path or "/", "&".join(f"{q(k)}={q(v)}" for k, v in sorted(query.items())),
                           *(f"{h}:{headers[h]}" for h in signed), "", ";".join(signed), hashlib.sha256(b"").hexdigest()])
    scope = query["X-Amz-Credential"].split("/", 1)[1]
    to_sign = "\n".join(["AWS4-HMAC-SHA256", query["X-Amz-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature)


# -- status ---------------------------------------------------------------------------------------


def test_status_table_and_json_follow_the_cluster(cli, tmp_path, eks, name):
    """`bioinfra status aws` reports what moto (stand-in) holds, then a change to it."""
    cluster = make_cluster(eks, name)
    host = cluster["endpoint"].removeprefix("https://").rstrip("/")
    config = write_config(tmp_path, name)
    proc = cli("status", "aws", "-c", config, check=True)
    table = proc.stdout
    assert f"✓ cluster {name}  ACTIVE  aws {ACCOUNT} {REGION}" in table
    assert f"endpoint https://{host}   version {VERSION}" in table
    rows = {line.split()[0]: line.split() for line in table.splitlines()[3:] if line.strip()}
    assert rows["general"] == ["general", "ACTIVE", "m6i.xlarge", "on-demand", "2", "1-3", "-", "-"]
    assert rows["highcpu"] == ["highcpu", "ACTIVE", "c6i.4xlarge,c6a.4xlarge,c5.4xlarge,c7i.4xlarge", "spot", "0",
                               "0-10", "-", SPOT_TAINT]
    assert rows["gpu"] == ["gpu", "ACTIVE", "g5.xlarge", "on-demand", "1", "0-2", "NVIDIA", "GPU(s)", GPU_TAINT]
    assert proc.stderr == ""

    eks.update_nodegroup_config(clusterName=name, nodegroupName="gpu",
                                scalingConfig={"minSize": 0, "maxSize": 4, "desiredSize": 3})
    data = json.loads(cli("status", "aws", "-c", config, "--json", check=True).stdout)
    assert {k: v for k, v in data.items() if k != "pools"} == {
        "target": "aws", "name": name, "location": REGION, "account": ACCOUNT, "status": "ACTIVE",
        "endpoint": host, "version": VERSION, "message": ""}
    assert {p["name"]: p for p in data["pools"]} == {p["name"]: p for p in [  # EKS lists in no documented order
        {"name": "general", "status": "ACTIVE", "machine_type": "m6i.xlarge", "spot": False, "min_nodes": 1,
         "max_nodes": 3, "nodes": 2, "accelerators": [], "taints": []},
        {"name": "highcpu", "status": "ACTIVE", "machine_type": "c6i.4xlarge,c6a.4xlarge,c5.4xlarge,c7i.4xlarge",
         "spot": True, "min_nodes": 0, "max_nodes": 10, "nodes": 0, "accelerators": [], "taints": [SPOT_TAINT]},
        {"name": "gpu", "status": "ACTIVE", "machine_type": "g5.xlarge", "spot": False, "min_nodes": 0,
         "max_nodes": 4, "nodes": 3, "accelerators": ["NVIDIA GPU(s)"], "taints": [GPU_TAINT]},
    ]}

    # `up --ttl 8h` nine hours ago (the record `up` writes): the table still comes, then the warning;
    # --json gains the ttl object.
    set_at = ttl.now_utc() - dt.timedelta(hours=9)
    ttl.write_ttl(tmp_path / ".bioinfra" / name / "aws", ttl.new_record(name, "aws", "8h", set_at=set_at))
    proc = cli("status", "aws", "-c", config, check=True)
    assert f"✓ cluster {name}  ACTIVE  aws {ACCOUNT} {REGION}" in proc.stdout
    assert proc.stderr.startswith(f"! cluster {name} is 1h past its time-to-live (set by `up --ttl 8h` at ")
    assert "bioinfra destroy aws" in proc.stderr
    data = json.loads(cli("status", "aws", "-c", config, "--json", check=True).stdout)
    assert data["ttl"]["expired"] is True and data["ttl"]["ttl"] == "8h" and data["ttl"]["seconds_past"] >= 3600
    assert data["status"] == "ACTIVE"


def test_missing_cluster_exits_12_through_the_cli(cli, tmp_path, eks, name):
    """moto (stand-in) answers ResourceNotFoundException: the same ✗ line, hint and exit 12 as gcp,
    for both commands; nothing is written."""
    make_cluster(eks, f"{name}-other")  # a bystander in the same region is not taken for ours
    config = write_config(tmp_path, name)
    for args in (["status", "aws"], ["status", "aws", "--json"], ["kubeconfig", "aws", "--auth", "plugin"]):
        proc = cli(*args, "-c", config)
        assert proc.returncode == ExitCode.PREFLIGHT_FAILED == 12, proc.stderr
        assert proc.stderr.splitlines() == [
            f"✗ no cluster '{name}' in AWS account {ACCOUNT}, region {REGION}",
            "  hint: `bioinfra up aws` creates it",
        ]
        assert proc.stdout == ""
    assert not (tmp_path / ".bioinfra").exists()


def test_no_credentials_is_exit_3_naming_the_profile(cli, tmp_path, aws_env, name):
    """Without keys (and no ~/.aws: HOME is empty) the STS check fails first, as before `up aws`."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        aws_env.pop(key)
    proc = cli("kubeconfig", "aws", "-c", write_config(tmp_path, name), "--auth", "token")
    assert proc.returncode == ExitCode.CONFIG_INVALID, proc.stderr
    assert proc.stderr.startswith("✗ no AWS credentials found\n  - aws.profile (or AWS_PROFILE): ")


# -- kubeconfig -----------------------------------------------------------------------------------


def test_kubeconfig_with_the_plugin_through_the_cli(cli, tmp_path, eks, name):
    """`bioinfra kubeconfig aws --auth plugin` reads describe_cluster from moto (stand-in) and writes a
    private kubeconfig beside the Terraform state, named and shaped as `aws eks update-kubeconfig` does."""
    cluster = make_cluster(eks, name)
    arn = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{name}"
    assert cluster["arn"] == arn
    proc = cli("kubeconfig", "aws", "-c", write_config(tmp_path, name), "--auth", "plugin", check=True)
    path = Path(proc.stdout.strip())
    assert path == tmp_path / ".bioinfra" / name / "aws" / "kubeconfig"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert proc.stderr == f"✓ kubeconfig for cluster {name}: context {arn}, auth by aws eks get-token\n"
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == arn
    assert config["clusters"] == [{"name": arn, "cluster": {
        "server": cluster["endpoint"].rstrip("/"),  # moto's endpoint ends in "/", EKS's does not
        "certificate-authority-data": cluster["certificateAuthority"]["data"]}}]
    assert config["contexts"] == [{"name": arn, "context": {"cluster": arn, "user": arn}}]
    (user,) = config["users"]
    exec_ = user["user"]["exec"]
    assert user["name"] == arn
    assert (exec_["apiVersion"], exec_["command"]) == ("client.authentication.k8s.io/v1beta1", "aws")
    assert exec_["args"] == ["--region", REGION, "eks", "get-token", "--cluster-name", name, "--output", "json"]
    assert "env" not in exec_  # no aws.profile: the AWS CLI's own chain, as for bioinfra
    assert "AWS CLI" in exec_["installHint"] and "--auth token" in exec_["installHint"]
    seen = kubectl_view(path)
    if seen is not None:  # kubectl reads the same server, CA and exec plugin
        assert seen["current-context"] == arn
        assert seen["clusters"][0]["cluster"]["server"] == cluster["endpoint"].rstrip("/")
        assert seen["users"][0]["user"]["exec"]["args"] == exec_["args"]


def test_kubeconfig_plugin_runs_with_the_configured_profile(cli, tmp_path, aws_env, eks, name):
    """aws.profile: bioinfra reads the cluster with that profile, and kubectl's `aws eks get-token`
    gets AWS_PROFILE, as `aws eks update-kubeconfig --profile` writes it (stand-in: moto)."""
    make_cluster(eks, name)
    credentials = Path(aws_env["HOME"]) / ".aws" / "credentials"
    credentials.parent.mkdir()
    credentials.write_text("[lab]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    proc = cli("kubeconfig", "aws", "-c", write_config(tmp_path, name, profile="lab"), "--auth", "plugin", check=True)
    (user,) = yaml.safe_load(Path(proc.stdout.strip()).read_text())["users"]
    assert user["user"]["exec"]["env"] == [{"name": "AWS_PROFILE", "value": "lab"}]


def test_kubeconfig_merges_into_an_existing_file(cli, tmp_path, eks, name):
    """Other contexts survive; a stale entry of ours is replaced; a 0644 file becomes 0600 (stand-in: moto)."""
    cluster = make_cluster(eks, name)
    arn = cluster["arn"]
    target = tmp_path / "home" / ".kube" / "config"
    target.parent.mkdir(parents=True)
    target.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kind-local",
        "clusters": [{"name": "kind-local", "cluster": {"server": "https://127.0.0.1:6443"}},
                     {"name": arn, "cluster": {"server": "https://stale.example"}}],
        "contexts": [{"name": "kind-local", "context": {"cluster": "kind-local", "user": "kind-local"}}],
        "users": [{"name": "kind-local", "user": {"client-certificate-data": "Y2VydA=="}},
                  {"name": arn, "user": {"token": "stale"}}],
    }))
    target.chmod(0o644)
    proc = cli("kubeconfig", "aws", "-c", write_config(tmp_path, name), "-o", str(target), "--auth", "plugin",
               check=True)
    assert proc.stdout.strip() == str(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    config = yaml.safe_load(target.read_text())
    assert config["current-context"] == arn
    assert [c["name"] for c in config["clusters"]] == ["kind-local", arn]
    assert config["clusters"][1]["cluster"]["server"] == cluster["endpoint"].rstrip("/")
    assert [c["name"] for c in config["contexts"]] == ["kind-local", arn]
    assert config["users"][0] == {"name": "kind-local", "user": {"client-certificate-data": "Y2VydA=="}}
    assert config["users"][1]["user"]["exec"]["command"] == "aws"
    assert [p.name for p in target.parent.iterdir()] == ["config"]  # no temporary file left
    seen = kubectl_view(target)
    if seen is not None:
        assert sorted(c["name"] for c in seen["contexts"]) == sorted(["kind-local", arn])


def test_kubeconfig_with_a_token_through_the_cli(cli, tmp_path, aws_env, moto_endpoint, eks, name):
    """--auth token stores an EKS token: a GetCallerIdentity URL presigned for 60 s with x-k8s-aws-id
    signed in, for the endpoint in use (moto, stand-in). The token appears only in the file."""
    make_cluster(eks, name)
    proc = cli("kubeconfig", "aws", "-c", write_config(tmp_path, name), "--auth", "token", check=True)
    path = Path(proc.stdout.strip())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (user,) = yaml.safe_load(path.read_text())["users"]
    assert list(user["user"]) == ["token"]
    token = user["user"]["token"]
    assert token not in proc.stdout + proc.stderr and "k8s-aws-v1" not in proc.stdout + proc.stderr
    assert "auth by a token stored in the file" in proc.stderr
    assert "the token expires in about 15 minutes (at " in proc.stderr

    url = decode_token(token)
    parts = urllib.parse.urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == moto_endpoint and parts.path == "/"
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert (query["Action"], query["Version"], query["X-Amz-Expires"]) == ("GetCallerIdentity", "2011-06-15", "60")
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert query["X-Amz-Credential"].startswith("testing/") and query["X-Amz-Credential"].endswith(
        f"/{REGION}/sts/aws4_request")
    secret = aws_env["AWS_SECRET_ACCESS_KEY"]
    assert sigv4_valid(url, name, secret)
    assert not sigv4_valid(url, f"{name}-other", secret)  # the token is for this cluster only


def test_the_token_is_the_one_aws_eks_get_token_makes(tmp_path, monkeypatch):
    """Signed locally, no endpoint (so no AWS is contacted): the URL is the AWS CLI's, parameter for
    parameter, but for the signing time; where the AWS CLI is installed its token is compared."""
    from bioinfra.adaptors.aws import eks_token, open_session

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE", "AWS_STS_REGIONAL_ENDPOINTS"):
        monkeypatch.delenv(key, raising=False)
    ours = decode_token(eks_token(open_session(REGION, None, None), "demo"))
    assert ours.startswith(f"https://sts.{REGION}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&")
    assert sigv4_valid(ours, "demo", "testing")

    def timeless(url: str) -> tuple:
        parts = urllib.parse.urlsplit(url)
        query = {k: v for k, v in urllib.parse.parse_qsl(parts.query) if k not in ("X-Amz-Date", "X-Amz-Signature")}
        query["X-Amz-Credential"] = query["X-Amz-Credential"].split("/", 2)[::2]  # without the date
        return parts.scheme, parts.netloc, parts.path, query

    aws = shutil.which("aws")
    if aws is None:
        return
    proc = subprocess.run([aws, "eks", "get-token", "--cluster-name", "demo", "--region", REGION, "--output", "json"],
                          capture_output=True, text=True, timeout=60, check=True)
    theirs = decode_token(json.loads(proc.stdout)["status"]["token"])
    assert timeless(ours) == timeless(theirs)
    assert sigv4_valid(theirs, "demo", "testing")


def test_auto_picks_the_plugin_only_where_aws_is_installed(cli, tmp_path, eks, name):
    """--auth auto: `aws` on PATH → exec plugin; not on PATH → a stored token (stand-in: moto)."""
    make_cluster(eks, name)
    config = write_config(tmp_path, name)
    without, with_aws = tmp_path / "bin-empty", tmp_path / "bin-aws"
    without.mkdir()
    with_aws.mkdir()
    fake = with_aws / "aws"
    fake.write_text("#!/bin/sh\nexit 1\n")  # only looked up, never run
    fake.chmod(0o755)
    for path, kind in ((without, "token"), (with_aws, "exec")):
        proc = cli("kubeconfig", "aws", "-c", config, extra_env={"PATH": str(path)}, check=True)
        (user,) = yaml.safe_load(Path(proc.stdout.strip()).read_text())["users"]
        assert list(user["user"]) == [kind]
