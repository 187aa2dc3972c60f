"""Issue #18.9: the preflight reads the vCPU quotas and refuses a pool whose max cannot fit, naming the
quota, the need against the limit, the pool's config field and where to ask for more.

AWS: EC2 (DescribeInstanceTypes), STS and S3 are moto's, in-process (moto.mock_aws). STAND-IN: moto's
Service Quotas knows only the vpc service (moto/servicequotas/models.py answers NoSuchResource for ec2),
so its client is a botocore Stubber answering GetServiceQuota with the documented response shape
(https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_GetServiceQuota.html; the
Stubber checks each answer against botocore's model of the API).
GCP: FakeGoogleApis (tests/fakes/google_api.py): regions.get and projects.get with their quotas[],
machineTypes.get with guestCpus.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.stub import Stubber

from bioinfra.adaptors.aws import AwsSession
from bioinfra.adaptors.aws_quotas import ON_DEMAND, SPOT, quota_class
from bioinfra.adaptors.gcp_quotas import ALL_REGIONS, PREEMPTIBLE
from bioinfra.config import parse_config
from bioinfra.errors import ExitCode, PreflightError
from bioinfra.targets.aws import AwsTarget

REGION = "eu-west-2"


@pytest.mark.parametrize(("instance_type", "klass"), [
    ("m6i.xlarge", "standard"), ("c7gn.2xlarge", "standard"), ("im4gn.large", "standard"), ("z1d.large", "standard"),
    ("g5.12xlarge", "g"), ("g5g.xlarge", "g"), ("vt1.3xlarge", "g"), ("gr6.4xlarge", "g"), ("p4d.24xlarge", "p"),
    ("inf2.xlarge", None), ("trn1.2xlarge", None), ("hpc7g.4xlarge", None), ("x2idn.16xlarge", None),
])
def test_each_instance_family_counts_against_its_quota(instance_type, klass):
    assert quota_class(instance_type) == klass


@dataclass
class StubbedQuotas(AwsSession):
    """An AwsSession (moto's EC2, STS, S3) whose Service Quotas client is the Stubber's."""

    quotas: Any = None

    def client(self, service: str) -> Any:
        return self.quotas if service == "service-quotas" else super().client(service)


@pytest.fixture
def aws():
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    from moto import mock_aws

    with mock.patch.dict(os.environ, env), mock_aws():
        quotas = boto3.client("service-quotas", region_name=REGION)
        with Stubber(quotas) as stub:
            yield StubbedQuotas(boto3.session.Session(region_name=REGION), None, quotas), stub


def answers(stub: Stubber, values: dict[str, float]) -> None:
    """GetServiceQuota answers, in the order the check asks (by quota code)."""
    names = {q.code: q.name for q in (*ON_DEMAND.values(), *SPOT.values())}
    for code in sorted(values):
        stub.add_response("get_service_quota", {"Quota": {
            "ServiceCode": "ec2", "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
            "QuotaArn": f"arn:aws:servicequotas:{REGION}:123456789012:ec2/{code}", "QuotaCode": code,
            "QuotaName": names[code], "Value": values[code], "Unit": "None", "Adjustable": True, "GlobalQuota": False,
        }}, {"ServiceCode": "ec2", "QuotaCode": code})


def config(pools: dict):
    return parse_config({"name": "quota", "target": "aws", "region": REGION, "node_pools": pools})


GENERAL = {"machine_type": "m6i.xlarge", "min": 1, "max": 3}  # 4 vCPUs


def said(error: PreflightError) -> str:
    return "\n".join([str(error), *error.problems, error.hint or ""])


def test_a_gpu_pool_on_a_new_account_with_0_g_and_vt_vcpus_is_refused_before_any_stack(aws):
    session, stub = aws
    answers(stub, {"L-1216C47A": 64, "L-34B43A08": 64, "L-DB2E81BA": 0})
    pools = {"general": GENERAL, "highcpu": {"machine_type": "c6i.4xlarge", "max": 4, "spot": True},
             "gpu": {"machine_type": "g5.12xlarge", "max": 2, "gpu": {"type": "nvidia-a10g", "count": 4}}}
    with pytest.raises(PreflightError) as refused:
        AwsTarget().preflight(config(pools), session)
    assert refused.value.exit_code == ExitCode.PREFLIGHT_FAILED
    assert refused.value.problems == [
        f"EC2 quota 'Running On-Demand G and VT instances' (L-DB2E81BA) in {REGION} is 0 vCPUs, but "
        "node_pools.gpu.max 2 × 48 vCPUs (g5.12xlarge) = 96 vCPUs — request 96 at "
        f"https://console.aws.amazon.com/servicequotas/home/services/ec2/quotas/L-DB2E81BA (region {REGION}), "
        "or lower node_pools.gpu.max"]
    stub.assert_no_pending_responses()


def test_pools_that_share_a_quota_are_summed_and_spot_counts_against_the_spot_quota(aws):
    session, stub = aws
    # general 3 × 4 = 12 and highcpu (on-demand) 2 × 36 = 72: 84 of the Standard on-demand quota's 64;
    # alone, each would fit.
    answers(stub, {"L-1216C47A": 64})
    pools = {"general": GENERAL, "highcpu": {"machine_type": "c5.9xlarge", "max": 2, "alternatives": ["c5.4xlarge"]}}
    with pytest.raises(PreflightError) as refused:
        AwsTarget().preflight(config(pools), session)
    problem, = refused.value.problems
    assert problem.startswith("EC2 quota 'Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances' "
                              f"(L-1216C47A) in {REGION} is 64 vCPUs, but node_pools.general.max 3 × 4 vCPUs "
                              "(m6i.xlarge) + node_pools.highcpu.max 2 × 36 vCPUs (c5.9xlarge) = 84 vCPUs")
    assert "or lower node_pools.general.max or node_pools.highcpu.max" in problem

    # The same pools with highcpu on spot: 12 on-demand, 72 spot; both fit.
    answers(stub, {"L-1216C47A": 64, "L-34B43A08": 72})
    pools["highcpu"]["spot"] = True
    said_ok = AwsTarget().preflight(config(pools), session)
    assert "warning" not in said_ok
    stub.assert_no_pending_responses()


def test_without_permission_to_read_quotas_the_preflight_says_so_and_goes_on(aws):
    session, stub = aws
    stub.add_client_error("get_service_quota", service_error_code="AccessDeniedException", http_status_code=403,
                          service_message="User is not authorized to perform: servicequotas:GetServiceQuota")
    said_ok = AwsTarget().preflight(config({"general": GENERAL}), session)
    assert ("warning: EC2 vCPU quotas not checked: Service Quotas refused (AccessDeniedException); allow "
            "servicequotas:GetServiceQuota") in said_ok


# -- GCP -----------------------------------------------------------------------------------------

PROJECT, GCP_REGION = "lab-project-123", "europe-west2"


@pytest.fixture
def gcp(fake_google_apis):
    """A project ready for `up` but for its quotas: every API on, e2 and c2 machine types offered."""
    from bioinfra.targets.gcp import required_apis

    fake = fake_google_apis
    fake.add_project(PROJECT)
    fake.enable_services(PROJECT, required_apis(gcp_config({})))
    for machine_type, cpus in (("e2-standard-4", 4), ("c2-standard-30", 30), ("n1-standard-8", 8)):
        fake.add_machine_type(PROJECT, f"{GCP_REGION}-a", machine_type, cpus)
    return fake


def gcp_config(pools: dict):
    return parse_config({"name": "quota", "target": "gcp", "project": PROJECT, "region": GCP_REGION,
                         "node_pools": pools})


def gcp_preflight(fake, pools: dict) -> str:
    from bioinfra.adaptors.gcp import open_session
    from bioinfra.targets.gcp import GcpTarget

    return GcpTarget().preflight(gcp_config(pools), open_session(PROJECT, GCP_REGION, fake.url))


def project_quotas(fake, quotas: dict[str, tuple[float, float]]) -> None:
    fake.put(f"/compute/v1/projects/{PROJECT}", {"name": PROJECT, "quotas": [
        {"metric": m, "limit": limit, "usage": usage} for m, (limit, usage) in quotas.items()]})


GCP_POOLS = {"general": {"machine_type": "e2-standard-4", "min": 1, "max": 3},
             "highcpu": {"machine_type": "c2-standard-30", "min": 0, "max": 4, "spot": True}}


def test_a_c2_pool_beyond_the_regions_c2_cpus_is_refused_with_what_is_free_and_where_to_ask(gcp):
    # C2 VMs count against C2_CPUS; with no PREEMPTIBLE_CPUS quota a Spot pool takes the standard one.
    gcp.add_region(PROJECT, GCP_REGION, ["a", "b"], quotas={"CPUS": (24, 0), "C2_CPUS": (100, 40)})
    project_quotas(gcp, {ALL_REGIONS: (1000, 0)})
    with pytest.raises(PreflightError) as refused:
        gcp_preflight(gcp, GCP_POOLS)
    assert refused.value.exit_code == ExitCode.PREFLIGHT_FAILED
    assert refused.value.problems == [
        f"Compute Engine quota C2_CPUS in {GCP_REGION} is 100 with 40 in use (60 free), but node_pools.highcpu.max "
        f"4 × 30 vCPUs (c2-standard-30) = 120 vCPUs — request more at "
        f"https://console.cloud.google.com/iam-admin/quotas?project={PROJECT} (metric C2_CPUS, region {GCP_REGION}), "
        "or lower node_pools.highcpu.max"]
    assert gcp.seen("GET", f"/compute/v1/projects/{PROJECT}/zones/{GCP_REGION}-a/machineTypes/c2-standard-30")


def test_spot_pools_take_the_preemptible_quota_and_on_demand_pools_the_project_wide_one(gcp):
    # Spot on PREEMPTIBLE_CPUS (granted): 120 of 128 fits. On demand: the general and GPU pools' 12 + 16
    # vCPUs fit CPUS (32) but not the project's CPUS_ALL_REGIONS (40, 20 in use elsewhere).
    gcp.add_region(PROJECT, GCP_REGION, ["a", "b"], quotas={"CPUS": (32, 0), "C2_CPUS": (0, 0),
                                                            PREEMPTIBLE: (128, 0), "NVIDIA_T4_GPUS": (8, 0)})
    gcp.add_accelerator(PROJECT, f"{GCP_REGION}-a", "nvidia-tesla-t4")
    project_quotas(gcp, {ALL_REGIONS: (40, 20), "GPUS_ALL_REGIONS": (8, 0)})
    pools = {**GCP_POOLS, "gpu": {"machine_type": "n1-standard-8", "max": 2, "gpu": {"type": "nvidia-tesla-t4", "count": 1}}}
    with pytest.raises(PreflightError) as refused:
        gcp_preflight(gcp, pools)
    assert refused.value.problems == [
        f"Compute Engine quota {ALL_REGIONS} in project {PROJECT} is 40 with 20 in use (20 free), but "
        "node_pools.general.max 3 × 4 vCPUs (e2-standard-4) + node_pools.gpu.max 2 × 8 vCPUs (n1-standard-8) "
        f"= 28 vCPUs — request more at https://console.cloud.google.com/iam-admin/quotas?project={PROJECT} "
        f"(metric {ALL_REGIONS}), or lower node_pools.general.max or node_pools.gpu.max"]
    project_quotas(gcp, {ALL_REGIONS: (40, 0), "GPUS_ALL_REGIONS": (8, 0)})
    gcp_preflight(gcp, pools)  # now it all fits


# -- bioinfra doctor -----------------------------------------------------------------------------
# `d` is a stand-in for core.doctor.Doctor after its credentials check: the session and the config.


def test_doctor_says_a_quota_shortfall_as_a_warning_with_the_same_reading(aws, gcp):
    from types import SimpleNamespace

    from bioinfra.adaptors import aws_quotas, gcp_quotas
    from bioinfra.targets.base import OK, WARNING

    session, stub = aws
    # general 3 × 4 vCPUs on demand; the default highcpu pool (spot c6i.4xlarge) on the spot quota
    answers(stub, {"L-1216C47A": 8, "L-34B43A08": 1000})
    check = aws_quotas.doctor_check(SimpleNamespace(session=session, config=config({"general": GENERAL})))
    assert check.status == WARNING and "(L-1216C47A) in eu-west-2 is 8 vCPUs" in check.detail
    answers(stub, {"L-1216C47A": 64, "L-34B43A08": 1000})
    ok = aws_quotas.doctor_check(SimpleNamespace(session=session, config=config({"general": GENERAL})))
    assert ok.status == OK, ok.detail

    from bioinfra.adaptors.gcp import open_session

    gcp.add_region(PROJECT, GCP_REGION, ["a", "b"], quotas={"CPUS": (8, 0)})
    project_quotas(gcp, {})
    d = SimpleNamespace(session=open_session(PROJECT, GCP_REGION, gcp.url), config=gcp_config(
        {"general": {"machine_type": "e2-standard-4", "min": 1, "max": 3}}))
    check = gcp_quotas.doctor_check(d)
    assert check.status == WARNING and "Compute Engine quota CPUS in europe-west2 is 8 with 0 in use" in check.detail


@pytest.mark.parametrize("target", ["aws", "gcp"])
def test_doctor_on_a_cloud_target_checks_the_quotas_once_it_has_credentials(target):
    from bioinfra.core.doctor import steps_for

    cfg = config({"general": GENERAL}) if target == "aws" else gcp_config({})
    needs = {name: tuple(after) for name, _fn, after in steps_for(cfg)}
    assert needs["vCPU quotas"] == ("credentials",)
