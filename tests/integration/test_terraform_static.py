"""Static checks of the AWS and GCP Terraform: `terraform fmt`, `terraform validate` of every stack
root with its modules, checkov's security scan, and a reason on every checkov skip.

AWS: both renderings (real AWS and the emulator profile). GCP: the "full" (spot GPU pool, Filestore,
GCS state) and "minimal" renderings; `terraform validate` needs the google provider, which is not on
this machine (no Terraform registry): it runs where the provider is in the mirror and is skipped with
that reason here. The google stacks are checked against the provider's schema instead
(tests/unit/test_provider_schema.py). The addons stack (inside the cluster; aws, gcp and three onprem
renderings) needs the kubernetes, helm and random providers, which are not installable here either:
fmt and checkov run on it, validate is skipped with that reason, and test_provider_schema.py checks it
against those providers' schemas.

Real: Terraform with the AWS provider from the local mirror (/opt/tf-plugins) and checkov from
.venv-checkov (scripts/checkov.sh installs it). Nothing is planned or applied, no cloud API is called.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bioinfra.config import parse_config
from bioinfra.core.provision import render_environment
from tests.conftest import REPO

pytestmark = pytest.mark.integration

TERRAFORM_DIR = REPO / "terraform"
PLUGIN_MIRROR = Path("/opt/tf-plugins")
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
NOTES = REPO / "docs" / "notes" / "checkov.md"
VARIANTS = ("aws", "emulator")
GCP_VARIANTS = ("gcp-full", "gcp-minimal")
ONPREM_VARIANTS = ("onprem-nfs-server", "onprem-existing-class", "onprem-nfs-subdir")
CLOUD_STACKS = ("network", "cluster", "storage")  # validated with the AWS provider from the mirror
STACKS = (*CLOUD_STACKS, "addons")  # addons: kubernetes/helm/random, not installable here
# As scripts/checkov.sh renders it: a GPU pool, so taints and GPU tags are in the cluster stack.
BASE = {"name": "demo", "target": "aws", "region": "eu-west-2",
        "node_pools": {"gpu": {"machine_type": "g5.xlarge", "max": 2, "gpu": {"count": 1}}}}
GCP_BASE = {"name": "demo", "target": "gcp", "project": "my-project-123", "region": "europe-west2"}
GCP_FULL = {**GCP_BASE,
            "node_pools": {"gpu": {"machine_type": "n1-standard-8", "max": 2, "spot": True,
                                   "gpu": {"type": "nvidia-tesla-t4", "count": 1}}},
            "gcp": {"zones": ["europe-west2-a", "europe-west2-b"], "filestore": True},
            "state": {"backend": "gcs", "bucket": "demo-tfstate"}}
ONPREM_BASE = {"name": "demo", "target": "onprem"}
ONPREM = {
    "onprem-nfs-server": ONPREM_BASE,
    "onprem-existing-class": {**ONPREM_BASE, "onprem": {"storage_class": "cephfs", "context": "lab"}},
    "onprem-nfs-subdir": {**ONPREM_BASE, "onprem": {"nfs_server": "10.0.0.5", "nfs_path": "/srv/bioinfra"},
                          "node_pools": {"gpu": {"machine_type": "gpu-node", "gpu": {"count": 1}}}},
}
# checkov's own syntax: `checkov:skip=<ID>:<reason>`.
SKIP = re.compile(r"checkov:skip=\s*([A-Za-z_\d]+)(?::(.*))?")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rendered")
    render_environment(parse_config(BASE), root / "aws")
    render_environment(parse_config({**BASE, "aws": {"endpoint_url": "http://127.0.0.1:4566"}}), root / "emulator")
    render_environment(parse_config(GCP_FULL), root / "gcp-full")
    render_environment(parse_config(GCP_BASE), root / "gcp-minimal")
    for variant, data in ONPREM.items():
        render_environment(parse_config(data), root / variant)
    for variant in VARIANTS + GCP_VARIANTS + ONPREM_VARIANTS:
        found = {p.parent.name for p in (root / variant).glob("*/main.tf")}
        expected = {"addons"} if variant in ONPREM_VARIANTS else set(STACKS)
        assert found == expected, f"stacks changed: update STACKS in this test ({sorted(found)})"
        assert (root / variant / "modules" / "addons" / "main.tf").is_file(), "the addons module is not copied"
    return root


@pytest.fixture(scope="session")
def plugin_cache(tmp_path_factory) -> Path:
    """One plugin cache for the session: the provider (~600 MB) is linked from it, not copied."""
    return tmp_path_factory.mktemp("tf-plugin-cache")


@pytest.fixture(scope="module")
def tf_env(tmp_path_factory, plugin_cache: Path) -> dict[str, str]:
    """Terraform's environment with our own CLI config (the machine's TF_CLI_CONFIG_FILE may name a
    missing file): providers from the local mirror only, through the session's plugin cache."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on PATH: fmt and validate need it")
    rc = tmp_path_factory.mktemp("tf-cli") / "terraform.rc"
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{PLUGIN_MIRROR}"\n  }}\n}}\n'
                  f'plugin_cache_dir = "{plugin_cache}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(TF_CLI_CONFIG_FILE=str(rc), TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
    return env


def terraform(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["terraform", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def validated(rendered: Path, tf_env: dict[str, str]) -> dict[str, dict]:
    """`terraform init -backend=false` and `validate -json` of every stack, once for this module.
    The inits (under a second each) run one after another: parallel inits race on the plugin cache
    ("mkdir ...: file exists"). The validates run in parallel: each is mostly the provider loading
    its schema."""
    if not (PLUGIN_MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.skip(f"the AWS provider mirror {PLUGIN_MIRROR} is absent: validate needs it (no internet)")
    folders = {f"{v}/{s}": rendered / v / s for v in VARIANTS for s in CLOUD_STACKS}
    init = ["init", "-backend=false", "-input=false", "-no-color"]
    names = list(folders)
    for name in names:
        proc = terraform(init, folders[name], tf_env)
        assert proc.returncode == 0, f"terraform init in {name} failed:\n{proc.stdout}\n{proc.stderr}"
    with ThreadPoolExecutor(max_workers=len(folders)) as pool:
        checks = pool.map(lambda n: terraform(["validate", "-json", "-no-color"], folders[n], tf_env), names)
        return {name: validate_result(proc) for name, proc in zip(names, checks, strict=True)}


def validate_result(proc: subprocess.CompletedProcess) -> dict:
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:  # Terraform failed before it could report (a crash, a bad CLI config)
        return {"valid": False, "warning_count": 0,
                "diagnostics": [{"severity": "error", "summary": "no JSON from validate", "detail": proc.stderr}]}


def test_repository_terraform_is_formatted(tf_env):
    proc = terraform(["fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM_DIR)], REPO, tf_env)
    assert proc.returncode == 0, f"run `terraform fmt -recursive terraform/`:\n{proc.stdout}{proc.stderr}"


def test_rendered_stacks_are_formatted(rendered, tf_env):
    proc = terraform(["fmt", "-check", "-recursive", "-diff", "-no-color", str(rendered)], rendered, tf_env)
    assert proc.returncode == 0, f"the stack templates render unformatted HCL:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("stack", CLOUD_STACKS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_stack_validates(validated, variant, stack):
    result = validated[f"{variant}/{stack}"]
    problems = "\n".join(
        f"{d['severity']}: {d['summary']}: {d.get('detail', '')} "
        f"({d.get('range', {}).get('filename', '?')}:{d.get('range', {}).get('start', {}).get('line', '?')})"
        for d in result["diagnostics"]
    )
    assert result["valid"], problems
    assert result["warning_count"] == 0, problems  # deprecations show up here first


@pytest.mark.parametrize("variant", GCP_VARIANTS)
def test_gcp_stack_validates_where_the_google_provider_is_installed(rendered, tf_env, variant):
    if not (PLUGIN_MIRROR / "registry.terraform.io" / "hashicorp" / "google").is_dir():
        pytest.skip(f"the google provider is not in {PLUGIN_MIRROR} (no Terraform registry here): validate cannot "
                    "run; the stacks are checked against the provider schema in test_provider_schema.py")
    for stack in CLOUD_STACKS:
        folder = rendered / variant / stack
        proc = terraform(["init", "-backend=false", "-input=false", "-no-color"], folder, tf_env)
        assert proc.returncode == 0, f"terraform init in {variant}/{stack} failed:\n{proc.stdout}\n{proc.stderr}"
        result = validate_result(terraform(["validate", "-json", "-no-color"], folder, tf_env))
        assert result["valid"] and result["warning_count"] == 0, result["diagnostics"]


ADDONS_PROVIDERS = ("kubernetes", "helm", "random")


@pytest.mark.parametrize("variant", VARIANTS + GCP_VARIANTS + ONPREM_VARIANTS)
def test_addons_stack_validates_where_its_providers_are_installed(rendered, tf_env, variant):
    registry = PLUGIN_MIRROR / "registry.terraform.io" / "hashicorp"
    missing = [p for p in ADDONS_PROVIDERS + (("google",) if variant in GCP_VARIANTS else ())
               if not (registry / p).is_dir()]
    if missing:
        pytest.skip(f"the {', '.join(missing)} provider(s) are not in {PLUGIN_MIRROR} (no Terraform registry here): "
                    "validate cannot run; the addons stack is checked against the kubernetes, helm and random "
                    "provider schemas in test_provider_schema.py")
    folder = rendered / variant / "addons"
    proc = terraform(["init", "-backend=false", "-input=false", "-no-color"], folder, tf_env)
    assert proc.returncode == 0, f"terraform init in {variant}/addons failed:\n{proc.stdout}\n{proc.stderr}"
    result = validate_result(terraform(["validate", "-json", "-no-color"], folder, tf_env))
    assert result["valid"] and result["warning_count"] == 0, result["diagnostics"]


def skips_in_repository() -> list[tuple[str, str, str]]:
    """(where, check id, reason) of every checkov skip comment in terraform/ (modules and roots)."""
    found = []
    for path in sorted(TERRAFORM_DIR.rglob("*")):
        if not path.is_file() or not path.name.endswith((".tf", ".tf.j2")):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" not in line:
                continue
            match = SKIP.search(line)
            where = f"{path.relative_to(REPO)}:{number}"
            found.append((where, match.group(1) if match else "?", (match.group(2) or "").strip() if match else ""))
    return found


def test_checkov_finds_no_failed_check(rendered):
    if not CHECKOV.exists():
        pytest.skip(f"{CHECKOV.relative_to(REPO)} is absent: scripts/checkov.sh installs it (CI runs that script)")
    # BC_SKIP_MAPPING and --skip-download: nothing is fetched from the vendor's platform.
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"}
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(rendered), "--framework", "terraform", "--download-external-modules", "false",
         "--skip-download", "--compact", "-o", "json"],  # no --quiet: it drops the skipped checks
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    reports = json.loads(proc.stdout)
    (report,) = [r for r in (reports if isinstance(reports, list) else [reports]) if r["check_type"] == "terraform"]
    failed = [f"{f['check_id']} {f['resource']} ({f['file_path']}:{f['file_line_range'][0]}): {f['check_name']}"
              for f in report["results"]["failed_checks"]]
    assert not failed, "fix, or skip with a reason (docs/notes/checkov.md):\n" + "\n".join(failed)
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    assert report["summary"]["resource_count"] > 50, report["summary"]  # the modules were followed
    gcp_checked = {r["resource"] for r in report["results"]["passed_checks"] if ".google_" in r["resource"]
                   or r["resource"].startswith("google_")}
    assert gcp_checked, "checkov scanned no google resource: is the gcp rendering in the scan?"
    k8s_checked = {r["resource"] for r in report["results"]["passed_checks"] if ".kubernetes_" in r["resource"]}
    assert "module.addons.kubernetes_deployment_v1.workspace_s3" in k8s_checked, \
        "checkov scanned no kubernetes resource of the addons module: is it copied beside the addons roots?"
    onprem_scanned = {r["file_path"].split("/")[1] for r in report["results"]["passed_checks"]}
    assert set(ONPREM_VARIANTS) <= onprem_scanned, f"onprem renderings not scanned: {sorted(onprem_scanned)}"
    used = {s["check_id"] for s in report["results"]["skipped_checks"]}
    stale = sorted({check for _, check, _ in skips_in_repository()} - used)
    assert not stale, f"skip comments for checks that no longer fail or no longer apply: {stale}"


def test_every_checkov_skip_gives_a_reason():
    skips = skips_in_repository()
    assert skips, "expected the skips documented in docs/notes/checkov.md"
    bad = [f"{where}: {check}" for where, check, reason in skips if check == "?" or len(reason.split()) < 4]
    assert not bad, "write `#checkov:skip=CKV_...:<why, in a few words>`:\n" + "\n".join(bad)


def test_every_skipped_check_is_in_the_notes():
    notes = NOTES.read_text()
    missing = sorted({check for _, check, _ in skips_in_repository()} - set(re.findall(r"CKV2?_[A-Z0-9]+_\d+", notes)))
    assert not missing, f"list these skipped checks and their reasons in {NOTES.relative_to(REPO)}: {missing}"
