"""The run folder and the workspace: the engine's one output-folder check, run record, lock and
run loop (bioinfra.engine.local runs a Workflow under it).

Order matters for "nothing lost or half-made": tools and every input are checked, and the output
folder is vetted, before anything is created. Only then is the workspace staged and the output
folder made, with a lock held for the whole run.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from bioinfra.config import Config
from bioinfra.core import inputs as inputs_mod
from bioinfra.errors import InputError, OutputUnusableError, RunLockedError
from bioinfra.executor.runner import FAILED, SUCCEEDED, LocalExecutor, RunResult, task_state_dict
from bioinfra.executor.workflow import topological_order
from bioinfra.files import is_disk_full, sha256_file, write_json_atomic

STATE_DIR = ".bioinfra"


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


def new_run_id(now: Optional[dt.datetime] = None, *, pipeline: str = "run") -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{pipeline}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


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


def latest_run(results_dir: Path, pipeline: str) -> Optional[Path]:
    candidates = sorted(
        (p for p in results_dir.glob(f"{pipeline}-*") if (p / STATE_DIR / "run.json").is_file()),
        key=lambda p: (p / STATE_DIR / "run.json").stat().st_mtime,
    )
    return candidates[-1] if candidates else None


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
    if not workflow.tasks and workflow.entry in workflow.composites:  # the tree engine's (a steps entrypoint)
        return _tree_steps(workflow, workflow.entry, "", set())
    lines = []
    for name in topological_order(workflow.tasks):
        task = workflow.task(name)
        fan = f" x{fan_out} (withParam)" if task.fans_out else ""
        after = f" after {task.depends}" if task.depends else ""
        when = f" when {task.when}" if task.when else ""
        lines.append(f"step\t{name}{fan} ({task.template}, {workflow.templates[task.template].cpu:g} cpu){after}{when}")
    return lines


def _tree_steps(workflow: Any, name: str, prefix: str, seen: set[str]) -> list[str]:
    """`step<TAB>...` lines of a steps/dag template, in order (a steps template by group), nested
    steps/dag templates under their caller ("outer/inner"); a template calling itself is listed once."""
    composite = workflow.composites[name]
    seen = seen | {name}
    lines = []
    placed = [(t, f", group {i}") for i, group in enumerate(composite.groups, 1) for t in group]
    placed += [(t, f" after {t.depends}" if t.depends else "") for t in composite.tasks]
    for task, where in placed:
        fan = " (fan-out)" if task.fans_out else ""
        when = f" when {task.when}" if task.when else ""
        leaf = workflow.templates.get(task.template)
        if leaf is not None:
            what = f"{leaf.cpu:g} cpu"
        else:
            what = workflow.composites[task.template].kind if task.template in workflow.composites else "?"
        lines.append(f"step\t{prefix}{task.name}{fan} ({task.template}, {what}){where}{when}")
        if task.template in workflow.composites and task.template not in seen:
            lines += _tree_steps(workflow, task.template, f"{prefix}{task.name}/", seen)
    return lines


def execute(
    output: Path,
    prepare: Callable[[int], tuple[LocalExecutor, dict[str, Any], Path]],
    manifest_for: Callable[[dict[str, Any], RunResult, float], dict[str, Any]],
    verify: Optional[Callable[[], Any]] = None,
) -> tuple[RunResult, Path, dict[str, Any]]:
    """Run a prepared Workflow in `output` under the run lock; write manifest.json and the status.

    `prepare(lock_fd)` stages and renders and returns (executor, run record, state folder); if it
    fails, a folder this call created is removed (nothing ran: nothing half-made is left). A folder
    left by a run killed before it started is emptied first. The manifest is always written, with
    the status and why it failed; where the disk cannot take it, the error says so (exit 4).

    `verify` (the whole read of inputs checked in bounded time before the run, #19) runs in a
    thread beside the steps. If it raises InputError, the run is failed whatever the steps did:
    the manifest and run.json say "failed" and why, every step's resume marker is removed (nothing
    stays marked complete), and the InputError is raised (exit 4, INPUT_INVALID, as a refusal before the run)."""
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
        check = _InputCheck(verify, on_failure=executor.abort) if verify is not None else None
        try:
            result = executor.run()
        finally:
            reserve.unlink(missing_ok=True)
        bad_input = check.wait() if check is not None else None  # succeeded only once the inputs are read whole
        status = "interrupted" if result.interrupted else ("succeeded" if result.phase == SUCCEEDED else "failed")
        if bad_input is not None:
            status = "failed"
            shutil.rmtree(state_dir / "steps", ignore_errors=True)  # no step may be resumed from these inputs
        manifest = manifest_for(run_record, result, time.monotonic() - t0)
        manifest["status"] = status
        why = f"input check failed: {bad_input.message}" if bad_input is not None else _why_failed(result)
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
        if bad_input is not None:
            bad_input.message += f" (found while the run was going; {manifest_path} says 'failed')"
            raise bad_input
    finally:
        lock.release()
    return result, manifest_path, manifest


class _InputCheck:
    """`verify` in a thread; wait() returns the InputError it raised (an unreadable file is one too)."""

    def __init__(self, verify: Callable[[], Any], on_failure: Callable[[], None]) -> None:
        import threading

        self.error: Optional[InputError] = None
        self.thread = threading.Thread(target=self._run, args=(verify, on_failure), name="bioinfra-input-check",
                                       daemon=True)
        self.thread.start()

    def _run(self, verify: Callable[[], Any], on_failure: Callable[[], None]) -> None:
        try:
            verify()
        except InputError as exc:
            self.error = exc
        except OSError as exc:
            self.error = InputError(f"input {exc.filename} could not be read whole: {exc.strerror}",
                                    hint="check the file (and the disk holding it), then start a new run")
        if self.error is not None:
            on_failure()  # stop the steps now: they read the same bad input

    def wait(self) -> Optional[InputError]:
        self.thread.join()
        return self.error


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


def vet_output(pipeline: str, output: Optional[Path], resume: bool, mode: str = "default"
               ) -> tuple[Path, str, Optional[dict[str, Any]]]:
    """The engine's one output-folder check: decide the output folder and run id. A new run gets a
    new, empty (or abandoned-before-start) writable folder; --resume gets a folder holding a run of
    this pipeline and mode (default: the latest under results/)."""
    if resume:
        folder = output or latest_run(Path("results"), pipeline)
        if folder is None:
            raise InputError("--resume: no earlier run under results/ to resume", hint="name it with --output DIR")
        folder = resolve_output(folder)
        record = read_run_record(folder)
        if record is None and abandoned_before_start(folder):
            return vet_new_output(folder), new_run_id(pipeline=pipeline), None  # killed before it started: afresh
        if record is None:
            raise InputError(f"--resume: {folder} holds no bioinfra run to resume", hint="check --output")
        if record.get("pipeline") != pipeline:
            raise InputError(f"--resume: {folder} holds a '{record.get('pipeline')}' run, not {pipeline}")
        if record.get("mode") not in (None, mode):  # None: a record written before modes had names
            raise InputError(f"--resume: {folder} holds a {record.get('mode')} run of {pipeline}, "
                             f"not a {mode} one", hint="resume with the same inputs (e.g. the same --samples sheet)")
        from bioinfra.targets import TARGETS

        if not getattr(TARGETS.get(record.get("target", "local")), "runs_locally", False):
            raise InputError(f"--resume: {folder} holds a run on target {record.get('target')}",
                             hint=f"follow it with `bioinfra runs status {record.get('run_id')}`")
        check_writable(folder)
        return folder, record["run_id"], record
    run_id = new_run_id(pipeline=pipeline)
    return vet_new_output(output or Path("results") / run_id), run_id, None
