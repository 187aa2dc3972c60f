"""`bioinfra run fastqc-to-bwa --samples SHEET --target onprem`, through the real CLI, against stand-ins.

STAND-INS (named), as in test_cluster_run.py: kmock's Kubernetes API emulator over real HTTP; this
test as Argo's controller (reads the created Workflow, expands each stage's withParam over the
chunks as Argo names them, patches /status, creates pods with Argo's annotations); moto's S3 as
MinIO (what the report step would write is put into the run folder by the test).
Real: the CLI, the sheet and FASTQ checks, the kubernetes client and watch, boto3 uploads/downloads,
the rendered Workflow (strict Argo schema on the wire).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.integration.test_cluster_run import ARGO_SCHEMA, _created_workflow, _node, fake_pod

pytestmark = pytest.mark.integration
SAMPLES = ("S1", "S2", "S3")


def play_argo_samples(api, s3, *, failing: str) -> threading.Thread:
    result: dict[str, Any] = {}

    def controller() -> None:
        try:
            wf = _created_workflow(api)
            result["workflow"] = wf
            name = wf["metadata"]["name"]
            run_dir = f"runs/{name}"
            # What the plan step reads: the normalised sheet bioinfra put into the run folder.
            sheet = s3.get_object(Bucket="workspace", Key=f"{run_dir}/sheet.tsv")["Body"].read().decode()
            result["sheet"] = sheet
            rows = sheet.strip().split("\n")[1:]
            nodes: dict[str, Any] = {}
            nid, root = _node(name, name, "DAG", "Running")
            nodes[nid] = root
            for task in ("plan", "index-reference"):
                fake_pod(api, name, f"{name}.{task}(0)[0].run(0)", "Succeeded", f"{task}: done\n", nodes)
                _, n = _node(name, f"{name}.{task}", "Retry", "Succeeded")
                nodes[n["id"]] = n
            for stage in ("fastqc", "align", "stats"):
                _, group = _node(name, f"{name}.{stage}", "TaskGroup", "Running")
                nodes[group["id"]] = group
                for i, row in enumerate(rows):
                    sample = row.split("\t")[0]
                    bad = stage == "align" and sample == failing
                    child = f"{name}.{stage}({i}:first:{i + 1},last:{i + 1})"
                    for attempt in range(2 if bad else 1):
                        fake_pod(api, name, f"{child}({attempt})[0].run(0)", "Failed" if bad else "Succeeded",
                                 f"{stage} {sample}: {'FAILED' if bad else 'ok'}\n", nodes)
                    _, n = _node(name, child, "Retry", "Failed" if bad else "Succeeded")
                    nodes[n["id"]] = n
                nodes[group["id"]] = {**group, "phase": "Failed" if stage == "align" else "Succeeded"}
                api.patch_status(name, {"phase": "Running", "nodes": nodes})
            fake_pod(api, name, f"{name}.report(0)[0].run(0)", "Failed", f"report: 1 sample(s) failed:\n  {failing}: align\n",
                     nodes)
            _, n = _node(name, f"{name}.report", "Retry", "Failed")
            nodes[n["id"]] = n
            tsv = "sample\tstatus\tstage\treason\n" + "".join(
                f"{s}\t{'failed' if s == failing else 'ok'}\t{'align' if s == failing else ''}\t"
                f"{'failed: bwa mem | samtools sort' if s == failing else ''}\n" for s in SAMPLES)
            s3.put_object(Bucket="workspace", Key=f"{run_dir}/samples.tsv", Body=tsv.encode())
            s3.put_object(Bucket="workspace", Key=f"{run_dir}/multiqc/multiqc_report.html", Body=b"<html>3</html>")
            nodes[nid] = {**root, "phase": "Failed", "finishedAt": "2026-11-27T08:09:00Z"}
            api.patch_status(name, {"phase": "Failed", "finishedAt": "2026-11-27T08:09:00Z", "nodes": nodes})
        except Exception as exc:  # surfaced by the test through result["error"]
            result["error"] = exc

    thread = threading.Thread(target=controller, daemon=True)
    thread.result = result  # type: ignore[attr-defined]
    thread.start()
    return thread


def test_samples_on_onprem_upload_the_sheet_as_a_file_and_name_the_failed_sample(onprem, cli, tmp_path: Path):
    api, s3 = onprem["api"], onprem["s3"]
    reads = tmp_path / "reads"
    for i, sample in enumerate(SAMPLES):
        cli("sample-data", "generate", "--out", str(reads), "--sample", sample, "--pairs", "300", "--seed", str(i),
            check=True)
    sheet = tmp_path / "samples.csv"
    sheet.write_text("sample,r1,r2\n" + "".join(f"{s},reads/{s}_R1.fastq.gz,reads/{s}_R2.fastq.gz\n" for s in SAMPLES))
    argo = play_argo_samples(api, s3, failing="S2")
    out = tmp_path / "out"
    proc = cli("run", "fastqc-to-bwa", "--samples", str(sheet), "--target", "onprem", "-o", str(out), timeout=120)
    argo.join(10)
    assert "error" not in argo.result, argo.result.get("error")
    wf = argo.result["workflow"]
    jsonschema.validate(wf, ARGO_SCHEMA)
    assert wf["metadata"]["labels"]["bioinfra.io/mode"] == "samples"
    text = json.dumps(wf)
    assert not any(s in text for s in SAMPLES)  # the sheet is a file in the workspace, not in the Workflow
    # Six FASTQs and the reference went up content-addressed; the sheet names their workspace paths.
    for line in argo.result["sheet"].strip().split("\n")[1:]:
        for key in line.split("\t")[1:3]:
            assert len(s3.head_object(Bucket="workspace", Key=key)["Metadata"]["sha256"]) == 64
    assert proc.returncode == 5, proc.stderr
    assert "1 of 3 sample(s) failed: S2 (align: failed: bwa mem | samtools sort)" in proc.stderr
    assert (out / "logs" / "align(1_first_2_last_2).log").read_text().count("===== attempt") == 2
    assert (out / "multiqc" / "multiqc_report.html").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"]["align(1:first:2,last:2)"]["phase"] == "Failed"
