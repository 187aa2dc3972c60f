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


class DockerRuntime:
    """Runs each step in its image, as the pod would: workspace mounted at its mountPath.

    Mounts: the workspace volume at its container path; the run's output folder and each input's
    folder at their own host paths, so the workspace's symlinks (runs/<id>, inputs/...) resolve
    inside the container as they do outside. `--network none`; the caller's uid:gid, so outputs
    belong to the caller; CPU and memory limits from the step's resources.
    """

    name = "docker"

    def __init__(self, client, *, workspace_mounts: dict[str, str], host_paths: list[tuple[str, bool]], labels: dict[str, str]):
        self._client = client
        self._volumes = {host: {"bind": container, "mode": "rw"} for host, container in workspace_mounts.items()}
        for path, writable in host_paths:
            self._volumes.setdefault(path, {"bind": path, "mode": "rw" if writable else "ro"})
        self._labels = labels
        self._running: dict[str, object] = {}
        self._lock = threading.Lock()
        self._stopping = False

    def run(self, command: StepCommand, log: IO[bytes]) -> int:
        with self._lock:
            if self._stopping:
                return -signal.SIGTERM
        # Created outside the lock, so parallel steps start their containers at the same time.
        container = self._client.containers.run(
            command.image,
            command.argv,
            detach=True,
            network_mode="none",
            user=f"{os.getuid()}:{os.getgid()}",
            working_dir=command.container_cwd or None,
            environment={"HOME": "/tmp", **command.env},
            volumes=self._volumes,
            nano_cpus=int(command.cpus * 1e9),
            mem_limit=command.memory_bytes,
            labels={**self._labels, "io.bioinfra.step": command.task},
            )
        with self._lock:
            self._running[container.id] = container
            stopping = self._stopping
        if stopping:  # terminate_all() ran while this container was being created
            container.stop(timeout=5)
        try:
            for chunk in container.logs(stream=True, follow=True):
                log.write(chunk)
                log.flush()
            return int(container.wait().get("StatusCode", 1))
        finally:
            with self._lock:
                self._running.pop(container.id, None)
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass

    def terminate_step(self, command: StepCommand) -> None:
        """Stop one running step (its own deadline passed): its container, by its io.bioinfra.step label."""
        with self._lock:
            containers = list(self._running.values())
        for container in containers:
            labels = getattr(container, "labels", None) or {}
            if labels.get("io.bioinfra.step") == command.task:
                try:
                    container.stop(timeout=2)
                except Exception:  # noqa: BLE001 - already gone
                    pass

    def terminate_all(self) -> None:
        with self._lock:
            self._stopping = True
            containers = list(self._running.values())
        for container in containers:
            try:
                container.stop(timeout=5)  # SIGTERM, then SIGKILL after the grace, like NativeRuntime
            except Exception:  # noqa: BLE001 - already gone
                pass
