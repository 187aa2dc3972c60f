#!/usr/bin/env python3
"""Only the docker-vs-native part of `make bench` (#19.4): the demo with `--runtime docker` and with
`--runtime native`, interleaved, after one untimed docker warm-up; medians. Plus the fixed cost of
one step's container against one `docker exec` (what a step pays before its work starts).

Needs the demo's images built in the workspace of $BIOINFRA_CONFIG (`make images`). Replaces the
"### Docker runtime vs native" part of bench/results.md (under "## Images") and nothing else.
With BENCH_BEFORE=<folder> (a source tree of an earlier bioinfra, e.g. `git archive 9774ed4 | tar -x -C
<folder>`), that version's docker runtime is run too, in the same rotation ("docker before").
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
BASE = "bioinfra-base:bookworm"
HEADING = "### Docker runtime vs native"


def _run(args: list[str], env: dict[str, str], src: Path = REPO) -> float:
    t0 = time.perf_counter()
    env = {**env, "PYTHONPATH": str(src)}
    proc = subprocess.run([sys.executable, "-m", "bioinfra", *args], env=env, cwd=src, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench: bioinfra {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def _latency(cmd: list[str], n: int = 10) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def docker_section(work: Path, env: dict[str, str], repeats: int, before: Path | None = None) -> list[str]:
    shutil.rmtree(work, ignore_errors=True)  # fresh output folders: a run refuses a folder that holds one
    work.mkdir(parents=True)
    variants = {"docker": (REPO, "docker"), "native": (REPO, "native")}
    if before is not None:
        variants["docker before"] = (before, "docker")
    for name, (src, runtime) in variants.items():  # untimed warm-up of each
        _run(["run", "fastqc-to-bwa", "-q", "--runtime", runtime, "--output", str(work / f"{name}-warm")], env, src)
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for i in range(repeats):
        for name in names[i % len(names):] + names[:i % len(names)]:  # each position in turn
            src, runtime = variants[name]
            out = work / f"{name.replace(' ', '-')}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            times[name].append(_run(["run", "fastqc-to-bwa", "-q", "--runtime", runtime, "--output", str(out)], env, src))
    docker_t, native_t = statistics.median(times["docker"]), statistics.median(times["native"])
    # One step's fixed cost: a container per step (the runtime before #19.4) vs one exec in a kept one.
    per_run = _latency(["docker", "run", "--rm", "--network", "none", BASE, "true"])
    keep = subprocess.run(["docker", "run", "-d", "--rm", "--network", "none", BASE, "sleep", "600"],
                          check=True, capture_output=True, text=True).stdout.strip()
    try:
        per_exec = _latency(["docker", "exec", keep, "true"])
    finally:
        subprocess.run(["docker", "rm", "-f", keep], capture_output=True)
    load = os.getloadavg()[0]
    return [
        HEADING,
        "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by bench/docker_bench.py: the demo "
        f"(`bioinfra run fastqc-to-bwa`), docker and native interleaved, median of {repeats} after a docker "
        f"warm-up; load average {load:.1f} on {os.cpu_count()} cores (shared machine: absolute times vary, the "
        "ratio of interleaved runs less).",
        "",
        "| runtime | wall of `bioinfra run` (s), median | repetitions (s) |",
        "|---|---:|---|",
        *(f"| {name} | {statistics.median(t):.2f} | {', '.join(f'{x:.2f}' for x in t)} |" for name, t in times.items()),
        "",
        f"Ratio docker / native: **{docker_t / native_t:.3f}** (target <= 1.10)"
        + (f"; docker before / native: {statistics.median(times['docker before']) / native_t:.3f}" if before else "")
        + ". The run keeps its containers (one per image made ahead, one per step running at once, each set "
        "to its step's limits) and runs each step with `docker exec`.",
        f"Fixed cost per step, median of 10: `docker run --rm` (create, start, wait, remove) {per_run:.3f}s; "
        f"`docker exec` in a running container {per_exec:.3f}s.",
        "",
    ]


def replace_section(text: str, section: list[str]) -> str:
    """`text` with its HEADING part (up to the next heading) replaced, or the part added at the end
    of "## Images"; every other line unchanged."""
    lines = text.split("\n")
    if HEADING in lines:
        start = lines.index(HEADING)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    else:
        images = lines.index("## Images") if "## Images" in lines else len(lines)
        start = end = next((i for i in range(images + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[:start] + section + lines[end:])


def main() -> int:
    before = Path(os.environ["BENCH_BEFORE"]) if os.environ.get("BENCH_BEFORE") else None
    section = docker_section(HERE / "work" / "docker", dict(os.environ), REPEATS, before)
    results = HERE / "results.md"
    results.write_text(replace_section(results.read_text(), section))
    print("\n".join(section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
