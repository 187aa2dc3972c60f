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
