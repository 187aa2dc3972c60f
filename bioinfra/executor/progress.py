"""Live per-step progress on stderr: a rich display on a terminal, one line per change otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from bioinfra.executor.runner import FAILED, OMITTED, RUNNING, SKIPPED, SUCCEEDED, RunResult, TaskState

MARKS = {SUCCEEDED: "✓", FAILED: "✗", SKIPPED: "↷", OMITTED: "·", RUNNING: "…"}
# A fan-out with more children than this is shown as its one summary row (plus any failed child).
MAX_CHILD_ROWS = 16
# Plain output (logs, CI): a big fan-out's running summary ("500 items: 3 running, 12 succeeded, ...")
# changes with every child; one line per this many seconds says as much without thousands of lines.
SUMMARY_LINE_SECONDS = 10.0


class _Groups:
    """Which fan-out children to show: all of a small group, only the failures of a big one."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}

    def visible(self, task: TaskState) -> bool:
        if task.children:
            self.sizes[task.name] = task.children
        if task.group is None:
            return True
        return self.sizes.get(task.group, 0) <= MAX_CHILD_ROWS or task.phase == FAILED


def describe(state: TaskState) -> str:
    if state.phase == SUCCEEDED and state.cached:
        return "cached (outputs complete)"
    if state.phase == RUNNING:
        # A fan-out's row counts its children; attempts belong to each child.
        text = "running" if state.attempts <= 1 or state.children else f"running (attempt {state.attempts}/{state.max_attempts})"
        return f"{text}: {state.message}" if state.message else text
    if state.phase in (SUCCEEDED, FAILED):
        wall = f" in {state.wall_seconds:.1f}s" if state.wall_seconds is not None else ""
        extra = f"; {state.message}" if state.phase == FAILED and state.message else ""
        return f"{state.phase.lower()}{wall}{extra}"
    return f"{state.phase.lower()}" + (f": {state.message}" if state.message else "")


class PlainReporter:
    """For logs and CI: one timestamped line per state change."""

    def __init__(self, stream: TextIO | None = None, clock=time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._last: dict[str, str] = {}
        self._said_at: dict[str, float] = {}  # big fan-outs' running summaries: when last written
        self._clock = clock
        self._groups = _Groups()

    def started(self, tasks: list[TaskState]) -> None:
        with self._lock:
            self._write(f"running {len(tasks)} steps: {', '.join(t.name for t in tasks)}")

    def changed(self, task: TaskState) -> None:
        line = f"{MARKS.get(task.phase, ' ')} {task.name}: {describe(task)}"
        with self._lock:  # steps report from their own threads
            if not self._groups.visible(task):
                return
            if self._last.get(task.name) == line:
                return
            if task.phase == RUNNING and task.children > MAX_CHILD_ROWS:
                now = self._clock()
                if now - self._said_at.get(task.name, -SUMMARY_LINE_SECONDS) < SUMMARY_LINE_SECONDS:
                    return  # its final line always comes: phases other than Running are not held back
                self._said_at[task.name] = now
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
            TextColumn("[bold]{task.fields[step]:<24}"),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self.console,
            transient=False,
        )
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()
        self._groups = _Groups()

    def started(self, tasks: list[TaskState]) -> None:
        for t in tasks:
            self._add(t.name)
        self.progress.start()

    def _add(self, name: str) -> int:
        self._ids[name] = self.progress.add_task("pending", step=name, mark=" ", total=1, start=False)
        return self._ids[name]

    def changed(self, task: TaskState) -> None:
        with self._lock:
            if not self._groups.visible(task):
                return
            # Fan-out children appear once their task has expanded (`  analyze(0:first:1,last:4)`).
            tid = self._ids.get(task.name)
            if tid is None:
                tid = self._add(task.name)
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
