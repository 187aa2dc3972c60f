"""The cellprofiler Workflow: golden files, the strict Argo schema, kubernetes-validate --strict,
and a size that does not grow with the screen (the data file travels as a file, the fan-out is a
withParam over the plan step's output)."""

from __future__ import annotations

import json

import jsonschema
import kubernetes_validate
import pytest
import yaml

from bioinfra.config import Config, parse_config
from bioinfra.engine.render import step_scripts
from bioinfra.executor.workflow import parse_workflow
from bioinfra.pipelines import load_workflow
from tests import render_engine
from tests.argo_pods import pods_for
from tests.conftest import REPO, assert_golden

ARGO_SCHEMA = json.loads((REPO / "tests" / "schemas" / "argo-workflow.schema.json").read_text())
# The Workflow parameters the engine makes from a screen's inputs (workspace-relative paths).
PARAMS = {
    "images-dir": "inputs/3f0c1a2b4d5e6f70/images",
    "data-file": "inputs/9a8b7c6d5e4f3a2b/images.csv",
    "illum-pipeline": "inputs/0011223344556677/illum.cppipe",
    "analysis-pipeline": "inputs/8899aabbccddeeff/analysis.cppipe",
    "run-dir": "runs/preview",
    "title": "bundled synthetic screen",
}
AWS = parse_config({"target": "aws", "name": "lab-hcs", "region": "eu-west-2"})
CASES = {
    "local": (Config(), "local", PARAMS, 4, None),
    "aws-staged": (AWS, "aws", {
        **PARAMS,
        "stage-in": ":s3,provider=AWS,env_auth=true:lab-hcs-data/plate1/\tinputs/remote-5c1e0b9d7a3f2e11/images",
        "stage-out": ":s3,provider=AWS,env_auth=true:lab-hcs-results/runs/preview",
    }, 50, 20),
}


def render(config, target, params, batch_size=4, parallelism=None) -> str:
    return render_engine.text("cellprofiler", config, target, params, values={"batch_size": batch_size},
                              items=batch_size, parallelism=parallelism)


def rendered(case: str) -> str:
    return render(*CASES[case])


@pytest.mark.parametrize("case", sorted(CASES))
def test_workflow_matches_golden(case):
    assert_golden(f"workflows/cellprofiler.{case}.yaml", rendered(case))


@pytest.mark.parametrize("case", sorted(CASES))
def test_workflow_passes_strict_argo_schema(case):
    doc = yaml.safe_load(rendered(case))
    errors = sorted(jsonschema.Draft202012Validator(ARGO_SCHEMA).iter_errors(doc), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors)


@pytest.mark.parametrize("case", sorted(CASES))
def test_step_pods_pass_kubernetes_validate_strict(case):
    for pod in pods_for(yaml.safe_load(rendered(case))):
        kubernetes_validate.validate(pod, "1.32.0", strict=True)


def test_fan_out_is_a_with_param_over_the_plan_and_tolerates_failed_batches():
    doc = yaml.safe_load(rendered("local"))
    dag = doc["spec"]["templates"][0]["dag"]
    tasks = {t["name"]: t for t in dag["tasks"]}
    analyze = tasks["analyze"]
    assert analyze["withParam"] == "{{tasks.plan.outputs.parameters.batches}}"
    # Argo v3.7 refuses continueOn in a DAG that uses depends (issue #16): the gather's depends
    # takes a failed batch group instead, and failFast: false lets every branch finish.
    assert "continueOn" not in analyze and dag["failFast"] is False
    assert {p["name"]: p["value"] for p in analyze["arguments"]["parameters"]} == {
        "first": "{{item.first}}", "last": "{{item.last}}"}
    assert tasks["gather"]["depends"] == "plan && (analyze.Succeeded || analyze.Failed || analyze.Errored)"
    # The gather's verdict is the Workflow's (Argo's assessDAGPhase reads the targets), not stage-out's.
    assert dag["target"] == "gather stage-out"
    # The wrapper around a batch carries the failure budget, as every step's does.
    wrapper = next(t for t in doc["spec"]["templates"] if t["name"] == "analyze")
    assert wrapper["retryStrategy"]["retryPolicy"] == "OnFailure"
    # The local executor reads the same document.
    workflow = parse_workflow(doc)
    assert workflow.task("analyze").fans_out and not workflow.fail_fast
    assert workflow.targets == ["gather", "stage-out"]


def test_size_does_not_grow_with_the_screen(tmp_path):
    """Same Workflow bytes for 10 and 10,000 image sets: nothing about the sets is inlined. The
    data files differ, so their content-addressed paths differ, but not in length."""
    sizes = {}
    for image_sets in (10, 10_000):
        data = tmp_path / f"images-{image_sets}.csv"
        rows = ["Metadata_Plate,Metadata_Well,Metadata_Site,FileName_DNA,PathName_DNA"]
        rows += [f"P{i // 384},W{i % 384:03d},1,P{i // 384}_W{i % 384:03d}_s1_w1.png,." for i in range(image_sets)]
        data.write_text("\n".join(rows) + "\n")
        import hashlib

        digest = hashlib.sha256(data.read_bytes()).hexdigest()[:16]
        text = render(Config(), "local", {**PARAMS, "data-file": f"inputs/{digest}/images.csv"})
        assert f"inputs/{digest}/images.csv" in text
        sizes[image_sets] = len(text.encode())
    assert sizes[10] == sizes[10_000]
    assert sizes[10] < 256 * 1024  # far below etcd's ~1.5 MiB object limit


def test_parallelism_only_when_asked():
    assert "parallelism" not in yaml.safe_load(rendered("local"))["spec"]
    assert yaml.safe_load(rendered("aws-staged"))["spec"]["parallelism"] == 20


def test_scripts_go_in_verbatim_and_argo_finds_no_tags_in_them():
    scripts = {k: v for k, v in step_scripts(render_engine.spec("cellprofiler")).items() if "." not in k}
    text = rendered("local")
    for name, source in scripts.items():
        assert "{{" not in source, name
        body = load_workflow(text)
        template = next(t for t in body["spec"]["templates"] if t["name"] == f"{'plan' if name == 'plan_batches' else name}-attempt")
        assert source in template["script"]["source"], name
