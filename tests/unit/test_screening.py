"""The synthetic screen generator, the bundled cellprofiler sample, and the pipeline's two helper scripts.

No CellProfiler here (tests/integration/test_screening_cellprofiler.py runs it). The helper scripts
are pasted into Argo script templates, so they are loaded by path, not imported as a package.
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from bioinfra.sampledata import DATA_DIR
from bioinfra.sampledata import screening as scr

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "templates" / "pipelines" / "cellprofiler"
SAMPLE = DATA_DIR / "cellprofiler"
SAMPLE_IMAGES = SAMPLE / "images"
CP_PYTHON = REPO / ".venv-cellprofiler" / "bin" / "python"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"cellprofiler_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plan_batches = _load("plan_batches")
gather = _load("gather")


# ---------------------------------------------------------------------------- a minimal PNG reader


def read_png(data: bytes) -> tuple[int, int, list[list[int]]]:
    """(width, height, rows of pixels) of an 8-bit grayscale, non-interlaced PNG; any filter type."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert (depth, colour, interlace) == (8, 0, 0), "8-bit grayscale, not interlaced"
    raw = zlib.decompress(idat)
    rows, previous = [], [0] * width
    for y in range(height):
        line = raw[y * (width + 1) : (y + 1) * (width + 1)]
        kind, row = line[0], list(line[1:])
        for x in range(width):
            left = row[x - 1] if x else 0
            up, up_left = previous[x], previous[x - 1] if x else 0
            if kind == 1:
                row[x] = (row[x] + left) & 0xFF
            elif kind == 2:
                row[x] = (row[x] + up) & 0xFF
            elif kind == 3:
                row[x] = (row[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                row[x] = (row[x] + predictor) & 0xFF
        rows.append(row)
        previous = row
    return width, height, rows


def bright_components(rows: list[list[int]], min_size: int = 15) -> int:
    """Bright regions once the known vignette is divided out and a 3x3 mean tames the noise.

    A segmentation without CellProfiler: it shows the planted nuclei are there and separable.
    """
    height, width = len(rows), len(rows[0])
    flat = [[rows[y][x] / scr.vignette(x, y) for x in range(width)] for y in range(height)]
    bright = set()
    for y in range(1, height - 1):
        for x in range(1, width - 1):
            mean = sum(flat[y + dy][x + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
            if mean > scr.BACKGROUND + 15:  # the dimmest nucleus core is NUCLEUS_AMPLITUDE[0] above
                bright.add((x, y))
    count = 0
    while bright:
        stack, size = [bright.pop()], 0
        while stack:
            x, y = stack.pop()
            size += 1
            for neighbour in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                if neighbour in bright:
                    bright.remove(neighbour)
                    stack.append(neighbour)
        count += size >= min_size
    return count


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------- the generator


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> scr.ScreenFacts:
    return scr.write_screen(tmp_path_factory.mktemp("screen"))


def test_same_seed_same_bytes(fresh, tmp_path):
    again = scr.write_screen(tmp_path)
    names = sorted(p.name for p in fresh.out_dir.iterdir())
    assert names == sorted(p.name for p in again.out_dir.iterdir())
    for name in names:
        assert (fresh.out_dir / name).read_bytes() == (again.out_dir / name).read_bytes(), name
    assert again == scr.ScreenFacts(tmp_path, again.data_file, again.truth_file, fresh.image_sets)


def test_other_seeds_differ(fresh, tmp_path):
    other = scr.write_screen(tmp_path, seed=8)
    assert other.image_sets != fresh.image_sets
    assert (tmp_path / "P1_A01_s1_w1.png").read_bytes() != (fresh.out_dir / "P1_A01_s1_w1.png").read_bytes()


def test_bundled_sample_is_what_the_generator_writes(fresh):
    """CSVs byte for byte; PNGs by their decoded pixels, since another zlib build may compress differently."""
    assert sorted(p.name for p in SAMPLE_IMAGES.iterdir()) == sorted(p.name for p in fresh.out_dir.iterdir())
    for path in sorted(fresh.out_dir.iterdir()):
        committed = (SAMPLE_IMAGES / path.name).read_bytes()
        if path.suffix == ".png":
            assert read_png(committed) == read_png(path.read_bytes()), (
                f"{path.name}: pixels differ; regenerate the sample"
            )
        else:
            assert committed == path.read_bytes(), f"{path.name} differs; regenerate the sample"


def test_bundled_sample_is_small_and_complete():
    files = [p for p in SAMPLE.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 300 * 1024
    assert {"illum.cppipe", "analysis.cppipe"} <= {p.name for p in SAMPLE.iterdir()}
    for name in ("illum.cppipe", "analysis.cppipe"):
        assert (SAMPLE / name).read_text().startswith("CellProfiler Pipeline: http://www.cellprofiler.org\nVersion:5\n")


def test_data_file_and_truth_describe_sixteen_image_sets(fresh):
    data, truth = _csv_rows(fresh.data_file), _csv_rows(fresh.truth_file)
    keys = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
    assert list(data[0]) == [*keys, "FileName_DNA", "PathName_DNA"]
    assert list(truth[0]) == [*keys, "FileName_DNA", "planted_nuclei"]
    assert len(data) == len(truth) == 16
    assert {r["PathName_DNA"] for r in data} == {"."}
    assert [r["FileName_DNA"] for r in data] == [r["FileName_DNA"] for r in truth]
    assert [r["FileName_DNA"] for r in data] == [
        f"{p}_{w}_s{s}_w1.png" for p in ("P1", "P2") for w in ("A01", "A02", "B01", "B02") for s in (1, 2)
    ]
    counts = [int(r["planted_nuclei"]) for r in truth]
    assert all(scr.MIN_NUCLEI <= c <= scr.MAX_NUCLEI for c in counts)
    assert counts == [f.planted_nuclei for f in fresh.image_sets]
    per_well = {}
    for r in truth:
        per_well[r["Metadata_Plate"], r["Metadata_Well"]] = per_well.get(
            (r["Metadata_Plate"], r["Metadata_Well"]), 0
        ) + int(r["planted_nuclei"])
    assert len(set(per_well.values())) >= 6, "wells should differ so plate maps show a pattern"


def test_nuclei_are_separate_and_away_from_the_border():
    for image_set, nuclei in scr.layout():
        assert len(nuclei) == image_set.planted_nuclei
        for i, n in enumerate(nuclei):
            assert scr.RADIUS_RANGE[0] <= n.radius <= scr.RADIUS_RANGE[1]
            margin = n.extent + scr.BORDER_PX
            assert margin <= n.x <= scr.WIDTH - 1 - margin and margin <= n.y <= scr.HEIGHT - 1 - margin
            for m in nuclei[i + 1 :]:
                assert ((n.x - m.x) ** 2 + (n.y - m.y) ** 2) ** 0.5 >= n.extent + m.extent + scr.GAP_PX


def test_vignette_is_one_in_the_centre_and_dim_in_the_corners():
    centre = (scr.WIDTH - 1) / 2
    assert scr.vignette(centre, centre) == 1.0
    for x, y in ((0, 0), (0, scr.HEIGHT - 1), (scr.WIDTH - 1, 0), (scr.WIDTH - 1, scr.HEIGHT - 1)):
        assert scr.vignette(x, y) == pytest.approx(scr.VIGNETTE_CORNER)


def test_pngs_hold_the_planted_nuclei(fresh):
    planted = dict(scr.layout())
    for image_set in fresh.image_sets:
        width, height, rows = read_png((fresh.out_dir / image_set.file_name).read_bytes())
        assert (width, height) == (scr.WIDTH, scr.HEIGHT)
        nuclei = planted[image_set]
        for n in nuclei:
            x, y = round(n.x), round(n.y)
            core = sum(rows[y + dy][x + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
            expected = scr.vignette(x, y) * (scr.BACKGROUND + n.amplitude)
            assert core > expected * 0.8, f"{image_set.file_name}: nucleus at {x},{y} is too dim"
        assert bright_components(rows) == image_set.planted_nuclei, image_set.file_name
        # The corners are dimmer than the centre: the vignette is really there.
        corner = sum(rows[y][x] for y in range(4) for x in range(4)) / 16
        assert corner < 0.7 * scr.BACKGROUND


def test_module_entry_point(tmp_path):
    out = tmp_path / "screen"
    proc = subprocess.run(
        [sys.executable, "-m", "bioinfra.sampledata.screening", str(out)], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    assert "16 image sets" in proc.stdout
    assert (out / "images.csv").is_file() and len(list(out.glob("*.png"))) == 16
    bad = subprocess.run(
        [sys.executable, "-m", "bioinfra.sampledata.screening"], capture_output=True, text=True, cwd=REPO
    )
    assert bad.returncode == 2 and "usage" in bad.stderr


# ---------------------------------------------------------------------------- the scripts are portable


@pytest.mark.parametrize("name", ["plan_batches", "gather"])
def test_scripts_are_python39_and_stdlib_only(name):
    source = (SCRIPTS / f"{name}.py").read_text()
    tree = ast.parse(source, feature_version=(3, 9))
    top_level = set()
    for node in tree.body:  # pyarrow is imported inside a function, only when Parquet is written
        if isinstance(node, ast.Import):
            top_level |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            top_level.add(node.module.split(".")[0])
    assert top_level <= set(sys.stdlib_module_names) | {"__future__"}, top_level  # so no bioinfra either
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    assert not [c for c in calls if any(k.arg == "strict" for k in c.keywords)], "zip(strict=) needs Python 3.10"
    # One self-contained file: it is pasted into a template, so nothing beside it can be imported.
    assert "__file__" not in source and "sys.path" not in source
    # Pasted into an Argo script template: Argo would take doubled braces for one of its tags.
    assert "{{" not in source and "}}" not in source


# ---------------------------------------------------------------------------- plan_batches.py


@pytest.mark.parametrize(
    ("rows", "size", "expected"),
    [
        (16, 4, [(1, 4), (5, 8), (9, 12), (13, 16)]),
        (10, 4, [(1, 4), (5, 8), (9, 10)]),
        (3, 10, [(1, 3)]),
        (1, 1, [(1, 1)]),
        (5, 1, [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]),
    ],
)
def test_plan_covers_every_image_set_in_order(rows, size, expected):
    assert plan_batches.plan([{}] * rows, size) == [{"first": f, "last": last} for f, last in expected]


def test_plan_rejects_a_batch_size_below_one():
    with pytest.raises(plan_batches.PlanError, match="at least 1"):
        plan_batches.plan([{}], 0)


def _run_plan(tmp_path: Path, *extra: str, data_file: Path | None = None, batch_size: str = "4", stdin: bool = False):
    args = [
        "--data-file",
        str(data_file or SAMPLE_IMAGES / "images.csv"),
        "--images-dir",
        str(SAMPLE_IMAGES),
        "--illum-dir",
        "illum",
        "--out-dir",
        "plan",
        "--batch-size",
        batch_size,
        *extra,
    ]
    script = SCRIPTS / "plan_batches.py"
    if stdin:  # as the Argo script template runs it: `python3 - ARGS` with the script on stdin
        return subprocess.run(
            [sys.executable, "-", *args], input=script.read_text(), capture_output=True, text=True, cwd=tmp_path
        )
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, cwd=tmp_path)


@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_plan_writes_absolute_load_data_and_batches(tmp_path, stdin):
    proc = _run_plan(tmp_path, stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ("planned 16 image sets on 2 plate(s) (P1, P2), 4 batch(es) of up to 4; wrote plan")
    plan_dir = tmp_path / "plan"
    assert (plan_dir / "batches.json").read_text() == (
        '[{"first":1,"last":4},{"first":5,"last":8},{"first":9,"last":12},{"first":13,"last":16}]\n'
    )
    source = _csv_rows(SAMPLE_IMAGES / "images.csv")
    load_data = _csv_rows(plan_dir / "load_data.csv")
    assert list(load_data[0]) == list(source[0])
    assert [r["FileName_DNA"] for r in load_data] == [r["FileName_DNA"] for r in source]
    assert {r["PathName_DNA"] for r in load_data} == {str(SAMPLE_IMAGES)}
    with_illum = _csv_rows(plan_dir / "load_data_with_illum.csv")
    assert list(with_illum[0]) == [*source[0], "FileName_IllumDNA", "PathName_IllumDNA"]
    assert {r["PathName_IllumDNA"] for r in with_illum} == {str(tmp_path / "illum")}  # absolute, from the cwd
    assert [r["FileName_IllumDNA"] for r in with_illum] == [f"{r['Metadata_Plate']}_IllumDNA.npy" for r in source]
    assert not [p for p in plan_dir.iterdir() if p.name.startswith(".")], "no temporary files left"


def test_plan_adds_pathname_when_the_data_file_has_none(tmp_path):
    data = tmp_path / "mine.csv"
    data.write_text("\ufeffFileName_DNA,Metadata_Plate\nP1_A01_s1_w1.png,P1\nP2_B02_s2_w1.png,P2\n\n")
    proc = _run_plan(tmp_path, data_file=data, batch_size="1")
    assert proc.returncode == 0, proc.stderr
    rows = _csv_rows(tmp_path / "plan" / "load_data.csv")
    assert list(rows[0]) == ["FileName_DNA", "PathName_DNA", "Metadata_Plate"]  # BOM gone, path next to the name
    assert len(rows) == 2
    assert json.loads((tmp_path / "plan" / "batches.json").read_text()) == [
        {"first": 1, "last": 1},
        {"first": 2, "last": 2},
    ]


def test_plan_keeps_a_relative_pathname_as_a_subfolder(tmp_path):
    images = tmp_path / "images"
    (images / "plate1").mkdir(parents=True)
    (images / "plate1" / "a.png").write_bytes(b"")
    (images / "b.png").write_bytes(b"")
    data = tmp_path / "sub.csv"
    data.write_text("FileName_DNA,PathName_DNA,Metadata_Plate\na.png,plate1,P1\nb.png,.,P1\n")
    script = SCRIPTS / "plan_batches.py"
    args = [
        "--data-file",
        data,
        "--images-dir",
        "images",
        "--illum-dir",
        "illum",
        "--out-dir",
        "plan",
        "--batch-size",
        "2",
    ]
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = _csv_rows(tmp_path / "plan" / "load_data.csv")
    assert [r["PathName_DNA"] for r in rows] == [str(images / "plate1"), str(images)]
    (images / "plate1" / "a.png").unlink()
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "plate1/a.png (image set 1, line 2)" in proc.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("Metadata_Plate,PathName_DNA\nP1,.\n", "line 1: missing required column(s) FileName_DNA"),
        ("FileName_DNA,Metadata_Well\nx.png,A01\n", "line 1: missing required column(s) Metadata_Plate"),
        ("FileName_DNA,Metadata_Plate\n", "no image sets (only a header)"),
        ("FileName_DNA,Metadata_Plate\nP1_A01_s1_w1.png,P1\n,P1\n", "line 3: column FileName_DNA is empty"),
        ("FileName_DNA,Metadata_Plate\nP1_A01_s1_w1.png,P1,extra\n", "line 2: 3 fields, the header has 2"),
        ("FileName_DNA,Metadata_Plate\nP1_A01_s1_w1.png,P 1\n", "line 2: column Metadata_Plate 'P 1' is not a usable"),
        ("FileName_DNA,Metadata_Plate\n../etc/passwd,P1\n", "line 2: column FileName_DNA must be relative"),
        ("FileName_DNA,Metadata_Plate,FileName_DNA\na,P1,b\n", "line 1: duplicated column(s) FileName_DNA"),
        ("FileName_DNA,PathName_DNA,Metadata_Plate\na.png,/data,P1\n", "line 2: column PathName_DNA must be relative"),
    ],
)
def test_plan_rejects_bad_data_files_with_one_clear_line(tmp_path, text, message):
    data = tmp_path / "bad.csv"
    data.write_text(text)
    proc = _run_plan(tmp_path, data_file=data)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"plan_batches: error: {data}")
    assert message in proc.stderr
    assert not (tmp_path / "plan").exists(), "nothing written on error"


def test_plan_names_the_first_missing_images(tmp_path):
    data = tmp_path / "missing.csv"
    names = [f"absent_{i}.png" for i in range(7)]
    data.write_text("FileName_DNA,Metadata_Plate\nP1_A01_s1_w1.png,P1\n" + "".join(f"{n},P1\n" for n in names))
    proc = _run_plan(tmp_path, data_file=data)
    assert proc.returncode == 2
    assert f"7 of 8 images missing under {SAMPLE_IMAGES}" in proc.stderr
    assert "absent_0.png (image set 2, line 3)" in proc.stderr and "absent_4.png" in proc.stderr
    assert "absent_5.png" not in proc.stderr and "and 2 more" in proc.stderr


def test_plan_reports_unreadable_inputs(tmp_path):
    proc = _run_plan(tmp_path, data_file=tmp_path / "nope.csv")
    assert proc.returncode == 2 and "cannot read the data file" in proc.stderr
    proc = _run_plan(tmp_path, batch_size="0")
    assert proc.returncode == 2 and "--batch-size must be at least 1" in proc.stderr


# ---------------------------------------------------------------------------- gather.py


IMAGE_HEADER = ["ImageNumber", "Metadata_Plate", "Metadata_Well", "Metadata_Site", "Count_Nuclei", "FileName_DNA"]
NUCLEI_HEADER = ["ImageNumber", "ObjectNumber", "Metadata_Plate", "Metadata_Well", "Metadata_Site", "AreaShape_Area"]
WELLS = [(p, w, s) for p in ("P1", "P2") for w in ("A01", "B02") for s in (1, 2)]  # 8 image sets
COUNTS = [2, 3, 1, 0, 4, 2, 3, 1]


def _write_batch(
    root: Path, first: int, last: int, *, restart: bool, complete: bool = True, extra_column: bool = False
):
    """A batch folder as the analyze step leaves it; restart=True numbers images from 1 like a fresh run would."""
    folder = root / f"{first}-{last}"
    folder.mkdir(parents=True)
    image, nuclei = io.StringIO(), io.StringIO()
    iw, nw = csv.writer(image, lineterminator="\n"), csv.writer(nuclei, lineterminator="\n")
    iw.writerow(IMAGE_HEADER)
    nw.writerow(NUCLEI_HEADER + (["Intensity_MeanIntensity_CorrDNA"] if extra_column else []))
    for number in range(first, last + 1):
        plate, well, site = WELLS[number - 1]
        local = number - first + 1 if restart else number
        count = COUNTS[number - 1]
        iw.writerow([local, plate, well, site, f"{count}.0", f"{plate}_{well}_s{site}_w1.png"])
        for obj in range(1, count + 1):
            nw.writerow([local, obj, plate, well, site, f"{50 + 10 * obj}.0"] + (["0.5"] if extra_column else []))
    (folder / "Image.csv").write_text(image.getvalue())
    (folder / "Nuclei.csv").write_text(nuclei.getvalue())
    if complete:
        (folder / ".complete").write_text("")
    return folder


@pytest.fixture
def batches(tmp_path) -> tuple[Path, Path]:
    batches_file = tmp_path / "batches.json"
    batches_file.write_text('[{"first":1,"last":3},{"first":4,"last":6},{"first":7,"last":8}]\n')
    root = tmp_path / "batches"
    return batches_file, root


def _run_gather(tmp_path, batches_file, root, out="results", python=sys.executable, parquet=False):
    args = [str(SCRIPTS / "gather.py"), "--batches", str(batches_file), "--batch-root", str(root)]
    args += ["--out", str(tmp_path / out), "--title", "Test <screen>"]
    if not parquet:
        args.append("--no-parquet")
    return subprocess.run([str(python), *args], capture_output=True, text=True)


def test_gather_merges_complete_batches_in_image_set_order(tmp_path, batches):
    batches_file, root = batches
    # Written out of order, one batch numbered globally and two restarted at 1, one with an extra column.
    _write_batch(root, 7, 8, restart=True)
    _write_batch(root, 1, 3, restart=False)
    _write_batch(root, 4, 6, restart=True, extra_column=True)
    proc = _run_gather(tmp_path, batches_file, root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "gathered 8 of 8 image sets, 16 nuclei, 3 of 3 batches (complete)" in proc.stdout
    out = tmp_path / "results"
    image = _csv_rows(out / "Image.csv")
    assert [r["ImageNumber"] for r in image] == [str(n) for n in range(1, 9)]
    assert [r["Count_Nuclei"] for r in image] == [f"{c}.0" for c in COUNTS]  # CellProfiler's text, untouched
    nuclei = _csv_rows(out / "Nuclei.csv")
    assert len(nuclei) == sum(COUNTS)
    assert list(nuclei[0]) == NUCLEI_HEADER + ["Intensity_MeanIntensity_CorrDNA"]
    assert [(int(r["ImageNumber"]), int(r["ObjectNumber"])) for r in nuclei] == sorted(
        (n, o) for n, c in enumerate(COUNTS, start=1) for o in range(1, c + 1)
    )
    assert {r["Intensity_MeanIntensity_CorrDNA"] for r in nuclei if int(r["ImageNumber"]) in (4, 5, 6)} == {"0.5"}
    assert {r["Intensity_MeanIntensity_CorrDNA"] for r in nuclei if int(r["ImageNumber"]) not in (4, 5, 6)} == {""}
    report = json.loads((out / "gather.json").read_text())
    assert report == {
        "image_sets_expected": 8,
        "image_sets_found": 8,
        "nuclei": 16,
        "batches_expected": 3,
        "batches_complete": 3,
        "complete": True,
        "missing": [],
        "tables": {"Image": 8, "Nuclei": 16},
    }
    page = (out / "summary.html").read_text()
    assert "INCOMPLETE" not in page and "Complete: all 3 batches gathered." in page
    assert "<title>Test &lt;screen&gt;</title>" in page
    assert page.count("<svg") == 4  # a plate map and a histogram per plate
    assert "<script" not in page and "src=" not in page and "href=" not in page and "@import" not in page
    assert "<tr><td>A01</td><td>2</td><td>5</td><td>2.5</td></tr>" in page  # P1 A01: 2 + 3 nuclei over 2 sites


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("no folder", "no folder"),
        ("no marker", "no .complete marker"),
        ("short", "row count: Image.csv has 2 rows, expected 3"),
    ],
)
def test_gather_reports_a_missing_batch_and_still_writes_the_rest(tmp_path, batches, damage, reason):
    batches_file, root = batches
    _write_batch(root, 1, 3, restart=False)
    _write_batch(root, 7, 8, restart=True)
    if damage == "no marker":
        _write_batch(root, 4, 6, restart=True, complete=False)
    elif damage == "short":
        folder = _write_batch(root, 4, 6, restart=True)
        lines = (folder / "Image.csv").read_text().splitlines(keepends=True)
        (folder / "Image.csv").write_text("".join(lines[:-1]))
    proc = _run_gather(tmp_path, batches_file, root)
    assert proc.returncode == 1
    assert proc.stderr == f"missing image sets 4-6 (batch 4-6): {reason}\n"
    out = tmp_path / "results"
    report = json.loads((out / "gather.json").read_text())
    assert report["missing"] == [{"first": 4, "last": 6, "reason": reason}]
    assert (report["image_sets_found"], report["batches_complete"], report["complete"]) == (5, 2, False)
    assert report["nuclei"] == sum(COUNTS) - sum(COUNTS[3:6])
    assert [r["ImageNumber"] for r in _csv_rows(out / "Image.csv")] == ["1", "2", "3", "7", "8"]
    page = (out / "summary.html").read_text()
    assert 'class="banner incomplete">INCOMPLETE' in page and f"image sets 4-6 ({reason})" in page


def test_gather_output_is_deterministic(tmp_path, batches):
    batches_file, root = batches
    for first, last in ((1, 3), (4, 6), (7, 8)):
        _write_batch(root, first, last, restart=True)
    assert _run_gather(tmp_path, batches_file, root, out="a").returncode == 0
    assert _run_gather(tmp_path, batches_file, root, out="b").returncode == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["Image.csv", "Nuclei.csv", "gather.json", "summary.html"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_gather_rejects_unusable_inputs(tmp_path, batches):
    batches_file, root = batches
    batches_file.write_text('[{"first":1,"last":4},{"first":4,"last":6}]')
    proc = _run_gather(tmp_path, batches_file, root)
    assert proc.returncode == 2 and "overlap" in proc.stderr
    batches_file.write_text("{}")
    proc = _run_gather(tmp_path, batches_file, root)
    assert proc.returncode == 2 and 'non-empty list of {"first": N, "last": M}' in proc.stderr


def test_gather_treats_an_inconsistent_batch_as_missing(tmp_path, batches):
    batches_file, root = batches
    _write_batch(root, 1, 3, restart=False)
    _write_batch(root, 7, 8, restart=True)
    # ImageNumbers that fit neither the batch's range nor 1..n: the tables are not what the batch claims.
    folder = root / "4-6"
    folder.mkdir(parents=True)
    (folder / "Image.csv").write_text("ImageNumber,Count_Nuclei\n9,1\n10,1\n11,1\n")
    (folder / ".complete").write_text("")
    proc = _run_gather(tmp_path, batches_file, root)
    assert proc.returncode == 1
    assert proc.stderr == (
        "missing image sets 4-6 (batch 4-6): Image.csv: ImageNumber values 9..11 fit neither 4..6 nor 1..3\n"
    )
    (folder / "Image.csv").write_text("ImageNumber,Count_Nuclei\n4,1\n5,1,7\n6,1\n")
    proc = _run_gather(tmp_path, batches_file, root)
    assert proc.returncode == 1
    assert proc.stderr == f"missing image sets 4-6 (batch 4-6): {folder}/Image.csv line 3: 3 fields, the header has 2\n"
    assert json.loads((tmp_path / "results" / "gather.json").read_text())["image_sets_found"] == 5


def test_gather_without_pyarrow_says_so(tmp_path, batches):
    if importlib.util.find_spec("pyarrow") is not None:
        pytest.skip("pyarrow is importable here, so the missing-pyarrow message cannot be shown")
    batches_file, root = batches
    _write_batch(root, 1, 3, restart=False)
    proc = _run_gather(tmp_path, batches_file, root, parquet=True)
    assert proc.returncode == 2 and "pyarrow is not importable" in proc.stderr and "--no-parquet" in proc.stderr
    assert not (tmp_path / "results").exists(), "fails before writing anything"


@pytest.mark.parametrize(
    ("name", "values", "kind"),
    [
        ("Count_Nuclei", ["14.0", "0.0"], "int"),
        ("AreaShape_Area", ["14.0", "12.0"], "float"),
        ("AreaShape_EulerNumber", ["1", "0"], "int"),
        ("Intensity_MeanIntensity_CorrDNA", ["0.5", "nan", ""], "float"),
        ("Metadata_Site", ["1", "2"], "string"),
        ("FileName_DNA", ["a.png"], "string"),
        ("ModuleError_01LoadData", ["", ""], "string"),
    ],
)
def test_gather_column_types(name, values, kind):
    assert gather.column_type(name, values) == kind


def test_gather_writes_typed_parquet(tmp_path, batches):
    if not CP_PYTHON.exists():
        pytest.skip(
            f"pyarrow is not in this venv and {CP_PYTHON} does not exist (scripts/cellprofiler-venv.sh makes it)"
        )
    batches_file, root = batches
    _write_batch(root, 1, 3, restart=False)
    _write_batch(root, 4, 6, restart=True)
    _write_batch(root, 7, 8, restart=True)
    proc = _run_gather(tmp_path, batches_file, root, python=CP_PYTHON, parquet=True)
    assert proc.returncode == 0, proc.stderr
    probe = (
        "import json, sys, pyarrow.parquet as pq\n"
        "out = {}\n"
        "for name in ('Image', 'Nuclei'):\n"
        "    t = pq.read_table(f'{sys.argv[1]}/{name}.parquet')\n"
        "    out[name] = {'types': {f.name: str(f.type) for f in t.schema}, 'rows': t.num_rows,\n"
        "                 'first': {k: v[0] for k, v in t.to_pydict().items()}}\n"
        "print(json.dumps(out))\n"
    )
    read = subprocess.run([str(CP_PYTHON), "-c", probe, str(tmp_path / "results")], capture_output=True, text=True)
    assert read.returncode == 0, read.stderr
    tables = json.loads(read.stdout)
    assert tables["Image"]["rows"] == 8 and tables["Nuclei"]["rows"] == sum(COUNTS)
    assert tables["Image"]["types"] == {
        "ImageNumber": "int64",
        "Metadata_Plate": "string",
        "Metadata_Well": "string",
        "Metadata_Site": "string",
        "Count_Nuclei": "int64",
        "FileName_DNA": "string",
    }
    assert tables["Nuclei"]["types"]["AreaShape_Area"] == "double"
    assert tables["Nuclei"]["first"] == {
        "ImageNumber": 1,
        "ObjectNumber": 1,
        "Metadata_Plate": "P1",
        "Metadata_Well": "A01",
        "Metadata_Site": "1",
        "AreaShape_Area": 60.0,
    }
    # Parquet written twice from the same batches is the same bytes too.
    assert _run_gather(tmp_path, batches_file, root, out="again", python=CP_PYTHON, parquet=True).returncode == 0
    for name in ("Image.parquet", "Nuclei.parquet"):
        assert (tmp_path / "results" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
