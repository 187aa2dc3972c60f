"""`bioinfra run fastqc-to-bwa --samples SHEET`: many samples in one Workflow (issue #8).

The sheet is a CSV (or TSV) with a header: `sample`, `r1`, `r2`, and optional read-group fields
`rg_id`, `rg_sm`, `rg_lb`, `rg_pl`, `rg_pu` (defaults: the sample name, ILLUMINA, none). Relative
paths are relative to the sheet's folder. bioinfra checks it (names, duplicates, unknown columns,
with line numbers), then writes a normalised TSV into the run folder, `runs/<id>/sheet.tsv`, with
every FASTQ's workspace path; the Workflow reads that file, so it never grows with the sheet.

`render` checks the sheet's shape only (it must stay fast for 100,000 rows: see bench/); `run`
also reads every FASTQ end to end (gzip integrity, read counts, R1/R2 pairing) before anything is
made, and refuses a sheet with bad inputs listing every one of them.

Chunks: `--chunk-size`, else the smallest size that keeps at most MAX_CHUNKS chunks, so up to 200
samples get a pod (a process, locally) per sample and stage, and 100,000 samples 200 pods per stage.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import hashlib
import io
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bioinfra import __version__
from bioinfra.config import Config
from bioinfra.core import inputs as inputs_mod
from bioinfra.core.run import (
    STATE_DIR,
    abandoned_before_start,
    check_writable,
    copy_into_workspace,
    default_workspace,
    dry_run_steps,
    execute,
    link_into_workspace,
    link_run_folder,
    manifest_steps,
    new_run_id,
    read_run_record,
    resolve_output,
    usable_workspace,
    vet_new_output,
)
from bioinfra.core.runtimes import RuntimeChoice, choose_runtime, make_runtime
from bioinfra.errors import InputError, InterruptedRunError, StepFailedError
from bioinfra.executor.runner import FAILED, LocalExecutor, Reporter, RunResult
from bioinfra.executor.workflow import parse_workflow
from bioinfra.files import sha256_file, write_json_atomic
from bioinfra.pipelines import (
    MAX_CHUNKS,
    SAMPLE_NAME_RE,
    SamplesParams,
    check_title,
    default_title,
    load_workflow,
    render_samples,
)

PIPELINE = "fastqc-to-bwa"
REQUIRED = ("sample", "r1", "r2")
READ_GROUP = ("rg_id", "rg_sm", "rg_lb", "rg_pl", "rg_pu")
SHEET_COLUMNS = (*REQUIRED, *READ_GROUP)
# Read-group values go into bwa's -R "@RG\t..." and a TSV: no tabs, newlines, quotes or backslashes.
_RG_RE = re.compile(r"^[^\t\n\r'\"\\\\]*$")


@dataclass(frozen=True)
class SampleRow:
    line: int
    sample: str
    r1: Path
    r2: Path
    read_group: dict[str, str]


@dataclass(frozen=True)
class SampleSheet:
    path: Path
    rows: list[SampleRow]
    sha256: str

    def chunk_size(self, asked: Optional[int] = None) -> int:
        return asked or max(1, math.ceil(len(self.rows) / MAX_CHUNKS))


def read_sheet(path: Path) -> SampleSheet:
    """Parse and check the sheet's shape; every problem found is listed (up to 20), with its line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"--samples {path}: no such file") from None
    except OSError as exc:
        raise InputError(f"--samples {path}: cannot read it ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's byte-order mark would corrupt the first column name
    except UnicodeDecodeError:
        raise InputError(f"--samples {path}: not a UTF-8 text file (is it a CSV?)") from None
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader, [])]
    if not header or header == [""]:
        raise InputError(f"--samples {path}: empty file", hint=f"the header is {','.join(REQUIRED)} (+ {','.join(READ_GROUP)})")
    problems = []
    unknown = [h for h in header if h not in SHEET_COLUMNS]
    for name in unknown:
        near = difflib.get_close_matches(name, SHEET_COLUMNS, n=1)
        problems.append(f"line 1: unknown column '{name}'" + (f" (did you mean '{near[0]}'?)" if near else ""))
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        problems.append(f"line 1: missing column(s) {', '.join(missing)}")
    if problems:
        raise InputError(f"--samples {path}: " + "; ".join(problems),
                         hint=f"columns: {', '.join(REQUIRED)} (required), {', '.join(READ_GROUP)} (optional)")
    rows: list[SampleRow] = []
    seen: dict[str, int] = {}
    base = path.resolve().parent
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue  # blank lines
        if len(cells) != len(header):
            problems.append(f"line {line}: {len(cells)} fields, the header has {len(header)}")
            continue
        row = {h: c.strip() for h, c in zip(header, cells, strict=True)}
        sample = row["sample"]
        if not SAMPLE_NAME_RE.fullmatch(sample):
            problems.append(f"line {line}: sample name {sample!r}: use 1-64 letters, digits, '.', '_' or '-'")
        elif sample in seen:
            problems.append(f"line {line}: sample {sample} is also on line {seen[sample]}")
        else:
            seen[sample] = line
        for column in ("r1", "r2"):
            if not row[column]:
                problems.append(f"line {line}: {column} is empty")
        if row["r1"] and row["r1"] == row["r2"]:
            problems.append(f"line {line}: r1 and r2 are the same file")
        read_group = {"rg_id": row.get("rg_id") or sample, "rg_sm": row.get("rg_sm") or sample,
                      "rg_lb": row.get("rg_lb") or sample, "rg_pl": row.get("rg_pl") or "ILLUMINA",
                      "rg_pu": row.get("rg_pu") or ""}
        bad_rg = [k for k, v in read_group.items() if not _RG_RE.match(v)]
        if bad_rg:
            problems.append(f"line {line}: {', '.join(bad_rg)} may not hold tabs, quotes or backslashes")
        rows.append(SampleRow(line, sample, base / row["r1"], base / row["r2"], read_group))
        if len(problems) >= 20:
            break
    if problems:
        more = " (first 20 shown)" if len(problems) >= 20 else ""
        raise InputError(f"--samples {path}: {len(problems)} problem(s){more}:\n  " + "\n  ".join(problems),
                         hint="fix those lines; the sheet is checked whole before anything runs")
    if not rows:
        raise InputError(f"--samples {path}: no samples (only a header)")
    return SampleSheet(path, rows, hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class CheckedSample:
    row: SampleRow
    r1: inputs_mod.FastqFacts
    r2: inputs_mod.FastqFacts

    def workspace_fastq(self, mate: str) -> str:
        facts = self.r1 if mate == "R1" else self.r2
        return f"inputs/{facts.sha256[:16]}/{self.row.sample}_{mate}.fastq" + (".gz" if facts.gzipped else "")


def check_samples(sheet: SampleSheet, progress: inputs_mod.Progress = None) -> list[CheckedSample]:
    """Every FASTQ read end to end (in parallel); every bad sample listed, not just the first."""

    def one(row: SampleRow) -> CheckedSample:
        inputs_mod.check_distinct(row.r1, row.r2)
        r1 = inputs_mod.inspect_fastq(row.r1, f"sample {row.sample} (line {row.line}) r1", progress)
        r2 = inputs_mod.inspect_fastq(row.r2, f"sample {row.sample} (line {row.line}) r2", progress)
        inputs_mod.check_pair(r1, r2)
        return CheckedSample(row, r1, r2)

    checked, problems = [], []
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2), thread_name_prefix="bioinfra-check") as pool:
        for row, job in [(row, pool.submit(one, row)) for row in sheet.rows]:
            try:
                checked.append(job.result())
            except InputError as exc:
                problems.append(f"line {row.line} ({row.sample}): {exc.message}")
    if problems:
        raise InputError(f"--samples {sheet.path}: {len(problems)} of {len(sheet.rows)} sample(s) have bad inputs:\n  "
                         + "\n  ".join(problems[:50]) + ("\n  ..." if len(problems) > 50 else ""),
                         hint="fix or remove those rows; nothing was created")
    return checked


def normalised_sheet(samples: list[CheckedSample]) -> str:
    """The TSV the Workflow reads: workspace paths, read groups filled in (rg_pu last: may be empty)."""
    lines = ["\t".join(SHEET_COLUMNS)]
    for s in samples:
        rg = s.row.read_group
        lines.append("\t".join([s.row.sample, s.workspace_fastq("R1"), s.workspace_fastq("R2"),
                                rg["rg_id"], rg["rg_sm"], rg["rg_lb"], rg["rg_pl"], rg["rg_pu"]]))
    return "\n".join(lines) + "\n"


def samples_params(config: Config, sheet: SampleSheet, reference: str, run_id: str, *, chunk_size: Optional[int],
                   max_parallel: Optional[int], title: Optional[str], max_cpus: Optional[int] = None,
                   stage_in: str = "", stage_out: str = "") -> SamplesParams:
    # A sheet may be called anything: its name makes a default title only where it is a usable one.
    title = check_title(title) if title else default_title(sheet.path.stem, "samples")
    threads = config.pipeline.align_threads if max_cpus is None else min(config.pipeline.align_threads, max_cpus)
    return SamplesParams(sheet=f"runs/{run_id}/sheet.tsv", reference=reference, run_dir=f"runs/{run_id}",
                         chunk_size=chunk_size, per_chunk=min(sheet.chunk_size(chunk_size), len(sheet.rows)),
                         samples=len(sheet.rows),
                         align_threads=threads, title=title,
                         parallelism=max_parallel, stage_in=stage_in, stage_out=stage_out)


def reference_path(facts: inputs_mod.FastaFacts) -> str:
    return f"references/{facts.sha256[:16]}/reference.fa" + (".gz" if facts.gzipped else "")


# -- a local run ----------------------------------------------------------------------------------


@dataclass
class SamplesRequest:
    samples: Path
    reference: Optional[Path] = None
    chunk_size: Optional[int] = None
    max_parallel: Optional[int] = None
    title: Optional[str] = None
    output: Optional[Path] = None
    resume: bool = False
    max_cpus: Optional[int] = None
    runtime: Optional[str] = None


@dataclass
class SamplesOutcome:
    run_id: str
    output: Path
    manifest: Path
    result: RunResult
    samples: list[dict[str, str]] = field(default_factory=list)


def _vet_output(req: SamplesRequest) -> tuple[Path, str, Optional[dict[str, Any]]]:
    if req.resume:
        if req.output is None:
            raise InputError("--resume needs --output: the run folder to continue")
        output = resolve_output(req.output)
        record = read_run_record(output)
        if record is None and abandoned_before_start(output):
            return vet_new_output(output), new_run_id(), None  # killed before it started: start it afresh
        if record is None or record.get("mode") != "samples":
            raise InputError(f"--resume: {req.output} holds no sample-sheet run to resume", hint="check --output")
        check_writable(output)
        return output, record["run_id"], record
    run_id = new_run_id()
    return vet_new_output(req.output or Path("results") / run_id), run_id, None


def _reference(req: SamplesRequest, progress: inputs_mod.Progress) -> inputs_mod.FastaFacts:
    from bioinfra.sampledata import bundled

    path = req.reference or bundled().reference
    return inputs_mod.inspect_fasta(path, "reference", progress)


@dataclass(frozen=True)
class SamplesPreflight:
    choice: RuntimeChoice
    output: Path
    run_id: str
    record: Optional[dict[str, Any]]
    sheet: SampleSheet
    samples: list[CheckedSample]
    reference: inputs_mod.FastaFacts
    max_cpus: int


def preflight(config: Config, req: SamplesRequest, say=lambda _m: None, progress: inputs_mod.Progress = None
              ) -> SamplesPreflight:
    choice = choose_runtime(req.runtime or config.local.runtime, default_workspace(config))
    say(f"runtime {choice.name} ({choice.reason})")
    for note in choice.notes:
        say(note)
    if req.title:
        check_title(req.title)  # before anything is read or made
    output, run_id, record = _vet_output(req)
    sheet = read_sheet(req.samples)
    samples = check_samples(sheet, progress)
    reference = _reference(req, progress)
    if record is not None and (record.get("sheet_sha256") != sheet.sha256
                               or record.get("reference_sha256") != reference.sha256):
        raise InputError(f"--resume: the sheet or reference differs from what run {record['run_id']} started with",
                         hint="resume with the same sheet and reference, or start a new run")
    max_cpus = req.max_cpus or config.local.max_cpus or os.cpu_count() or 1
    return SamplesPreflight(choice, output, run_id, record, sheet, samples, reference, max_cpus)


def stage(workspace: Path, output: Path, pre: SamplesPreflight) -> str:
    """FASTQs linked in (content-addressed), the reference copied once, the run folder linked, and
    the normalised sheet written into the run folder. Returns the reference's workspace path."""
    for s in pre.samples:
        for mate, facts in (("R1", s.r1), ("R2", s.r2)):
            link_into_workspace(workspace / s.workspace_fastq(mate), facts.path)
    ref = reference_path(pre.reference)
    copy_into_workspace(workspace / ref, pre.reference.path, pre.reference.sha256)
    link_run_folder(workspace, pre.run_id, output)
    tmp = output / ".sheet.tsv.tmp"
    tmp.write_text(normalised_sheet(pre.samples))
    os.replace(tmp, output / "sheet.tsv")
    return ref


def read_samples_tsv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh, delimiter="\t"))
    except OSError:
        return []


def run_samples(config: Config, req: SamplesRequest, *, reporter: Optional[Reporter] = None, on_check=None,
                input_progress: inputs_mod.Progress = None) -> SamplesOutcome:
    say = on_check or (lambda _msg: None)
    pre = preflight(config, req, say, input_progress)
    output, run_id = pre.output, pre.run_id
    chunk = pre.sheet.chunk_size(req.chunk_size)
    reads = sum(s.r1.reads for s in pre.samples)
    say(f"inputs ok: {len(pre.samples)} samples, {reads:,} read pairs, reference {pre.reference.length:,} bp; "
        f"{math.ceil(len(pre.samples) / chunk)} chunk(s) of up to {chunk}")
    # Rendered (and so linted, and the fan-out width checked) before anything is staged or made.
    params = samples_params(config, pre.sheet, reference_path(pre.reference), run_id, chunk_size=req.chunk_size,
                            max_parallel=req.max_parallel, title=req.title, max_cpus=pre.max_cpus)
    text = render_samples(config, "local", params, pre.choice.images)
    workspace = usable_workspace(config)

    def prepare(lock_fd: int) -> tuple[LocalExecutor, dict[str, Any], Path]:
        stage(workspace, output, pre)
        (output / "workflow.yaml").write_text(text)
        run_record = {
            "run_id": run_id, "pipeline": PIPELINE, "mode": "samples", "sheet": str(pre.sheet.path.resolve()),
            "sheet_sha256": pre.sheet.sha256, "reference_sha256": pre.reference.sha256,
            "samples": len(pre.samples), "chunk_size": chunk, "status": "running",
            "started": (pre.record or {}).get("started", dt.datetime.now(dt.timezone.utc).isoformat()),
        }
        write_json_atomic(output / STATE_DIR / "run.json", run_record)
        executor = LocalExecutor(
            parse_workflow(load_workflow(text)), volume_roots={"workspace": workspace}, state_dir=output / STATE_DIR,
            log_dir=output / "logs",
            runtime=make_runtime(pre.choice, lock_fd=lock_fd, workspace=workspace, output=output,
                                 input_paths=[p for s in pre.samples for p in (s.r1.path, s.r2.path)], run_id=run_id),
            max_cpus=pre.max_cpus, resume=req.resume, reporter=reporter, max_parallel=req.max_parallel,
        )
        return executor, run_record, output / STATE_DIR

    result, manifest_path, manifest = execute(
        output, prepare,
        lambda run_record, result, makespan: _manifest(run_record, result, output, pre, makespan,
                                                       read_samples_tsv(output / "samples.tsv")),
    )
    samples = manifest["samples"]
    if result.interrupted:
        raise InterruptedRunError(f"run {run_id} interrupted; finished samples are kept",
                                  hint=f"continue with: bioinfra run {PIPELINE} --samples {req.samples} --resume "
                                       f"--output {output}")
    if result.phase == FAILED:
        raise samples_failure(run_id, output, result, samples, req)
    return SamplesOutcome(run_id, output, manifest_path, result, samples)


def samples_failure(run_id: str, output: Path, result: RunResult, samples: list[dict[str, str]],
                    req: Optional[SamplesRequest] = None) -> StepFailedError:
    failed_samples = [s for s in samples if s.get("status") != "ok"]
    steps = result.failed_steps
    culprit = next((s for s in steps if s.name == "report"), None) or (steps[0] if steps else None)
    error = StepFailedError(culprit.name if culprit else "?", culprit.exit_code if culprit else None,
                            str(culprit.log if culprit else output / "logs"))
    if failed_samples:
        shown = "; ".join(f"{s['sample']} ({s['stage']}: {s['reason']})" for s in failed_samples[:10])
        more = f" and {len(failed_samples) - 10} more" if len(failed_samples) > 10 else ""
        error.message = (f"run {run_id}: {len(failed_samples)} of {len(samples)} sample(s) failed: {shown}{more}; "
                         f"the others are complete and in the report ({output / 'multiqc' / 'multiqc_report.html'}); "
                         f"per-sample status: {output / 'samples.tsv'}")
    else:
        error.message = f"run {run_id} failed: step '{error.step}' (log {error.log_path})"
    if req is not None:
        error.hint = (f"read the chunk logs under {output / 'logs'}; `bioinfra run {PIPELINE} --samples {req.samples} "
                      f"--resume --output {output}` retries only the samples that failed")
    return error


def _manifest(run_record: dict[str, Any], result: RunResult, output: Path, pre: SamplesPreflight, makespan: float,
              samples: list[dict[str, str]]) -> dict[str, Any]:
    steps = manifest_steps(result, output, ("phase", "cached", "attempts", "exit_code", "started", "finished",
                                            "wall_seconds", "message", "log"))
    return {
        "bioinfra_version": __version__,
        "run_id": run_record["run_id"],
        "pipeline": PIPELINE,
        "mode": "samples",
        "target": "local",
        "runtime": pre.choice.name,
        "started": run_record["started"],
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(),
        "makespan_seconds": round(makespan, 3),
        "sheet": {"path": run_record["sheet"], "sha256": run_record["sheet_sha256"], "samples": len(pre.samples),
                  "chunk_size": run_record["chunk_size"]},
        "reference": {"path": str(pre.reference.path.resolve()), "sha256": pre.reference.sha256},
        "inputs": {s.row.sample: {"r1": {"path": str(s.r1.path.resolve()), "sha256": s.r1.sha256, "reads": s.r1.reads},
                                  "r2": {"path": str(s.r2.path.resolve()), "sha256": s.r2.sha256, "reads": s.r2.reads}}
                   for s in pre.samples},
        "samples": samples,
        ("tool_paths" if pre.choice.name == "native" else "images"): pre.choice.tools,
        "steps": steps,
        "workflow_sha256": sha256_file(output / "workflow.yaml"),
    }


def dry_run_plan(config: Config, req: SamplesRequest) -> list[str]:
    pre = preflight(config, req)
    params = samples_params(config, pre.sheet, reference_path(pre.reference), pre.run_id, chunk_size=req.chunk_size,
                            max_parallel=req.max_parallel, title=req.title, max_cpus=pre.max_cpus)
    workflow = parse_workflow(load_workflow(render_samples(config, "local", params, pre.choice.images)))
    size = pre.sheet.chunk_size(req.chunk_size)
    chunks = math.ceil(len(pre.samples) / size)
    lines = [
        "dry run: nothing was created",
        f"run id\t{pre.run_id}",
        f"output\t{pre.output}",
        f"runtime\t{pre.choice.name} ({pre.choice.reason})",
        f"cpus\t{pre.max_cpus}" + (f", at most {req.max_parallel} steps at once" if req.max_parallel else ""),
        f"samples\t{len(pre.samples)} from {pre.sheet.path}, {chunks} chunk(s) of up to {size}",
    ]
    return lines + dry_run_steps(workflow, chunks)
