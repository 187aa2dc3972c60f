"""`bioinfra run cellprofiler` on the local target: a screen's inputs checked, staged, run, gathered.

Inputs: an images folder, a data file (a CellProfiler LoadData CSV, one row per image set), an
illumination and an analysis pipeline (`.cppipe`). Without any of them, the bundled synthetic
screen is used. Everything is checked before anything is made, with the very code the Workflow's
plan step runs (templates/workflows/cellprofiler/plan_batches.py), so a bad data file fails here
with the same message, not in the middle of a run.

Workspace layout (content-addressed, as for fastqc-to-bwa):

    inputs/<sha16 of the referenced images>/images      -> the images folder (a link on this machine)
    inputs/<sha16>/images.csv                            the data file
    inputs/<sha16>/illum.cppipe, inputs/<sha16>/analysis.cppipe
    runs/<run-id>/ -> the output folder: plan/, illum/, batches/<first>-<last>/, results/
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

from bioinfra import __version__
from bioinfra.config import Config
from bioinfra.core.run import (
    STATE_DIR,
    abandoned_before_start,
    check_writable,
    copy_into_workspace,
    default_workspace,
    dry_run_steps,
    execute,
    link_into_workspace,
    link_run_folder,
    manifest_steps,
    new_run_id,
    read_run_record,
    resolve_output,
    usable_workspace,
    vet_new_output,
)
from bioinfra.core.runtimes import RuntimeChoice, choose_runtime, make_runtime
from bioinfra.errors import InputError, InterruptedRunError, StepFailedError
from bioinfra.executor.runner import FAILED, SUCCEEDED, LocalExecutor, Reporter, RunResult
from bioinfra.executor.workflow import parse_workflow
from bioinfra.files import log_tail, read_json_or_empty, sha256_file, write_json_atomic
from bioinfra.pipelines import CellProfilerParams, check_title, default_title, load_workflow, render_cellprofiler
from bioinfra.render import templates_root

PIPELINE = "cellprofiler"
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "sampledata" / "data" / "cellprofiler"
_PIPELINE_HEADER = "CellProfiler Pipeline:"


@dataclass
class ScreenRequest:
    images: Optional[Path] = None
    data_file: Optional[Path] = None
    illum_pipeline: Optional[Path] = None
    analysis_pipeline: Optional[Path] = None
    batch_size: int = 4
    title: Optional[str] = None
    output: Optional[Path] = None
    resume: bool = False
    max_cpus: Optional[int] = None
    max_parallel: Optional[int] = None
    runtime: Optional[str] = None


@dataclass(frozen=True)
class CheckedScreen:
    images: Path
    data_file: Path
    illum_pipeline: Path
    analysis_pipeline: Path
    image_sets: int
    plates: list[str]
    images_sha256: str  # over the referenced files' names and contents
    files_sha256: dict[str, str]  # data file and pipelines
    bundled: bool
    title: str

    def workspace_paths(self) -> dict[str, str]:
        return {"images": f"inputs/{self.images_sha256[:16]}/images",
                **{role: workspace_input(role, digest) for role, digest in self.files_sha256.items()}}

    def record(self) -> dict[str, Any]:
        return {
            "images": {"path": str(self.images), "sha256": self.images_sha256, "image_sets": self.image_sets,
                       "plates": self.plates},
            **{role: {"path": str(getattr(self, role)), "sha256": digest} for role, digest in self.files_sha256.items()},
        }


# The workspace names of the data file and pipelines: chosen here, never the user's file names (which
# may hold anything; issue #15). Content-addressed by the folder.
INPUT_NAMES = {"data_file": "data-file.csv", "illum_pipeline": "illum.cppipe", "analysis_pipeline": "analysis.cppipe"}


def workspace_input(role: str, sha256: str) -> str:
    return f"inputs/{sha256[:16]}/{INPUT_NAMES[role]}"


@cache
def plan_module() -> ModuleType:
    """The plan step's own program, imported to check inputs exactly as the step will."""
    path = templates_root() / "workflows" / "cellprofiler" / "plan_batches.py"
    spec = importlib.util.spec_from_file_location("bioinfra_plan_batches", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resolve_screen(req: ScreenRequest) -> tuple[Path, Path, Path, Path, bool]:
    given = {"--images": req.images, "--data-file": req.data_file, "--illum": req.illum_pipeline,
             "--pipeline": req.analysis_pipeline}
    if not any(given.values()):
        return (BUNDLED_DIR / "images", BUNDLED_DIR / "images" / "images.csv", BUNDLED_DIR / "illum.cppipe",
                BUNDLED_DIR / "analysis.cppipe", True)
    missing = [flag for flag, value in given.items() if value is None]
    if missing:
        raise InputError(f"missing {', '.join(missing)}: give --images, --data-file, --illum and --pipeline together",
                         hint="or none of them, to run the bundled synthetic screen")
    return req.images, req.data_file, req.illum_pipeline, req.analysis_pipeline, False  # type: ignore[return-value]


def check_pipeline_file(path: Path, flag: str) -> None:
    if not path.is_file():
        raise InputError(f"{flag} {path}: no such file")
    try:
        head = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot read it ({exc.strerror})") from None
    if not head.startswith(_PIPELINE_HEADER):
        raise InputError(f"{flag} {path}: not a CellProfiler pipeline (a .cppipe starts with '{_PIPELINE_HEADER}')",
                         hint="export it from CellProfiler with File > Export > Pipeline")
    if not re.search(r"^LoadData:\[", head, re.MULTILINE):
        raise InputError(
            f"{flag} {path}: the pipeline does not start from LoadData",
            hint="bioinfra feeds image sets through a LoadData CSV (the data file): use LoadData as the input module",
        )


def check_screen(req: ScreenRequest) -> CheckedScreen:
    images, data_file, illum, analysis, bundled = resolve_screen(req)
    if req.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1 (got {req.batch_size})")
    title = check_title(req.title) if req.title else (
        "bundled synthetic screen" if bundled else default_title(data_file.stem, "screen"))
    if not images.is_dir():
        raise InputError(f"--images {images}: no such folder")
    check_pipeline_file(illum, "--illum")
    check_pipeline_file(analysis, "--pipeline")
    plan = plan_module()
    try:
        header, rows = plan.read_data_file(str(data_file))
    except plan.PlanError as exc:
        raise InputError(f"--data-file {exc}") from None
    missing = plan.missing_images(rows, str(images))
    if missing:
        shown = ", ".join(f"line {line}: {name}" for line, name in missing[:5])
        raise InputError(f"--data-file {data_file}: {len(missing)} image(s) not in {images} ({shown})",
                         hint="FileName_* columns name files relative to --images")
    digest = hashlib.sha256()
    for name in sorted({row[column] for row in rows for column in header if column.startswith("FileName_")}):
        digest.update(name.encode() + b"\0" + sha256_file(images / name).encode() + b"\n")
    files = {role: sha256_file(path) for role, path in
             (("data_file", data_file), ("illum_pipeline", illum), ("analysis_pipeline", analysis))}
    plates = sorted({row["Metadata_Plate"] for row in rows})
    return CheckedScreen(images.resolve(), data_file.resolve(), illum.resolve(), analysis.resolve(), len(rows),
                         plates, digest.hexdigest(), files, bundled, title)


def stage(workspace: Path, output: Path, run_id: str, checked: CheckedScreen) -> dict[str, str]:
    """The images folder linked in; data file and pipelines copied (small); the run folder linked."""
    paths = checked.workspace_paths()
    link_into_workspace(workspace / paths["images"], checked.images)
    for role in ("data_file", "illum_pipeline", "analysis_pipeline"):
        copy_into_workspace(workspace / paths[role], getattr(checked, role), checked.files_sha256[role])
    link_run_folder(workspace, run_id, output)
    return paths


def screen_params(checked: CheckedScreen, run_id: str, req: ScreenRequest) -> CellProfilerParams:
    paths = checked.workspace_paths()
    return CellProfilerParams(
        images_dir=paths["images"], data_file=paths["data_file"], illum_pipeline=paths["illum_pipeline"],
        analysis_pipeline=paths["analysis_pipeline"], run_dir=f"runs/{run_id}", batch_size=req.batch_size,
        title=checked.title, parallelism=req.max_parallel, image_sets=checked.image_sets,
    )


def vet_screen_output(req: ScreenRequest) -> tuple[Path, str, Optional[dict[str, Any]]]:
    """The output folder and run id; a resumed run must be a cellprofiler run."""
    if req.resume:
        if req.output is None:
            raise InputError("--resume needs --output: the run folder to continue")
        output = resolve_output(req.output)
        record = read_run_record(output)
        if record is None and abandoned_before_start(output):
            return vet_new_output(output), new_run_id(pipeline=PIPELINE), None  # killed before it started
        if record is None:
            raise InputError(f"--resume: {req.output} holds no bioinfra run to resume", hint="check --output")
        if record.get("pipeline") != PIPELINE:
            raise InputError(f"--resume: {req.output} holds a '{record.get('pipeline')}' run, not {PIPELINE}")
        check_writable(output)
        return output, record["run_id"], record
    run_id = new_run_id(pipeline=PIPELINE)
    return vet_new_output(req.output or Path("results") / run_id), run_id, None


@dataclass
class ScreenOutcome:
    run_id: str
    output: Path
    manifest: Path
    result: RunResult
    gather: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScreenPreflight:
    choice: RuntimeChoice
    output: Path
    run_id: str
    record: Optional[dict[str, Any]]
    checked: CheckedScreen
    max_cpus: int


def preflight(config: Config, req: ScreenRequest, say=lambda _msg: None) -> ScreenPreflight:
    choice = choose_runtime(req.runtime or config.local.runtime, default_workspace(config), pipeline=PIPELINE)
    say(f"runtime {choice.name} ({choice.reason}): " + ", ".join(
        f"{k} {v}" if choice.name == "docker" else k for k, v in choice.tools.items()))
    for note in choice.notes:
        say(note)
    output, run_id, record = vet_screen_output(req)
    checked = check_screen(req)
    if record is not None:
        before = record.get("inputs", {})
        now = checked.record()
        changed = [role for role in now if (before.get(role) or {}).get("sha256") != now[role]["sha256"]]
        if changed:
            raise InputError(f"--resume: {', '.join(changed)} differ from what run {record['run_id']} started with",
                             hint="resume with the same inputs, or start a new run without --resume")
    max_cpus = req.max_cpus or config.local.max_cpus or os.cpu_count() or 1
    return ScreenPreflight(choice, output, run_id, record, checked, max_cpus)


def run_screen(config: Config, req: ScreenRequest, *, reporter: Optional[Reporter] = None, on_check=None) -> ScreenOutcome:
    say = on_check or (lambda _msg: None)
    pre = preflight(config, req, say)
    checked, output, run_id = pre.checked, pre.output, pre.run_id
    batches = -(-checked.image_sets // req.batch_size)
    say(f"inputs ok: {checked.image_sets} image sets on {len(checked.plates)} plate(s) "
        f"({', '.join(checked.plates)}), {batches} batch(es) of up to {req.batch_size}"
        + (" (bundled synthetic screen)" if checked.bundled else ""))
    # Rendered (and so linted, and the fan-out width checked) before anything is staged or made.
    text = render_cellprofiler(config, "local", screen_params(checked, run_id, req), pre.choice.images)
    workspace = usable_workspace(config)

    def prepare(lock_fd: int) -> tuple[LocalExecutor, dict[str, Any], Path]:
        stage(workspace, output, run_id, checked)
        (output / "workflow.yaml").write_text(text)
        run_record = {
            "run_id": run_id, "pipeline": PIPELINE, "title": checked.title, "bundled": checked.bundled,
            "batch_size": req.batch_size, "inputs": checked.record(), "status": "running",
            "started": (pre.record or {}).get("started", dt.datetime.now(dt.timezone.utc).isoformat()),
        }
        write_json_atomic(output / STATE_DIR / "run.json", run_record)
        executor = LocalExecutor(
            parse_workflow(load_workflow(text)), volume_roots={"workspace": workspace}, state_dir=output / STATE_DIR,
            log_dir=output / "logs",
            runtime=make_runtime(pre.choice, lock_fd=lock_fd, workspace=workspace, output=output,
                                 input_paths=[checked.images / "."], run_id=run_id),
            max_cpus=pre.max_cpus, resume=req.resume, reporter=reporter, max_parallel=req.max_parallel,
        )
        return executor, run_record, output / STATE_DIR

    result, manifest_path, manifest = execute(
        output, prepare,
        lambda run_record, result, makespan: screen_manifest(run_record, result, output, pre.choice, makespan,
                                                             read_json_or_empty(output / "results" / "gather.json")),
    )
    gather = manifest["gather"]
    if result.interrupted:
        raise InterruptedRunError(f"run {run_id} interrupted; finished batches are kept",
                                  hint=f"continue with: bioinfra run {PIPELINE} --resume --output {output}")
    if result.phase == FAILED:
        raise screen_failure(run_id, output, result, gather)
    return ScreenOutcome(run_id, output, manifest_path, result, gather)


def screen_failure(run_id: str, output: Path, result: RunResult, gather: dict[str, Any]) -> StepFailedError:
    """Name the failed batches by image-set range and what the gather found missing."""
    failed = result.failed_steps
    gather_state = result.tasks.get("gather")
    culprit = next((s for s in failed if s.name == "gather"), None) or (failed[0] if failed else None)
    log = culprit.log if culprit else output / "logs"
    error = StepFailedError(culprit.name if culprit else "?", culprit.exit_code if culprit else None, str(log),
                            tail=log_tail(log) if culprit else "")
    batches = [s for s in failed if s.group == "analyze"]
    parts = []
    if batches:
        parts.append("batch(es) failed after their retries: " + "; ".join(
            f"{s.name} (log {s.log})" for s in batches))
    missing = gather.get("missing") or []
    if missing:
        ranges = ", ".join(f"{m['first']}-{m['last']}" for m in missing)
        parts.append(f"the gathered tables lack image sets {ranges} (see {output / 'results' / 'summary.html'})")
    elif gather_state is not None and gather_state.phase != SUCCEEDED:
        parts.append(f"gather {gather_state.phase.lower()}")
    error.message = f"run {run_id} failed: " + ("; ".join(parts) if parts else f"step '{error.step}' failed")
    if batches:
        error.hint = (f"fix the cause in the batch logs, then `bioinfra run {PIPELINE} --resume --output {output}` "
                      "reruns only what is missing")
    return error


def screen_manifest(run_record: dict[str, Any], result: RunResult, output: Path, choice: RuntimeChoice,
                    makespan: float, gather: dict[str, Any]) -> dict[str, Any]:
    steps = manifest_steps(result, output)
    results = output / "results"
    files = {}
    if results.is_dir():
        for path in sorted(p for p in results.rglob("*") if p.is_file()):
            files[str(path.relative_to(output))] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return {
        "bioinfra_version": __version__,
        "run_id": run_record["run_id"],
        "pipeline": PIPELINE,
        "target": "local",
        "runtime": choice.name,
        "title": run_record["title"],
        "started": run_record["started"],
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(),
        "makespan_seconds": round(makespan, 3),
        "inputs": run_record["inputs"],
        "batch_size": run_record["batch_size"],
        "gather": gather,
        ("tool_paths" if choice.name == "native" else "images"): choice.tools,
        "steps": steps,
        "outputs": files,
        "workflow_sha256": sha256_file(output / "workflow.yaml"),
    }


def dry_run_plan(config: Config, req: ScreenRequest) -> list[str]:
    pre = preflight(config, req)
    checked = pre.checked
    params = screen_params(checked, pre.run_id, req)
    workflow = parse_workflow(load_workflow(render_cellprofiler(config, "local", params, pre.choice.images)))
    batches = -(-checked.image_sets // req.batch_size)
    lines = [
        "dry run: nothing was created",
        f"run id\t{pre.run_id}{' (resumed)' if pre.record else ''}",
        f"output\t{pre.output}",
        f"runtime\t{pre.choice.name} ({pre.choice.reason})",
        f"cpus\t{pre.max_cpus}" + (f", at most {req.max_parallel} steps at once" if req.max_parallel else ""),
        f"inputs\t{checked.image_sets} image sets, plates {', '.join(checked.plates)}, images {checked.images}, "
        f"data file {checked.data_file}",
        f"batches\t{batches} of up to {req.batch_size} image sets",
    ]
    return lines + dry_run_steps(workflow, batches)
