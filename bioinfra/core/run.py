"""`bioinfra run` on the local target: check, stage, render, execute, write the manifest.

Order matters for "nothing lost or half-made": tools and every input are checked, and the output
folder is vetted, before anything is created. Only then is the workspace staged and the output
folder made, with a lock held for the whole run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bioinfra import __version__
from bioinfra.config import Config
from bioinfra.core import inputs as inputs_mod
from bioinfra.core.runtimes import RuntimeChoice, choose_runtime, make_runtime
from bioinfra.errors import InputError, InterruptedRunError, OutputUnusableError, RunLockedError, StepFailedError
from bioinfra.executor.runner import FAILED, SUCCEEDED, LocalExecutor, Reporter, RunResult, task_state_dict
from bioinfra.executor.workflow import parse_workflow, topological_order
from bioinfra.files import is_disk_full, log_tail, sha256_file, write_json_atomic
from bioinfra.pipelines import FastqcToBwaParams, check_sample_name, load_workflow, render_fastqc_to_bwa
from bioinfra.sampledata import bundled

PIPELINE = "fastqc-to-bwa"
STATE_DIR = ".bioinfra"
_FASTQ_SUFFIX_RE = re.compile(r"(_R?[12](_001)?)?\.(fastq|fq)(\.gz)?$", re.IGNORECASE)


@dataclass
class RunRequest:
    r1: Optional[Path] = None
    r2: Optional[Path] = None
    reference: Optional[Path] = None
    sample: Optional[str] = None
    output: Optional[Path] = None
    qc_gate: bool = False
    resume: bool = False
    max_cpus: Optional[int] = None
    runtime: Optional[str] = None
    max_parallel: Optional[int] = None  # at most this many steps at once


@dataclass
class RunOutcome:
    run_id: str
    output: Path
    manifest: Path
    result: RunResult
    aligner: Optional[str]
    notes: list[str] = field(default_factory=list)


def usable_workspace(config: Config) -> Path:
    """The workspace folder, created if needed; refused with a clear error if it cannot be written."""
    workspace = default_workspace(config)
    try:
        workspace.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"workspace {workspace} cannot be created: {exc.strerror}",
            hint="set local.workspace in bioinfra.yaml to a writable folder",
        ) from None
    if not os.access(workspace, os.W_OK | os.X_OK):
        raise InputError(f"workspace {workspace} is not writable", hint="set local.workspace to a writable folder")
    return workspace


def default_workspace(config: Config) -> Path:
    if config.local.workspace:
        return config.local.workspace.expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "bioinfra" / "workspace"


# A run id names a folder (results/<id>, the workspace's runs/<id>) and a Workflow parameter.
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_run_id(run_id: str, flag: str = "--run-id") -> str:
    if not _RUN_ID_RE.match(run_id) or ".." in run_id:
        raise InputError(
            f"{flag} {inputs_mod.shown(run_id)} is not a run id",
            hint="use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit (it names a folder)",
        )
    return run_id


def new_run_id(now: Optional[dt.datetime] = None, *, pipeline: str = PIPELINE) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{pipeline}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def sample_name_from(r1: Path) -> str:
    name = r1.name
    stem = _FASTQ_SUFFIX_RE.sub("", name)
    return stem or "sample"


# -- inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedInputs:
    sample: str
    r1: inputs_mod.FastqFacts
    r2: inputs_mod.FastqFacts
    reference: inputs_mod.FastaFacts
    bundled: bool


def resolve_inputs(req: RunRequest, recorded: Optional[dict[str, Any]] = None) -> tuple[Path, Path, Path, str, bool]:
    given = [p for p in (req.r1, req.r2, req.reference) if p is not None]
    if recorded and not given:
        rec = recorded["inputs"]
        return Path(rec["r1"]["path"]), Path(rec["r2"]["path"]), Path(rec["reference"]["path"]), recorded["sample"], recorded.get("bundled", False)
    if not given:
        data = bundled()
        return data.r1, data.r2, data.reference, req.sample or data.sample, True
    missing = [flag for flag, p in (("--r1", req.r1), ("--r2", req.r2), ("--reference", req.reference)) if p is None]
    if missing:
        raise InputError(
            f"missing {', '.join(missing)}: give --r1, --r2 and --reference together",
            hint="or give none of them to run on the bundled lambda phage sample",
        )
    assert req.r1 and req.r2 and req.reference
    sample = req.sample or sample_name_from(req.r1)
    return req.r1, req.r2, req.reference, sample, False


def check_inputs(req: RunRequest, recorded: Optional[dict[str, Any]] = None, progress: inputs_mod.Progress = None) -> CheckedInputs:
    r1, r2, ref, sample, is_bundled = resolve_inputs(req, recorded)
    check_sample_name(sample)
    inputs_mod.check_distinct(r1, r2)
    # Each file is read end to end; zlib and hashlib release the GIL, so the three reads overlap.
    # Results are taken in a fixed order, so the first problem reported does not depend on timing.
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="bioinfra-check") as pool:
        r1_job = pool.submit(inputs_mod.inspect_fastq, r1, "R1 file", progress)
        r2_job = pool.submit(inputs_mod.inspect_fastq, r2, "R2 file", progress)
        ref_job = pool.submit(inputs_mod.inspect_fasta, ref, "reference", progress)
        r1_facts, r2_facts, ref_facts = r1_job.result(), r2_job.result(), ref_job.result()
    inputs_mod.check_pair(r1_facts, r2_facts)
    return CheckedInputs(sample, r1_facts, r2_facts, ref_facts, is_bundled)


def inputs_record(checked: CheckedInputs) -> dict[str, Any]:
    def fq(f: inputs_mod.FastqFacts) -> dict[str, Any]:
        return {"path": str(f.path.resolve()), "sha256": f.sha256, "bytes": f.bytes, "reads": f.reads}

    ref = checked.reference
    return {
        "r1": fq(checked.r1),
        "r2": fq(checked.r2),
        "reference": {
            "path": str(ref.path.resolve()),
            "sha256": ref.sha256,
            "bytes": ref.bytes,
            "sequences": ref.sequences,
            "length": ref.length,
        },
    }


# -- the output folder ----------------------------------------------------------------------------


def read_run_record(output: Path) -> Optional[dict[str, Any]]:
    """The run record of a local run folder, or None. A record that says "running" while no process
    holds the run's lock belongs to a bioinfra that is gone (killed, or its disk filled before it
    could say how it ended): it is reported as "interrupted", never as still running."""
    path = output / STATE_DIR / "run.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is unreadable ({exc}); this run cannot be resumed") from None
    lock = output / STATE_DIR / "lock"  # local runs only: a cluster run's record has no lock
    if record.get("status") == "running" and lock.exists() and not lock_is_held(lock):
        record["status"] = "interrupted"
    return record


def resolve_output(requested: Path) -> Path:
    """The output folder as an absolute path; a symlink loop is refused (exit 4), not a traceback."""
    try:
        return requested.expanduser().resolve()
    except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError("Symlink loop"), 3.13 OSError(ELOOP)
        raise OutputUnusableError(
            f"output {requested} cannot be used: it is a symbolic link that leads back to itself (a loop)",
            hint=f"remove the link ({requested}) or choose another --output",
        ) from None


def check_writable(output: Path) -> None:
    """Refuse an output folder that cannot be written, before anything is made: the folder itself if it
    exists, else the nearest folder above it (where it would be created). os.access also sees a
    read-only filesystem (EROFS) for root, who is otherwise let through permission bits."""
    existing = output
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputUnusableError(f"output {output} cannot be created: {existing} is a file, not a folder",
                                  hint="choose another --output")
    if not os.access(existing, os.W_OK | os.X_OK):
        problem = ("is not writable" if existing == output
                   else f"cannot be created: {existing}, where it would be made, is not writable")
        raise OutputUnusableError(
            f"output folder {output} {problem}",
            hint="choose a writable --output folder, or make it writable (a read-only mount, or its permissions?)",
        )


def abandoned_before_start(output: Path) -> bool:
    """A folder a run created and was killed in before it wrote its run record (e.g. kill -9 while
    staging inputs): it holds the run's lock file, unheld, and no run.json. No step ran there, so
    the folder may be used again, by a new run or a --resume."""
    lock = output / STATE_DIR / "lock"
    return lock.is_file() and not (output / STATE_DIR / "run.json").exists() and not lock_is_held(lock)


def vet_new_output(requested: Path) -> Path:
    """The folder a new run writes to: new, empty, or left by a run killed before it started; never
    one holding another run or anything else; writable. Creates nothing."""
    output = resolve_output(requested)
    if output.exists():
        if not output.is_dir():
            raise InputError(f"output {output} exists and is not a folder")
        record = read_run_record(output)
        if record is not None:
            raise InputError(
                f"output folder {output} already holds run {record['run_id']} (status: {record.get('status', 'unknown')})",
                hint="add --resume to continue that run, or choose another --output",
            )
        if not abandoned_before_start(output) and any(output.iterdir()):
            raise InputError(
                f"output folder {output} is not empty and holds no bioinfra run; refusing to mix outputs",
                hint="choose an empty or new --output folder",
            )
    check_writable(output)
    return output


def latest_run(results_dir: Path) -> Optional[Path]:
    candidates = sorted(
        (p for p in results_dir.glob(f"{PIPELINE}-*") if (p / STATE_DIR / "run.json").is_file()),
        key=lambda p: (p / STATE_DIR / "run.json").stat().st_mtime,
    )
    return candidates[-1] if candidates else None


def vet_output(req: RunRequest) -> tuple[Path, str, Optional[dict[str, Any]]]:
    """Decide the output folder and run id; refuse a folder that holds something else."""
    if req.resume:
        output = req.output or latest_run(Path("results"))
        if output is None:
            raise InputError("--resume: no earlier run under results/ to resume", hint="name it with --output DIR")
        output = resolve_output(output)
        record = read_run_record(output)
        if record is None and abandoned_before_start(output):
            return vet_new_output(output), new_run_id(), None  # killed before it started: start it afresh
        if record is None:
            raise InputError(f"--resume: {output} holds no bioinfra run to resume", hint="check --output")
        if record.get("pipeline") != PIPELINE:
            raise InputError(f"--resume: {output} holds a '{record.get('pipeline')}' run, not {PIPELINE}")
        check_writable(output)
        return output, record["run_id"], record
    run_id = new_run_id()
    return vet_new_output(req.output or Path("results") / run_id), run_id, None


def check_resume_matches(record: dict[str, Any], checked: CheckedInputs, qc_gate: bool) -> None:
    rec = record["inputs"]
    for role, facts in (("r1", checked.r1), ("r2", checked.r2), ("reference", checked.reference)):
        if rec[role]["sha256"] != facts.sha256:
            raise InputError(
                f"--resume: {role} {facts.path} differs from the file run {record['run_id']} started with",
                hint="resume with the same inputs, or start a new run without --resume",
            )
    if record.get("sample") != checked.sample or bool(record.get("qc_gate")) != qc_gate:
        raise InputError(f"--resume: sample name or --qc-gate differs from run {record['run_id']}")


def lock_is_held(path: Path) -> bool:
    """Whether a process (a bioinfra run, or a step it left running) holds the flock on `path`."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own lock, if it got one
    return False


class RunLock:
    """An exclusive flock on <output>/.bioinfra/lock, passed down to the steps (see NativeRuntime)."""

    def __init__(self, output: Path) -> None:
        self.path = output / STATE_DIR / "lock"
        self.fd: Optional[int] = None

    def acquire(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holders = lock_holders(self.path)
            raise RunLockedError(
                f"run in {self.path.parent.parent} is busy: another bioinfra process, or a step left "
                f"running by a killed one, holds {self.path}"
                + (f" (pids: {', '.join(map(str, holders))})" if holders else ""),
                hint="wait for it to finish, or stop those processes, then retry",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def lock_holders(lock_path: Path) -> list[int]:
    """Pids with the lock file open (Linux /proc); best effort, for the error message."""
    pids = []
    target = str(lock_path.resolve())
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) == target:
                    pids.append(int(proc.name))
                    break
        except OSError:
            continue
    return sorted(pids)


# -- staging --------------------------------------------------------------------------------------


def _fastq_name(sample: str, mate: str, facts: inputs_mod.FastqFacts) -> str:
    return f"{sample}_{mate}.fastq" + (".gz" if facts.gzipped else "")


def workspace_params(checked: CheckedInputs, run_id: str) -> FastqcToBwaParams:
    """Where a run's files live in the workspace (pure: see the layout in bioinfra.pipelines)."""
    ref = checked.reference
    return FastqcToBwaParams(
        sample=checked.sample,
        r1=f"inputs/{checked.r1.sha256[:16]}/{_fastq_name(checked.sample, 'R1', checked.r1)}",
        r2=f"inputs/{checked.r2.sha256[:16]}/{_fastq_name(checked.sample, 'R2', checked.r2)}",
        reference=f"references/{ref.sha256[:16]}/reference.fa" + (".gz" if ref.gzipped else ""),
        run_dir=f"runs/{run_id}",
    )


def run_params(config: Config, checked: CheckedInputs, run_id: str, *, qc_gate: bool, max_cpus: int) -> FastqcToBwaParams:
    """The Workflow's parameters for a local run: workspace paths, the gate, threads capped at the CPUs."""
    return dataclasses.replace(
        workspace_params(checked, run_id), qc_gate=qc_gate, align_threads=min(config.pipeline.align_threads, max_cpus)
    )


def stage(workspace: Path, output: Path, run_id: str, checked: CheckedInputs) -> FastqcToBwaParams:
    """Lay out the workspace: inputs linked in, the reference copied once, the run folder linked."""
    params = workspace_params(checked, run_id)
    for rel, facts in ((params.r1, checked.r1), (params.r2, checked.r2)):
        link_into_workspace(workspace / rel, facts.path)
    copy_into_workspace(workspace / params.reference, checked.reference.path, checked.reference.sha256)
    link_run_folder(workspace, run_id, output)
    return params


def link_into_workspace(link: Path, target: Path) -> None:
    """A workspace path that is this machine's file (inputs are linked, never copied)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target.resolve())


def copy_into_workspace(path: Path, source: Path, sha256: str) -> None:
    """A real copy (e.g. a reference, indexed beside it), made once: atomically, skipped when the
    content is already there. Partial copies that killed runs left in this cache are removed first."""
    remove_stale_temporaries(path.parent.parent)
    if path.is_file() and sha256_file(path) == sha256:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_TEMPORARY_RE = re.compile(r"^\..+\.(\d+)\.tmp$")  # .<name>.<pid>.tmp, as copy_into_workspace names them


def remove_stale_temporaries(cache: Path) -> list[Path]:
    """Remove `.<name>.<pid>.tmp` files in the cache's folders (cache/*/) whose process is gone."""
    removed = []
    for tmp in cache.glob("*/.*.tmp"):
        m = _TEMPORARY_RE.match(tmp.name)
        if m and not _process_alive(int(m.group(1))):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def link_run_folder(workspace: Path, run_id: str, output: Path) -> None:
    """runs/<run-id> in the workspace is the output folder: steps write where the user looks."""
    run_link = workspace / "runs" / run_id
    run_link.parent.mkdir(parents=True, exist_ok=True)
    if run_link.is_symlink():
        run_link.unlink()
    run_link.symlink_to(output)


STEP_KEYS = ("phase", "cached", "attempts", "exit_code", "wall_seconds", "message", "log")


def manifest_steps(result: RunResult, output: Path, keys: tuple[str, ...] = STEP_KEYS) -> dict[str, dict[str, Any]]:
    """Each step's outcome for manifest.json, its log path relative to the output folder."""
    steps = {}
    for name, state in result.tasks.items():
        data = task_state_dict(state)
        data["log"] = os.path.relpath(state.log, output)
        steps[name] = {k: data[k] for k in keys}
    return steps


def dry_run_steps(workflow: Any, fan_out: int) -> list[str]:
    """`step<TAB>...` lines of --dry-run, a fan-out shown with how many items it will have."""
    lines = []
    for name in topological_order(workflow.tasks):
        task = workflow.task(name)
        fan = f" x{fan_out} (withParam)" if task.fans_out else ""
        after = f" after {task.depends}" if task.depends else ""
        when = f" when {task.when}" if task.when else ""
        lines.append(f"step\t{name}{fan} ({task.template}, {workflow.templates[task.template].cpu:g} cpu){after}{when}")
    return lines


# -- the run --------------------------------------------------------------------------------------


def _prepare(
    config: Config,
    req: RunRequest,
    checked: CheckedInputs,
    workspace: Path,
    output: Path,
    run_id: str,
    record: Optional[dict[str, Any]],
    max_cpus: int,
    lock_fd: int,
    reporter: Optional[Reporter],
    choice: RuntimeChoice,
    workflow_text: str,
) -> tuple[LocalExecutor, dict[str, Any], Path]:
    """Stage the workspace, record the (already linted) Workflow, and build its executor."""
    stage(workspace, output, run_id, checked)
    (output / "workflow.yaml").write_text(workflow_text)
    state_dir = output / STATE_DIR
    run_record = {
        "run_id": run_id,
        "pipeline": PIPELINE,
        "sample": checked.sample,
        "qc_gate": req.qc_gate,
        "bundled": checked.bundled,
        "inputs": inputs_record(checked),
        "status": "running",
        "started": (record or {}).get("started", dt.datetime.now(dt.timezone.utc).isoformat()),
    }
    write_json_atomic(state_dir / "run.json", run_record)
    executor = LocalExecutor(
        parse_workflow(load_workflow(workflow_text)),
        volume_roots={"workspace": workspace},
        state_dir=state_dir,
        log_dir=output / "logs",
        runtime=make_runtime(
            choice, lock_fd=lock_fd, workspace=workspace, output=output,
            input_paths=[checked.r1.path, checked.r2.path], run_id=run_id,
        ),
        max_cpus=max_cpus,
        resume=req.resume,
        reporter=reporter,
        max_parallel=req.max_parallel,
    )
    return executor, run_record, state_dir


@dataclass(frozen=True)
class Preflight:
    choice: RuntimeChoice
    output: Path
    run_id: str
    record: Optional[dict[str, Any]]  # the run being resumed, if any
    checked: CheckedInputs
    max_cpus: int


def preflight(
    config: Config,
    req: RunRequest,
    input_progress: inputs_mod.Progress = None,
    say: Callable[[str], None] = lambda _msg: None,
) -> Preflight:
    """Everything `run` checks before it creates anything (shared with --dry-run)."""
    choice = choose_runtime(req.runtime or config.local.runtime, default_workspace(config))
    tools = ", ".join(f"{k} {v}" if choice.name == "docker" else k for k, v in choice.tools.items())
    say(f"runtime {choice.name} ({choice.reason}): {tools}")
    for note in choice.notes:
        say(note)
    output, run_id, record = vet_output(req)
    checked = check_inputs(req, record, input_progress)
    if record is not None:
        check_resume_matches(record, checked, req.qc_gate)
    max_cpus = req.max_cpus or config.local.max_cpus or os.cpu_count() or 1
    return Preflight(choice, output, run_id, record, checked, max_cpus)


def run_local(
    config: Config,
    req: RunRequest,
    *,
    reporter: Optional[Reporter] = None,
    on_check: Optional[Callable[[str], None]] = None,
    input_progress: inputs_mod.Progress = None,
) -> RunOutcome:
    say = on_check or (lambda _msg: None)
    pre = preflight(config, req, input_progress, say)
    choice, output, run_id, record, checked, max_cpus = (
        pre.choice, pre.output, pre.run_id, pre.record, pre.checked, pre.max_cpus
    )
    say(
        f"inputs ok: {checked.r1.reads:,} read pairs, reference {checked.reference.length:,} bp"
        + (" (bundled lambda phage sample)" if checked.bundled else "")
    )

    # Rendered (and so linted: pipelines.render_workflow) before anything is staged or made: a
    # Workflow Argo would refuse leaves no inputs in the workspace cache and no output folder.
    workflow_text = render_fastqc_to_bwa(config, "local", run_params(config, checked, run_id, qc_gate=req.qc_gate,
                                                                     max_cpus=max_cpus), choice.images)
    workspace = usable_workspace(config)
    result, manifest_path, manifest = execute(
        output,
        lambda lock_fd: _prepare(config, req, checked, workspace, output, run_id, record, max_cpus, lock_fd, reporter,
                                 choice, workflow_text),
        lambda run_record, result, makespan: build_manifest(run_record, result, output, choice.tools, makespan,
                                                            runtime_name=choice.name),
    )

    if result.interrupted:
        raise InterruptedRunError(
            f"run {run_id} interrupted; finished steps are kept",
            hint=f"continue with: bioinfra run {PIPELINE} --resume --output {output}",
        )
    if result.phase == FAILED:
        failed = result.failed_steps[0]
        tail = log_tail(failed.log)
        raise StepFailedError(failed.name, failed.exit_code, str(failed.log), tail=tail)
    return RunOutcome(run_id, output, manifest_path, result, manifest.get("aligner"), manifest.get("notes", []))


def execute(
    output: Path,
    prepare: Callable[[int], tuple[LocalExecutor, dict[str, Any], Path]],
    manifest_for: Callable[[dict[str, Any], RunResult, float], dict[str, Any]],
) -> tuple[RunResult, Path, dict[str, Any]]:
    """Run a prepared Workflow in `output` under the run lock; write manifest.json and the status.

    `prepare(lock_fd)` stages and renders and returns (executor, run record, state folder); if it
    fails, a folder this call created is removed (nothing ran: nothing half-made is left). A folder
    left by a run killed before it started is emptied first. The manifest is always written, with
    the status and why it failed; where the disk cannot take it, the error says so (exit 4)."""
    created_output = not output.exists()
    try:
        output.mkdir(parents=True, exist_ok=True)
        if abandoned_before_start(output):
            _empty_folder(output)
        lock = RunLock(output)
        lock_fd = lock.acquire()
    except OSError as exc:
        raise _unusable(output, exc) from None
    try:
        try:
            executor, run_record, state_dir = prepare(lock_fd)
        except BaseException as exc:
            if created_output:
                shutil.rmtree(output, ignore_errors=True)
            if isinstance(exc, OSError):  # staging met a full disk or a read-only folder
                raise _unusable(output, exc) from None
            raise
        # Room for the manifest and the final run record, held from the start: if the disk fills
        # during the run, they can still say how it ended.
        reserve = state_dir / "manifest.reserve"
        _reserve_space(reserve, MANIFEST_RESERVE_BYTES)
        t0 = time.monotonic()
        try:
            result = executor.run()
        finally:
            reserve.unlink(missing_ok=True)
        status = "interrupted" if result.interrupted else ("succeeded" if result.phase == SUCCEEDED else "failed")
        manifest = manifest_for(run_record, result, time.monotonic() - t0)
        manifest["status"] = status
        why = _why_failed(result)
        if why:
            manifest["reason"] = why
        manifest_path = output / "manifest.json"
        unwritten = []
        for path, data in ((manifest_path, manifest), (state_dir / "run.json", {**run_record, "status": status})):
            try:
                write_json_atomic(path, data)
            except OSError as exc:
                unwritten.append(f"{path.name} ({exc.strerror})")
        run_record["status"] = status
        if result.disk_full or unwritten:
            resume = f"bioinfra run {run_record.get('pipeline', '')} --resume --output {output}"
            raise OutputUnusableError(
                (f"the disk ran out of space: {result.disk_full}; the step was not retried and no other step started"
                 if result.disk_full else f"the output folder {output} could not be written")
                + (f"; not written: {', '.join(unwritten)} (run.json's 'running' is read as interrupted)"
                   if unwritten else f"; {manifest_path} says which steps finished"),
                hint=f"free space on the disk holding {output} and the workspace (df -h), then continue with: {resume}",
            )
    finally:
        lock.release()
    return result, manifest_path, manifest


MANIFEST_RESERVE_BYTES = 1 << 20


def _reserve_space(path: Path, size: int) -> None:
    """Allocate `size` bytes at `path` (best effort: a disk already that full is caught by the run)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError:
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError:
        pass
    finally:
        os.close(fd)


def _why_failed(result: RunResult) -> str:
    if result.disk_full:
        return f"disk full: {result.disk_full}"
    if result.interrupted:
        return "interrupted"
    failed = result.failed_steps
    if result.phase == FAILED and failed:
        return "; ".join(f"step '{s.name}' failed: {s.message or 'exit ' + str(s.exit_code)}" for s in failed[:5])
    return ""


def _empty_folder(output: Path) -> None:
    """Remove what a run killed before it started left (its lock, a rendered Workflow, a sheet)."""
    for child in output.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _unusable(output: Path, exc: OSError) -> OutputUnusableError:
    where = exc.filename or output
    if is_disk_full(exc):
        return OutputUnusableError(f"the disk holding {where} is full ({exc.strerror}); nothing ran",
                                   hint="free space (df -h), or choose an --output and workspace on another disk")
    return OutputUnusableError(f"cannot write {where}: {exc.strerror}; nothing ran",
                               hint="choose a writable --output folder (and local.workspace), or fix its permissions")


_VERSION_KEYS = {"fastqc": "fastqc", "align": "aligner", "samtools-stats": "samtools", "multiqc": "multiqc"}


def build_manifest(
    run_record: dict[str, Any], result: RunResult, output: Path, tools: dict[str, str], makespan: float, *, runtime_name: str
) -> dict[str, Any]:
    steps = manifest_steps(result, output)
    versions: dict[str, str] = {}
    files: dict[str, Any] = {}
    run_prefix = f"runs/{run_record['run_id']}/"
    for _name, state in result.tasks.items():
        if "tool-version" in state.output_parameters:
            versions[_VERSION_KEYS.get(state.template, state.template)] = state.output_parameters["tool-version"]
        for rel, facts in state.outputs.items():
            if rel.startswith(run_prefix) and "/.bioinfra/" not in rel:
                files[rel[len(run_prefix):]] = facts
    align = result.tasks.get("align")
    aligner = align.output_parameters.get("aligner") if align else None
    notes = []
    if aligner == "bwa":
        notes.append("bwa-mem2 was not installed: the align step used 'bwa mem' (same alignments)")
    if align is not None and align.phase == "Skipped":
        notes.append("QC gate: FastQC failed per-base sequence quality, so alignment was skipped")
    for path in sorted((output / "multiqc").glob("*.html")) if (output / "multiqc").is_dir() else []:
        rel = str(path.relative_to(output))
        files.setdefault(rel, {"bytes": path.stat().st_size, "sha256": sha256_file(path)})
    return {
        "bioinfra_version": __version__,
        "run_id": run_record["run_id"],
        "pipeline": run_record["pipeline"],
        "target": "local",
        "runtime": runtime_name,
        "sample": run_record["sample"],
        "qc_gate": run_record["qc_gate"],
        "started": run_record["started"],
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(),
        "makespan_seconds": round(makespan, 3),
        "inputs": run_record["inputs"],
        "aligner": aligner,
        "notes": notes,
        "tool_versions": dict(sorted(versions.items())),
        ("tool_paths" if runtime_name == "native" else "images"): tools,
        "steps": steps,
        "outputs": dict(sorted(files.items())),
        "workflow_sha256": sha256_file(output / "workflow.yaml"),
    }


def dry_run_plan(config: Config, req: RunRequest) -> list[str]:
    """What `run` would do, checked as far as it can be without creating anything."""
    pre = preflight(config, req)
    choice, output, run_id, record, checked, max_cpus = (
        pre.choice, pre.output, pre.run_id, pre.record, pre.checked, pre.max_cpus
    )
    params = run_params(config, checked, run_id, qc_gate=req.qc_gate, max_cpus=max_cpus)
    workflow = parse_workflow(load_workflow(render_fastqc_to_bwa(config, "local", params, choice.images)))
    lines = [
        "dry run: nothing was created",
        f"run id\t{run_id}{' (resumed)' if record else ''}",
        f"output\t{output}",
        f"workspace\t{default_workspace(config)}",
        f"runtime\t{choice.name} ({choice.reason})",
        f"cpus\t{max_cpus}",
        f"inputs\tR1 {checked.r1.path} ({checked.r1.reads:,} reads), R2 {checked.r2.path}, reference {checked.reference.path} ({checked.reference.length:,} bp)",
    ]
    return lines + dry_run_steps(workflow, 0)
