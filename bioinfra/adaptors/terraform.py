"""Running Terraform: python-terraform for the short buffered calls, a streaming runner for the rest.

python-terraform 0.10.1 is used where it works: `init`, `output`, `state list`, `force-unlock`,
`fmt`, `validate` (short calls whose output we only need at the end). It cannot be used for
plan/apply/destroy, measured here: it buffers all output until the process exits (no progress), its
`destroy()` sends `-force` (rejected since Terraform 0.15; it works only with
`force=IsNotFlagged, auto_approve=True`) and `output('name')` raises. Those go through
`Terraform.stream`, which reads Terraform's machine-readable `-json` events line by line.

Every call's raw output is kept under <stack>/logs/ (one file per call, never secrets: Terraform
does not print credentials and we pass none on its command line).

What Terraform writes here can hold secrets (the addons state holds MinIO's generated password; a
saved plan holds the same values): every Terraform process runs with umask 077 and, after each
call, the state, its backups, saved plans, tfvars and the backend cache are set to 0600 (PRIVATE_FILES),
the logs too. The environment folder itself is 0700 (core.provision).

Two shortcuts keep `bioinfra plan` close to a raw `terraform plan` (issue #19.3):
- `init` is skipped when the folder is already initialised for exactly this configuration: a
  fingerprint (INIT_FINGERPRINT) of everything `terraform init` reads or writes is kept after each
  init and compared before the next (see `init_fingerprint`); any difference, or a provider missing
  under .terraform/, re-inits.
- `outputs` and `state_list` read a local backend's state file in-process (`read_state_outputs`,
  `read_state_addresses`) instead of starting `terraform output -json` / `terraform state list`; a
  remote backend (S3/GCS), another workspace, or a state format other than version 4 goes through
  Terraform as before.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bioinfra.errors import InterruptedRunError, StateLockedError, TerraformFailedError, ToolMissingError

# Written while a Terraform process works in a stack folder: proves a stale lock is ours (pid dead,
# same user@host, lock taken after the marker), so `destroy` may clear it.
MARKER = ".bioinfra-terraform.json"
# A marker still present when the next run starts belongs to a run that died: kept here as evidence.
DEAD_MARKER = ".bioinfra-terraform.dead.json"
# Files of a stack folder that may hold secrets or config values: this user only (0600).
PRIVATE_FILES = ("terraform.tfstate", "terraform.tfstate.backup", "errored.tfstate", "*.tfstate", "*.tfstate.*",
                 "tfplan", "*.tfplan", "*.tfvars", "*.tfvars.json", "backend-config.json",
                 ".terraform/terraform.tfstate", ".terraform/environment", ".bioinfra-init.json")
# What the last successful `terraform init` here was run for (hashes only; 0600 all the same: it is
# derived from the backend settings). Matching it, and the providers being in place, skips the init.
INIT_FINGERPRINT = ".bioinfra-init.json"
# The S3 backend logs, at INFO, the lock it is about to write, with the lock's ID, before writing it.
# Terraform 1.11.4, measured: "backend-s3: Attempting to lock remote state (DynamoDB only)...:
# tf_backend.lock.id=<uuid> tf_backend.lock.operation=OperationTypePlan ..."; newer sources say
# "Locking remote state" (hashicorp/terraform, internal/backend/remote-state/s3/client.go,
# RemoteClient.Lock: logWithLockInfo then log.Info). Core logs only (TF_LOG_CORE): no provider's.
# The commands that take the state lock (`terraform <command> -h` lists -lock for them).
LOCKING_COMMANDS = frozenset({"plan", "apply", "destroy", "refresh", "import", "taint", "untaint",
                              "state rm", "state mv", "state push", "state replace-provider"})
_OWN_LOCK_LINE = re.compile(r"(?:Attempting to lock|Locking) remote state\b.*?\btf_backend\.lock\.id=([0-9A-Fa-f-]{36})")
UMASK = 0o077  # Terraform's own files: created 0600 / folders 0700


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    """This process's umask for a call that starts Terraform through python-terraform (which takes
    no umask of its own); restored after."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def protect(folder: Path) -> None:
    """chmod 0600 every file in a stack folder that may hold a secret (PRIVATE_FILES) and its logs:
    whatever created them, and under whatever umask, they are this user's only."""
    paths = {p for pattern in PRIVATE_FILES for p in folder.glob(pattern)}
    logs = folder / "logs"
    if logs.is_dir():
        paths.update(logs.glob("*.log"))
    for path in paths:
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
        except OSError:
            pass  # gone between the glob and the chmod


@contextlib.contextmanager
def _plugin_cache_lock(cache_dir: Optional[str]) -> Iterator[None]:
    """Holds an exclusive flock on the plugin cache while `terraform init` may write to it.

    Terraform's plugin cache is not safe for concurrent writers (its docs say so): measured here,
    four `terraform init` at once into an empty cache fail 1 time in 3 with `failed to create
    directory .../aws/5.100.0/linux_amd64: file exists`. Two bioinfra processes on one machine
    (two projects, or `up` beside `plan`) share the cache, so every init of ours takes turns; once
    the provider is cached an init only links to it (~1 s), so the wait is short.
    """
    if not cache_dir:
        yield
        return
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(cache_dir) / ".bioinfra-init.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, also if we die
        yield


class TerraformError(TerraformFailedError):
    """A Terraform call failed; the message carries Terraform's own error summary."""


@dataclass
class LockInfo:
    id: str
    path: str = ""
    operation: str = ""
    who: str = ""
    created: str = ""

    @classmethod
    def parse(cls, text: str) -> Optional[LockInfo]:
        """The 'Lock Info:' block Terraform prints when it cannot take a state lock."""
        fields = dict(re.findall(r"^\s*(ID|Path|Operation|Who|Created):\s*(.*?)\s*$", text, re.M))
        if "ID" not in fields:
            return None
        return cls(fields["ID"], fields.get("Path", ""), fields.get("Operation", ""), fields.get("Who", ""),
                   fields.get("Created", ""))

    def describe(self) -> str:
        return f"held by {self.who or 'unknown'} ({self.operation or 'operation unknown'}, since {self.created or '?'}; lock ID {self.id})"


@dataclass
class StreamResult:
    returncode: int
    log: Path
    changes: dict[str, int] = field(default_factory=dict)  # change_summary: add/change/remove/import
    planned: list[dict[str, Any]] = field(default_factory=list)  # planned_change events
    errors: list[str] = field(default_factory=list)  # diagnostics of severity error
    lock: Optional[LockInfo] = None
    plain: list[str] = field(default_factory=list)  # lines that were not JSON events
    own_lock_ids: list[str] = field(default_factory=list)  # the state locks this Terraform process tried to write


def terraform_binary() -> str:
    import shutil

    path = os.environ.get("BIOINFRA_TERRAFORM") or shutil.which("terraform")
    if not path:
        raise ToolMissingError(
            "terraform is not installed (needed for the cloud targets)",
            hint="install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install) or set BIOINFRA_TERRAFORM",
        )
    return path


def who_am_i() -> str:
    """What Terraform writes as a lock's Who: user@hostname."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Terraform:
    """Terraform in one stack folder, with its logs in <folder>/logs/."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir = workdir
        self.env = env
        self.binary = terraform_binary()
        self.log_dir = workdir / "logs"

    # -- logs ----------------------------------------------------------------------------------

    def _log_path(self, command: str) -> Path:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        return self.log_dir / f"{stamp}-{command.replace(' ', '-')}.log"

    # -- buffered calls through python-terraform -----------------------------------------------

    def _python_terraform(self):
        try:
            from python_terraform import Terraform as PyTerraform
        except ImportError:
            raise ToolMissingError(
                "python-terraform is not installed", hint="pip install 'bioinfra[aws]'"
            ) from None
        return PyTerraform(working_dir=str(self.workdir), terraform_bin_path=self.binary)

    def _buffered(self, command: str, *args: str, check: bool = True, **options: Any) -> tuple[int, str, str]:
        """One short Terraform call; a call refused the state lock it wrote itself (`state rm`
        takes the lock too) releases it and runs once more, as `stream` does."""
        code, out, err, log, own_lock_ids = self._buffered_once(command, *args, **options)
        lock = LockInfo.parse(err + out) if code != 0 else None
        if lock is not None and lock.id in own_lock_ids:
            self.force_unlock(lock.id)
            code, out, err, log, _ = self._buffered_once(command, *args, **options)
        if check and code != 0:
            raise TerraformError(
                f"terraform {command} failed in {self.workdir.name}: {_first_error(err or out)}",
                hint=f"full output: {log}",
            )
        return code, out, err

    def _buffered_once(self, command: str, *args: str, **options: Any) -> tuple[int, str, str, Path, list[str]]:
        from python_terraform import IsFlagged

        tf = self._python_terraform()
        options = {"no_color": IsFlagged, **options}
        log = self._log_path(command)  # named when the call starts, as a streamed call's log is
        env, core_log = self._own_lock_log(command, log)
        # python-terraform passes os.environ unless told; we need ours (TF_* and AWS settings).
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            with _umask(UMASK):
                code, out, err = tf.cmd(command, *args, **options)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            protect(self.workdir)
        _write_private(log, f"$ terraform {command} {' '.join(args)}\n{out or ''}{err or ''}")
        return code, out or "", err or "", log, _own_lock_ids(core_log)

    def init(self, backend_config_file: Optional[str] = None) -> bool:
        """`terraform init`, unless this folder is already initialised for exactly this
        configuration (`init_fingerprint` unchanged and every locked provider installed under
        .terraform/); returns whether Terraform ran. A remote backend's settings come from a JSON
        file in the stack folder (`-backend-config=FILE`: Terraform reads a .json file as JSON, its
        strings as plain data; checked with Terraform 1.11.4), never from HCL text."""
        from python_terraform import IsFlagged

        fingerprint_file = self.workdir / INIT_FINGERPRINT
        if self._initialised_for(fingerprint_file, backend_config_file):
            return False
        fingerprint_file.unlink(missing_ok=True)  # a failed init leaves no fingerprint behind
        args = [f"-backend-config={backend_config_file}"] if backend_config_file else []
        with _plugin_cache_lock(self.env.get("TF_PLUGIN_CACHE_DIR")):
            self._buffered("init", *args, input=False, reconfigure=IsFlagged)
        # Taken after the init: it writes the lock file, the backend cache and modules.json.
        _write_private(fingerprint_file, json.dumps(self.init_fingerprint(backend_config_file), indent=1, sort_keys=True))
        return True

    def _initialised_for(self, fingerprint_file: Path, backend_config_file: Optional[str]) -> bool:
        try:
            recorded = json.loads(fingerprint_file.read_text())
        except (OSError, ValueError):
            return False
        return recorded == self.init_fingerprint(backend_config_file) and _providers_installed(
            self.workdir, self._data_dir())

    def _data_dir(self) -> Path:
        return self.workdir / self.env.get("TF_DATA_DIR", ".terraform")

    def init_fingerprint(self, backend_config_file: Optional[str] = None) -> dict[str, Any]:
        """Everything a `terraform init` here depends on or leaves behind, as hashes (no backend
        setting in clear):
        - the Terraform binary (path, size, mtime: another version may install differently) and the
          CLI config (provider installation sources), the plugin cache and data dir it links into;
        - the backend: the -backend-config file's bytes and the backend cache init wrote
          (.terraform/terraform.tfstate: type and settings, local or remote);
        - the configuration: every *.tf / *.tf.json of the root (required_providers, the backend
          block, module sources) and of each module init recorded (.terraform/modules/modules.json),
          so a module that gains a provider or a nested module re-inits too;
        - the dependency lock file (.terraform.lock.hcl: provider versions and checksums).
        """
        data_dir = self._data_dir()
        binary = Path(self.binary)
        try:
            stat = binary.stat()
            binary_id = f"{binary.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            binary_id = str(binary)
        cli_config = self.env.get("TF_CLI_CONFIG_FILE", "")
        modules = _module_dirs(data_dir / "modules" / "modules.json")
        config_dirs = [self.workdir, *(self.workdir / d for d in modules)]
        return {
            "terraform": _sha(binary_id.encode()),
            "cli_config": _sha(cli_config.encode() + b"\0" + _read(Path(cli_config) if cli_config else None)),
            "plugin_cache": _sha(self.env.get("TF_PLUGIN_CACHE_DIR", "").encode()),
            "data_dir": _sha(str(data_dir).encode()),
            "backend_config": _sha((backend_config_file or "").encode() + b"\0"
                                   + _read(self.workdir / backend_config_file if backend_config_file else None)),
            "backend_cache": _sha(_read(data_dir / "terraform.tfstate")),
            "modules": sorted(modules),
            "configuration": _sha(b"".join(_config_bytes(folder) for folder in config_dirs)),
            "lock_file": _sha(_read(self.workdir / ".terraform.lock.hcl")),
        }

    def outputs(self) -> dict[str, Any]:
        """Every output's value; {} when the stack has no state. (`output NAME` raises in python-terraform.)

        A local backend's state is read here, in-process (`read_state_outputs`); anything else (a
        remote backend, another workspace, a state format we do not know) asks `terraform output -json`."""
        from python_terraform import IsFlagged

        state_file = self.local_state_file()
        if state_file is not None:
            outputs = read_state_outputs(state_file)
            if outputs is not None:
                return outputs
        _, out, _ = self._buffered("output", json=IsFlagged)
        data = json.loads(out or "{}")
        return {name: entry.get("value") for name, entry in data.items()}

    def local_state_file(self) -> Optional[Path]:
        """The state file of this folder's local backend in the default workspace, as `terraform
        init` recorded it in the backend cache (.terraform/terraform.tfstate: {"backend": {"type":
        "local", "config": {"path": ...}}}); None for any other backend or workspace (or no init yet)."""
        data_dir = self._data_dir()
        try:
            backend = json.loads((data_dir / "terraform.tfstate").read_text()).get("backend") or {}
        except (OSError, ValueError, AttributeError):
            return None
        config = backend.get("config") or {}
        if backend.get("type") != "local" or config.get("workspace_dir"):
            return None
        workspace = self.env.get("TF_WORKSPACE") or _read(data_dir / "environment").decode(errors="replace").strip()
        if workspace not in ("", "default"):
            return None  # other workspaces live under terraform.tfstate.d/: leave them to Terraform
        return self.workdir / (config.get("path") or "terraform.tfstate")

    def state_list(self) -> list[str]:
        """The resource instances in the state, as `terraform state list` names them (in no
        particular order: callers ask what is in it). A local backend's version-4 state is read
        in-process (`read_state_addresses`); anything else asks Terraform."""
        state_file = self.local_state_file()
        if state_file is not None:
            addresses = read_state_addresses(state_file)
            if addresses is not None:
                return addresses
        code, out, err = self._buffered("state list", check=False)
        if code != 0:
            if "No state file was found" in (err + out):
                return []
            raise TerraformError(f"terraform state list failed in {self.workdir.name}: {_first_error(err or out)}")
        return [line for line in out.splitlines() if line.strip()]

    def show_plan(self, plan_file: str) -> str:
        """Terraform's human-readable text of a saved plan."""
        return self._buffered("show", plan_file)[1]

    def show_state(self) -> dict[str, Any]:
        """The current state as Terraform's JSON representation ({} without state)."""
        from python_terraform import IsFlagged

        return json.loads(self._buffered("show", json=IsFlagged)[1] or "{}")

    def state_rm(self, addresses: list[str]) -> None:
        """Forget resources without destroying them (a results bucket kept by `destroy`)."""
        self._buffered("state rm", *addresses)

    def force_unlock(self, lock_id: str) -> None:
        from python_terraform import IsFlagged

        self._buffered("force-unlock", lock_id, force=IsFlagged)

    # -- streaming calls -----------------------------------------------------------------------

    def stream(
        self,
        args: list[str],
        on_event: Callable[[dict[str, Any]], None] = lambda event: None,
        say: Callable[[str], None] = lambda msg: None,
    ) -> StreamResult:
        """Run `terraform ARGS -json`, passing each event to on_event as it arrives.

        Terraform runs in its own session so a terminal Ctrl-C reaches only us: we then send it
        exactly one SIGINT (a second one makes Terraform abandon the operation without saving
        state) and wait for it to save state and release the lock.

        A Terraform that fails because the state lock is held by the very lock it wrote itself
        (`own_lock_ids`: its lock write took effect, a reply was lost, the SDK retried the
        conditional write and met its own item) leaves that lock behind and took no other step:
        it is released and the call made once more. Any other holder is left alone (the caller
        names it to the user). Seen twice here under load before this (a `destroy` failing with "held by
        root@vm" and leaving the lock; moto's log: one lock write answered 200, then again 400); the S3
        backend's lock is proven ours by its logged ID, a GCS lock (no such log) is never retried.
        """
        result = self._stream_once(args, on_event, say)
        lock = result.lock
        if result.returncode not in (0, 2) and lock is not None and lock.id in result.own_lock_ids:
            say(f"stack {self.workdir.name}: Terraform was refused the state lock {lock.id}, which it had "
                "written itself (a lock write retried after its reply was lost); releasing it and trying again")
            self.force_unlock(lock.id)
            result = self._stream_once(args, on_event, say)
        return result

    def _own_lock_log(self, command: str, log: Path) -> tuple[dict[str, str], Optional[Path]]:
        """The environment for one Terraform call that records, in a core log of its own next to
        the call's log, the ID of every state lock it tries to write; None for the log path when the
        command takes no lock, or the user set Terraform's logging themselves (theirs is left as it
        is: no lock is then provably ours)."""
        if command not in LOCKING_COMMANDS or any(name in self.env for name in ("TF_LOG", "TF_LOG_CORE", "TF_LOG_PATH")):
            return self.env, None
        core_log = log.with_suffix(".core.log")
        return {**self.env, "TF_LOG_CORE": "INFO", "TF_LOG_PATH": str(core_log)}, core_log

    def _stream_once(
        self,
        args: list[str],
        on_event: Callable[[dict[str, Any]], None],
        say: Callable[[str], None],
    ) -> StreamResult:
        command = args[0]
        log = self._log_path(command + ("-destroy" if "-destroy" in args else ""))
        result = StreamResult(returncode=-1, log=log)
        # Flags before the positional plan file: Terraform stops reading flags at the first argument.
        argv = [self.binary, command, "-json", "-input=false", "-no-color", *args[1:]]
        with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as log_fh:
            log_fh.write(f"$ terraform {' '.join(args)} -json\n")
            log_fh.flush()
            env, core_log = self._own_lock_log(command, log)
            proc = subprocess.Popen(
                argv, cwd=self.workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, bufsize=1, start_new_session=True, umask=UMASK,
            )
            self._write_marker(proc.pid, command)
            interrupted = False
            try:
                while True:
                    try:
                        for line in _lines(proc.stdout):
                            log_fh.write(line)
                            log_fh.flush()
                            self._handle(line, result, on_event)
                        break
                    except KeyboardInterrupt:
                        if not interrupted:
                            interrupted = True
                            say("interrupt: asking Terraform to stop after the operations in flight "
                                "(state is saved, the lock released); please wait")
                            _signal(proc, signal.SIGINT)
                        else:
                            say("still waiting for Terraform to save its state; `kill -9` now can "
                                "leave resources outside the state (`bioinfra destroy` sweeps them)")
                result.returncode = proc.wait()
                if result.returncode not in (0, 2) and not result.errors and result.plain:
                    result.errors.append(" ".join(result.plain[-3:]))
            finally:
                if proc.poll() is None:  # an unexpected exception in our own code
                    _signal(proc, signal.SIGINT)
                    proc.wait()
                self._clear_marker()
                result.own_lock_ids = _own_lock_ids(core_log)
                protect(self.workdir)
        if interrupted:
            raise InterruptedRunError(
                f"interrupted: Terraform stopped {self.workdir.name} cleanly (exit {result.returncode})",
                hint="run the same command again to continue, or `bioinfra destroy` to remove what exists",
            )
        return result

    def _handle(self, line: str, result: StreamResult, on_event: Callable[[dict[str, Any]], None]) -> None:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            # Usage errors and crashes come as plain text; kept for the error message (and the log).
            if line.strip():
                result.plain.append(line.strip())
            return
        kind = event.get("type")
        if kind == "change_summary":
            result.changes = event.get("changes", {})
        elif kind == "planned_change":
            result.planned.append(event.get("change", {}))
        elif kind == "diagnostic" and event.get("@level") == "error":
            diag = event.get("diagnostic", {})
            summary = diag.get("summary", "")
            detail = diag.get("detail", "")
            if "state lock" in summary.lower():
                result.lock = LockInfo.parse(detail)
            address = diag.get("address")
            result.errors.append(f"{address + ': ' if address else ''}{summary}{': ' + detail if detail else ''}")
        on_event(event)

    # -- the marker that lets `destroy` prove a stale lock is its own ---------------------------

    def _write_marker(self, pid: int, command: str) -> None:
        from bioinfra.files import write_json_atomic

        if (self.workdir / MARKER).exists():
            os.replace(self.workdir / MARKER, self.workdir / DEAD_MARKER)
        write_json_atomic(self.workdir / MARKER, {
            "terraform_pid": pid, "bioinfra_pid": os.getpid(), "who": who_am_i(), "command": command,
            "started": dt.datetime.now(dt.timezone.utc).isoformat(),
        })

    def _clear_marker(self) -> None:
        (self.workdir / MARKER).unlink(missing_ok=True)

    def stale_lock_is_ours(self, lock: LockInfo) -> tuple[bool, str]:
        """Whether a held lock was left by a bioinfra Terraform that died here (and why / why not)."""
        reasons = []
        for name in (DEAD_MARKER, MARKER):
            try:
                marker = json.loads((self.workdir / name).read_text())
            except (OSError, ValueError):
                continue
            ours, why = _marker_proves(marker, lock)
            if ours:
                return True, why
            reasons.append(why)
        return False, reasons[0] if reasons else "no record of a bioinfra Terraform run in this folder"

    def forget_dead_run(self) -> None:
        (self.workdir / DEAD_MARKER).unlink(missing_ok=True)


def read_state_outputs(state_file: Path) -> Optional[dict[str, Any]]:
    """The root module's output values from a local state file, as `terraform output -json` gives
    them ({name: value}); {} when there is no state file yet (as `terraform output -json` says: {}).
    None when the file is not a version-4 state we can read: the caller then asks Terraform.

    The state file format is Terraform's internal one ("The Terraform project will keep the CLI
    working while the state format underneath it may shift",
    https://developer.hashicorp.com/terraform/language/state): only "version": 4 is read, whose
    "outputs" map is {name: {"value", "type", "sensitive"}} (hashicorp/terraform,
    internal/states/statefile/version4.go, stateV4.RootOutputs / outputStateV4). Values marked
    sensitive are returned like any other (Terraform's JSON output does the same) and never logged.
    """
    state = _state_v4(state_file)
    if state is None:
        return None
    outputs = state.get("outputs", {})
    if not isinstance(outputs, dict) or not all(isinstance(o, dict) and "value" in o for o in outputs.values()):
        return None
    return {name: entry["value"] for name, entry in outputs.items()}


def read_state_addresses(state_file: Path) -> Optional[list[str]]:
    """Every resource instance's address in a local version-4 state file, as `terraform state list`
    prints them: [module path.][data.]TYPE.NAME[index] ([] without a state file). None when the file
    is not a version-4 state or holds a string key whose quoting could differ from Terraform's: the
    caller then asks Terraform.

    version4.go (hashicorp/terraform, internal/states/statefile): each of "resources" has "module"
    (the module instance address, "" for the root), "mode" ("managed" / "data"), "type", "name" and
    "instances", each with an optional "index_key" (a number for count, a string for for_each);
    `state list` prints addrs.AbsResourceInstance.String(): `[0]`, `["key"]`."""
    state = _state_v4(state_file)
    if state is None:
        return None
    if not state:
        return []
    addresses = []
    try:
        for resource in state.get("resources") or []:
            prefix = (resource["module"] + ".") if resource.get("module") else ""
            prefix += ("data." if resource["mode"] == "data" else "") + f"{resource['type']}.{resource['name']}"
            for instance in resource.get("instances") or []:
                key = instance.get("index_key")
                if key is None:
                    addresses.append(prefix)
                elif isinstance(key, int) and not isinstance(key, bool):
                    addresses.append(f"{prefix}[{key}]")
                elif isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_./:@ -]*", key):
                    addresses.append(f'{prefix}["{key}"]')
                else:
                    return None  # escapes to get exactly right: Terraform knows
    except (KeyError, TypeError, AttributeError):
        return None
    return sorted(set(addresses))


def _state_v4(state_file: Path) -> Optional[dict[str, Any]]:
    """A local state file's JSON if it is Terraform's version 4 ({} without a file), else None."""
    try:
        text = state_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError:
        return None
    try:
        state = json.loads(text)
    except ValueError:
        return None  # empty, or caught mid-write: Terraform knows better
    return state if isinstance(state, dict) and state.get("version") == 4 else None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Optional[Path]) -> bytes:
    """A file's bytes; b"" when there is none (absence is part of a fingerprint too)."""
    if path is None:
        return b""
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _config_bytes(folder: Path) -> bytes:
    """The Terraform files Terraform reads in one module folder (not its subfolders), named and sorted."""
    parts = []
    for path in sorted([*folder.glob("*.tf"), *folder.glob("*.tf.json")]):
        parts.append(path.name.encode() + b"\0" + _read(path) + b"\0")
    return _sha(b"".join(parts)).encode() + b"\0"


def _module_dirs(modules_json: Path) -> list[str]:
    """The folders of the modules `terraform init` installed or linked (.terraform/modules/modules.json:
    {"Modules": [{"Key", "Source", "Dir"}]}), relative to the root; [] without modules."""
    try:
        entries = json.loads(modules_json.read_text()).get("Modules") or []
    except (OSError, ValueError, AttributeError):
        return []
    return sorted({str(entry.get("Dir", "")) for entry in entries if isinstance(entry, dict)} - {"", "."})


def _providers_installed(workdir: Path, data_dir: Path) -> bool:
    """Every provider of the lock file is in .terraform/providers/<address>/<version>/<platform>/
    as an executable terraform-provider-* (through the plugin cache's link, which may point at a
    cache since deleted); and a backend cache and, if the fingerprint names modules, modules.json
    are there (checked through the fingerprint)."""
    if not data_dir.is_dir():
        return False
    lock = _read(workdir / ".terraform.lock.hcl").decode(errors="replace")
    for address, version in re.findall(r'^provider\s+"([^"]+)"\s*\{[^}]*?^\s*version\s*=\s*"([^"]+)"', lock, re.M | re.S):
        folder = data_dir / "providers" / address / version
        try:
            platforms = [p for p in folder.iterdir() if p.is_dir()]  # is_dir follows the link
        except OSError:
            return False
        if not any(os.access(exe, os.X_OK) for p in platforms for exe in p.glob("terraform-provider-*")):
            return False
    return True


def _write_private(path: Path, text: str) -> None:
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as fh:
        fh.write(text)


def _own_lock_ids(core_log: Optional[Path]) -> list[str]:
    """The lock IDs a Terraform call logged as about to write (`_OWN_LOCK_LINE`), in order."""
    if core_log is None:
        return []
    return _OWN_LOCK_LINE.findall(_read(core_log).decode(errors="replace"))


def _marker_proves(marker: dict[str, Any], lock: LockInfo) -> tuple[bool, str]:
    if lock.who != marker.get("who") or lock.who != who_am_i():
        return False, f"the lock is held by {lock.who}, not {who_am_i()}"
    for key in ("terraform_pid", "bioinfra_pid"):
        pid = marker.get(key)
        if isinstance(pid, int) and pid != os.getpid() and pid_alive(pid):
            return False, f"the process that took it (pid {pid}) is still running"
    created = _parse_time(lock.created)
    started = _parse_time(marker.get("started", ""))
    if created and started and created < started - dt.timedelta(seconds=5):
        return False, "the lock is older than the recorded run"
    return True, f"taken by bioinfra's `terraform {marker.get('command')}` (pid {marker.get('terraform_pid')}), which is gone"


def _lines(stream) -> Iterable[str]:
    # readline, not iteration: a file object's iterator reads ahead in blocks and would delay events.
    while True:
        line = stream.readline()
        if not line:
            return
        yield line


def _signal(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.kill(proc.pid, signum)
    except ProcessLookupError:
        pass


def _first_error(text: str) -> str:
    """The first "Error:" summary with the paragraph under it (where the why is: "provider
    hashicorp/google was not found ..."), on one line."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        line = line.strip().strip("│╷╵ ").strip()
        if line.startswith("Error:"):
            summary = line[len("Error:"):].strip()
            detail: list[str] = []
            for follow in lines[i + 1:]:
                follow = follow.strip().strip("│╷╵ ").strip()
                if not follow:
                    if detail:
                        break
                    continue
                if follow.startswith(("Error:", "on ")):
                    break
                detail.append(follow)
            return f"{summary}: {' '.join(detail)}" if detail else summary
    tail = [line for line in lines if line.strip()]
    return tail[-1].strip() if tail else "no output"


def _parse_time(text: str) -> Optional[dt.datetime]:
    # Terraform writes e.g. "2026-11-26 23:59:01.123456789 +0000 UTC"; Python's isoformat for ours.
    match = re.match(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?", text)
    if not match:
        return None
    return dt.datetime.fromisoformat(f"{match[1]}T{match[2]}").replace(tzinfo=dt.timezone.utc)


def lock_error(stack: str, lock: LockInfo) -> StateLockedError:
    error = StateLockedError(
        f"the Terraform state of stack '{stack}' is locked: {lock.describe()}",
        hint=(
            "another bioinfra/terraform is working on it: wait for it to finish. If you are sure it is dead, "
            f"`terraform -chdir=<stack folder> force-unlock {lock.id}`"
        ),
    )
    error.lock = lock  # destroy checks whether it is our own stale lock
    return error


