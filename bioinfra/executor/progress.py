"""Live per-step progress on stderr: a rich display on a terminal, one line per change otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from bioinfra.executor.runner import FAILED, OMITTED, RUNNING, SKIPPED, SUCCEEDED, RunResult, TaskState

MARKS = {SUCCEEDED: "✓", FAILED: "✗", SKIPPED: "↷", OMITTED: "·", RUNNING: "…"}


def describe(state: TaskState) -> str:
    if state.phase == SUCCEEDED and state.cached:
        return "cached (outputs complete)"
    if state.phase == RUNNING:
        text = "running" if state.attempts <= 1 else f"running (attempt {state.attempts}/{state.max_attempts})"
        return f"{text}: {state.message}" if state.message else text
    if state.phase in (SUCCEEDED, FAILED):
        wall = f" in {state.wall_seconds:.1f}s" if state.wall_seconds is not None else ""
        extra = f"; {state.message}" if state.phase == FAILED and state.message else ""
        return f"{state.phase.lower()}{wall}{extra}"
    return f"{state.phase.lower()}" + (f": {state.message}" if state.message else "")


class PlainReporter:
    """For logs and CI: one timestamped line per state change."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._last: dict[str, str] = {}

    def started(self, tasks: list[TaskState]) -> None:
        with self._lock:
            self._write(f"running {len(tasks)} steps: {', '.join(t.name for t in tasks)}")

    def changed(self, task: TaskState) -> None:
        line = f"{MARKS.get(task.phase, ' ')} {task.name}: {describe(task)}"
        with self._lock:  # steps report from their own threads
            if self._last.get(task.name) != line:
                self._last[task.name] = line
                self._write(line)

    def finished(self, result: RunResult) -> None:
        pass

    def _write(self, text: str) -> None:
        self.stream.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
        self.stream.flush()


class RichReporter:
    """A live table: one row per step with a spinner while it runs and its elapsed time."""

    def __init__(self, console=None) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(finished_text=""),
            TextColumn("{task.fields[mark]}"),
            TextColumn("[bold]{task.fields[step]:<16}"),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self.console,
            transient=False,
        )
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()

    def started(self, tasks: list[TaskState]) -> None:
        for t in tasks:
            self._ids[t.name] = self.progress.add_task("pending", step=t.name, mark=" ", total=1, start=False)
        self.progress.start()

    def changed(self, task: TaskState) -> None:
        with self._lock:
            tid = self._ids[task.name]
            mark = {SUCCEEDED: "[green]✓", FAILED: "[red]✗", SKIPPED: "[yellow]↷", OMITTED: "[dim]·"}.get(task.phase, " ")
            if task.phase == RUNNING:
                self.progress.start_task(tid)
            done = task.phase in (SUCCEEDED, FAILED, SKIPPED, OMITTED)
            if done:
                self.progress.stop_task(tid)
            self.progress.update(tid, description=describe(task), mark=mark, completed=1 if done else 0)

    def finished(self, result: RunResult) -> None:
        self.progress.stop()


def reporter_for(stream: TextIO | None = None, *, quiet: bool = False):
    from bioinfra.executor.runner import NullReporter

    if quiet:
        return NullReporter()
    stream = stream or sys.stderr
    if stream.isatty():
        return RichReporter()
    return PlainReporter(stream)
