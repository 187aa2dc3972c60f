"""The programs the native runtime needs on PATH, checked before anything runs.

Only presence is checked here (shutil.which): asking each tool for its version would cost a JVM
start for FastQC on every run. Versions are recorded by the steps themselves, from the very
binaries that ran, into the manifest.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

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
