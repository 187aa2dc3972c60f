"""`bioinfra run cellprofiler --target aws|gcp|onprem`: the screen's Workflow, on Argo.

The same checks as a local run (core.screening, with the plan step's own code), then: every image
the data file names, the data file and both pipelines are uploaded into the cluster's workspace
through MinIO (content-addressed, skipped when already there); or, with `--images s3://B/P/`
(aws) / `gs://B/P/` (gcp), the images are copied into the workspace by the stage-in step, never
through this machine. The rendered Workflow is created and followed like any other run
(core.cluster_run): one progress row per batch, each batch's pod log saved as its own file,
results and the summary copied back, failed batches named by image-set range.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from bioinfra.config import Config
from bioinfra.core.cluster_run import (
    NAMESPACE,
    RUN_LABEL,
    RemoteInput,
    StagedInput,
    Submitted,
    _yaml,
    check_remote,
    checked_submission,
    parse_input,
    results_location,
    run_label,
    upload_inputs,
)
from bioinfra.core.screening import (
    PIPELINE,
    ScreenRequest,
    check_pipeline_file,
    check_screen,
    plan_module,
    workspace_input,
)
from bioinfra.errors import InputError
from bioinfra.files import sha256_file, write_json_atomic
from bioinfra.pipelines import check_title, default_title


@dataclass
class ClusterScreenRequest:
    target: str
    images: Optional[str] = None  # a folder, or s3:// / gs:// prefix ending in /
    data_file: Optional[Path] = None
    illum_pipeline: Optional[Path] = None
    analysis_pipeline: Optional[Path] = None
    batch_size: int = 4
    title: Optional[str] = None
    max_parallel: Optional[int] = None
    output: Optional[Path] = None
    detach: bool = False


def check_cluster_screen(config: Config, req: ClusterScreenRequest) -> tuple[dict[str, str], list[StagedInput], str]:
    """Workspace paths of the four inputs, what to upload or stage in, and the summary title."""
    ref = parse_input(req.images, "--images", config.target) if req.images else None
    if not isinstance(ref, RemoteInput):
        checked = check_screen(ScreenRequest(images=ref, data_file=req.data_file, illum_pipeline=req.illum_pipeline,
                                             analysis_pipeline=req.analysis_pipeline, batch_size=req.batch_size,
                                             title=req.title))
        paths = checked.workspace_paths()
        header, rows = plan_module().read_data_file(str(checked.data_file))
        names = sorted({row[c] for row in rows for c in header if c.startswith("FileName_") and row[c]})
        staged = [StagedInput("image", str(checked.images / n), f"{paths['images']}/{n}",
                              sha256_file(checked.images / n), (checked.images / n).stat().st_size) for n in names]
        for role in ("data_file", "illum_pipeline", "analysis_pipeline"):
            path: Path = getattr(checked, role)
            staged.append(StagedInput(role, str(path), paths[role], checked.files_sha256[role], path.stat().st_size))
        return paths, staged, checked.title
    if not ref.url.endswith("/"):
        raise InputError(f"--images {ref.url}: a folder of images is a prefix ending in /", hint=f"use {ref.url}/")
    # As a local run checks it (core.screening.check_screen), before any cloud call or upload.
    title = check_title(req.title) if req.title else None
    missing = [flag for flag, value in (("--data-file", req.data_file), ("--illum", req.illum_pipeline),
                                        ("--pipeline", req.analysis_pipeline)) if value is None]
    if missing:
        raise InputError(f"missing {', '.join(missing)}: with --images {ref.url} give them as local files")
    assert req.data_file and req.illum_pipeline and req.analysis_pipeline
    check_pipeline_file(req.illum_pipeline, "--illum")
    check_pipeline_file(req.analysis_pipeline, "--pipeline")
    plan = plan_module()
    try:
        header, rows = plan.read_data_file(str(req.data_file))
    except plan.PlanError as exc:
        raise InputError(f"--data-file {exc}") from None
    # The first image named must be there; the plan step checks all of them in the cluster.
    first = next(row[c] for row in rows for c in header if c.startswith("FileName_") and row[c])
    check_remote(config, RemoteInput(ref.url + first, ref.bucket, ref.key + first), "images")
    images_path = f"inputs/remote-{hashlib.sha256(ref.url.encode()).hexdigest()[:16]}/images"
    paths = {"images": images_path}
    staged = [StagedInput("images", ref.url, images_path, remote=ref)]
    for role, path in (("data_file", req.data_file), ("illum_pipeline", req.illum_pipeline),
                       ("analysis_pipeline", req.analysis_pipeline)):
        digest = sha256_file(path)
        paths[role] = workspace_input(role, digest)
        staged.append(StagedInput(role, str(path), paths[role], digest, path.stat().st_size))
    return paths, staged, title or default_title(req.data_file.stem, "screen")


def build_screen_workflow(config: Config, run_id: str, paths: dict[str, str], staged: list[StagedInput], *,
                          batch_size: int, title: str, max_parallel: Optional[int], stage_out: str,
                          images: Optional[dict[str, str]] = None, image_sets: Optional[int] = None
                          ) -> dict[str, Any]:
    from bioinfra.pipelines import CellProfilerParams, load_workflow, render_cellprofiler

    if image_sets is None:
        # The data file is a local file on every cluster path (only --images may be remote): its rows
        # are the image sets, so the render checks the fan-out width (pipelines.MAX_FAN_OUT_PODS)
        # before anything is submitted, with its message, not the plan step in the cluster.
        data_file = next((s for s in staged if s.role == "data_file" and s.remote is None), None)
        if data_file is not None:
            try:
                image_sets = len(plan_module().read_data_file(data_file.source)[1])
            except plan_module().PlanError as exc:
                raise InputError(f"--data-file {exc}") from None
    stage_in = "\n".join(f"{s.remote.rclone()}\t{s.workspace_path}" for s in staged if s.remote is not None)
    params = CellProfilerParams(
        images_dir=paths["images"], data_file=paths["data_file"], illum_pipeline=paths["illum_pipeline"],
        analysis_pipeline=paths["analysis_pipeline"], run_dir=f"runs/{run_id}", batch_size=batch_size, title=title,
        parallelism=max_parallel, stage_in=stage_in, stage_out=stage_out, image_sets=image_sets or None,
    )
    workflow = load_workflow(render_cellprofiler(config, config.target, params, images))
    meta = workflow["metadata"]
    meta.pop("generateName", None)
    meta["name"] = run_id
    meta["namespace"] = NAMESPACE
    meta.setdefault("labels", {}).update({RUN_LABEL: run_label(run_id)})
    return checked_submission(workflow)


def submit_screen(config: Config, config_path: Optional[Path], req: ClusterScreenRequest, *, kube: Any, store: Any,
                  say: Callable[[str], None], input_progress: Any = None) -> Submitted:
    from bioinfra.core.images import pushed_images
    from bioinfra.core.run import default_workspace
    from bioinfra.core.screening import vet_screen_output

    output, run_id, _record = vet_screen_output(ScreenRequest(output=req.output))
    paths, staged, title = check_cluster_screen(config, req)
    images = sum(1 for s in staged if s.role == "image")
    say(f"inputs ok: {images or 'remote'} image file(s), data file {paths['data_file']}")
    stage_out, _url = results_location(config, run_id)
    workflow = build_screen_workflow(config, run_id, paths, staged, batch_size=req.batch_size, title=title,
                                     max_parallel=req.max_parallel, stage_out=stage_out,
                                     images=pushed_images(config, config.target, default_workspace(config)))
    # Images are many small files: one line for all of them rather than one per file.
    quiet_images = [s for s in staged if s.role == "image"]
    fresh = [s for s in quiet_images if not store.has(s.workspace_path, s.sha256)]
    for item in fresh:
        store.upload(Path(item.source), item.workspace_path, item.sha256)
    if quiet_images:
        say(f"images: {len(fresh)} uploaded, {len(quiet_images) - len(fresh)} already in the workspace "
            f"({paths['images']}/)")
    upload_inputs(store, [s for s in staged if s.role != "image"], say)
    output.mkdir(parents=True, exist_ok=True)
    (output / "workflow.yaml").write_text(_yaml(workflow))
    created = kube.create_workflow(NAMESPACE, workflow)
    record = {
        "run_id": run_id, "pipeline": PIPELINE, "target": config.target, "namespace": NAMESPACE,
        "workflow": (created or workflow)["metadata"]["name"], "cluster": kube.server, "context": kube.context,
        "title": title, "batch_size": req.batch_size,
        "inputs": [dataclasses.asdict(s) | {"remote": s.remote.url if s.remote else None}
                   for s in staged if s.role != "image"],
        "status": "submitted", "submitted": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    write_json_atomic(output / ".bioinfra" / "run.json", record)
    say(f"submitted Workflow {NAMESPACE}/{run_id} to {kube.server}")
    return Submitted(run_id, output, workflow, NAMESPACE, [s for s in staged if s.role != "image"], title, stage_out)
