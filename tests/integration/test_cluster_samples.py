"""`bioinfra run fastqc-to-bwa --samples SHEET --target onprem`, through the real CLI, against stand-ins.

STAND-INS (named), as in test_cluster_run.py: kmock's Kubernetes API emulator over real HTTP; this
test as Argo's controller (tests/fakes/argo.py) (reads the created Workflow, expands each stage's withParam over the
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

from tests.fakes.argo import ArgoStatus, play
from tests.integration.test_cluster_run import ARGO_SCHEMA, run_in_process

pytestmark = pytest.mark.integration
SAMPLES = ("S1", "S2", "S3")


def play_argo_samples(api, s3, *, failing: str) -> threading.Thread:
    """plan and index succeed; fastqc, align, stats fan out one child per chunk of one sample (the
    `failing` sample's align fails on both attempts); the report names it; stage-out, where the
    Workflow stages results out (aws, gcp), copies them and succeeds. The Workflow's phase is the
    one Argo's assessDAGPhase gives (tests/fakes/argo.py), not the script's."""

    def script(argo: ArgoStatus, result: dict[str, Any]) -> None:
        # What the plan step reads: the normalised sheet bioinfra put into the run folder.
        sheet = s3.get_object(Bucket="workspace", Key=f"{argo.run_dir}/sheet.tsv")["Body"].read().decode()
        result["sheet"] = sheet
        rows = sheet.strip().split("\n")[1:]
        argo.succeeded("plan", "index-reference")
        for stage in ("fastqc", "align", "stats"):
            group = argo.group(stage)
            for i, row in enumerate(rows):
                sample = row.split("\t")[0]
                bad = stage == "align" and sample == failing
                attempt = ("Failed" if bad else "Succeeded", f"{stage} {sample}: {'FAILED' if bad else 'ok'}\n", "")
                argo.step(stage, [attempt] * (2 if bad else 1), node_name=f"{argo.name}.{stage}({i}:first:{i + 1},last:{i + 1})")
            argo.group_done(group, "Failed" if stage == "align" else "Succeeded")
            argo.patch()
        argo.step("report", [("Failed", f"report: 1 sample(s) failed:\n  {failing}: align\n", "")])
        argo.put("samples.tsv", "sample\tstatus\tstage\treason\n" + "".join(
            f"{s}\t{'failed' if s == failing else 'ok'}\t{'align' if s == failing else ''}\t"
            f"{'failed: bwa mem | samtools sort' if s == failing else ''}\n" for s in SAMPLES))
        argo.put("multiqc/multiqc_report.html", "<html>3</html>")
        params = {p["name"]: p["value"] for p in argo.workflow["spec"]["arguments"]["parameters"]}
        if params["stage-out"]:  # when: "true": after a failed report too (depends report.Failed)
            argo.succeeded("stage-out")
        result["phase"] = argo.finish()
        result["nodes"] = {n["displayName"]: n["phase"] for n in argo.nodes.values()}

    return play(api, s3, script)


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
    assert argo.result["phase"] == "Failed"  # as Argo's leaf rule decides it (tests/fakes/argo.py)
    assert proc.returncode == 5, proc.stderr
    assert "1 of 3 sample(s) failed: S2 (align: failed: bwa mem | samtools sort)" in proc.stderr
    assert (out / "logs" / "align(1_first_2_last_2).log").read_text().count("===== attempt") == 2
    assert (out / "multiqc" / "multiqc_report.html").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"]["align(1:first:2,last:2)"]["phase"] == "Failed"


def test_samples_on_aws_a_failed_sample_fails_the_workflow_though_stage_out_succeeds(onprem, env, tmp_path: Path,
                                                                                    monkeypatch) -> None:
    """Issue #16: on aws/gcp the results are staged out by a last step that runs after a failed report
    too. Argo takes the Workflow's phase from the DAG's targets (assessDAGPhase); with stage-out the
    only leaf, a failed sample ended Succeeded and bioinfra exited 0 there, while locally it exits 5.
    The cluster path, in process, with an aws config against the same stand-ins (kmock as the API
    server, moto as MinIO, tests/fakes/argo.py as the controller deriving the phase from dag.go)."""
    from bioinfra.adaptors.kube import connect
    from bioinfra.config import parse_config
    from bioinfra.errors import BioinfraError
    from bioinfra.sampledata import bundled

    for key in ("BIOINFRA_MINIO_URL", "XDG_CACHE_HOME"):
        monkeypatch.setenv(key, env[key])
    api, s3 = onprem["api"], onprem["s3"]
    data = bundled()
    sheet = tmp_path / "samples.csv"
    sheet.write_text("sample,r1,r2\n" + "".join(f"{s},{data.r1},{data.r2}\n" for s in SAMPLES))
    # buckets.results named: the default carries the account id, asked of STS (issue #18.6), and no AWS is here
    config = parse_config({"name": "lab", "target": "aws", "region": "eu-west-2", "buckets": {"results": "lab-results"}})
    argo = play_argo_samples(api, s3, failing="S3")
    with pytest.raises(BioinfraError) as err:
        run_in_process(config, connect(onprem["kubeconfig"]), "fastqc-to-bwa", {"samples": sheet}, tmp_path / "out")
    argo.join(10)
    assert "error" not in argo.result, argo.result.get("error")
    wf = argo.result["workflow"]
    assert {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}["stage-out"].startswith(":s3,")
    nodes = argo.result["nodes"]
    assert nodes["stage-out"] == "Succeeded" and nodes["report"] == "Failed"
    assert argo.result["phase"] == "Failed"
    assert err.value.exit_code == 5
    assert "1 of 3 sample(s) failed: S3" in err.value.message

