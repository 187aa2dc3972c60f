"""What the gcp target answers about the GKE cluster it made, once it is there: its kubeconfig, its
status, the registry login, the gs:// inputs a run reads in place, and `bioinfra doctor`'s gcp checks.

Mixed into GcpTarget (targets/gcp.py, which owns the stacks and their hooks). Core code asks these
through the target interface (targets.Target); it never compares a target's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from bioinfra.errors import InputError
from bioinfra.targets.base import (
    Check,
    CloudCluster,
    ClusterKubeconfig,
    ClusterStatus,
    PoolStatus,
    failed,
    passed,
    warning,
)

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    from bioinfra.config import Config
    from bioinfra.engine.inputs import RemoteInput


class GcpCluster(CloudCluster):
    remote_schemes: tuple[str, ...] = ("gs",)
    # Ref https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity
    sample_config: dict[str, Any] = {"target": "gcp", "name": "lint", "project": "lint-project",
                                     "region": "europe-west2"}
    workload_identity_annotation: Optional[str] = "iam.gke.io/gcp-service-account"

    def open_session(self, config: Config) -> Any:
        raise NotImplementedError  # GcpTarget's

    def cluster_kubeconfig(self, config: Config, session: Any, auth: str) -> ClusterKubeconfig:
        """auth "plugin": kubectl runs gke-gcloud-auth-plugin; "token": a google-auth access token stored
        in the file (about an hour)."""
        from bioinfra.adaptors.gcp import _kubeconfig_entries, access_token, cluster_info, context_name, resolve_auth

        info = cluster_info(session, config.name, sizes=False)
        mode = resolve_auth(auth)
        token = access_token(session.credentials) if mode == "token" else None
        entries = _kubeconfig_entries(info, str(config.project), mode, token)
        expires = getattr(session.credentials, "expiry", None) if mode == "token" else None
        return ClusterKubeconfig(entries, context_name(str(config.project), info.location, info.name), mode, expires,
                                 plugin="gke-gcloud-auth-plugin", lifetime="about 1 hour")

    def location_problems(self, project: Any, region: Any) -> list[str]:
        from bioinfra.config import gcp_location_problems

        return gcp_location_problems(project, region)

    def config_problems(self, config: Config) -> list[str]:
        from bioinfra.config import gcp_config_problems

        return gcp_config_problems(config)

    def bucket_name_problem(self, name: str) -> Optional[str]:
        from bioinfra.config import gcs_bucket_problem

        return gcs_bucket_problem(name)

    def kubernetes_support(self, config: Config, today: Optional[date] = None) -> Any:
        return None  # GKE's release channels upgrade the cluster; no extended-support fee to warn of

    def kubeconfig_path(self, config: Config, default: Path) -> tuple[Path, Optional[str]]:
        return default, None

    def status(self, config: Config) -> ClusterStatus:
        from bioinfra.adaptors.gcp import cluster_info

        info = cluster_info(self.open_session(config), config.name)
        pools = [PoolStatus(p.name, p.status, p.machine_type, p.spot, p.min_nodes, p.max_nodes, p.node_count,
                            list(p.accelerators), list(p.taints)) for p in info.node_pools]
        return ClusterStatus("gcp", info.name, info.location, config.project or "", info.status, info.endpoint,
                             info.version, pools, info.status_message)

    def registry_login(self, config: Config, names: list[str], *, endpoint_url: Optional[str] = None) -> tuple[str, Any]:
        """REGION-docker.pkg.dev/PROJECT/NAME with an OAuth token (the repository itself is made by the
        gcp stack, issue #5)."""
        from bioinfra.adaptors import registries

        login = registries.artifact_registry_login(config.region)
        return f"{login.registry}/{config.project}/{config.name}", login

    def check_remote(self, config: Config, ref: RemoteInput, flag: str) -> None:
        from google.cloud import storage  # type: ignore[attr-defined]

        blob = storage.Client(project=config.project).bucket(ref.bucket).get_blob(ref.key)
        if blob is None:
            raise InputError(f"{flag} {ref.url}: no such object",
                             hint="check the URL; the workflow's service account must be allowed to read it too")

    def results_location(self, config: Config, run_id: str, *, offline: bool = False) -> tuple[str, str]:
        bucket = self.results_bucket(config)  # type: ignore[attr-defined]
        return (f":gcs,env_auth=true,bucket_policy_only=true:{bucket}/runs/{run_id}",
                f"gs://{bucket}/runs/{run_id}/")

    def check_credentials(self, d: Any) -> Check:
        d.session = self.open_session(d.config)
        how = "anonymous, for the stand-in endpoint " + d.session.endpoint_url if d.session.endpoint_url \
            else "Application Default Credentials"
        return passed(f"{how}; project {d.config.project}, region {d.config.region}")

    def check_images(self, d: Any) -> Check:
        """No Artifact Registry image lookup exists yet; say how to look, do not pretend."""
        registry = self.registry(d.config).rstrip("/")  # type: ignore[attr-defined]
        return warning(f"not checked: bioinfra cannot list Artifact Registry images yet ({registry})",
                       f"gcloud artifacts docker images list {registry} --include-tags")

    def doctor_checks(self) -> list[tuple[str, Any, tuple[str, ...]]]:
        return [("credentials", self.check_credentials, ()),
                ("cluster", check_cluster, ("credentials",)),
                ("tool images", self.check_images, ()),
                ("vCPU quotas", check_quotas, ("credentials",))]


def check_quotas(d: Any) -> Check:
    """The Compute Engine vCPU quotas fit every pool at its max, as the preflight reads them (#18.9)."""
    from bioinfra.adaptors.gcp_quotas import doctor_check

    return doctor_check(d)


def check_cluster(d: Any) -> Check:
    from bioinfra.adaptors.gcp import cluster_info

    info = cluster_info(d.session, d.config.name, sizes=False)
    if info.status != "RUNNING":
        return failed(f"cluster {info.name} is {info.status} (not RUNNING)",
                      f"wait and check `bioinfra status {d.target}`; if it stays so: `bioinfra up {d.target}` "
                      "creates it")
    return passed(f"cluster {info.name} in {info.location}: {info.status}, Kubernetes {info.version}")
