"""Rendering: golden Workflow YAML, the strict Argo schema, and kubernetes-validate --strict."""

from __future__ import annotations

import json
import re

import jsonschema
import kubernetes_validate
import pytest
import yaml

from bioinfra.config import Config, parse_config
from bioinfra.core.init import config_text
from bioinfra.pipelines import PREEMPTION_MESSAGE_PATTERN, PREEMPTION_RETRY_EXPRESSION
from tests import render_engine
from tests.argo_pods import pods_for
from tests.conftest import REPO, assert_golden

# Kubernetes minor versions GKE and EKS offer as of this writing.
K8S_VERSIONS = ["1.30.0", "1.31.0", "1.32.0", "1.33.0"]
ARGO_SCHEMA = json.loads((REPO / "tests" / "schemas" / "argo-workflow.schema.json").read_text())

# The Workflow parameters the engine makes from the bundled sample (workspace-relative paths).
PARAMS = {
    "sample": "lambda",
    "r1": "inputs/ae63f46049d7afc0/lambda_R1.fastq.gz",
    "r2": "inputs/1917d8cac872af5f/lambda_R2.fastq.gz",
    "reference": "references/08fe207fcb4bbe47/reference.fa.gz",
    "run-dir": "runs/preview",
}
GCP = parse_config({"target": "gcp", "name": "lab-seq", "project": "my-lab-project", "region": "europe-west2"})
AWS = parse_config({"target": "aws", "name": "lab-seq", "region": "eu-west-2"})
ONPREM = parse_config({"target": "onprem", "name": "lab-seq"})
# What the cluster code fills in on aws: inputs read in place from S3, results copied back.
AWS_STAGED = {
    **PARAMS,
    "stage-in": (
        ":s3,provider=AWS,env_auth=true:lab-data/S1_R1.fastq.gz\tinputs/ae63f46049d7afc0/lambda_R1.fastq.gz\n"
        ":s3,provider=AWS,env_auth=true:lab-data/S1_R2.fastq.gz\tinputs/1917d8cac872af5f/lambda_R2.fastq.gz"
    ),
    "stage-out": ":s3,provider=AWS,env_auth=true:lab-seq-results/runs/preview",
}

CASES = {
    "local": (Config(), "local", PARAMS, {}),
    "local-qc-gate": (Config(), "local", PARAMS, {"qc_gate": True}),
    "gcp": (GCP, "gcp", PARAMS, {}),
    "aws-staged": (AWS, "aws", AWS_STAGED, {}),
    "onprem": (ONPREM, "onprem", PARAMS, {}),
}
STEPS = ("fastqc", "index-reference", "align", "samtools-stats", "multiqc", "stage-in", "stage-out")


def rendered(case: str) -> str:
    config, target, params, values = CASES[case]
    return render_engine.text("fastqc-to-bwa", config, target, params, values={"qc_gate": False, **values})


@pytest.mark.parametrize("case", sorted(CASES))
def test_workflow_matches_golden(case):
    assert_golden(f"workflows/fastqc-to-bwa.{case}.yaml", rendered(case))


SHEET_PARAMS = {"sheet": "runs/preview/sheet.tsv", "reference": PARAMS["reference"], "title": "cohort-7"}
SAMPLES_CASES = {
    "local": (Config(), "local", SHEET_PARAMS, {}, None),
    "aws-staged": (AWS, "aws", {**SHEET_PARAMS, "stage-out": ":s3,provider=AWS,env_auth=true:lab-seq-results/runs/preview"},
                   {"chunk_size": 25}, 40),
}


@pytest.mark.parametrize("case", sorted(SAMPLES_CASES))
def test_samples_workflow_matches_golden_and_passes_strict_argo_schema(case):
    config, target, params, values, parallelism = SAMPLES_CASES[case]
    text = render_engine.text("fastqc-to-bwa", config, target, params, mode="samples", values=values,
                              items=values.get("chunk_size", 1), parallelism=parallelism)
    assert_golden(f"workflows/fastqc-to-bwa-samples.{case}.yaml", text)
    doc = yaml.safe_load(text)
    errors = sorted(jsonschema.Draft202012Validator(ARGO_SCHEMA).iter_errors(doc), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors)
    for pod in pods_for(doc):
        kubernetes_validate.validate(pod, "1.32.0", strict=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_workflow_passes_strict_argo_schema(case):
    doc = yaml.safe_load(rendered(case))
    errors = sorted(jsonschema.Draft202012Validator(ARGO_SCHEMA).iter_errors(doc), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors)


def test_strict_argo_schema_rejects_a_typo():
    doc = yaml.safe_load(rendered("local"))
    doc["spec"]["templates"][1]["retryStategy"] = {"limit": 1}
    assert list(jsonschema.Draft202012Validator(ARGO_SCHEMA).iter_errors(doc))


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_step_pods_pass_kubernetes_validate_strict(case, version):
    for pod in pods_for(yaml.safe_load(rendered(case))):
        kubernetes_validate.validate(pod, version, strict=True)  # raises ValidationError


def test_dag_shape():
    doc = yaml.safe_load(rendered("local"))
    tasks = {t["name"]: t for t in doc["spec"]["templates"][0]["dag"]["tasks"]}
    staged = "(stage-in.Succeeded || stage-in.Skipped)"
    for name in ("fastqc-r1", "fastqc-r2", "index-reference"):  # in parallel, once inputs are in place
        assert tasks[name]["depends"] == staged
    # Staging runs only on a cluster with something to stage: decided by bioinfra, a literal in the
    # `when` (no parameter value is ever inside an expression Argo evaluates; issue #15).
    assert tasks["stage-in"]["when"] == "false" and "depends" not in tasks["stage-in"]
    assert tasks["align"]["depends"] == "fastqc-r1 && fastqc-r2 && index-reference"
    assert tasks["stats"]["depends"] == "align.Succeeded"
    assert "stats" in tasks["multiqc"]["depends"]
    assert tasks["stage-out"]["depends"] == "multiqc.Succeeded"
    assert tasks["stage-out"]["when"] == "false"
    staged = {t["name"]: t for t in yaml.safe_load(rendered("aws-staged"))["spec"]["templates"][0]["dag"]["tasks"]}
    assert staged["stage-in"]["when"] == staged["stage-out"]["when"] == "true"
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    assert templates["fastqc-attempt"]["nodeSelector"] == {"bioinfra.io/pool": "general"}
    assert templates["align-attempt"]["nodeSelector"] == {"bioinfra.io/pool": "highcpu"}
    for name in ("stage-in", "stage-out"):
        assert templates[f"{name}-attempt"]["nodeSelector"] == {"bioinfra.io/pool": "general"}
    for name in STEPS:
        t = templates[f"{name}-attempt"]
        assert t["script"]["resources"]["requests"]["cpu"]
        # the workspace is the `workspace/` folder of the claim (MinIO's bucket; its metadata sits beside it)
        assert t["script"]["volumeMounts"] == [{"name": "workspace", "mountPath": "/workspace", "subPath": "workspace"}]
    src = templates["align-attempt"]["script"]["source"]
    assert "bwa-mem2" in src and "samtools sort" in src


def test_every_step_is_a_wrapper_with_the_failure_budget_around_a_preemption_budget():
    doc = yaml.safe_load(rendered("local"))
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    dag_templates = {t["template"] for t in templates["main"]["dag"]["tasks"]}
    assert dag_templates == set(STEPS)
    for name in STEPS:
        outer, inner = templates[name], templates[f"{name}-attempt"]
        assert outer["retryStrategy"] == {
            "limit": "2", "retryPolicy": "OnFailure", "backoff": {"duration": "10s", "factor": "2"}
        }
        assert inner["retryStrategy"] == {"limit": "5", "retryPolicy": "Always", "expression": PREEMPTION_RETRY_EXPRESSION}
        assert "script" not in outer and "script" in inner
        [[step]] = outer["steps"]
        assert step["template"] == f"{name}-attempt"
        inputs = [p["name"] for p in (outer.get("inputs") or {}).get("parameters", [])]
        assert inputs == [p["name"] for p in (inner.get("inputs") or {}).get("parameters", [])]
        assert (step.get("arguments") or {}).get("parameters", []) == [
            {"name": p, "value": f"{{{{inputs.parameters.{p}}}}}"} for p in inputs
        ]
        assert [p["name"] for p in (outer.get("outputs") or {}).get("parameters", [])] == [
            p["name"] for p in (inner.get("outputs") or {}).get("parameters", [])
        ]
        for p in (outer.get("outputs") or {}).get("parameters", []):
            assert p["valueFrom"] == {"parameter": f"{{{{steps.{step['name']}.outputs.parameters.{p['name']}}}}}"}
        # --resume reads the outputs annotation where the files are written: on the attempt.
        assert "bioinfra.io/outputs" not in ((outer.get("metadata") or {}).get("annotations") or {})
    assert "bioinfra.io/outputs" in templates["fastqc-attempt"]["metadata"]["annotations"]


def test_preemption_budget_follows_the_config():
    config = parse_config({"pipeline": {"preemption_retries": 0, "retries": 4}})
    doc = yaml.safe_load(render_engine.text("fastqc-to-bwa", config, "local", PARAMS, values={"qc_gate": False}))
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    assert templates["align"]["retryStrategy"]["limit"] == "4"
    assert templates["align-attempt"]["retryStrategy"]["limit"] == "0"


# What Kubernetes and Argo record when a node, not the program, ended an attempt.
NODE_LOSS_MESSAGES = [
    "Pod was terminated in response to imminent node shutdown.",  # graceful node shutdown (spot reclaim)
    "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. ",  # kubelet eviction
    "The node had condition: [DiskPressure]. ",
    "Evicted",
    "pod deleted",  # Argo, when the pod disappears (node deleted, preempted)
]
APPLICATION_FAILURES = [
    "Error (exit code 1)",
    "OOMKilled (exit code 137)",  # the step's own memory limit: a failure budget matter
    "exit code 2: [E::bwa_idx_load_from_disk] fail to locate the index files",
    "",
]


def test_preemption_regex_matches_node_losses_only():
    # Argo evaluates `matches` with Go's RE2 (partial match); the pattern is plain alternatives,
    # which Python's `re` reads the same way.
    regex = re.compile(PREEMPTION_MESSAGE_PATTERN)
    for message in NODE_LOSS_MESSAGES:
        assert regex.search(message), message
    for message in APPLICATION_FAILURES:
        assert not regex.search(message), message


def test_preemption_expression_is_what_argo_reads():
    """The expression's structure, checked with a small reader of expr's grammar for it."""
    m = re.fullmatch(r'lastRetry\.status == "Error" \|\| lastRetry\.message matches \'([^\'\\]*)\'', PREEMPTION_RETRY_EXPRESSION)
    assert m, PREEMPTION_RETRY_EXPRESSION
    assert m.group(1) == PREEMPTION_MESSAGE_PATTERN
    re.compile(m.group(1))
    # No RE2-incompatible constructs (lookarounds, backreferences), no Argo tags.
    assert not re.search(r"\(\?[=!<]|\\[1-9]", m.group(1)) and "{{" not in PREEMPTION_RETRY_EXPRESSION


def test_staging_tasks_take_minio_credentials_only_from_an_optional_secret():
    doc = yaml.safe_load(rendered("aws-staged"))
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    params = {p["name"]: p["value"] for p in doc["spec"]["arguments"]["parameters"]}
    assert params["stage-in"].count("\t") == 2 and params["stage-out"].startswith(":s3,provider=AWS")
    for name in ("stage-in-attempt", "stage-out-attempt"):
        script = templates[name]["script"]
        env = {e["name"]: e for e in script["env"]}
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)  # IRSA must win on AWS
        for var, key in (("MINIO_ROOT_USER", "root-user"), ("MINIO_ROOT_PASSWORD", "root-password")):
            assert env[var]["valueFrom"] == {"secretKeyRef": {"name": "bioinfra-minio", "key": key, "optional": True}}
        assert "rclone" in script["source"] and "--checksum" in script["source"]
        assert script["image"] == templates["multiqc-attempt"]["script"]["image"]  # the fastqc image has rclone


def test_qc_gate_adds_when_and_keeps_report():
    doc = yaml.safe_load(rendered("local-qc-gate"))
    tasks = {t["name"]: t for t in doc["spec"]["templates"][0]["dag"]["tasks"]}
    assert "per-base-quality" in tasks["align"]["when"]
    assert "align.Skipped" in tasks["multiqc"]["depends"]


def test_rendered_file_names_its_template():
    assert rendered("local").startswith("# generated by bioinfra from templates/pipelines/fastqc-to-bwa/workflow.yaml.j2")


@pytest.mark.parametrize("target", ["local", "onprem", "gcp", "aws"])
def test_init_config_matches_golden_and_validates(target):
    text = config_text(target, "lab-seq")
    assert_golden(f"config/bioinfra.{target}.yaml", text)
    assert parse_config(yaml.safe_load(text)).target == target


def test_argo_schema_is_current():
    """The committed schema is what scripts/generate_argo_schema.py makes from the installed hera."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "generate_argo_schema.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_onprem_steps_prefer_their_pool_and_clouds_require_it():
    """#16: on onprem a one-node cluster (one bioinfra.io/pool value per node) or unlabelled nodes left
    general or highcpu steps Pending; there the pool is only preferred. aws/gcp keep the nodeSelector."""
    from tests.unit.test_no_code_injection import SCREEN

    for text in (rendered("onprem"), render_engine.text("cellprofiler", ONPREM, "onprem", SCREEN,
                                                         values={"batch_size": 4})):
        pods = [t for t in yaml.safe_load(text)["spec"]["templates"] if "script" in t or "container" in t]
        assert pods
        for t in pods:
            assert "bioinfra.io/pool" not in (t.get("nodeSelector") or {}), t["name"]
            assert "requiredDuringSchedulingIgnoredDuringExecution" not in (t.get("affinity") or {}).get(
                "nodeAffinity", {})
            term = t["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
            expr = term["preference"]["matchExpressions"][0]
            assert expr["key"] == "bioinfra.io/pool" and expr["operator"] == "In"
            assert expr["values"] in (["general"], ["highcpu"])
    for case in ("gcp", "aws-staged"):
        for t in yaml.safe_load(rendered(case))["spec"]["templates"]:
            if "script" in t or "container" in t:
                assert t["nodeSelector"]["bioinfra.io/pool"] in ("general", "highcpu") and "affinity" not in t
