"""`bioinfra plan|up|destroy onprem`: preflight against the cluster, then the addons stack only.

STAND-IN (named): the API server is kmock's emulator (tests/fakes/kube_api.py). The kubernetes and
helm providers cannot be installed here (no Terraform registry), so the real `terraform init` of the
rendered addons stack fails naming them; that is asserted, and the stack itself is checked
statically (golden files, provider schemas, checkov: test_terraform_static.py, test_provider_schema.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.fakes.kube_api import unreachable_kubeconfig

pytestmark = pytest.mark.integration


def _config(tmp_path: Path, kubeconfig: Path, **onprem) -> None:
    (tmp_path / "bioinfra.yaml").write_text(yaml.safe_dump(
        {"name": "lab", "target": "onprem", "onprem": {"kubeconfig": str(kubeconfig), **onprem}}))


def test_plan_onprem_reaches_the_cluster_then_renders_only_the_addons_stack(kube_api, cli, env, terraform_config,
                                                                            tmp_path: Path) -> None:
    env.update(terraform_config)
    _config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"), storage_class="nfs-client")
    proc = cli("plan", "onprem", timeout=300)
    assert "Kubernetes v1.31.2-kmock" in proc.stderr and "context kmock" in proc.stderr
    assert [r.url.path for r in kube_api.requests("GET", "/version")], "preflight asked the API server"
    root = tmp_path / ".bioinfra" / "lab" / "onprem"
    assert sorted(p.parent.name for p in root.glob("*/main.tf")) == ["addons"]
    main = (root / "addons" / "main.tf").read_text()
    # the kubeconfig and the class reach Terraform as data (variables), never as HCL text (#15)
    assert str(tmp_path / "kubeconfig") not in main and "nfs-client" not in main
    values = root / "addons" / "bioinfra.auto.tfvars.json"
    assert json.loads(values.read_text())["kubeconfig"] == str(tmp_path / "kubeconfig")
    assert json.loads(values.read_text())["storage_class"] == "nfs-client"
    assert values.stat().st_mode & 0o777 == 0o600
    assert (root / "modules" / "addons" / "main.tf").is_file()
    # The real terraform init: the kubernetes/helm providers are not installable on this machine.
    assert proc.returncode == 9, proc.stderr
    assert "hashicorp/kubernetes" in proc.stderr or "hashicorp/helm" in proc.stderr or "hashicorp/random" in proc.stderr


def test_onprem_unreachable_or_misnamed_context_exits_13_and_renders_nothing(cli, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(unreachable_kubeconfig())
    _config(tmp_path, kubeconfig)
    proc = cli("up", "onprem", "--yes", timeout=120)
    assert proc.returncode == 13 and "does not answer" in proc.stderr, proc.stderr
    _config(tmp_path, kubeconfig, context="minikube")
    proc = cli("destroy", "onprem", "--yes", timeout=120)
    assert proc.returncode == 13 and "context 'minikube' is not in" in proc.stderr and "contexts there: c" in proc.stderr
    assert not (tmp_path / ".bioinfra").exists()


# -- node pool labels (#16: every step selects bioinfra.io/pool; an existing cluster's nodes carry none) --


def _nodes(api) -> None:
    """A kubeadm-like cluster: a tainted control plane, two workers, one cordoned, one NotReady."""
    api.add_node("cp", control_plane=True, taints=(("node-role.kubernetes.io/control-plane", "NoSchedule"),))
    api.add_node("small", cpu="4")
    api.add_node("big", cpu="16")
    api.add_node("drained", cpu="32", cordoned=True)
    api.add_node("down", cpu="64", ready=False)


def _check_patches_against_the_api(api, expected: dict[str, str]) -> None:
    """As patchCoreV1Node takes them: PATCH /api/v1/nodes/{name}, a JSON merge patch of
    metadata.labels only; the stored Node still passes the upstream 1.31 schema and keeps its labels."""
    import kubernetes_validate

    patches = api.node_patches()
    assert [(path, ctype) for path, ctype, _ in patches] == [
        (f"/api/v1/nodes/{n}", "application/merge-patch+json") for n in expected]
    assert [body for _, _, body in patches] == [{"metadata": {"labels": {"bioinfra.io/pool": p}}}
                                                for p in expected.values()]
    for name, pool in expected.items():
        stored = api.node(name)
        kubernetes_validate.validate(stored, "1.31", strict=True)
        assert stored["metadata"]["labels"] == {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                "bioinfra.io/pool": pool}


def test_up_onprem_label_nodes_labels_one_usable_node_per_missing_pool(kube_api, cli, env, terraform_config,
                                                                      tmp_path: Path) -> None:
    env.update(terraform_config)
    _nodes(kube_api)
    _config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"))
    proc = cli("up", "onprem", "--yes", "--label-nodes", timeout=300)
    # highcpu to the Ready, schedulable worker with the most CPU, general to the next; never the
    # tainted control plane, the cordoned or the NotReady node.
    _check_patches_against_the_api(kube_api, {"big": "highcpu", "small": "general"})
    assert "proposed: node big gets bioinfra.io/pool=highcpu" in proc.stderr
    assert "node small labelled bioinfra.io/pool=general" in proc.stderr
    # Then the addons stack, whose providers cannot be installed on this machine (see above).
    assert proc.returncode == 9, proc.stderr
    # Once labelled, a second `up` has nothing to propose.
    again = cli("up", "onprem", "--yes", "--label-nodes", timeout=300)
    assert "node pools: bioinfra.io/pool=general on small; bioinfra.io/pool=highcpu on big" in again.stderr
    assert len(kube_api.node_patches()) == 2


def test_up_onprem_labels_nothing_without_consent(kube_api, cli, tmp_path: Path) -> None:
    _nodes(kube_api)
    _config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"))
    # Not at a terminal and no flag: the proposal and the commands, no PATCH (then the dry run's plan).
    proc = cli("up", "onprem", "--dry-run", timeout=300)
    assert "no Ready, schedulable node carries bioinfra.io/pool=highcpu" in proc.stderr
    assert "kubectl label node big bioinfra.io/pool=highcpu" in proc.stderr
    assert "dry run: no node labelled" in proc.stderr
    proc = cli("up", "onprem", "--no-label-nodes", "--dry-run", timeout=300)
    proc = cli("up", "onprem", "--label-nodes", "--dry-run", timeout=300)  # a dry run changes nothing
    assert kube_api.node_patches() == []
    wrong = cli("up", "aws", "--label-nodes", timeout=60)
    assert wrong.returncode != 0 and "--label-nodes/--no-label-nodes are for target onprem" in wrong.stderr


def test_offer_labels_asks_and_does_what_the_answer_says(kube_api, tmp_path: Path) -> None:
    """At a terminal without a flag `up onprem` asks (the CLI passes typer.confirm as `ask`)."""
    from bioinfra.adaptors.kube import connect
    from bioinfra.config import parse_config
    from bioinfra.targets.onprem_nodes import offer_labels

    _nodes(kube_api)
    kube = connect(kube_api.kubeconfig(tmp_path / "kc"))
    config = parse_config({"target": "onprem"})
    said: list[str] = []
    asked: list[str] = []
    done = offer_labels(config, kube, consent=None, ask=lambda q: asked.append(q) and False, say=said.append,
                        warn=said.append)
    assert done == [] and asked == ["Label 2 node(s) as proposed above?"] and kube_api.node_patches() == []
    assert any("no node labelled" in m for m in said)
    done = offer_labels(config, kube, consent=None, ask=lambda q: True, say=said.append, warn=said.append)
    assert done == ["big", "small"]
    _check_patches_against_the_api(kube_api, {"big": "highcpu", "small": "general"})


def test_one_node_cluster_cannot_serve_two_pools_and_says_so(kube_api, tmp_path: Path) -> None:
    """minikube/k3s on one machine: a node carries one bioinfra.io/pool value."""
    from bioinfra.adaptors.kube import connect
    from bioinfra.config import parse_config
    from bioinfra.targets.onprem_nodes import offer_labels

    kube_api.add_node("minikube", cpu="8", control_plane=True)
    kube = connect(kube_api.kubeconfig(tmp_path / "kc"))
    said: list[str] = []
    done = offer_labels(parse_config({"target": "onprem"}), kube, consent=True, ask=None, say=said.append,
                        warn=said.append)
    assert done == ["minikube"] and kube_api.node("minikube")["metadata"]["labels"]["bioinfra.io/pool"] == "highcpu"
    assert any("bioinfra.io/pool=general: every usable node is taken by another pool" in m for m in said), said


def test_up_onprem_at_a_terminal_asks_before_labelling(kube_api, env, terraform_config, tmp_path: Path) -> None:
    """Standard input a terminal (a pseudo-terminal here), no flag: `up onprem` asks; "n" labels nothing,
    "y" labels as proposed (then the addons stack, whose providers are not installable here)."""
    import os
    import pty
    import subprocess
    import sys

    env.update(terraform_config)
    _nodes(kube_api)
    _config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"))

    def up_answering(answer: str) -> subprocess.CompletedProcess:
        leader, follower = pty.openpty()
        try:
            os.write(leader, answer.encode() + b"\n")
            return subprocess.run([sys.executable, "-m", "bioinfra", "up", "onprem", "--yes"], cwd=tmp_path, env=env,
                                  stdin=follower, capture_output=True, text=True, timeout=300)
        finally:
            os.close(follower)
            os.close(leader)

    declined = up_answering("n")
    assert "Label 2 node(s) as proposed above?" in declined.stderr, declined.stderr
    assert "no node labelled" in declined.stderr and kube_api.node_patches() == []
    accepted = up_answering("y")
    assert "node big labelled bioinfra.io/pool=highcpu" in accepted.stderr, accepted.stderr
    _check_patches_against_the_api(kube_api, {"big": "highcpu", "small": "general"})


FORBIDDEN = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
             "message": 'nodes is forbidden: User "lab-user" cannot list resource "nodes" in API group "" at the '
                        "cluster scope"}


def test_rbac_refusing_nodes_does_not_stop_up_onprem(kube_api, cli, env, terraform_config, tmp_path: Path) -> None:
    """Shared clusters often refuse users cluster-scoped node access (403). `up onprem` still installs the
    addons stack (it needs no node access) and says what it could not check or label."""
    env.update(terraform_config)
    _nodes(kube_api)
    _config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"))
    kube_api.call(lambda: kube_api.k["patch nodes.v1"] << 403 << {**FORBIDDEN, "message": "nodes is forbidden: patch"})
    proc = cli("up", "onprem", "--yes", "--label-nodes", timeout=300)
    assert "no node labelled: the cluster refused labelling node big (403 Forbidden)" in proc.stderr, proc.stderr
    assert proc.returncode == 9 and "terraform init failed in addons" in proc.stderr  # went on to the stack
    kube_api.call(lambda: kube_api.k["list nodes.v1"] << 403 << FORBIDDEN)
    proc = cli("up", "onprem", "--yes", "--label-nodes", timeout=300)
    assert "node pools not checked: the cluster refused listing the cluster's nodes (403 Forbidden)" in proc.stderr
    assert proc.returncode == 9 and "terraform init failed in addons" in proc.stderr


# -- an Argo Workflows someone else installed (#18.10: onprem.argo, onprem.argo_instance_id) ------------

# What the argo-helm chart leaves in a cluster (release "argo" in namespace "argo"): the Workflow CRD with
# Helm's ownership annotations, and the controller's Deployment with the chart's component label
# (argo-helm 0.45.27 templates/crds/argoproj.io_workflows.yaml, templates/controller/workflow-controller-deployment.yaml).
THEIR_RELEASE = {"meta.helm.sh/release-name": "argo", "meta.helm.sh/release-namespace": "argo"}
THEIR_CONTROLLER = {"app.kubernetes.io/name": "argo-workflows-workflow-controller",
                    "app.kubernetes.io/component": "workflow-controller"}


def _their_argo(api, *, helm: bool = True) -> None:
    api.add_crd("argoproj.io", "Workflow", "workflows", annotations=THEIR_RELEASE if helm else None)
    api.add_deployment("argo", "argo-workflows-workflow-controller", THEIR_CONTROLLER)


def _rendered(tmp_path: Path) -> tuple[dict, str]:
    root = tmp_path / ".bioinfra" / "lab" / "onprem" / "addons"
    return json.loads((root / "bioinfra.auto.tfvars.json").read_text()), (root / "main.tf").read_text()


def test_up_onprem_beside_another_argo_refuses_and_names_both_fixes(kube_api, cli, tmp_path: Path) -> None:
    """Helm would fail on the CRDs the other release owns, or two controllers would run the same
    Workflows: refused before anything is rendered or changed (exit 12), naming both ways out."""
    _their_argo(kube_api)
    _config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"))
    proc = cli("up", "onprem", "--yes", timeout=120)
    assert proc.returncode == 12, proc.stderr
    assert "this cluster already runs Argo Workflows: CRD workflows.argoproj.io (Helm release argo in namespace argo) " \
           "and workflow controller argo/argo-workflows-workflow-controller" in proc.stderr
    assert "onprem.argo: existing" in proc.stderr and "onprem.argo_instance_id: bioinfra" in proc.stderr
    assert not (tmp_path / ".bioinfra").exists()
    # Asked through the API as documented: the CRD by name, the Deployments of every namespace.
    assert kube_api.requests("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/workflows.argoproj.io")
    assert kube_api.requests("GET", "/apis/apps/v1/deployments")


def test_a_crd_applied_without_helm_is_someone_elses_too(kube_api, cli, tmp_path: Path) -> None:
    kube_api.add_crd("argoproj.io", "Workflow", "workflows")  # `kubectl apply -f install.yaml`
    _config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"))
    proc = cli("up", "onprem", "--yes", timeout=120)
    assert proc.returncode == 12 and "CRD workflows.argoproj.io (installed without Helm)" in proc.stderr, proc.stderr


def test_our_own_argo_from_an_earlier_up_is_not_in_the_way(kube_api, cli, env, terraform_config, tmp_path: Path) -> None:
    env.update(terraform_config)
    kube_api.add_crd("argoproj.io", "Workflow", "workflows",
                     annotations={"meta.helm.sh/release-name": "bioinfra-argo", "meta.helm.sh/release-namespace": "bioinfra"})
    kube_api.add_deployment("bioinfra", "bioinfra-argo-argo-workflows-workflow-controller", THEIR_CONTROLLER)
    _config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"))
    proc = cli("plan", "onprem", timeout=300)
    assert "Argo Workflows: installing ours" in proc.stderr and proc.returncode == 9, proc.stderr
    values, _ = _rendered(tmp_path)
    assert (values["argo_install"], values["argo_instance_id"]) == (True, None)


def test_argo_existing_skips_our_release(kube_api, cli, env, terraform_config,
                                                                  tmp_path: Path) -> None:
    env.update(terraform_config)
    _their_argo(kube_api)
    _config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"), argo="existing", argo_instance_id="lab-ci")
    proc = cli("plan", "onprem", timeout=300)
    assert "Argo Workflows: using the existing one" in proc.stderr, proc.stderr
    assert "workflows.argoproj.io/controller-instanceid=lab-ci" in proc.stderr
    assert proc.returncode == 9  # then terraform init, whose providers are not installable here
    values, main = _rendered(tmp_path)
    assert values["argo_install"] is False and "argo_workflows" not in main  # no chart: `charts` lacks it
    assert "lab-ci" not in main  # data, not HCL text


def test_argo_existing_without_an_argo_is_refused(kube_api, cli, tmp_path: Path) -> None:
    _config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"), argo="existing")
    proc = cli("up", "onprem", "--yes", timeout=120)
    assert proc.returncode == 12 and "no Argo Workflows (no CRD workflows.argoproj.io)" in proc.stderr, proc.stderr
    assert "set onprem.argo: install" in proc.stderr and not (tmp_path / ".bioinfra").exists()


def test_our_argo_beside_theirs_with_an_instance_id_and_no_crds(kube_api, cli, env, terraform_config,
                                                                tmp_path: Path) -> None:
    env.update(terraform_config)
    _their_argo(kube_api)
    _config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"), argo_instance_id="bioinfra")
    proc = cli("plan", "onprem", timeout=300)
    assert "installing ours beside" in proc.stderr and "instance ID bioinfra, without CRDs" in proc.stderr, proc.stderr
    values, _ = _rendered(tmp_path)
    assert (values["argo_install"], values["argo_instance_id"]) == (True, "bioinfra")
    module = (tmp_path / ".bioinfra" / "lab" / "onprem" / "modules" / "addons" / "main.tf").read_text()
    assert "crds            = { install = var.argo_instance_id == null, keep = true }" in module
    assert "explicitID = var.argo_instance_id == null ? \"\" : var.argo_instance_id" in module


def test_an_instance_id_without_another_argo_is_refused(kube_api, cli, tmp_path: Path) -> None:
    """With onprem.argo_instance_id ours installs no CRDs (they are the other Argo's): none there, refused."""
    _config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"), argo_instance_id="bioinfra")
    proc = cli("up", "onprem", "--yes", timeout=120)
    assert proc.returncode == 12 and "the cluster has no CRD workflows.argoproj.io" in proc.stderr, proc.stderr
    assert "remove onprem.argo_instance_id" in proc.stderr


def test_rbac_refusing_the_argo_check_does_not_stop_up_onprem(kube_api, cli, env, terraform_config,
                                                              tmp_path: Path) -> None:
    env.update(terraform_config)
    kube_api.call(lambda: kube_api.k["get customresourcedefinitions.v1.apiextensions.k8s.io"] << 403 << FORBIDDEN)
    kube_api.call(lambda: kube_api.k["list deployments.v1.apps"] << 403 << FORBIDDEN)
    _config(tmp_path, kube_api.kubeconfig(tmp_path / "kubeconfig"))
    proc = cli("plan", "onprem", timeout=300)
    assert "not checked, RBAC refused reading: CRD workflows.argoproj.io, Deployments in other namespaces" in proc.stderr, \
        proc.stderr
    assert proc.returncode == 9


def test_workflows_carry_the_controller_instance_id_on_the_wire(onprem, cli, tmp_path: Path) -> None:
    """With onprem.argo_instance_id, the Workflow bioinfra POSTs carries
    workflows.argoproj.io/controller-instanceid=<id> (set on the parsed Workflow), the label Argo's
    controller with that instanceID selects (Argo v3.7.18 docs/workflow-controller-configmap.yaml)."""
    api = onprem["api"]
    _config(tmp_path, onprem["kubeconfig"], argo="existing", argo_instance_id="lab-ci")
    proc = cli("run", "fastqc-to-bwa", "--target", "onprem", "--detach", "-o", str(tmp_path / "out"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    posted = [r.data for r in api.requests("POST", "/apis/argoproj.io/v1alpha1/namespaces/bioinfra/workflows")]
    assert len(posted) == 1
    labels = posted[0]["metadata"]["labels"]
    assert labels["workflows.argoproj.io/controller-instanceid"] == "lab-ci"
    assert labels["bioinfra.io/run-id"] == posted[0]["metadata"]["name"]
    assert "lab-ci" not in (REPO / "templates" / "pipelines" / "fastqc-to-bwa" / "workflow.yaml.j2").read_text()
    # Without an instance ID, no such label (a controller without one takes only unlabelled Workflows).
    _config(tmp_path, onprem["kubeconfig"])
    proc = cli("run", "fastqc-to-bwa", "--target", "onprem", "--detach", "-o", str(tmp_path / "out2"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    second = [r.data for r in api.requests("POST", "/apis/argoproj.io/v1alpha1/namespaces/bioinfra/workflows")][-1]
    assert "workflows.argoproj.io/controller-instanceid" not in second["metadata"]["labels"]
