#!/usr/bin/env python3
"""Only the docker-vs-native part of `make bench` (#19.4): the demo with `--runtime docker` and with
`--runtime native`, interleaved, after one untimed docker warm-up; medians. Plus the fixed cost of
one step's container against one `docker exec` (what a step pays before its work starts).

Needs the demo's images built in the workspace of $BIOINFRA_CONFIG (`make images`). Replaces the
"### Docker runtime vs native" part of bench/results.md (under "## Images") and nothing else.
"""

from __future__ import annotations

import datetime as dt
import os
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


def _run(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bioinfra", *args], env=env, cwd=REPO, capture_output=True, text=True)
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


def docker_section(work: Path, env: dict[str, str], repeats: int) -> list[str]:
    work.mkdir(parents=True, exist_ok=True)
    _run(["run", "fastqc-to-bwa", "-q", "--runtime", "docker", "--output", str(work / "docker-warm")], env)
    times: dict[str, list[float]] = {"docker": [], "native": []}
    for i in range(repeats):
        for runtime in (["docker", "native"] if i % 2 == 0 else ["native", "docker"]):
            times[runtime].append(_run(["run", "fastqc-to-bwa", "-q", "--runtime", runtime,
                                        "--output", str(work / f"{runtime}-{i}")], env))
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
        "| runtime | makespan (s), median | repetitions (s) |",
        "|---|---:|---|",
        f"| docker | {docker_t:.2f} | {', '.join(f'{t:.2f}' for t in times['docker'])} |",
        f"| native | {native_t:.2f} | {', '.join(f'{t:.2f}' for t in times['native'])} |",
        "",
        f"Ratio docker / native: **{docker_t / native_t:.3f}** (target <= 1.10). Each run keeps one container "
        "per (image, CPU, memory) and concurrent step, and runs each step with `docker exec`.",
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
    section = docker_section(HERE / "work" / "docker", dict(os.environ), REPEATS)
    results = HERE / "results.md"
    results.write_text(replace_section(results.read_text(), section))
    print("\n".join(section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
