"""`bioinfra doctor`: everything a run on the target needs, each checked, each failure with its fix.

Every check is a small function returning a `Check`; the checks are declared once as an ordered list
of (name, function, the earlier checks it needs): the ones every cluster has here, the ones a target
owns (credentials, its cluster's state, its registry, ...) from the target (target.doctor_checks),
placed by name (steps_for). A check whose prerequisite did not
pass is reported as skipped with the reason, not as another failure (no API server: no Argo check).
Nothing here changes the cluster or the machine: reads only (the workspace is not even created).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from bioinfra.core.runtimes import pipeline_images
from bioinfra.errors import BioinfraError, ClusterUnreachableError, PreflightError
from bioinfra.targets.addons import (
    STORAGE_CLASS,
    WORKFLOW_NAMESPACE,
    WORKFLOW_SERVICE_ACCOUNT,
    WORKSPACE_PVC,
    WORKSPACE_S3_NAME,
    WORKSPACE_S3_PORT,
    WORKSPACE_S3_SECRET_KEYS,
    storage_mode,
)

# Check and its statuses live in targets.base (targets write their own checks); named here as well.
from bioinfra.targets.base import FAILED as FAILED
from bioinfra.targets.base import MARKS as MARKS
from bioinfra.targets.base import OK as OK
from bioinfra.targets.base import SKIPPED, Check, failed, passed, split_ref, warning
from bioinfra.targets.base import WARNING as WARNING

if TYPE_CHECKING:
    from bioinfra.adaptors.kube import Kube
    from bioinfra.config import Config

TERRAFORM_MIN = (1, 5)
# A cluster is usable for the main pipeline (fastqc-to-bwa) without the cellprofiler image: a missing
# image of the main pipeline fails the check, one only another pipeline needs is a warning naming it.
MAIN_PIPELINE = "fastqc-to-bwa"
# Manifest media types a registry may answer a HEAD with (Docker v2, manifest lists, OCI).
MANIFEST_ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))


class NotReadyError(PreflightError):
    """`bioinfra doctor` found a failed check (exit 12); carries every check, already printed."""

    def __init__(self, checks: list[Check]):
        bad = [c for c in checks if c.status == FAILED]
        super().__init__(f"not ready: {len(bad)} of {len(checks)} checks failed ({', '.join(c.name for c in bad)})",
                         hint="fix the first ✗ above and run `bioinfra doctor` again")
        self.checks = checks


@dataclass
class Doctor:
    """What the checks share: the config, and what earlier checks found (the session, the API client)."""

    config: Config
    config_path: Optional[Path]
    timeout: float = 5.0
    session: Any = None
    account: str = ""
    kubeconfig: Optional[Path] = None
    kube: Optional[Kube] = None
    found: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return self.config.target

    def expected_images(self) -> dict[str, list[str]]:
        """name -> the references a run on this target may use, most specific first (expected_images)."""
        return expected_images(self.config)

    def images_verdict(self, where: str, present: list[str], missing: dict[str, str],
                       unknown: tuple[str, ...] | list[str] = ()) -> Check:
        """A tool-images check's verdict from what a target's registry lookup found (_missing_images)."""
        return _missing_images(self.config, where, present, missing, unknown)

    def api(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A Kubernetes API call with the doctor's short timeout (connect, read)."""
        assert self.kube is not None
        return self.kube.call(what, fn, *args, _request_timeout=(min(self.timeout, 3.0), self.timeout), **kwargs)


Step = tuple[str, Callable[[Doctor], Check], tuple[str, ...]]


def walk(doctor: Doctor, steps: list[Step]) -> list[Check]:
    """Run each check in order; one whose prerequisites did not pass is skipped, saying which."""
    results: dict[str, Check] = {}
    root: dict[str, str] = {}  # a skipped check -> the failed check it comes down to
    for name, fn, needs in steps:
        blocked = [n for n in needs if n in results and results[n].status in (FAILED, SKIPPED)]
        if blocked:
            cause = root.get(blocked[0], blocked[0])
            root[name] = cause
            check = Check(name, SKIPPED, f"skipped: `{cause}` failed")
        else:
            check = _run(name, fn, doctor)
        results[name] = check
    return list(results.values())


def _run(name: str, fn: Callable[[Doctor], Check], doctor: Doctor) -> Check:
    try:
        check = fn(doctor)
    except BioinfraError as exc:
        problems = getattr(exc, "problems", None) or []
        detail = exc.message + "".join(f"; {p}" for p in problems)
        check = failed(detail, exc.hint or "")
    except Exception as exc:  # noqa: BLE001 - a doctor reports what it could not check and goes on
        if os.environ.get("BIOINFRA_DEBUG") == "1":
            raise
        if type(exc).__module__.startswith("botocore"):
            check = failed(f"AWS error: {exc}", "check credentials, region and aws.endpoint_url")
        else:
            check = failed(f"could not check: {type(exc).__name__}: {exc}",
                           "BIOINFRA_DEBUG=1 shows the traceback; please report it")
    check.name = name
    return check


# -- every target ---------------------------------------------------------------------------------


def check_config(d: Doctor) -> Check:
    from bioinfra.config import find_config_path

    # load_config already raised (exit 3) for an invalid file: reaching here means it is valid.
    source = find_config_path(d.config_path)
    where = str(source) if source else "built-in defaults (no bioinfra.yaml)"
    return passed(f"{where}: valid, target {d.target}, name {d.config.name}")


# -- local ----------------------------------------------------------------------------------------


def check_native_tools(d: Doctor) -> Check:
    from bioinfra.core.tools import require_tools

    found = require_tools()  # ToolMissingError carries the apt-get line as its hint
    detail = ", ".join(sorted(found.found))
    if found.notes:
        return warning(f"{detail}; {'; '.join(found.notes)}")
    return passed(detail)


def check_docker(d: Doctor) -> Check:
    from bioinfra.adaptors.docker import client

    version = client().version().get("Version", "?")
    return passed(f"the Docker daemon answers (version {version})")


def check_workspace(d: Doctor) -> Check:
    from bioinfra.engine.rundir import default_workspace

    workspace = default_workspace(d.config)
    fix = "set local.workspace in bioinfra.yaml to a folder you can write"
    if workspace.exists():
        if not workspace.is_dir():
            return failed(f"{workspace} is not a folder", fix)
        if not os.access(workspace, os.W_OK | os.X_OK):
            return failed(f"{workspace} is not writable", fix)
        return passed(f"{workspace} is writable")
    parent = workspace.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if os.access(parent, os.W_OK | os.X_OK):
        return passed(f"{workspace} will be created (in {parent}, writable)")
    return failed(f"{workspace} cannot be created: {parent} is not writable", fix)


def local_steps(config: Config) -> list[Step]:
    runtime = config.local.runtime
    tools: Step = (("docker", check_docker, ()) if runtime == "docker" else ("native tools", check_native_tools, ()))
    return [tools, ("workspace", check_workspace, ())]


# -- Terraform, the cluster (a target's own checks: its module, target.doctor_checks) --------------------------------------------------


def check_terraform(d: Doctor) -> Check:
    fix = "install Terraform >= 1.5: https://developer.hashicorp.com/terraform/install"
    path = shutil.which("terraform")
    if path is None:
        return failed("terraform is not on PATH", fix)
    proc = subprocess.run([path, "version", "-json"], capture_output=True, text=True, timeout=30)
    try:
        version = json.loads(proc.stdout)["terraform_version"]
    except (ValueError, KeyError):
        return failed(f"`{path} version -json` did not say its version (exit {proc.returncode})", fix)
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if numbers < TERRAFORM_MIN:
        return failed(f"terraform {version} at {path} is older than 1.5", fix)
    return passed(f"terraform {version} ({path})")


def check_cloud_kubeconfig(d: Doctor) -> Check:
    from bioinfra.adaptors.kube import connect
    from bioinfra.core.cluster import default_kubeconfig_path

    path = default_kubeconfig_path(d.config, d.config_path)
    fix = f"`bioinfra kubeconfig {d.target}` writes it"
    if not path.is_file():
        return failed(f"no kubeconfig at {path}", fix)
    d.kubeconfig = path
    d.kube = connect(path)
    return passed(f"{path}, context {d.kube.context}")


def check_api_server(d: Doctor) -> Check:
    assert d.kube is not None
    try:
        version = d.kube.version_within(d.timeout)
    except ClusterUnreachableError as exc:
        if _target(d).is_cloud:
            fix = (f"is the cluster up (`bioinfra status {d.target}`)? a token in the kubeconfig expires: "
                   f"`bioinfra kubeconfig {d.target}` writes a fresh one")
        else:
            fix = f"check onprem.kubeconfig / onprem.context ({d.kubeconfig}); `kubectl --kubeconfig {d.kubeconfig} " \
                  "get nodes` shows the same"
        return failed(exc.message, fix)
    return passed(f"{d.kube.server} answers: Kubernetes {version}")


# -- inside the cluster (what the addons stack installs) ------------------------------------------


def _status(exc: BioinfraError) -> Optional[int]:
    return getattr(exc, "status", None)


def _not_found(d: Doctor, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """The object, or None on 404."""
    try:
        return d.api(what, fn, *args)
    except BioinfraError as exc:
        if _status(exc) == 404:
            return None
        raise


def _up(d: Doctor) -> str:
    return f"`bioinfra up {d.target}` installs it (the addons stack)"


def check_argo(d: Doctor) -> Check:
    from bioinfra.adaptors.kube import ARGO, WORKFLOWS

    assert d.kube is not None
    try:
        d.api("listing Workflows", d.kube.custom.list_namespaced_custom_object, *ARGO, WORKFLOW_NAMESPACE, WORKFLOWS,
              limit=1)
    except BioinfraError as exc:
        if _status(exc) == 404:
            return failed("the cluster does not serve Workflows (argoproj.io/v1alpha1): Argo Workflows is not "
                          "installed", _up(d))
        raise
    return passed(f"Workflows ({'/'.join(ARGO)}) are served")


def check_controller(d: Doctor) -> Check:
    assert d.kube is not None
    if d.config.onprem.argo == "existing":
        return _existing_controller(d)
    found = d.api(f"listing Deployments in {WORKFLOW_NAMESPACE}", d.kube.apps.list_namespaced_deployment,
                  WORKFLOW_NAMESPACE)
    controllers = [x for x in found.items if x.metadata.name.endswith("workflow-controller")]
    if not controllers:
        return failed(f"no workflow-controller Deployment in namespace {WORKFLOW_NAMESPACE}", _up(d))
    return _controller_ready(controllers[0], WORKFLOW_NAMESPACE)


def _existing_controller(d: Doctor) -> Check:
    """onprem.argo: existing (#18.10): the cluster's own Argo runs bioinfra's Workflows, so its
    controller lives in another namespace (targets.onprem_argo.find_argo looks for it the same way the
    preflight does)."""
    from bioinfra.targets.onprem_argo import find_argo

    assert d.kube is not None
    argo = find_argo(d.kube)
    if not argo.controllers:
        if argo.unchecked:
            return warning(f"onprem.argo is 'existing'; the controller was not checked: RBAC refused reading "
                           f"{', '.join(argo.unchecked)}",
                           "ask the cluster's admin whether a workflow controller watches namespace "
                           f"{WORKFLOW_NAMESPACE}")
        return failed("onprem.argo is 'existing' but no workflow-controller Deployment runs outside namespace bioinfra: "
                      "submitted Workflows would stay Pending",
                      "install Argo Workflows on the cluster, or set onprem.argo: install in bioinfra.yaml and "
                      "run `bioinfra up onprem`")
    namespace, name = argo.controllers[0].split("/", 1)
    deployment = d.api(f"reading Deployment {namespace}/{name}", d.kube.apps.read_namespaced_deployment,
                       name, namespace)
    verdict = _controller_ready(deployment, namespace)
    if verdict.ok:
        return passed(f"{namespace}/{verdict.detail} (the existing Argo, onprem.argo: existing; it must watch "
                      f"namespace {WORKFLOW_NAMESPACE})")
    return verdict


def _controller_ready(deployment: Any, namespace: str) -> Check:
    name = deployment.metadata.name
    wanted = deployment.spec.replicas if deployment.spec and deployment.spec.replicas is not None else 1
    ready = (deployment.status.ready_replicas if deployment.status else None) or 0
    if ready < 1:
        return failed(f"{name}: {ready}/{wanted} replicas ready: submitted Workflows would stay Pending",
                      f"kubectl -n {namespace} describe deployment {name}; "
                      f"kubectl -n {namespace} logs deployment/{name}")
    return passed(f"{name}: {ready}/{wanted} ready")


def storage_class_name(config: Config) -> str:
    """The ReadWriteMany class the workspace claim uses (the addons stack's choice)."""
    if storage_mode(config, config.target) == "existing-class":
        return str(config.onprem.storage_class)
    return STORAGE_CLASS


def check_storage_class(d: Doctor) -> Check:
    assert d.kube is not None
    name = storage_class_name(d.config)
    found = _not_found(d, f"reading StorageClass {name}", d.kube.storage.read_storage_class, name)
    if found is None:
        if storage_mode(d.config, d.target) == "existing-class":
            return failed(f"storage class {name} (onprem.storage_class) does not exist",
                          "`kubectl get storageclass` lists the classes: name a ReadWriteMany one in "
                          "onprem.storage_class, or remove it to have bioinfra install an NFS provisioner")
        return failed(f"storage class {name} does not exist", _up(d))
    mode = found.volume_binding_mode or "Immediate"
    d.found["binding_mode"] = mode
    return passed(f"{name}: provisioner {found.provisioner}, binding {mode}")


def check_workspace_claim(d: Doctor) -> Check:
    assert d.kube is not None
    claim = _not_found(d, f"reading PVC {WORKFLOW_NAMESPACE}/{WORKSPACE_PVC}",
                       d.kube.core.read_namespaced_persistent_volume_claim, WORKSPACE_PVC, WORKFLOW_NAMESPACE)
    where = f"{WORKFLOW_NAMESPACE}/{WORKSPACE_PVC}"
    if claim is None:
        return failed(f"no volume claim {where}", _up(d))
    phase = (claim.status.phase if claim.status else None) or "Pending"
    modes = list(claim.spec.access_modes or []) if claim.spec else []
    describe = f"kubectl -n {WORKFLOW_NAMESPACE} describe pvc {WORKSPACE_PVC} (its events name the cause)"
    if "ReadWriteMany" not in modes:
        return failed(f"{where} is {', '.join(modes) or 'without access modes'}, not ReadWriteMany: parallel steps "
                      "on different nodes cannot share it", _up(d))
    if phase == "Bound":
        size = ((claim.status.capacity or {}).get("storage") if claim.status else None) or "?"
        return passed(f"{where}: Bound to {claim.spec.volume_name} ({size}, ReadWriteMany)")
    if phase == "Pending" and d.found.get("binding_mode") == "WaitForFirstConsumer":
        return warning(f"{where} is Pending: its class binds on first use (WaitForFirstConsumer), so the volume "
                       "is made when the first pod mounts it", f"if a run then stays Pending: {describe}")
    if phase == "Pending":
        return failed(f"{where} is Pending: no volume was provisioned (the storage class's provisioner is missing "
                      "or failing)", describe)
    return failed(f"{where} is {phase}", describe)


def check_minio_service(d: Doctor) -> Check:
    assert d.kube is not None
    service = _not_found(d, f"reading Service {WORKFLOW_NAMESPACE}/{WORKSPACE_S3_NAME}", d.kube.core.read_namespaced_service,
                         WORKSPACE_S3_NAME, WORKFLOW_NAMESPACE)
    if service is None:
        return failed(f"no Service {WORKFLOW_NAMESPACE}/{WORKSPACE_S3_NAME} (the workspace S3 server: how inputs reach the workspace)", _up(d))
    ports = [p.port for p in (service.spec.ports or [])] if service.spec else []
    if WORKSPACE_S3_PORT not in ports:
        return failed(f"Service {WORKSPACE_S3_NAME} does not serve port {WORKSPACE_S3_PORT} (ports: {ports or 'none'})", _up(d))
    return passed(f"Service {WORKSPACE_S3_NAME}: {service.spec.type or 'ClusterIP'}, port {WORKSPACE_S3_PORT}")


def check_minio_secret(d: Doctor) -> Check:
    assert d.kube is not None
    secret = _not_found(d, f"reading Secret {WORKFLOW_NAMESPACE}/{WORKSPACE_S3_NAME}", d.kube.core.read_namespaced_secret,
                        WORKSPACE_S3_NAME, WORKFLOW_NAMESPACE)
    if secret is None:
        return failed(f"no Secret {WORKFLOW_NAMESPACE}/{WORKSPACE_S3_NAME} (the workspace S3 server's credentials)", _up(d))
    keys = set(secret.data or {}) | set(secret.string_data or {})  # key names only: values are never shown
    missing = [k for k in WORKSPACE_S3_SECRET_KEYS if k not in keys]
    if missing:
        return failed(f"Secret {WORKSPACE_S3_NAME} lacks {', '.join(missing)}", _up(d))
    return passed(f"Secret {WORKSPACE_S3_NAME} holds {', '.join(WORKSPACE_S3_SECRET_KEYS)} (values not shown)")


def check_service_account(d: Doctor) -> Check:
    assert d.kube is not None
    account = _not_found(d, f"reading ServiceAccount {WORKFLOW_NAMESPACE}/{WORKFLOW_SERVICE_ACCOUNT}",
                         d.kube.core.read_namespaced_service_account, WORKFLOW_SERVICE_ACCOUNT, WORKFLOW_NAMESPACE)
    if account is None:
        return failed(f"no ServiceAccount {WORKFLOW_NAMESPACE}/{WORKFLOW_SERVICE_ACCOUNT} (workflow pods run as it)",
                      _up(d))
    key = _target(d).workload_identity_annotation
    if key is None:
        return passed(f"{WORKFLOW_SERVICE_ACCOUNT} exists")
    value = (account.metadata.annotations or {}).get(key)
    if not value:
        return failed(f"{WORKFLOW_SERVICE_ACCOUNT} has no {key} annotation: workflow pods cannot use the cluster's "
                      "cloud identity (results bucket)", _up(d))
    return passed(f"{WORKFLOW_SERVICE_ACCOUNT} → {value}")


# -- the tool images in the target's registry -----------------------------------------------------


def expected_images(config: Config) -> dict[str, list[str]]:
    """name -> the references a run on this target may use, most specific first: the digest pushed
    from this machine, the tag built here under this target's registry, else the tag these sources
    build (bwa-mem2: either aligner variant)."""
    from bioinfra.core.images import read_records
    from bioinfra.engine.rundir import default_workspace
    from bioinfra.images import image_ref
    from bioinfra.targets import get_target

    target = get_target(config.target)
    registry = target.registry(config).rstrip("/")
    records = read_records(default_workspace(config))
    refs: dict[str, list[str]] = {}
    for name in dict.fromkeys(name for names in pipeline_images().values() for name in names):
        record = records.get(name) or {}
        candidates = []
        if record.get("pinned") and target.serves(config, record["pinned"]):
            candidates.append(record["pinned"])
        if record.get("ref"):
            candidates.append(f"{registry}/{name}:{record['ref'].rsplit(':', 1)[1]}")
        candidates.append(image_ref(registry, name))
        if name == "bwa-mem2":
            candidates.append(image_ref(registry, name, "bwa"))
        refs[name] = list(dict.fromkeys(candidates))
    return refs


def manifest_exists(ref: str, *, timeout: float = 5.0) -> Optional[bool]:
    """HEAD /v2/<path>/manifests/<tag or digest> (Docker Registry HTTP API v2). True/False, or None
    when the registry wants a login (not checked). Loopback registries over http (as Docker treats
    them), others https. Ref https://distribution.github.io/distribution/spec/api/#existing-manifests"""
    host, path, reference = split_ref(ref)
    loopback = host.split(":")[0] in ("localhost", "127.0.0.1", "[::1]")
    url = f"{'http' if loopback else 'https'}://{host}/v2/{path}/manifests/{reference}"
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": MANIFEST_ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        if exc.code in (401, 403):
            return None
        raise BioinfraError(f"registry {host} answered {exc.code} for {path}:{reference}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BioinfraError(f"registry {host} does not answer ({reason})",
                            hint="is the registry running? `bioinfra up local --registry` starts one on this machine; "
                                 "onprem: registry.url in bioinfra.yaml") from None


def _push_fix(config: Config, names: Optional[list[str]] = None) -> str:
    which = f" {' '.join(names)}" if names else ""
    return (f"`bioinfra images build{which}` then `bioinfra images push{which}` (with target {config.target} in "
            "bioinfra.yaml); add --aligner bwa / --base-image where bwa-mem2 or Docker Hub cannot be fetched")


def _missing_images(config: Config, where: str, present: list[str], missing: dict[str, str],
                    unknown: tuple[str, ...] | list[str] = ()) -> Check:
    """The check's verdict from name -> 'what was looked for' of each image not found (and the images
    behind a login): failed when the main pipeline lacks one, else a warning for what is behind a login,
    else a warning naming the pipelines that need the missing others."""
    required = set(pipeline_images()[MAIN_PIPELINE])
    if required & set(missing):
        return failed(f"not in {where}: {'; '.join(missing.values())}", _push_fix(config))
    if unknown:
        return warning(f"not checked: the registry wants a login for {', '.join(unknown)}",
                       "docker login to it, then `docker manifest inspect IMAGE` checks by hand")
    if missing:
        needs = {name: [p for p, names in pipeline_images().items() if name in names] for name in missing}
        said = "; ".join(f"{looked} (only `run {', '.join(needs[name])}` needs it)" for name, looked in missing.items())
        return warning(f"{'; '.join(present)}; not in {where}: {said}", _push_fix(config, list(missing)))
    return passed("; ".join(present))


def check_images_registry(d: Doctor) -> Check:
    """The images are in the target's registry (Docker Registry HTTP API v2): the check of a target
    that names no registry lookup of its own (onprem)."""
    present: list[str] = []
    missing: dict[str, str] = {}
    unknown: list[str] = []
    for name, candidates in expected_images(d.config).items():
        answers = []
        for ref in candidates:  # most specific first; stop at the first one there
            answers.append(manifest_exists(ref, timeout=d.timeout))
            if answers[-1]:
                present.append(ref)
                break
        if answers[-1]:
            continue
        if None in answers:
            unknown.append(name)
        else:
            missing[name] = f"{name} (looked for {candidates[0]})"
    return _missing_images(d.config, "the registry", present, missing, unknown)


def cluster_steps() -> list[Step]:
    """Inside the cluster, once the API server answers."""
    api = ("api server",)
    return [
        ("argo workflows", check_argo, api),
        ("workflow controller", check_controller, (*api, "argo workflows")),
        ("storage class", check_storage_class, api),
        ("workspace volume", check_workspace_claim, api),
        ("minio service", check_minio_service, api),
        ("minio credentials", check_minio_secret, api),
        ("workflow service account", check_service_account, api),
    ]


# Where a target's own checks go, by name: these reach the cluster (before the kubeconfig); any other
# comes after the checks inside the cluster (node pools, tool images). A target naming "kubeconfig" or
# "tool images" replaces the generic one.
REACH = ("credentials", "cluster", "cluster access")


def _target(d: Doctor) -> Any:
    from bioinfra.targets import get_target

    return get_target(d.target)


def steps_for(config: Config) -> list[Step]:
    """The target's checks in order: on this machine (runs_locally), else reaching the cluster (the
    target's credentials and cluster checks, Terraform for a cloud, the kubeconfig, the API server), the
    checks inside it, then the target's own (node pools, tool images)."""
    from bioinfra.targets import get_target

    target = get_target(config.target)
    if target.runs_locally:
        return local_steps(config)
    own = {name: (name, fn, needs) for name, fn, needs in target.doctor_checks()}
    steps: list[Step] = []
    if "credentials" in own:
        steps.append(own.pop("credentials"))
    if target.is_cloud:  # `up` makes its cluster with Terraform
        steps.append(("terraform", check_terraform, ()))
    steps += [own.pop(name) for name in REACH if name in own]
    reached = ("cluster",) if any(name == "cluster" for name, _, _ in steps) else ()
    steps.append(own.pop("kubeconfig", ("kubeconfig", check_cloud_kubeconfig, reached)))
    steps.append(("api server", check_api_server, ("kubeconfig",)))
    steps += cluster_steps()
    images = own.pop("tool images", ("tool images", check_images_registry, ()))
    return [*steps, *own.values(), images]


def diagnose(config: Config, config_path: Optional[Path], *, timeout: float = 5.0) -> list[Check]:
    """Every check for the config's target, in order; never raises for a failed check."""
    doctor = Doctor(config, config_path, timeout=timeout)
    return walk(doctor, [("config", check_config, ()), *steps_for(config)])


def require_ready(checks: list[Check]) -> None:
    """NotReadyError (exit 12) if any check failed."""
    if any(c.status == FAILED for c in checks):
        raise NotReadyError(checks)
