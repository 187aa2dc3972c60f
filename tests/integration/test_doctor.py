"""`bioinfra doctor`: every check a run needs, each failure with its fix, exit 12 when not ready.

STAND-INS, named: the cluster is kmock's Kubernetes emulator (tests/fakes/kube_api.py) over real HTTP
on 127.0.0.1, holding the objects the addons stack would install (the test creates them: kmock has
no controllers, so a Deployment's readyReplicas or a claim's phase is what the test says); the image
registry is a few lines of http.server answering the Docker Registry v2 manifest HEAD; AWS is
moto_server. The local-target test uses the real tools on this machine.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bioinfra.config import parse_config
from bioinfra.core.doctor import (
    FAILED,
    OK,
    SKIPPED,
    WARNING,
    Doctor,
    NotReadyError,
    check_service_account,
    diagnose,
    require_ready,
)
from bioinfra.errors import ExitCode
from bioinfra.images import image_ref
from tests.conftest import require_native_tools
from tests.fakes.kube_api import unreachable_kubeconfig

pytestmark = pytest.mark.integration

NS = "bioinfra"
CONTROLLER = "argo-workflows-workflow-controller"
SECRET_VALUES = ("minio-admin-user", "s3cr3t-passw0rd-never-shown")
CLUSTER_CHECKS = ("argo workflows", "workflow controller", "storage class", "workspace volume", "minio service",
                  "minio credentials", "workflow service account")


# -- stand-ins ------------------------------------------------------------------------------------


class FakeRegistry:
    """Docker Registry HTTP API v2, only HEAD /v2/<repo>/manifests/<ref>: 200 for `images`, else 404."""

    def __init__(self) -> None:
        self.images: set[str] = set()  # "bioinfra/fastqc:0.11.9-abc"
        self.seen: list[str] = []
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:  # noqa: N802
                registry.seen.append(self.path)
                path = self.path.removeprefix("/v2/")
                repo, _, ref = path.partition("/manifests/")
                self.send_response(200 if f"{repo}:{ref}" in registry.images else 404)
                self.send_header("Docker-Content-Digest", "sha256:" + "0" * 64)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def push_all(self, names: tuple[str, ...] = ("fastqc", "bwa-mem2", "cellprofiler")) -> None:
        for name in names:
            self.images.add(image_ref(f"{self.host}/bioinfra", name).split("/", 1)[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    fake = FakeRegistry()
    fake.push_all()
    yield fake
    fake.close()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def install_addons(api, *, ready: int = 1, phase: str = "Bound", binding: str = "Immediate",
                   secret: bool = True, nodes: bool = True) -> None:
    """What the addons stack leaves in a healthy onprem cluster (no onprem.storage_class: bioinfra-rwx),
    and (`nodes`) two workers carrying the pool labels the Workflows select."""
    if nodes:
        pool_nodes(api)
    meta = {"namespace": NS}
    api.create(f"/apis/apps/v1/namespaces/{NS}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": CONTROLLER, **meta},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "wc"}},
                 "template": {"metadata": {"labels": {"app": "wc"}},
                              "spec": {"containers": [{"name": "controller", "image": "argo"}]}}},
        "status": {"replicas": 1, "readyReplicas": ready} if ready else {"replicas": 1}})
    api.create("/apis/storage.k8s.io/v1/storageclasses", {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "bioinfra-rwx"},
        "provisioner": "cluster.local/nfs-server-provisioner", "volumeBindingMode": binding})
    status = {"phase": phase}
    if phase == "Bound":
        status.update(accessModes=["ReadWriteMany"], capacity={"storage": "100Gi"})
    api.create(f"/api/v1/namespaces/{NS}/persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "bioinfra-workspace", **meta},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "bioinfra-rwx",
                 "resources": {"requests": {"storage": "100Gi"}},
                 **({"volumeName": "pvc-0001"} if phase == "Bound" else {})},
        "status": status})
    api.create(f"/api/v1/namespaces/{NS}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "bioinfra-minio", **meta},
        "spec": {"type": "ClusterIP", "ports": [{"name": "s3", "port": 9000}]}})
    if secret:
        api.create(f"/api/v1/namespaces/{NS}/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bioinfra-minio", **meta},
            "data": {"root-user": _b64(SECRET_VALUES[0]), "root-password": _b64(SECRET_VALUES[1])}})
    api.create(f"/api/v1/namespaces/{NS}/serviceaccounts", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bioinfra-workflow", **meta}})


def pool_nodes(api) -> None:
    """Two workers carrying the pool labels the Workflows select (tests/fakes/kube_api.py add_node)."""
    api.add_node("worker-1", pool="general")
    api.add_node("worker-2", pool="highcpu", cpu="16")


def onprem_config(tmp_path: Path, kubeconfig: Path, registry: FakeRegistry, **onprem: str) -> Path:
    path = tmp_path / "bioinfra.yaml"
    path.write_text(yaml.safe_dump({
        "name": "lab", "target": "onprem", "registry": {"url": f"{registry.host}/bioinfra"},
        "local": {"workspace": str(tmp_path / "workspace")},
        "onprem": {"kubeconfig": str(kubeconfig), **onprem},
    }))
    return path


def run_doctor(tmp_path: Path, kubeconfig: Path, registry: FakeRegistry, **onprem: str):
    path = onprem_config(tmp_path, kubeconfig, registry, **onprem)
    config = parse_config(yaml.safe_load(path.read_text()), source=str(path))
    checks = diagnose(config, path, timeout=3)
    return {c.name: c for c in checks}, checks


# -- through the CLI ------------------------------------------------------------------------------


def test_all_green_onprem_cluster_exits_0_and_reads_each_object(kube_api, registry, cli, tmp_path):
    install_addons(kube_api)
    config = onprem_config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"), registry)

    proc = cli("--config", str(config), "doctor", "--json", timeout=120)

    assert proc.returncode == 0, proc.stderr
    checks = json.loads(proc.stdout)
    assert [c["name"] for c in checks] == ["config", "kubeconfig", "api server", *CLUSTER_CHECKS, "node pools",
                                           "tool images"]
    assert all(c["status"] == "ok" and c["ok"] for c in checks), checks
    by_name = {c["name"]: c for c in checks}
    assert "v1.31.2-kmock" in by_name["api server"]["detail"]
    assert f"{CONTROLLER}: 1/1 ready" in by_name["workflow controller"]["detail"]
    assert "Bound to pvc-0001" in by_name["workspace volume"]["detail"]
    assert by_name["node pools"]["detail"] == "bioinfra.io/pool=general: worker-1; bioinfra.io/pool=highcpu: worker-2"
    # One ✓ line per check on stderr; the secret's values appear nowhere.
    assert proc.stderr.count("✓ ") == len(checks)
    for value in SECRET_VALUES:
        assert value not in proc.stdout + proc.stderr
        assert _b64(value) not in proc.stdout + proc.stderr
    # The wire: one read of each thing the addons stack installs, nothing written.
    for path in ("/version", f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/workflows",
                 f"/apis/apps/v1/namespaces/{NS}/deployments", "/apis/storage.k8s.io/v1/storageclasses/bioinfra-rwx",
                 f"/api/v1/namespaces/{NS}/persistentvolumeclaims/bioinfra-workspace",
                 f"/api/v1/namespaces/{NS}/services/bioinfra-minio", f"/api/v1/namespaces/{NS}/secrets/bioinfra-minio",
                 f"/api/v1/namespaces/{NS}/serviceaccounts/bioinfra-workflow", "/api/v1/nodes"):
        assert [r for r in kube_api.requests("GET", path) if str(r.url.path) == path], f"no GET {path}"
    assert not [r for r in kube_api.requests() if r.method not in ("GET", "POST")]
    assert len(kube_api.requests("POST")) == 8  # only the test's own creates
    assert len(registry.seen) == 3  # one manifest HEAD per pipeline image (fastqc, bwa-mem2, cellprofiler)


def test_unreachable_api_fails_fast_and_skips_what_depends_on_it(cli, tmp_path, registry):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(unreachable_kubeconfig("gone"))
    closed = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]  # nothing listens there
    config = onprem_config(tmp_path, kubeconfig, registry)

    started = time.monotonic()
    proc = cli("--config", str(config), "doctor", timeout=120)
    elapsed = time.monotonic() - started

    assert proc.returncode == ExitCode.PREFLIGHT_FAILED == 12, proc.stderr
    assert elapsed < 20, f"doctor took {elapsed:.1f} s against a closed port"
    lines = proc.stderr.splitlines()
    api_line = next(i for i, line in enumerate(lines) if line.startswith("✗ api server"))
    assert closed in lines[api_line] and "does not answer" in lines[api_line]
    assert "kubectl --kubeconfig" in lines[api_line + 1]  # the fix, on its own indented line
    for name in (*CLUSTER_CHECKS, "node pools"):
        line = next(line for line in lines if line[2:].startswith(name))
        assert line.startswith("! ") and "skipped" in line, line
    assert any(line.startswith("✓ tool images") for line in lines)  # does not need the cluster
    assert "✗ not ready: 1 of 12 checks failed (api server)" in proc.stderr
    assert proc.stdout == ""


def test_local_target_with_the_tools_of_this_machine(cli, tmp_path):
    require_native_tools()
    proc = cli("doctor", "--target", "local", "--json", timeout=120)

    assert proc.returncode == 0, proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert list(checks) == ["config", "native tools", "workspace"]
    assert checks["config"]["detail"].startswith("built-in defaults")
    assert checks["native tools"]["status"] in ("ok", "warning")  # warning: bwa instead of bwa-mem2
    assert "samtools" in checks["native tools"]["detail"]
    assert "bioinfra/workspace will be created" in checks["workspace"]["detail"]  # a doctor creates nothing
    assert not (tmp_path / "cache" / "bioinfra").exists()


def test_help_documents_the_exit_codes(cli):
    proc = cli("doctor", "--help", timeout=60)
    assert proc.returncode == 0
    assert "12" in proc.stdout and "not ready" in proc.stdout


# -- through the functions ------------------------------------------------------------------------


def test_controller_with_no_ready_replica_fails_with_how_to_look(kube_api, registry, tmp_path):
    install_addons(kube_api, ready=0)
    by_name, checks = run_doctor(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry)

    controller = by_name["workflow controller"]
    assert controller.status == FAILED
    assert "0/1 replicas ready" in controller.detail
    assert f"kubectl -n {NS} describe deployment {CONTROLLER}" in controller.fix
    assert [c.name for c in checks if c.status == FAILED] == ["workflow controller"]
    with pytest.raises(NotReadyError) as raised:
        require_ready(checks)
    assert raised.value.exit_code == 12 and raised.value.checks == checks


def _controller_in(api, namespace: str, *, ready: int) -> None:
    labels = {"app.kubernetes.io/component": "workflow-controller"}
    api.create(f"/apis/apps/v1/namespaces/{namespace}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "workflow-controller", "namespace": namespace, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "controller", "image": "argo"}]}}},
        "status": {"replicas": 1, "readyReplicas": ready}})


def test_existing_argo_controller_is_checked_in_its_own_namespace(kube_api, registry, tmp_path):
    # onprem.argo: existing (#18.10): the cluster's Argo, in its own namespace, runs bioinfra's Workflows
    # (before the fix the doctor looked only in namespace bioinfra and failed).
    install_addons(kube_api)
    _controller_in(kube_api, "argo", ready=1)
    by_name, _ = run_doctor(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry, argo="existing")

    controller = by_name["workflow controller"]
    assert controller.status == OK
    assert controller.detail.startswith("argo/workflow-controller: 1/1 ready (the existing Argo")


def test_existing_argo_controller_not_ready_says_how_to_look(kube_api, registry, tmp_path):
    install_addons(kube_api)
    _controller_in(kube_api, "argo", ready=0)
    by_name, _ = run_doctor(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry, argo="existing")

    controller = by_name["workflow controller"]
    assert controller.status == FAILED
    assert "kubectl -n argo describe deployment workflow-controller" in controller.fix


def test_existing_argo_with_no_controller_elsewhere_fails_naming_both_ways_out(kube_api, registry, tmp_path):
    install_addons(kube_api)  # only a controller in bioinfra's namespace: not "the existing one"
    by_name, _ = run_doctor(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry, argo="existing")

    controller = by_name["workflow controller"]
    assert controller.status == FAILED
    assert "no workflow-controller Deployment runs outside namespace bioinfra" in controller.detail
    assert "onprem.argo: install" in controller.fix and "install Argo Workflows" in controller.fix


def test_pending_workspace_claim_fails_when_binding_is_immediate(kube_api, registry, tmp_path):
    install_addons(kube_api, phase="Pending")
    by_name, _ = run_doctor(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry)

    claim = by_name["workspace volume"]
    assert claim.status == FAILED
    assert "Pending" in claim.detail and "provisioner is missing" in claim.detail
    assert "describe pvc bioinfra-workspace" in claim.fix


def test_pending_workspace_claim_is_a_warning_when_the_class_waits_for_a_pod(kube_api, registry, tmp_path):
    install_addons(kube_api, phase="Pending", binding="WaitForFirstConsumer")
    by_name, checks = run_doctor(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry)

    claim = by_name["workspace volume"]
    assert claim.status == WARNING and claim.ok
    assert "WaitForFirstConsumer" in claim.detail and "first pod mounts it" in claim.detail
    require_ready(checks)  # a warning alone is not "not ready"


def test_missing_minio_secret_fails_and_names_the_fix(kube_api, registry, tmp_path):
    install_addons(kube_api, secret=False)
    by_name, checks = run_doctor(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry)

    secret = by_name["minio credentials"]
    assert secret.status == FAILED
    assert f"no Secret {NS}/bioinfra-minio" in secret.detail
    assert secret.fix.startswith("`bioinfra up onprem`")
    assert by_name["minio service"].status == OK
    assert kube_api.requests("GET", f"/api/v1/namespaces/{NS}/secrets/bioinfra-minio")


def test_argo_not_installed_skips_the_controller(kube_api, registry, tmp_path):
    install_addons(kube_api)
    kube_api.call(lambda: kube_api.k.resources.__delitem__("argoproj.io/v1alpha1/workflows"))
    by_name, _ = run_doctor(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry)

    assert by_name["argo workflows"].status == FAILED
    assert "Argo Workflows is not installed" in by_name["argo workflows"].detail
    assert by_name["argo workflows"].fix.startswith("`bioinfra up onprem`")
    assert by_name["workflow controller"].status == SKIPPED
    assert "argo workflows" in by_name["workflow controller"].detail
    assert not kube_api.requests("GET", f"/apis/apps/v1/namespaces/{NS}/deployments")


def test_images_missing_from_the_registry_fail_with_the_push_command(kube_api, registry, tmp_path):
    install_addons(kube_api)
    registry.images.clear()
    by_name, _ = run_doctor(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry)

    images = by_name["tool images"]
    assert images.status == FAILED
    assert "fastqc" in images.detail and "bwa-mem2" in images.detail and "cellprofiler" in images.detail
    assert "bioinfra images push" in images.fix
    # bwa-mem2 is looked for under both aligner variants before it is called missing.
    assert len(registry.seen) == 4


def test_an_image_only_another_pipeline_needs_is_a_warning_naming_it(kube_api, registry, tmp_path):
    """fastqc-to-bwa can run without the cellprofiler image: doctor says which run needs it, exit 0."""
    install_addons(kube_api)
    registry.images.clear()
    registry.push_all(("fastqc", "bwa-mem2"))
    by_name, _ = run_doctor(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry)

    images = by_name["tool images"]
    assert images.status == WARNING and images.ok
    assert "not in the registry: cellprofiler (looked for" in images.detail
    assert "only `run cellprofiler` needs it" in images.detail
    assert "/bioinfra/fastqc:" in images.detail and "/bioinfra/bwa-mem2:" in images.detail  # the ones found
    assert "`bioinfra images build cellprofiler` then `bioinfra images push cellprofiler`" in images.fix


@pytest.mark.parametrize("target,annotation", [("aws", "eks.amazonaws.com/role-arn"),
                                               ("gcp", "iam.gke.io/gcp-service-account")])
def test_cloud_service_account_must_carry_its_identity(kube_api, tmp_path, target, annotation):
    from bioinfra.adaptors.kube import connect

    api_path = f"/api/v1/namespaces/{NS}/serviceaccounts"
    kube_api.create(api_path, {"apiVersion": "v1", "kind": "ServiceAccount",
                               "metadata": {"name": "bioinfra-workflow", "namespace": NS}})
    config = parse_config({"target": target, "region": "eu-west-2" if target == "aws" else "europe-west2",
                           "project": "my-project-123"}, source="test")
    doctor = Doctor(config, None, timeout=3, kube=connect(kube_api.kubeconfig(tmp_path / "kc")))

    bare = check_service_account(doctor)
    assert bare.status == FAILED and annotation in bare.detail

    kube_api.request("PATCH", f"{api_path}/bioinfra-workflow", {"metadata": {"annotations": {annotation: "wf-role"}}})
    assert check_service_account(doctor).status == OK


def _moto_env(monkeypatch, moto_endpoint: str) -> None:
    monkeypatch.setenv("BIOINFRA_AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)


def test_aws_cluster_on_a_version_past_standard_support_is_a_warning_saying_how_to_upgrade(
        moto_endpoint, monkeypatch, tmp_path):
    """moto_server (EMULATED AWS) holds clusters of the versions asked for. 1.32 left standard support on
    2026-03-23 (extended, then ended: a warning either way); 1.40 is newer than the calendar (not judged)."""
    import boto3

    _moto_env(monkeypatch, moto_endpoint)
    eks = boto3.client("eks", endpoint_url=moto_endpoint, region_name="eu-west-2")
    for name, version in (("doctor-old", "1.32"), ("doctor-new", "1.40")):
        eks.create_cluster(name=name, version=version, roleArn="arn:aws:iam::123456789012:role/c",
                           resourcesVpcConfig={"subnetIds": ["subnet-0a", "subnet-0b"]})
    checks = {}
    for name in ("doctor-old", "doctor-new"):
        config = parse_config({"name": name, "target": "aws", "region": "eu-west-2",
                               "local": {"workspace": str(tmp_path / name)}}, source="test")
        checks[name] = {c.name: c for c in diagnose(config, tmp_path / "bioinfra.yaml", timeout=3)}["cluster"]

    old = checks["doctor-old"]
    assert old.status == WARNING and old.ok
    assert "cluster doctor-old in region eu-west-2: ACTIVE, Kubernetes 1.32" in old.detail
    assert "Kubernetes 1.32 is in EKS extended support" in old.detail or "EKS no longer runs Kubernetes 1.32" in old.detail
    assert old.fix.startswith('upgrade it: set aws.kubernetes_version: "') and "`bioinfra up aws`" in old.fix
    new = checks["doctor-new"]
    assert new.status == OK and new.detail.endswith("ACTIVE, Kubernetes 1.40")


def test_aws_cluster_in_config_map_mode_is_a_warning_saying_up_gives_access_entries(moto_endpoint, monkeypatch,
                                                                                     tmp_path):
    """moto_server (EMULATED AWS): moto keeps no accessConfig, so its clusters look as one made before
    access entries (CONFIG_MAP). The API modes are checked with a stubbed client in
    tests/unit/test_doctor_aws_access.py (moto has no ListAccessEntries)."""
    import boto3

    _moto_env(monkeypatch, moto_endpoint)
    boto3.client("eks", endpoint_url=moto_endpoint, region_name="eu-west-2").create_cluster(
        name="doctor-access", roleArn="arn:aws:iam::123456789012:role/c",
        resourcesVpcConfig={"subnetIds": ["subnet-0a", "subnet-0b"]})
    config = parse_config({"name": "doctor-access", "target": "aws", "region": "eu-west-2",
                           "local": {"workspace": str(tmp_path / "ws")}}, source="test")
    by_name = {c.name: c for c in diagnose(config, tmp_path / "bioinfra.yaml", timeout=3)}
    access = by_name["cluster access"]
    assert access.status == WARNING and access.ok
    assert "authentication mode CONFIG_MAP" in access.detail and "you are arn:aws:" in access.detail
    assert "`bioinfra up aws` switches it to API_AND_CONFIG_MAP" in access.fix
    assert list(by_name).index("cluster access") == list(by_name).index("cluster") + 1


def test_aws_without_a_cluster_says_bioinfra_up_aws(moto_endpoint, monkeypatch, tmp_path):
    """moto_server (EMULATED AWS): the credentials work, there is no cluster, ECR has no repositories."""
    _moto_env(monkeypatch, moto_endpoint)
    config = parse_config({"name": "doctor-absent", "target": "aws", "region": "eu-west-2",
                           "local": {"workspace": str(tmp_path / "ws")}}, source="test")
    by_name = {c.name: c for c in diagnose(config, tmp_path / "bioinfra.yaml", timeout=3)}

    assert by_name["credentials"].status == OK and "AWS account" in by_name["credentials"].detail
    assert by_name["cluster"].status == FAILED
    assert "no cluster 'doctor-absent'" in by_name["cluster"].detail
    assert "bioinfra up aws" in by_name["cluster"].fix
    for name in ("cluster access", "kubeconfig", "api server", *CLUSTER_CHECKS):
        assert by_name[name].status == SKIPPED, name
    assert by_name["tool images"].status == FAILED and "doctor-absent/fastqc" in by_name["tool images"].detail


# -- node pools (#16: onprem pods stay Pending when no node carries the pool a step selects) ---------


def test_unlabelled_nodes_warn_naming_each_missing_label_and_the_fix(kube_api, registry, cli, tmp_path):
    install_addons(kube_api, nodes=False)
    kube_api.add_node("cp", control_plane=True, taints=(("node-role.kubernetes.io/control-plane", "NoSchedule"),))
    kube_api.add_node("small", cpu="4")
    kube_api.add_node("big", cpu="16")
    config = onprem_config(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry)

    proc = cli("--config", str(config), "doctor", timeout=120)

    # onprem Workflows prefer their pool (nodeAffinity preferred..., #16): unlabelled nodes still run
    # every step, so this is a warning naming the labels to set, not a failure.
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("! node pools"))
    assert "no Ready, schedulable node carries bioinfra.io/pool=general (preferred by" in lines[at]
    assert "no Ready, schedulable node carries bioinfra.io/pool=highcpu (preferred by" in lines[at]
    assert "align" in lines[at] and "run on any Ready, schedulable node instead" in lines[at]
    assert "Pending" not in lines[at]
    fix = lines[at + 1]
    assert "`bioinfra up onprem --label-nodes` labels big bioinfra.io/pool=highcpu, small bioinfra.io/pool=general" in fix
    assert "kubectl label node big bioinfra.io/pool=highcpu" in fix and "kubectl label node small bioinfra.io/pool=general" in fix
    assert "checks failed" not in proc.stderr
    assert kube_api.node_patches() == []  # a doctor only reads


def test_a_labelled_node_that_cannot_run_pods_does_not_count(kube_api, registry, tmp_path):
    install_addons(kube_api, nodes=False)
    kube_api.add_node("worker-1", pool="general")
    kube_api.add_node("worker-2", pool="highcpu", cordoned=True)
    kube_api.add_node("worker-3", pool="highcpu", ready=False)
    by_name, _ = run_doctor(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry)

    pools = by_name["node pools"]
    assert pools.status == WARNING  # onprem steps only prefer the pool (#16)
    assert "bioinfra.io/pool=general" not in pools.detail  # served by worker-1
    assert "bioinfra.io/pool=highcpu" in pools.detail
    assert "worker-2 is cordoned" in pools.detail and "worker-3 is not Ready" in pools.detail
    assert "kubectl label node <node> bioinfra.io/pool=highcpu" in pools.fix


def test_a_gpu_pool_needs_a_gpu_labelled_node(kube_api, registry, tmp_path):
    install_addons(kube_api)
    path = onprem_config(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry)
    data = yaml.safe_load(path.read_text())
    data["node_pools"] = {"gpu": {"machine_type": "onprem-gpu", "gpu": {"type": "nvidia-tesla-t4", "count": 1}}}
    config = parse_config(data, source=str(path))
    checks = {c.name: c for c in diagnose(config, path, timeout=3)}

    pools = checks["node pools"]
    assert pools.status == FAILED and "bioinfra.io/pool=gpu" in pools.detail
    assert "bioinfra.io/pool=general" not in pools.detail and "bioinfra.io/pool=highcpu" not in pools.detail
    assert "kubectl label node <node> bioinfra.io/pool=gpu" in pools.fix
    kube_api.add_node("gpu-1", pool="gpu", gpus=1, taints=(("nvidia.com/gpu", "NoSchedule"),))
    assert {c.name: c for c in diagnose(config, path, timeout=3)}["node pools"].status == OK


def test_nodes_the_user_may_not_list_are_a_warning_not_a_failure(kube_api, registry, tmp_path):
    install_addons(kube_api, nodes=False)
    kube_api.call(lambda: kube_api.k["list nodes.v1"] << 403 << {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
        "message": 'nodes is forbidden: User "lab-user" cannot list resource "nodes" at the cluster scope'})
    by_name, checks = run_doctor(tmp_path, kube_api.kubeconfig(tmp_path / "kc"), registry)

    pools = by_name["node pools"]
    assert pools.status == WARNING and "not checked" in pools.detail and "403" in pools.detail
    assert "kubectl get nodes -L bioinfra.io/pool" in pools.fix
    require_ready(checks)
