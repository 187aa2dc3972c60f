"""A fault injected from outside, as the kernel's OOM killer would: SIGKILL every process whose
command line matches, for as long as the `with` block runs. bioinfra knows nothing of it."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _argv(pid_dir: Path) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in (pid_dir / "cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


@contextmanager
def every_process(visit: Callable[[int, list[str]], None], poll_seconds: float = 0.02) -> Iterator[None]:
    """Calls `visit(pid, argv)` for every process on the machine, over and over, while the block runs
    (a thread polling /proc: what `ps` sees)."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for proc in Path("/proc").glob("[0-9]*"):
                visit(int(proc.name), _argv(proc))
            stop.wait(poll_seconds)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


@contextmanager
def killing(matches: Callable[[list[str]], bool], poll_seconds: float = 0.02) -> Iterator[list[int]]:
    """Yields the list of pids killed so far (each once)."""
    killed: list[int] = []

    def kill(pid: int, argv: list[str]) -> None:
        if argv and pid not in killed and matches(argv):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass

    with every_process(kill, poll_seconds):
        yield killed
