"""One module per target behind one small interface.

Each target answers the same questions (declared once here: `Target` for every target,
`CloudTarget` for those provisioned with Terraform stacks); adding a cloud means adding a module and
an entry in TARGETS. `local` runs pipelines with the executor in this package; the cluster targets
submit the same Workflow to Argo (core.cluster_run).

What a cloud owns is asked here, never decided elsewhere by its name (issue #18; the model is
SkyPilot's sky/clouds/cloud.py, one class per cloud with its credentials check and features): its
kubeconfig and status, its registry login, the object URLs its pods read in place, where a run's
results go, and `bioinfra doctor`'s checks of its credentials, cluster and images. A target whose
cluster bioinfra did not make takes the "not here" answers of targets.base.NoCloudCluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional, Protocol

from bioinfra.errors import InputError
from bioinfra.targets.aws import AwsTarget
from bioinfra.targets.base import ClusterKubeconfig, ClusterStatus, NoCloudCluster, RegistryPathTarget
from bioinfra.targets.gcp import GcpTarget
from bioinfra.targets.onprem import OnpremTarget

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    from bioinfra.config import Config
    from bioinfra.engine.inputs import RemoteInput
    from bioinfra.targets.base import Stack


# A `bioinfra doctor` step: (name, check(doctor) -> Check, the earlier steps it needs).
DoctorStep = tuple[str, Callable[[Any], Any], tuple[str, ...]]


class Target(Protocol):
    name: str
    runs_locally: bool  # pipelines run on this machine (the local executor), not on a cluster
    is_cloud: bool  # bioinfra makes the cluster in a cloud account: kubeconfig, status, a results bucket, a bill
    pool_preferred: bool  # Workflows only prefer a node pool: the cluster's nodes may carry no pool label
    remote_schemes: tuple[str, ...]  # URL schemes whose objects its pods read in place ("s3" on aws, "gs" on gcp)
    workload_identity_annotation: Optional[str]  # the service-account annotation binding pods to cloud IAM
    cluster_elsewhere: str  # where the cluster's access comes from when bioinfra did not make it ("" for a cloud)
    sample_config: dict[str, Any]  # a minimal valid config of this target (lint renders every mode with it)

    def registry(self, config: Config) -> str:
        """Where this target's tool images live (<host>/<path>, no tag)."""
        ...

    def serves(self, config: Config, ref: str) -> bool:
        """Whether an image reference lives in this target's registry (so its pods can pull it)."""
        ...

    def registry_login(self, config: Config, names: list[str], *, endpoint_url: Optional[str] = None) -> tuple[str, Any]:
        """(registry path, login) to push the named images to the cloud's registry (InputError: none)."""
        ...

    def cluster_kubeconfig(self, config: Config, session: Any, auth: str) -> ClusterKubeconfig:
        """A one-cluster kubeconfig for the cluster bioinfra made (auth auto | plugin | token): the one
        place it is built, for `bioinfra kubeconfig` and for destroy's clean-up alike."""
        ...

    def kubeconfig_path(self, config: Config, default: Path) -> tuple[Path, Optional[str]]:
        """The kubeconfig and context runs reach the cluster with (`default`: the file `bioinfra
        kubeconfig` writes beside the state)."""
        ...

    def status(self, config: Config) -> ClusterStatus:
        """The cluster and its node pools as the cloud reports them now."""
        ...

    def check_remote(self, config: Config, ref: RemoteInput, flag: str) -> None:
        """That an input URL of one of remote_schemes exists and this machine can read it (InputError if not)."""
        ...

    def results_location(self, config: Config, run_id: str, *, offline: bool = False) -> tuple[str, str]:
        """(rclone destination of the stage-out step, the URL users see) of a run's results; `offline`
        (render, --dry-run): without asking the cloud anything."""
        ...

    def place(self, config: Config) -> str:
        """Where the target's resources are, in words (a region; onprem: the kubeconfig's context)."""
        ...

    def cluster_source(self, config: Config) -> str:
        """Which cluster runs reach, in words (a dry run's "cluster" line)."""
        ...

    def kubernetes_support(self, config: Config, today: Optional[date] = None) -> Any:
        """The support phase of the cluster's Kubernetes version on the cloud's calendar (EKS), or None."""
        ...

    def location_problems(self, project: Any, region: Any) -> list[str]:
        """What this target needs of the config's project and region, from the raw values (config.py asks)."""
        ...

    def config_problems(self, config: Config) -> list[str]:
        """What else this target needs of a config (machine types, state backend, ...): config.py asks."""
        ...

    def bucket_name_problem(self, name: str) -> Optional[str]:
        """Why `name` cannot be this cloud's bucket (S3's or GCS's naming rules), or None."""
        ...

    def doctor_checks(self) -> list[DoctorStep]:
        """`bioinfra doctor`'s checks this target owns (credentials, cluster, cluster access, kubeconfig,
        quota, node pools, tool images ...), placed by name among the generic ones (core.doctor.steps_for)."""
        ...


class CloudTarget(Target, Protocol):
    """A target whose infrastructure is Terraform stacks (core.provision walks them)."""

    stacks: tuple[Stack, ...]  # declared once: `up` walks it forward, `destroy` backward
    placeholder_outputs: dict[str, dict[str, Any]]  # upstream outputs a stack reads, with plan-only stand-ins
    label: str  # the tag/label key every resource carries with the cluster name (what the sweep finds)

    def stack_variables(self, config: Config, stack: Stack) -> dict[str, Any]:
        """What the stack's root template reads: structure decided by code (backend kind, which pools,
        fixed names), never a config value (issue #15)."""
        ...

    def stack_values(self, config: Config, stack: Stack) -> dict[str, Any]:
        """The stack's Terraform variables, written as JSON to <stack>/bioinfra.auto.tfvars.json: every
        value that comes from the config, so Terraform reads it as data and never as HCL."""
        ...

    def backend_config(self, config: Config, stack: Stack) -> Optional[dict[str, Any]]:
        """The remote backend's settings (JSON file for `terraform init -backend-config=`), or None."""
        ...

    def terraform_env(self, config: Config) -> dict[str, str]:
        """Extra environment for Terraform."""
        ...

    def open_session(self, config: Config) -> Any:
        """The cloud SDK session the hooks and the sweep use."""
        ...

    def results_bucket(self, config: Config, session: Any = None) -> str:
        """The results bucket's name: buckets.results, else config.results_bucket(<account or project
        id>), the one rule every reader of the name goes through (issue #18.6)."""
        ...

    def preflight(self, config: Config, session: Any, *, destroying: bool = False) -> str:
        """Checks before any Terraform call; raises with every problem; returns "account/project, region"."""
        ...

    def adopt_kept(self, config: Config, stack: Stack, tf: Any, session: Any, say: Callable[[str], None]) -> None:
        """Before planning `up`: take back a results bucket an earlier `destroy` kept."""
        ...

    def before_destroy(self, config: Config, stack: Stack, tf: Any, session: Any, *,
                       force_empty_buckets: bool, say: Callable[[str], None]) -> None:
        """Before a stack's destroy: whatever would make Terraform refuse or lose data."""
        ...

    def destroy_plan_args(self, config: Config, stack: Stack) -> list[str]:
        """Extra arguments of the stack's `plan -destroy`."""
        ...

    def skip_reason(self, config: Config, stack: Stack) -> Optional[str]:
        """Why this environment cannot have the stack (None: walk it)."""
        ...

    def find_leftovers(self, config: Config, session: Any) -> list[Any]:
        """Everything in the account/project that belongs to the cluster, by tag, label or name: each
        with .kind, .id, .stack, .detail and .kept_on (the date an earlier destroy kept it, or "")."""
        ...

    def delete_leftovers(self, config: Config, session: Any, leftovers: list[Any], *, force_empty_buckets: bool,
                         say: Callable[[str], None], stack: Optional[str] = None) -> Any:
        """Delete them in dependency order; returns a result with .kept and .failed."""
        ...


class LocalTarget(NoCloudCluster, RegistryPathTarget):
    name = "local"
    runs_locally = True
    cluster_elsewhere = "target local runs on this machine without Kubernetes: there is no cluster to reach"
    sample_config: dict[str, Any] = {}

    def doctor_checks(self) -> list[DoctorStep]:
        return []  # core.doctor's checks of this machine (Docker or the native tools, the workspace)

    def registry(self, config: Config) -> str:
        # 127.0.0.1, not localhost: `up local --registry` listens on IPv4 loopback only.
        return config.registry.url or "127.0.0.1:5000/bioinfra"


TARGETS: dict[str, Target] = {t.name: t for t in (LocalTarget(), OnpremTarget(), GcpTarget(), AwsTarget())}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise InputError(f"unknown target '{name}'; choose one of: {', '.join(TARGETS)}") from None
