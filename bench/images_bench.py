"""The images part of `make bench`: sizes, cold and warm build times, docker-runtime makespan.

Run by bench/run_bench.py when a Docker daemon answers and bioinfra-base:bookworm exists
(scripts/docker-up.sh); returns Markdown lines for bench/results.md.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BASE = "bioinfra-base:bookworm"


def _bioinfra(args: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bioinfra", *args], env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench: bioinfra {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def images_section(work: Path, base_env: dict[str, str], repo: Path, repeats: int) -> list[str]:
    from bioinfra.adaptors.docker import daemon_answers

    if not daemon_answers() or subprocess.run(["docker", "image", "inspect", BASE], capture_output=True).returncode:
        return ["", "## Images", "", "Skipped: no Docker daemon or no bioinfra-base:bookworm (run scripts/docker-up.sh)."]
    config = work / "images-bench.yaml"
    config.write_text(f"registry: {{url: bench.invalid/bioinfra}}\nlocal: {{workspace: {work / 'images-ws'}}}\n")
    env = {**base_env, "BIOINFRA_CONFIG": str(config)}
    ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    rows = []
    for name in ("fastqc", "bwa-mem2", "cellprofiler"):
        args = ["images", "build", name, "--base-image", BASE, "--aligner", "bwa", "-q"]
        if name == "cellprofiler" and ca:
            args += ["--extra-ca", ca]
        cold = _bioinfra([*args, "--no-cache"], env, repo)
        warm = _bioinfra(args, env, repo)  # the tag exists: a no-op
        records = json.loads((work / "images-ws" / "images.json").read_text())
        ref = records[name]["ref"]
        size = json.loads(subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True, check=True).stdout)[0]["Size"]
        rows.append((name, ref, size / 1e6, cold, warm))

    # The demo in both runtimes, alternating, after one untimed docker warm-up run.
    _bioinfra(["run", "fastqc-to-bwa", "-q", "--runtime", "docker", "--output", str(work / "docker-warm")], env, repo)
    times: dict[str, list[float]] = {"docker": [], "native": []}
    for i in range(repeats):
        order = ["docker", "native"] if i % 2 == 0 else ["native", "docker"]
        for runtime in order:
            times[runtime].append(_bioinfra(["run", "fastqc-to-bwa", "-q", "--runtime", runtime,
                                             "--output", str(work / f"{runtime}-{i}")], env, repo))
    docker_t, native_t = statistics.median(times["docker"]), statistics.median(times["native"])
    lines = [
        "",
        "## Images",
        "",
        "Built on `bioinfra-base:bookworm` (debootstrap minbase), overlay2, `--aligner bwa` (the bwa-mem2 release is",
        "not reachable here). Cold: `bioinfra images build --no-cache`; warm: the same command again (tag exists).",
        "",
        "| image | size (MB) | cold build (s) | warm build (s) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} (`{ref.split('/')[-1]}`) | {size:.0f} | {cold:.1f} | {warm:.2f} |" for name, ref, size, cold, warm in rows]
    lines += [
        "",
        f"Demo makespan (`bioinfra run`, median of {repeats}): docker runtime {docker_t:.2f}s, native {native_t:.2f}s, "
        f"ratio **{docker_t / native_t:.3f}** (one long-lived container per image for the run, a `docker exec` per step: bench/docker_bench.py measures where the rest goes).",
    ]
    return lines
