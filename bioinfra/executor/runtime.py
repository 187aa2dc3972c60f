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


CPU_PERIOD = 100_000  # microseconds: the CFS period `docker run --cpus` uses
WARM_MEMORY = 64 * 2**20  # a pre-made container's memory limit until its first step sets its own


class _Container:
    """One long-lived container of a run: created once, then each step is a `docker exec` in it."""

    def __init__(self, cid: str, key: tuple[str, float, int | None], stdin: object) -> None:
        self.id = cid
        self.key = key  # (image, cpus, memory_bytes): its cgroup's limits now
        self.stdin = stdin  # its attached stdin: closed when bioinfra dies, which ends the container
        self.task = ""  # the step running in it now, "" when idle
        self.exec_id = ""
        self.spoiled = False  # stopped, or something outlived its step: removed, never reused
        self.stopped = False  # its step was stopped (deadline, terminate_all)


class DockerRuntime:
    """Runs each step in its image, as the pod would: workspace mounted at its mountPath.

    Mounts: the workspace volume at its container path; the run's output folder and each input's
    folder at their own host paths, so the workspace's symlinks (runs/<id>, inputs/...) resolve
    inside the container as they do outside. `--network none`; the caller's uid:gid, so outputs
    belong to the caller; CPU and memory limits from the step's resources.

    Speed (#19.4): creating, starting and removing a container costs about 0.3-0.6 s per step, so
    containers live for the whole run and each step is a `docker exec` in one (about 0.06 s); one
    container per image is started ahead (`prewarm`) as the runtime is made. What each step
    could see and do stays as it was with one container per step:
    - limits: CPU and memory limits belong to a container (its cgroup), so a container runs only ONE
      step at a time, and steps running at once get a container each: a step's limits are never
      shared with a concurrent step (two FastQC steps side by side use two containers, as before).
      Before a step runs in an idle container of its image whose limits differ, the container's
      cgroup is set to the step's limits (`docker update`: CPU quota, memory, memory+swap as
      `docker run --memory` sets them); if that fails (e.g. memory in use above the new limit) the
      container is removed and a new one made with the step's limits. Steps without a memory limit
      never share a container with limited ones (a memory limit cannot be lifted by an update).
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
                 labels: dict[str, str], grace_seconds: float = 5.0, prewarm: tuple[str, ...] = ()):
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
        # image -> the pre-made container's thread, until a step claims it or it is idle in the pool:
        # a step of that image waits for it rather than making a second container beside it.
        self._warming: dict[str, threading.Thread] = {}
        self._prewarm = [threading.Thread(target=self._warm, args=(image,), daemon=True) for image in prewarm]
        for image, thread in zip(prewarm, self._prewarm, strict=True):
            self._warming[image] = thread
            thread.start()

    # -- containers ---------------------------------------------------------------------------

    def _warm(self, image: str) -> None:
        """A container of `image` made ahead of its first step (whose limits it then takes)."""
        try:
            box = self._create((image, 1.0, WARM_MEMORY))
        except Exception:  # noqa: BLE001 - the first step makes its own, and reports what fails
            return
        with self._lock:
            if not self._stopping:
                self._containers[box.id] = box
                box = None
        if box is not None:
            self._remove(box.id)
            return
        try:
            self._entry(image)
        except Exception:  # noqa: BLE001 - asked again by the first step
            pass

    def _take(self, command: StepCommand) -> _Container:
        """An idle container of this step's image, set to its limits and marked busy; a new one if none."""
        key = (command.image, command.cpus, command.memory_bytes)
        with self._lock:
            warming = self._warming.pop(command.image, None) if command.memory_bytes is not None else None
        if warming is not None:  # claimed: no other step waits for it
            warming.join(timeout=60)
        with self._lock:
            idle = [b for b in self._containers.values() if b.key[0] == command.image and not b.task
                    and not b.spoiled and (b.key[2] is None) == (command.memory_bytes is None)]
            box = next((b for b in idle if b.key == key), idle[0] if idle else None)
            if box is not None:
                box.task = command.task
        if box is not None and box.key != key:
            try:
                self._set_limits(box.id, command.cpus, command.memory_bytes)
                box.key = key
            except Exception:  # noqa: BLE001 - e.g. memory in use above the step's limit: a fresh container
                box.spoiled = True
                with self._lock:
                    self._containers.pop(box.id, None)
                self._remove(box.id)
                box = None
        if box is not None:
            return box
        # Created outside the lock, so parallel steps start their containers at the same time.
        box = self._create(key)
        with self._lock:
            box.task = command.task
            self._containers[box.id] = box
        return box

    def _replace(self, box: _Container, command: StepCommand) -> _Container:
        """A new container with the step's limits in place of `box`, which is removed."""
        box.spoiled = True
        with self._lock:
            self._containers.pop(box.id, None)
        self._remove(box.id)
        fresh = self._create((command.image, command.cpus, command.memory_bytes))
        with self._lock:
            fresh.task = command.task
            self._containers[fresh.id] = fresh
        return fresh

    @staticmethod
    def _limits(cpus: float, memory: int | None) -> dict[str, int]:
        """`docker run --cpus --memory` as cgroup settings an update can change: a CFS quota per
        100 ms period (what --cpus sets), memory, and memory+swap = 2 x memory (Docker's default
        when only --memory is given)."""
        limits = {"cpu_period": CPU_PERIOD, "cpu_quota": int(cpus * CPU_PERIOD)}
        if memory is not None:
            limits.update(mem_limit=memory, memswap_limit=2 * memory)
        return limits

    def _set_limits(self, cid: str, cpus: float, memory: int | None) -> None:
        self._client.api.update_container(cid, **self._limits(cpus, memory))

    def _create(self, key: tuple[str, float, int | None]) -> _Container:
        image, cpus, memory = key
        api = self._client.api
        host_config = api.create_host_config(
            binds=self._volumes, network_mode="none", auto_remove=True, **self._limits(cpus, memory),
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
            exec_options = {"user": self._user, "workdir": command.container_cwd or None,
                            "environment": {"HOME": "/tmp", **command.env}}
            try:
                box.exec_id = api.exec_create(box.id, argv, **exec_options)["Id"]
            except Exception:
                if self._stopping:
                    raise
                # The kept container ended before the step could start in it (e.g. cgroup v2 OOM-kills
                # its `cat` when an update lowers memory below what it holds): a fresh one, once.
                box = self._replace(box, command)
                box.exec_id = api.exec_create(box.id, argv, **exec_options)["Id"]
            for chunk in api.exec_start(box.exec_id, stream=True):
                log.write(chunk)
                log.flush()
            code = api.exec_inspect(box.exec_id).get("ExitCode")
            return 128 + signal.SIGKILL if code is None else int(code)
        except Exception:
            if box.stopped or self._stopping:  # its container was removed under it (deadline, terminate_all)
                box.spoiled = True
                return 128 + signal.SIGKILL
            box.spoiled = True
            raise
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
            box.spoiled = box.stopped = True
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
        """Remove every container of the run (the executor calls this when the run ends), all at once:
        one removal takes 0.1-0.3 s (kill, wait, delete), one after the other they added up."""
        with self._lock:
            self._stopping = True
        for thread in self._prewarm:  # a container still being made removes itself once made
            thread.join(timeout=30)
        with self._lock:
            boxes = list(self._containers.values())
            self._containers.clear()
        removals = [threading.Thread(target=self._remove, args=(box.id,), daemon=True) for box in boxes]
        for thread in removals:
            thread.start()
        for thread in removals:
            thread.join(timeout=60)
        for box in boxes:
            try:
                box.stdin.close()
            except Exception:  # noqa: BLE001
                pass
