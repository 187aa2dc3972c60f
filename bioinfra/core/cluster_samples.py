"""`bioinfra run fastqc-to-bwa --samples SHEET --target aws|gcp|onprem`: many samples, on Argo.

The sheet and every FASTQ are checked as for a local run (core.samples); the FASTQs and the
reference are uploaded into the cluster's workspace through MinIO (content-addressed, skipped when
already there), the normalised sheet goes into the run folder, and the Workflow (the same as
locally) is created and followed by core.cluster_run: one progress row per chunk (or one summary row
for large fan-outs), every chunk's pod log saved, results and the report copied back, failed samples
named from samples.tsv.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from bioinfra.config import Config
from bioinfra.core.cluster_run import (
    NAMESPACE,
    RUN_LABEL,
    StagedInput,
    Submitted,
    _yaml,
    checked_submission,
    results_location,
    run_label,
)
from bioinfra.core.samples import check_samples, normalised_sheet, read_sheet, reference_path, samples_params
from bioinfra.errors import InputError
from bioinfra.files import sha256_file, write_json_atomic
from bioinfra.pipelines import check_title


@dataclass
class ClusterSamplesRequest:
    target: str
    samples: Path
    reference: Optional[Path] = None
    chunk_size: Optional[int] = None
    max_parallel: Optional[int] = None
    title: Optional[str] = None
    output: Optional[Path] = None
    detach: bool = False


def submit_samples(config: Config, config_path: Optional[Path], req: ClusterSamplesRequest, *, kube: Any, store: Any,
                   say: Callable[[str], None], input_progress: Any = None) -> Submitted:
    from bioinfra.core import inputs as inputs_mod
    from bioinfra.core.images import pushed_images
    from bioinfra.core.run import default_workspace, new_run_id
    from bioinfra.pipelines import load_workflow, render_samples
    from bioinfra.sampledata import bundled

    if req.title:
        check_title(req.title)  # as a local run does, before anything is read, uploaded or submitted
    run_id = new_run_id()
    output = (req.output or Path("results") / run_id).resolve()
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InputError(f"output {output} exists and is not an empty folder; refusing to mix outputs",
                         hint="choose an empty or new --output folder")
    sheet = read_sheet(req.samples)
    samples = check_samples(sheet, input_progress)
    reference = inputs_mod.inspect_fasta(req.reference or bundled().reference, "reference", input_progress)
    say(f"inputs ok: {len(samples)} samples, {sum(s.r1.reads for s in samples):,} read pairs")
    staged = [StagedInput("reference", str(reference.path), reference_path(reference), reference.sha256,
                          reference.bytes)]
    for s in samples:
        for mate, facts in (("R1", s.r1), ("R2", s.r2)):
            staged.append(StagedInput(f"{s.row.sample} {mate.lower()}", str(facts.path), s.workspace_fastq(mate),
                                      facts.sha256, facts.bytes))
    # The Workflow first, linted as it will be submitted: one Argo would refuse stops here, before
    # anything is uploaded or created (exit 4).
    stage_out, _url = results_location(config, run_id)
    params = samples_params(config, sheet, reference_path(reference), run_id, chunk_size=req.chunk_size,
                            max_parallel=req.max_parallel, title=req.title, stage_out=stage_out)
    workflow = load_workflow(render_samples(config, config.target, params,
                                            pushed_images(config, config.target, default_workspace(config))))
    meta = workflow["metadata"]
    meta.pop("generateName", None)
    meta.update(name=run_id, namespace=NAMESPACE)
    meta.setdefault("labels", {}).update({RUN_LABEL: run_label(run_id)})
    checked_submission(workflow)
    fresh = [item for item in staged if not store.has(item.workspace_path, item.sha256)]
    for item in fresh:
        store.upload(Path(item.source), item.workspace_path, item.sha256)
    say(f"inputs: {len(fresh)} file(s) uploaded, {len(staged) - len(fresh)} already in the workspace")
    output.mkdir(parents=True, exist_ok=True)
    sheet_file = output / "sheet.tsv"
    sheet_file.write_text(normalised_sheet(samples))
    store.upload(sheet_file, f"runs/{run_id}/sheet.tsv", sha256_file(sheet_file))
    (output / "workflow.yaml").write_text(_yaml(workflow))
    created = kube.create_workflow(NAMESPACE, workflow)
    write_json_atomic(output / ".bioinfra" / "run.json", {
        "run_id": run_id, "pipeline": "fastqc-to-bwa", "mode": "samples", "target": config.target,
        "namespace": NAMESPACE, "workflow": (created or workflow)["metadata"]["name"], "cluster": kube.server,
        "context": kube.context, "sheet": str(sheet.path.resolve()), "sheet_sha256": sheet.sha256,
        "samples": len(samples), "status": "submitted", "submitted": dt.datetime.now(dt.timezone.utc).isoformat(),
    })
    say(f"submitted Workflow {NAMESPACE}/{run_id} to {kube.server}")
    return Submitted(run_id, output, workflow, NAMESPACE, staged[:1], f"{len(samples)} samples", stage_out)
