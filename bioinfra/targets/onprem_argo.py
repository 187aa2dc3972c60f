"""onprem.argo: a cluster that already runs Argo Workflows (issue #18.10).

An existing cluster may run someone else's Argo. Installing ours beside it blindly fails or misbehaves
in one of two ways:
  - Helm refuses to install CRDs another release owns (its `meta.helm.sh/release-name` and
    `meta.helm.sh/release-namespace` annotations name that release; Helm 3 checks them before taking
    any object over: https://github.com/helm/helm/blob/v3.17.0/pkg/action/validate.go
    existingResourceConflict, "invalid ownership metadata"), or, with CRDs installed by `kubectl apply`,
    takes them over for its own release;
  - two controllers without an instance ID both reconcile every Workflow they can see (a
    cluster-wide one sees ours too): steps run twice, statuses are overwritten.

So `up onprem` looks first (`check_argo`, from the onprem preflight) and, with `onprem.argo: install`
(the default), refuses when it finds an Argo that is not ours, naming both ways out:
  - `onprem.argo: existing`: bioinfra installs no Argo and submits to the one there;
  - `onprem.argo_instance_id: <id>`: ours is installed beside it with `controller.instanceID` set
    (it takes only Workflows labelled workflows.argoproj.io/controller-instanceid=<id>, which
    bioinfra's are; the other controller, without that instance ID, ignores them) and without CRDs
    (`crds.install: false`: the existing install's are used, Helm's ownership stays where it is).
Refusing is the default because either way changes who runs bioinfra's Workflows on a cluster
someone else runs; bioinfra does not choose that for them.

Ref https://argo-workflows.readthedocs.io/en/latest/workflow-controller-configmap/ (instanceID: "a label
selector to limit the controller's watch to a specific instance ... under the key
workflows.argoproj.io/controller-instanceid"; Argo v3.7.18 docs/workflow-controller-configmap.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from bioinfra.errors import ClusterUnreachableError, PreflightError
from bioinfra.targets.addons import ARGO_RELEASE, WORKFLOW_NAMESPACE

if TYPE_CHECKING:
    from bioinfra.config import Config

WORKFLOW_CRD = "workflows.argoproj.io"
INSTANCE_ID_LABEL = "workflows.argoproj.io/controller-instanceid"
HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
# The controller's Deployment: argo-helm labels it app.kubernetes.io/component=workflow-controller
# (templates/controller/workflow-controller-deployment.yaml, argo-workflows.labels); Argo's own
# manifests (install.yaml, quick-start) name it workflow-controller.
CONTROLLER_COMPONENT = "workflow-controller"


@dataclass
class ArgoFound:
    """What the cluster shows of Argo Workflows."""

    crd: bool = False  # the Workflow CRD exists
    crd_owner: Optional[str] = None  # who owns it, when that is not our release: "Helm release X in Y" / "no Helm release"
    controllers: list[str] = field(default_factory=list)  # namespace/name of controllers outside our namespace
    unchecked: list[str] = field(default_factory=list)  # what RBAC did not let us read

    @property
    def foreign(self) -> bool:
        return self.crd_owner is not None or bool(self.controllers)

    def describe(self) -> str:
        parts = []
        if self.crd_owner:
            parts.append(f"CRD {WORKFLOW_CRD} ({self.crd_owner})")
        if self.controllers:
            parts.append(f"workflow controller {', '.join(self.controllers)}")
        return " and ".join(parts)


def _owner(crd: dict[str, Any]) -> Optional[str]:
    annotations = (crd.get("metadata") or {}).get("annotations") or {}
    name, namespace = annotations.get(HELM_RELEASE_NAME), annotations.get(HELM_RELEASE_NAMESPACE)
    if (name, namespace) == (ARGO_RELEASE, WORKFLOW_NAMESPACE):
        return None  # ours (a second `up`)
    return f"Helm release {name} in namespace {namespace}" if name else "installed without Helm"


def _is_controller(deployment: dict[str, Any]) -> bool:
    meta = deployment.get("metadata") or {}
    labels = meta.get("labels") or {}
    return labels.get("app.kubernetes.io/component") == CONTROLLER_COMPONENT or meta.get("name") == CONTROLLER_COMPONENT


def find_argo(kube: Any) -> ArgoFound:
    """The Workflow CRD and its owner, and every workflow controller outside bioinfra's namespace.
    A read RBAC refuses (403) is noted in `unchecked`, not fatal: shared clusters often refuse it."""
    found = ArgoFound()
    try:
        crd = kube.custom_resource_definition(WORKFLOW_CRD)
    except ClusterUnreachableError as exc:
        if getattr(exc, "status", None) != 403:
            raise
        found.unchecked.append(f"CRD {WORKFLOW_CRD}")
    else:
        if crd is not None:
            found.crd, found.crd_owner = True, _owner(crd)
    try:
        deployments = kube.deployments_everywhere()
    except ClusterUnreachableError as exc:
        if getattr(exc, "status", None) != 403:
            raise
        found.unchecked.append("Deployments in other namespaces")
    else:
        found.controllers = sorted(
            f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in deployments
            if _is_controller(d) and d["metadata"].get("namespace") != WORKFLOW_NAMESPACE)
    return found


def check_argo(config: Config, kube: Any) -> str:
    """The onprem preflight's Argo check: raises PreflightError (exit 12) when `onprem.argo` does not
    fit what the cluster runs; else returns a line saying what bioinfra will use."""
    mode, instance_id = config.onprem.argo, config.onprem.argo_instance_id
    found = find_argo(kube)
    unchecked = f" (not checked, RBAC refused reading: {', '.join(found.unchecked)})" if found.unchecked else ""
    if mode == "existing":
        if not found.crd and not found.unchecked:
            raise PreflightError(
                f"onprem.argo is 'existing' but the cluster has no Argo Workflows (no CRD {WORKFLOW_CRD})",
                hint="set onprem.argo: install in bioinfra.yaml (bioinfra installs Argo), or install Argo first")
        label = f", Workflows labelled {INSTANCE_ID_LABEL}={instance_id}" if instance_id else ""
        where = found.describe() or "the cluster's"
        return f"Argo Workflows: using the existing one ({where}){label}; it must watch namespace {WORKFLOW_NAMESPACE}{unchecked}"
    if instance_id is not None:
        if not found.crd and not found.unchecked:
            raise PreflightError(
                f"onprem.argo_instance_id is set, so bioinfra's Argo installs no CRDs (they are the existing "
                f"Argo's), but the cluster has no CRD {WORKFLOW_CRD}",
                hint="remove onprem.argo_instance_id from bioinfra.yaml (nothing to share the cluster with)")
        return (f"Argo Workflows: installing ours beside {found.describe() or 'the existing one'} with "
                f"controller instance ID {instance_id}, without CRDs{unchecked}")
    if found.foreign:
        raise PreflightError(
            f"this cluster already runs Argo Workflows: {found.describe()}. Installing another would fail on its "
            "CRDs or have two controllers run the same Workflows",
            problems=[
                "to use it: set onprem.argo: existing in bioinfra.yaml (bioinfra installs no Argo; that "
                f"controller must watch namespace {WORKFLOW_NAMESPACE}; add onprem.argo_instance_id if it has one)",
                "to install bioinfra's own beside it: set onprem.argo_instance_id: bioinfra (our controller "
                f"then takes only Workflows labelled {INSTANCE_ID_LABEL}=bioinfra, which bioinfra's are, and "
                "installs no CRDs: the existing ones are used)",
            ],
            hint="set onprem.argo: existing, or onprem.argo_instance_id: bioinfra, in bioinfra.yaml; nothing was changed")
    return f"Argo Workflows: installing ours{unchecked}"


def workflow_labels(config: Config) -> dict[str, str]:
    """Labels every Workflow bioinfra submits on this target needs: the controller's instance ID when
    one is set (onprem.argo_instance_id), so that exactly that controller runs it."""
    if config.target == "onprem" and config.onprem.argo_instance_id:
        return {INSTANCE_ID_LABEL: config.onprem.argo_instance_id}
    return {}
