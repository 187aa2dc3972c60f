"""The tool images the pipelines run in, declared once.

A Workflow names images as <registry>/<name>:<tag>, the tag being the pinned tool version plus the
content hash of the image's folder (so an unchanged image keeps its tag and a rebuild is a no-op).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bioinfra.files import packaged_folder


@dataclass(frozen=True)
class ImageSpec:
    name: str
    tool_version: str  # of the image's main tool, as pinned in its Dockerfile
    tools: tuple[str, ...]
    variants: tuple[tuple[str, str], ...] = ()  # build-arg value -> tag prefix used instead


IMAGES = {
    # FastQC's image also carries MultiQC: both are QC reporting on the general pool.
    "fastqc": ImageSpec("fastqc", "0.11.9", ("fastqc", "multiqc")),
    # ALIGNER=bwa builds the same image with Debian's bwa where bwa-mem2 cannot be fetched.
    "bwa-mem2": ImageSpec("bwa-mem2", "2.2.1", ("bwa-mem2", "samtools"), variants=(("bwa", "bwa-0.7.17"),)),
    "cellprofiler": ImageSpec("cellprofiler", "5.0.0.dev784", ("cellprofiler",)),
}


def images_root() -> Path:
    # In a wheel, images/ is packaged as bioinfra/_images (bioinfra/images.py is this module).
    return packaged_folder("_images", "images")


def content_hash(folder: Path) -> str:
    """SHA-256 over every file's relative path and bytes, in a fixed order (12 hex digits)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def image_tag(name: str, variant: Optional[str] = None) -> str:
    spec = IMAGES[name]
    version = dict(spec.variants).get(variant or "", spec.tool_version)
    return f"{version}-{content_hash(images_root() / name)}"


def image_ref(registry: str, name: str, variant: Optional[str] = None) -> str:
    return f"{registry.rstrip('/')}/{IMAGES[name].name}:{image_tag(name, variant)}"
