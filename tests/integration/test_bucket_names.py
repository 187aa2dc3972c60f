"""Issue #18.6: the default results bucket carries the account (AWS) or project (GCP) id, and the
preflight refuses a name that is not free before any stack is made (a taken name used to fail the
storage stack only after the network and the cluster, about 20 minutes in).

EMULATED: AWS by moto_server (one of this module's own, started with MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS
false so HeadBucket on another account's bucket answers 403 as S3 does; moto's multi-account support,
the x-moto-account-id header, makes that other account's bucket:
https://docs.getmoto.org/en/latest/docs/multi_account.html). GCP by FakeGoogleApis
(tests/fakes/google_api.py), whose storage buckets.get answers as the GCS JSON API does.
"""

from __future__ import annotations

import os
from unittest import mock

import boto3
import pytest

from bioinfra.config import parse_config
from bioinfra.errors import ExitCode, PreflightError
from bioinfra.targets.aws import STACKS as AWS_STACKS
from bioinfra.targets.aws import AwsTarget
from bioinfra.targets.gcp import STACKS as GCP_STACKS
from bioinfra.targets.gcp import GcpTarget
from tests.conftest import moto_server

pytestmark = [pytest.mark.integration]

ACCOUNT = "123456789012"  # moto's default account: the one the credentials below belong to
OTHER_ACCOUNT = "210987654321"
STORAGE = {s.name: s for s in AWS_STACKS}["storage"]


@pytest.fixture(scope="module")
def moto_private(tmp_path_factory):
    """A moto_server where another account's bucket is private, as on S3 (HeadBucket 403)."""
    with mock.patch.dict(os.environ, {"MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS": "false"}):
        server = moto_server(tmp_path_factory.mktemp("moto-private"))
        url = server.__enter__()
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def aws(moto_private, monkeypatch, tmp_path):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                       "AWS_EC2_METADATA_DISABLED": "true", "BIOINFRA_AWS_ENDPOINT_URL": moto_private}.items():
        monkeypatch.setenv(key, value)
    return moto_private


def s3_of(endpoint: str, account: str = ACCOUNT):
    """An S3 client acting as `account` (moto's x-moto-account-id header; ours is moto's default)."""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-2")
    if account != ACCOUNT:
        def as_other(request, **_):
            request.headers["x-moto-account-id"] = account

        s3.meta.events.register("before-sign.s3", as_other)
    return s3


def make_bucket(s3, name: str, tags: dict[str, str] | None = None) -> None:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})


def said(error: PreflightError) -> str:
    """What the user sees of a refusal: the message, every problem, the hint."""
    return "\n".join([str(error), *error.problems, error.hint or ""])


def aws_config(name: str, **extra):
    return parse_config({"name": name, "target": "aws", "region": "eu-west-2", **extra})


def preflight(config, destroying: bool = False) -> tuple[AwsTarget, str]:
    target = AwsTarget()
    return target, target.preflight(config, target.open_session(config), destroying=destroying)


def test_the_default_results_bucket_carries_the_account_id_everywhere_it_is_read(aws):
    config = aws_config("names")
    target, said = preflight(config)
    assert ACCOUNT in said
    assert target.stack_values(config, STORAGE)["bucket"] == f"names-results-{ACCOUNT}"
    assert target.results_bucket(config, target.open_session(config)) == f"names-results-{ACCOUNT}"
    from bioinfra.core.cluster_run import results_location

    assert results_location(config, "run-1")[1] == f"s3://names-results-{ACCOUNT}/runs/run-1/"


def test_a_bucket_name_another_account_owns_is_refused_before_any_stack(aws):
    make_bucket(s3_of(aws, OTHER_ACCOUNT), "lab-seq-results")
    config = aws_config("taken", buckets={"results": "lab-seq-results"})
    with pytest.raises(PreflightError) as refused:
        preflight(config)
    text = said(refused.value)
    assert refused.value.exit_code == ExitCode.PREFLIGHT_FAILED
    assert "buckets.results: bucket lab-seq-results exists and belongs to another AWS account" in text
    assert f"e.g. taken-results-{ACCOUNT}" in text
    preflight(config, destroying=True)  # destroy is never refused for it


def test_the_default_name_squatted_by_another_account_is_refused_with_another_name_offered(aws):
    make_bucket(s3_of(aws, OTHER_ACCOUNT), f"squat-results-{ACCOUNT}")
    with pytest.raises(PreflightError) as refused:
        preflight(aws_config("squat"))
    assert f"bucket squat-results-{ACCOUNT} exists and belongs to another AWS account" in said(refused.value)
    assert f"e.g. squat-data-results-{ACCOUNT}" in said(refused.value)


def test_a_bucket_of_ours_is_fine_only_with_this_clusters_tag(aws):
    s3 = s3_of(aws)
    # Kept by an earlier destroy (it held data): adopt_kept takes it back, so the preflight lets it be.
    make_bucket(s3, f"kept-results-{ACCOUNT}", {"bioinfra:cluster": "kept"})
    preflight(aws_config("kept"))
    make_bucket(s3, f"byhand-results-{ACCOUNT}")
    with pytest.raises(PreflightError) as refused:
        preflight(aws_config("byhand"))
    assert f"bucket byhand-results-{ACCOUNT} already exists (not made by bioinfra for this cluster" in said(refused.value)
    make_bucket(s3, f"other-results-{ACCOUNT}", {"bioinfra:cluster": "someone"})
    with pytest.raises(PreflightError) as refused:
        preflight(aws_config("other"))
    assert "(cluster someone's: no tag bioinfra:cluster=other)" in said(refused.value)


# -- GCP -----------------------------------------------------------------------------------------

PROJECT, REGION = "lab-project-123", "europe-west2"
GCP_STORAGE = {s.name: s for s in GCP_STACKS}["storage"]


def gcp_config(name: str, **extra):
    return parse_config({"name": name, "target": "gcp", "project": PROJECT, "region": REGION, **extra})


def test_the_default_gcs_bucket_carries_the_project_and_stays_a_gcs_name():
    target = GcpTarget()
    assert target.stack_values(gcp_config("names"), GCP_STORAGE)["bucket"] == f"names-results-{PROJECT}"
    # 40 + "-results-" + 30 would be 79: cut, with a hash of the whole name so two long names differ.
    long_a, long_b = "a" * 30 + "-genomics", "a" * 30 + "-proteomic"
    project = "p" * 30
    names = [GcpTarget().results_bucket(parse_config({"name": n, "target": "gcp", "project": project,
                                                      "region": REGION})) for n in (long_a, long_b)]
    assert all(len(n) <= 63 and n.endswith(f"-results-{project}") for n in names) and names[0] != names[1]


@pytest.fixture
def gcp(fake_google_apis):
    """A project ready for `up` but for the bucket: every API on, the region there."""
    from bioinfra.targets.gcp import required_apis

    fake = fake_google_apis
    fake.add_project(PROJECT, number=111111111111)
    fake.add_region(PROJECT, REGION, ["a", "b", "c"])
    fake.enable_services(PROJECT, required_apis(gcp_config("any")))
    return fake


def gcp_preflight(fake, config) -> str:
    from bioinfra.adaptors.gcp import open_session

    return GcpTarget().preflight(config, open_session(PROJECT, REGION, fake.url))


def test_a_gcs_bucket_name_another_project_owns_is_refused_before_any_stack(gcp):
    gcp.add_bucket("lab-seq-results", project_number=222222222222, readable=False)
    with pytest.raises(PreflightError) as refused:
        gcp_preflight(gcp, gcp_config("taken", buckets={"results": "lab-seq-results"}))
    text = said(refused.value)
    assert refused.value.exit_code == ExitCode.PREFLIGHT_FAILED
    assert "buckets.results: bucket lab-seq-results exists and belongs to another project" in text
    assert f"e.g. taken-results-{PROJECT}" in text
    assert gcp.seen("GET", "/storage/v1/b/lab-seq-results")  # asked GCS, over the wire


def test_a_gcs_bucket_of_ours_is_fine_only_with_this_clusters_label(gcp):
    gcp_preflight(gcp, gcp_config("fresh"))  # 404: free
    gcp.add_bucket(f"kept-results-{PROJECT}", 111111111111, {"bioinfra-cluster": "kept"})
    gcp_preflight(gcp, gcp_config("kept"))  # kept by a destroy: adopt_kept takes it back
    gcp.add_bucket(f"byhand-results-{PROJECT}", 111111111111)
    with pytest.raises(PreflightError) as refused:
        gcp_preflight(gcp, gcp_config("byhand"))
    assert (f"bucket byhand-results-{PROJECT} already exists in project number 111111111111 (not made by bioinfra "
            "for this cluster: no label bioinfra-cluster=byhand)") in said(refused.value)
    assert f"e.g. byhand-data-results-{PROJECT}" in said(refused.value)
