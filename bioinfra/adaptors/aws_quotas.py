"""The EC2 vCPU quotas a config's node pools need, read before `up` makes anything (issue #18.9).

A new account often has 0 vCPUs of "Running On-Demand G and VT instances" and a low spot limit: EKS then
makes the node group, the autoscaler asks for nodes, and none ever comes (the ASG retries quietly). Here
each pool's largest need (node_pools.<pool>.max nodes × the vCPUs of its largest instance type, from
EC2 DescribeInstanceTypes) is summed per quota and compared with the quota's value (Service Quotas
GetServiceQuota). EC2 counts these quotas in vCPUs per region; which instance families count against
which quota: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-on-demand-instances.html#ec2-on-demand-instances-limits
and https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html (Spot vCPU limits).
The value is the quota's limit, not what is left: vCPUs already running elsewhere in the account count
against it too (Service Quotas has no usage figure; its CloudWatch AWS/Usage metric is not read here).

Imported lazily (boto3 is the aws extra); the clients come from an AwsSession, so an emulator applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

# Instance families by the quota their vCPUs count against: the letters before the generation digit.
# "Standard" is A, C, D, H, I, M, R, T, Z (im4gn and is4gen are I; hpc, inf, trn, dl, mac, u, x, f have
# quotas of their own, not checked here). G and VT share one quota; P has its own.
STANDARD_FAMILIES = frozenset({"a", "c", "d", "h", "i", "im", "is", "m", "r", "t", "z"})
GPU_FAMILIES = frozenset({"g", "gr", "vt"})
P_FAMILIES = frozenset({"p"})


@dataclass(frozen=True)
class Quota:
    code: str  # Service Quotas' quota code (service ec2)
    name: str  # as Service Quotas names it

    @property
    def request_link(self) -> str:
        return f"https://console.aws.amazon.com/servicequotas/home/services/ec2/quotas/{self.code}"


# The codes and names as Service Quotas returns them (service code ec2); e.g. the AWS CLI's example of
# get-aws-default-service-quota for L-1216C47A:
# https://docs.aws.amazon.com/cli/latest/userguide/cli_service-quotas_code_examples.html
ON_DEMAND = {
    "standard": Quota("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"),
    "g": Quota("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "p": Quota("L-417A185B", "Running On-Demand P instances"),
}
SPOT = {
    "standard": Quota("L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests"),
    "g": Quota("L-3819A6DF", "All G and VT Spot Instance Requests"),
    "p": Quota("L-7212CCBC", "All P Spot Instance Requests"),
}

# What lets bioinfra read the quotas (said when the API refuses).
PERMISSION = "servicequotas:GetServiceQuota (and servicequotas:GetAWSDefaultServiceQuota)"


@dataclass(frozen=True)
class PoolNeed:
    """What one node pool may use at most."""

    pool: str  # general, highcpu, gpu
    instance_types: tuple[str, ...]  # machine_type, then the alternatives
    max_nodes: int
    spot: bool


def quota_class(instance_type: str) -> Optional[str]:
    """"standard", "g" or "p" for the quota an instance type's vCPUs count against; None for a family
    with a quota of its own that bioinfra does not check (inf, trn, dl, hpc, x, u, f, mac)."""
    match = re.match(r"([a-z]+)\d", instance_type)
    if match is None:
        return None
    letters = match.group(1)
    if letters in STANDARD_FAMILIES:
        return "standard"
    if letters in GPU_FAMILIES:
        return "g"
    if letters in P_FAMILIES:
        return "p"
    return None


@dataclass
class QuotaCheck:
    """What the check found: problems refuse `up`; notes are said and do not."""

    problems: list[str]
    notes: list[str]


def _code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__))


def instance_vcpus(ec2: Any, instance_types: list[str]) -> dict[str, int]:
    """vCPUs of each instance type the region offers (DescribeInstanceTypes, VCpuInfo.DefaultVCpus);
    a type the region does not offer is left out (Terraform names it). Ref
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypes.html"""
    import botocore.exceptions

    found: dict[str, int] = {}
    for itype in sorted(set(instance_types)):  # one by one: one unknown type fails the whole call
        try:
            answer = ec2.describe_instance_types(InstanceTypes=[itype])
        except botocore.exceptions.ClientError as exc:
            if _code(exc) == "InvalidInstanceType":
                continue
            raise
        for info in answer.get("InstanceTypes", []):
            found[info["InstanceType"]] = int(info["VCpuInfo"]["DefaultVCpus"])
    return found


class QuotaUnreadable(Exception):
    """Service Quotas would not say: the credentials may not ask (denied), or another error."""

    def __init__(self, code: str, denied: bool) -> None:
        super().__init__(code)
        self.code, self.denied = code, denied


def quota_value(quotas: Any, quota: Quota) -> Optional[float]:
    """The quota's value in this account and region (GetServiceQuota; a quota never changed may be
    answered only by GetAWSDefaultServiceQuota), or None when Service Quotas does not know it here.
    Raises QuotaUnreadable when Service Quotas refuses or fails: the check is then said to be skipped,
    never a reason to refuse `up`. Ref
    https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_GetServiceQuota.html"""
    import botocore.exceptions

    for call in (quotas.get_service_quota, quotas.get_aws_default_service_quota):
        try:
            return float(call(ServiceCode="ec2", QuotaCode=quota.code)["Quota"]["Value"])
        except botocore.exceptions.ClientError as exc:
            code = _code(exc)
            if code != "NoSuchResourceException":
                raise QuotaUnreadable(code, code in ("AccessDeniedException", "AccessDenied")) from None
        except botocore.exceptions.BotoCoreError as exc:  # no answer at all (endpoint, network)
            raise QuotaUnreadable(type(exc).__name__, False) from None
    return None


def check_quotas(aws: Any, pools: list[PoolNeed]) -> QuotaCheck:
    """Every quota the pools together would exceed at their largest, one line each: the quota's name
    and code, the need against the limit, the pools and their config fields, the request link."""
    vcpus = instance_vcpus(aws.client("ec2"), [t for p in pools for t in p.instance_types])
    # quota -> [(pool, max nodes, vCPUs per node, the type that has them)]
    needs: dict[Quota, list[tuple[PoolNeed, int, str]]] = {}
    for pool in pools:
        by_class: dict[str, tuple[int, str]] = {}
        for itype in pool.instance_types:
            klass = quota_class(itype)
            if klass is None or itype not in vcpus:
                continue
            if vcpus[itype] > by_class.get(klass, (0, ""))[0]:
                by_class[klass] = (vcpus[itype], itype)
        for klass, (per_node, itype) in by_class.items():
            quota = (SPOT if pool.spot else ON_DEMAND)[klass]
            needs.setdefault(quota, []).append((pool, per_node, itype))
    result = QuotaCheck([], [])
    client = aws.client("service-quotas")
    region = aws.region
    for quota, users in sorted(needs.items(), key=lambda item: item[0].code):
        try:
            limit = quota_value(client, quota)
        except QuotaUnreadable as unread:
            why = (f"Service Quotas refused ({unread.code}); allow {PERMISSION} to let bioinfra check them before `up`"
                   if unread.denied else f"Service Quotas answered {unread.code}")
            result.notes.append(
                f"EC2 vCPU quotas not checked: {why} (compare them yourself: "
                f"https://console.aws.amazon.com/servicequotas/home/services/ec2/quotas, region {region})")
            return result
        if limit is None:
            continue
        total = sum(pool.max_nodes * per_node for pool, per_node, _ in users)
        if total <= limit:
            continue
        parts = " + ".join(f"node_pools.{pool.pool}.max {pool.max_nodes} × {per_node} vCPUs ({itype})"
                           for pool, per_node, itype in users)
        fields = " or ".join(f"node_pools.{pool.pool}.max" for pool, _, _ in users)
        result.problems.append(
            f"EC2 quota '{quota.name}' ({quota.code}) in {region} is {limit:g} vCPUs, but {parts} = {total} vCPUs "
            f"— request {total:g} at {quota.request_link} (region {region}), or lower {fields}")
    return result


def doctor_check(d: Any) -> Any:
    """`bioinfra doctor`'s quota check (d: core.doctor.Doctor, after its credentials check set d.session):
    the same reading as the preflight; a shortfall is a warning here (the cluster may exist and run)."""
    from bioinfra.targets.aws import pool_needs
    from bioinfra.targets.base import passed, warning

    found = check_quotas(d.session, pool_needs(d.config))
    if found.problems:
        return warning("; ".join(found.problems), "request the quota at the link, or lower node_pools.<pool>.max; "
                       "`bioinfra up aws` refuses until it fits")
    if found.notes:
        return warning("; ".join(found.notes))
    return passed("EC2 vCPU quotas fit every node pool at its max")
