"""The tool images the pipelines run in, declared once.

A Workflow names images as <registry>/<name>:<tag>. Until images are built and pushed by
`bioinfra images` (issue #3), the tag is the pinned tool version.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageSpec:
    name: str
    tool_version: str
    tools: tuple[str, ...]


IMAGES = {
    # FastQC's image also carries MultiQC: both are QC reporting on the general pool.
    "fastqc": ImageSpec("fastqc", "0.12.1", ("fastqc", "multiqc")),
    "bwa-mem2": ImageSpec("bwa-mem2", "2.2.1", ("bwa-mem2", "samtools")),
    "cellprofiler": ImageSpec("cellprofiler", "4.2.8", ("cellprofiler",)),
}


def image_ref(registry: str, name: str) -> str:
    spec = IMAGES[name]
    return f"{registry.rstrip('/')}/{spec.name}:{spec.tool_version}"
