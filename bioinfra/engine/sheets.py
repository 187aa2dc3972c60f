"""Sample sheets: the `sample_sheet` input type (`bioinfra run fastqc-to-bwa --samples SHEET`).

The sheet is a CSV (or TSV) with a header: `sample`, `r1`, `r2`, and optional read-group fields
`rg_id`, `rg_sm`, `rg_lb`, `rg_pl`, `rg_pu` (defaults: the sample name, ILLUMINA, none). Relative
paths are relative to the sheet's folder. bioinfra checks it (names, duplicates, unknown columns,
with line numbers), then writes a normalised TSV into the run folder, `runs/<id>/sheet.tsv`, with
every FASTQ's workspace path; the Workflow reads that file, so it never grows with the sheet.

`render` checks the sheet's shape only (it must stay fast for 100,000 rows: see bench/); `run`
also checks every FASTQ before anything is made (bioinfra.core.inputs.check_fastq: a small one read
end to end, a large one in bounded time, read whole during the run beside the first steps), and
refuses a sheet with bad inputs listing every one of them.

Chunks: `--chunk-size`, else the smallest size that keeps at most MAX_CHUNKS chunks, so up to 200
samples get a pod (a process, locally) per sample and stage, and 100,000 samples 200 pods per stage.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bioinfra.core import inputs as inputs_mod
from bioinfra.errors import InputError
from bioinfra.pipelines import MAX_CHUNKS, SAMPLE_NAME_RE

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


def read_sheet(path: Path, flag: str = "--samples") -> SampleSheet:
    """Parse and check the sheet's shape; every problem found is listed (up to 20), with its line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{flag} {path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot read it ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's byte-order mark would corrupt the first column name
    except UnicodeDecodeError:
        raise InputError(f"{flag} {path}: not a UTF-8 text file (is it a CSV?)") from None
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader, [])]
    if not header or header == [""]:
        raise InputError(f"{flag} {path}: empty file", hint=f"the header is {','.join(REQUIRED)} (+ {','.join(READ_GROUP)})")
    problems = []
    unknown = [h for h in header if h not in SHEET_COLUMNS]
    for name in unknown:
        near = difflib.get_close_matches(name, SHEET_COLUMNS, n=1)
        problems.append(f"line 1: unknown column '{name}'" + (f" (did you mean '{near[0]}'?)" if near else ""))
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        problems.append(f"line 1: missing column(s) {', '.join(missing)}")
    if problems:
        raise InputError(f"{flag} {path}: " + "; ".join(problems),
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
        raise InputError(f"{flag} {path}: {len(problems)} problem(s){more}:\n  " + "\n  ".join(problems),
                         hint="fix those lines; the sheet is checked whole before anything runs")
    if not rows:
        raise InputError(f"{flag} {path}: no samples (only a header)")
    return SampleSheet(path, rows, hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class CheckedSample:
    row: SampleRow
    r1: inputs_mod.FastqFacts
    r2: inputs_mod.FastqFacts

    def workspace_fastq(self, mate: str) -> str:
        facts = self.r1 if mate == "R1" else self.r2
        return f"inputs/{facts.key}/{self.row.sample}_{mate}.fastq" + (".gz" if facts.gzipped else "")


def check_samples(sheet: SampleSheet, progress: inputs_mod.Progress = None) -> list[CheckedSample]:
    """Every FASTQ checked (in parallel; check_fastq); every bad sample listed, not just the first."""

    def one(row: SampleRow) -> CheckedSample:
        inputs_mod.check_distinct(row.r1, row.r2)
        r1 = inputs_mod.check_fastq(row.r1, f"sample {row.sample} (line {row.line}) r1", progress)
        r2 = inputs_mod.check_fastq(row.r2, f"sample {row.sample} (line {row.line}) r2", progress)
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


def read_samples_tsv(path: Path) -> list[dict[str, str]]:
    """The per-sample status table the report step writes (samples.tsv); [] if there is none."""
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh, delimiter="\t"))
    except OSError:
        return []
