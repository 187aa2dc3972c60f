"""Target gcp without GCP: config checks, the rendered stacks (golden files), pools, and the hooks
around destroy. The provider schema, fmt and checkov checks of the same renderings are in
tests/unit/test_provider_schema.py and tests/integration/test_terraform_static.py."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bioinfra.config import parse_config
from bioinfra.core.provision import render_environment
from bioinfra.errors import ConfigError, TerraformFailedError
from bioinfra.targets.gcp import CLUSTER_ADDRESS, STACKS, GcpTarget, node_pool, required_apis, service_account_id
from tests.conftest import REPO, assert_stack_goldens

BASE = {"name": "demo", "target": "gcp", "project": "my-project-123", "region": "europe-west2"}
# The "full" rendering: a spot GPU pool, zones, Filestore and remote state in GCS.
FULL = {
    **BASE,
    "node_pools": {"gpu": {"machine_type": "n1-standard-8", "max": 2, "spot": True,
                           "gpu": {"type": "nvidia-tesla-t4", "count": 1}}},
    "gcp": {"zones": ["europe-west2-a", "europe-west2-b"], "filestore": True},
    "state": {"backend": "gcs", "bucket": "demo-tfstate"},
}
VARIANTS = {"full": FULL, "minimal": BASE}


def problems_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


# -- bad configs fail before anything is rendered, naming the field -------------------------------


def test_project_and_region_are_required_and_checked():
    assert any(p.startswith("project: required for target gcp") for p in problems_of({"target": "gcp"}))
    problems = problems_of({**BASE, "project": "X", "region": "europe_west2"})
    assert any("project: 'X' is not a valid GCP project id" in p for p in problems)
    assert any("region: 'europe_west2' is not a GCP region" in p for p in problems)


def test_machine_types_are_checked_for_gcp():
    problems = problems_of({**BASE, "node_pools": {"general": {"machine_type": "m6i.xlarge"}}})
    assert any("node_pools.general.machine_type: 'm6i.xlarge' is not a Compute Engine machine type" in p
               for p in problems)
    problems = problems_of({**BASE, "node_pools": {"gpu": {"machine_type": "e2-standard-8",
                                                           "gpu": {"type": "nvidia-tesla-t4"}}}})
    assert any("node_pools.gpu.machine_type: 'e2-standard-8' cannot take GPUs" in p for p in problems)
    problems = problems_of({**BASE, "node_pools": {"gpu": {"machine_type": "n1-standard-8", "gpu": {"count": 1}}}})
    assert any("node_pools.gpu.gpu.type: required on gcp" in p for p in problems)
    problems = problems_of({**BASE, "node_pools": {"highcpu": {"machine_type": "c2-standard-16",
                                                               "alternatives": ["c2d-standard-16"]}}})
    assert any("node_pools.highcpu.alternatives: AWS only" in p for p in problems)


def test_gcp_settings_are_checked():
    problems = problems_of({**BASE, "gcp": {"pods_cidr": "10.10.0.0/14"}})
    assert any("gcp.pods_cidr" in p and "did you mean 10.8.0.0/14" in p for p in problems)
    problems = problems_of({**BASE, "gcp": {"pods_cidr": "10.8.0.0/14"}})
    assert any("subnet_cidr 10.10.0.0/20 overlaps pods_cidr 10.8.0.0/14" in p for p in problems)
    problems = problems_of({**BASE, "gcp": {"zones": ["europe-west2"]}})
    assert any("gcp.zones" in p and "not a GCP zone" in p for p in problems)
    problems = problems_of({**BASE, "gcp": {"release_channel": "FAST"}})
    assert any(p.startswith("gcp.release_channel") for p in problems)


def test_filestore_in_one_zone_needs_a_zone_and_state_backend_must_match():
    problems = problems_of({**BASE, "gcp": {"filestore": True}})
    assert any(p.startswith("gcp.zones: a BASIC_HDD Filestore instance lives in one zone") for p in problems)
    parse_config({**BASE, "gcp": {"filestore": True, "filestore_tier": "REGIONAL"}})  # a region is enough
    problems = problems_of({**BASE, "state": {"backend": "s3", "bucket": "lab-tfstate", "lock_table": "lab-tflocks"}})
    assert any(p.startswith("state.backend: 's3' keeps state on aws; target gcp uses 'gcs'") for p in problems)


def test_bad_gcp_config_exits_3_and_renders_nothing(cli, tmp_path):
    (tmp_path / "bioinfra.yaml").write_text("target: gcp\nproject: my-project-123\nregion: europe-west2\n"
                                            "gcp:\n  master_cidr: 172.16.0.0/24\n")
    proc = cli("plan", "gcp")
    assert proc.returncode == 3, proc.stderr
    assert "gcp.master_cidr" in proc.stderr and "must be a /28" in proc.stderr
    assert not (tmp_path / ".bioinfra").exists()


def test_gcp_gets_gcp_pools_by_default():
    config = parse_config(BASE)
    assert config.node_pools.general.machine_type == "e2-standard-4"
    assert config.node_pools.highcpu.spot and config.node_pools.highcpu.min == 0


# -- rendering ------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_stacks_match_golden_files(tmp_path, variant):
    render_environment(parse_config(VARIANTS[variant]), tmp_path)
    assert_stack_goldens(tmp_path, f"terraform/gcp/{variant}", STACKS, remote_state=variant == "full")
    for module in ("network", "cluster", "storage"):
        for path in (REPO / "terraform" / "gcp" / "modules" / module).glob("*.tf"):
            assert (tmp_path / "modules" / module / path.name).read_text() == path.read_text()


def values(folder: Path, stack: str) -> dict:
    return json.loads((folder / stack / "bioinfra.auto.tfvars.json").read_text())


def test_full_rendering_has_spot_gpu_pool_filestore_and_gcs_state(tmp_path):
    render_environment(parse_config(FULL), tmp_path)
    cluster = (tmp_path / "cluster" / "main.tf").read_text()
    pools = cluster[cluster.index('resource "google_container_node_pool" "this"'):]
    assert "for_each = var.node_pools" in pools and 'dynamic "guest_accelerator"' in pools
    assert 'gpu_driver_version = "DEFAULT"' in pools and 'dynamic "taint"' in pools
    # the pools that existed as google_container_node_pool.<pool> before #15 are moved, not replaced
    for pool in ("general", "highcpu", "gpu"):
        assert f'from = google_container_node_pool.{pool}\n  to   = google_container_node_pool.this["{pool}"]' in cluster
    gpu = values(tmp_path, "cluster")["node_pools"]["gpu"]
    assert gpu["gpu"] == {"type": "nvidia-tesla-t4", "count": 1} and gpu["spot"] is True and gpu["min"] == 0
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"},
                             {"key": "bioinfra.io/spot", "value": "true", "effect": "NO_SCHEDULE"}]  # a spot GPU pool
    assert gpu["location_policy"] == "ANY"
    assert values(tmp_path, "storage")["filestore_location"] == "europe-west2-a"
    for stack in STACKS:
        text = (tmp_path / stack.name / "main.tf").read_text()
        assert 'backend "gcs" {}' in text and "demo-tfstate" not in text
        assert json.loads((tmp_path / stack.name / "backend-config.json").read_text()) == {
            "bucket": "demo-tfstate", "prefix": f"demo/gcp/{stack.name}"}
        assert f'"bioinfra-stack"   = "{stack.name}"' in text


def test_minimal_rendering_has_no_gpu_pool_no_filestore_and_local_state(tmp_path):
    render_environment(parse_config(BASE), tmp_path)
    cluster = (tmp_path / "cluster" / "main.tf").read_text()
    assert "google_container_node_pool.gpu" not in cluster
    assert set(values(tmp_path, "cluster")["node_pools"]) == {"general", "highcpu"}
    assert values(tmp_path, "cluster")["deletion_protection"] is True  # the config's default
    assert values(tmp_path, "storage")["filestore"] is False
    assert 'backend "local"' in (tmp_path / "network" / "main.tf").read_text()
    assert not list(tmp_path.glob("*/backend-config.json"))


def test_the_gpu_pool_takes_the_zones_the_preflight_found(tmp_path):
    """#18: without gcp.zones, the GPU pool's zones are those the preflight found offering the type
    (recorded per project, region and type); gcp.zones win; without a preflight (destroy), the cluster's."""
    config = parse_config({**FULL, "gcp": {"zones": []}})
    target = GcpTarget()
    cluster = next(s for s in STACKS if s.name == "cluster")
    assert target.stack_values(config, cluster)["node_pools"]["gpu"]["zones"] == []
    target._gpu_zones[("my-project-123", "europe-west2", "nvidia-tesla-t4")] = ["europe-west2-b", "europe-west2-c"]
    pools = target.stack_values(config, cluster)["node_pools"]
    assert pools["gpu"]["zones"] == ["europe-west2-b", "europe-west2-c"]
    assert pools["general"]["zones"] == pools["highcpu"]["zones"] == []
    assert target.stack_values(parse_config(FULL), cluster)["node_pools"]["gpu"]["zones"] == [
        "europe-west2-a", "europe-west2-b"]  # gcp.zones, each checked by the preflight to offer it


def _driver_labels(text: str) -> dict[str, str]:
    """The `labels` StorageClass parameter as the Filestore CSI driver reads it: "k1=v1,k2=v2", keys
    and values of lowercase letters, digits, _ and - (gcp-filestore-csi-driver pkg/util/util.go:
    ConvertLabelsStringToMap), or it refuses to create the volume."""
    labels = {}
    for pair in text.split(","):
        key, value = pair.split("=")
        assert re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", key.strip()) and re.fullmatch(r"[a-z0-9_-]{0,63}", value.strip())
        labels[key.strip()] = value.strip()
    return labels


def test_the_filestore_csi_class_labels_its_instances_with_the_cluster_the_sweep_looks_for(tmp_path):
    """#18: the instance the driver makes for the workspace (no gcp.filestore) carries bioinfra-cluster=<name>,
    the label the sweep finds; Retain stays (teardown switches the volume to Delete at `destroy` only)."""
    import hcl2

    from bioinfra.adaptors.gcp_sweep import LABEL

    config = parse_config({**BASE, "name": "lab-7"})
    render_environment(config, tmp_path)
    root = (tmp_path / "addons" / "main.tf").read_text()
    assert 'storage_mode  = "filestore-csi"' in root and re.search(r"\n  name\s+= var\.name\n", root)
    module = hcl2.loads((tmp_path / "modules" / "addons" / "main.tf").read_text(),
                        serialization_options=hcl2.SerializationOptions(with_comments=False))
    (klass,) = [r['"kubernetes_storage_class_v1"']['"filestore"'] for r in module["resource"]
                if '"filestore"' in r.get('"kubernetes_storage_class_v1"', {})]
    assert klass["storage_provisioner"] == '"filestore.csi.storage.gke.io"'
    assert klass["reclaim_policy"] == '"Retain"'
    text = klass["parameters"]["labels"].strip('"').replace("${var.name}", values(tmp_path, "addons")["name"])
    assert _driver_labels(text) == {LABEL: "lab-7", "managed-by": "bioinfra"}


def test_node_pools_scale_to_zero_and_spot_uses_any_zone():
    config = parse_config(FULL)
    general = node_pool("general", config.node_pools.general)
    assert (general["min"], general["initial_node_count"], general["location_policy"]) == (1, 1, "BALANCED")
    highcpu = node_pool("highcpu", config.node_pools.highcpu)
    assert (highcpu["min"], highcpu["initial_node_count"], highcpu["spot"]) == (0, 0, True)
    assert highcpu["taints"] == [{"key": "bioinfra.io/spot", "value": "true", "effect": "NO_SCHEDULE"}]
    assert highcpu["gpu"] is None and general["taints"] == []
    gpu = node_pool("gpu", config.node_pools.gpu)
    assert gpu["gpu"] == {"type": "nvidia-tesla-t4", "count": 1}
    assert gpu["labels"] == {"bioinfra.io/pool": "gpu", "bioinfra.io/capacity": "spot"}


def test_service_account_ids_fit_google_rules():
    rule = re.compile(r"^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$")
    assert service_account_id("demo", "nodes") == "demo-nodes"
    long_a = service_account_id("a" * 40, "workflow")
    long_b = service_account_id("a" * 39 + "b", "workflow")
    for account in ("demo-nodes", long_a, long_b, service_account_id("x", "nodes"),
                    service_account_id("lab-with-a-very-long-name-1", "nodes")):
        assert rule.fullmatch(account), account
    assert long_a != long_b  # shortened names stay distinct


def test_required_apis_include_filestore_in_both_workspace_modes():
    """gcp.filestore: our instance (a static volume); without: the Filestore CSI driver makes one per claim.
    Either way the project needs file.googleapis.com."""
    assert "file.googleapis.com" in required_apis(parse_config(BASE))
    assert "file.googleapis.com" in required_apis(parse_config(FULL))
    assert "container.googleapis.com" in required_apis(parse_config(BASE))


# -- destroy hooks, with a recording stand-in for Terraform (the google provider cannot run here) ----


@dataclass
class _Result:
    returncode: int = 0
    errors: list = field(default_factory=list)
    log: str = "log"


@dataclass
class RecordingTerraform:
    """Stand-in for bioinfra.adaptors.terraform.Terraform: records calls. Real Terraform cannot
    apply a google stack here (no google provider on disk, no GCP)."""

    state: list[str]
    workdir: Path = Path("/nonexistent")
    calls: list = field(default_factory=list)
    returncode: int = 0

    def state_list(self) -> list[str]:
        return list(self.state)

    def stream(self, args, say=None, on_event=None):
        self.calls.append(("stream", args))
        return _Result(self.returncode, ["Error: boom"] if self.returncode else [])

    def state_rm(self, addresses):
        self.calls.append(("state_rm", addresses))


def test_destroy_turns_deletion_protection_off_in_the_state_first():
    config = parse_config(BASE)
    cluster = next(s for s in STACKS if s.name == "cluster")
    tf = RecordingTerraform([CLUSTER_ADDRESS, "google_container_node_pool.general"])
    said = []
    GcpTarget().before_destroy(config, cluster, tf, None, force_empty_buckets=False, say=said.append)
    assert tf.calls == [("stream", ["apply", "-auto-approve", "-var=deletion_protection=false",
                                    f"-target={CLUSTER_ADDRESS}"])]
    assert "deletion_protection off" in said[0]
    assert GcpTarget().destroy_plan_args(config, cluster) == ["-var=deletion_protection=false"]
    # nothing in the state (an interrupted up before the cluster): nothing to turn off
    empty = RecordingTerraform([])
    GcpTarget().before_destroy(config, cluster, empty, None, force_empty_buckets=False, say=said.append)
    assert empty.calls == []


def test_a_failed_deletion_protection_apply_stops_destroy_with_the_log():
    config = parse_config(BASE)
    cluster = next(s for s in STACKS if s.name == "cluster")
    tf = RecordingTerraform([CLUSTER_ADDRESS], returncode=1)
    with pytest.raises(TerraformFailedError) as info:
        GcpTarget().before_destroy(config, cluster, tf, None, force_empty_buckets=False, say=lambda m: None)
    assert "deletion_protection" in info.value.message and info.value.hint == "full log: log"


@pytest.mark.parametrize("tier,size,problem", [
    ("BASIC_SSD", 1024, "BASIC_SSD takes 2560 to 65433 GiB (63.9 TiB)"),
    ("BASIC_HDD", 70000, "BASIC_HDD takes 1024 to 65433 GiB (63.9 TiB)"),
    ("ZONAL", 1100, "ZONAL below 10 TiB takes 1024 to 9984 GiB in steps of 256 (e.g. 1024)"),
    ("REGIONAL", 12000, "REGIONAL from 10 TiB takes steps of 2560 GiB (e.g. 10240)"),
])
def test_filestore_size_must_fit_its_tier(tier, size, problem):
    """What the Filestore API accepts per tier (https://cloud.google.com/filestore/docs/service-tiers):
    refused in the config, not after minutes of `up`."""
    [found] = problems_of({**BASE, "gcp": {"filestore_tier": tier, "filestore_capacity_gb": size}})
    assert found == f"gcp: filestore_capacity_gb {size}: {problem}"


@pytest.mark.parametrize("tier,size", [("BASIC_HDD", 1024), ("BASIC_SSD", 2560), ("ZONAL", 9984), ("REGIONAL", 12800)])
def test_filestore_sizes_each_tier_takes(tier, size):
    config = parse_config({**BASE, "gcp": {"filestore_tier": tier, "filestore_capacity_gb": size}})
    assert config.gcp.filestore_capacity_gb == size
