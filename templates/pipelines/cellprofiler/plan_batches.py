"""Plan a CellProfiler screen: check the LoadData file, write absolute-path copies, split into batches.

Standard library only, Python 3.9+, one file, nothing from bioinfra: the cellprofiler workflow
pastes it into an Argo script template (`python3 - ARGS`) and the local executor runs the same text.

    plan_batches.py --data-file DATA.csv --images-dir DIR --illum-dir DIR --out-dir DIR --batch-size N [--max-batches M]

Reads DATA.csv (a CellProfiler LoadData file: one row per image set, FileName_DNA, Metadata_Plate
naming the plate, optionally PathName_DNA; other columns are passed through) and writes into
--out-dir, each file atomically:
- load_data.csv             PathName_DNA = absolute --images-dir, joined with the row's PathName_DNA
                            when it has one ("." or a subfolder; FileName_DNA and PathName_DNA must be
                            relative, without "..") (input of the illumination pipeline)
- load_data_with_illum.csv  + FileName_IllumDNA = <Plate>_IllumDNA.npy, PathName_IllumDNA = absolute
                            --illum-dir (input of the analysis pipeline)
- batches.json              [{"first":1,"last":4},...]: 1-based image-set ranges for `cellprofiler -f -l`
and prints one summary line. Paths are made absolute here, from the working directory at run time,
because CellProfiler resolves a relative PathName against its own default input folder, not the
data file, and the same plan must be right in a container (/workspace) and on the host.

Exit status: 0 planned; 2 the data file or the images are not usable, or they make more than
--max-batches batches (one clear line on stderr).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
import tempfile

CHANNEL = "DNA"
ILLUM = "IllumDNA"
FILE_COLUMN = f"FileName_{CHANNEL}"
PATH_COLUMN = f"PathName_{CHANNEL}"
PLATE_COLUMN = "Metadata_Plate"
REQUIRED_COLUMNS = (FILE_COLUMN, PLATE_COLUMN)
ILLUM_FILE_COLUMN = f"FileName_{ILLUM}"
ILLUM_PATH_COLUMN = f"PathName_{ILLUM}"
# The plate name becomes part of a file name (<Plate>_IllumDNA.npy) and a CellProfiler regex substitution.
PLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_MISSING_SHOWN = 5


class PlanError(Exception):
    """A problem with the inputs, worded for the user; exit status 2."""


def illum_file_name(plate: str) -> str:
    return f"{plate}_{ILLUM}.npy"


def read_data_file(path: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a LoadData CSV, validated; raises PlanError naming the file, line and column."""
    try:
        # utf-8-sig: spreadsheets often save a byte-order mark, which would corrupt the first column name.
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except OSError as exc:
        raise PlanError(f"{path}: cannot read the data file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PlanError(f"{path}: not a UTF-8 text file (is it a CSV?)") from None
    return parse_data_file(text, path)


def parse_data_file(text: str, path: str = "<data file>") -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise PlanError(f"{path}: empty file, expected a CSV header with {', '.join(REQUIRED_COLUMNS)}") from None
    except csv.Error as exc:
        raise PlanError(f"{path} line 1: not valid CSV: {exc}") from None
    header = [name.strip() for name in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise PlanError(f"{path} line 1: missing required column(s) {', '.join(missing)} (header: {','.join(header)})")
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise PlanError(f"{path} line 1: duplicated column(s) {', '.join(duplicated)}")
    rows = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue  # blank lines (a trailing newline too many) are not image sets
            if len(values) != len(header):
                raise PlanError(f"{path} line {line}: {len(values)} fields, the header has {len(header)}")
            row = dict(zip(header, values))  # noqa: B905 (Python 3.9 has no strict=; lengths checked above)
            for column in REQUIRED_COLUMNS:
                if not row[column].strip():
                    raise PlanError(f"{path} line {line}: column {column} is empty")
            for column in (FILE_COLUMN, PATH_COLUMN):
                value = row.get(column, "")
                if os.path.isabs(value) or ".." in re.split(r"[\\/]", value):
                    raise PlanError(
                        f"{path} line {line}: column {column} must be relative to the images folder, not {value!r}"
                    )
            if not PLATE_NAME.match(row[PLATE_COLUMN]):
                raise PlanError(
                    f"{path} line {line}: column {PLATE_COLUMN} {row[PLATE_COLUMN]!r} is not a usable plate name"
                    " (letters, digits, '.', '_', '-'; it names the illumination file)"
                )
            rows.append(row)
    except csv.Error as exc:
        raise PlanError(f"{path} line {reader.line_num}: not valid CSV: {exc}") from None
    if not rows:
        raise PlanError(f"{path}: no image sets (only a header)")
    return header, rows


def image_folder(row: dict[str, str], images_dir: str) -> str:
    """The absolute folder of a row's image: images_dir, or the row's relative PathName_DNA under it."""
    return os.path.normpath(os.path.join(images_dir, row.get(PATH_COLUMN) or "."))


def missing_images(rows: list[dict[str, str]], images_dir: str) -> list[tuple[int, str]]:
    """(image-set number, file name) of every row whose image is not a file under images_dir."""
    return [
        (number, os.path.relpath(os.path.join(image_folder(row, images_dir), row[FILE_COLUMN]), images_dir))
        for number, row in enumerate(rows, start=1)
        if not os.path.isfile(os.path.join(image_folder(row, images_dir), row[FILE_COLUMN]))
    ]


def plan(rows: list, batch_size: int) -> list[dict[str, int]]:
    """Consecutive 1-based image-set ranges of at most batch_size, covering every row in order."""
    if batch_size < 1:
        raise PlanError(f"--batch-size must be at least 1, not {batch_size}")
    total = len(rows)
    return [{"first": first, "last": min(first + batch_size - 1, total)} for first in range(1, total + 1, batch_size)]


def with_paths(header: list[str], rows: list[dict[str, str]], images_dir: str) -> tuple[list[str], list[dict]]:
    """The LoadData table with absolute PathName_DNA values (the column added after FileName_DNA if absent)."""
    if PATH_COLUMN not in header:
        header = list(header)
        header.insert(header.index(FILE_COLUMN) + 1, PATH_COLUMN)
    return header, [{**row, PATH_COLUMN: image_folder(row, images_dir)} for row in rows]


def with_illum(header: list[str], rows: list[dict], illum_dir: str) -> tuple[list[str], list[dict]]:
    """The table plus the per-plate illumination function as a second image (FileName_/PathName_IllumDNA)."""
    header = [c for c in header if c not in (ILLUM_FILE_COLUMN, ILLUM_PATH_COLUMN)]
    header += [ILLUM_FILE_COLUMN, ILLUM_PATH_COLUMN]
    rows = [
        {**row, ILLUM_FILE_COLUMN: illum_file_name(row[PLATE_COLUMN]), ILLUM_PATH_COLUMN: illum_dir} for row in rows
    ]
    return header, rows


def csv_text(header: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_atomically(path: str, text: str) -> None:
    """Write text to path via a temporary file in the same folder, so readers never see half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; other users (a different container uid) must read it
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run(data_file: str, images_dir: str, illum_dir: str, out_dir: str, batch_size: int,
        max_batches: int | None = None) -> str:
    """Validate, write the three files, return the summary line; raises PlanError."""
    images_dir, illum_dir = os.path.abspath(images_dir), os.path.abspath(illum_dir)
    if batch_size < 1:
        raise PlanError(f"--batch-size must be at least 1, not {batch_size}")
    if not os.path.isdir(images_dir):
        raise PlanError(f"--images-dir {images_dir}: no such folder")
    header, rows = read_data_file(data_file)
    missing = missing_images(rows, images_dir)
    if missing:
        shown = ", ".join(
            f"{name} (image set {number}, line {number + 1})" for number, name in missing[:MAX_MISSING_SHOWN]
        )
        more = f" and {len(missing) - MAX_MISSING_SHOWN} more" if len(missing) > MAX_MISSING_SHOWN else ""
        raise PlanError(f"{data_file}: {len(missing)} of {len(rows)} images missing under {images_dir}: {shown}{more}")
    batches = plan(rows, batch_size)
    if max_batches is not None and len(batches) > max_batches:
        # Argo keeps the whole Workflow, each batch's status nodes included, in one object of at most
        # 1 MiB (bioinfra.pipelines.MAX_FAN_OUT_PODS says how the cap was sized).
        need = -(-len(rows) // max_batches)
        raise PlanError(
            f"{len(rows)} image sets in batches of {batch_size} make {len(batches)} batches; one run may have at "
            f"most {max_batches} (Argo keeps a run's status in one object of at most 1 MiB): use --batch-size "
            f"{need} or more, or split the screen into several runs (e.g. by plate)"
        )
    os.makedirs(out_dir, exist_ok=True)
    header, rows = with_paths(header, rows, images_dir)
    write_atomically(os.path.join(out_dir, "load_data.csv"), csv_text(header, rows))
    write_atomically(os.path.join(out_dir, "load_data_with_illum.csv"), csv_text(*with_illum(header, rows, illum_dir)))
    write_atomically(os.path.join(out_dir, "batches.json"), json.dumps(batches, separators=(",", ":")) + "\n")
    plates = sorted({row[PLATE_COLUMN] for row in rows})
    return (
        f"planned {len(rows)} image sets on {len(plates)} plate(s) ({', '.join(plates)})"
        f", {len(batches)} batch(es) of up to {batch_size}; wrote {out_dir}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plan_batches.py", description=__doc__.split("\n")[0])
    parser.add_argument("--data-file", required=True, help="LoadData CSV (FileName_DNA, Metadata_Plate, ...)")
    parser.add_argument("--images-dir", required=True, help="folder the FileName_DNA values are relative to")
    parser.add_argument(
        "--illum-dir", required=True, help="folder the illumination pipeline writes <Plate>_IllumDNA.npy to"
    )
    parser.add_argument("--out-dir", required=True, help="where load_data*.csv and batches.json go")
    parser.add_argument("--batch-size", required=True, type=int, help="image sets per analysis batch")
    parser.add_argument("--max-batches", type=int, default=None, help="refuse a plan with more batches than this")
    args = parser.parse_args(argv)
    try:
        print(run(args.data_file, args.images_dir, args.illum_dir, args.out_dir, args.batch_size, args.max_batches))
    except PlanError as exc:
        print(f"plan_batches: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
