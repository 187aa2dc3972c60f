"""Gather a batched CellProfiler run: merge the per-batch tables, write Parquet, a summary page and a report.

Standard library plus pyarrow (imported only for the Parquet copies), Python 3.9+, one file, nothing
from bioinfra: the cellprofiler workflow pastes it into an Argo script template (`python3 - ARGS`)
in the CellProfiler image, which has pyarrow; the local executor runs the same text.

    gather.py --batches batches.json --batch-root RUN/batches --out RUN/results --title TEXT [--no-parquet]

Reads batches.json ([{"first":1,"last":4},...], from plan_batches.py) and, per batch, the folder
<batch-root>/<first>-<last>/ holding ExportToSpreadsheet's per-object tables (Image.csv, Nuclei.csv)
and the `.complete` marker the analyze step writes after checking Image.csv has last-first+1 rows.
Writes into --out:
- <Object>.csv      every complete batch's <Object>.csv merged (union of columns in first-seen order,
                    rows in image-set order, ImageNumber made global when a batch restarts it at 1)
- <Object>.parquet  the same table, typed: int64 / float64 / string (Metadata_* always string)
- summary.html      self-contained (inline SVG, no script): totals, nuclei per well, plate maps,
                    nucleus-area histograms; an INCOMPLETE banner naming missing image sets
- gather.json       image sets and batches expected/found, nuclei, the missing batches with why
Output is deterministic (no timestamps), so a rerun over the same batches writes the same bytes.

Exit status: 0 all batches complete; 1 some batch missing or incomplete (everything above is still
written from the complete ones, and each missing range is named on stderr with the reason: no folder,
no .complete marker, row count, or unreadable tables); 2 unusable arguments or batches.json, or pyarrow
missing without --no-parquet (checked before anything is written).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import html
import io
import json
import math
import os
import re
import sys
import tempfile

IMAGE_TABLE = "Image"
OBJECT = "Nuclei"
COUNT_COLUMN = f"Count_{OBJECT}"
AREA_COLUMN = "AreaShape_Area"
COMPLETE_MARKER = ".complete"
# ExportToSpreadsheet's per-run table (pipeline, version, run time): not per object, not merged.
NOT_MERGED = {"Experiment"}
HISTOGRAM_BINS = 16
INTEGER = re.compile(r"[+-]?\d+")
# CellProfiler columns that hold whole numbers, whatever their text looks like.
INTEGRAL_COLUMN = re.compile(
    r"(ImageNumber|ObjectNumber|Number_Object_Number|Count_|Group_(Index|Length|Number)|Height_|Width_)"
)


class GatherError(Exception):
    """Unusable inputs, worded for the user: exit status 2, or for one batch, why it counts as missing."""


# ---------------------------------------------------------------------------- reading batches


def load_batches(path: str) -> list[dict[str, int]]:
    try:
        with open(path, encoding="utf-8") as fh:
            batches = json.load(fh)
    except OSError as exc:
        raise GatherError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise GatherError(f"{path}: not JSON: {exc}") from None
    ok = isinstance(batches, list) and batches
    ok = ok and all(
        isinstance(b, dict)
        and isinstance(b.get("first"), int)
        and isinstance(b.get("last"), int)
        and 1 <= b["first"] <= b["last"]
        for b in batches
    )
    if not ok:
        # No doubled braces here: Argo would read them as a tag when this file is pasted into a step.
        raise GatherError(path + ': expected a non-empty list of {"first": N, "last": M} with 1 <= N <= M')
    batches = sorted(({"first": b["first"], "last": b["last"]} for b in batches), key=lambda b: b["first"])
    for before, after in zip(batches, batches[1:]):  # noqa: B905 (runs on Python 3.9: no strict=)
        if after["first"] <= before["last"]:
            raise GatherError(
                f"{path}: batches {before['first']}-{before['last']} and {after['first']}-{after['last']} overlap"
            )
    return batches


def batch_name(batch: dict[str, int]) -> str:
    return f"{batch['first']}-{batch['last']}"


def read_table(path: str) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise GatherError(f"{path}: empty table (no header)")
            rows = []
            for row in reader:
                if row and len(row) != len(header):
                    raise GatherError(f"{path} line {reader.line_num}: {len(row)} fields, the header has {len(header)}")
                if row:
                    rows.append(row)
    except OSError as exc:
        raise GatherError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise GatherError(f"{path}: not valid CSV: {exc}") from None
    return header, rows


def why_incomplete(folder: str, batch: dict[str, int]) -> str | None:
    """Why a batch folder cannot be used, or None when the analyze step finished it."""
    if not os.path.isdir(folder):
        return "no folder"
    if not os.path.isfile(os.path.join(folder, COMPLETE_MARKER)):
        return f"no {COMPLETE_MARKER} marker"
    if not os.path.isfile(os.path.join(folder, f"{IMAGE_TABLE}.csv")):
        return f"no {IMAGE_TABLE}.csv"
    return None


def image_number_offset(numbers: list[int], batch: dict[str, int]) -> int:
    """What to add to a batch's ImageNumbers to make them global (in case CellProfiler restarts them at 1)."""
    first, last = batch["first"], batch["last"]
    if all(first <= n <= last for n in numbers):
        return 0
    if all(1 <= n <= last - first + 1 for n in numbers):
        return first - 1
    raise GatherError(
        f"{IMAGE_TABLE}.csv: ImageNumber values {min(numbers)}..{max(numbers)} fit neither {first}..{last}"
        f" nor 1..{last - first + 1}"
    )


def read_batch(folder: str, batch: dict[str, int]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The batch's tables by name, ImageNumbers made global; GatherError says why the batch is unusable."""
    names = sorted(f[: -len(".csv")] for f in os.listdir(folder) if f.endswith(".csv") and not f.startswith("."))
    tables = {name: read_table(os.path.join(folder, name + ".csv")) for name in names if name not in NOT_MERGED}
    header, rows = tables[IMAGE_TABLE]
    # The analyze step checked this before writing the marker; checking again costs little and
    # catches a folder that was edited or half-copied since.
    expected = batch["last"] - batch["first"] + 1
    if len(rows) != expected:
        raise GatherError(f"row count: {IMAGE_TABLE}.csv has {len(rows)} rows, expected {expected}")
    if "ImageNumber" not in header:
        raise GatherError(f"{IMAGE_TABLE}.csv has no ImageNumber column")
    numbers = [_int_or(r[header.index("ImageNumber")], None) for r in rows]
    if None in numbers:
        raise GatherError(f"{IMAGE_TABLE}.csv: an ImageNumber is not a whole number")
    offset = image_number_offset(numbers, batch)
    if offset:
        for name, (header, rows) in tables.items():
            if "ImageNumber" in header:
                column = header.index("ImageNumber")
                rows = [r[:column] + [str(_int_or(r[column], 0) + offset)] + r[column + 1 :] for r in rows]
                tables[name] = (header, rows)
    return tables


class Table:
    """A merged table: the union of columns (first-seen order) and rows as dicts."""

    def __init__(self, name: str):
        self.name = name
        self.columns: list[str] = []
        self.rows: list[dict[str, str]] = []

    def add(self, header: list[str], rows: list[list[str]]) -> None:
        for column in header:
            if column not in self.columns:
                self.columns.append(column)
        self.rows.extend(dict(zip(header, row)) for row in rows)  # noqa: B905 (lengths checked by read_table)

    def sort(self) -> None:
        """Image-set order (then object order): batches may arrive in any order; sorted() is stable."""

        def key(row):
            return tuple(_int_or(row.get(c), 0) for c in ("ImageNumber", "ObjectNumber"))

        self.rows.sort(key=key)


def _int_or(value, default):
    """An integer from CellProfiler's text, which writes counts as floats ("14.0")."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return int(number) if number.is_integer() else default


def gather_tables(batches: list[dict[str, int]], batch_root: str) -> tuple[dict[str, Table], list[dict], int]:
    """Merge the complete batches' tables; returns (tables by name, missing batches with why, complete count).

    A batch that cannot be used (no folder, no marker, unreadable or inconsistent tables) is reported
    as missing, not fatal: the other batches are still gathered, and rerunning that batch fixes it.
    """
    tables: dict[str, Table] = {}
    missing = []
    for batch in batches:
        folder = os.path.join(batch_root, batch_name(batch))
        reason = why_incomplete(folder, batch)
        if reason is None:
            try:
                loaded = read_batch(folder, batch)
            except GatherError as exc:
                reason = str(exc)
        if reason is not None:
            missing.append({"first": batch["first"], "last": batch["last"], "reason": reason})
            continue
        for name, (header, rows) in loaded.items():
            tables.setdefault(name, Table(name)).add(header, rows)
    for table in tables.values():
        table.sort()
    return tables, missing, len(batches) - len(missing)


# ---------------------------------------------------------------------------- typed copies


def column_type(name: str, values: list[str]) -> str:
    """'int', 'float' or 'string' for a column's text values (empty cells are nulls).

    Decided by name where CellProfiler's text is ambiguous, so one column has one type in every run:
    Metadata_* are identifiers (plate "0001" must stay "0001"); counts, numbers, indices and sizes are
    integers although CellProfiler writes some of them as "14.0".
    """
    if name.startswith("Metadata_"):
        return "string"
    present = [v for v in values if v != ""]
    if not present:
        return "string"
    if all(INTEGER.fullmatch(v) for v in present):
        return "int"
    try:
        numbers = [float(v) for v in present]  # accepts CellProfiler's nan / inf too
    except ValueError:
        return "string"
    if INTEGRAL_COLUMN.match(name) and all(n.is_integer() for n in numbers):
        return "int"
    return "float"


def typed_columns(table: Table) -> dict[str, tuple[str, list]]:
    out = {}
    for name in table.columns:
        values = [row.get(name, "") for row in table.rows]
        kind = column_type(name, values)
        convert = {"int": lambda v: int(float(v)), "float": float, "string": str}[kind]
        out[name] = (kind, [convert(v) if v != "" else None for v in values])
    return out


def import_pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise GatherError(
            "pyarrow is not importable by this Python: it writes the Parquet copies (pip install pyarrow,"
            " or run in the CellProfiler image / .venv-cellprofiler; --no-parquet skips them)"
        ) from None
    return pyarrow, pyarrow.parquet


def write_parquet(table: Table, path: str) -> None:
    pa, pq = import_pyarrow()
    arrow_types = {"int": pa.int64(), "float": pa.float64(), "string": pa.string()}
    columns = typed_columns(table)
    arrow = pa.table({name: pa.array(values, type=arrow_types[kind]) for name, (kind, values) in columns.items()})
    tmp = path + ".tmp"
    pq.write_table(arrow, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- summary


def _float(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def per_well(tables: dict[str, Table]) -> dict[str, dict[str, dict[str, int]]]:
    """plate -> well -> {"sites": image sets found, "nuclei": nuclei counted} from the Image table."""
    plates: dict[str, dict[str, dict[str, int]]] = {}
    image = tables.get(IMAGE_TABLE)
    for row in image.rows if image else []:
        well = plates.setdefault(row.get("Metadata_Plate", "?"), {}).setdefault(
            row.get("Metadata_Well", "?"), {"sites": 0, "nuclei": 0}
        )
        well["sites"] += 1
        well["nuclei"] += _int_or(row.get(COUNT_COLUMN), 0)
    return plates


def nucleus_count(tables: dict[str, Table]) -> int:
    image = tables.get(IMAGE_TABLE)
    if image and COUNT_COLUMN in image.columns:
        return sum(_int_or(row.get(COUNT_COLUMN), 0) for row in image.rows)
    return len(tables[OBJECT].rows) if OBJECT in tables else 0


def image_sets_expected(batches) -> int:
    return sum(b["last"] - b["first"] + 1 for b in batches)


def report(batches, tables, missing, complete) -> dict:
    summary = {
        "image_sets_expected": image_sets_expected(batches),
        "image_sets_found": len(tables[IMAGE_TABLE].rows) if IMAGE_TABLE in tables else 0,
        "nuclei": nucleus_count(tables),
        "batches_expected": len(batches),
        "batches_complete": complete,
        "complete": not missing,
        "missing": missing,
        "tables": {name: len(table.rows) for name, table in sorted(tables.items())},
    }
    if missing:  # for the run's failure summary (pipeline.yaml outputs.failure): "5-8, 13-16"
        summary["missing_image_sets"] = ", ".join(f"{m['first']}-{m['last']}" for m in missing)
    return summary


def _well_position(well: str) -> tuple[int, int] | None:
    """(row, column), 0-based, of a well name like A01 or AB12."""
    match = re.fullmatch(r"([A-Za-z]+)0*(\d+)", well)
    if not match:
        return None
    row = 0
    for letter in match.group(1).upper():
        row = row * 26 + ord(letter) - ord("A") + 1
    return row - 1, int(match.group(2)) - 1


def _row_label(index: int) -> str:
    label = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


def _heat_colour(fraction: float) -> str:
    """White (0) to a deep blue (1), linear in RGB."""
    low, high = (247, 251, 255), (8, 69, 148)
    return "#" + "".join(f"{round(low[i] + (high[i] - low[i]) * fraction):02x}" for i in range(3))


def plate_map_svg(wells: dict[str, dict[str, int]], top: int) -> str:
    """A plate-layout heatmap of nuclei per well (rows A.., columns 1..), each cell labelled with its count."""
    positions = {well: _well_position(well) for well in wells}
    placed = {well: pos for well, pos in positions.items() if pos is not None}
    unplaced = sorted(well for well, pos in positions.items() if pos is None)
    # Wells whose names are not <letters><digits> go on an extra row, in name order.
    extra_row = 1 + max((r for r, _ in placed.values()), default=-1)
    for index, well in enumerate(unplaced):
        placed[well] = (extra_row, index)
    rows = 1 + max(r for r, _ in placed.values())
    cols = 1 + max(c for _, c in placed.values())
    cell, left, head = 44, 28, 22
    width, height = left + cols * cell + 4, head + rows * cell + 4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        ' role="img" font-family="sans-serif" font-size="12">'
    ]
    for c in range(cols):
        parts.append(f'<text x="{left + c * cell + cell / 2:g}" y="15" text-anchor="middle">{c + 1}</text>')
    for r in range(rows):
        label = _row_label(r) if r < extra_row else ""
        parts.append(f'<text x="{left - 8}" y="{head + r * cell + cell / 2 + 4:g}" text-anchor="end">{label}</text>')
        for c in range(cols):
            parts.append(
                f'<rect x="{left + c * cell}" y="{head + r * cell}" width="{cell - 2}" height="{cell - 2}"'
                ' fill="#eeeeee" stroke="#cccccc"><title>no image sets gathered</title></rect>'
            )
    for well, (r, c) in sorted(placed.items()):
        nuclei = wells[well]["nuclei"]
        fraction = nuclei / top if top else 0.0
        x, y = left + c * cell, head + r * cell
        ink = "#ffffff" if fraction > 0.55 else "#000000"
        parts.append(
            f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{_heat_colour(fraction)}"'
            f' stroke="#999999"><title>{html.escape(well)}: {nuclei} nuclei, {wells[well]["sites"]} site(s)</title></rect>'
        )
        parts.append(
            f'<text x="{x + (cell - 2) / 2:g}" y="{y + cell / 2 + 3:g}" text-anchor="middle" fill="{ink}">{nuclei}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(values: list[float], edges: list[float], label: str) -> str:
    """Bars of counts over shared bin edges (so plates compare), with min/max ticks and the peak count."""
    counts = [0] * (len(edges) - 1)
    for v in values:
        counts[min(max(bisect.bisect_right(edges, v) - 1, 0), len(counts) - 1)] += 1
    width, height, left, bottom, top_pad = 360, 180, 36, 34, 10
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    peak = max(counts) or 1
    bar = plot_w / len(counts)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        ' role="img" font-family="sans-serif" font-size="11">',
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" stroke="#333333"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="#333333"/>',
        f'<text x="{left - 4}" y="{top_pad + 9}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 4}" y="{top_pad + plot_h}" text-anchor="end">0</text>',
    ]
    for i, count in enumerate(counts):
        h = plot_h * count / peak
        parts.append(
            f'<rect x="{left + i * bar + 1:.1f}" y="{top_pad + plot_h - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}"'
            f' fill="#4a7ab5"><title>{edges[i]:g}-{edges[i + 1]:g}: {count}</title></rect>'
        )
    axis_y = top_pad + plot_h + 14
    parts.append(f'<text x="{left}" y="{axis_y}" text-anchor="start">{edges[0]:g}</text>')
    parts.append(f'<text x="{left + plot_w}" y="{axis_y}" text-anchor="end">{edges[-1]:g}</text>')
    parts.append(f'<text x="{left + plot_w / 2:g}" y="{axis_y + 14}" text-anchor="middle">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_edges(values: list[float], bins: int = HISTOGRAM_BINS) -> list[float]:
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high <= low:
        high = low + 1.0
    step = (high - low) / bins
    return [round(low + i * step, 6) for i in range(bins)] + [high]


def summary_html(title: str, summary: dict, tables: dict[str, Table]) -> str:
    wells_by_plate = per_well(tables)
    top = max((w["nuclei"] for wells in wells_by_plate.values() for w in wells.values()), default=0)
    areas_by_plate: dict[str, list[float]] = {}
    for row in tables[OBJECT].rows if OBJECT in tables else []:
        area = _float(row.get(AREA_COLUMN))
        if area is not None:
            areas_by_plate.setdefault(row.get("Metadata_Plate", "?"), []).append(area)
    edges = histogram_edges([a for areas in areas_by_plate.values() for a in areas])
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1em}"
        "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}"
        "td:first-child,th:first-child{text-align:left}.banner{padding:.8em 1em;margin:1em 0;font-weight:bold}"
        ".incomplete{background:#fde2e1;border:2px solid #c0392b;color:#7b1d14}"
        ".complete{background:#e3f4e1;border:1px solid #4c9a44}.plots{display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start}"
        "</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if summary["missing"]:
        ranges = "; ".join(f"image sets {m['first']}-{m['last']} ({esc(m['reason'])})" for m in summary["missing"])
        out.append(
            f'<div class="banner incomplete">INCOMPLETE: {summary["batches_complete"]} of {summary["batches_expected"]}'
            f" batches gathered; missing {ranges}. The tables and plots below leave these image sets out.</div>"
        )
    else:
        out.append(f'<div class="banner complete">Complete: all {summary["batches_expected"]} batches gathered.</div>')
    out += [
        "<table>",
        f"<tr><th>Image sets</th><td>{summary['image_sets_found']} of {summary['image_sets_expected']}</td></tr>",
        f"<tr><th>Nuclei</th><td>{summary['nuclei']}</td></tr>",
        f"<tr><th>Batches</th><td>{summary['batches_complete']} of {summary['batches_expected']}</td></tr>",
        "</table>",
    ]
    for plate in sorted(wells_by_plate):
        wells = wells_by_plate[plate]
        out.append(f"<h2>Plate {esc(plate)}</h2>")
        out.append("<table><tr><th>Well</th><th>Sites</th><th>Nuclei</th><th>Nuclei per site</th></tr>")
        for well in sorted(wells, key=lambda w: (_well_position(w) or (1 << 30, 0), w)):
            sites, nuclei = wells[well]["sites"], wells[well]["nuclei"]
            out.append(f"<tr><td>{esc(well)}</td><td>{sites}</td><td>{nuclei}</td><td>{nuclei / sites:.1f}</td></tr>")
        total_sites = sum(w["sites"] for w in wells.values())
        total = sum(w["nuclei"] for w in wells.values())
        out.append(
            f"<tr><th>All</th><th>{total_sites}</th><th>{total}</th><th>{total / total_sites:.1f}</th></tr></table>"
        )
        out.append('<div class="plots"><figure>')
        out.append(plate_map_svg(wells, top))
        out.append(f"<figcaption>Nuclei per well (colour scale 0-{top}, shared by all plates)</figcaption></figure>")
        if areas_by_plate.get(plate):
            out.append("<figure>")
            out.append(histogram_svg(areas_by_plate[plate], edges, "nucleus area (px)"))
            out.append(f"<figcaption>Nucleus area, {len(areas_by_plate[plate])} nuclei</figcaption></figure>")
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- writing


def write_atomically(path: str, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def table_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=table.columns, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(table.rows)
    return buf.getvalue()


def gather(
    batches_file: str, batch_root: str, out_dir: str, title: str, parquet: bool = True
) -> tuple[dict, list[str]]:
    """Do the whole job; returns (gather.json content, stderr lines about missing batches)."""
    batches = load_batches(batches_file)
    if parquet:
        import_pyarrow()  # fail before writing anything rather than after the CSVs
    tables, missing, complete = gather_tables(batches, batch_root)
    os.makedirs(out_dir, exist_ok=True)
    for name, table in sorted(tables.items()):
        write_atomically(os.path.join(out_dir, f"{name}.csv"), table_csv(table))
        if parquet:
            write_parquet(table, os.path.join(out_dir, f"{name}.parquet"))
    summary = report(batches, tables, missing, complete)
    write_atomically(os.path.join(out_dir, "summary.html"), summary_html(title, summary, tables))
    write_atomically(os.path.join(out_dir, "gather.json"), json.dumps(summary, indent=2, sort_keys=True) + "\n")
    messages = [
        f"missing image sets {m['first']}-{m['last']} (batch {m['first']}-{m['last']}): {m['reason']}" for m in missing
    ]
    return summary, messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gather.py", description=__doc__.split("\n")[0])
    parser.add_argument("--batches", required=True, help="batches.json from plan_batches.py")
    parser.add_argument("--batch-root", required=True, help="folder holding one <first>-<last>/ folder per batch")
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--title", default="CellProfiler screen", help="heading of summary.html")
    parser.add_argument("--no-parquet", dest="parquet", action="store_false", help="skip the Parquet copies")
    args = parser.parse_args(argv)
    try:
        summary, messages = gather(args.batches, args.batch_root, args.out, args.title, args.parquet)
    except GatherError as exc:
        print(f"gather: error: {exc}", file=sys.stderr)
        return 2
    for message in messages:
        print(message, file=sys.stderr)
    state = "complete" if summary["complete"] else "INCOMPLETE"
    print(
        f"gathered {summary['image_sets_found']} of {summary['image_sets_expected']} image sets,"
        f" {summary['nuclei']} nuclei, {summary['batches_complete']} of {summary['batches_expected']} batches"
        f" ({state}) into {args.out}"
    )
    return 0 if summary["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
