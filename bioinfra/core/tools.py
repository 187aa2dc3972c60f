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

# The main pipeline's programs (templates/pipelines/fastqc-to-bwa/pipeline.yaml `tools`), for
# callers that check the machine rather than one pipeline (doctor, the local target's `up`).
MAIN_PIPELINE = "fastqc-to-bwa"


@dataclass
class ToolCheck:
    found: dict[str, str]
    notes: list[str] = field(default_factory=list)
    path_prepend: tuple[str, ...] = ()


def _which(program: str) -> tuple[str, tuple[str, ...]]:
    """(path or "", folders to put first on the steps' PATH). CellProfiler may live in its own venv."""
    if program == "cellprofiler":
        try:
            found, prepend = require_cellprofiler()
        except ToolMissingError:
            return "", ()
        return found["cellprofiler"], prepend
    return shutil.which(program) or "", ()


def require_tools(tools: dict[str, str] | None = None) -> ToolCheck:
    """Every program a pipeline's steps need on PATH (pipeline.yaml `tools`: program -> Debian
    package). A key "a|b" takes the first one found, and says so when it had to fall back (e.g.
    "bwa-mem2|bwa": bwa-mem2 is in no Debian release; `bwa mem` gives the same alignments)."""
    if tools is None:
        from bioinfra.engine.spec import discover

        tools = discover()[MAIN_PIPELINE].tools
    found: dict[str, str] = {}
    missing: list[str] = []
    notes: list[str] = []
    prepend: tuple[str, ...] = ()
    for programs, package in tools.items():
        choices = programs.split("|")
        for n, program in enumerate(choices):
            path, extra = _which(program)
            if path:
                found[program] = path
                prepend += extra
                if n:
                    notes.append(f"{choices[0]} is not installed: the steps will use {program} "
                                 + ("('bwa mem', same alignments)" if program == "bwa" else "instead"))
                break
        else:
            missing.append(package)
    if "cellprofiler" in [p for k in tools for p in k.split("|")] and "cellprofiler" not in found:
        require_cellprofiler()  # its own message: how to install it (a venv), not an apt package
    if missing:
        raise ToolMissingError(
            f"the native runtime needs programs that are not on PATH: {', '.join(dict.fromkeys(missing))}",
            hint=f"install them with: apt-get install -y --no-install-recommends {' '.join(dict.fromkeys(missing))} "
                 "(or run `make setup`)",
        )
    return ToolCheck(found=found, notes=notes, path_prepend=prepend)


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
