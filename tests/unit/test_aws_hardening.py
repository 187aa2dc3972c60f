"""Issue #18 points 8 and 11 on AWS, on the rendered stacks (no AWS): spot pools tainted the way the
Workflows tolerate, node groups that follow the control plane's version under a STANDARD upgrade
policy, IAM role names with the region in them, the GPU type label, and results archived to Glacier
Instant Retrieval. Against moto with the real provider: tests/integration/test_aws_hardening.py (a
plan with the upgrade policy, the sweep's region tag) and test_aws_stacks.py (the full cycle)."""

from __future__ import annotations

import json
from pathlib import Path

import hcl2
import pytest
import yaml

from bioinfra.config import AWS_GPU_COUNTS, AWS_REGIONS, parse_config
from bioinfra.core.provision import render_environment
from bioinfra.errors import ConfigError
from bioinfra.pipelines import SPOT_TAINT_EFFECT, SPOT_TAINT_KEY, SPOT_TAINT_VALUE
from bioinfra.targets.aws import IAM_ROLES, gpu_type, iam_role_name, node_group
from tests.kube_rules import tolerates

BASE = {"name": "demo", "target": "aws", "region": "eu-west-2"}
GPU = {"gpu": {"machine_type": "g5.xlarge", "max": 2, "gpu": {"count": 1}}}
GOLDEN_WORKFLOW = Path(__file__).resolve().parents[1] / "golden" / "workflows" / "fastqc-to-bwa.aws-staged.yaml"
TAINT_TAG = "k8s.io/cluster-autoscaler/node-template/taint/"
LABEL_TAG = "k8s.io/cluster-autoscaler/node-template/label/"
# The EKS API's spelling of a taint effect (NodegroupTaint.effect: NO_SCHEDULE, NO_EXECUTE,
# PREFER_NO_SCHEDULE). Ref https://docs.aws.amazon.com/eks/latest/APIReference/API_Taint.html
EKS_EFFECT = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


def _plain(node):
    """python-hcl2's parse without its quoting and bookkeeping: keys and strings as Terraform means them."""
    if isinstance(node, dict):
        return {_plain(k): _plain(v) for k, v in node.items() if k not in ("__is_block__", "__comments__")}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, str) and len(node) >= 2 and node[0] == node[-1] == '"':
        return node[1:-1]
    return node


def _hcl(path: Path) -> dict:
    return _plain(hcl2.loads(path.read_text()))


def _tfvars(folder: Path, stack: str) -> dict:
    return json.loads((folder / stack / "bioinfra.auto.tfvars.json").read_text())


def _tolerations(node) -> list[list[dict]]:
    """Every `tolerations` list in a parsed Workflow."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "tolerations":
                found.append(value)
            else:
                found += _tolerations(value)
    elif isinstance(node, list):
        for item in node:
            found += _tolerations(item)
    return found


# -- point 8: spot pools carry the taint the Workflows tolerate --------------------------------------


def test_spot_pools_carry_the_taint_the_workflows_tolerate(tmp_path):
    """Issue #18.8: no pool was tainted, so Argo, MinIO, CoreDNS and the autoscaler landed on spot nodes
    and went with them. The highcpu (spot) pool now carries bioinfra.io/spot, in the EKS API's spelling,
    and the autoscaler's taint tag says the same (the format `<value>:<effect>` of
    https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/cloudprovider/aws/README.md#auto-discovery-setup)."""
    render_environment(parse_config({**BASE, "node_pools": GPU}), tmp_path)
    groups = _tfvars(tmp_path, "cluster")["node_groups"]
    highcpu = groups["highcpu"]
    assert highcpu["capacity_type"] == "SPOT"
    taint = {"key": SPOT_TAINT_KEY, "value": SPOT_TAINT_VALUE, "effect": EKS_EFFECT[SPOT_TAINT_EFFECT]}
    assert highcpu["taints"] == [taint]
    assert highcpu["autoscaler_tags"][TAINT_TAG + SPOT_TAINT_KEY] == f"{SPOT_TAINT_VALUE}:{SPOT_TAINT_EFFECT}"
    # the taint as Kubernetes puts it on the node is one the highcpu steps of a rendered Workflow tolerate
    workflow = yaml.safe_load(GOLDEN_WORKFLOW.read_text())
    node_taint = {"key": SPOT_TAINT_KEY, "value": SPOT_TAINT_VALUE, "effect": SPOT_TAINT_EFFECT}
    lists = _tolerations(workflow)
    assert lists and all(any(tolerates(t, node_taint) for t in tolerations) for tolerations in lists)
    # the GPU pool (on demand here) keeps only its own taint
    assert [t["key"] for t in groups["gpu"]["taints"]] == ["nvidia.com/gpu"]


@pytest.mark.parametrize("general_spot", [False, True])
def test_the_general_pool_is_never_tainted(general_spot):
    """System pods (Argo, MinIO, CoreDNS, the autoscaler) tolerate no taint of ours and go to the general
    pool: it stays untainted even when it is spot (docs/targets/aws.md says what that costs)."""
    config = parse_config({**BASE, "node_pools": {"general": {"machine_type": "m6i.large", "spot": general_spot}}})
    general = node_group("demo", "general", config.node_pools.general)
    assert general["taints"] == []
    assert not [key for key in general["autoscaler_tags"] if key.startswith(TAINT_TAG)]


def test_a_spot_gpu_pool_carries_both_taints():
    config = parse_config({**BASE, "node_pools": {"gpu": {**GPU["gpu"], "spot": True}}})
    gpu = node_group("demo", "gpu", config.node_pools.gpu)
    assert {t["key"] for t in gpu["taints"]} == {"nvidia.com/gpu", SPOT_TAINT_KEY}
    assert {key for key in gpu["autoscaler_tags"] if key.startswith(TAINT_TAG)} == \
        {TAINT_TAG + "nvidia.com/gpu", TAINT_TAG + SPOT_TAINT_KEY}


# -- point 11: node groups follow the control plane; STANDARD support ---------------------------------


def test_node_groups_follow_the_control_plane_under_a_standard_upgrade_policy(tmp_path):
    """Issue #18.11: node groups had no version, so they stayed at the one they were made with while
    the control plane moved on; and without an upgrade policy EKS keeps an old version in extended
    support at six times the price. Parsed from the rendered HCL (python-hcl2)."""
    render_environment(parse_config(BASE), tmp_path)
    stack = _hcl(tmp_path / "cluster" / "main.tf")
    group = next(r["aws_eks_node_group"]["this"] for r in stack["resource"] if "aws_eks_node_group" in r)
    assert group["version"] == "${module.cluster.cluster_version}"
    # STANDARD on real AWS; none against an emulator (moto drops it; the plan against moto with it is
    # tests/integration/test_aws_hardening.py)
    [module_call] = [m["cluster"] for m in stack["module"]]
    assert module_call["upgrade_support_type"] == '${var.endpoint_url == null ? "STANDARD" : null}'
    module = _hcl(tmp_path / "modules" / "cluster" / "main.tf")
    cluster = next(r["aws_eks_cluster"]["this"] for r in module["resource"] if "aws_eks_cluster" in r)
    [policy] = [d["upgrade_policy"] for d in cluster["dynamic"] if "upgrade_policy" in d]
    assert policy["for_each"] == "${var.upgrade_support_type == null ? [] : [var.upgrade_support_type]}"
    assert policy["content"] == [{"support_type": "${upgrade_policy.value}"}]
    variables = _hcl(tmp_path / "modules" / "cluster" / "variables.tf")
    assert next(v["upgrade_support_type"] for v in variables["variable"] if "upgrade_support_type" in v)[
        "default"] == "STANDARD"
    outputs = _hcl(tmp_path / "modules" / "cluster" / "outputs.tf")
    version = next(o["cluster_version"] for o in outputs["output"] if "cluster_version" in o)
    assert version["value"] == "${aws_eks_cluster.this.version}"


def test_network_policies_are_enforced_by_the_vpc_cni_add_on(tmp_path):
    """Issue #18.11: the addons stack's NetworkPolicy (only workflow pods reach the workspace's S3
    server) is enforced on EKS only by the VPC CNI's network-policy agent, which the self-managed CNI a
    new cluster starts with leaves off. Ref
    https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html"""
    render_environment(parse_config(BASE), tmp_path)
    stack = _hcl(tmp_path / "cluster" / "main.tf")
    [module_call] = [m["cluster"] for m in stack["module"]]
    # on real AWS; moto has no add-on API (CreateAddon is not routed in moto/eks/urls.py)
    assert module_call["network_policy_agent"] == "${var.endpoint_url == null}"
    module = _hcl(tmp_path / "modules" / "cluster" / "main.tf")
    addon = next(r["aws_eks_addon"]["vpc_cni"] for r in module["resource"] if "aws_eks_addon" in r)
    assert addon["addon_name"] == "vpc-cni"
    assert addon["count"] == "${var.network_policy_agent ? 1 : 0}"
    assert addon["configuration_values"] == '${jsonencode({enableNetworkPolicy = "true"})}'
    variables = _hcl(tmp_path / "modules" / "cluster" / "variables.tf")
    assert next(v["network_policy_agent"] for v in variables["variable"] if "network_policy_agent" in v)[
        "default"] is True


# -- point 11: IAM role names carry the region ----------------------------------------------------------


def _role_names(folder: Path) -> dict[str, str]:
    names: dict[str, str] = {}
    for stack in ("network", "cluster", "storage"):
        names.update(_tfvars(folder, stack)["iam_role_names"])
    return names


def test_iam_role_names_carry_the_region(tmp_path):
    """IAM is global: `demo` in eu-west-2 and `demo` in us-east-1 of one account asked for the same six
    role names, and the second `up` failed with EntityAlreadyExists (issue #18.11)."""
    render_environment(parse_config(BASE), tmp_path / "a")
    render_environment(parse_config({**BASE, "region": "us-east-1"}), tmp_path / "b")
    london, virginia = _role_names(tmp_path / "a"), _role_names(tmp_path / "b")
    assert set(london) == set(virginia) == set(IAM_ROLES)
    assert london["cluster"] == "demo-eu-west-2-cluster" and london["flow_logs"] == "demo-eu-west-2-vpc-flow-logs"
    assert not set(london.values()) & set(virginia.values())
    # every role the modules create takes its name from those variables, none is made up in HCL
    for module in ("network", "cluster", "storage"):
        for path in (tmp_path / "a" / "modules" / module).glob("*.tf"):
            for resource in _hcl(path).get("resource", []):
                for role in resource.get("aws_iam_role", {}).values():
                    assert role["name"].startswith(("${var.role_names.", "${var.flow_logs_role_name}")), role["name"]
                    # a role made before (region-less name) is kept, not replaced with the cluster
                    assert role["lifecycle"][0]["ignore_changes"] == ["name"], role["name"]


def test_iam_role_names_fit_iams_limit_for_the_longest_name_and_region():
    """CreateRole: RoleName is at most 64 characters (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
    The longest cluster name the config takes (40) with the longest region makes the full form too long;
    the region then becomes 8 hex digits of its SHA-256, still one name per region, still `<name>-...`
    (the sweep and `aws iam list-roles` find them by that prefix)."""
    longest = "a" * 39 + "z"
    parse_config({**BASE, "name": longest})  # the config takes it
    with pytest.raises(ConfigError):
        parse_config({**BASE, "name": longest + "z"})
    regions = sorted(AWS_REGIONS, key=len)[-3:] + ["us-isob-east-1", "eusc-de-east-1"]
    for region in regions:
        names = {role: iam_role_name(longest, region, role) for role in IAM_ROLES}
        assert all(len(name) <= 64 and name.startswith(longest + "-") for name in names.values()), names
        assert len(set(names.values())) == len(IAM_ROLES)
    every = {iam_role_name(longest, region, "flow_logs") for region in AWS_REGIONS}
    assert len(every) == len(AWS_REGIONS)
    assert max(len(iam_role_name(longest, r, role)) for r in AWS_REGIONS for role in IAM_ROLES) <= 64
    # a short name keeps the readable form
    assert iam_role_name("demo", "ap-southeast-7", "autoscaler") == "demo-ap-southeast-7-autoscaler"


# -- point 11: the GPU type label -----------------------------------------------------------------------


@pytest.mark.parametrize(("itype", "label"), [
    ("g5.xlarge", "nvidia-a10g"), ("g4dn.xlarge", "nvidia-tesla-t4"), ("g6.xlarge", "nvidia-l4"),
    ("g6e.xlarge", "nvidia-l40s"), ("p3.2xlarge", "nvidia-tesla-v100"), ("p4d.24xlarge", "nvidia-tesla-a100"),
])
def test_gpu_node_groups_carry_the_accelerator_label(itype, label):
    """The autoscaler treats a node labelled k8s.amazonaws.com/accelerator as a GPU node that is not ready
    until the device plugin advertises its GPUs, instead of scaling up again meanwhile; the values are
    the autoscaler's own names (kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md
    "Special note on GPU instances", aws_cloud_provider.go GPULabel and availableGPUTypes)."""
    config = parse_config({**BASE, "node_pools": {"gpu": {"machine_type": itype, "max": 2, "gpu": {"count": 1}}}})
    gpu = node_group("demo", "gpu", config.node_pools.gpu)
    assert gpu["labels"]["k8s.amazonaws.com/accelerator"] == label
    assert gpu["autoscaler_tags"][LABEL_TAG + "k8s.amazonaws.com/accelerator"] == label
    general = node_group("demo", "general", config.node_pools.general)
    assert "k8s.amazonaws.com/accelerator" not in general["labels"]


def test_every_gpu_instance_type_has_a_gpu_type_and_mixed_types_get_none():
    assert {itype for itype in AWS_GPU_COUNTS if gpu_type([itype]) is None} == set()
    assert gpu_type(["g5.xlarge", "g5.2xlarge"]) == "nvidia-a10g"
    assert gpu_type(["g5.xlarge", "g6.xlarge"]) is None  # one label per node group: no wrong one
    config = parse_config({**BASE, "node_pools": {"gpu": {"machine_type": "g5.xlarge", "alternatives": ["g6.xlarge"],
                                                          "max": 2, "gpu": {"count": 1}}}})
    assert "k8s.amazonaws.com/accelerator" not in node_group("demo", "gpu", config.node_pools.gpu)["labels"]


# -- point 11: results archive readable without a restore -------------------------------------------------


def test_results_move_to_glacier_instant_retrieval(tmp_path):
    """GLACIER (Flexible Retrieval) objects cannot be read before a RestoreObject and hours of waiting;
    Glacier Instant Retrieval reads with a plain GET (issue #18.11).
    Ref https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-class-intro.html#sc-glacier"""
    render_environment(parse_config({**BASE, "aws": {"glacier_after_days": 120}}), tmp_path)
    assert _tfvars(tmp_path, "storage")["glacier_after_days"] == 120  # the config field is unchanged
    module = _hcl(tmp_path / "modules" / "storage" / "main.tf")
    lifecycle = next(r["aws_s3_bucket_lifecycle_configuration"]["results"] for r in module["resource"]
                     if "aws_s3_bucket_lifecycle_configuration" in r)
    transitions = [t for rule in lifecycle["rule"] for t in rule.get("transition", [])]
    assert transitions == [{"days": "${var.glacier_after_days}", "storage_class": "GLACIER_IR"}]
    from bioinfra.config import AwsSettings

    assert "Instant Retrieval" in AwsSettings.model_fields["glacier_after_days"].description

