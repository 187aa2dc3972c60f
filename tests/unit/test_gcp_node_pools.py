"""GKE node pools (issue #18 points 7 and 8), from the rendered cluster stack: each pool's boot disk
type follows its machine family (Hyperdisk-only families get hyperdisk-balanced), and the spot pools
but general carry the taint the pipelines' spot steps tolerate, so nothing else of ours lands there.

No Google API is called: the rendered Terraform (tfvars and HCL, parsed by python-hcl2) is checked,
and the taint is checked against the Workflows the engine renders for gcp."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hcl2
import pytest

from bioinfra.config import parse_config
from bioinfra.core.provision import render_environment
from bioinfra.pipelines import POOL_LABEL, SPOT_TAINT_EFFECT, SPOT_TAINT_KEY, SPOT_TAINT_VALUE
from bioinfra.targets.gcp import GKE_TAINT_EFFECTS, boot_disk_type, node_pool
from tests import render_engine
from tests.kube_rules import tolerates

BASE = {"name": "demo", "target": "gcp", "project": "my-project-123", "region": "europe-west2"}
# The taint of a spot pool in the GKE API's spelling (NodeTaint.effect is NO_SCHEDULE, ...).
# Ref https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/NodeConfig#nodetaint
SPOT_TAINT = {"key": "bioinfra.io/spot", "value": "true", "effect": "NO_SCHEDULE"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}


def render_cluster(tmp_path: Path, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cluster stack's node pools as Terraform gets them (bioinfra.auto.tfvars.json) and the
    node_config of its google_container_node_pool, parsed."""
    render_environment(parse_config(data), tmp_path)
    pools = json.loads((tmp_path / "cluster" / "bioinfra.auto.tfvars.json").read_text())["node_pools"]
    root = hcl2.loads((tmp_path / "cluster" / "main.tf").read_text(),
                      serialization_options=hcl2.SerializationOptions(with_comments=False))
    (resource,) = [r['"google_container_node_pool"']['"this"'] for r in root["resource"]
                   if '"google_container_node_pool"' in r]
    return pools, resource["node_config"][0] if isinstance(resource["node_config"], list) else resource["node_config"]


# -- point 7: the boot disk type by machine family -------------------------------------------------

# pool -> (machine type, boot disk type). n2/c2/e2/g2/n1: Persistent Disk; c4/n4/a4: Hyperdisk only.
DISK_CASES = {
    "n2-c2-g2": ({"general": {"machine_type": "n2-standard-4"},
                  "highcpu": {"machine_type": "c2-standard-16", "spot": True},
                  "gpu": {"machine_type": "g2-standard-8", "gpu": {"type": "nvidia-l4", "count": 1}}},
                 {"general": "pd-balanced", "highcpu": "pd-balanced", "gpu": "pd-balanced"}),
    "n4-c4-a4": ({"general": {"machine_type": "n4-standard-4"},
                  "highcpu": {"machine_type": "c4-standard-16", "spot": True},
                  "gpu": {"machine_type": "a4-highgpu-8g", "gpu": {"type": "nvidia-b200", "count": 8}}},
                 {"general": "hyperdisk-balanced", "highcpu": "hyperdisk-balanced", "gpu": "hyperdisk-balanced"}),
    "mixed": ({"general": {"machine_type": "e2-standard-4"},
               "highcpu": {"machine_type": "c4d-highcpu-16", "spot": True}},
              {"general": "pd-balanced", "highcpu": "hyperdisk-balanced"}),
}


@pytest.mark.parametrize("case", sorted(DISK_CASES))
def test_each_pool_boots_from_the_disk_type_its_machine_family_takes(tmp_path, case):
    """#18.7: a C4, N4 or A4 node pool with a pd-balanced boot disk is refused by Compute Engine;
    the type is each pool's value in the tfvars, and the HCL reads it from there (no literal)."""
    node_pools, expected = DISK_CASES[case]
    pools, node_config = render_cluster(tmp_path, {**BASE, "node_pools": node_pools})
    assert {name: pool["disk_type"] for name, pool in pools.items()} == expected
    assert node_config["disk_type"] == "${each.value.disk_type}"
    assert "pd-balanced" not in (tmp_path / "cluster" / "main.tf").read_text()


@pytest.mark.parametrize(("machine_type", "disk_type"), [
    # Persistent Disk (and, for some, Hyperdisk too): pd-balanced, as before.
    ("e2-standard-4", "pd-balanced"), ("n1-standard-8", "pd-balanced"), ("n2-highmem-8", "pd-balanced"),
    ("n2d-standard-8", "pd-balanced"), ("c2-standard-16", "pd-balanced"), ("c2d-highcpu-32", "pd-balanced"),
    ("c3-standard-8", "pd-balanced"), ("c3d-standard-8", "pd-balanced"), ("t2d-standard-4", "pd-balanced"),
    ("a2-highgpu-1g", "pd-balanced"), ("a3-highgpu-8g", "pd-balanced"), ("g2-standard-8", "pd-balanced"),
    ("m3-ultramem-32", "pd-balanced"), ("z3-highmem-88", "pd-balanced"), ("h3-standard-88", "pd-balanced"),
    # Hyperdisk only.
    ("c4-standard-16", "hyperdisk-balanced"), ("c4a-standard-8", "hyperdisk-balanced"),
    ("c4d-highcpu-16", "hyperdisk-balanced"), ("n4-standard-4", "hyperdisk-balanced"),
    ("n4d-standard-4", "hyperdisk-balanced"), ("n4a-standard-4", "hyperdisk-balanced"),
    ("a4-highgpu-8g", "hyperdisk-balanced"), ("a4x-highgpu-4g", "hyperdisk-balanced"),
    ("a3-ultragpu-8g", "hyperdisk-balanced"), ("x4-megamem-960-metal", "hyperdisk-balanced"),
    ("m4-megamem-56", "hyperdisk-balanced"), ("h4d-highmem-192", "hyperdisk-balanced"),
    ("g4-standard-48", "hyperdisk-balanced"),
])
def test_boot_disk_type_by_machine_family(machine_type, disk_type):
    assert boot_disk_type(machine_type) == disk_type


# -- point 8: spot pools are tainted, general never --------------------------------------------------


def test_spot_pools_carry_the_spot_taint_and_general_none(tmp_path):
    """#18.8: without the taint, Argo, MinIO, kube-dns and the workspace's pods could land on a spot
    node and go with it. The GPU pool keeps GKE's nvidia.com/gpu taint beside it."""
    pools, node_config = render_cluster(tmp_path, {**BASE, "node_pools": {
        "gpu": {"machine_type": "n1-standard-8", "max": 2, "spot": True, "gpu": {"type": "nvidia-tesla-t4", "count": 1}}}})
    assert pools["general"]["spot"] is False and pools["general"]["taints"] == []
    assert pools["highcpu"]["spot"] is True and pools["highcpu"]["taints"] == [SPOT_TAINT]
    assert pools["gpu"]["taints"] == [GPU_TAINT, SPOT_TAINT]
    # the HCL writes each pool's taints, whatever they are, from the tfvars
    (dynamic,) = [d['"taint"'] for d in node_config["dynamic"] if '"taint"' in d]
    assert dynamic["for_each"] == "${each.value.taints}"
    content = {k: v for k, v in dynamic["content"][0].items() if k != "__is_block__"}
    assert content == {"key": "${taint.value.key}", "value": "${taint.value.value}", "effect": "${taint.value.effect}"}


def test_on_demand_pools_are_untainted_and_general_stays_so_even_on_spot(tmp_path):
    """An on-demand highcpu pool needs no taint (its steps carry no toleration then). A spot general
    pool stays untainted: its steps, Argo and MinIO have nowhere else to go."""
    pools, _ = render_cluster(tmp_path, {**BASE, "node_pools": {
        "general": {"machine_type": "e2-standard-4", "spot": True},
        "highcpu": {"machine_type": "c2-standard-16", "spot": False}}})
    assert pools["general"]["taints"] == [] and pools["highcpu"]["taints"] == []


PARAMS = {
    "sample": "lambda",
    "r1": "inputs/ae63f46049d7afc0/lambda_R1.fastq.gz",
    "r2": "inputs/1917d8cac872af5f/lambda_R2.fastq.gz",
    "reference": "references/08fe207fcb4bbe47/reference.fa.gz",
}


def test_the_spot_steps_tolerate_the_taint_the_pools_carry():
    """The taint written on the pools (GKE spelling) is the one the rendered Workflow's highcpu steps
    tolerate (Kubernetes spelling); the general steps tolerate nothing, so they stay off spot nodes."""
    config = parse_config(BASE)
    (taint,) = node_pool("highcpu", config.node_pools.highcpu)["taints"]
    kube_taint = {"key": taint["key"], "value": taint["value"],
                  "effect": {v: k for k, v in GKE_TAINT_EFFECTS.items()}[taint["effect"]]}
    assert kube_taint == {"key": SPOT_TAINT_KEY, "value": SPOT_TAINT_VALUE, "effect": SPOT_TAINT_EFFECT}
    workflow = render_engine.workflow("fastqc-to-bwa", config, "gcp", PARAMS, values={"qc_gate": False})
    by_pool: dict[str, list[bool]] = {}
    for template in workflow["spec"]["templates"]:
        pool = (template.get("nodeSelector") or {}).get(POOL_LABEL)
        if pool:
            by_pool.setdefault(pool, []).append(any(tolerates(t, kube_taint) for t in template.get("tolerations", [])))
    assert by_pool["highcpu"] and all(by_pool["highcpu"])
    assert by_pool["general"] and not any(by_pool["general"])
