"""bioinfra's Google client code (bioinfra.adaptors.gcp, `bioinfra kubeconfig|status gcp`) over real HTTP.

Stand-ins, named: Google's APIs are FakeGoogleApis (tests/fakes/google_api.py), our own in-memory
REST server on 127.0.0.1, NOT an emulator Google ships; GCS is gcp-storage-emulator. The real
google-cloud-container / -compute / -service-usage / -resource-manager / -storage libraries talk to
them with AnonymousCredentials, transport="rest" and api_endpoint on 127.0.0.1; nothing is mocked.
Assertions are on results and on the requests the stand-in received. What the stand-in does not
model (so is unexercised here): IAM decisions, real quotas and capacity, operations that take time
(they only report RUNNING for `operation_polls` reads), the gke-gcloud-auth-plugin itself.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from bioinfra.adaptors.gcp import (
    REQUIRED_APIS,
    GpuNeed,
    check_ready,
    cluster_info,
    open_session,
    preflight,
    required_apis,
    write_kubeconfig,
)
from bioinfra.errors import ExitCode, PreflightError
from tests.conftest import kubectl_view
from tests.fakes.google_api import FakeGoogleApis

PROJECT, REGION, NAME = "demo-project", "europe-west2", "demo"
CONTEXT = f"gke_{PROJECT}_{REGION}_{NAME}"
CLUSTER = f"/v1/projects/{PROJECT}/locations/{REGION}/clusters/{NAME}"
CA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCnN0YW5kLWluCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"
T4 = "nvidia-tesla-t4"
APIS = required_apis()


def ready_project(fake: FakeGoogleApis, quotas=None, gpu_in=("b", "c"), all_regions=None) -> None:
    """A project that passes preflight: every API on, region with zones a-c, T4s in zones b and c."""
    fake.add_project(PROJECT)
    fake.enable_services(PROJECT, list(REQUIRED_APIS))
    fake.add_region(PROJECT, REGION, ["a", "b", "c"],
                    quotas if quotas is not None else {"NVIDIA_T4_GPUS": (16, 0), "PREEMPTIBLE_NVIDIA_T4_GPUS": (16, 0)})
    for zone in gpu_in:
        fake.add_accelerator(PROJECT, f"{REGION}-{zone}", T4)
    fake.add_region(PROJECT, "us-central1", ["a"])
    fake.add_accelerator(PROJECT, "us-central1-a", T4)
    fake.add_accelerator(PROJECT, "us-central1-a", "nvidia-l4")
    if all_regions is not None:
        fake.put(f"/compute/v1/projects/{PROJECT}",
                 {"quotas": [{"metric": "GPUS_ALL_REGIONS", "limit": all_regions[0], "usage": all_regions[1]}]})


def session(fake: FakeGoogleApis):
    return open_session(PROJECT, REGION, fake.url)


def seed_cluster(fake: FakeGoogleApis) -> None:
    """A RUNNING regional cluster with a general, a spot and a spot GPU pool (as `up gcp` makes them)."""
    groups = [f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{REGION}-{z}/instanceGroupManagers/"
              f"gke-demo-general-{z}-grp" for z in "abc"]
    for z, size in zip("abc", (1, 1, 0), strict=True):
        fake.put(f"/compute/v1/projects/{PROJECT}/zones/{REGION}-{z}/instanceGroupManagers/gke-demo-general-{z}-grp",
                 {"targetSize": size})
    fake.put(CLUSTER, {
        "endpoint": "34.89.10.20", "currentMasterVersion": "1.31.5-gke.1000", "masterAuth": {"clusterCaCertificate": CA},
        "nodePools": [
            {"name": "general", "locations": [f"{REGION}-{z}" for z in "abc"], "instanceGroupUrls": groups,
             "config": {"machineType": "e2-standard-4"},
             "autoscaling": {"enabled": True, "minNodeCount": 1, "maxNodeCount": 1}},
            {"name": "highcpu", "config": {"machineType": "c2-standard-16", "spot": True},
             "autoscaling": {"enabled": True, "totalMinNodeCount": 0, "totalMaxNodeCount": 10}},
            {"name": "gpu", "status": "PROVISIONING",
             "config": {"machineType": "n1-standard-8", "spot": True,
                        "accelerators": [{"acceleratorCount": "2", "acceleratorType": T4}],
                        "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]},
             "autoscaling": {"enabled": True, "totalMinNodeCount": 0, "totalMaxNodeCount": 2}},
        ],
    })


def write_config(tmp_path: Path, fake: FakeGoogleApis) -> Path:
    path = tmp_path / "bioinfra.yaml"
    path.write_text(f"name: {NAME}\ntarget: gcp\nproject: {PROJECT}\nregion: {REGION}\n"
                    f"gcp:\n  endpoint_url: {fake.url}\n")
    return path


# -- preflight ------------------------------------------------------------------------------------


def test_preflight_passes_a_ready_project_and_asks_google_the_right_questions(fake_google_apis):
    """Against FakeGoogleApis (stand-in): project, APIs, region, T4 zones and both GPU quotas checked."""
    fake = fake_google_apis
    ready_project(fake, all_regions=(8, 0))
    gpu = GpuNeed(T4, per_node=1, max_nodes=4)
    assert preflight(session(fake), apis=APIS, gpu=gpu) == []
    check_ready(session(fake), apis=APIS, gpu=gpu)

    assert fake.paths("GET") == [
        f"/v3/projects/{PROJECT}",
        f"/v1/projects/{PROJECT}/services:batchGet",
        f"/compute/v1/projects/{PROJECT}/regions/{REGION}",
        f"/compute/v1/projects/{PROJECT}/aggregated/acceleratorTypes",
        f"/compute/v1/projects/{PROJECT}",
    ] * 2
    batch = fake.seen("GET", f"/v1/projects/{PROJECT}/services:batchGet")[0]
    assert batch.query_lists["names"] == [f"projects/{PROJECT}/services/{api}" for api in APIS]
    assert f"projects/{PROJECT}/services/file.googleapis.com" in batch.query_lists["names"]
    aggregated = fake.seen("GET", f"/compute/v1/projects/{PROJECT}/aggregated/acceleratorTypes")[0]
    assert aggregated.query["filter"] == f'name = "{T4}"'


def test_missing_project_is_one_clear_problem_and_exit_12(fake_google_apis):
    """FakeGoogleApis (stand-in) answers an unknown project 403, as Google does; nothing else is asked."""
    fake = fake_google_apis
    assert preflight(session(fake), apis=APIS, gpu=None) == [
        f"project '{PROJECT}': not found or no access — check `project:` in bioinfra.yaml; "
        f"`gcloud projects describe {PROJECT}`"
    ]
    with pytest.raises(PreflightError) as info:
        check_ready(session(fake), apis=APIS)
    assert info.value.exit_code == ExitCode.PREFLIGHT_FAILED == 12
    assert "nothing was created" in info.value.hint
    assert set(fake.paths()) == {f"/v3/projects/{PROJECT}"}


def test_disabled_apis_are_one_line_with_the_command_that_enables_them(fake_google_apis):
    """FakeGoogleApis (stand-in) reads services never enabled as DISABLED, as Google's batchGet does."""
    fake = fake_google_apis
    ready_project(fake)
    for api in ("container.googleapis.com", "iam.googleapis.com"):
        fake.put(f"/v1/projects/{PROJECT}/services/{api}", {"state": "DISABLED"})
    fake.delete(f"/v1/projects/{PROJECT}/services/artifactregistry.googleapis.com")  # never enabled

    assert preflight(session(fake), apis=APIS) == [
        f"APIs not enabled in project '{PROJECT}': container.googleapis.com, artifactregistry.googleapis.com, "
        "iam.googleapis.com — `gcloud services enable container.googleapis.com artifactregistry.googleapis.com "
        f"iam.googleapis.com --project {PROJECT}`"
    ]
    # file.googleapis.com is required in both workspace modes (our Filestore instance, or the CSI driver's)
    for api in ("container.googleapis.com", "iam.googleapis.com", "artifactregistry.googleapis.com"):
        fake.enable_services(PROJECT, [api])
    fake.delete(f"/v1/projects/{PROJECT}/services/file.googleapis.com")
    problems = preflight(session(fake), apis=required_apis())
    assert "file.googleapis.com" in problems[0] and len(problems) == 1


def test_compute_disabled_skips_the_region_and_gpu_checks(fake_google_apis):
    """With compute off, FakeGoogleApis (stand-in) sees no compute call: one problem, saying why."""
    fake = fake_google_apis
    ready_project(fake)
    fake.put(f"/v1/projects/{PROJECT}/services/compute.googleapis.com", {"state": "DISABLED"})
    (line,) = preflight(session(fake), apis=APIS, gpu=GpuNeed(T4, 1, 4))
    assert f"`gcloud services enable compute.googleapis.com --project {PROJECT}`" in line
    assert "region and GPU checks need compute.googleapis.com" in line
    assert not [p for p in fake.paths() if p.startswith("/compute/")]


def test_unknown_region_is_named(fake_google_apis):
    """FakeGoogleApis (stand-in) answers 404 for a region it does not hold, as Google does."""
    fake = fake_google_apis
    ready_project(fake)
    bad = open_session(PROJECT, "europe-west9", fake.url)
    assert preflight(bad, apis=APIS, gpu=GpuNeed(T4, 1, 1)) == [
        f"region 'europe-west9': not found in project '{PROJECT}' — check `region:` in bioinfra.yaml; "
        f"`gcloud compute regions list --project {PROJECT}`"
    ]


def test_gpu_type_not_offered_in_the_region(fake_google_apis):
    """FakeGoogleApis (stand-in) offers the L4 only in us-central1-a; the T4 in europe-west2-b and -c."""
    fake = fake_google_apis
    ready_project(fake, quotas={"NVIDIA_L4_GPUS": (8, 0), "NVIDIA_T4_GPUS": (8, 0)})
    (line,) = preflight(session(fake), apis=APIS, gpu=GpuNeed("nvidia-l4", 1, 2))
    assert line.startswith(f"GPU nvidia-l4: not offered in any zone of region {REGION} "
                           "(offered in other regions, e.g. us-central1-a)")
    assert f'`gcloud compute accelerator-types list --filter="name=nvidia-l4" --project {PROJECT}`' in line

    (typo,) = preflight(session(fake), apis=APIS, gpu=GpuNeed("nvidia-tesla-t5", 1, 1))
    assert "no zone anywhere offers it: check node_pools.gpu.gpu.type" in typo

    # gcp.zones naming a zone without T4s (and one outside the region)
    problems = preflight(session(fake), apis=APIS, gpu=GpuNeed(T4, 1, 2, zones=[f"{REGION}-a", "us-central1-a"]))
    assert problems == [
        f"gcp.zones: us-central1-a not in region {REGION} (its zones: {REGION}-a, {REGION}-b, {REGION}-c) — "
        "fix `gcp.zones` in bioinfra.yaml",
        f"GPU {T4}: not offered in zone(s) {REGION}-a of gcp.zones (it is offered in {REGION}-b, {REGION}-c) — "
        f'choose gcp.zones that offer it; `gcloud compute accelerator-types list --filter="name={T4}" '
        f"--project {PROJECT}`",
    ]


def test_check_ready_gives_the_gpu_pool_the_zones_that_offer_its_type(fake_google_apis):
    """FakeGoogleApis (stand-in): europe-west2 has zones a-c, T4s in b and c only (#18)."""
    fake = fake_google_apis
    ready_project(fake)
    assert check_ready(session(fake), apis=APIS, gpu=GpuNeed(T4, 1, 2)) == [f"{REGION}-b", f"{REGION}-c"]
    assert check_ready(session(fake), apis=APIS, gpu=GpuNeed(T4, 1, 2, zones=[f"{REGION}-c"])) == [f"{REGION}-c"]
    assert check_ready(session(fake), apis=APIS) == []


def test_gpu_quota_too_small_names_the_numbers(fake_google_apis):
    """The region's quotas in FakeGoogleApis (stand-in): 4 T4s, 2 in use; the pool may need 1 × 4."""
    fake = fake_google_apis
    ready_project(fake, quotas={"NVIDIA_T4_GPUS": (4, 2)})
    (line,) = preflight(session(fake), apis=APIS, gpu=GpuNeed(T4, per_node=1, max_nodes=4))
    assert line == (
        f"GPU quota in {REGION}: NVIDIA_T4_GPUS is 4 with 2 in use (2 free), but node_pools.gpu may need "
        f"1 × 4 nodes = 4 — request more at https://console.cloud.google.com/iam-admin/quotas?project={PROJECT} "
        f"(metric NVIDIA_T4_GPUS, region {REGION}) or lower node_pools.gpu.max; current values: "
        f"`gcloud compute regions describe {REGION} --project {PROJECT}`"
    )
    assert preflight(session(fake), apis=APIS, gpu=GpuNeed(T4, per_node=1, max_nodes=2)) == []


def test_spot_gpus_are_checked_against_the_preemptible_quota(fake_google_apis):
    """Spot pools use PREEMPTIBLE_NVIDIA_T4_GPUS when the project has some (FakeGoogleApis stand-in quotas)."""
    fake = fake_google_apis
    ready_project(fake, quotas={"NVIDIA_T4_GPUS": (64, 0), "PREEMPTIBLE_NVIDIA_T4_GPUS": (4, 1)})
    (line,) = preflight(session(fake), apis=APIS, gpu=GpuNeed(T4, per_node=2, max_nodes=2, spot=True))
    assert "PREEMPTIBLE_NVIDIA_T4_GPUS is 4 with 1 in use (3 free)" in line and "2 × 2 nodes = 4" in line
    # without preemptible quota, spot GPUs count against the standard quota
    ready_project(fake, quotas={"NVIDIA_T4_GPUS": (2, 0)})
    (line,) = preflight(session(fake), apis=APIS, gpu=GpuNeed(T4, per_node=2, max_nodes=2, spot=True))
    assert "NVIDIA_T4_GPUS is 2 with 0 in use (2 free)" in line and "PREEMPTIBLE" not in line


def test_project_wide_gpu_quota_is_checked_for_on_demand_gpus(fake_google_apis):
    """GPUS_ALL_REGIONS (0 on new projects) from the compute Project in FakeGoogleApis (stand-in)."""
    fake = fake_google_apis
    ready_project(fake, all_regions=(0, 0))
    (line,) = preflight(session(fake), apis=APIS, gpu=GpuNeed(T4, 1, 1))
    assert line.startswith(f"GPU quota of project '{PROJECT}': GPUS_ALL_REGIONS is 0 with 0 in use (0 free)")
    assert f"`gcloud compute project-info describe --project {PROJECT}`" in line


def test_every_problem_is_reported_at_once(fake_google_apis):
    """Disabled APIs, a GPU missing from a chosen zone and too little quota, from one FakeGoogleApis (stand-in)."""
    fake = fake_google_apis
    ready_project(fake, quotas={"NVIDIA_T4_GPUS": (1, 0)})
    fake.delete(f"/v1/projects/{PROJECT}/services/iam.googleapis.com")
    with pytest.raises(PreflightError) as info:
        check_ready(session(fake), apis=APIS, gpu=GpuNeed(T4, 1, 3, zones=[f"{REGION}-a"]))
    problems = info.value.problems
    assert len(problems) == 3, problems
    assert problems[0].startswith(f"APIs not enabled in project '{PROJECT}': iam.googleapis.com — ")
    assert problems[1].startswith(f"GPU {T4}: not offered in zone(s) {REGION}-a")
    assert problems[2].startswith(f"GPU quota in {REGION}: NVIDIA_T4_GPUS is 1 with 0 in use (1 free)")
    assert "(3 problems)" in info.value.message


def test_unexpected_google_errors_become_preflight_errors(fake_google_apis):
    """FakeGoogleApis (stand-in) made to fail: Google's message is kept, no traceback, exit 12."""
    fake = fake_google_apis
    ready_project(fake)
    fake.fail(f"/v1/projects/{PROJECT}/services:batchGet", 400, "Invalid service name from the stand-in",
              reason="badRequest", times=1)
    with pytest.raises(PreflightError) as info:
        preflight(session(fake), apis=APIS)
    assert info.value.message == (f"reading the enabled APIs of project {PROJECT}: "
                                  "Invalid service name from the stand-in (HTTP 400)")
    fake.fail(f"/compute/v1/projects/{PROJECT}/regions/*", 403, "Required 'compute.regions.get' permission")
    with pytest.raises(PreflightError) as info:
        check_ready(open_session(PROJECT, REGION, fake.url), apis=["compute.googleapis.com"])
    assert "Required 'compute.regions.get' permission (HTTP 403)" in info.value.message
    assert "gcloud auth application-default login" in info.value.hint


def test_an_unreachable_endpoint_is_named(fake_google_apis):
    """A stopped FakeGoogleApis (stand-in): the endpoint and where it was configured are named."""
    url = fake_google_apis.url
    fake_google_apis.stop()
    with pytest.raises(PreflightError) as info:
        cluster_info(open_session(PROJECT, REGION, url), NAME)
    assert info.value.message == (f"reading cluster {NAME}: cannot reach the endpoint {url} "
                                  "(BIOINFRA_GCP_ENDPOINT_URL / gcp.endpoint_url)")


def test_no_credentials_is_a_preflight_error(monkeypatch, tmp_path):
    """Without an endpoint, Application Default Credentials are required (a missing key file here)."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(PreflightError) as info:
        open_session(PROJECT, REGION, None)
    assert info.value.message == "no Google credentials found"
    assert "gcloud auth application-default login" in info.value.hint


# -- the cluster ----------------------------------------------------------------------------------


def test_cluster_info_reads_endpoint_ca_and_pools(fake_google_apis):
    """get_cluster against FakeGoogleApis (stand-in); node counts from the pools' instance groups."""
    fake = fake_google_apis
    seed_cluster(fake)
    info = cluster_info(session(fake), NAME)
    assert (info.name, info.location, info.status, info.endpoint, info.ca_certificate, info.version) == (
        NAME, REGION, "RUNNING", "34.89.10.20", CA, "1.31.5-gke.1000")
    general, highcpu, gpu = info.node_pools
    assert (general.name, general.spot, general.min_nodes, general.max_nodes, general.node_count) == (
        "general", False, 3, 3, 2)
    assert (highcpu.spot, highcpu.min_nodes, highcpu.max_nodes, highcpu.node_count) == (True, 0, 10, None)
    assert (gpu.status, gpu.machine_type, gpu.spot, gpu.accelerators, gpu.taints) == (
        "PROVISIONING", "n1-standard-8", True, [f"2× {T4}"], ["nvidia.com/gpu=present:NoSchedule"])
    assert fake.paths("GET")[0] == f"/v1/projects/{PROJECT}/locations/{REGION}/clusters/{NAME}"
    assert fake.paths("GET")[1:] == [f"/compute/v1/projects/{PROJECT}/zones/{REGION}-{z}/instanceGroupManagers/"
                                     f"gke-demo-general-{z}-grp" for z in "abc"]


def test_missing_cluster_exits_12_through_the_cli(cli, tmp_path, fake_google_apis):
    """`bioinfra status gcp` with FakeGoogleApis (stand-in) holding no cluster: ✗ line, hint, exit 12."""
    proc = cli("status", "gcp", "-c", str(write_config(tmp_path, fake_google_apis)))
    assert proc.returncode == ExitCode.PREFLIGHT_FAILED, proc.stderr
    assert proc.stderr.splitlines() == [
        f"✗ no cluster '{NAME}' in project {PROJECT}, region {REGION}",
        "  hint: `bioinfra up gcp` creates it",
    ]
    assert proc.stdout == ""
    assert fake_google_apis.paths() == [CLUSTER]


def test_kubeconfig_with_the_plugin_through_the_cli(cli, tmp_path, fake_google_apis):
    """`bioinfra kubeconfig gcp --auth plugin` reads the cluster from FakeGoogleApis (stand-in) and
    writes a private kubeconfig beside the Terraform state, named like gcloud's."""
    fake = fake_google_apis
    seed_cluster(fake)
    proc = cli("kubeconfig", "gcp", "-c", str(write_config(tmp_path, fake)), "--auth", "plugin", check=True)
    path = Path(proc.stdout.strip())
    assert path == tmp_path / ".bioinfra" / NAME / "gcp" / "kubeconfig"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"context {CONTEXT}" in proc.stderr and "gke-gcloud-auth-plugin" in proc.stderr
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == CONTEXT
    assert config["clusters"] == [{"name": CONTEXT, "cluster": {"server": "https://34.89.10.20",
                                                                 "certificate-authority-data": CA}}]
    assert config["contexts"] == [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}]
    (user,) = config["users"]
    exec_ = user["user"]["exec"]
    assert user["name"] == CONTEXT
    assert (exec_["apiVersion"], exec_["command"], exec_["provideClusterInfo"], exec_["interactiveMode"]) == (
        "client.authentication.k8s.io/v1beta1", "gke-gcloud-auth-plugin", True, "IfAvailable")
    assert "gcloud components install gke-gcloud-auth-plugin" in exec_["installHint"]
    (get,) = fake.seen("GET", CLUSTER)
    assert get.query.get("$alt") == "json;enum-encoding=int"  # the REST transport's own parameter


def test_kubeconfig_merges_into_an_existing_file(cli, tmp_path, fake_google_apis):
    """Other contexts survive; a stale entry of ours is replaced; a 0644 file becomes 0600 (stand-in:
    FakeGoogleApis)."""
    fake = fake_google_apis
    seed_cluster(fake)
    target = tmp_path / "home" / ".kube" / "config"
    target.parent.mkdir(parents=True)
    target.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kind-local",
        "clusters": [{"name": "kind-local", "cluster": {"server": "https://127.0.0.1:6443"}},
                     {"name": CONTEXT, "cluster": {"server": "https://10.0.0.1"}}],
        "contexts": [{"name": "kind-local", "context": {"cluster": "kind-local", "user": "kind-local"}}],
        "users": [{"name": "kind-local", "user": {"client-certificate-data": "Y2VydA=="}}],
    }))
    target.chmod(0o644)
    proc = cli("kubeconfig", "gcp", "-c", str(write_config(tmp_path, fake)), "-o", str(target), "--auth", "plugin",
               check=True)
    assert proc.stdout.strip() == str(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    config = yaml.safe_load(target.read_text())
    assert config["current-context"] == CONTEXT
    assert [c["name"] for c in config["clusters"]] == ["kind-local", CONTEXT]
    assert config["clusters"][1]["cluster"]["server"] == "https://34.89.10.20"
    assert [c["name"] for c in config["contexts"]] == ["kind-local", CONTEXT]
    assert config["users"][0] == {"name": "kind-local", "user": {"client-certificate-data": "Y2VydA=="}}
    assert [p.name for p in target.parent.iterdir()] == ["config"]  # no temporary file left
    seen = kubectl_view(target)
    if seen is not None:  # kubectl accepts the merged file and reads the same contexts and plugin
        assert seen["current-context"] == CONTEXT
        assert sorted(c["name"] for c in seen["contexts"]) == sorted(["kind-local", CONTEXT])
        assert [u["user"]["exec"]["command"] for u in seen["users"] if u["name"] == CONTEXT] == [
            "gke-gcloud-auth-plugin"]

    not_kubeconfig = tmp_path / "notes.yaml"
    not_kubeconfig.write_text("shopping: [milk]\n")
    proc = cli("kubeconfig", "gcp", "-c", str(tmp_path / "bioinfra.yaml"), "-o", str(not_kubeconfig), "--auth",
               "plugin")
    assert proc.returncode == ExitCode.INPUT_INVALID and "is not a kubeconfig; not overwritten" in proc.stderr
    assert not_kubeconfig.read_text() == "shopping: [milk]\n"


def test_kubeconfig_with_a_token(tmp_path, fake_google_apis, capsys):
    """auth token: the google-auth credentials' access token goes into the file (0600) and nowhere else.
    The credentials are google.oauth2 ones holding a token, as after a refresh (no Google here)."""
    from google.oauth2.credentials import Credentials

    fake = fake_google_apis
    seed_cluster(fake)
    info = cluster_info(session(fake), NAME)
    path = write_kubeconfig(tmp_path / "kc", info, PROJECT, auth="token",
                            credentials=Credentials(token="ya29.stand-in-token"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = yaml.safe_load(path.read_text())
    assert config["users"] == [{"name": CONTEXT, "user": {"token": "ya29.stand-in-token"}}]
    assert config["clusters"][0]["cluster"]["server"] == "https://34.89.10.20"
    captured = capsys.readouterr()
    assert "ya29" not in captured.out + captured.err


def test_kubeconfig_token_needs_real_credentials_through_the_cli(cli, tmp_path, fake_google_apis):
    """With a stand-in endpoint the CLI's credentials are anonymous: --auth token is a clear error,
    and so is --auth auto where gke-gcloud-auth-plugin is not on PATH (stand-in: FakeGoogleApis)."""
    seed_cluster(fake_google_apis)
    config = str(write_config(tmp_path, fake_google_apis))
    empty = tmp_path / "bin"
    empty.mkdir()
    for args, env in ((["--auth", "token"], None), ([], {"PATH": str(empty)})):
        proc = cli("kubeconfig", "gcp", "-c", config, *args, extra_env=env)
        assert proc.returncode == ExitCode.PREFLIGHT_FAILED, proc.stderr
        assert proc.stderr.startswith("✗ the credentials in use carry no access token")
        assert "use --auth plugin" in proc.stderr
        assert not (tmp_path / ".bioinfra" / NAME / "gcp" / "kubeconfig").exists()


def test_status_table_and_json_follow_the_cluster(cli, tmp_path, fake_google_apis):
    """`bioinfra status gcp` reports what FakeGoogleApis (stand-in) holds, then a change to it."""
    fake = fake_google_apis
    seed_cluster(fake)
    config = str(write_config(tmp_path, fake))
    table = cli("status", "gcp", "-c", config, check=True).stdout
    assert f"✓ cluster {NAME}  RUNNING  gcp {PROJECT} {REGION}" in table
    assert "endpoint https://34.89.10.20   version 1.31.5-gke.1000" in table
    rows = {line.split()[0]: line.split() for line in table.splitlines()[3:] if line.strip()}
    assert rows["general"][:6] == ["general", "RUNNING", "e2-standard-4", "on-demand", "2", "3-3"]
    assert rows["gpu"] == ["gpu", "PROVISIONING", "n1-standard-8", "spot", "?", "0-2", "2×", T4,
                           "nvidia.com/gpu=present:NoSchedule"]

    fake.put(f"/compute/v1/projects/{PROJECT}/zones/{REGION}-c/instanceGroupManagers/gke-demo-general-c-grp",
             {"targetSize": 1})
    fake.put(f"{CLUSTER}/nodePools/gpu", {**fake.get(f"{CLUSTER}/nodePools/gpu"), "status": "RUNNING"})
    data = json.loads(cli("status", "gcp", "-c", config, "--json", check=True).stdout)
    assert {k: data[k] for k in ("target", "name", "location", "account", "status", "endpoint")} == {
        "target": "gcp", "name": NAME, "location": REGION, "account": PROJECT, "status": "RUNNING",
        "endpoint": "34.89.10.20"}
    pools = {p["name"]: p for p in data["pools"]}
    assert pools["general"]["nodes"] == 3
    assert pools["gpu"] == {"name": "gpu", "status": "RUNNING", "machine_type": "n1-standard-8", "spot": True,
                            "min_nodes": 0, "max_nodes": 2, "nodes": None, "accelerators": [f"2× {T4}"],
                            "taints": ["nvidia.com/gpu=present:NoSchedule"]}


def test_targets_without_the_commands_say_so(cli, tmp_path):
    """onprem and local have no kubeconfig/status: exit 8 before their config is even read."""
    proc = cli("kubeconfig", "onprem")
    assert proc.returncode == ExitCode.UNSUPPORTED and "onprem.kubeconfig" in proc.stderr
    assert cli("status", "local").returncode == ExitCode.UNSUPPORTED


# -- the clients the sweep uses -------------------------------------------------------------------


def test_compute_changes_poll_their_operation_on_the_same_endpoint(fake_google_apis):
    """A compute delete whose operation is RUNNING is polled at FakeGoogleApis (stand-in), not at
    compute.googleapis.com; lists page and filter by label."""
    fake = fake_google_apis
    for name, owner in (("fw-a", NAME), ("fw-b", "other"), ("fw-c", NAME)):
        fake.put(f"/compute/v1/projects/{PROJECT}/global/firewalls/{name}", {"labels": {"bioinfra-cluster": owner}})
    fake.max_page_size = 1
    firewalls = session(fake).compute("Firewalls")
    found = firewalls.list(request={"project": PROJECT, "filter": f'labels.bioinfra-cluster = "{NAME}"'})
    assert [f.name for f in found] == ["fw-a", "fw-c"]
    assert [r.query.get("pageToken") for r in fake.seen("GET", f"/compute/v1/projects/{PROJECT}/global/firewalls")] \
        == [None, "MQ=="]

    fake.operation_polls = 1
    firewalls.delete(project=PROJECT, firewall="fw-a").result(timeout=30)
    (op,) = [p for p in fake.paths("GET") if "/operations/" in p]
    assert op.startswith(f"/compute/v1/projects/{PROJECT}/global/operations/operation-")
    assert fake.get(f"/compute/v1/projects/{PROJECT}/global/firewalls/fw-a") is None


def test_storage_client_talks_to_the_gcs_emulator(fake_google_apis, gcs_emulator):
    """GcpSession.storage() honours STORAGE_EMULATOR_HOST (gcp-storage-emulator, the GCS stand-in)."""
    client = session(fake_google_apis).storage()
    bucket = client.create_bucket("demo-results")
    bucket.blob("runs/1/summary.txt").upload_from_string("ok")
    assert [b.name for b in client.list_buckets()] == ["demo-results"]
    assert [b.name for b in client.list_blobs("demo-results")] == ["runs/1/summary.txt"]
    assert client.bucket("demo-results").blob("runs/1/summary.txt").download_as_text() == "ok"
    assert fake_google_apis.requests == []  # nothing went to the other stand-in
