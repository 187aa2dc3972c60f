"""The Google Cloud client libraries for target gcp: session, preflight, cluster facts, kubeconfig.

The only module (with gcp_sweep) that imports google-cloud-*, always lazily (the gcp extra). Every
client speaks REST; with an endpoint configured ($BIOINFRA_GCP_ENDPOINT_URL or gcp.endpoint_url)
every call goes there with anonymous credentials, so a local stand-in of the Google APIs sees
exactly what Google would (tests/fakes/google_api.py). Google's API errors become PreflightError
with Google's own message, never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

from bioinfra.errors import InputError, PreflightError, ToolMissingError

if TYPE_CHECKING:
    from bioinfra.config import Config

ENDPOINT_ENV = "BIOINFRA_GCP_ENDPOINT_URL"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]

# Every service `up gcp` calls, Terraform's and bioinfra's. file.googleapis.com in every case: the workspace
# is a Filestore instance, ours (gcp.filestore) or the one the GKE Filestore CSI driver creates per volume.
REQUIRED_APIS = (
    "compute.googleapis.com", "container.googleapis.com", "storage.googleapis.com",
    "artifactregistry.googleapis.com", "iam.googleapis.com", "file.googleapis.com",
    "cloudresourcemanager.googleapis.com", "serviceusage.googleapis.com",
)

# Regional quota metric of each accelerator type; spot/preemptible GPUs have a PREEMPTIBLE_ twin.
# Ref https://cloud.google.com/compute/resource-usage#gpu_quota (and compute_v1.Quota.Metric)
GPU_QUOTA_METRICS = {
    "nvidia-tesla-t4": "NVIDIA_T4_GPUS",
    "nvidia-tesla-t4-vws": "NVIDIA_T4_VWS_GPUS",
    "nvidia-l4": "NVIDIA_L4_GPUS",
    "nvidia-l4-vws": "NVIDIA_L4_VWS_GPUS",
    "nvidia-tesla-a100": "NVIDIA_A100_GPUS",
    "nvidia-a100-80gb": "NVIDIA_A100_80GB_GPUS",
    "nvidia-h100-80gb": "NVIDIA_H100_GPUS",
    "nvidia-h100-mega-80gb": "NVIDIA_H100_MEGA_GPUS",
    "nvidia-tesla-v100": "NVIDIA_V100_GPUS",
    "nvidia-tesla-p100": "NVIDIA_P100_GPUS",
    "nvidia-tesla-p100-vws": "NVIDIA_P100_VWS_GPUS",
    "nvidia-tesla-p4": "NVIDIA_P4_GPUS",
    "nvidia-tesla-p4-vws": "NVIDIA_P4_VWS_GPUS",
}
GPU_QUOTA_ALL_REGIONS = "GPUS_ALL_REGIONS"

PLUGIN = "gke-gcloud-auth-plugin"
# What gcloud writes for a GKE user since Kubernetes 1.26.
# Ref https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin
PLUGIN_INSTALL_HINT = (
    "Install gke-gcloud-auth-plugin for use with kubectl by following "
    "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin "
    "(e.g. `gcloud components install gke-gcloud-auth-plugin`), or run `bioinfra kubeconfig gcp --auth token`"
)


GOOGLE_MODULES = ("google.auth", "google.cloud.compute_v1", "google.cloud.container_v1",
                  "google.cloud.resourcemanager_v3", "google.cloud.service_usage_v1")


def google_modules() -> None:
    """Fail with the extra to install when a Google client library is missing. Looked up, not
    imported: compute_v1 alone takes over a second to import, so each is imported where used."""
    import importlib.util

    for name in GOOGLE_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            raise ToolMissingError(f"the Google Cloud client libraries are not installed (no {name})",
                                   hint="pip install 'bioinfra[gcp]'")


def endpoint_url(config: Config) -> Optional[str]:
    """The stand-in endpoint, if any: $BIOINFRA_GCP_ENDPOINT_URL, then gcp.endpoint_url."""
    return (os.environ.get(ENDPOINT_ENV) or config.gcp.endpoint_url or "").rstrip("/") or None


def required_apis() -> list[str]:
    return list(REQUIRED_APIS)


# -- session --------------------------------------------------------------------------------------


@dataclass
class GcpSession:
    """Credentials and lazily built clients for one project and region (all REST)."""

    project: str
    region: str
    endpoint_url: Optional[str]
    credentials: Any  # google.auth.credentials.Credentials
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def _options(self) -> Optional[dict[str, str]]:
        return {"api_endpoint": self.endpoint_url} if self.endpoint_url else None

    def _cached(self, key: str, make: Any) -> Any:
        if key not in self._clients:
            self._clients[key] = make()
        return self._clients[key]

    def _rest(self, cls: Any) -> Any:
        return cls(credentials=self.credentials, transport="rest", client_options=self._options())

    def container(self) -> Any:
        """google.cloud.container_v1.ClusterManagerClient"""
        from google.cloud import container_v1

        return self._cached("container", lambda: self._rest(container_v1.ClusterManagerClient))

    def compute(self, kind: str) -> Any:
        """Any google.cloud.compute_v1 client by kind: "Firewalls", "Subnetworks", "RegionOperations" ..."""
        from google.cloud import compute_v1

        name = kind if kind.endswith("Client") else f"{kind}Client"
        cls = getattr(compute_v1, name, None)
        if cls is None:
            raise ValueError(f"google.cloud.compute_v1 has no {name}")

        def make() -> Any:
            client = self._rest(cls)
            if self.endpoint_url:
                # A compute change returns an ExtendedOperation whose polling goes through an operations
                # client the transport builds itself *without* our client_options (so to the real
                # compute.googleapis.com). Hand it operations clients bound to the same endpoint.
                ops = getattr(client._transport, "_extended_operations_services", None)
                if isinstance(ops, dict):
                    ops.update(global_operations=self._rest(compute_v1.GlobalOperationsClient),
                               region_operations=self._rest(compute_v1.RegionOperationsClient),
                               zone_operations=self._rest(compute_v1.ZoneOperationsClient))
            return client

        return self._cached(f"compute.{name}", make)

    def regions(self) -> Any:
        return self.compute("Regions")

    def zones(self) -> Any:
        return self.compute("Zones")

    def accelerator_types(self) -> Any:
        return self.compute("AcceleratorTypes")

    def services(self) -> Any:
        """google.cloud.service_usage_v1.ServiceUsageClient"""
        from google.cloud import service_usage_v1

        return self._cached("services", lambda: self._rest(service_usage_v1.ServiceUsageClient))

    def projects(self) -> Any:
        """google.cloud.resourcemanager_v3.ProjectsClient"""
        from google.cloud import resourcemanager_v3

        return self._cached("projects", lambda: self._rest(resourcemanager_v3.ProjectsClient))

    def filestore(self) -> Any:
        """google.cloud.filestore_v1.CloudFilestoreManagerClient (its LROs poll the same endpoint)."""
        try:
            from google.cloud import filestore_v1
        except ImportError:
            raise ToolMissingError("google-cloud-filestore is not installed", hint="pip install 'bioinfra[gcp]'") from None
        return self._cached("filestore", lambda: self._rest(filestore_v1.CloudFilestoreManagerClient))

    def artifact_registry(self) -> Any:
        """google.cloud.artifactregistry_v1.ArtifactRegistryClient"""
        try:
            from google.cloud import artifactregistry_v1
        except ImportError:
            raise ToolMissingError("google-cloud-artifact-registry is not installed",
                                   hint="pip install 'bioinfra[gcp]'") from None
        return self._cached("artifact_registry", lambda: self._rest(artifactregistry_v1.ArtifactRegistryClient))

    def iam_http(self) -> tuple[Any, str]:
        """(an authorized requests session, base URL) for IAM's REST API (v1 paths go after the base)."""
        from google.auth.transport.requests import AuthorizedSession

        http = self._cached("iam_http", lambda: AuthorizedSession(self.credentials))
        return http, self.endpoint_url or "https://iam.googleapis.com"

    def storage(self) -> Any:
        """google.cloud.storage.Client. $STORAGE_EMULATOR_HOST (read by the library itself) wins:
        then anonymous credentials; else with an endpoint, that endpoint; else Google."""
        try:
            from google.cloud import storage
        except ImportError:
            raise ToolMissingError("google-cloud-storage is not installed", hint="pip install 'bioinfra[gcp]'") from None

        def make() -> Any:
            if os.environ.get("STORAGE_EMULATOR_HOST"):
                from google.auth.credentials import AnonymousCredentials

                return storage.Client(project=self.project, credentials=AnonymousCredentials())
            return storage.Client(project=self.project, credentials=self.credentials, client_options=self._options())

        return self._cached("storage", make)


def open_session(project: str, region: str, endpoint_url: Optional[str]) -> GcpSession:
    """Credentials for the project: anonymous with an endpoint stand-in, else Application Default Credentials."""
    google_modules()
    import google.auth
    import google.auth.exceptions
    from google.auth.credentials import AnonymousCredentials

    if endpoint_url:
        return GcpSession(project, region, endpoint_url.rstrip("/"), AnonymousCredentials())
    try:
        credentials, _ = google.auth.default(scopes=SCOPES)
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise PreflightError(
            "no Google credentials found",
            problems=[f"Application Default Credentials: {exc}"],
            hint="run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS to a key file)",
        ) from None
    return GcpSession(project, region, None, credentials)


@contextmanager
def google_errors(session: GcpSession, what: str) -> Iterator[None]:
    """Google's errors as PreflightError naming what was being done, with Google's message."""
    import google.auth.exceptions
    import requests
    from google.api_core import exceptions as gexc

    try:
        yield
    except gexc.GoogleAPICallError as exc:
        code = f" (HTTP {exc.code})" if isinstance(exc.code, int) else ""
        raise PreflightError(f"{what}: {google_message(exc)}{code}",
                             hint=_hint_for(exc, session)) from None
    except gexc.RetryError as exc:
        raise PreflightError(f"{what}: Google did not answer in time ({exc.cause or exc})",
                             hint="try again; check your network") from None
    except google.auth.exceptions.GoogleAuthError as exc:
        raise PreflightError(f"{what}: the Google credentials were refused: {exc}",
                             hint="run `gcloud auth application-default login` and try again") from None
    except requests.exceptions.ConnectionError:
        where = f"the endpoint {session.endpoint_url} ({ENDPOINT_ENV} / gcp.endpoint_url)" \
            if session.endpoint_url else "Google's APIs"
        raise PreflightError(f"{what}: cannot reach {where}",
                             hint="check the network (or that the stand-in is running)") from None


def google_message(exc: Any) -> str:
    """Google's own error message (api_core prefixes it with the method and the whole URL)."""
    try:
        message = exc.response.json()["error"]["message"]
        if isinstance(message, str) and message:
            return message
    except Exception:  # noqa: BLE001 - no JSON body: fall back to what api_core kept
        pass
    return str(getattr(exc, "message", "") or exc)


def _hint_for(exc: Any, session: GcpSession) -> str:
    if getattr(exc, "reason", None) == "SERVICE_DISABLED":
        return "enable the API named above (`gcloud services enable NAME --project PROJECT`), wait a minute, retry"
    if getattr(exc, "code", None) in (401, 403):
        return (f"check that your account may use project {session.project} "
                f"(`gcloud projects get-iam-policy {session.project}`) and `gcloud auth application-default login`")
    return "set BIOINFRA_DEBUG=1 for details"


# -- preflight ------------------------------------------------------------------------------------


@dataclass
class GpuNeed:
    """What the GPU pool may use at most: per_node accelerators on each of max_nodes nodes."""

    accelerator_type: str  # e.g. nvidia-tesla-t4
    per_node: int
    max_nodes: int
    spot: bool = False
    zones: Optional[list[str]] = None  # the node zones (gcp.zones); None: every zone of the region

    @property
    def total(self) -> int:
        return self.per_node * self.max_nodes


def quota_metric(accelerator_type: str, spot: bool = False) -> str:
    """The regional quota metric of an accelerator type (PREEMPTIBLE_... for spot), from the table; an
    unlisted type gets the name Google's scheme would give it (checked only if the region lists it)."""
    base = GPU_QUOTA_METRICS.get(accelerator_type)
    if base is None:
        stem = accelerator_type.removeprefix("nvidia-").removeprefix("tesla-").replace("-", "_").upper()
        base = f"NVIDIA_{stem}_GPUS"
    return f"PREEMPTIBLE_{base}" if spot else base


def preflight(session: GcpSession, *, apis: list[str], gpu: Optional[GpuNeed] = None) -> list[str]:
    """Every reason `up` would fail in this project and region, one line each with the fix; [] if ready.

    Checks, in order: the project exists and is reachable; the APIs are enabled; the region exists;
    the GPU type is offered in the node zones; the GPU quota covers the pool at its largest. Checks
    that cannot run because of an earlier problem (no project, compute API off) are skipped.
    """
    return _preflight(session, apis=apis, gpu=gpu)[0]


def _preflight(session: GcpSession, *, apis: list[str], gpu: Optional[GpuNeed],
               more: Sequence[Callable[[Any], list[str]]] = ()) -> tuple[list[str], list[str]]:
    """(problems, the zones the GPU pool's nodes go in: [] without a GPU pool or when it cannot have any).
    `more`: the target's own checks, each given the region (compute Region), run once the project, the
    compute API and the region are known to be there."""
    from google.api_core import exceptions as gexc

    project, region = session.project, session.region
    problems: list[str] = []
    with google_errors(session, f"checking project {project}"):
        try:
            found = session.projects().get_project(name=f"projects/{project}")
        except (gexc.NotFound, gexc.Forbidden) as exc:
            if getattr(exc, "reason", None) == "SERVICE_DISABLED":
                raise
            return [f"project '{project}': not found or no access — check `project:` in bioinfra.yaml; "
                    f"`gcloud projects describe {project}`"], []
    state = found.state.name if hasattr(found.state, "name") else str(found.state)
    if state != "ACTIVE":
        problems.append(f"project '{project}' is {state}, not ACTIVE — `gcloud projects describe {project}`"
                        + (f"; `gcloud projects undelete {project}`" if state == "DELETE_REQUESTED" else ""))

    disabled = disabled_apis(session, apis)
    if disabled:
        line = (f"APIs not enabled in project '{project}': {', '.join(disabled)} — "
                f"`gcloud services enable {' '.join(disabled)} --project {project}`")
        if "compute.googleapis.com" in disabled:
            line += " (region and GPU checks need compute.googleapis.com: re-run after enabling it)"
        problems.append(line)
        if "compute.googleapis.com" in disabled:
            return problems, []

    with google_errors(session, f"reading region {region} of project {project}"):
        try:
            region_info = session.regions().get(project=project, region=region)
        except gexc.NotFound:
            problems.append(f"region '{region}': not found in project '{project}' — check `region:` in "
                            f"bioinfra.yaml; `gcloud compute regions list --project {project}`")
            return problems, []
    if region_info.status and region_info.status != "UP":
        problems.append(f"region '{region}' is {region_info.status} — pick another `region:`; "
                        f"`gcloud compute regions describe {region} --project {project}`")
    zones: list[str] = []
    if gpu is not None:
        gpu_problems, zones = _gpu_problems(session, region_info, gpu)
        problems += gpu_problems
    for check in more:
        problems += check(region_info)
    return problems, zones


def check_ready(session: GcpSession, *, apis: list[str], gpu: Optional[GpuNeed] = None,
                more: Sequence[Callable[[Any], list[str]]] = ()) -> list[str]:
    """preflight(), raising PreflightError (exit 12) with every problem; nothing has been created yet.
    Returns the zones the GPU pool's nodes go in (`gpu.zones` when given, else every zone of the region
    that offers the type; [] without `gpu`), for the pool's node_locations."""
    problems, zones = _preflight(session, apis=apis, gpu=gpu, more=more)
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise PreflightError(
            f"GCP project '{session.project}' (region {session.region}) is not ready for `bioinfra up gcp` ({count})",
            problems=problems,
            hint="run the command on each line, then `bioinfra up gcp` again; nothing was created",
        )
    return zones


def disabled_apis(session: GcpSession, apis: list[str]) -> list[str]:
    """The APIs of `apis` not ENABLED in the project (Service Usage batchGet, 30 names a call)."""
    project = session.project
    states: dict[str, str] = {}
    with google_errors(session, f"reading the enabled APIs of project {project}"):
        for start in range(0, len(apis), 30):
            names = [f"projects/{project}/services/{api}" for api in apis[start:start + 30]]
            answer = session.services().batch_get_services(request={"parent": f"projects/{project}", "names": names})
            for service in answer.services:
                api = service.config.name or service.name.rsplit("/", 1)[-1]
                states[api] = service.state.name
    return [api for api in apis if states.get(api) != "ENABLED"]


def gpu_zones(session: GcpSession, accelerator_type: str) -> list[str]:
    """Every zone (any region) that offers the accelerator type: one aggregated list, filtered by name."""
    zones = []
    with google_errors(session, f"listing the zones that offer {accelerator_type}"):
        pages = session.accelerator_types().aggregated_list(request={
            "project": session.project, "filter": f'name = "{accelerator_type}"'})
        for scope, scoped in pages:
            if any(a.name == accelerator_type for a in scoped.accelerator_types):
                zones.append(scope.removeprefix("zones/"))
    return sorted(zones)


def _gpu_problems(session: GcpSession, region_info: Any, need: GpuNeed) -> tuple[list[str], list[str]]:
    """(problems, zones for the GPU pool). A regional pool without node_locations takes every node zone
    of the cluster, and GKE refuses an accelerator that one of them does not offer: so the pool goes in
    `need.zones` (each checked to offer it) or, without them, in the region's zones that offer it; none
    is a problem now, before any stack is applied, not a failed node pool after the network and the
    cluster were made. Ref https://cloud.google.com/kubernetes-engine/docs/how-to/gpus (GPU availability
    by zone) and https://cloud.google.com/compute/docs/gpus/gpu-regions-zones"""
    project, region, kind = session.project, session.region, need.accelerator_type
    problems = []
    region_zones = [z.rsplit("/", 1)[-1] for z in region_info.zones]
    offered = gpu_zones(session, kind)
    in_region = [z for z in region_zones if z in offered]
    listing = f'`gcloud compute accelerator-types list --filter="name={kind}" --project {project}`'
    if need.zones:
        outside = [z for z in need.zones if z not in region_zones]
        if outside:
            problems.append(f"gcp.zones: {', '.join(outside)} not in region {region} (its zones: "
                            f"{', '.join(region_zones)}) — fix `gcp.zones` in bioinfra.yaml")
        lacking = [z for z in need.zones if z in region_zones and z not in offered]
        if lacking:
            where = f"it is offered in {', '.join(in_region)}" if in_region else f"no zone of {region} offers it"
            problems.append(f"GPU {kind}: not offered in zone(s) {', '.join(lacking)} of gcp.zones ({where}) — "
                            f"choose gcp.zones that offer it; {listing}")
    elif not in_region:
        elsewhere = "no zone anywhere offers it: check node_pools.gpu.gpu.type" if not offered else \
            f"offered in other regions, e.g. {', '.join(offered[:3])}"
        problems.append(f"GPU {kind}: not offered in any zone of region {region} ({elsewhere}) — "
                        f"change `region:` or the GPU type (node_pools.gpu.gpu.type); {listing}")
    zones = list(need.zones) if need.zones else in_region

    quotas = {q.metric: (q.limit, q.usage) for q in region_info.quotas}
    metric = quota_metric(kind, need.spot)
    if need.spot and quotas.get(metric, (0, 0))[0] <= 0:
        # Spot GPUs use the PREEMPTIBLE_ quota when the project has some, else the standard one.
        # Ref https://cloud.google.com/compute/docs/gpus/about-gpus (GPUs on Spot VMs)
        metric = quota_metric(kind, spot=False)
    if metric not in quotas and kind not in GPU_QUOTA_METRICS:
        return problems, zones  # a type outside our table whose metric the region does not list: cannot check
    limit, usage = quotas.get(metric, (0.0, 0.0))
    if limit - usage < need.total:
        problems.append(
            f"GPU quota in {region}: {metric} is {limit:g} with {usage:g} in use ({limit - usage:g} free), but "
            f"node_pools.gpu may need {need.per_node} × {need.max_nodes} nodes = {need.total} — request more at "
            f"https://console.cloud.google.com/iam-admin/quotas?project={project} (metric {metric}, region "
            f"{region}) or lower node_pools.gpu.max; current values: "
            f"`gcloud compute regions describe {region} --project {project}`")
    if not need.spot:
        problems += _all_regions_quota(session, need)
    return problems, zones


def _all_regions_quota(session: GcpSession, need: GpuNeed) -> list[str]:
    """GPUS_ALL_REGIONS caps on-demand GPUs project-wide (0 on many new projects)."""
    project = session.project
    with google_errors(session, f"reading the project-wide quotas of {project}"):
        info = session.compute("Projects").get(project=project)
    quotas = {q.metric: (q.limit, q.usage) for q in info.quotas}
    if GPU_QUOTA_ALL_REGIONS not in quotas:
        return []
    limit, usage = quotas[GPU_QUOTA_ALL_REGIONS]
    if limit - usage >= need.total:
        return []
    return [f"GPU quota of project '{project}': {GPU_QUOTA_ALL_REGIONS} is {limit:g} with {usage:g} in use "
            f"({limit - usage:g} free), but node_pools.gpu may need {need.total} — request more at "
            f"https://console.cloud.google.com/iam-admin/quotas?project={project} (metric {GPU_QUOTA_ALL_REGIONS}); "
            f"current values: `gcloud compute project-info describe --project {project}`"]


# -- the cluster ----------------------------------------------------------------------------------


@dataclass
class NodePoolInfo:
    name: str
    status: str
    machine_type: str
    spot: bool
    min_nodes: Optional[int]  # autoscaler bounds over all zones; None when not autoscaled
    max_nodes: Optional[int]
    node_count: Optional[int]  # current target size of the pool's instance groups; None if unknown
    accelerators: list[str]  # e.g. ["2× nvidia-tesla-t4"] (per node)
    taints: list[str]  # kubectl form: key=value:NoSchedule


@dataclass
class ClusterInfo:
    name: str
    location: str
    status: str
    endpoint: str
    ca_certificate: str  # base64 PEM, as GKE returns it
    version: str
    node_pools: list[NodePoolInfo]
    status_message: str = ""


def cluster_path(project: str, location: str, name: str) -> str:
    return f"projects/{project}/locations/{location}/clusters/{name}"


def cluster_info(session: GcpSession, name: str, *, sizes: bool = True) -> ClusterInfo:
    """The cluster `name` in the session's project and region (GKE get_cluster); with `sizes`, each
    pool's current node count from its instance groups (compute API: one call per zone)."""
    from google.api_core import exceptions as gexc

    project, region = session.project, session.region
    with google_errors(session, f"reading cluster {name}"):
        try:
            cluster = session.container().get_cluster(name=cluster_path(project, region, name))
        except gexc.NotFound:
            raise PreflightError(f"no cluster '{name}' in project {project}, region {region}",
                                 hint="`bioinfra up gcp` creates it") from None
    pools = [_pool_info(session, pool, sizes) for pool in cluster.node_pools]
    return ClusterInfo(
        name=cluster.name, location=cluster.location or region, status=cluster.status.name,
        endpoint=cluster.endpoint, ca_certificate=cluster.master_auth.cluster_ca_certificate,
        version=cluster.current_master_version, node_pools=pools, status_message=cluster.status_message,
    )


def _pool_info(session: GcpSession, pool: Any, sizes: bool) -> NodePoolInfo:
    from bioinfra.adaptors.kubeconfig import taint

    config, scaling = pool.config, pool.autoscaling
    zones = max(len(pool.locations), 1)
    low = high = None
    if scaling.enabled:
        if scaling.total_max_node_count:
            low, high = scaling.total_min_node_count, scaling.total_max_node_count
        else:  # per-zone bounds
            low, high = scaling.min_node_count * zones, scaling.max_node_count * zones
    return NodePoolInfo(
        name=pool.name, status=pool.status.name, machine_type=config.machine_type,
        spot=bool(config.spot or config.preemptible), min_nodes=low, max_nodes=high,
        node_count=_pool_size(session, list(pool.instance_group_urls)) if sizes else None,
        accelerators=[f"{a.accelerator_count}× {a.accelerator_type}" for a in config.accelerators],
        taints=[taint(t.key, t.value, t.effect.name) for t in config.taints],
    )


def _pool_size(session: GcpSession, urls: list[str]) -> Optional[int]:
    """Sum of the target sizes of the pool's (zonal) managed instance groups; None if any is unreadable."""
    from google.api_core import exceptions as gexc

    if not urls:
        return None
    total = 0
    for url in urls:
        parts = url.split("/")
        try:
            project = parts[parts.index("projects") + 1]
            zone = parts[parts.index("zones") + 1]
        except (ValueError, IndexError):
            return None
        try:
            group = session.compute("InstanceGroupManagers").get(
                project=project, zone=zone, instance_group_manager=parts[-1])
        except gexc.GoogleAPICallError:
            return None
        total += group.target_size
    return total


# -- kubeconfig -----------------------------------------------------------------------------------


def context_name(project: str, location: str, name: str) -> str:
    """What gcloud names the cluster, context and user: gke_PROJECT_LOCATION_NAME."""
    return f"gke_{project}_{location}_{name}"


def resolve_auth(auth: str) -> Literal["plugin", "token"]:
    """auto: the gke-gcloud-auth-plugin if it is on PATH, else a token from google-auth."""
    from bioinfra.adaptors import kubeconfig

    return kubeconfig.resolve_auth(auth, PLUGIN)


def access_token(credentials: Any) -> str:
    """A bearer token from google-auth credentials (refreshed when not valid). Never printed."""
    import google.auth.exceptions

    if credentials is None:
        raise PreflightError("no Google credentials to take a token from",
                             hint="run `gcloud auth application-default login`, or use --auth plugin")
    if not getattr(credentials, "valid", False):  # AnonymousCredentials are "valid" with no token
        import google.auth.transport.requests

        try:
            credentials.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.GoogleAuthError as exc:
            raise PreflightError(f"could not get an access token from google-auth: {exc}",
                                 hint="run `gcloud auth application-default login`, or use --auth plugin") from None
    token = getattr(credentials, "token", None)
    if not token:
        raise PreflightError(
            "the credentials in use carry no access token (anonymous credentials: a Google API endpoint stand-in "
            "is configured)",
            hint=f"use --auth plugin (needs {PLUGIN}), or unset {ENDPOINT_ENV} / gcp.endpoint_url to use your "
                 "Google credentials",
        )
    return token


def _kubeconfig_entries(info: ClusterInfo, project: str, auth: str, token: Optional[str]) -> dict[str, Any]:
    from bioinfra.adaptors import kubeconfig

    if not info.endpoint:
        raise PreflightError(f"cluster {info.name} has no endpoint yet (status {info.status})",
                             hint="wait until `bioinfra status gcp` shows RUNNING, then try again")
    if auth == "plugin":
        user: dict[str, Any] = {"exec": {
            "apiVersion": kubeconfig.EXEC_API_VERSION,
            "command": PLUGIN,
            "installHint": PLUGIN_INSTALL_HINT,
            "provideClusterInfo": True,
            "interactiveMode": "IfAvailable",
        }}
    elif auth == "token":
        if not token:
            raise PreflightError("no access token for --auth token", hint="use --auth plugin")
        user = {"token": token}
    else:
        raise InputError(f"kubeconfig auth must be plugin or token (got {auth!r})")
    return kubeconfig.single(context_name(project, info.location, info.name), f"https://{info.endpoint}",
                             info.ca_certificate, user)


def kubeconfig_yaml(info: ClusterInfo, project: str, *, auth: Literal["plugin", "token"],
                    token: Optional[str] = None) -> str:
    """A kubeconfig with one cluster, context and user, named like gcloud's (gke_PROJECT_LOCATION_NAME)."""
    import yaml

    return yaml.safe_dump(_kubeconfig_entries(info, project, auth, token), sort_keys=False)


def write_kubeconfig(path: Path, info: ClusterInfo, project: str, auth: str = "auto",
                     credentials: Any = None) -> Path:
    """Write (or merge into an existing kubeconfig at) `path`, 0600; returns the file written.

    auth "plugin": kubectl runs gke-gcloud-auth-plugin for a fresh token each time; "token": a
    google-auth access token is stored in the file (expires after about an hour); "auto": the plugin
    when it is on PATH, else a token.
    """
    from bioinfra.adaptors import kubeconfig

    mode = resolve_auth(auth)
    token = access_token(credentials) if mode == "token" else None
    return kubeconfig.write(path, _kubeconfig_entries(info, project, mode, token))
