"""Large runs on a cluster: the Workflow's nodes stored compressed (status.compressedNodes).

Argo v3.7 stores status.nodes gzipped and base64-encoded in status.compressedNodes once the
Workflow's JSON passes 1 MiB (workflow/packer/packer.go CompressWorkflowIfNeeded); a `--samples` run
passes it from about 90 chunks, a screen from about 260 batches. Before bioinfra decoded it, the
status reader saw no steps at all in such a run.

STAND-INS (named): kmock as the API server; tests/fakes/argo.py as Argo's controller, compressing as
packer.go does (its size limit lowered with `max_workflow_size`, as the controller's own
MAX_WORKFLOW_SIZE environment variable lowers Argo's, so that 20 samples suffice; the stand-in's nodes
carry fewer fields than Argo's); moto's S3 as MinIO. Real: the cluster path (submit, watch, log keeper,
finish, `runs status`), the kubernetes client, the rendered Workflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.argo import ArgoStatus, play

pytestmark = pytest.mark.integration
SAMPLES = [f"S{i}" for i in range(1, 21)]


def test_a_samples_run_whose_nodes_argo_compressed_is_followed_logged_and_reported(onprem, env, tmp_path: Path,
                                                                                  monkeypatch) -> None:
    from bioinfra.adaptors.kube import connect
    from bioinfra.config import parse_config
    from bioinfra.core.cluster_run import run_status
    from bioinfra.executor.runner import SKIPPED, SUCCEEDED
    from bioinfra.sampledata import bundled
    from tests.integration.test_cluster_run import run_in_process

    for key in ("BIOINFRA_MINIO_URL", "XDG_CACHE_HOME"):
        monkeypatch.setenv(key, env[key])
    api, s3 = onprem["api"], onprem["s3"]
    data = bundled()
    sheet = tmp_path / "samples.csv"
    sheet.write_text("sample,r1,r2\n" + "".join(f"{s},{data.r1},{data.r2}\n" for s in SAMPLES))

    def script(argo: ArgoStatus, result: dict[str, Any]) -> None:
        rows = s3.get_object(Bucket="workspace", Key=f"{argo.run_dir}/sheet.tsv")["Body"].read().decode()
        rows = rows.strip().split("\n")[1:]
        argo.succeeded("plan", "index-reference")
        argo.patch()
        for stage in ("fastqc", "align", "stats"):
            group = argo.group(stage)
            for i, row in enumerate(rows):
                sample = row.split("\t")[0]
                argo.step(stage, [("Succeeded", f"{stage} {sample}: ok\n", "")],
                          node_name=f"{argo.name}.{stage}({i}:first:{i + 1},last:{i + 1})")
            argo.group_done(group, "Succeeded")
            argo.patch()
        argo.succeeded("report")
        argo.put("samples.tsv", "sample\tstatus\tstage\treason\n" + "".join(f"{s}\tok\t\t\n" for s in SAMPLES))
        argo.put("multiqc/multiqc_report.html", "<html>20</html>")
        result["phase"] = argo.finish()

    config = parse_config({"name": "lab", "target": "onprem"})
    argo = play(api, s3, script, max_workflow_size=48 * 1024)
    kube = connect(onprem["kubeconfig"])
    outcome = run_in_process(config, kube, "fastqc-to-bwa", {"samples": sheet}, tmp_path / "out")
    argo.join(10)
    assert "error" not in argo.result, argo.result.get("error")
    stand_in = argo.result["argo"]
    assert stand_in.compressed_writes >= 2  # the statuses bioinfra read were compressed, the final one too
    stored = kube.get_workflow("bioinfra", outcome.run_id)
    assert stored["status"].get("compressedNodes") and not stored["status"].get("nodes")

    assert argo.result["phase"] == "Succeeded" and outcome.phase == "Succeeded"
    children = [name for name in outcome.tasks if "(" in name]
    assert len(children) == 3 * len(SAMPLES)
    # onprem has no stage-in/stage-out (when: false, Skipped); every other step and child ran.
    assert {n: s.phase for n, s in outcome.tasks.items() if s.phase != SUCCEEDED} == {
        "stage-in": SKIPPED, "stage-out": SKIPPED}
    # Every child's log was read while the run was followed (from the compressed statuses).
    assert (tmp_path / "out" / "logs" / "align(19_first_20_last_20).log").read_text().count("align S20: ok") == 1
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["steps"]["stats(0:first:1,last:1)"]["phase"] == SUCCEEDED

    # `bioinfra runs status` reads the stored (compressed) object too.
    _workflow, states = run_status(kube, outcome.run_id, 1)
    assert len([n for n in states if "(" in n]) == 3 * len(SAMPLES)
    assert states["report"].phase == SUCCEEDED
