#!/usr/bin/env python3
"""`make bench-scale` (#19.2, #19.5): fastqc-to-bwa at a real size, against what the tools alone need.

Data, made at bench time in bench/work/scale (never committed), by the fast simulator
(bioinfra.sampledata.simulate.simulate_fast): a seeded 5 Mb genome with a human-like share of
repeats (repeat_genome: interspersed repeat families, segmental duplications and simple repeats on a
random background, ~50 %; bwa's cost per read grows with them) with 500 SNPs planted,
2 x 10^6 read pairs of 2 x 100 bp (BENCH_SCALE_PAIRS), and for the cohort the same number of pairs
cut into 8 samples (8 seeds, 250,000 pairs each) from the same genome.

Runs, interleaved (the order rotates each repetition, BENCH_REPEATS, default 2), each with a fresh
workspace or output folder so each indexes the reference:
- `bioinfra`: `bioinfra run fastqc-to-bwa --r1 --r2 --reference` on the native runtime, the whole
  command (Python start-up, input checks, staging, the steps, the report);
- `serial`: bench/serial.sh, the same tools with the same options one after another;
- `align`: the align step alone (bwa mem | samtools sort, samtools index) on an index made beforehand:
  the floor on these cores, the one step that must run whole before the rest can finish.
Wall time is each command's makespan; CPU is user+system of it and all its children
(getrusage RUSAGE_CHILDREN).

Then, once: the cohort through `bioinfra run fastqc-to-bwa --samples` (makespan against total CPU /
cores), the align step alone on 200,000 pairs against 0.5, 5 and 50 Mb genomes (how its cost per read
base grows with the reference, for the estimate's law), the pre-run cost of input checks at 10^5,
10^6 and 10^7 pairs (bench/input_checks_bench.py's section, rewritten from this run), and the
calibration of `bioinfra estimate` (#19.5): per-tool throughput from the serial script's per-step CPU,
a 30x human WGS extrapolated from it, and what `bioinfra estimate` says for the same input.

Targets (issue #19): bioinfra makespan <= 1.03 x (serial - the FastQC overlap), the overlap being the
shorter FastQC step of the serial run, which bioinfra runs beside the other; bioinfra CPU <= 1.02 x
serial; the cohort's makespan <= 1.10 x (its CPU / cores).

Not part of `make test` (about 25 minutes on 2 cores). Writes the "## Real sizes" and "## Input
checks: pre-run cost" sections of bench/results.md and bench/work/scale/calibration.json (every
measurement). `--report-only` writes the sections again from calibration.json, with `bioinfra estimate`
asked afresh: after pipeline.yaml's throughput is calibrated from a run (docs/cost.md).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.aws_bench import replace_section  # noqa: E402
from bench.run_bench import timed  # noqa: E402  (wall and CPU of a command and its children)
from bioinfra.sampledata.simulate import repeat_genome, simulate_fast, write_fasta  # noqa: E402

TITLE = "## Real sizes (`make bench-scale`)"
PAIRS = int(os.environ.get("BENCH_SCALE_PAIRS", "2000000"))
GENOME_BASES = int(os.environ.get("BENCH_SCALE_GENOME", "5000000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "2"))
COHORT = 8
READ_LENGTH = 100
SNPS = 500
SEED = 19
LAW_PAIRS = int(os.environ.get("BENCH_SCALE_LAW_PAIRS", "200000"))  # the align step's cost against the genome's length: reads per point
LAW_GENOMES = tuple(int(b) for b in os.environ.get("BENCH_SCALE_LAW", "500000,5000000,50000000").split(","))
# A 30x human genome: GRCh38's 3.1e9 bases x 30 / (2 x 100 bp per pair).
WGS_REFERENCE_BASES = 3.1e9
WGS_PAIRS = int(WGS_REFERENCE_BASES * 30 / (2 * READ_LENGTH))
# The align step, with values passed as arguments (never pasted into the script's text): the same
# commands as serial.sh's align and the Workflow's align template.
ALIGN_SCRIPT = r"""set -euo pipefail
ref=$1 r1=$2 r2=$3 bam=$4 threads=$5
bwa mem -t "$threads" -K 10000000 -R '@RG\tID:s\tSM:s' "$ref" "$r1" "$r2" 2>/dev/null \
  | samtools sort -@ "$threads" -m 512M -o "$bam" - 2>/dev/null
samtools index "$bam"
"""


def say(message: str) -> None:
    print(f"bench-scale {dt.datetime.now():%H:%M:%S}: {message}", file=sys.stderr, flush=True)


def make_data(work: Path) -> dict:
    """The genome, the big sample and the cohort; how fast the simulator made them."""
    data: dict = {}
    started = time.perf_counter()
    name, seq = repeat_genome(GENOME_BASES, SEED)
    data["reference"] = write_fasta(work / "genome.fa.gz", name, seq)
    started = time.perf_counter()
    paths = simulate_fast(data["reference"], work / "sample", sample="scale", pairs=PAIRS, snps=SNPS, seed=SEED)
    data["simulate_seconds"] = time.perf_counter() - started
    data["r1"], data["r2"] = paths["r1"], paths["r2"]
    rows = []
    for i in range(1, COHORT + 1):
        p = simulate_fast(data["reference"], work / "cohort", sample=f"c{i}", pairs=PAIRS // COHORT, snps=SNPS,
                          seed=SEED + i)
        rows.append(f"c{i},{p['r1']},{p['r2']}")
    data["sheet"] = work / "cohort.csv"
    data["sheet"].write_text("sample,r1,r2\n" + "\n".join(rows) + "\n")
    say(f"data: {PAIRS:,} pairs in {data['simulate_seconds']:.1f}s ({PAIRS / data['simulate_seconds']:,.0f} pairs/s)")
    return data


def align_alone(ref: Path, r1: Path, r2: Path, bam: Path, threads: int) -> tuple[float, float]:
    return timed(["bash", "-c", ALIGN_SCRIPT, "align", str(ref), str(r1), str(r2), str(bam), str(threads)],
                 dict(os.environ), REPO)


def indexed_copy(reference: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ref = folder / reference.name
    shutil.copyfile(reference, ref)
    subprocess.run(["bwa", "index", str(ref)], check=True, capture_output=True)
    return ref


def serial_steps(out: Path) -> dict[str, dict[str, float]]:
    steps = {}
    for line in (out / "timings.tsv").read_text().splitlines():
        name, wall, user, system = line.split("\t")
        steps[name] = {"wall": float(wall), "cpu": float(user) + float(system)}
    return steps


def repetitions(work: Path, data: dict, env: dict[str, str], cores: int) -> list[dict]:
    floor_ref = indexed_copy(data["reference"], work / "floor-ref")
    rows = []
    runs = ("bioinfra", "serial", "align")
    for i in range(REPEATS):
        config = work / f"bioinfra-{i}.yaml"
        config.write_text(json.dumps({"local": {"workspace": str(work / f"workspace-{i}")}}))
        commands = {
            "bioinfra": lambda i=i, config=config: timed(
                [sys.executable, "-m", "bioinfra", "run", "fastqc-to-bwa", "--r1", str(data["r1"]), "--r2",
                 str(data["r2"]), "--reference", str(data["reference"]), "--quiet", "--output",
                 str(work / f"bioinfra-{i}")], {**env, "BIOINFRA_CONFIG": str(config)}, REPO),
            "serial": lambda i=i: timed(["bash", str(HERE / "serial.sh"), str(data["r1"]), str(data["r2"]),
                                         str(data["reference"]), str(work / f"serial-{i}"), str(cores)], env, REPO),
            "align": lambda i=i: align_alone(floor_ref, data["r1"], data["r2"], work / f"align-{i}.bam", cores),
        }
        order = runs[i % 3:] + runs[:i % 3]
        row: dict = {"order": list(order)}
        for name in order:
            say(f"repetition {i + 1}/{REPEATS}: {name}")
            row[name] = dict(zip(("wall", "cpu"), commands[name](), strict=True))
            say(f"  {name}: {row[name]['wall']:.1f}s wall, {row[name]['cpu']:.1f}s CPU")
        row["serial_steps"] = serial_steps(work / f"serial-{i}")
        manifest = json.loads((work / f"bioinfra-{i}" / "manifest.json").read_text())
        row["bioinfra_steps"] = {k: s["wall_seconds"] for k, s in manifest["steps"].items()}
        row["aligner"] = manifest.get("aligner")
        rows.append(row)
        shutil.rmtree(work / f"workspace-{i}", ignore_errors=True)  # a few GB of BAMs and copies
        (work / f"align-{i}.bam").unlink(missing_ok=True)
    return rows


def cohort(work: Path, data: dict, env: dict[str, str]) -> dict:
    config = work / "cohort.yaml"
    config.write_text(json.dumps({"local": {"workspace": str(work / "workspace-cohort")}}))
    say(f"cohort: {COHORT} samples of {PAIRS // COHORT:,} pairs")
    wall, cpu = timed([sys.executable, "-m", "bioinfra", "run", "fastqc-to-bwa", "--samples", str(data["sheet"]),
                       "--reference", str(data["reference"]), "--quiet", "--output", str(work / "cohort-out")],
                      {**env, "BIOINFRA_CONFIG": str(config)}, REPO)
    manifest = json.loads((work / "cohort-out" / "manifest.json").read_text())
    steps = {k: s["wall_seconds"] for k, s in manifest["steps"].items()}
    shutil.rmtree(work / "workspace-cohort", ignore_errors=True)
    return {"wall": wall, "cpu": cpu, "steps": steps}


def reference_law(work: Path, data: dict, cores: int) -> list[dict]:
    """The align step's CPU per read base against 0.5, 5 and 50 Mb genomes, on LAW_PAIRS pairs."""
    points = []
    for bases in LAW_GENOMES:
        folder = work / f"law-{bases}"
        name, seq = repeat_genome(bases, SEED + 100)
        ref = write_fasta(folder / "genome.fa.gz", name, seq)
        subprocess.run(["bwa", "index", str(ref)], check=True, capture_output=True)
        reads = simulate_fast(ref, folder, sample="law", pairs=LAW_PAIRS, snps=min(SNPS, bases // 10_000), seed=SEED)
        wall, cpu = align_alone(ref, reads["r1"], reads["r2"], folder / "law.bam", cores)
        points.append({"reference_bases": bases, "wall": wall, "cpu": cpu,
                       "seconds_per_read_base": cpu / (LAW_PAIRS * 2 * READ_LENGTH)})
        say(f"law: {bases:,} bases: {cpu:.1f}s CPU for {LAW_PAIRS:,} pairs")
        shutil.rmtree(folder, ignore_errors=True)
    return points


def fit_exponent(points: list[dict]) -> float:
    """Least-squares slope of log(seconds per read base) against log(reference bases)."""
    xs = [math.log(p["reference_bases"]) for p in points]
    ys = [math.log(p["seconds_per_read_base"]) for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def fixed_seconds() -> dict[str, float]:
    """Each step's fixed CPU-seconds as fastqc-to-bwa's pipeline.yaml states them (a JVM's start,
    bwa's per-sample start and index load): taken off before a rate is computed from one size."""
    from bioinfra.engine.spec import builtin_root, load_spec

    throughput = load_spec(builtin_root() / "fastqc-to-bwa", builtin=True).throughput
    align = throughput["align"]
    index_load = next((w.rate for w in align.work if w.unit == "reference_bases" and w.per_item), None)
    return {
        "fastqc": throughput["fastqc-r1"].start,
        "index-reference": throughput["index-reference"].start,
        "align": align.start + align.per_item + (GENOME_BASES / index_load if index_load else 0.0),
        "stats": throughput["stats"].start + throughput["stats"].per_item,
    }


def align_points(law: list[dict], rate_at_genome: float) -> dict:
    """The align step's rate (read bases/s per core) at each genome length of the law, scaled so the
    bench genome's point is the full-size run's rate (the law's runs are 10x smaller: less sorting per
    read), and GRCh38 extrapolated as `bioinfra estimate` extrapolates a `rate` list: beyond the last
    point, the power law of the last two (docs/cost.md). Those points are what pipeline.yaml takes."""
    ordered = sorted(law, key=lambda p: p["reference_bases"])
    at_genome = min(ordered, key=lambda p: abs(math.log(p["reference_bases"] / GENOME_BASES)))
    scale = rate_at_genome * at_genome["seconds_per_read_base"]
    points = [[p["reference_bases"], scale / p["seconds_per_read_base"]] for p in ordered]
    (x1, r1), (x2, r2) = points[-2:]
    tail = math.log(r1 / r2) / math.log(x2 / x1)  # the rate falls as length^-tail
    return {"align_rate_points": points, "align_tail_exponent": tail,
            "align_read_bases_per_second_grch38": r2 * (WGS_REFERENCE_BASES / x2) ** -tail}


def calibration(rows: list[dict], law: list[dict]) -> dict:
    """Per-tool throughput from the serial script's per-step CPU (median over repetitions), each
    step's fixed part (pipeline.yaml) taken off."""
    def cpu(step: str) -> float:
        return statistics.median(r["serial_steps"][step]["cpu"] for r in rows)

    fixed = fixed_seconds()

    def work(cpu_seconds: float, step: str) -> float:  # never below a tenth of the step (tiny trial sizes)
        return max(cpu_seconds - fixed[step], 0.1 * cpu_seconds)

    read_bases_per_file = PAIRS * READ_LENGTH
    fastqc_cpu = statistics.median([cpu("fastqc-r1"), cpu("fastqc-r2")])
    align_per_base = work(cpu("align"), "align") / (2 * read_bases_per_file)
    exponent = fit_exponent(law)
    return {
        "measured": f"{dt.date.today():%Y-%m-%d}",
        "pairs": PAIRS, "read_length": READ_LENGTH, "reference_bases": GENOME_BASES, "fixed_seconds": fixed,
        "fastqc_cpu_per_file": fastqc_cpu,
        "fastqc_bases_per_second": read_bases_per_file / work(fastqc_cpu, "fastqc"),
        "index_cpu": cpu("index-reference"),
        "index_bases_per_second": GENOME_BASES / work(cpu("index-reference"), "index-reference"),
        "align_cpu": cpu("align"),
        "align_read_bases_per_second": 1 / align_per_base,
        "align_reference_exponent": exponent,
        **align_points(law, 1 / align_per_base),
        "stats_cpu": cpu("stats"),
        "stats_pairs_per_second": PAIRS / work(cpu("stats"), "stats"),
        "multiqc_cpu": cpu("multiqc"),
    }


def wgs_extrapolation(cal: dict) -> dict:
    """CPU-hours of a 30x human WGS sample from the measured rates: what the bench extrapolates."""
    read_bases = WGS_PAIRS * 2 * READ_LENGTH
    fixed = cal["fixed_seconds"]
    steps = {
        "fastqc-r1": fixed["fastqc"] + read_bases / 2 / cal["fastqc_bases_per_second"],
        "fastqc-r2": fixed["fastqc"] + read_bases / 2 / cal["fastqc_bases_per_second"],
        "index-reference": fixed["index-reference"] + WGS_REFERENCE_BASES / cal["index_bases_per_second"],
        "align": read_bases / cal["align_read_bases_per_second_grch38"],
        "stats": fixed["stats"] + WGS_PAIRS / cal["stats_pairs_per_second"],
        "multiqc": cal["multiqc_cpu"],
    }
    return {k: v / 3600 for k, v in steps.items()}


def sparse_fastq(source: Path, dest: Path, pairs: int, source_pairs: int) -> Path:
    """A gzipped FASTQ the size of `pairs` pairs of `source`: its first 4 MiB real (what `estimate`
    samples), the rest a hole, so a 30x WGS input costs no disk."""
    with open(source, "rb") as fh:
        head = fh.read(4 << 20)
    dest.write_bytes(head)
    os.truncate(dest, int(source.stat().st_size * pairs / source_pairs))
    return dest


def estimate_wgs(work: Path, data: dict, env: dict[str, str]) -> dict:
    """`bioinfra estimate fastqc-to-bwa --target aws --json` for a 30x WGS-sized pair and reference."""
    folder = work / "wgs"
    folder.mkdir(parents=True, exist_ok=True)
    r1 = sparse_fastq(data["r1"], folder / "wgs_R1.fastq.gz", WGS_PAIRS, PAIRS)
    r2 = sparse_fastq(data["r2"], folder / "wgs_R2.fastq.gz", WGS_PAIRS, PAIRS)
    ref = folder / "grch38-sized.fa.gz"
    ref.write_bytes(data["reference"].read_bytes()[: 1 << 20])
    os.truncate(ref, int(data["reference"].stat().st_size * WGS_REFERENCE_BASES / GENOME_BASES))
    proc = subprocess.run([sys.executable, "-m", "bioinfra", "estimate", "fastqc-to-bwa", "--target", "aws", "--json",
                           "--r1", str(r1), "--r2", str(r2), "--reference", str(ref)],
                          env=env, cwd=work, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench: estimate failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


def input_checks_lines() -> list[str]:
    from bench.input_checks_bench import section

    return section()


def _spread(rows: list[dict], run: str, key: str) -> str:
    values = [r[run][key] for r in rows]
    if len(values) < 2:
        return "one repetition"
    return f"{min(values):.1f}-{max(values):.1f} s, {100 * (max(values) / min(values) - 1):.1f} % apart"


def report(rows: list[dict], coh: dict, law: list[dict], cal: dict, wgs: dict, est: dict, cores: int,
           simulate_seconds: float, measured: dict) -> list[str]:
    def med(run: str, key: str) -> float:
        return statistics.median(r[run][key] for r in rows)

    def step_med(side: str, step: str, key: str | None = None) -> float:
        return statistics.median((r[side][step][key] if key else r[side][step]) for r in rows)

    bio_wall, serial_wall, align_wall = med("bioinfra", "wall"), med("serial", "wall"), med("align", "wall")
    bio_cpu, serial_cpu, align_cpu = med("bioinfra", "cpu"), med("serial", "cpu"), med("align", "cpu")
    overlap = statistics.median(min(r["serial_steps"]["fastqc-r1"]["wall"], r["serial_steps"]["fastqc-r2"]["wall"])
                                for r in rows)
    target = 1.03 * (serial_wall - overlap)
    # bioinfra's critical path through its own steps: the longest of the three first steps, then the
    # chain align -> stats -> multiqc; what the makespan has beyond it is bioinfra's own time.
    first = statistics.median(max(r["bioinfra_steps"][s] for s in ("fastqc-r1", "fastqc-r2", "index-reference"))
                              for r in rows)
    chain = {s: step_med("bioinfra_steps", s) for s in ("align", "stats", "multiqc")}
    path = first + sum(chain.values())
    coh_ratio = coh["wall"] / (coh["cpu"] / cores)
    aligner = rows[0].get("aligner") or "bwa"

    # The estimate's node-hours against the bench's, on the same nodes: each step's bench CPU-hours
    # spread over the step's CPU request, at the estimate's pods per node.
    est_steps = {s["step"]: s for s in est["steps"]}
    compare = []
    for step, cpu_hours in wgs.items():
        s = est_steps.get(step)
        if s is None:
            continue
        bench_nh = cpu_hours / s["cpu_request"] / s["pods_per_node"]
        compare.append((step, cpu_hours, bench_nh, s["node_hours"]))
    bench_total = sum(c[2] for c in compare)
    est_total = sum(c[3] for c in compare)
    wgs_ratio = est_total / bench_total

    ok = lambda met: "MET" if met else "NOT MET"  # noqa: E731
    lines = [
        "",
        TITLE,
        "",
        f"Measured {measured['at']} UTC by bench/scale_bench.py, {cores} cores "
        f"({platform.processor() or platform.machine()}, load average {measured['load']:.1f} at the end), "
        f"native runtime, aligner {aligner}. Data made at bench time: a seeded {GENOME_BASES / 1e6:g} Mb genome with a "
        "human-like share of repeats (repeat_genome) "
        f"with {SNPS} SNPs planted, {PAIRS:,} read pairs of 2 x {READ_LENGTH} bp (the fast simulator: "
        f"{PAIRS / simulate_seconds:,.0f} pairs/s, {simulate_seconds:.0f} s with gzip), median of {REPEATS} "
        "interleaved repetitions (the order rotates), each with a fresh workspace.",
        "",
        "| | makespan (s) | CPU, user+sys (s) | makespan / serial | CPU / serial |",
        "|---|---:|---:|---:|---:|",
        f"| bioinfra run | {bio_wall:.1f} | {bio_cpu:.1f} | {bio_wall / serial_wall:.3f} | {bio_cpu / serial_cpu:.3f} |",
        f"| serial script | {serial_wall:.1f} | {serial_cpu:.1f} | 1 | 1 |",
        f"| align step alone (the floor) | {align_wall:.1f} | {align_cpu:.1f} | {align_wall / serial_wall:.3f} | "
        f"{align_cpu / serial_cpu:.3f} |",
        "",
        f"- Makespan: target <= 1.03 x (serial {serial_wall:.1f} s - FastQC overlap {overlap:.1f} s) = "
        f"**{target:.1f} s**; bioinfra **{bio_wall:.1f} s**: {ok(bio_wall <= target)} ({bio_wall / target:.3f} of it).",
        f"- CPU: target <= 1.02 x serial = **{1.02 * serial_cpu:.1f} s**; bioinfra **{bio_cpu:.1f} s**: "
        f"{ok(bio_cpu <= 1.02 * serial_cpu)} ({bio_cpu / serial_cpu:.3f} x serial).",
        f"- Cohort, {COHORT} samples of {PAIRS // COHORT:,} pairs through `--samples`: makespan {coh['wall']:.1f} s, "
        f"CPU {coh['cpu']:.1f} s, makespan / (CPU / {cores} cores) = **{coh_ratio:.3f}** (target <= 1.10): "
        f"{ok(coh_ratio <= 1.10)}. Its stages (wall s): "
        + ", ".join(f"{name} {coh['steps'][name]:.1f}" for name in ("fastqc", "align", "stats", "report")
                    if name in coh["steps"])
        + f". The align stage runs one sample at a time on all {cores} cores (`pipeline.align_threads`, capped at the "
        f"cores); the align step alone keeps {align_cpu / (align_wall * cores):.2f} of them busy (its CPU / (wall x "
        f"cores) in the floor run), and the align stage is most of the cohort's CPU, so that occupancy bounds "
        f"the cohort's ratio from below at about {align_wall * cores / align_cpu:.2f}. (One thread per sample, two "
        "samples at once, was measured too: a better ratio from more CPU, not a shorter makespan: docs/cost.md.)",
        "",
        "Where bioinfra's time goes (median wall seconds; bioinfra runs FastQC R1, R2 and the index side by side, "
        "the serial script one after another):",
        "",
        "| step | bioinfra | serial | serial CPU |",
        "|---|---:|---:|---:|",
    ]
    for step in ("fastqc-r1", "fastqc-r2", "index-reference", "align", "stats", "multiqc"):
        lines.append(f"| {step} | {step_med('bioinfra_steps', step):.1f} | "
                     f"{statistics.median(r['serial_steps'][step]['wall'] for r in rows):.1f} | "
                     f"{statistics.median(r['serial_steps'][step]['cpu'] for r in rows):.1f} |")
    lines += [
        "",
        f"bioinfra's critical path through its steps is {path:.1f} s (the first three side by side {first:.1f} s, "
        f"then align {chain['align']:.1f} s, stats {chain['stats']:.1f} s, report {chain['multiqc']:.1f} s); "
        f"the other {bio_wall - path:.1f} s of the makespan are bioinfra's own (start-up, input checks, staging, "
        f"markers, manifest, between steps). The align step took {chain['align']:.1f} s inside the run against "
        f"{align_wall:.1f} s alone ({chain['align'] - align_wall:+.1f} s). CPU beyond the serial script: "
        f"{bio_cpu - serial_cpu:+.1f} s ({100 * (bio_cpu / serial_cpu - 1):+.1f} %); what bioinfra adds is Python "
        "(start-up, the executor) and the whole-input read (checksums, read counts) that runs beside the first "
        "steps, whose cost at this size the input-check table's `whole read` column shows; the rest is the "
        "tools' own CPU varying from run to run on a shared machine (the serial script's own repetitions: "
        f"{_spread(rows, 'serial', 'cpu')}).",
        "",
        "### Calibration of `bioinfra estimate` (#19.5)",
        "",
        f"Per-tool throughput from the serial script's per-step CPU (bash `time`, median), {cal['measured']}, "
        "each step's fixed part as fastqc-to-bwa's pipeline.yaml states it taken off first "
        f"({', '.join(f'{k} {v:.2f} s' for k, v in cal['fixed_seconds'].items())}):",
        "",
        "| step | measured | rate |",
        "|---|---:|---|",
        f"| FastQC, one file of {PAIRS:,} reads | {cal['fastqc_cpu_per_file']:.1f} s CPU | "
        f"{cal['fastqc_bases_per_second']:,.0f} read bases/s per core |",
        f"| bwa index, {GENOME_BASES / 1e6:g} Mb | {cal['index_cpu']:.1f} s CPU | "
        f"{cal['index_bases_per_second']:,.0f} reference bases/s |",
        f"| align ({aligner} mem -t {cores} \\| samtools sort, index) | {cal['align_cpu']:.1f} s CPU | "
        f"{cal['align_read_bases_per_second']:,.0f} read bases/s per core against {GENOME_BASES / 1e6:g} Mb |",
        f"| samtools flagstat + stats + idxstats | {cal['stats_cpu']:.1f} s CPU | "
        f"{cal['stats_pairs_per_second']:,.0f} pairs/s |",
        f"| MultiQC | {cal['multiqc_cpu']:.1f} s CPU | per run |",
        "",
        f"The align step against the genome's length ({LAW_PAIRS:,} pairs, genomes made the same way):",
        "",
        "| genome | align CPU (s) | s per read base |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {p['reference_bases'] / 1e6:g} Mb | {p['cpu']:.1f} | {p['seconds_per_read_base']:.3g} |" for p in law]
    lines += [
        "",
        f"Seconds per read base grow as reference bases^{cal['align_reference_exponent']:.3f} (least squares over the "
        f"three), but faster with the larger genomes: ^{cal['align_tail_exponent']:.3f} between the last two, where "
        "the index outgrows the CPU's caches. As a rate list in pipeline.yaml (read bases/s per core, scaled to the "
        f"full-size run at {GENOME_BASES / 1e6:g} Mb): "
        + ", ".join(f"[{x:.4g}, {r:,.0f}]" for x, r in cal["align_rate_points"])
        + f". Beyond the last point `bioinfra estimate` follows the last two points' law, and so does this "
        f"extrapolation: at GRCh38's 3.1e9 bases, {cal['align_read_bases_per_second_grch38']:,.0f} read bases/s per "
        f"core, {1e9 / cal['align_read_bases_per_second_grch38'] / 3600:.2f} CPU-hours per Gbp of reads "
        "(62x beyond the largest genome measured, and a synthetic one: docs/cost.md compares it with published "
        "figures).",
        "",
        f"A 30x human WGS sample ({WGS_PAIRS:,} pairs of 2 x {READ_LENGTH} bp) extrapolated from these rates, "
        "against `bioinfra estimate fastqc-to-bwa --target aws` for a pair of that size (sparse files; the estimate "
        "samples their first MiB), in node-hours on the estimate's nodes (the bench's CPU-hours over each step's "
        "CPU request and pods per node):",
        "",
        "| step | bench CPU-hours | bench node-hours | estimate node-hours |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {step} | {cpu_h:.2f} | {bench_nh:.2f} | {est_nh:.2f} |" for step, cpu_h, bench_nh, est_nh in compare]
    lines += [
        f"| total | {sum(c[1] for c in compare):.2f} | {bench_total:.2f} | {est_total:.2f} |",
        "",
        f"Estimate / bench = **{wgs_ratio:.2f}** (target: within 2x, 0.5-2): {ok(0.5 <= wgs_ratio <= 2)}. "
        f"The estimate read {est['inputs'].get('read_pairs', 0):,.0f} read pairs from the sparse files.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    # --report-only: the measurements of the last run (calibration.json) reported again, with the
    # estimate taken afresh: after pipeline.yaml's throughput is calibrated from them (docs/cost.md).
    report_only = "--report-only" in (sys.argv[1:] if argv is None else argv)
    work = Path(os.environ.get("BENCH_SCALE_WORK", HERE / "work" / "scale"))
    cores = os.cpu_count() or 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOINFRA_")}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    saved_file = work / "calibration.json"
    global PAIRS, GENOME_BASES, LAW_PAIRS, REPEATS
    if report_only:
        saved = json.loads(saved_file.read_text())
        PAIRS, GENOME_BASES, LAW_PAIRS, REPEATS = (saved["params"][k] for k in ("pairs", "genome_bases", "law_pairs",
                                                                                  "repeats"))
        data = {k: (v if k == "simulate_seconds" else Path(v)) for k, v in saved["data"].items()}
        rows, coh, law, checks, measured = (saved[k] for k in ("repetitions", "cohort", "law", "input_checks", "measured"))
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        data = make_data(work)
        # One untimed serial run of the bundled demo warms what every side shares (the JVM's class data,
        # MultiQC's font cache).
        from bioinfra.sampledata import bundled

        demo = bundled()
        timed(["bash", str(HERE / "serial.sh"), str(demo.r1), str(demo.r2), str(demo.reference), str(work / "warm-up"),
               str(cores)], env, REPO)
        rows = repetitions(work, data, env, cores)
        coh = cohort(work, data, env)
        law = reference_law(work, data, cores)
        measured = {"at": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M}", "load": os.getloadavg()[0]}
        say("input checks at 10^5, 10^6, 10^7 pairs")
        checks = input_checks_lines()
    cal = calibration(rows, law)
    wgs = wgs_extrapolation(cal)
    est = estimate_wgs(work, data, env)
    saved_file.write_text(json.dumps(
        {"params": {"pairs": PAIRS, "genome_bases": GENOME_BASES, "law_pairs": LAW_PAIRS, "repeats": REPEATS},
         "data": {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}, "measured": measured,
         "calibration": cal, "wgs_bench_cpu_hours": wgs, "estimate": est, "repetitions": rows, "cohort": coh,
         "law": law, "input_checks": checks}, indent=1, default=str))
    lines = report(rows, coh, law, cal, wgs, est, cores, data["simulate_seconds"], measured)
    lines += ["", "The pre-run cost table at three sizes from this same run is the section \"Input checks: pre-run cost\"."]
    results = Path(os.environ.get("BENCH_RESULTS", HERE / "results.md"))  # another file for trial runs
    text = results.read_text() if results.exists() else "# Benchmarks\n"
    text = replace_section(text, lines, TITLE)
    from bench.input_checks_bench import TITLE as CHECKS_TITLE

    text = replace_section(text, checks, CHECKS_TITLE)
    results.write_text(text)
    print("\n".join(lines + checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
