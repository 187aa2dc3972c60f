"""`bioinfra run cellprofiler --target onprem`, through the real CLI, against stand-ins.

STAND-INS (named), as in test_cluster_run.py: kmock's Kubernetes API emulator over real HTTP; this
test as Argo's controller (tests/fakes/argo.py) (it reads the Workflow bioinfra created, expands the withParam fan-out the
way Argo does, patches /status and creates pods with Argo's annotations); moto's S3 as MinIO (what the
pods would have written into the run folder is put there by the test).
Real: the CLI, input checks (the plan step's own code), the kubernetes client and watch, boto3
uploads/downloads, the rendered Workflow (strict Argo schema on the wire).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.fakes.argo import ArgoStatus, play
from tests.integration.test_cluster_run import ARGO_SCHEMA, run_in_process

pytestmark = pytest.mark.integration
BATCHES = [{"first": 1, "last": 4}, {"first": 5, "last": 8}, {"first": 9, "last": 12}, {"first": 13, "last": 16}]


def label(item: dict[str, int]) -> str:
    return f"first:{item['first']},last:{item['last']}"


def play_argo_screen(api, s3, *, failing: dict[str, int]) -> threading.Thread:
    """plan and illum succeed, the analyze fan-out expands over BATCHES (the `failing` batch OOM-killed
    on both attempts), gather reports it missing."""

    def script(argo: ArgoStatus, result: dict[str, Any]) -> None:
        argo.skipped("stage-in")
        argo.succeeded("plan", "illum")
        argo.patch()
        group = argo.group("analyze")  # withParam over plan's output: one child per batch, Argo's names
        for i, item in enumerate(BATCHES):
            bad = item == failing
            log = f"analyze: image sets {item['first']}-{item['last']}" + (": Killed (OOM)\n" if bad else " done\n")
            attempt = ("Failed", log, "OOMKilled") if bad else ("Succeeded", log, "")
            argo.step("analyze", [attempt] * (2 if bad else 1), node_name=f"{argo.name}.analyze({i}:{label(item)})")
            if not bad:
                argo.put(f"batches/{item['first']}-{item['last']}/Image.csv", "ImageNumber\n")
        argo.group_done(group, "Failed")
        argo.step("gather", [("Failed", "missing image sets 5-8 (batch 5-8): no folder\n", "")])
        argo.put("results/gather.json", json.dumps(  # as gather.py writes it
            {"complete": False, "missing": [{**failing, "reason": "no folder"}], "image_sets_found": 12,
             "missing_image_sets": f"{failing['first']}-{failing['last']}"}))
        argo.put("results/summary.html", "<h1>INCOMPLETE</h1>")
        params = {p["name"]: p["value"] for p in argo.workflow["spec"]["arguments"]["parameters"]}
        if params["stage-out"]:  # aws/gcp: after a failed gather too (depends gather.Failed)
            argo.succeeded("stage-out")
        # The phase is assessDAGPhase's (tests/fakes/argo.py); on onprem stage-out is Skipped.
        result["phase"] = argo.finish(message="child 'gather' failed")

    return play(api, s3, script)


def test_screen_on_onprem_uploads_fans_out_and_names_the_failed_batch(onprem, cli, tmp_path: Path) -> None:
    api, s3 = onprem["api"], onprem["s3"]
    argo = play_argo_screen(api, s3, failing=BATCHES[1])
    out = tmp_path / "out"
    proc = cli("run", "cellprofiler", "--target", "onprem", "-o", str(out), "--max-parallel", "3", timeout=120)
    argo.join(10)
    assert "error" not in argo.result, argo.result.get("error")
    wf = argo.result["workflow"]
    jsonschema.validate(wf, ARGO_SCHEMA)
    run_id = wf["metadata"]["name"]
    assert run_id.startswith("cellprofiler-") and wf["spec"]["parallelism"] == 3
    analyze = next(t for t in wf["spec"]["templates"][0]["dag"]["tasks"] if t["name"] == "analyze")
    assert analyze["withParam"] == "{{tasks.plan.outputs.parameters.batches}}"
    # Every image the data file names, the data file and both pipelines went up, checksummed.
    params = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    listed = s3.list_objects_v2(Bucket="workspace", Prefix=params["images-dir"] + "/")["Contents"]
    assert len(listed) == 16 and all(o["Key"].endswith(".png") for o in listed)
    for key in (params["data-file"], params["illum-pipeline"], params["analysis-pipeline"]):
        assert len(s3.head_object(Bucket="workspace", Key=key)["Metadata"]["sha256"]) == 64
    # Failed (as Argo's leaf rule decides it): exit 5, the batch named by range, each batch's log its
    # own file, results copied back.
    assert argo.result["phase"] == "Failed"
    assert proc.returncode == 5, proc.stderr
    assert "analyze(1:first:5,last:8)" in proc.stderr and "lack image sets 5-8" in proc.stderr
    assert "Killed (OOM)" in (out / "logs" / "analyze(1_first_5_last_8).log").read_text()
    assert (out / "logs" / "analyze(1_first_5_last_8).log").read_text().count("===== attempt") == 2
    assert "image sets 1-4 done" in (out / "logs" / "analyze(0_first_1_last_4).log").read_text()
    assert (out / "results" / "summary.html").read_text() == "<h1>INCOMPLETE</h1>"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"]["analyze(1:first:5,last:8)"]["phase"] == "Failed"
    assert manifest["steps"]["analyze(1:first:5,last:8)"]["attempts"] == 2
    assert manifest["steps"]["analyze"]["phase"] == "Failed"
    # A second run uploads nothing new.
    again = cli("run", "cellprofiler", "--target", "onprem", "-o", str(tmp_path / "out2"), "--detach", timeout=120)
    assert again.returncode == 0, again.stderr
    assert "images: 0 uploaded, 16 already in the workspace" in again.stderr


def test_dry_run_on_a_cluster_says_what_would_go_up_and_creates_nothing(onprem, cli, tmp_path: Path) -> None:
    proc = cli("run", "cellprofiler", "--target", "onprem", "--dry-run", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "steps: stage-in, plan, illum, analyze, gather, stage-out" in proc.stdout
    assert "upload\t19 file(s)" in proc.stdout
    assert not onprem["api"].requests("POST", "/workflows")
    assert not list(Path(tmp_path).glob("results/*"))


def test_screen_on_aws_a_failed_batch_fails_the_workflow_though_stage_out_succeeds(onprem, env, tmp_path: Path,
                                                                                 monkeypatch) -> None:
    """Issue #16: on aws/gcp stage-out runs after a failed gather and succeeds; with it the only leaf
    Argo's assessDAGPhase ended the Workflow Succeeded (exit 0). `target: gather stage-out` makes it
    Failed, exit 5. In process with an aws config against the onprem stand-ins (kmock, moto as MinIO,
    tests/fakes/argo.py deriving the phase)."""
    from bioinfra.adaptors.kube import connect
    from bioinfra.config import parse_config
    from bioinfra.errors import BioinfraError

    for key in ("BIOINFRA_MINIO_URL", "XDG_CACHE_HOME"):
        monkeypatch.setenv(key, env[key])
    # buckets.results named: the default carries the account id, asked of STS (issue #18.6), and no AWS is here
    config = parse_config({"name": "lab", "target": "aws", "region": "eu-west-2", "buckets": {"results": "lab-results"}})
    argo = play_argo_screen(onprem["api"], onprem["s3"], failing=BATCHES[2])
    with pytest.raises(BioinfraError) as err:
        run_in_process(config, connect(onprem["kubeconfig"]), "cellprofiler", {}, tmp_path / "out")
    argo.join(10)
    assert "error" not in argo.result, argo.result.get("error")
    params = {p["name"]: p["value"] for p in argo.result["workflow"]["spec"]["arguments"]["parameters"]}
    assert params["stage-out"].startswith(":s3,")
    assert argo.result["phase"] == "Failed"
    assert err.value.exit_code == 5
    assert "analyze(2:first:9,last:12)" in err.value.message
