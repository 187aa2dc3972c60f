"""`bioinfra run --target onprem` and `bioinfra runs ...` against stand-ins, through the real CLI.

STAND-INS (named): no Kubernetes API server and no MinIO can run here.
  - the API server is kmock's emulator over real HTTP (tests/fakes/kube_api.py);
  - Argo's controller is this test (tests/fakes/argo.py): it reads the Workflow bioinfra created,
    PATCHes its /status (Running -> nodes -> Succeeded/Failed) and creates the pods with Argo's
    labels/annotations;
  - MinIO (S3 over the shared volume) is moto_server's S3: the pods' writes into the run folder are
    objects the test puts under runs/<id>/.
What is real: the CLI, input checks, the kubernetes client and its watch, boto3 uploads/downloads,
the rendered Workflow (checked against the strict Argo schema on the wire).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import MINIO_CREDS as CREDS
from tests.conftest import REPO
from tests.fakes.argo import ArgoStatus, play
from tests.fakes.kube_api import unreachable_kubeconfig

pytestmark = pytest.mark.integration

ARGO_SCHEMA = json.loads((REPO / "tests" / "schemas" / "argo-workflow.schema.json").read_text())


def run_in_process(config, kube, pipeline: str, given: dict[str, Any], output: Path):
    """`bioinfra run PIPELINE --target <config's>` in this process, on an already connected cluster:
    the engine with the cluster backend (what the CLI does, bioinfra.cli.run_cmd)."""
    from bioinfra.engine.cluster import ClusterBackend
    from bioinfra.engine.engine import RunOptions, execute
    from bioinfra.engine.spec import find_pipeline
    from bioinfra.executor.runner import NullReporter

    return execute(config, find_pipeline(pipeline), given, RunOptions(target=config.target, output=output),
                   ClusterBackend(config, None, config.target, kube=kube), say=lambda _m: None,
                   reporter=NullReporter())


def play_argo(api, s3, *, fail_step: str | None = None, preempt_step: str | None = None) -> threading.Thread:
    """The Argo controller's part (tests/fakes/argo.py): each task once, in order; `preempt_step`'s
    first pod lost with its node, `fail_step` failing (and the Workflow with it)."""

    def script(argo: ArgoStatus, result: dict[str, Any]) -> None:
        argo.patch()
        for i, task in enumerate(argo.tasks):
            if task.startswith("stage-"):
                argo.skipped(task, "when 'false' evaluated false")
                continue
            attempts = []
            if task == preempt_step:
                attempts.append(("Failed", "Pod was terminated in response to imminent node shutdown."))
            attempts.append(("Failed", "Error (exit code 1)") if task == fail_step else ("Succeeded", ""))
            phase = argo.step(task, [(phase, f"{task} attempt {k}: "
                                             f"{'samtools: truncated file' if phase == 'Failed' else 'done'}\n", message)
                                     for k, (phase, message) in enumerate(attempts)],
                              started=lambda attempt, i=i: f"2026-11-27T08:0{i}:{attempt}0Z")
            argo.patch()
            if phase == "Failed":
                break
            # What the step's pod wrote into the shared volume (the run folder in MinIO).
            for rel in {"fastqc-r1": ["fastqc/lambda_R1_fastqc.html"], "align": ["align/lambda.sorted.bam"],
                        "multiqc": ["multiqc/multiqc_report.html"]}.get(task, []):
                argo.put(rel, f"{task} output\n")
        argo.finish("Failed" if fail_step else "Succeeded", f"child '{fail_step}' failed" if fail_step else "")

    return play(api, s3, script)


def test_run_on_onprem_uploads_submits_follows_and_copies_back(onprem, cli, tmp_path: Path) -> None:
    api, s3 = onprem["api"], onprem["s3"]
    argo = play_argo(api, s3, preempt_step="align")
    out = tmp_path / "out"
    proc = cli("run", "fastqc-to-bwa", "--target", "onprem", "-o", str(out), timeout=120)
    argo.join(10)
    assert "error" not in argo.result, argo.result.get("error")
    assert proc.returncode == 0, proc.stderr
    wf = argo.result["workflow"]
    # On the wire: the strict Argo schema, named after the run, labelled, in the bioinfra namespace.
    jsonschema.validate(wf, ARGO_SCHEMA)
    run_id = wf["metadata"]["name"]
    assert run_id.startswith("fastqc-to-bwa-") and wf["metadata"]["namespace"] == "bioinfra"
    assert wf["metadata"]["labels"]["bioinfra.io/run-id"] == run_id
    params = {p["name"]: p.get("value") for p in wf["spec"]["arguments"]["parameters"]}
    assert params["run-dir"] == f"runs/{run_id}" and params["stage-in"] == "" and params["stage-out"] == ""
    # Inputs were uploaded content-addressed, with their checksum recorded.
    for key in (params["r1"], params["r2"], params["reference"]):
        head = s3.head_object(Bucket="workspace", Key=key)
        assert len(head["Metadata"]["sha256"]) == 64
    # Results and the report came back; logs were saved per step; manifest names the outcome.
    assert (out / "multiqc" / "multiqc_report.html").read_text() == "multiqc output\n"
    assert (out / "align" / "lambda.sorted.bam").is_file()
    assert "align attempt 1: done" in (out / "logs" / "align.log").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["phase"] == "Succeeded" and manifest["workflow"] == f"bioinfra/{run_id}"
    assert manifest["steps"]["align"]["attempts"] == 1  # the preempted attempt is not a failure
    assert "node loss" in manifest["steps"]["align"]["message"]
    assert manifest["outputs"]["multiqc/multiqc_report.html"]["bytes"] == len("multiqc output\n")
    assert f"report\t{out / 'multiqc' / 'multiqc_report.html'}" in proc.stdout
    # The watch drove the progress, and the MinIO credentials appear nowhere.
    assert any(r.params.get("watch", "").lower() == "true" for r in api.requests("GET", "/workflows"))
    everything = proc.stdout + proc.stderr + "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    assert CREDS["root-password"] not in everything and CREDS["root-user"] not in everything


def test_logs_of_a_succeeded_run_are_kept_and_its_pods_outlive_it_for_runs_logs(onprem, cli, tmp_path: Path) -> None:
    """#16: the Workflows ask for podGC OnWorkflowSuccess, so Argo deletes every pod once the run
    succeeds, 5 s later by default. Each step's log is read as its node finishes while the run is
    followed, and podGC.deleteDelayDuration (pipelines.POD_GC_DELETE_DELAY; Argo v3.7.18
    pod_cleanup.go getPodGCDelay) keeps the pods, so `runs logs` still reads them afterwards
    (before: "pod deleted")."""
    api, s3 = onprem["api"], onprem["s3"]
    argo = play_argo(api, s3)
    out = tmp_path / "out"
    proc = cli("run", "fastqc-to-bwa", "--target", "onprem", "-o", str(out), timeout=120)
    argo.join(30)
    assert "error" not in argo.result, argo.result.get("error")
    assert proc.returncode == 0, proc.stderr
    wf = argo.result["workflow"]
    assert wf["spec"]["podGC"] == {"strategy": "OnWorkflowSuccess", "deleteDelayDuration": "24h"}
    run_id = wf["metadata"]["name"]
    ran = [t for t in ArgoStatus(api, s3, wf).tasks if not t.startswith("stage-")]
    for task in ran:
        text = (out / "logs" / f"{task}.log").read_text()
        assert f"{task} attempt 0: done" in text and "===== attempt 1: pod " in text, (task, text)
        assert "b'" not in text, (task, text)  # the text itself, not the repr of its bytes (kube.pod_log)
    logs = cli("runs", "logs", run_id, "--step", "align", "--target", "onprem")
    assert logs.returncode == 0, logs.stderr
    assert "pod deleted" not in logs.stdout and "align attempt 0: done" in logs.stdout


def test_logs_of_a_detached_succeeded_run_can_be_read_afterwards(onprem, cli, tmp_path: Path) -> None:
    """#16: `run --detach` follows nothing, so no log is read while the run goes; after it succeeded
    `runs logs` reads every step's log from its pod (kept by podGC.deleteDelayDuration)."""
    api, s3 = onprem["api"], onprem["s3"]
    argo = play_argo(api, s3)
    out = tmp_path / "out"
    proc = cli("run", "fastqc-to-bwa", "--target", "onprem", "-o", str(out), "--detach", timeout=120)
    assert proc.returncode == 0, proc.stderr
    argo.join(30)
    assert "error" not in argo.result, argo.result.get("error")
    run_id = argo.result["workflow"]["metadata"]["name"]
    logs = cli("runs", "logs", run_id, "--target", "onprem")
    assert logs.returncode == 0, logs.stderr
    assert "pod deleted" not in logs.stdout
    for task in [t for t in ArgoStatus(api, s3, argo.result["workflow"]).tasks if not t.startswith("stage-")]:
        assert f"{task} attempt 0: done" in logs.stdout, task


def test_runs_fetch_finishes_a_detached_run_with_its_manifest(onprem, cli, tmp_path: Path) -> None:
    """`run --detach` submits and returns; `runs fetch` finishes the run as `run` would have: logs,
    results and the engine's manifest (its pipeline, mode and inputs from the run record the detached
    run left in the folder; from the Workflow's labels into any other folder)."""
    api, s3 = onprem["api"], onprem["s3"]
    argo = play_argo(api, s3)
    out = tmp_path / "out"
    proc = cli("run", "fastqc-to-bwa", "--target", "onprem", "-o", str(out), "--detach", timeout=120)
    assert proc.returncode == 0, proc.stderr
    argo.join(30)
    assert "error" not in argo.result, argo.result.get("error")
    run_id = argo.result["workflow"]["metadata"]["name"]
    assert proc.stdout == f"run\t{run_id}\n" and not (out / "manifest.json").exists()
    assert json.loads((out / ".bioinfra" / "run.json").read_text())["status"] == "submitted"
    for folder in (out, tmp_path / "elsewhere"):
        fetched = cli("runs", "fetch", run_id, "--target", "onprem", "-o", str(folder), timeout=120)
        assert fetched.returncode == 0, fetched.stderr
        assert f"manifest\t{folder / 'manifest.json'}" in fetched.stdout
        manifest = json.loads((folder / "manifest.json").read_text())
        assert (manifest["pipeline"], manifest["mode"], manifest["phase"], manifest["status"]) == \
            ("fastqc-to-bwa", "single", "Succeeded", "succeeded")
        assert manifest["workflow"] == f"bioinfra/{run_id}"
        assert manifest["outputs"]["multiqc/multiqc_report.html"]["bytes"] == len("multiqc output\n")
        assert "align attempt 0: done" in (folder / "logs" / "align.log").read_text()
    assert set(json.loads((out / "manifest.json").read_text())["inputs"]) == {"r1", "r2", "reference"}
    assert json.loads((out / ".bioinfra" / "run.json").read_text())["status"] == "succeeded"


def test_a_step_ending_with_the_workflow_keeps_its_log(onprem, cli, tmp_path: Path) -> None:
    """The last node can finish in the very update that completes the Workflow, and podGC may delete
    its pod before bioinfra reads it (podGCDeleteDelayDuration 0): its log file says so, the run
    still succeeds, and the steps finished earlier keep their logs."""
    api, s3 = onprem["api"], onprem["s3"]

    def script(argo: ArgoStatus, result: dict[str, Any]) -> None:
        argo.patch()
        tasks = [t for t in argo.tasks if not t.startswith("stage-")]
        for task in argo.tasks:
            if task.startswith("stage-"):
                argo.skipped(task, "when 'false' evaluated false")
        for task in tasks[:-1]:
            argo.step(task, [("Succeeded", f"{task}: done\n", "")])
            argo.patch()
        argo.step(tasks[-1], [("Succeeded", f"{tasks[-1]}: done\n", "")])  # no update before the last
        result["last"] = tasks[-1]
        argo.finish("Succeeded")

    argo = play(api, s3, script)
    out = tmp_path / "out"
    proc = cli("run", "fastqc-to-bwa", "--target", "onprem", "-o", str(out), timeout=120)
    argo.join(30)
    assert "error" not in argo.result, argo.result.get("error")
    assert proc.returncode == 0, proc.stderr
    last = argo.result["last"]
    # podGC.deleteDelayDuration keeps the pod: the last node's log is read too (#16; before, "gone").
    assert f"{last}: done" in (out / "logs" / f"{last}.log").read_text()
    assert "align: done" in (out / "logs" / "align.log").read_text()


def test_failed_step_exits_5_with_its_log_and_runs_commands(onprem, cli, tmp_path: Path) -> None:
    api, s3 = onprem["api"], onprem["s3"]
    argo = play_argo(api, s3, fail_step="align")
    out = tmp_path / "out"
    proc = cli("run", "fastqc-to-bwa", "--target", "onprem", "-o", str(out), timeout=120)
    argo.join(10)
    assert "error" not in argo.result, argo.result.get("error")
    assert proc.returncode == 5, proc.stderr
    assert "step 'align' failed" in proc.stderr and "samtools: truncated file" in proc.stderr
    assert "samtools: truncated file" in (out / "logs" / "align.log").read_text()
    assert json.loads((out / "manifest.json").read_text())["phase"] == "Failed"
    run_id = argo.result["workflow"]["metadata"]["name"]
    # Inputs were already in the workspace from an earlier run? Either way nothing is uploaded twice.
    listed = cli("runs", "list", "--target", "onprem", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {r["run_id"]: r["phase"] for r in json.loads(listed.stdout)}[run_id] == "Failed"
    status = cli("runs", "status", run_id, "--target", "onprem", "--json")
    assert status.returncode == 5 and json.loads(status.stdout)["steps"]["align"]["phase"] == "Failed"
    logs = cli("runs", "logs", run_id, "--step", "align", "--target", "onprem")
    assert logs.returncode == 0 and "samtools: truncated file" in logs.stdout
    cancel = cli("runs", "cancel", run_id, "--target", "onprem")
    assert cancel.returncode == 0 and "already ended" in cancel.stderr
    missing = cli("runs", "status", "fastqc-to-bwa-nope", "--target", "onprem")
    assert missing.returncode == 4 and "no run fastqc-to-bwa-nope" in missing.stderr


def test_cancel_terminates_a_running_workflow(onprem, tmp_path: Path) -> None:
    from bioinfra.adaptors.kube import connect
    from bioinfra.core.cluster_run import cancel_run

    api = onprem["api"]
    api.create("/apis/argoproj.io/v1alpha1/namespaces/bioinfra/workflows", {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": "fastqc-to-bwa-x", "namespace": "bioinfra"}, "spec": {"entrypoint": "main"}})
    api.patch_status("fastqc-to-bwa-x", {"phase": "Running"})
    message = cancel_run(connect(onprem["kubeconfig"]), "fastqc-to-bwa-x")
    assert "cancel requested" in message
    patch = api.requests("PATCH", "/workflows/fastqc-to-bwa-x")[-1]
    assert patch.data == {"spec": {"shutdown": "Terminate"}}


def test_unreachable_cluster_exits_13_before_anything(tmp_path: Path, cli) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(unreachable_kubeconfig())
    (tmp_path / "bioinfra.yaml").write_text(yaml.safe_dump({"target": "onprem", "onprem": {"kubeconfig": str(kubeconfig)}}))
    proc = cli("run", "fastqc-to-bwa", "--target", "onprem", "-o", str(tmp_path / "o"), timeout=120)
    assert proc.returncode == 13, proc.stderr
    assert "does not answer" in proc.stderr and not (tmp_path / "o").exists()


def test_remote_inputs_are_for_their_cloud_only(tmp_path: Path, cli) -> None:
    (tmp_path / "bioinfra.yaml").write_text(yaml.safe_dump({"target": "onprem"}))
    proc = cli("run", "fastqc-to-bwa", "--target", "onprem", "--dry-run", "--r1", "s3://b/a_R1.fq.gz",
               "--r2", "s3://b/a_R2.fq.gz", "--reference", "s3://b/ref.fa")
    assert proc.returncode == 4 and "read in place only on target aws" in proc.stderr


def test_s3_inputs_on_aws_are_checked_and_staged_in_by_the_workflow(moto_endpoint: str, monkeypatch,
                                                                   tmp_path: Path) -> None:
    """Inputs on S3 are read in place: checked to exist (moto), then copied by the stage-in step."""
    import boto3

    from bioinfra.config import parse_config
    from bioinfra.engine.cluster import ClusterBackend, submission
    from bioinfra.engine.engine import RunOptions, prepare
    from bioinfra.engine.spec import find_pipeline
    from bioinfra.errors import InputError

    monkeypatch.setenv("BIOINFRA_AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="eu-west-2")
    s3.create_bucket(Bucket="lab-data-in", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    for key in ("S1_R1.fastq.gz", "S1_R2.fastq.gz", "ref.fa.gz"):
        s3.put_object(Bucket="lab-data-in", Key=key, Body=b"x")
    config = parse_config({"name": "lab", "target": "aws", "region": "eu-west-2"})
    spec = find_pipeline("fastqc-to-bwa")
    given = {"r1": "s3://lab-data-in/S1_R1.fastq.gz", "r2": "s3://lab-data-in/S1_R2.fastq.gz",
             "reference": "s3://lab-data-in/ref.fa.gz"}

    def check(given: dict):
        # The cluster is not contacted (offline, as a dry run): only S3 is.
        return prepare(config, spec, given, RunOptions(target="aws", output=tmp_path / "out"),
                       ClusterBackend(config, None, "aws", offline=True), say=lambda _m: None)

    prepared = check(given)
    sample = prepared.values["sample"]
    assert sample == "S1"
    wf = submission(prepared.workflow, prepared.run_id)
    jsonschema.validate(wf, ARGO_SCHEMA)
    params = {p["name"]: p.get("value") for p in wf["spec"]["arguments"]["parameters"]}
    lines = params["stage-in"].splitlines()
    assert lines[0].startswith(":s3,provider=AWS,env_auth=true:lab-data-in/S1_R1.fastq.gz\tinputs/remote-")
    assert params["r1"] == lines[0].split("\t")[1]
    missing = {**given, "r1": "s3://lab-data-in/nope.fq.gz"}
    with pytest.raises(InputError, match="cannot read it"):
        check(missing)
