"""The programs the native runtime needs on PATH, checked before anything runs.

Only presence is checked here (shutil.which): asking each tool for its version would cost a JVM
start for FastQC on every run. Versions are recorded by the steps themselves, from the very
binaries that ran, into the manifest.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from bioinfra.errors import ToolMissingError

# program -> Debian package that provides it
REQUIRED = {"bash": "bash", "fastqc": "fastqc", "samtools": "samtools", "multiqc": "multiqc"}


@dataclass
class ToolCheck:
    found: dict[str, str]
    notes: list[str] = field(default_factory=list)


def require_tools() -> ToolCheck:
    found: dict[str, str] = {}
    missing: list[str] = []
    for program, package in REQUIRED.items():
        path = shutil.which(program)
        if path:
            found[program] = path
        else:
            missing.append(package)
    notes = []
    aligner = shutil.which("bwa-mem2")
    if aligner:
        found["bwa-mem2"] = aligner
    elif shutil.which("bwa"):
        found["bwa"] = shutil.which("bwa") or "bwa"
        notes.append("bwa-mem2 is not installed: the align step will use 'bwa mem' (same alignments)")
    else:
        missing.append("bwa")
    if missing:
        raise ToolMissingError(
            f"the native runtime needs programs that are not on PATH: {', '.join(missing)}",
            hint=f"install them with: apt-get install -y --no-install-recommends {' '.join(missing)} (or run `make setup`)",
        )
    return ToolCheck(found=found, notes=notes)


# Where `make cellprofiler` (scripts/cellprofiler-venv.sh) installs headless CellProfiler.
CELLPROFILER_VENV_BIN = Path(__file__).resolve().parents[2] / ".venv-cellprofiler" / "bin"


def require_cellprofiler() -> tuple[dict[str, str], tuple[str, ...]]:
    """CellProfiler for the native runtime: $BIOINFRA_CELLPROFILER_BIN, else PATH, else the repo's
    .venv-cellprofiler. Its folder goes first on the steps' PATH, so `python3` there is the one
    beside it (the plan and gather steps need its pyarrow)."""
    candidates = [os.environ.get("BIOINFRA_CELLPROFILER_BIN", ""), os.path.dirname(shutil.which("cellprofiler") or ""),
                  str(CELLPROFILER_VENV_BIN)]
    for folder in filter(None, candidates):
        program = Path(folder) / "cellprofiler"
        python = Path(folder) / "python3"
        if program.is_file() and os.access(program, os.X_OK):
            found = {"cellprofiler": str(program)}
            if python.exists():
                found["python3"] = str(python)
            return found, (folder,)
    raise ToolMissingError(
        "the native runtime needs CellProfiler (headless), which is not installed here",
        hint="install it with `make cellprofiler` (a venv at .venv-cellprofiler, about a minute), "
             "or use the image: `bioinfra images build` then --runtime docker",
    )
