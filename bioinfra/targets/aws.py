"""Target aws: EKS with general, spot and GPU pools; S3, EFS and ECR; state local or in S3.

What the AWS stacks need from the config is computed here (template variables, per-pool node group
settings, autoscaler tags); walking the stacks is bioinfra.core.provision's job, the same for every
cloud target.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from bioinfra.adaptors.aws import ENDPOINT_ENV
from bioinfra.errors import ConfigError, PreflightError
from bioinfra.targets.addons import TEMPLATE as ADDONS_TEMPLATE
from bioinfra.targets.addons import addons_values, addons_variables
from bioinfra.targets.aws_cluster import AwsCluster
from bioinfra.targets.base import ADOPT_TF_FILE, ADOPT_VALUES_FILE, Stack

if TYPE_CHECKING:
    from bioinfra.config import Config, NodePool


# Declared once: `up` walks this forward, `destroy` backward. `upstream` names the stacks whose
# outputs a stack reads (passed as variables, see core.provision).
STACKS: tuple[Stack, ...] = (
    Stack("network", "aws/stacks/network.tf.j2", upstream=()),
    Stack("cluster", "aws/stacks/cluster.tf.j2", upstream=("network",)),
    Stack("storage", "aws/stacks/storage.tf.j2", upstream=("network", "cluster")),
    # Inside the cluster (targets/addons.py): applied last, destroyed first.
    Stack("addons", ADDONS_TEMPLATE, upstream=("cluster", "storage")),
)

# Every service a stack's provider calls; in the emulator profile each is pointed at the endpoint.
EMULATED_SERVICES = ("autoscaling", "ec2", "ecr", "efs", "eks", "iam", "kms", "logs", "s3", "sts")

# Outputs a stack reads from its upstream stacks, with stand-ins used only to *plan* a stack whose
# upstream is not applied yet (`bioinfra plan aws` on a new environment). Never applied.
PLACEHOLDER_OUTPUTS: dict[str, dict[str, Any]] = {
    "network": {
        "vpc_id": "vpc-00000000000000000",
        "vpc_cidr": "10.0.0.0/16",
        "private_subnet_ids": ["subnet-00000000000000001", "subnet-00000000000000002"],
        "public_subnet_ids": ["subnet-00000000000000003", "subnet-00000000000000004"],
    },
    "cluster": {
        "oidc_provider_arn": "arn:aws:iam::000000000000:oidc-provider/oidc.eks.placeholder/id/0",
        "oidc_issuer": "oidc.eks.placeholder/id/0",
        "cluster_name": "placeholder",
        "cluster_endpoint": "https://placeholder.invalid",
        "cluster_ca": "",
    },
    "storage": {
        "efs_id": "fs-00000000000000000",
        "workflow_role_arn": "arn:aws:iam::000000000000:role/placeholder-workflow",
        "efs_csi_role_arn": "arn:aws:iam::000000000000:role/placeholder-efs-csi",
        "autoscaler_role_arn": "arn:aws:iam::000000000000:role/placeholder-autoscaler",
    },
}

TOOL_REPOSITORIES = ("fastqc", "bwa-mem2", "cellprofiler")

# The IAM roles the stacks make, by their key in the stacks' `iam_role_names` variable, with the end of
# their names (iam_role_name), and the stack that makes each.
IAM_ROLES: dict[str, str] = {"flow_logs": "vpc-flow-logs", "cluster": "cluster", "node": "node",
                             "workflow": "workflow", "efs_csi": "efs-csi", "autoscaler": "autoscaler"}
IAM_ROLES_BY_STACK: dict[str, tuple[str, ...]] = {
    "network": ("flow_logs",), "cluster": ("cluster", "node"), "storage": ("workflow", "efs_csi", "autoscaler"),
}
# CreateRole: RoleName is 1-64 characters. Ref https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html
IAM_ROLE_NAME_MAX = 64

# The GPU of each NVIDIA instance family, as the cluster autoscaler names it in the node label
# k8s.amazonaws.com/accelerator (kubernetes/autoscaler, cluster-autoscaler/cloudprovider/aws/
# aws_cloud_provider.go: GPULabel, availableGPUTypes = nvidia-tesla-k80/-p100/-v100/-t4/-a100,
# nvidia-a10g, nvidia-l4, nvidia-l40s). Families it does not list get a name in the same style: the
# label's presence is what marks a GPU node; the list only matters to --gpu-total limits.
# GPUs per family: https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html
AWS_GPU_TYPES: dict[str, str] = {
    "g4dn": "nvidia-tesla-t4", "g5": "nvidia-a10g", "g5g": "nvidia-t4g", "g6": "nvidia-l4", "g6f": "nvidia-l4",
    "gr6": "nvidia-l4", "gr6f": "nvidia-l4", "g6e": "nvidia-l40s", "p3": "nvidia-tesla-v100",
    "p3dn": "nvidia-tesla-v100", "p4d": "nvidia-tesla-a100", "p4de": "nvidia-tesla-a100", "p5": "nvidia-h100",
    "p5e": "nvidia-h200", "p5en": "nvidia-h200", "p6-b200": "nvidia-b200",
}
GPU_TYPE_LABEL = "k8s.amazonaws.com/accelerator"
# A taint's effect in Kubernetes' spelling -> the EKS API's (NodegroupTaint).
# Ref https://docs.aws.amazon.com/eks/latest/APIReference/API_Taint.html
EKS_TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}

# The account a render stands in when no preflight has asked STS (a bare render: tests, golden files);
# `up`, `plan` and `destroy` always run the preflight first. The same stand-in as PLACEHOLDER_OUTPUTS.
PLACEHOLDER_ACCOUNT = "000000000000"

# The import block that takes back a kept results bucket; its id is the stack's variable, never HCL text
# of the name (an expression in an import id needs Terraform 1.6).
ADOPT_TF = (
    "# generated by bioinfra: the results bucket an earlier `destroy` kept (it held data) is taken back\n"
    "import {{\n  to = {address}\n  id = var.bucket\n}}\n"
)

# The storage stack's results bucket and the KMS key that encrypts it (default encryption aws:kms, bucket
# keys on; the key also encrypts EFS and ECR, which go with the stack): what `destroy` keeps when the
# bucket holds data, and `up` takes back.
BUCKET_ADDRESS = "module.storage.aws_s3_bucket.results"
KEY_ADDRESS = "module.storage.module.key.aws_kms_key.this"
ALIAS_ADDRESS = "module.storage.module.key.aws_kms_alias.this"
# What `destroy` takes out of the state to keep: the bucket with its settings (aws_s3_bucket_*), the key
# and its alias (terraform/aws/modules/kms-key).
KEPT_PREFIXES = ("module.storage.aws_s3_bucket", "module.storage.module.key.aws_kms_key.",
                 "module.storage.module.key.aws_kms_alias.")
# The kept key's import blocks, beside the bucket's in adopt.tf. Their ids are a variable of adopt.tf,
# valued in ADOPT_VALUES_FILE (JSON, read as data), never HCL text of the id. Import ids: aws_kms_key by its
# key id, aws_kms_alias by its name (alias/...).
# Ref https://registry.terraform.io/providers/hashicorp/aws/5.100.0/docs/resources/kms_key#import
# Ref https://registry.terraform.io/providers/hashicorp/aws/5.100.0/docs/resources/kms_alias#import
ADOPT_KEY_TF = (
    "\n# and the KMS key that encrypts it, kept with it\n"
    'variable "kept_key" {{\n'
    '  description = "The kept KMS key of the results bucket: its id and alias (written by bioinfra into {values})."\n'
    "  type        = object({{ id = string, alias = string }})\n"
    "}}\n"
    "import {{\n  to = {key}\n  id = var.kept_key.id\n}}\n"
)
ADOPT_ALIAS_TF = "import {{\n  to = {alias}\n  id = var.kept_key.alias\n}}\n"


def endpoint_url(config: Config) -> Optional[str]:
    """The emulator endpoint, if any: $BIOINFRA_AWS_ENDPOINT_URL (checked as aws.endpoint_url is: a bad
    one is a ConfigError naming the variable), then aws.endpoint_url."""
    from bioinfra.config import env_endpoint_url

    return env_endpoint_url(ENDPOINT_ENV, config.aws.endpoint_url)


def s3_backend_config(config: Config, stack: str) -> Optional[dict[str, Any]]:
    """The S3 backend's settings for `terraform init -backend-config=backend-config.json` (a backend
    block cannot read variables; the JSON file is read as data, never as HCL), or None for local state."""
    if config.state.backend != "s3":
        return None
    settings: dict[str, Any] = {
        "bucket": config.state.bucket,
        "key": f"{config.name}/aws/{stack}/terraform.tfstate",
        "region": config.region,
        "dynamodb_table": config.state.lock_table,
    }
    if config.aws.profile:
        settings["profile"] = config.aws.profile
    endpoint = endpoint_url(config)
    if endpoint:
        settings["use_path_style"] = True
        settings["endpoints"] = {service: endpoint for service in ("s3", "dynamodb", "iam", "sts")}
    return settings


class AwsTarget(AwsCluster):
    name = "aws"
    runs_locally = False
    stacks = STACKS
    placeholder_outputs = PLACEHOLDER_OUTPUTS
    label = "bioinfra:cluster"

    def __init__(self) -> None:
        # What the preflight found out, for the stacks it renders next: the account id, by
        # (cluster, profile, endpoint).
        self._accounts: dict[tuple[str, Optional[str], Optional[str]], str] = {}

    def results_bucket(self, config: Config, session: Any = None) -> str:
        """The results bucket's name (config.results_bucket with this account's id): asked of STS
        through the session when given, else the account this run's preflight found."""
        if config.buckets.results:
            return config.buckets.results
        key = (config.name, config.aws.profile, endpoint_url(config))
        if session is not None:
            from bioinfra.adaptors.aws import account_id

            self._accounts[key] = account_id(session)
        return config.results_bucket(self._accounts.get(key, PLACEHOLDER_ACCOUNT))

    def registry(self, config: Config) -> str:
        # The account id is only known after `up aws`; until then name the repository path.
        return config.registry.url or f"ACCOUNT.dkr.ecr.{config.region}.amazonaws.com/{config.name}"

    def serves(self, config: Config, ref: str) -> bool:
        if config.registry.url:
            return ref.startswith(config.registry.url.rstrip("/") + "/")
        host, _, path = ref.partition("/")
        return host.endswith(f".dkr.ecr.{config.region}.amazonaws.com") and path.startswith(f"{config.name}/")

    def before_destroy(self, config: Config, stack: Stack, tf: Any, aws: Any, *,
                       force_empty_buckets: bool, say: Callable[[str], None]) -> None:
        """Results are never deleted silently: before the storage stack is destroyed, a results bucket
        with data is emptied (--force-empty-buckets) or taken out of Terraform's hands and kept (the
        final sweep then reports it and `destroy` exits 11)."""
        if stack.name == "network" and aws is not None:
            # What sits in the VPC without our tags (GuardDuty's endpoint and group, ENIs the VPC CNI leaked)
            # fails the stack's destroy with DependencyViolation, before the final sweep can run (issue #18).
            from bioinfra.adaptors.aws_sweep import clear_vpc_blockers

            clear_vpc_blockers(aws.session, config.name, say=say, endpoint_url=aws.endpoint_url)
            return
        if stack.name == "addons":
            # Before the addons stack is destroyed, not after: it takes the EFS CSI driver and the `bioinfra`
            # namespace with it, and a claim deleted after its driver is gone never frees its disk; a namespace
            # deletion does not wait for the cloud. Waited for here, while the cluster still runs.
            from bioinfra.core.teardown import release_before_addons_destroy

            release_before_addons_destroy(config, aws, tf.workdir.parent, say)
            return
        if stack.name != "storage" or aws is None:
            return
        from bioinfra.adaptors.aws_sweep import bucket_contents, bucket_key, empty_bucket, key_aliases, mark_kept

        s3, kms = aws.client("s3"), aws.client("kms")  # an AwsSession: the endpoint (emulator) applies
        bucket = self.results_bucket(config, aws)
        contents = bucket_contents(s3, bucket)
        if not contents:
            return
        if force_empty_buckets:
            say(f"emptying bucket {bucket} ({contents}): --force-empty-buckets")
            empty_bucket(s3, bucket)
            return
        # The KMS key is kept with the bucket: destroyed with the stack, KMS would delete it after its 7-day
        # window and every object in the bucket would be unreadable for good. EFS and ECR, which it also
        # encrypts, are destroyed as before (a key that stays does not hold them).
        key = bucket_key(s3, kms, bucket)
        aliases = key_aliases(kms, key) if key else []
        mark_kept(s3, kms, bucket, key, time.strftime("%Y-%m-%d", time.gmtime()))
        addresses = [a for a in tf.state_list() if a.startswith(KEPT_PREFIXES)]
        if addresses:
            tf.state_rm(addresses)
        if key:
            named = f"{key} ({', '.join(aliases)})" if aliases else key
            say(f"keeping bucket {bucket}: it has {contents}; keeping its KMS key {named} too, without which they "
                "cannot be read (about $1 a month while kept; re-run with --force-empty-buckets to delete them)")
        else:
            say(f"keeping bucket {bucket}: it has {contents} (re-run with --force-empty-buckets to delete them)")

    def adopt_kept(self, config: Config, stack: Stack, tf: Any, aws: Any, say: Callable[[str], None]) -> None:
        """Before `up` plans the storage stack: a results bucket that an earlier `destroy` kept (it
        held data) and that still carries this cluster's tag is imported, not created again (which
        would fail: the name is taken). Written as an import block in <stack>/adopt.tf."""
        adopt = tf.workdir / ADOPT_TF_FILE
        adopt.unlink(missing_ok=True)
        (tf.workdir / ADOPT_VALUES_FILE).unlink(missing_ok=True)
        if stack.name != "storage" or aws is None:
            return
        in_state = tf.state_list()
        if BUCKET_ADDRESS in in_state:
            return
        bucket = self.results_bucket(config, aws)
        s3 = aws.client("s3")
        try:
            tag_set = s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
        except Exception as exc:  # noqa: BLE001 - botocore is imported lazily; NoSuchBucket / NoSuchTagSet
            if getattr(exc, "response", None) is None:
                raise
            return
        if {t["Key"]: t["Value"] for t in tag_set}.get(self.label) != config.name:
            return  # not ours: Terraform's "bucket exists" error is the right answer
        text = ADOPT_TF.format(address=BUCKET_ADDRESS)
        key = None if KEY_ADDRESS in in_state else self._kept_key(config, aws, bucket, say)
        if key:
            from bioinfra.core.provision import write_private_json

            key_id, alias = key
            text += ADOPT_KEY_TF.format(values=ADOPT_VALUES_FILE, key=KEY_ADDRESS)
            if alias and ALIAS_ADDRESS not in in_state:
                text += ADOPT_ALIAS_TF.format(alias=ALIAS_ADDRESS)
            write_private_json(tf.workdir / ADOPT_VALUES_FILE, {"kept_key": {"id": key_id, "alias": alias or ""}})
        adopt.write_text(text)
        with_key = ""
        if key:
            with_key = f" with its KMS key {key[0]}" + (f" ({key[1]})" if key[1] else "")
        say(f"adopting bucket {bucket}{with_key}: kept by an earlier destroy because it held data")

    def _kept_key(self, config: Config, aws: Any, bucket: str,
                  say: Callable[[str], None]) -> Optional[tuple[str, Optional[str]]]:
        """The KMS key that encrypts a kept bucket, when it is this cluster's (its tag), with the storage
        stack's alias of it if that exists: (key id, alias name or None). None for another key: Terraform
        then makes a new one and points the bucket at it (objects written before keep their old key).
        A key whose deletion is scheduled (a `destroy` before bioinfra kept the key too) is taken back:
        the deletion is cancelled and the key enabled again (aws_sweep.rescue_key)."""
        from bioinfra.adaptors.aws_sweep import bucket_key, key_aliases, rescue_key

        kms = aws.client("kms")
        key_id = bucket_key(aws.client("s3"), kms, bucket)
        if key_id is None:
            return None
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id).get("Tags", [])}
        if tags.get(self.label) != config.name:
            return None
        if rescue_key(kms, key_id):
            say(f"KMS key {key_id} of bucket {bucket} was scheduled for deletion: cancelled, so its objects stay readable")
        alias = f"alias/{config.name}-storage"  # the storage module's (terraform/aws/modules/storage: module "key")
        return key_id, alias if alias in key_aliases(kms, key_id) else None

    def terraform_env(self, config: Config) -> dict[str, str]:
        # No instance-metadata probing against an emulator.
        return {"AWS_EC2_METADATA_DISABLED": "true"} if endpoint_url(config) else {}

    def open_session(self, config: Config) -> Any:
        from bioinfra.adaptors.aws import open_session

        return open_session(config.region, config.aws.profile, endpoint_url(config))

    def preflight(self, config: Config, session: Any, *, destroying: bool = False) -> str:
        """The Kubernetes version is one EKS still creates (not for destroy: an old cluster must still go),
        the credentials work, and whose account they are (STS GetCallerIdentity); for `up`, the results
        bucket's name is free or ours (#18.6) and the EC2 vCPU quotas fit every pool at its max (#18.9)."""
        from bioinfra.adaptors.aws import account_id, results_bucket_problem
        from bioinfra.adaptors.aws_quotas import check_quotas
        from bioinfra.targets.eks_versions import ENDED, support

        version = None
        if not destroying:
            version = support(config.aws.kubernetes_version)
            if version.phase == ENDED:
                raise ConfigError(
                    f"aws.kubernetes_version: {version.describe()}",
                    hint=f'set aws.kubernetes_version: "{version.recommended}" in bioinfra.yaml '
                         f"(EKS calendar of {version.as_of}: bioinfra/data/eks_versions.yaml); nothing was created",
                )
        account = account_id(session)
        self._accounts[(config.name, config.aws.profile, endpoint_url(config))] = account
        notes: list[str] = []  # said, not refused: e.g. a quota check the credentials may not make
        if not destroying:
            # Before any stack: what would otherwise fail only after the network and the cluster (#18.6).
            problems = []
            bucket = self.results_bucket(config)
            if problem := results_bucket_problem(session, bucket, config.name,
                                                 suggestion=bucket_suggestion(config, account, bucket)):
                problems.append(problem)
            quotas = check_quotas(session, pool_needs(config))
            problems += quotas.problems
            notes += quotas.notes
            if problems:
                raise PreflightError(
                    f"AWS account {account} (region {config.region}) is not ready for `bioinfra up aws`",
                    problems=problems, hint="fix each line, then run `bioinfra up aws` again; nothing was created")
        where = f"AWS account {account}, region {config.region}"
        return "\n  warning: ".join([f"{where}; {version.describe()}" if version else where, *notes])

    def destroy_plan_args(self, config: Config, stack: Stack) -> list[str]:
        return []

    def skip_reason(self, config: Config, stack: Stack) -> Optional[str]:
        # moto's EKS answers the EKS API but serves no Kubernetes API behind the endpoint it reports,
        # so the kubernetes/helm providers of the addons stack have nothing to talk to.
        if stack.name == "addons" and endpoint_url(config):
            return "the AWS emulator's EKS has no Kubernetes API server"
        return None

    def find_leftovers(self, config: Config, session: Any) -> list[Any]:
        from bioinfra.adaptors.aws_sweep import find_leftovers

        return find_leftovers(session.session, config.name, session.endpoint_url)

    def delete_leftovers(self, config: Config, session: Any, leftovers: list[Any], *, force_empty_buckets: bool,
                         say: Callable[[str], None], stack: Optional[str] = None) -> Any:
        from bioinfra.adaptors.aws_sweep import delete_leftovers

        return delete_leftovers(session.session, leftovers, force_empty_buckets=force_empty_buckets, say=say,
                                endpoint_url=session.endpoint_url, stack=stack)

    def stack_variables(self, config: Config, stack: Stack) -> dict[str, Any]:
        """What the stack template reads: structure only (which backend, which pools), never a config value."""
        if stack.name == "addons":
            return addons_variables(config, self.name)
        return {
            "stack": stack.name,
            "state_backend": config.state.backend,
            "emulated_services": EMULATED_SERVICES,
            "pool_names": [name for name, _ in pools(config)],
        }

    def stack_values(self, config: Config, stack: Stack) -> dict[str, Any]:
        """The stack's variables (bioinfra.auto.tfvars.json): every value that comes from the config."""
        if stack.name == "addons":
            return addons_values(config, self.name)
        aws = config.aws
        values: dict[str, Any] = {"name": config.name, "region": config.region, "profile": aws.profile,
                                  "endpoint_url": endpoint_url(config)}
        if stack.name == "network":
            values.update(vpc_cidr=aws.vpc_cidr, availability_zones=aws.availability_zones,
                          single_nat_gateway=aws.single_nat_gateway, log_retention_days=aws.log_retention_days)
        elif stack.name == "cluster":
            values.update(kubernetes_version=aws.kubernetes_version, private_endpoint=aws.private_endpoint,
                          public_access_cidrs=list(aws.public_access_cidrs),
                          log_retention_days=aws.log_retention_days, admins=list(aws.admins),
                          node_groups={name: node_group(config.name, name, pool) for name, pool in pools(config)})
        elif stack.name == "storage":
            values.update(bucket=self.results_bucket(config), glacier_after_days=aws.glacier_after_days,
                          repositories=[f"{config.name}/{tool}" for tool in TOOL_REPOSITORIES])
        if stack.name in IAM_ROLES_BY_STACK:
            values["iam_role_names"] = {role: iam_role_name(config.name, config.region, role)
                                        for role in IAM_ROLES_BY_STACK[stack.name]}
        return values

    def backend_config(self, config: Config, stack: Stack) -> Optional[dict[str, Any]]:
        return s3_backend_config(config, stack.name)


def bucket_suggestion(config: Config, owner: str, taken: str) -> str:
    """A results bucket name to offer when `taken` is someone else's: the default (with the account or
    project id) when the taken one is not it, else the default with a short suffix of this cluster."""
    from bioinfra.config import default_results_bucket

    default = default_results_bucket(config.name, owner)
    if default != taken:
        return default
    return default_results_bucket(f"{config.name}-data", owner)


def pool_needs(config: Config) -> list[Any]:
    """What each node pool may use at most, for the EC2 vCPU quota check (adaptors.aws_quotas)."""
    from bioinfra.adaptors.aws_quotas import PoolNeed

    return [PoolNeed(name, (pool.machine_type, *pool.alternatives), pool.max, pool.spot) for name, pool in pools(config)]


def pools(config: Config) -> list[tuple[str, NodePool]]:
    named = [("general", config.node_pools.general), ("highcpu", config.node_pools.highcpu)]
    if config.node_pools.gpu is not None:
        named.append(("gpu", config.node_pools.gpu))
    return named


def gpu_count(instance_types: list[str]) -> Optional[int]:
    """The NVIDIA GPUs every one of these instance types has (config.AWS_GPU_COUNTS), or None when a
    type is not in the table or two types differ. The autoscaler's node-template GPU tag overrides what
    it knows of the instance type, so a wrong count is worse than none: with gpu.count 1 on a
    g5.12xlarge (4 GPUs), a pod asking for 4 never scaled the pool up from zero (issue #18). Without
    the tag, the autoscaler takes the count from its own instance-type table (kubernetes/autoscaler,
    cluster-autoscaler/cloudprovider/aws/aws_manager.go, buildNodeFromTemplate: InstanceType.GPU, then
    the resources/* tags on top)."""
    from bioinfra.config import AWS_GPU_COUNTS

    counts = {AWS_GPU_COUNTS.get(itype) for itype in instance_types}
    return counts.pop() if len(counts) == 1 else None


def iam_role_name(cluster: str, region: str, role: str) -> str:
    """`<cluster>-<region>-<role>`: IAM is global, so the same cluster name in two regions of one account
    needs two names (issue #18). Past IAM's 64 characters (a name near its 40-character limit), the region
    becomes 8 hex digits of its SHA-256, so at most 40 + 1 + 8 + 1 + 13 = 63. Always `<cluster>-...`, the
    prefix the sweep lists roles by (adaptors/aws_sweep.py, _find_iam)."""
    suffix = IAM_ROLES[role]
    name = f"{cluster}-{region}-{suffix}"
    if len(name) <= IAM_ROLE_NAME_MAX:
        return name
    return f"{cluster}-{hashlib.sha256(region.encode()).hexdigest()[:8]}-{suffix}"


def gpu_type(instance_types: list[str]) -> Optional[str]:
    """The GPU every one of these instance types has (AWS_GPU_TYPES), or None when a family is not in the
    table or two differ: a node group has one label, and a wrong GPU type is worse than none."""
    types = {AWS_GPU_TYPES.get(itype.split(".")[0]) for itype in instance_types}
    return types.pop() if len(types) == 1 else None


def node_group(cluster: str, name: str, pool: NodePool) -> dict[str, Any]:
    """One managed node group: capacity, AMI, labels, taints, and the same as autoscaler tags."""
    # pipelines imports the targets package: imported here, not at the top.
    from bioinfra.pipelines import SPOT_TAINT_EFFECT, SPOT_TAINT_KEY, SPOT_TAINT_VALUE

    instance_types = [pool.machine_type, *pool.alternatives]
    # Graviton families have a "g" right after the generation digit (m7g, c6gn, g5g); the AMI must match.
    arm = re.match(r"[a-z]+\d+g", pool.machine_type) is not None
    # The gpu pool's types are NVIDIA ones (config.pool_problems), whether or not the pool has a `gpu:` block.
    gpu = name == "gpu"
    if gpu:
        ami_type = "AL2023_ARM_64_NVIDIA" if arm else "AL2023_x86_64_NVIDIA"
    else:
        ami_type = "AL2023_ARM_64_STANDARD" if arm else "AL2023_x86_64_STANDARD"
    labels = {"bioinfra.io/pool": name, "bioinfra.io/capacity": "spot" if pool.spot else "on-demand"}
    accelerator = gpu_type(instance_types) if gpu else None
    if accelerator:
        # The autoscaler's GPU label (aws README "Special note on GPU instances"): a new node with it
        # counts as a GPU node not yet ready until the device plugin advertises its GPUs, so the
        # autoscaler does not scale up again meanwhile.
        labels[GPU_TYPE_LABEL] = accelerator
    # GPU nodes repel every pod that does not ask for a GPU (the NVIDIA device plugin's convention).
    taints = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}] if gpu else []
    # Spot nodes repel every pod that does not tolerate their loss (issue #18.8): Argo, MinIO, CoreDNS
    # and the autoscaler stay on on-demand nodes; the highcpu steps tolerate it (pipelines.SPOT_TAINT_*).
    # Never on general: the system pods go there, whatever its capacity.
    if pool.spot and name != "general":
        taints.append({"key": SPOT_TAINT_KEY, "value": SPOT_TAINT_VALUE, "effect": EKS_TAINT_EFFECTS[SPOT_TAINT_EFFECT]})
    tags = {"k8s.io/cluster-autoscaler/enabled": "true", f"k8s.io/cluster-autoscaler/{cluster}": "owned"}
    for key, value in labels.items():
        tags[f"k8s.io/cluster-autoscaler/node-template/label/{key}"] = value
    # `<value>:<effect>` in Kubernetes' spelling. Ref https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/cloudprovider/aws/README.md#auto-discovery-setup
    kube_effects = {eks: kube for kube, eks in EKS_TAINT_EFFECTS.items()}
    for taint in taints:
        tags[f"k8s.io/cluster-autoscaler/node-template/taint/{taint['key']}"] = \
            f"{taint['value']}:{kube_effects[taint['effect']]}"
    gpus = gpu_count(instance_types) if gpu else None
    if gpus:
        tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] = str(gpus)
    return {
        "capacity_type": "SPOT" if pool.spot else "ON_DEMAND",
        "instance_types": instance_types,
        "ami_type": ami_type,
        "disk_size": pool.disk_gb,
        "min": pool.min,
        "max": pool.max,
        "labels": labels,
        "taints": taints,
        "autoscaler_tags": tags,
    }
