"""The cellprofiler pipeline's science, with the real CellProfiler: plan, illumination, batched analysis, gather.

Runs the bundled synthetic screen (bioinfra/sampledata/screening.py) the way the workflow does, step
by step, with CellProfiler from .venv-cellprofiler (scripts/cellprofiler-venv.sh makes it; skipped
without it). Everything runs in one working folder with workspace-relative arguments, as in the
container; plan_batches.py turns the folders into the absolute PathName_* values CellProfiler needs
(a relative PathName is taken relative to the Default Input Folder, which defaults to $HOME).
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from bioinfra.sampledata import DATA_DIR, screening

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "templates" / "pipelines" / "cellprofiler"
SAMPLE = DATA_DIR / "cellprofiler"
CP_BIN = REPO / ".venv-cellprofiler" / "bin"
BATCH_SIZE = 4
# The generator keeps nuclei apart (>= 5 px edge to edge), off the border and single-peaked, so after
# illumination correction every planted nucleus is exactly one object: any miscount is a real error.
COUNT_TOLERANCE = 0


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _count(row: dict[str, str]) -> int:
    return int(float(row["Count_Nuclei"]))  # CellProfiler writes counts as "14.0"


class Chain:
    def __init__(self, run: Path, env: dict[str, str]):
        self.run, self.env = run, env
        self.seconds: dict[str, float] = {}  # wall time per step, printed for the record
        self.batches: list[dict[str, int]] = []

    def step(self, name: str, *args: str | Path) -> subprocess.CompletedProcess:
        started = time.monotonic()
        proc = subprocess.run(
            [str(a) for a in args], cwd=self.run, env=self.env, capture_output=True, text=True, timeout=600
        )
        self.seconds[name] = round(time.monotonic() - started, 1)
        return proc

    def cellprofiler(self, name: str, pipeline: Path, data_file: str, out: str, *extra: str):
        proc = self.step(
            name, CP_BIN / "cellprofiler", "-c", "-r", "-p", pipeline, "--data-file", data_file, "-o", out, *extra
        )
        assert proc.returncode == 0, f"{name}: cellprofiler exited {proc.returncode}\n{proc.stderr[-3000:]}"
        return proc


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Chain:
    if not (CP_BIN / "cellprofiler").exists():
        pytest.skip(f"no CellProfiler at {CP_BIN} (bash scripts/cellprofiler-venv.sh installs it)")
    run = tmp_path_factory.mktemp("cellprofiler-run")
    env = {**os.environ, "MPLCONFIGDIR": str(run / ".cache" / "matplotlib"), "XDG_CACHE_HOME": str(run / ".cache")}
    chain = Chain(run, env)
    python = CP_BIN / "python"  # the image runs the helpers with the CellProfiler venv's python (pyarrow)
    started = time.monotonic()

    proc = chain.step(
        "plan",
        python,
        SCRIPTS / "plan_batches.py",
        "--data-file",
        SAMPLE / "images" / "images.csv",
        "--images-dir",
        SAMPLE / "images",
        "--illum-dir",
        "illum",
        "--out-dir",
        "plan",
        "--batch-size",
        str(BATCH_SIZE),
    )
    assert proc.returncode == 0, proc.stderr
    chain.cellprofiler("illum", SAMPLE / "illum.cppipe", "plan/load_data.csv", "illum")
    chain.batches = json.loads((run / "plan" / "batches.json").read_text())
    for batch in chain.batches:
        first, last = batch["first"], batch["last"]
        folder = f"batches/{first}-{last}"
        chain.cellprofiler(
            f"analysis {first}-{last}",
            SAMPLE / "analysis.cppipe",
            "plan/load_data_with_illum.csv",
            folder,
            "-f",
            str(first),
            "-l",
            str(last),
        )
        # What the analyze step does: the marker only after Image.csv holds every image set of the batch.
        assert len(_rows(run / folder / "Image.csv")) == last - first + 1
        (run / folder / ".complete").write_text("")
    title = "Synthetic screen"
    proc = chain.step(
        "gather",
        python,
        SCRIPTS / "gather.py",
        "--batches",
        "plan/batches.json",
        "--batch-root",
        "batches",
        "--out",
        "results",
        "--title",
        title,
    )
    assert proc.returncode == 0, proc.stderr
    chain.seconds["whole chain"] = round(time.monotonic() - started, 1)
    print(f"\ncellprofiler chain timings (s): {json.dumps(chain.seconds)}")
    return chain


def test_illumination_function_is_one_file_per_plate(chain):
    assert sorted(p.name for p in (chain.run / "illum").iterdir()) == ["P1_IllumDNA.npy", "P2_IllumDNA.npy"]


def test_batches_cover_the_screen_and_keep_global_image_numbers(chain):
    assert chain.batches == [
        {"first": 1, "last": 4},
        {"first": 5, "last": 8},
        {"first": 9, "last": 12},
        {"first": 13, "last": 16},
    ]
    for batch in chain.batches:
        image = _rows(chain.run / "batches" / f"{batch['first']}-{batch['last']}" / "Image.csv")
        # CellProfiler 5 keeps the data file's image-set numbers for -f/-l: batch 5-8 is ImageNumber 5..8.
        assert [int(r["ImageNumber"]) for r in image] == list(range(batch["first"], batch["last"] + 1))
    report = json.loads((chain.run / "results" / "gather.json").read_text())
    assert report["complete"] and report["missing"] == []
    assert (report["batches_expected"], report["batches_complete"]) == (4, 4)
    assert (report["image_sets_expected"], report["image_sets_found"]) == (16, 16)


def test_counts_match_the_planted_nuclei(chain):
    truth = {r["FileName_DNA"]: int(r["planted_nuclei"]) for r in _rows(SAMPLE / "images" / "truth.csv")}
    image = _rows(chain.run / "results" / "Image.csv")
    assert [int(r["ImageNumber"]) for r in image] == list(range(1, 17))
    measured = {r["FileName_DNA"]: _count(r) for r in image}
    assert measured.keys() == truth.keys()
    off = {name: (measured[name], truth[name]) for name in truth if abs(measured[name] - truth[name]) > COUNT_TOLERANCE}
    assert not off, f"counted vs planted nuclei beyond +-{COUNT_TOLERANCE}: {off}"
    assert json.loads((chain.run / "results" / "gather.json").read_text())["nuclei"] == sum(truth.values())


def test_one_nuclei_row_per_counted_nucleus(chain):
    image = _rows(chain.run / "results" / "Image.csv")
    nuclei = _rows(chain.run / "results" / "Nuclei.csv")
    assert len(nuclei) == sum(_count(r) for r in image)
    per_image = {}
    for row in nuclei:
        per_image[int(row["ImageNumber"])] = per_image.get(int(row["ImageNumber"]), 0) + 1
    assert per_image == {int(r["ImageNumber"]): _count(r) for r in image if _count(r)}
    for table in (image, nuclei):
        assert {"Metadata_Plate", "Metadata_Well", "Metadata_Site"} <= table[0].keys()
    # The corrected intensities are measured too, and the nuclei are the size the generator drew.
    assert {"Intensity_MeanIntensity_CorrDNA", "AreaShape_Area"} <= nuclei[0].keys()
    assert all(40 <= float(r["AreaShape_Area"]) <= 250 for r in nuclei)


def test_gather_writes_parquet_and_a_complete_summary(chain):
    results = chain.run / "results"
    assert {"Image.csv", "Nuclei.csv", "Image.parquet", "Nuclei.parquet", "summary.html", "gather.json"} <= {
        p.name for p in results.iterdir()
    }
    page = (results / "summary.html").read_text()
    assert "INCOMPLETE" not in page and page.count("<svg") == 4 and "<h2>Plate P2</h2>" in page
    probe = "import pyarrow.parquet as pq, sys; print(pq.read_table(sys.argv[1]).num_rows)"
    proc = subprocess.run(
        [str(CP_BIN / "python"), "-c", probe, str(results / "Nuclei.parquet")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == len(_rows(results / "Nuclei.csv"))
    # Gathering the same batches again writes the same bytes.
    again = chain.step(
        "gather again",
        CP_BIN / "python",
        SCRIPTS / "gather.py",
        "--batches",
        "plan/batches.json",
        "--batch-root",
        "batches",
        "--out",
        "results-again",
        "--title",
        "Synthetic screen",
    )
    assert again.returncode == 0, again.stderr
    for path in sorted(results.iterdir()):
        assert (chain.run / "results-again" / path.name).read_bytes() == path.read_bytes(), path.name


def test_illumination_correction_flattens_nuclear_brightness(chain):
    """Raw nuclear brightness follows the vignette; after correction it does not.

    Each nucleus' median intensity (the pipeline measures both DNA and CorrDNA) is divided by the
    brightness the generator planted, and compared with the vignette at the nucleus. Counts barely
    depend on the correction here (nuclei are bright enough for one global threshold almost
    everywhere); intensity measurements, what a screen compares across a field, do.
    """
    planted = dict((image_set.file_name, nuclei) for image_set, nuclei in screening.layout())
    image = {r["ImageNumber"]: r["FileName_DNA"] for r in _rows(chain.run / "results" / "Image.csv")}
    vignette, raw, corrected = [], [], []
    for row in _rows(chain.run / "results" / "Nuclei.csv"):
        x, y = float(row["Location_Center_X"]), float(row["Location_Center_Y"])
        nucleus = min(planted[image[row["ImageNumber"]]], key=lambda n: (n.x - x) ** 2 + (n.y - y) ** 2)
        assert (nucleus.x - x) ** 2 + (nucleus.y - y) ** 2 < 2**2, "every object sits on a planted nucleus"
        brightness = (screening.BACKGROUND + nucleus.amplitude) / 255
        vignette.append(screening.vignette(nucleus.x, nucleus.y))
        raw.append(float(row["Intensity_MedianIntensity_DNA"]) / brightness)
        corrected.append(float(row["Intensity_MedianIntensity_CorrDNA"]) / brightness)
    # Measured on the bundled sample: 0.95 raw, -0.01 corrected.
    assert statistics.correlation(vignette, raw) > 0.8
    assert abs(statistics.correlation(vignette, corrected)) < 0.3
