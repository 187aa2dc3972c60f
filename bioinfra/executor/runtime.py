"""Where a step's command actually runs. `native`: with the tools on this machine's PATH.

The step's container paths are mapped to host folders through its volume mounts, and the
script runs with the workspace folder as its working directory, exactly as the pod would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol


@dataclass(frozen=True)
class StepCommand:
    """One attempt of one step, with every tag substituted and every path on the host."""

    task: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    cpus: float
    image: str = ""
    container_cwd: str = ""  # the template's workingDir, for runtimes that run the image
    memory_bytes: int | None = None  # the template's memory limit (else request)
    unset_env: tuple[str, ...] = ()  # e.g. optional secretKeyRefs: not inherited from bioinfra's environment


class Runtime(Protocol):
    name: str

    def run(self, command: StepCommand, log: IO[bytes]) -> int: ...

    def terminate_all(self) -> None: ...

    def terminate_step(self, command: StepCommand) -> None: ...


class NativeRuntime:
    """Runs each step as a local process group.

    Each step gets its own session so Ctrl-C can stop a whole pipeline (bwa | samtools) at once.
    The run lock's file descriptor is passed down: if bioinfra itself is killed with SIGKILL, a
    step that keeps running still holds the lock, so `--resume` cannot start a second writer.
    """

    name = "native"

    def __init__(
        self, *, inherit_fds: tuple[int, ...] = (), grace_seconds: float = 5.0, path_prepend: tuple[str, ...] = ()
    ) -> None:
        self._inherit_fds = inherit_fds
        self._path_prepend = path_prepend
        self._grace = grace_seconds
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._stopping = False

    def run(self, command: StepCommand, log: IO[bytes]) -> int:
        env = {k: v for k, v in os.environ.items() if k not in command.unset_env}
        if self._path_prepend:  # e.g. CellProfiler's own venv: its python3 has numpy and pyarrow
            env["PATH"] = os.pathsep.join([*self._path_prepend, env.get("PATH", "")])
        env.update(command.env)
        with self._lock:
            if self._stopping:
                return -signal.SIGTERM
            proc = subprocess.Popen(
                command.argv,
                cwd=command.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=self._inherit_fds,
            )
            self._procs[proc.pid] = proc
        try:
            return proc.wait()
        finally:
            with self._lock:
                self._procs.pop(proc.pid, None)

    def terminate_step(self, command: StepCommand) -> None:
        """Stop one running step (its own deadline passed): SIGTERM its process group, SIGKILL after
        2 s. It is found by its command line, which a wrapping runtime may prefix (the end matches)."""
        with self._lock:
            mine = [p for p in self._procs.values()
                    if isinstance(p.args, list) and p.args[len(p.args) - len(command.argv):] == command.argv]
        for proc in mine:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)

    def terminate_all(self) -> None:
        """SIGTERM every running step's process group, then SIGKILL what is left after the grace."""
        with self._lock:
            self._stopping = True
            procs = list(self._procs.values())
        for proc in procs:
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            # The leader (e.g. bash) can exit before its children (a JVM still running its shutdown
            # hooks), which hold the run lock too: wait for the whole group, then kill what is left.
            if not _wait_group_gone(proc.pid, deadline):
                _signal_group(proc.pid, signal.SIGKILL)
                _wait_group_gone(proc.pid, time.monotonic() + 5.0)


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc (Linux)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def _wait_group_gone(pgid: int, deadline: float) -> bool:
    """True once no live process is left in the group; False at the deadline."""
    while _group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


class _Container:
    """One long-lived container of a run: created once, then each step is a `docker exec` in it."""

    def __init__(self, cid: str, key: tuple[str, float, int | None], stdin: object) -> None:
        self.id = cid
        self.key = key  # (image, cpus, memory_bytes): the only steps it may serve
        self.stdin = stdin  # its attached stdin: closed when bioinfra dies, which ends the container
        self.task = ""  # the step running in it now, "" when idle
        self.exec_id = ""
        self.spoiled = False  # stopped, or something outlived its step: removed, never reused


class DockerRuntime:
    """Runs each step in its image, as the pod would: workspace mounted at its mountPath.

    Mounts: the workspace volume at its container path; the run's output folder and each input's
    folder at their own host paths, so the workspace's symlinks (runs/<id>, inputs/...) resolve
    inside the container as they do outside. `--network none`; the caller's uid:gid, so outputs
    belong to the caller; CPU and memory limits from the step's resources.

    Speed (#19.4): creating, starting and removing a container costs about 0.3-0.6 s per step, so
    containers live for the whole run and each step is a `docker exec` in one (about 0.06 s). What
    each step could see and do stays as it was with one container per step:
    - limits: CPU and memory limits belong to a container (its cgroup), so a container serves only
      steps with the same (image, cpus, memory) and only ONE step at a time; steps running at once
      get a container each. A step's limit is therefore exactly its own, never shared with a
      concurrent step (two FastQC steps side by side use two containers, as before).
    - mounts: every step of a run had the same mounts already (the runtime's, fixed per run), so a
      container mounts exactly what each step mounted before; nothing is widened.
    - network none and the caller's uid:gid on the container, and `--user` on every exec too.
    - environment: a step's values reach it only as its exec's environment (sent to the daemon as
      data in the API request, never on a command line or in a shell string); the container itself
      is created with HOME only, so no step's values are visible to another step.
    - one step at a time per container, and a container in which something outlived its step (a
      background process), or that was stopped, is removed instead of reused: a step never finds
      another step's processes. (/tmp inside the container is shared by the run's steps of that
      image, like the workspace they already share read-write.)
    - deadline / stop: `docker exec` does not kill the exec'd process when its client goes away, so
      a step is stopped inside its container: SIGTERM to every process but the container's init
      (`kill -TERM -1` as the step's uid), then after the grace the container is removed, which kills
      whatever is left (SIGKILL to the whole PID namespace).
    - cleanup: containers carry the run's labels; `close()` (the executor calls it when the run ends,
      succeeded, failed or interrupted) removes them all. Each container's main process is `cat` on
      the stdin bioinfra keeps attached: if bioinfra is killed (SIGKILL), the daemon closes that
      stdin, `cat` exits and the container stops and removes itself (auto-remove), with any step in it.
    """

    name = "docker"

    def __init__(self, client, *, workspace_mounts: dict[str, str], host_paths: list[tuple[str, bool]],
                 labels: dict[str, str], grace_seconds: float = 5.0):
        self._client = client
        self._volumes = {host: {"bind": container, "mode": "rw"} for host, container in workspace_mounts.items()}
        for path, writable in host_paths:
            self._volumes.setdefault(path, {"bind": path, "mode": "rw" if writable else "ro"})
        self._labels = labels
        self._grace = grace_seconds
        self._user = f"{os.getuid()}:{os.getgid()}"
        self._containers: dict[str, _Container] = {}  # every container of the run, idle or busy
        self._images: dict[str, tuple[list[str], list[str]]] = {}  # image -> (Entrypoint, Cmd)
        self._lock = threading.Lock()
        self._stopping = False

    # -- containers ---------------------------------------------------------------------------

    def _take(self, command: StepCommand) -> _Container:
        """An idle container with this step's image and limits, marked busy; a new one if none."""
        key = (command.image, command.cpus, command.memory_bytes)
        with self._lock:
            for box in self._containers.values():
                if box.key == key and not box.task and not box.spoiled:
                    box.task = command.task
                    return box
        # Created outside the lock, so parallel steps start their containers at the same time.
        box = self._create(key)
        with self._lock:
            box.task = command.task
            self._containers[box.id] = box
        return box

    def _create(self, key: tuple[str, float, int | None]) -> _Container:
        image, cpus, memory = key
        api = self._client.api
        host_config = api.create_host_config(
            binds=self._volumes, network_mode="none", nano_cpus=int(cpus * 1e9), mem_limit=memory,
            auto_remove=True,
        )
        # stdin_open without detach: StdinOnce, so the daemon closes `cat`'s stdin when our attach
        # connection closes (bioinfra exits or is killed), and the container ends.
        cid = api.create_container(
            image, ["cat"], entrypoint=[], stdin_open=True, detach=False, user=self._user,
            environment={"HOME": "/tmp"}, host_config=host_config,
            labels={**self._labels, "io.bioinfra.image": image},
        )["Id"]
        try:
            stdin = api.attach_socket(cid, params={"stdin": 1, "stream": 1})
            api.start(cid)
        except Exception:
            self._remove(cid)
            raise
        return _Container(cid, key, stdin)

    def _entry(self, image: str) -> tuple[list[str], list[str]]:
        """The image's Entrypoint and Cmd: a step's argv runs after the Entrypoint, and no argv runs
        the Cmd, as `docker run IMAGE [ARGV]` did."""
        if image not in self._images:
            config = self._client.api.inspect_image(image).get("Config") or {}
            self._images[image] = (list(config.get("Entrypoint") or []), list(config.get("Cmd") or []))
        return self._images[image]

    def _remove(self, cid: str) -> None:
        try:
            self._client.api.remove_container(cid, force=True)
        except Exception:  # noqa: BLE001 - already gone (auto-remove)
            pass

    def _outlived(self, box: _Container) -> bool:
        """Whether anything but the container's `cat` still runs in it (a step's background process)."""
        try:
            return len(self._client.api.top(box.id).get("Processes") or []) != 1
        except Exception:  # noqa: BLE001 - gone: not reusable
            return True

    # -- steps --------------------------------------------------------------------------------

    def run(self, command: StepCommand, log: IO[bytes]) -> int:
        with self._lock:
            if self._stopping:
                return -signal.SIGTERM
        box = self._take(command)
        api = self._client.api
        try:
            with self._lock:
                stopping = self._stopping
            if stopping:  # terminate_all() ran while this container was being created
                box.spoiled = True
                return -signal.SIGTERM
            entrypoint, default_cmd = self._entry(command.image)
            argv = entrypoint + (command.argv or default_cmd)
            box.exec_id = api.exec_create(
                box.id, argv, user=self._user, workdir=command.container_cwd or None,
                environment={"HOME": "/tmp", **command.env},
            )["Id"]
            for chunk in api.exec_start(box.exec_id, stream=True):
                log.write(chunk)
                log.flush()
            code = api.exec_inspect(box.exec_id).get("ExitCode")
            return 128 + signal.SIGKILL if code is None else int(code)
        except Exception:
            if not box.spoiled:
                box.spoiled = True
                raise
            return 128 + signal.SIGKILL  # stopped (deadline, terminate_all): its container was removed under it
        finally:
            if not box.spoiled and self._outlived(box):
                box.spoiled = True
            with self._lock:
                box.task, box.exec_id = "", ""
                if box.spoiled:
                    self._containers.pop(box.id, None)
            if box.spoiled:
                self._remove(box.id)

    def _stop(self, boxes: list[_Container], grace: float) -> None:
        """SIGTERM every process of these containers' steps, then remove the containers after the
        grace (or as soon as their steps are gone)."""
        api = self._client.api
        for box in boxes:
            box.spoiled = True
            try:  # as the step's uid: `kill -1` reaches all its processes, never the container's init
                kill = api.exec_create(box.id, ["sh", "-c", "kill -TERM -1"], user=self._user)["Id"]
                api.exec_start(kill)
            except Exception:  # noqa: BLE001 - no sh in the image, or already gone: removed below
                pass
        deadline = time.monotonic() + grace
        for box in boxes:
            while box.exec_id and time.monotonic() < deadline:
                try:
                    if not api.exec_inspect(box.exec_id).get("Running"):
                        break
                except Exception:  # noqa: BLE001 - gone
                    break
                time.sleep(0.05)
            self._remove(box.id)

    def terminate_step(self, command: StepCommand) -> None:
        """Stop one running step (its own deadline passed): the processes in its container."""
        with self._lock:
            boxes = [b for b in self._containers.values() if b.task == command.task]
        self._stop(boxes, 2.0)

    def terminate_all(self) -> None:
        with self._lock:
            self._stopping = True
            boxes = list(self._containers.values())
        self._stop([b for b in boxes if b.task], self._grace)  # SIGTERM, SIGKILL after the grace, like NativeRuntime
        self.close()

    def close(self) -> None:
        """Remove every container of the run (the executor calls this when the run ends)."""
        with self._lock:
            self._stopping = True
            boxes = list(self._containers.values())
            self._containers.clear()
        for box in boxes:
            self._remove(box.id)
            try:
                box.stdin.close()
            except Exception:  # noqa: BLE001
                pass
