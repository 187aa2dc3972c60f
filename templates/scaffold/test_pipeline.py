"""The test of this pipeline, written by `bioinfra pipelines new`: run it with `pytest __FILE__`.

It runs the pipeline as a user would (`bioinfra run FOLDER --input FILE`) on this machine and checks
what it wrote. Change it with the step.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_counts_the_lines_of_the_input(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("a\nb\nc\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "bioinfra", "run", str(HERE), "--input", str(data),
                           "--label", "rows", "--runtime", "native", "-o", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (out / "count.txt").read_text() == "rows\t3\n"
    assert json.loads((out / "summary.json").read_text()) == {"lines": 3}
    assert "3 lines counted" in proc.stderr
    assert json.loads((out / "manifest.json").read_text())["pipeline"] == "__NAME__"
