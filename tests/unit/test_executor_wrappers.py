"""The local executor on retry wrappers (issue #6) and on the staging tasks of the real Workflow.

A wrapper is a `steps` template with one step calling an `-attempt` script template: the wrapper
carries the failure budget (used locally), the attempt the node-level budget (cluster only).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bioinfra.config import parse_config
from bioinfra.errors import WorkflowSpecError
from bioinfra.executor.workflow import parse_workflow
from bioinfra.pipelines import PREEMPTION_RETRY_EXPRESSION
from tests.unit.test_executor import run, step, workflow

FLAKY = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo attempt $n; [ $n -ge 3 ]\n"


def attempt(name: str, source: str, **kwargs) -> dict:
    """A script template with a node-level retryStrategy, as the rendered Workflow has."""
    t = step(name, source, **kwargs)
    t["retryStrategy"] = {"limit": "5", "retryPolicy": "Always", "expression": PREEMPTION_RETRY_EXPRESSION}
    return t


def wrapper(name: str, target: str, *, retries: int = 0, inputs: list[str] | None = None,
            outputs: dict[str, str] | None = None, step_extra: dict | None = None) -> dict:
    """`outputs`: wrapper output name -> the attempt's output it re-exports."""
    run_step: dict = {"name": "run", "template": target, **(step_extra or {})}
    t: dict = {
        "name": name,
        "retryStrategy": {"limit": str(retries), "retryPolicy": "OnFailure", "backoff": {"duration": "0s", "factor": "2"}},
        "steps": [[run_step]],
    }
    if inputs:
        t["inputs"] = {"parameters": [{"name": p} for p in inputs]}
        run_step["arguments"] = {"parameters": [{"name": p, "value": f"{{{{inputs.parameters.{p}}}}}"} for p in inputs]}
    if outputs:
        t["outputs"] = {
            "parameters": [
                {"name": k, "valueFrom": {"parameter": f"{{{{steps.run.outputs.parameters.{v}}}}}"}} for k, v in outputs.items()
            ]
        }
    return t


def test_wrapper_runs_its_attempt_with_the_outer_retry_budget(tmp_path):
    # The attempt's own limit (5, node-level) does not apply here: the wrapper's does.
    ok, _ = run(workflow([{"name": "f", "template": "w"}], [wrapper("w", "w-attempt", retries=2), attempt("w-attempt", FLAKY)]),
                tmp_path / "ok")
    assert ok.phase == "Succeeded" and ok.tasks["f"].attempts == 3 and ok.tasks["f"].max_attempts == 3
    assert list(ok.tasks) == ["f"] and ok.tasks["f"].template == "w"  # one line per DAG task, not per template
    log = (tmp_path / "ok" / "logs" / "f.log").read_text()
    assert log.count("=== bioinfra: step 'f' attempt") == 3
    bad, _ = run(workflow([{"name": "f", "template": "w"}], [wrapper("w", "w-attempt", retries=1), attempt("w-attempt", FLAKY)]),
                 tmp_path / "bad")
    assert bad.phase == "Failed" and bad.tasks["f"].attempts == 2


def test_wrapper_passes_inputs_through_and_re_exports_outputs(tmp_path):
    inner = attempt(
        "qc-attempt",
        'printf %s "{{inputs.parameters.verdict}}" > "{{inputs.parameters.stem}}.verdict"\n',
        params=["stem", "verdict"],
        out_params={"verdict": "/ws/{{inputs.parameters.stem}}.verdict"},
        outputs=["{{inputs.parameters.stem}}.verdict"],
    )
    doc = workflow(
        [
            {"name": "qc", "template": "qc",
             "arguments": {"parameters": [{"name": "stem", "value": "{{workflow.parameters.sample}}_R1"},
                                          {"name": "verdict", "value": "FAIL"}]}},
            {"name": "gated", "template": "noop", "depends": "qc",
             "when": "'{{tasks.qc.outputs.parameters.per-base-quality}}' != 'FAIL'"},
            {"name": "report", "template": "noop", "depends": "qc && (gated.Succeeded || gated.Skipped)"},
        ],
        [wrapper("qc", "qc-attempt", inputs=["stem", "verdict"], outputs={"per-base-quality": "verdict"}), inner,
         step("noop", "true\n")],
        parameters={"sample": "lambda"},
    )
    result, ws = run(doc, tmp_path)
    assert (ws / "lambda_R1.verdict").read_text() == "FAIL"
    assert result.tasks["qc"].output_parameters == {"per-base-quality": "FAIL"}
    assert {n: t.phase for n, t in result.tasks.items()} == {"qc": "Succeeded", "gated": "Skipped", "report": "Succeeded"}
    # The attempt's outputs annotation is what --resume checks, under the DAG task's name.
    marker = json.loads((tmp_path / "state" / "steps" / "qc.json").read_text())
    assert set(marker["outputs"]) == {"lambda_R1.verdict"}
    again, _ = run(doc, tmp_path, resume=True)
    assert again.tasks["qc"].cached and again.tasks["qc"].output_parameters == {"per-base-quality": "FAIL"}


def _rejects(templates: list[dict], match: str) -> None:
    doc = workflow([{"name": "a", "template": "w"}], [*templates, attempt("t", "true\n"), step("u", "true\n")])
    with pytest.raises(WorkflowSpecError, match=match):
        parse_workflow(doc)


def test_other_steps_shapes_are_steps_templates_whose_retry_is_rejected():
    # Not shaped as a retry wrapper, each is a steps template in its own right (the tree engine runs
    # those); a retryStrategy on a steps template (retrying the whole node) is not run locally.
    two_steps = wrapper("w", "t")
    two_steps["steps"][0].append({"name": "second", "template": "u"})
    _rejects([two_steps], r"template 'w' uses retryStrategy")
    two_groups = wrapper("w", "t")
    two_groups["steps"].append([{"name": "second", "template": "u"}])
    _rejects([two_groups], r"template 'w' uses retryStrategy")
    _rejects([wrapper("w", "t", step_extra={"when": "true"})], r"template 'w' uses retryStrategy")
    _rejects([wrapper("w", "t", step_extra={"withItems": [1, 2]})], r"template 'w' uses retryStrategy")
    _rejects([wrapper("w", "inner"), wrapper("inner", "t")], r"template '(w|inner)' uses retryStrategy")
    _rejects([wrapper("w", "missing")], r"template 'w' uses retryStrategy|calls unknown template 'missing'")
    parallel = wrapper("w", "t")
    parallel["parallelism"] = 2
    _rejects([parallel], r"template 'w' uses (parallelism|retryStrategy)")
    by_path = wrapper("w", "t")
    by_path["outputs"] = {"parameters": [{"name": "x", "valueFrom": {"path": "/ws/x"}}]}
    _rejects([by_path], r"template 'w': output parameter 'x' must be valueFrom.parameter")
    annotated = wrapper("w", "t")
    annotated["metadata"] = {"annotations": {"bioinfra.io/outputs": "x"}}
    _rejects([annotated], r"put the bioinfra.io/outputs annotation on 't'")


def test_wrapper_parameters_must_match_the_attempt():
    doc = workflow([{"name": "a", "template": "w"}], [wrapper("w", "t"), attempt("t", "echo {{inputs.parameters.x}}\n", params=["x"])])
    with pytest.raises(WorkflowSpecError, match="does not pass parameter 'x' that 't' needs"):
        parse_workflow(doc)
    extra = wrapper("w", "t", inputs=["y"])
    doc = workflow([{"name": "a", "template": "w"}], [extra, attempt("t", "true\n")])
    with pytest.raises(WorkflowSpecError, match="passes y, which 't' does not take"):
        parse_workflow(doc)


def _with_env(env: list[dict]) -> dict:
    t = attempt("t", 'if [ -n "${SECRET+x}" ]; then echo "SECRET is set" >&2; exit 1; fi; echo "PLAIN=$PLAIN"\n')
    t["script"]["env"] = env
    return workflow([{"name": "a", "template": "w"}], [wrapper("w", "t"), t])


def test_optional_secret_env_is_left_unset_locally(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET", "from-the-caller")  # must not leak into the step in its place
    doc = _with_env([{"name": "PLAIN", "value": "p"},
                     {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": True}}}])
    result, _ = run(doc, tmp_path)
    assert result.phase == "Succeeded", (tmp_path / "logs" / "a.log").read_text()
    assert "PLAIN=p" in (tmp_path / "logs" / "a.log").read_text()


def test_required_secret_or_other_env_sources_are_rejected():
    required = _with_env([{"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}])
    with pytest.raises(WorkflowSpecError, match="env SECRET needs Kubernetes secret 's' .* no Secrets on this machine") as err:
        parse_workflow(required)
    assert "optional: true" in (err.value.hint or "")
    config_map = _with_env([{"name": "SECRET", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}])
    with pytest.raises(WorkflowSpecError, match="env SECRET takes its value from configMapKeyRef"):
        parse_workflow(config_map)


# -- the staging tasks of the real Workflow, run locally with a stand-in rclone ---------------------

FAKE_RCLONE = """#!/bin/bash
# Stand-in for rclone: records its arguments and which S3 credentials it saw, then copies.
printf '%s|AWS_ACCESS_KEY_ID=%s\\n' "$*" "${AWS_ACCESS_KEY_ID-<unset>}" >> "$RCLONE_CALLS"
args=(); for a in "$@"; do case "$a" in -*) ;; *) args+=("$a") ;; esac; done
src="${args[-2]#:local:}"; dst="${args[-1]#:local:}"
case "$1" in
  copyto) mkdir -p "$(dirname "$dst")" && cp "$src" "$dst" ;;
  copy) mkdir -p "$dst" && cp -R "$src"/. "$dst"/ ;;
esac
"""


def _staging_workflow(stage_in: str = "", stage_out: str = "") -> dict:
    """The rendered Workflow's staging tasks alone (with their wrappers), parameters filled in.
    The values are set after rendering (the engine checks them before: engine.prepare): this tests
    what the steps do with whatever reaches them."""
    from tests import render_engine

    params = {"sample": "s", "r1": "inputs/x/s_R1.fastq.gz", "r2": "inputs/x/s_R2.fastq.gz",
              "reference": "references/y/reference.fa", "run-dir": "runs/r1",
              "stage-in": ":local:x\tinputs/x" if stage_in else "", "stage-out": ":local:x" if stage_out else ""}
    config = parse_config({"pipeline": {"retries": 0, "retry_backoff": "0s"}})
    doc = render_engine.workflow("fastqc-to-bwa", config, "local", params, values={"qc_gate": False})
    for p in doc["spec"]["arguments"]["parameters"]:
        p["value"] = {"stage-in": stage_in, "stage-out": stage_out}.get(p["name"], p["value"])
    keep = {"stage-in", "stage-in-attempt", "stage-out", "stage-out-attempt"}
    main = doc["spec"]["templates"][0]
    main["dag"]["tasks"] = [
        {**t, "depends": "stage-in.Succeeded || stage-in.Skipped"} if t["name"] == "stage-out" else t
        for t in main["dag"]["tasks"] if t["name"] in keep
    ]
    doc["spec"]["templates"] = [main, *(t for t in doc["spec"]["templates"] if t["name"] in keep)]
    return doc


def _run_staging(doc: dict, tmp_path: Path, monkeypatch) -> tuple:
    from bioinfra.executor.runner import LocalExecutor
    from bioinfra.executor.runtime import NativeRuntime

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "rclone").write_text(FAKE_RCLONE)
    (bin_dir / "rclone").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("RCLONE_CALLS", str(tmp_path / "calls.txt"))
    ws = tmp_path / "ws"
    (ws / "runs" / "r1" / ".bioinfra").mkdir(parents=True)
    (ws / "runs" / "r1" / "report.html").write_text("report\n")
    executor = LocalExecutor(parse_workflow(doc), volume_roots={"workspace": ws}, state_dir=tmp_path / "state",
                             log_dir=tmp_path / "logs", runtime=NativeRuntime(), max_cpus=2)
    return executor.run(), ws


def test_staging_tasks_are_skipped_when_their_parameters_are_empty(tmp_path, monkeypatch):
    result, _ = _run_staging(_staging_workflow(), tmp_path, monkeypatch)
    assert {n: t.phase for n, t in result.tasks.items()} == {"stage-in": "Skipped", "stage-out": "Skipped"}
    assert result.phase == "Succeeded" and not (tmp_path / "calls.txt").exists()


def test_stage_in_and_out_copy_with_minio_credentials_only_for_minio(tmp_path, monkeypatch):
    src = tmp_path / "bucket"
    src.mkdir()
    (src / "a.fq").write_text("A\n")
    (src / "b.fq").write_text("B\n")
    monkeypatch.setenv("MINIO_ROOT_USER", "from-the-caller")  # optional secret: unset in the step
    doc = _staging_workflow(
        stage_in=f":local:{src}/a.fq\tinputs/x/s_R1.fastq\n:local,provider=Minio:{src}/b.fq\tinputs/x/s_R2.fastq\n",
        stage_out=f":local:{tmp_path}/results",
    )
    result, ws = _run_staging(doc, tmp_path, monkeypatch)
    # provider=Minio with no secret on this machine: refused with a clear message, after the first file.
    assert result.tasks["stage-in"].phase == "Failed"
    log = (tmp_path / "logs" / "stage-in.log").read_text()
    assert "no MinIO credentials: secret bioinfra-minio" in log
    assert (ws / "inputs/x/s_R1.fastq").read_text() == "A\n"
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert calls[0].startswith("copyto --checksum") and calls[0].endswith("./inputs/x/s_R1.fastq|AWS_ACCESS_KEY_ID=<unset>")

    monkeypatch.delenv("MINIO_ROOT_USER")
    ok_doc = _staging_workflow(stage_in=f":local:{src}/a.fq\tinputs/x/s_R1.fastq", stage_out=f":local:{tmp_path}/results")
    result, ws = _run_staging(ok_doc, tmp_path / "ok", monkeypatch)
    assert result.phase == "Succeeded", (tmp_path / "ok" / "logs" / "stage-in.log").read_text()
    assert (tmp_path / "results" / "report.html").read_text() == "report\n"
    assert "stage-in: 1 file(s) in place" in (tmp_path / "ok" / "logs" / "stage-in.log").read_text()
    copy = [c for c in (tmp_path / "ok" / "calls.txt").read_text().splitlines() if c.startswith("copy ")]
    assert copy and "--exclude /.bioinfra/**" in copy[0] and "./runs/r1" in copy[0]


def test_stage_in_refuses_a_destination_outside_the_workspace(tmp_path, monkeypatch):
    doc = _staging_workflow(stage_in=f":local:{tmp_path}/x\t../escape")
    result, _ = _run_staging(doc, tmp_path, monkeypatch)
    assert result.tasks["stage-in"].phase == "Failed"
    assert "is not a workspace-relative path" in (tmp_path / "logs" / "stage-in.log").read_text()
