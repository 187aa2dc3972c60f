"""Target gcp: regional GKE Standard with general, spot and GPU pools; GCS, Filestore, Artifact Registry.

What the GCP stacks need from the config is computed here (template variables, per-pool settings,
service-account ids); walking the stacks is bioinfra.core.provision's job, the same for every cloud
target. The google provider cannot run on the development machine: these stacks are checked
statically (golden files, fmt, the provider schema, checkov) and the Python around them runs
against local stand-ins of the Google APIs (docs/targets/gcp.md).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Optional

from bioinfra.errors import TerraformFailedError
from bioinfra.targets import addons
from bioinfra.targets.addons import TEMPLATE as ADDONS_TEMPLATE
from bioinfra.targets.addons import addons_values, addons_variables
from bioinfra.targets.base import ADOPT_TF_FILE, RegistryPathTarget, Stack
from bioinfra.targets.gcp_cluster import GcpCluster

if TYPE_CHECKING:
    from bioinfra.config import Config, NodePool

STACKS: tuple[Stack, ...] = (
    Stack("network", "gcp/stacks/network.tf.j2", upstream=()),
    Stack("cluster", "gcp/stacks/cluster.tf.j2", upstream=("network",)),
    Stack("storage", "gcp/stacks/storage.tf.j2", upstream=("network", "cluster")),
    # Inside the cluster (targets/addons.py): applied last, destroyed first.
    Stack("addons", ADDONS_TEMPLATE, upstream=("network", "cluster", "storage")),
)

PLACEHOLDER_OUTPUTS: dict[str, dict[str, Any]] = {
    "network": {
        "network": "projects/placeholder/global/networks/placeholder",
        "network_name": "placeholder",
        "subnetwork": "projects/placeholder/regions/placeholder/subnetworks/placeholder",
        "pods_range_name": "pods",
        "services_range_name": "services",
        "node_tag": "placeholder-node",
    },
    "cluster": {
        "node_service_account": "placeholder@placeholder.iam.gserviceaccount.com",
        "workload_pool": "placeholder.svc.id.goog",
        "cluster_endpoint": "192.0.2.1",
        "cluster_ca": "",
    },
    "storage": {
        "workflow_service_account": "placeholder@placeholder.iam.gserviceaccount.com",
        "filestore_ip": "",
        "filestore_share": "",
    },
}

CLUSTER_ADDRESS = "module.cluster.google_container_cluster.this"
BUCKET_ADDRESS = "module.storage.google_storage_bucket.results"

# The Kubernetes service account the pipelines' pods run as (created by the addons stack, #6).
WORKFLOW_NAMESPACE = addons.WORKFLOW_NAMESPACE
WORKFLOW_KSA = addons.WORKFLOW_SERVICE_ACCOUNT


def required_apis(config: Config) -> list[str]:
    """The services `up gcp` calls (Terraform and bioinfra); preflight checks each is enabled. The same
    for every config: both workspace modes make Filestore instances (see bioinfra.adaptors.gcp)."""
    from bioinfra.adaptors.gcp import required_apis as apis

    return apis()


def service_account_id(cluster: str, suffix: str) -> str:
    """A service account id (6-30 of a-z, 0-9, '-'): "<cluster>-<suffix>", shortened with a hash of
    the cluster name when too long so two long names never share one account."""
    account = f"{cluster}-{suffix}"
    if len(account) <= 30:
        return account
    digest = hashlib.sha256(cluster.encode()).hexdigest()[:4]
    keep = 30 - len(suffix) - len(digest) - 2
    return f"{cluster[:keep].rstrip('-')}-{digest}-{suffix}"


# The GKE Filestore CSI driver: it makes the workspace's Filestore instance when there is none of ours
# (not gcp.filestore), and only it deletes that instance, while the cluster runs.
FILESTORE_CSI = "filestore.csi.storage.gke.io"
FILESTORE_BACKING = "Filestore instance"


class GcpTarget(GcpCluster, RegistryPathTarget):
    name = "gcp"
    runs_locally = False
    stacks = STACKS
    placeholder_outputs = PLACEHOLDER_OUTPUTS
    label = "bioinfra-cluster"

    def __init__(self) -> None:
        # What the preflight found out about the project, for the stacks it renders next: the zones
        # that offer the GPU pool's accelerator, by (project, region, accelerator type).
        self._gpu_zones: dict[tuple[str, str, str], list[str]] = {}

    def results_bucket(self, config: Config, session: Any = None) -> str:
        """The results bucket's name (config.results_bucket with the project id, which the config holds)."""
        return config.results_bucket(str(config.project))

    def registry(self, config: Config) -> str:
        # Ref https://cloud.google.com/artifact-registry/docs/docker/names
        return config.registry.url or f"{config.region}-docker.pkg.dev/{config.project}/{config.name}"

    # -- what the templates read ----------------------------------------------------------------

    def stack_variables(self, config: Config, stack: Stack) -> dict[str, Any]:
        """What the stack template reads: structure only (which backend, which pools), never a config value."""
        if stack.name == "addons":
            return addons_variables(config, self.name)
        return {"stack": stack.name, "state_backend": config.state.backend,
                "pool_names": [name for name, _ in pools(config)]}

    def stack_values(self, config: Config, stack: Stack) -> dict[str, Any]:
        """The stack's variables (bioinfra.auto.tfvars.json): every value that comes from the config."""
        if stack.name == "addons":
            return addons_values(config, self.name)
        gcp = config.gcp
        values: dict[str, Any] = {"name": config.name, "project": config.project, "region": config.region}
        if stack.name == "network":
            values.update(subnet_cidr=gcp.subnet_cidr, pods_cidr=gcp.pods_cidr, services_cidr=gcp.services_cidr,
                          master_cidr=gcp.master_cidr)
        elif stack.name == "cluster":
            values.update(
                deletion_protection=gcp.deletion_protection, zones=list(gcp.zones), release_channel=gcp.release_channel,
                master_cidr=gcp.master_cidr, private_endpoint=gcp.private_endpoint,
                master_authorized_networks=list(gcp.master_authorized_networks),
                # The workspace's class without an instance of ours uses GKE's Filestore CSI driver.
                filestore_csi=not gcp.filestore,
                node_service_account_id=service_account_id(config.name, "nodes"),
                node_pools={name: node_pool(name, pool, zones=self.gpu_zones(config) if name == "gpu" else ())
                            for name, pool in pools(config)},
            )
        elif stack.name == "storage":
            zonal_filestore = gcp.filestore and gcp.filestore_tier != "REGIONAL"
            values.update(
                bucket=self.results_bucket(config), archive_after_days=gcp.archive_after_days, repository_id=config.name,
                workflow_account_id=service_account_id(config.name, "workflow"), filestore=gcp.filestore,
                filestore_tier=gcp.filestore_tier, filestore_capacity_gb=gcp.filestore_capacity_gb,
                filestore_location=(gcp.zones[0] if zonal_filestore else config.region) if gcp.filestore else "",
            )
        return values

    def gpu_zones(self, config: Config) -> list[str]:
        """The zones of the GPU pool's nodes: gcp.zones when given (the preflight checked each offers the
        type); else the region's zones that offer it, as the preflight of this run found them. [] (the
        cluster's zones) only when no preflight ran, e.g. `destroy` (which skips the GPU check and never
        creates a pool) or a bare render."""
        pool = config.node_pools.gpu
        if config.gcp.zones or pool is None or pool.gpu is None or not pool.gpu.type:
            return list(config.gcp.zones)
        return list(self._gpu_zones.get((str(config.project), config.region, pool.gpu.type), []))

    def backend_config(self, config: Config, stack: Stack) -> Optional[dict[str, Any]]:
        """The GCS backend's settings for `terraform init -backend-config=backend-config.json`, or None."""
        if config.state.backend != "gcs":
            return None
        return {"bucket": config.state.bucket, "prefix": f"{config.name}/gcp/{stack.name}"}

    def terraform_env(self, config: Config) -> dict[str, str]:
        return {}

    # -- before Terraform -----------------------------------------------------------------------

    def open_session(self, config: Config) -> Any:
        from bioinfra.adaptors.gcp import endpoint_url, open_session

        return open_session(config.project, config.region, endpoint_url(config))

    def preflight(self, config: Config, session: Any, *, destroying: bool = False) -> str:
        """Project, region, APIs and (for `up`) GPU and vCPU quotas (#18.9) and the results bucket's name
        (#18.6), through the Google clients; every problem at once."""
        from bioinfra.adaptors.gcp import GpuNeed, check_ready

        gpu = None
        pool = config.node_pools.gpu
        if pool is not None and pool.gpu is not None and pool.gpu.type and not destroying:
            gpu = GpuNeed(accelerator_type=pool.gpu.type, per_node=pool.gpu.count, max_nodes=pool.max,
                          spot=pool.spot, zones=list(config.gcp.zones) or None)
        more = [] if destroying else [lambda region: self._bucket_problems(config, session),
                                      lambda region: self._cpu_quota_problems(config, session, region)]
        zones = check_ready(session, apis=required_apis(config), gpu=gpu, more=more)
        if gpu is not None:
            self._gpu_zones[(str(config.project), config.region, gpu.accelerator_type)] = zones
        return f"GCP project {config.project}, region {config.region}"

    def _bucket_problems(self, config: Config, session: Any) -> list[str]:
        """The results bucket's name is free or this cluster's (issue #18.6)."""
        from bioinfra.adaptors.gcs import results_bucket_problem
        from bioinfra.targets.aws import bucket_suggestion

        bucket = self.results_bucket(config)
        problem = results_bucket_problem(session, bucket, config.name, self.label,
                                         suggestion=bucket_suggestion(config, str(config.project), bucket))
        return [problem] if problem else []

    def _cpu_quota_problems(self, config: Config, session: Any, region: Any) -> list[str]:
        """Every pool at its max fits the vCPU quotas (issue #18.9)."""
        from bioinfra.adaptors.gcp_quotas import pool_quota_problems

        return pool_quota_problems(config, session, region)

    # -- hooks around the walk ------------------------------------------------------------------

    def adopt_kept(self, config: Config, stack: Stack, tf: Any, session: Any, say: Callable[[str], None]) -> None:
        """A results bucket an earlier `destroy` kept (it held data) and that still carries this
        cluster's label is imported by the next `up` (an import block in <stack>/adopt.tf). Once it is
        in Terraform's state again, its kept label (gcp_sweep.KEPT_LABEL) is taken off."""
        adopt = tf.workdir / ADOPT_TF_FILE
        adopt.unlink(missing_ok=True)
        if stack.name != "storage" or session is None:
            return
        from bioinfra.adaptors.gcp_sweep import KEPT_LABEL
        from bioinfra.adaptors.gcs import bucket_labels, set_bucket_label

        bucket = self.results_bucket(config)
        if BUCKET_ADDRESS in tf.state_list():
            # Terraform would never take the kept label off: the provider manages only the labels of its
            # config and default_labels (terraform_labels); any other label stays in effective_labels, with
            # no diff (terraform-provider-google google/tpgresource/labels.go SetLabelsDiff; `labels` is
            # non-authoritative, tests/schemas/terraform/google-6.50.0.json: effective_labels computed).
            # Ref https://registry.terraform.io/providers/hashicorp/google/6.50.0/docs/resources/storage_bucket#effective_labels
            # So bioinfra takes it off here, at the first plan after the `up` whose import took the bucket
            # back, not before the adopting plan: `plan` changes nothing, and after a declined `up` the
            # bucket is still kept and the next destroy should say so. Until then nothing reads it: a
            # bucket in the state is never a leftover, and a destroy that keeps it again re-dates it.
            labels = bucket_labels(session, bucket)
            if labels is not None and labels.get(self.label) == config.name and KEPT_LABEL in labels:
                set_bucket_label(session, bucket, KEPT_LABEL, None)
            return
        labels = bucket_labels(session, bucket)
        if labels is None or labels.get(self.label) != config.name:
            return  # absent, or not ours: Terraform's "bucket exists" error is the right answer
        from bioinfra.targets.aws import ADOPT_TF

        adopt.write_text(ADOPT_TF.format(address=BUCKET_ADDRESS))
        say(f"adopting bucket {bucket}: kept by an earlier destroy because it held data")

    def before_destroy(self, config: Config, stack: Stack, tf: Any, session: Any, *,
                       force_empty_buckets: bool, say: Callable[[str], None]) -> None:
        """cluster: turn deletion_protection off in the state (a targeted apply) so Terraform may
        delete the cluster; storage: a results bucket with data is emptied (--force-empty-buckets) or
        taken out of Terraform's hands and kept."""
        from bioinfra.core.teardown import DriverVolume

        workspace = DriverVolume(FILESTORE_CSI, FILESTORE_BACKING)
        if stack.name == "addons":
            # Before the addons stack is destroyed, not after: it takes the storage class and the `bioinfra`
            # namespace with it, and a claim deleted after its driver is gone never frees its disk; a namespace
            # deletion does not wait for the cloud. Waited for here, while the cluster still runs. The
            # workspace's Filestore instance (Retain class) is switched to Delete: Terraform deletes the claim.
            from bioinfra.core.teardown import release_before_addons_destroy

            release_before_addons_destroy(config, session, tf.workdir.parent, say, workspace=workspace)
            return
        if stack.name == "storage" and not config.gcp.filestore:
            # The first hook after the addons stack is gone: the driver deletes the workspace's Filestore
            # instance now (minutes). Waited for while the cluster runs; its VPC peering would block the
            # network's deletion. What is still there after the wait is the sweep's (cluster stack).
            from bioinfra.core.teardown import wait_after_addons_destroy

            wait_after_addons_destroy(config, session, tf.workdir.parent, say, workspace)
        in_state = tf.state_list()
        if stack.name == "cluster" and CLUSTER_ADDRESS in in_state:
            # deletion_protection is a Terraform-side setting read from the state at delete time:
            # it must be false *in the state* before `destroy`, which only an apply can write.
            # Ref https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/container_cluster#deletion_protection-1
            say("cluster: turning deletion_protection off before destroy")
            result = tf.stream(["apply", "-auto-approve", "-var=deletion_protection=false",
                                f"-target={CLUSTER_ADDRESS}"], say=say)
            if result.returncode != 0:
                errors = "; ".join(result.errors[:3]) or "see the log"
                raise TerraformFailedError(f"could not turn off deletion_protection of cluster {config.name}: {errors}",
                                           hint=f"full log: {result.log}")
        if stack.name == "storage" and session is not None and BUCKET_ADDRESS in in_state:
            from bioinfra.adaptors.gcp_sweep import KEPT_LABEL
            from bioinfra.adaptors.gcs import bucket_contents, empty_bucket, set_bucket_label

            bucket = self.results_bucket(config)
            contents = bucket_contents(session, bucket)
            if not contents:
                return
            if force_empty_buckets:
                say(f"emptying bucket {bucket} ({contents}): --force-empty-buckets")
                empty_bucket(session, bucket)
                return
            # Labelled before it leaves the state (a failed label stops destroy with the bucket still
            # Terraform's): the next destroy's sweep finds it by the cluster's label and names it as kept
            # by this destroy (gcp_sweep.Leftover.kept_on), not as left by an interrupted apply.
            set_bucket_label(session, bucket, KEPT_LABEL, time.strftime("%Y-%m-%d", time.gmtime()))
            tf.state_rm([BUCKET_ADDRESS])
            say(f"keeping bucket {bucket}: it has {contents} (re-run with --force-empty-buckets to delete them)")

    def skip_reason(self, config: Config, stack: Stack) -> Optional[str]:
        return None

    def destroy_plan_args(self, config: Config, stack: Stack) -> list[str]:
        # The destroy plan reads the same variable; false keeps it consistent with the state.
        return ["-var=deletion_protection=false"] if stack.name == "cluster" else []

    # -- after Terraform: what is still labelled with the cluster --------------------------------

    def find_leftovers(self, config: Config, session: Any) -> list[Any]:
        from bioinfra.adaptors.gcp_sweep import find_leftovers

        return find_leftovers(session, config.name, extra_service_accounts=self._accounts(config))

    def delete_leftovers(self, config: Config, session: Any, leftovers: list[Any], *, force_empty_buckets: bool,
                         say: Callable[[str], None], stack: Optional[str] = None) -> Any:
        from bioinfra.adaptors.gcp_sweep import delete_leftovers

        return delete_leftovers(session, leftovers, force_empty_buckets=force_empty_buckets, say=say, stack=stack)

    def _accounts(self, config: Config) -> list[str]:
        return [service_account_id(config.name, "nodes"), service_account_id(config.name, "workflow")]


# Boot disks by machine series. These take only Hyperdisk: Compute Engine refuses a Persistent Disk
# (pd-*) on them, so a node pool with pd-balanced boot disks fails at creation. Every other series GKE
# runs takes pd-balanced, GKE's own default, kept there so an existing pool is not replaced for a new
# disk type (disk_type forces a new node pool).
# Ref https://cloud.google.com/compute/docs/disks/persistent-disks#supported_machine_types (the series
#     that take Persistent Disk) and https://cloud.google.com/compute/docs/disks/hyperdisks#machine-type-support
# Ref https://cloud.google.com/compute/docs/reference/rest/v1/instances (diskType: "The disk type you
#     specify must be compatible with the instance's machine series")
# Ref https://cloud.google.com/kubernetes-engine/docs/how-to/custom-boot-disks (hyperdisk-balanced boot disks)
HYPERDISK_ONLY_SERIES = frozenset({"c4", "c4a", "c4d", "n4", "n4a", "n4d", "a4", "a4x", "x4", "m4", "h4d", "g4"})
# A3 Ultra (H200) alone of the A3 types; bare-metal types of any series (c3-*-metal, ...).
HYPERDISK_ONLY_PREFIXES = ("a3-ultragpu-",)
PERSISTENT_DISK_BOOT = "pd-balanced"
HYPERDISK_BOOT = "hyperdisk-balanced"

# The GKE API spells taint effects NO_SCHEDULE, ...; Kubernetes (and the Workflows' tolerations) NoSchedule.
# Ref https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/NodeConfig#NodeTaint
GKE_TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}


def boot_disk_type(machine_type: str) -> str:
    """hyperdisk-balanced for a machine type of a Hyperdisk-only series, else pd-balanced."""
    series = machine_type.split("-")[0]
    hyperdisk_only = (series in HYPERDISK_ONLY_SERIES or machine_type.startswith(HYPERDISK_ONLY_PREFIXES)
                      or machine_type.endswith("-metal"))
    return HYPERDISK_BOOT if hyperdisk_only else PERSISTENT_DISK_BOOT


def pools(config: Config) -> list[tuple[str, NodePool]]:
    named = [("general", config.node_pools.general), ("highcpu", config.node_pools.highcpu)]
    if config.node_pools.gpu is not None:
        named.append(("gpu", config.node_pools.gpu))
    return named


def node_pool(name: str, pool: NodePool, zones: Iterable[str] = ()) -> dict[str, Any]:
    """One GKE node pool: capacity, boot disk, autoscaling totals, labels, taints, accelerators, and its
    own zones (node_locations; empty: the cluster's, gcp.zones or every zone of the region)."""
    # Here, not at the top: bioinfra.pipelines imports bioinfra.targets.
    from bioinfra.pipelines import SPOT_TAINT_EFFECT, SPOT_TAINT_KEY, SPOT_TAINT_VALUE

    gpu = pool.gpu if (name == "gpu" and pool.gpu) else None
    labels = {"bioinfra.io/pool": name, "bioinfra.io/capacity": "spot" if pool.spot else "on-demand"}
    # GPU nodes repel every pod that does not ask for a GPU (GKE adds the same taint itself; written
    # here so the plan shows it and a pool without it is a visible change).
    taints = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}] if gpu else []
    # Spot nodes repel every pod but the steps that tolerate the spot taint (the highcpu ones, #18.8), so
    # Argo, MinIO, kube-dns and the other Deployments are never reclaimed with a spot node. GKE's own
    # system DaemonSets tolerate every taint and still run on each node. General stays untainted even on
    # spot: its steps carry no toleration and the cluster's services need a pool to run in.
    # Ref https://cloud.google.com/kubernetes-engine/docs/how-to/spot-vms#use_nodetaints_to_avoid_scheduling_to_spot_vms
    if pool.spot and name != "general":
        taints.append({"key": SPOT_TAINT_KEY, "value": SPOT_TAINT_VALUE, "effect": GKE_TAINT_EFFECTS[SPOT_TAINT_EFFECT]})
    return {
        "machine_type": pool.machine_type,
        "spot": pool.spot,
        "disk_size": pool.disk_gb,
        "disk_type": boot_disk_type(pool.machine_type),
        "min": pool.min,
        "max": pool.max,
        # Per zone at creation: a pool that may scale to zero starts empty.
        "initial_node_count": 1 if pool.min > 0 else 0,
        # ANY: spot capacity wherever a zone has it; BALANCED: spread evenly.
        # Ref https://cloud.google.com/kubernetes-engine/docs/concepts/cluster-autoscaler#location_policy
        "location_policy": "ANY" if pool.spot else "BALANCED",
        "labels": labels,
        "taints": taints,
        "gpu": {"type": gpu.type, "count": gpu.count} if gpu else None,
        "zones": list(zones),
    }
