#!/usr/bin/env python3
"""The local executor's cost per fan-out child, against the fan-out's size.

Run alone: `python bench/fanout_bench.py` (or `make bench-fanout`) rewrites only the
"## Executor fan-out" section of bench/results.md; `make bench` includes it.

One Workflow: a `withSequence` task of N children (0.25 CPU each, so 4 per core run at once), then
one task depending on it, as the screen's gather depends on its batches. Two runtimes:
- `no-op`: the step returns exit 0 in-process (a stand-in runtime, named here): what is left is the
  executor's own work per child (resolve, log, marker, scheduling, group counts, progress events);
  this is what grew with N*N (and worse) before the scheduler kept its tags and counts incrementally.
- `native`: the real NativeRuntime with a one-line bash step: what a user sees, process start included.
Target: the per-child cost flat in N (linear scheduling).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.aws_bench import update_results  # noqa: E402
from bioinfra.executor.runner import LocalExecutor  # noqa: E402
from bioinfra.executor.runtime import NativeRuntime, StepCommand  # noqa: E402
from bioinfra.executor.workflow import parse_workflow  # noqa: E402

TITLE = "## Executor fan-out"
NOOP_SIZES = (100, 1_000, 10_000)
BASH_SIZES = (100, 1_000)


class NoOpRuntime:
    """Stand-in: every step 'exits 0' at once, so only the executor's own cost is measured."""

    name = "no-op"

    def run(self, command: StepCommand, log) -> int:
        return 0

    def terminate_all(self) -> None:
        pass


def fan_out_workflow(n: int) -> dict:
    def template(name: str, source: str, params: list[str]) -> dict:
        return {"name": name, "inputs": {"parameters": [{"name": p} for p in params]},
                "script": {"image": "debian", "command": ["bash"], "workingDir": "/ws", "source": source,
                           "resources": {"requests": {"cpu": "250m"}},
                           "volumeMounts": [{"name": "ws", "mountPath": "/ws"}]}}

    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "fan-"},
            "spec": {"entrypoint": "main", "volumes": [{"name": "ws", "emptyDir": {}}], "templates": [
                {"name": "main", "dag": {"tasks": [
                    {"name": "fan", "template": "child", "withSequence": {"count": str(n)},
                     "arguments": {"parameters": [{"name": "i", "value": "{{item}}"}]}},
                    {"name": "gather", "template": "gather", "depends": "fan"}]}},
                template("child", ": {{inputs.parameters.i}}\n", ["i"]),
                template("gather", "true\n", [])]}}


def run_once(n: int, runtime) -> float:
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as folder:
        work = Path(folder)
        (work / "ws").mkdir()
        executor = LocalExecutor(parse_workflow(fan_out_workflow(n)), volume_roots={"ws": work / "ws"},
                                 state_dir=work / "state", log_dir=work / "logs", runtime=runtime,
                                 max_cpus=os.cpu_count() or 1)
        started = time.perf_counter()
        result = executor.run()
        seconds = time.perf_counter() - started
        if result.phase != "Succeeded" or result.tasks["fan"].children != n:
            raise SystemExit(f"bench: the fan-out of {n} did not succeed: {result.tasks['fan'].message}")
        return seconds


def fanout_section() -> list[str]:
    rows = []
    for runtime, sizes in ((NoOpRuntime(), NOOP_SIZES), (NativeRuntime(), BASH_SIZES)):
        for n in sizes:
            seconds = run_once(n, runtime)
            rows.append((runtime.name, n, seconds))
            print(f"bench: fan-out {runtime.name} x {n}: {seconds:.2f}s", file=sys.stderr)
    cores = os.cpu_count() or 1
    noop = [(n, s) for name, n, s in rows if name == "no-op"]
    growth = (noop[-1][1] / noop[-1][0]) / (noop[0][1] / noop[0][0])
    lines = [
        "",
        TITLE,
        "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by bench/fanout_bench.py, {cores} cores: "
        "one `withSequence` task of N children (0.25 CPU each) and one task after it.",
        "",
        "| runtime | children | wall (s) | per child (ms) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {n:,} | {s:.2f} | {1000 * s / n:.2f} |" for name, n, s in rows]
    lines += [
        "",
        f"Per-child cost of the executor itself (no-op runtime) at {noop[-1][0]:,} children vs {noop[0][0]:,}: "
        f"x{growth:.2f} (flat = linear scheduling). `native` adds a process start per child.",
    ]
    return lines


def main() -> int:
    return update_results(fanout_section(), TITLE)


if __name__ == "__main__":
    sys.exit(main())
