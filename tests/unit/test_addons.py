"""The addons stack without a cluster: what each target installs (template variables), the onprem
renderings (golden files; aws and gcp are golden-tested with their other stacks in test_aws.py and
test_gcp.py), and the config checks of onprem storage and the addons section."""

from __future__ import annotations

import json
import re

import pytest

from bioinfra.config import parse_config
from bioinfra.core.provision import render_environment
from bioinfra.errors import ConfigError
from bioinfra.targets import addons
from bioinfra.targets.addons import CHARTS, addons_values, addons_variables
from bioinfra.targets.aws import STACKS as AWS_STACKS
from bioinfra.targets.gcp import STACKS as GCP_STACKS
from tests.conftest import assert_golden

AWS = {"name": "demo", "target": "aws", "region": "eu-west-2"}
GCP = {"name": "demo", "target": "gcp", "project": "my-project-123", "region": "europe-west2"}
ONPREM = {"name": "demo", "target": "onprem"}
GPU = {"gpu": {"machine_type": "g5.xlarge", "max": 2, "gpu": {"count": 1}}}
GCP_GPU = {"gpu": {"machine_type": "n1-standard-8", "gpu": {"type": "nvidia-tesla-t4", "count": 1}}}
# As tests/integration/test_terraform_static.py and scripts/checkov.sh render them.
ONPREM_VARIANTS = {
    "nfs-server": ONPREM,
    "existing-class": {**ONPREM, "onprem": {"storage_class": "cephfs", "context": "lab"}},
    "nfs-subdir": {**ONPREM, "onprem": {"nfs_server": "10.0.0.5", "nfs_path": "/srv/bioinfra"},
                   "node_pools": {"gpu": {"machine_type": "gpu-node", "gpu": {"count": 1}}}},
}


def problems_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


# -- the stack in each cloud's walk ---------------------------------------------------------------


@pytest.mark.parametrize("stacks", [AWS_STACKS, GCP_STACKS], ids=["aws", "gcp"])
def test_addons_is_the_last_stack_and_reads_the_storage_outputs(stacks):
    assert stacks[-1].name == "addons" and stacks[-1].template == addons.TEMPLATE
    assert {"cluster", "storage"} <= set(stacks[-1].upstream)


def test_placeholders_cover_every_upstream_output_the_root_reads():
    from bioinfra.targets.aws import PLACEHOLDER_OUTPUTS as AWS_OUT
    from bioinfra.targets.gcp import PLACEHOLDER_OUTPUTS as GCP_OUT

    for outputs, data in ((AWS_OUT, {**AWS, "node_pools": GPU}),
                          (GCP_OUT, {**GCP, "gcp": {"zones": ["europe-west2-a"], "filestore": True}})):
        config = parse_config(data)
        target = "aws" if outputs is AWS_OUT else "gcp"
        from bioinfra.render import render_terraform

        text = render_terraform(addons.TEMPLATE, **addons_variables(config, target))
        for stack, key in set(re.findall(r"var\.(network|cluster|storage)\.(\w+)", text)):
            assert key in outputs[stack], f"{target}: {stack}.{key} has no placeholder"


# -- what each target installs --------------------------------------------------------------------


def test_aws_installs_efs_autoscaler_and_the_device_plugin_with_a_gpu_pool():
    v = addons_variables(parse_config({**AWS, "node_pools": GPU}), "aws")
    values = addons_values(parse_config({**AWS, "node_pools": GPU}), "aws")
    assert v["storage_mode"] == "efs" and values["storage_class"] == "bioinfra-rwx"
    assert set(v["charts"]) == {"argo_workflows", "efs_csi", "cluster_autoscaler", "nvidia_device_plugin"}
    assert values["gpu_device_plugin"] is True
    assert set(addons_variables(parse_config(AWS), "aws")["charts"]) == {"argo_workflows", "efs_csi",
                                                                         "cluster_autoscaler"}


def test_gcp_never_installs_the_device_plugin_and_picks_filestore_by_config():
    config = parse_config({**GCP, "node_pools": GCP_GPU, "gcp": {"zones": ["europe-west2-a"], "filestore": True}})
    full = addons_variables(config, "gcp")
    assert full["storage_mode"] == "filestore-pv" and addons_values(config, "gcp")["gpu_device_plugin"] is False
    assert set(full["charts"]) == {"argo_workflows"}
    assert addons_variables(parse_config(GCP), "gcp")["storage_mode"] == "filestore-csi"


def test_onprem_storage_choices():
    modes = {name: addons_variables(parse_config(data), "onprem") for name, data in ONPREM_VARIANTS.items()}
    vals = {name: addons_values(parse_config(data), "onprem") for name, data in ONPREM_VARIANTS.items()}
    assert {n: v["storage_mode"] for n, v in modes.items()} == {
        "nfs-server": "nfs-server", "existing-class": "existing-class", "nfs-subdir": "nfs-subdir"}
    assert vals["existing-class"]["storage_class"] == "cephfs" and "nfs_subdir" not in modes["existing-class"]["charts"]
    assert set(modes["nfs-server"]["charts"]) == {"argo_workflows", "nfs_server"}
    assert set(modes["nfs-subdir"]["charts"]) == {"argo_workflows", "nfs_subdir", "nvidia_device_plugin"}
    assert (vals["nfs-subdir"]["nfs_server"], vals["nfs-subdir"]["nfs_path"]) == ("10.0.0.5", "/srv/bioinfra")
    assert vals["existing-class"]["kube_context"] == "lab" and vals["nfs-server"]["kubeconfig"] == "~/.kube/config"


def test_only_aws_gcp_and_onprem_have_the_stack():
    with pytest.raises(ValueError, match="not 'local'"):
        addons_variables(parse_config({}), "local")
    with pytest.raises(ValueError, match="not 'local'"):
        addons_values(parse_config({}), "local")


def test_every_chart_is_pinned_to_an_exact_version():
    for key, chart in CHARTS.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"]), key
        assert chart["repository"].startswith("https://"), key


def test_the_names_the_workflows_use():
    assert (addons.WORKFLOW_NAMESPACE, addons.WORKFLOW_SERVICE_ACCOUNT, addons.WORKSPACE_PVC) == (
        "bioinfra", "bioinfra-workflow", "bioinfra-workspace")
    assert (addons.MINIO_NAME, addons.MINIO_PORT, addons.MINIO_SECRET_KEYS) == (
        "bioinfra-minio", 9000, ("root-user", "root-password"))
    from bioinfra.targets.gcp import WORKFLOW_KSA, WORKFLOW_NAMESPACE

    assert (WORKFLOW_NAMESPACE, WORKFLOW_KSA) == ("bioinfra", "bioinfra-workflow")


def test_workspace_size_and_argo_server_come_from_the_config():
    v = addons_values(parse_config({**AWS, "addons": {"workspace_size_gb": 500, "argo_server": False}}), "aws")
    assert (v["workspace_size_gb"], v["argo_server"]) == (500, False)
    assert parse_config({**AWS, "addons": None}).addons.workspace_size_gb == 100  # an empty section: defaults


# -- config checks --------------------------------------------------------------------------------


def test_nfs_server_and_path_go_together():
    assert problems_of({**ONPREM, "onprem": {"nfs_server": "10.0.0.5"}}) == [
        "onprem: nfs_server needs nfs_path, the exported directory (e.g. /srv/bioinfra)"]
    assert problems_of({**ONPREM, "onprem": {"nfs_path": "/srv/x"}}) == [
        "onprem: nfs_path needs nfs_server, the host that exports it"]
    assert problems_of({**ONPREM, "onprem": {"nfs_server": "h", "nfs_path": "srv"}}) == [
        "onprem.nfs_path: must be an absolute path (e.g. /srv/bioinfra) (got 'srv')"]
    problems = problems_of({**ONPREM, "onprem": {"storage_class": "x", "nfs_server": "h", "nfs_path": "/p"}})
    assert len(problems) == 1 and "not both" in problems[0]


def test_addons_settings_are_checked():
    problems = problems_of({**AWS, "addons": {"workspace_size_gb": 0, "argo_servr": True}})
    assert any(p.startswith("addons.workspace_size_gb") for p in problems)
    assert any("argo_servr" in p and "argo_server" in p for p in problems)


# -- renderings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(ONPREM_VARIANTS))
def test_onprem_rendering_matches_golden_file(tmp_path, variant):
    render_environment(parse_config(ONPREM_VARIANTS[variant]), tmp_path)
    assert_golden(f"terraform/onprem/{variant}/addons.tf", (tmp_path / "addons" / "main.tf").read_text())
    assert_golden(f"terraform/onprem/{variant}/addons.auto.tfvars.json",
                  (tmp_path / "addons" / "bioinfra.auto.tfvars.json").read_text())


def test_onprem_state_is_local_and_the_cluster_comes_from_the_kubeconfig(tmp_path):
    render_environment(parse_config({**ONPREM_VARIANTS["existing-class"],
                                     "state": {"backend": "s3", "bucket": "lab-tfstate", "lock_table": "lab-tflocks"}}),
                       tmp_path)
    text = (tmp_path / "addons" / "main.tf").read_text()
    assert 'backend "local"' in text and "s3" not in text and not (tmp_path / "addons" / "backend-config.json").exists()
    assert "config_context = var.kube_context" in text and "storage_class = var.storage_class" in text
    values = json.loads((tmp_path / "addons" / "bioinfra.auto.tfvars.json").read_text())
    assert (values["kube_context"], values["storage_class"]) == ("lab", "cephfs")


def test_no_empty_storage_class_and_the_static_volume_meets_the_claim_by_class():
    """The kubernetes provider sends storage_class_name = "" as absent (hashicorp/terraform-provider-kubernetes
    #1379): a claim would get the cluster's default class and never bind to a class-less volume. So no "" in
    any Terraform here, and on gcp with Filestore the static volume and the claim name one class (made for it,
    without a provisioner)."""
    from tests.conftest import REPO

    empty = re.compile(r'storage_class_name\s*=\s*""')
    for path in sorted((REPO / "terraform").rglob("*.tf*")):
        assert not empty.search(path.read_text()), f"{path}: storage_class_name = \"\" is sent as no class"
    main = (REPO / "terraform" / "addons" / "modules" / "addons" / "main.tf").read_text()
    static = re.search(r'resource "kubernetes_storage_class_v1" "static" \{(.*?)\n\}', main, re.S).group(1)
    assert "count = local.static_volume ? 1 : 0" in static and "name   = var.storage_class" in static
    assert 'storage_provisioner = "kubernetes.io/no-provisioner"' in static
    volume = re.search(r'resource "kubernetes_persistent_volume_v1" "filestore" \{(.*?)\n\}', main, re.S).group(1)
    assert re.search(r"storage_class_name\s+= kubernetes_storage_class_v1\.static\[0\]\.metadata\[0\]\.name", volume)
    claim = re.search(r'resource "kubernetes_persistent_volume_claim_v1" "workspace" \{(.*?)\n\}', main, re.S).group(1)
    assert re.search(r"storage_class_name = var\.storage_class\b", claim)
    with_filestore = parse_config({**GCP, "gcp": {"zones": ["europe-west2-a", "europe-west2-b"], "filestore": True}})
    assert addons_variables(with_filestore, "gcp")["storage_mode"] == "filestore-pv"
