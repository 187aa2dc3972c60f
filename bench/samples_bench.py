#!/usr/bin/env python3
"""Many samples (issue #8): the rendered Workflow's size and render time against the sheet's size,
and the local executor's packing of 8 demo-sized samples on this machine's cores.

Run alone: `python bench/samples_bench.py` (or `make bench-samples`) rewrites only the
"## Many samples" section of bench/results.md; `make bench` includes it.

Render: a sheet of N rows (paths need not exist: `render` checks the sheet's shape, `run` reads the
FASTQs), timed in-process (read + check the sheet, render the template; median of 5 after a warm-up)
and once through the CLI (Python start-up included).
Packing: `run fastqc-to-bwa --samples` on 8 samples of 6,000 read pairs each (the bundled demo's
size, simulated with 8 seeds), in-process so that getrusage(RUSAGE_CHILDREN) counts exactly the
steps' processes. Ratio = makespan / (steps' CPU time / cores); 1.0 is perfect packing.
Targets: size constant in N; render < 1 s at 10,000 rows; ratio <= 1.15.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.aws_bench import update_results  # noqa: E402

TITLE = "## Many samples (--samples)"
SIZES = (1, 100, 10_000, 100_000)


def write_sheet(path: Path, n: int) -> Path:
    with open(path, "w") as fh:
        fh.write("sample,r1,r2\n")
        for i in range(n):
            fh.write(f"S{i:06d},fq/S{i:06d}_R1.fastq.gz,fq/S{i:06d}_R2.fastq.gz\n")
    return path


def render_once(sheet: Path) -> tuple[float, int]:
    from bioinfra.cli.render_cmd import render_text
    from bioinfra.engine.spec import builtin_root, load_spec

    spec = load_spec(builtin_root() / "fastqc-to-bwa", builtin=True)
    started = time.perf_counter()
    # What `bioinfra render fastqc-to-bwa --samples SHEET` does in-process (the bundled reference).
    text = render_text({}, spec, {"samples": str(sheet), "title": "bench"}, target="local", run_id="bench")
    return time.perf_counter() - started, len(text.encode())


def render_rows(work: Path) -> list[tuple[int, int, float, float]]:
    rows = []
    render_once(write_sheet(work / "warm.csv", 10))  # Jinja compiles the template once per process
    for n in SIZES:
        sheet = write_sheet(work / f"sheet-{n}.csv", n)
        times, size = [], 0
        for _ in range(5):
            elapsed, size = render_once(sheet)
            times.append(elapsed)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "bioinfra", "render", "fastqc-to-bwa", "--samples", str(sheet),
                               "--run-id", "bench", "--title", "bench"],
                              cwd=work, capture_output=True, text=True)
        cli = time.perf_counter() - t0
        if proc.returncode != 0 or len(proc.stdout.encode()) != size:
            sys.exit(f"bench: render --samples ({n}) failed or differs: {proc.stderr[-500:]}")
        rows.append((n, size, statistics.median(times), cli))
    return rows


def packing(work: Path, repeats: int) -> list[dict[str, float]]:
    from bioinfra.config import parse_config
    from bioinfra.engine.engine import RunOptions, execute
    from bioinfra.engine.local import LocalBackend
    from bioinfra.engine.spec import builtin_root, load_spec

    spec = load_spec(builtin_root() / "fastqc-to-bwa", builtin=True)

    reads = work / "reads"
    reads.mkdir(parents=True, exist_ok=True)
    for i in range(1, 9):
        if not (reads / f"S{i}_R1.fastq.gz").exists():
            subprocess.run([sys.executable, "-m", "bioinfra", "sample-data", "generate", "--out", str(reads),
                            "--sample", f"S{i}", "--seed", str(7000 + i)], check=True, capture_output=True)
    sheet = work / "eight.csv"
    sheet.write_text("sample,r1,r2\n" + "".join(f"S{i},reads/S{i}_R1.fastq.gz,reads/S{i}_R2.fastq.gz\n"
                                                for i in range(1, 9)))
    results = []
    for rep in range(repeats + 1):  # the first one warms the page cache and MultiQC's font cache
        config = parse_config({"local": {"workspace": str(work / f"ws-{rep}"), "runtime": "native"}})
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        outcome = execute(config, spec, {"samples": str(sheet)},
                          RunOptions(output=work / f"out-{rep}", runtime="native"),
                          LocalBackend(config, requested_runtime="native"), say=lambda _m: None, reporter=None)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        import json

        makespan = json.loads(outcome.manifest.read_text())["makespan_seconds"]
        cores = os.cpu_count() or 1
        if rep:
            results.append({"makespan": makespan, "cpu": cpu, "ratio": makespan / (cpu / cores)})
            print(f"bench: packing {rep}/{repeats}: makespan {makespan:.1f}s, CPU {cpu:.1f}s, "
                  f"ratio {results[-1]['ratio']:.3f}", file=sys.stderr)
    return results


def samples_section(work: Path, repeats: int = 3) -> list[str]:
    work.mkdir(parents=True, exist_ok=True)
    renders = render_rows(work)
    packed = packing(work, repeats)
    cores = os.cpu_count() or 1
    ratio = statistics.median(r["ratio"] for r in packed)
    sizes = {size for _, size, _, _ in renders}
    ten_k = next(t for n, _, t, _ in renders if n == 10_000)
    lines = [
        "",
        TITLE,
        "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by bench/samples_bench.py, {cores} cores.",
        "",
        "| samples | Workflow bytes | render, in-process (s) | `bioinfra render --samples`, CLI (s) |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {n:,} | {size:,} | {t:.3f} | {cli:.2f} |" for n, size, t, cli in renders]
    lines += [
        "",
        f"Size constant in the number of samples: **{'yes' if len(sizes) == 1 else 'NO'}** (the sheet travels as a "
        f"file and chunking is decided by the plan step). Render at 10,000 rows: **{ten_k:.3f}s** "
        f"(target < 1 s: {'MET' if ten_k < 1 else 'NOT MET'}).",
        "",
        f"Local executor, 8 samples x 6,000 read pairs, native, median of {len(packed)} after a warm-up: "
        f"makespan {statistics.median(r['makespan'] for r in packed):.1f}s, steps' CPU "
        f"{statistics.median(r['cpu'] for r in packed):.1f}s on {cores} cores: ratio **{ratio:.3f}** "
        f"(target <= 1.15: {'MET' if ratio <= 1.15 else 'NOT MET'}).",
    ]
    return lines


def main() -> int:
    return update_results(samples_section(HERE / "work" / "samples", int(os.environ.get("BENCH_REPEATS", "3"))), TITLE)


if __name__ == "__main__":
    sys.exit(main())
