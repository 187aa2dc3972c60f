"""The Compute Engine vCPU quotas a config's node pools need, read before `up gcp` makes anything
(issue #18.9; the GPU quotas are adaptors.gcp's _gpu_problems).

A new project has a low regional CPUS limit (and CPUS_ALL_REGIONS project-wide); C2, N2, N2D ... VMs
count against their own family's quota (C2_CPUS ...); Spot VMs against PREEMPTIBLE_CPUS when the project
has some, else against the standard quotas. A pool too big for them is made by GKE all the same, and
its nodes never come. Each pool's largest need (node_pools.<pool>.max nodes × the machine type's
vCPUs, machineTypes.get guestCpus) is summed per quota and compared with what is free (limit − usage).
Ref https://cloud.google.com/compute/resource-usage (CPU quota, Preemptible quotas) and the quotas[] of
https://cloud.google.com/compute/docs/reference/rest/v1/regions/get and
https://cloud.google.com/compute/docs/reference/rest/v1/projects/get (metric, limit, usage).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

ALL_REGIONS = "CPUS_ALL_REGIONS"
PREEMPTIBLE = "PREEMPTIBLE_CPUS"
# The series that count against the general CPUS quota (every other series has its own, e.g. C2_CPUS,
# when the region lists it).
GENERAL_SERIES = ("e2", "n1", "f1", "g1")
# custom-4-8192 (N1), n2-custom-8-16384, e2-custom-4-8192-ext. Ref https://cloud.google.com/compute/docs/instances/creating-instance-with-custom-machine-type
_CUSTOM = re.compile(r"^(?:(?P<series>[a-z0-9]+)-)?custom-(?P<cpus>\d+)-\d+(?:-ext)?$")


@dataclass(frozen=True)
class PoolNeed:
    """What one node pool may use at most."""

    pool: str  # general, highcpu, gpu
    machine_type: str
    max_nodes: int
    spot: bool


def series(machine_type: str) -> str:
    match = _CUSTOM.match(machine_type)
    if match:
        return match["series"] or "n1"
    return machine_type.split("-", 1)[0]


def regional_metric(machine_type: str, spot: bool, quotas: dict[str, tuple[float, float]]) -> str:
    """The regional quota a VM of this type counts against."""
    if spot and quotas.get(PREEMPTIBLE, (0.0, 0.0))[0] > 0:
        return PREEMPTIBLE
    own = f"{series(machine_type).upper()}_CPUS"
    return own if series(machine_type) not in GENERAL_SERIES and own in quotas else "CPUS"


def request_link(project: str) -> str:
    return f"https://console.cloud.google.com/iam-admin/quotas?project={project}"


def machine_cpus(session: Any, machine_type: str, zone: str) -> Optional[int]:
    """The machine type's vCPUs (its name for a custom type, else machineTypes.get guestCpus), or None
    when the zone has no such type. Ref https://cloud.google.com/compute/docs/reference/rest/v1/machineTypes/get"""
    from google.api_core import exceptions as gexc

    from bioinfra.adaptors.gcp import google_errors

    match = _CUSTOM.match(machine_type)
    if match:
        return int(match["cpus"])
    with google_errors(session, f"reading machine type {machine_type} in {zone}"):
        try:
            found = session.compute("MachineTypes").get(project=session.project, zone=zone, machine_type=machine_type)
        except gexc.NotFound:
            return None
    return int(found.guest_cpus)


def cpu_quota_problems(session: Any, region_info: Any, pools: list[PoolNeed], zone: str) -> list[str]:
    """Every vCPU quota the pools together would exceed at their largest, one line each: the metric,
    its limit, usage and what is free, the pools and their config fields, the request link."""
    from bioinfra.adaptors.gcp import google_errors

    project, region = session.project, session.region
    regional = {q.metric: (float(q.limit), float(q.usage)) for q in region_info.quotas}
    needs: dict[str, list[tuple[PoolNeed, int]]] = {}
    problems: list[str] = []
    cpus_of: dict[str, Optional[int]] = {}
    for pool in pools:
        metric = regional_metric(pool.machine_type, pool.spot, regional)
        if metric not in regional:
            continue  # the region does not list it: nothing to check against
        if pool.machine_type not in cpus_of:
            cpus_of[pool.machine_type] = machine_cpus(session, pool.machine_type, zone)
        per_node = cpus_of[pool.machine_type]
        if per_node is None:
            problems.append(f"node_pools.{pool.pool}.machine_type: {pool.machine_type} is not offered in zone {zone} — "
                            f"`gcloud compute machine-types list --zones {zone} --project {project}`")
            continue
        needs.setdefault(metric, []).append((pool, per_node))
        if metric != PREEMPTIBLE:  # Spot VMs on the preemptible quota do not count project-wide
            needs.setdefault(ALL_REGIONS, []).append((pool, per_node))
    if not needs:
        return problems
    project_wide: dict[str, tuple[float, float]] = {}
    if ALL_REGIONS in needs:
        with google_errors(session, f"reading the project-wide quotas of {project}"):
            info = session.compute("Projects").get(project=project)
        project_wide = {q.metric: (float(q.limit), float(q.usage)) for q in info.quotas}
    for metric, users in sorted(needs.items()):
        quotas, where = (project_wide, f"project {project}") if metric == ALL_REGIONS else (regional, region)
        if metric not in quotas:
            continue
        limit, usage = quotas[metric]
        total = sum(pool.max_nodes * per_node for pool, per_node in users)
        if total <= limit - usage:
            continue
        parts = " + ".join(f"node_pools.{pool.pool}.max {pool.max_nodes} × {per_node} vCPUs ({pool.machine_type})"
                           for pool, per_node in users)
        fields = " or ".join(f"node_pools.{pool.pool}.max" for pool, _ in users)
        scope = f"metric {metric}" + ("" if metric == ALL_REGIONS else f", region {region}")
        problems.append(
            f"Compute Engine quota {metric} in {where} is {limit:g} with {usage:g} in use ({limit - usage:g} free), but "
            f"{parts} = {total} vCPUs — request more at {request_link(project)} ({scope}), or lower {fields}")
    return problems


def pool_quota_problems(config: Any, session: Any, region: Any) -> list[str]:
    """cpu_quota_problems for the config's node pools; machine types are read in the first node zone
    (gcp.zones, else the region's first)."""
    from bioinfra.targets.gcp import pools

    zones = list(config.gcp.zones) or [z.rsplit("/", 1)[-1] for z in region.zones]
    if not zones:
        return []
    needs = [PoolNeed(name, pool.machine_type, pool.max, pool.spot) for name, pool in pools(config)]
    return cpu_quota_problems(session, region, needs, zones[0])


def doctor_check(d: Any) -> Any:
    """`bioinfra doctor`'s quota check (d: core.doctor.Doctor, after its credentials check set d.session):
    the same reading as the preflight, a warning here: on a running cluster `usage` already holds its own
    nodes, so a pool near its max reads short."""
    from bioinfra.adaptors.gcp import google_errors
    from bioinfra.targets.base import passed, warning

    session = d.session
    with google_errors(session, f"reading region {session.region} of project {session.project}"):
        region = session.regions().get(project=session.project, region=session.region)
    problems = pool_quota_problems(d.config, session, region)
    if problems:
        return warning("; ".join(problems), "request the quota at the link, or lower node_pools.<pool>.max "
                       "(usage includes this cluster's running nodes)")
    return passed("Compute Engine vCPU quotas fit every node pool at its max")
