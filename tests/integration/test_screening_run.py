"""`bioinfra run cellprofiler` on the local target, through the real CLI, with the real CellProfiler
(.venv-cellprofiler, made by `make cellprofiler`; skipped without it, saying so).

The one fault injected is from outside, as the kernel's OOM killer would: a watcher SIGKILLs the
CellProfiler process of one batch (`-f 5 -l 8`) on every attempt. Nothing in bioinfra knows.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bioinfra.core.tools import CELLPROFILER_VENV_BIN
from bioinfra.errors import ExitCode
from bioinfra.sampledata import DATA_DIR
from tests.process_killer import killing

pytestmark = pytest.mark.integration

SAMPLE = DATA_DIR / "cellprofiler"
# Exact on the synthetic screen: see bioinfra/sampledata/screening.py (nuclei kept apart, off the border).
COUNT_TOLERANCE = 0


@pytest.fixture(autouse=True)
def cellprofiler_installed():
    if not (CELLPROFILER_VENV_BIN / "cellprofiler").exists():
        pytest.skip("headless CellProfiler is not installed: `make cellprofiler` (CI installs it)")


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def truth() -> dict[str, int]:
    return {r["FileName_DNA"]: int(r["planted_nuclei"]) for r in rows(SAMPLE / "images" / "truth.csv")}


def test_demo_gathers_one_row_per_nucleus_matching_the_planted_counts(cli, tmp_path):
    out = tmp_path / "screen"
    result = cli("run", "cellprofiler", "--output", str(out), "--runtime", "native")
    assert result.returncode == 0, (result.stdout + result.stderr)
    assert "16 image sets on 2 plate(s) (P1, P2), 4 batch(es) of up to 4" in (result.stdout + result.stderr)
    image_rows, nuclei_rows = rows(out / "results" / "Image.csv"), rows(out / "results" / "Nuclei.csv")
    # One row per detected nucleus, and per image the count CellProfiler reports.
    assert len(nuclei_rows) == sum(int(float(r["Count_Nuclei"])) for r in image_rows)
    per_image = {}
    for r in nuclei_rows:
        per_image[int(r["ImageNumber"])] = per_image.get(int(r["ImageNumber"]), 0) + 1
    counted = {r["FileName_DNA"]: per_image.get(int(r["ImageNumber"]), 0) for r in image_rows}
    planted = truth()
    assert set(counted) == set(planted)  # every image set, none missing, none twice
    off = {name: (counted[name], planted[name]) for name in planted if abs(counted[name] - planted[name]) > COUNT_TOLERANCE}
    assert not off, f"counted vs planted beyond +-{COUNT_TOLERANCE}: {off}"
    gather = json.loads((out / "results" / "gather.json").read_text())
    assert gather["complete"] is True and gather["missing"] == [] and gather["batches_complete"] == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pipeline"] == "cellprofiler" and manifest["status"] == "succeeded"
    batches = [name for name, step in manifest["steps"].items() if name.startswith("analyze(")]
    assert batches == ["analyze(0:first:1,last:4)", "analyze(1:first:5,last:8)", "analyze(2:first:9,last:12)",
                       "analyze(3:first:13,last:16)"]
    assert all(manifest["steps"][b]["phase"] == "Succeeded" for b in batches)
    assert "results/Nuclei.parquet" in manifest["outputs"] and "results/summary.html" in manifest["outputs"]
    html = (out / "results" / "summary.html").read_text()
    assert "<svg" in html and "P1" in html and "P2" in html and "INCOMPLETE" not in html
    for batch in ("1-4", "5-8", "9-12", "13-16"):
        assert (out / "logs" / f"analyze({['1-4', '5-8', '9-12', '13-16'].index(batch)}_first_{batch.split('-')[0]}_last_{batch.split('-')[1]}).log").is_file()


def test_a_batch_that_keeps_dying_is_retried_named_by_range_and_resume_finishes_it(cli, tmp_path):
    (tmp_path / "bioinfra.yaml").write_text("pipeline:\n  retries: 1\n  retry_backoff: 0s\n")
    out = tmp_path / "screen"
    # CellProfiler of batch 5-8 (`-f 5 -l 8`), killed on every attempt.
    with killing(lambda argv: any("cellprofiler" in a for a in argv) and "-f 5 -l 8" in " ".join(argv)) as killed:
        result = cli("run", "cellprofiler", "--output", str(out), "--runtime", "native")
    assert result.returncode == ExitCode.STEP_FAILED, (result.stdout + result.stderr)
    assert len(killed) == 2  # the first attempt and its one retry
    assert "analyze(1:first:5,last:8)" in (result.stdout + result.stderr)
    assert "the gathered tables lack image sets 5-8" in (result.stdout + result.stderr)
    manifest = json.loads((out / "manifest.json").read_text())
    bad = manifest["steps"]["analyze(1:first:5,last:8)"]
    assert bad["phase"] == "Failed" and bad["attempts"] == 2
    assert all(manifest["steps"][f"analyze({i}:first:{f},last:{f + 3})"]["phase"] == "Succeeded"
               for i, f in ((0, 1), (2, 9), (3, 13)))
    # The gather ran, wrote what there is, and says what is not there instead of a short table.
    gather = json.loads((out / "results" / "gather.json").read_text())
    assert gather["complete"] is False
    assert [(m["first"], m["last"]) for m in gather["missing"]] == [(5, 8)]
    assert {int(r["ImageNumber"]) for r in rows(out / "results" / "Image.csv")} == set(range(1, 17)) - {5, 6, 7, 8}
    assert "INCOMPLETE" in (out / "results" / "summary.html").read_text()

    # Resume: only the missing batch and the gather run again; the table is whole.
    resumed = cli("run", "cellprofiler", "--resume", "--output", str(out), "--runtime", "native")
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"]["analyze(0:first:1,last:4)"]["cached"] is True
    assert manifest["steps"]["illum"]["cached"] is True
    assert manifest["steps"]["analyze(1:first:5,last:8)"]["cached"] is False
    gather = json.loads((out / "results" / "gather.json").read_text())
    assert gather["complete"] is True and gather["image_sets_found"] == 16
