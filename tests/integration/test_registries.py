"""Registry logins for the cloud targets.

Stand-ins, named: AWS is moto_server on 127.0.0.1 (real HTTP, real boto3); no Google endpoint can
be reached, so a pre-issued OAuth token stands in for application-default credentials. Pushing to
ECR or Artifact Registry cannot happen here (moto serves the API, not a registry): the push path
itself is tested against a real local registry in test_docker.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from bioinfra.adaptors.registries import artifact_registry_login, ecr_client, ecr_login, ensure_ecr_repositories
from bioinfra.config import parse_config
from tests.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    exe = shutil.which("moto_server") or os.path.join(os.path.dirname(sys.executable), "moto_server")
    if not os.path.exists(exe):
        pytest.fail("moto_server missing: pip install 'bioinfra[test]'")
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-2"})
    yield url
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.terminate()
    proc.wait(timeout=10)


def test_ecr_login_token_is_decoded_and_never_shown(moto):
    login = ecr_login(ecr_client("eu-west-2", endpoint_url=moto))
    assert login.registry.endswith(".dkr.ecr.eu-west-2.amazonaws.com") and login.username == "AWS"
    assert login.password and login.password not in repr(login)


def test_ecr_repositories_are_created_once_and_immutable(moto):
    ecr = ecr_client("eu-west-2", endpoint_url=moto)
    names = ["lab-seq/fastqc", "lab-seq/bwa-mem2"]
    assert ensure_ecr_repositories(ecr, names, tags={"bioinfra:cluster": "lab-seq"}) == names
    assert ensure_ecr_repositories(ecr, names, tags={"bioinfra:cluster": "lab-seq"}) == []
    repos = ecr.describe_repositories(repositoryNames=names)["repositories"]
    assert {r["imageTagMutability"] for r in repos} == {"IMMUTABLE"}


def test_aws_target_pushes_under_the_accounts_registry(moto):
    from bioinfra.core.images import cloud_registry

    config = parse_config({"target": "aws", "region": "eu-west-2", "name": "lab-seq"})
    registry, login = cloud_registry(config, ["fastqc"], aws_endpoint_url=moto)
    assert registry == f"{login.registry}/lab-seq"


def test_artifact_registry_login_from_a_token():
    from google.oauth2.credentials import Credentials

    login = artifact_registry_login("europe-west2", credentials=Credentials(token="ya29.stand-in"))
    assert (login.registry, login.username, login.password) == ("europe-west2-docker.pkg.dev", "oauth2accesstoken", "ya29.stand-in")
