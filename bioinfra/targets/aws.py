"""Target aws: EKS with general, spot and GPU pools; S3, EFS and ECR; state local or in S3.

What the AWS stacks need from the config is computed here (template variables, per-pool node group
settings, autoscaler tags); walking the stacks is bioinfra.core.provision's job, the same for every
cloud target.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from bioinfra.adaptors.aws import ENDPOINT_ENV
from bioinfra.core.stacks import Stack
from bioinfra.errors import ConfigError
from bioinfra.targets.addons import TEMPLATE as ADDONS_TEMPLATE
from bioinfra.targets.addons import addons_variables

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


def endpoint_url(config: Config) -> Optional[str]:
    """The emulator endpoint, if any: $BIOINFRA_AWS_ENDPOINT_URL, then aws.endpoint_url."""
    return (os.environ.get(ENDPOINT_ENV) or config.aws.endpoint_url or "").rstrip("/") or None


class AwsTarget:
    name = "aws"
    runs_locally = False
    stacks = STACKS
    placeholder_outputs = PLACEHOLDER_OUTPUTS
    label = "bioinfra:cluster"

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
        if stack.name == "addons":
            # Before the addons stack is destroyed, not after: it takes the EFS CSI driver and the `bioinfra`
            # namespace with it, and a claim deleted after its driver is gone never frees its disk; a namespace
            # deletion does not wait for the cloud. Waited for here, while the cluster still runs.
            from bioinfra.core.teardown import release_before_addons_destroy

            release_before_addons_destroy(config, aws, tf.workdir.parent, say)
            return
        if stack.name != "storage" or aws is None:
            return
        from bioinfra.adaptors.aws_sweep import bucket_contents, empty_bucket

        s3 = aws.client("s3")  # an AwsSession: the endpoint (emulator) applies
        bucket = config.results_bucket
        contents = bucket_contents(s3, bucket)
        if not contents:
            return
        if force_empty_buckets:
            say(f"emptying bucket {bucket} ({contents}): --force-empty-buckets")
            empty_bucket(s3, bucket)
            return
        addresses = [a for a in tf.state_list() if a.startswith("module.storage.aws_s3_bucket")]
        if addresses:
            tf.state_rm(addresses)
        say(f"keeping bucket {bucket}: it has {contents} (re-run with --force-empty-buckets to delete them)")

    def adopt_kept(self, config: Config, stack: Stack, tf: Any, aws: Any, say: Callable[[str], None]) -> None:
        """Before `up` plans the storage stack: a results bucket that an earlier `destroy` kept (it
        held data) and that still carries this cluster's tag is imported, not created again (which
        would fail: the name is taken). Written as an import block in <stack>/adopt.tf."""
        adopt = tf.workdir / "adopt.tf"
        adopt.unlink(missing_ok=True)
        address = "module.storage.aws_s3_bucket.results"
        if stack.name != "storage" or aws is None or address in tf.state_list():
            return
        bucket = config.results_bucket
        try:
            tag_set = aws.client("s3").get_bucket_tagging(Bucket=bucket).get("TagSet", [])
        except Exception as exc:  # noqa: BLE001 - botocore is imported lazily; NoSuchBucket / NoSuchTagSet
            if getattr(exc, "response", None) is None:
                raise
            return
        if {t["Key"]: t["Value"] for t in tag_set}.get("bioinfra:cluster") != config.name:
            return  # not ours: Terraform's "bucket exists" error is the right answer
        adopt.write_text(
            "# generated by bioinfra: the results bucket an earlier `destroy` kept (it held data) is taken back\n"
            f'import {{\n  to = {address}\n  id = "{bucket}"\n}}\n'
        )
        say(f"adopting bucket {bucket}: kept by an earlier destroy because it held data")

    def terraform_env(self, config: Config) -> dict[str, str]:
        # No instance-metadata probing against an emulator.
        return {"AWS_EC2_METADATA_DISABLED": "true"} if endpoint_url(config) else {}

    def open_session(self, config: Config) -> Any:
        from bioinfra.adaptors.aws import open_session

        return open_session(config.region, config.aws.profile, endpoint_url(config))

    def preflight(self, config: Config, session: Any, *, destroying: bool = False) -> str:
        """The Kubernetes version is one EKS still creates (not for destroy: an old cluster must still go),
        the credentials work, and whose account they are (STS GetCallerIdentity)."""
        from bioinfra.adaptors.aws import account_id
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
        where = f"AWS account {account_id(session)}, region {config.region}"
        return f"{where}; {version.describe()}" if version else where

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
        """Everything the stack templates read."""
        if stack.name == "addons":
            return addons_variables(config, self.name)
        endpoint = endpoint_url(config)
        return {
            "name": config.name,
            "stack": stack.name,
            "region": config.region,
            "profile": config.aws.profile,
            "endpoint_url": endpoint,
            "emulator": endpoint is not None,
            "emulated_services": EMULATED_SERVICES,
            "state": config.state,
            "aws": config.aws,
            "bucket": config.results_bucket,
            "repositories": [f"{config.name}/{tool}" for tool in TOOL_REPOSITORIES],
            "node_pools": [node_group(config.name, name, pool) for name, pool in pools(config)],
        }


def pools(config: Config) -> list[tuple[str, NodePool]]:
    named = [("general", config.node_pools.general), ("highcpu", config.node_pools.highcpu)]
    if config.node_pools.gpu is not None:
        named.append(("gpu", config.node_pools.gpu))
    return named


def node_group(cluster: str, name: str, pool: NodePool) -> dict[str, Any]:
    """One managed node group: capacity, AMI, labels, taints, and the same as autoscaler tags."""
    instance_types = [pool.machine_type, *pool.alternatives]
    # Graviton families have a "g" right after the generation digit (m7g, c6gn, g5g); the AMI must match.
    arm = re.match(r"[a-z]+\d+g", pool.machine_type) is not None
    gpus = pool.gpu.count if (name == "gpu" and pool.gpu) else 0
    if gpus:
        ami_type = "AL2023_ARM_64_NVIDIA" if arm else "AL2023_x86_64_NVIDIA"
    else:
        ami_type = "AL2023_ARM_64_STANDARD" if arm else "AL2023_x86_64_STANDARD"
    labels = {"bioinfra.io/pool": name, "bioinfra.io/capacity": "spot" if pool.spot else "on-demand"}
    # GPU nodes repel every pod that does not ask for a GPU (the NVIDIA device plugin's convention).
    taints = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}] if gpus else []
    tags = {"k8s.io/cluster-autoscaler/enabled": "true", f"k8s.io/cluster-autoscaler/{cluster}": "owned"}
    for key, value in labels.items():
        tags[f"k8s.io/cluster-autoscaler/node-template/label/{key}"] = value
    for taint in taints:
        tags[f"k8s.io/cluster-autoscaler/node-template/taint/{taint['key']}"] = f"{taint['value']}:NoSchedule"
    if gpus:
        tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] = str(gpus)
    capacity = "spot" if pool.spot else "on-demand"
    summary = f"{capacity} {', '.join(instance_types)}, {pool.min}-{pool.max} nodes"
    if gpus:
        summary += f", {gpus} GPU each, tainted nvidia.com/gpu"
    return {
        "name": name,
        "summary": summary,
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
