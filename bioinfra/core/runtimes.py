"""Choosing where the local target's steps run: `native` (tools on PATH) or `docker` (the images).

`auto` picks docker when a daemon answers and the pipeline's images are built (and says so), and
native otherwise (saying why not docker).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bioinfra.core.tools import require_tools
from bioinfra.errors import BioinfraError, RunLockedError, ToolMissingError
from bioinfra.executor.runtime import DockerRuntime, NativeRuntime, Runtime


def pipeline_images() -> dict[str, tuple[str, ...]]:
    """The images each built-in pipeline's steps run on (pipeline.yaml `images`)."""
    from bioinfra.engine.spec import discover

    return {name: tuple(spec.images) for name, spec in discover().items() if spec.builtin}


@dataclass
class RuntimeChoice:
    name: str  # "native" or "docker"
    reason: str
    tools: dict[str, str]  # native: program -> path; docker: image name -> reference
    notes: list[str] = field(default_factory=list)
    images: Optional[dict[str, str]] = None  # docker: what the Workflow must name
    client: Any = None
    path_prepend: tuple[str, ...] = ()  # native: folders put first on the steps' PATH


def choose_runtime(requested: str, workspace: Path, *, images: tuple[str, ...], tools: dict[str, str]) -> RuntimeChoice:
    """`images`: the pipeline's images (pipeline.yaml `images`); `tools`: the programs its steps
    need on PATH natively (pipeline.yaml `tools`, bioinfra.core.tools.require_tools)."""
    if requested == "native":
        return _native("as asked", tools)
    if requested == "docker":
        return _docker(workspace, "as asked", images)
    try:
        # Cheap check first: without recorded images, do not import the Docker SDK or ping a
        # daemon (about 0.25 s of every native run otherwise).
        _recorded_images(workspace, images)
        return _docker(workspace, "auto: a Docker daemon answers and the images are built", images)
    except BioinfraError as exc:
        return _native(f"auto: not docker, because {exc.message}", tools)


def _images_missing(missing: list[str]) -> ToolMissingError:
    return ToolMissingError(
        f"the docker runtime needs images that are not built here: {', '.join(missing)}",
        hint="build them with `bioinfra images build` (add --base-image where Docker Hub is unreachable)",
    )


def _recorded_images(workspace: Path, images: tuple[str, ...]) -> dict[str, Any]:
    from bioinfra.core.images import read_records

    records = read_records(workspace)
    missing = [name for name in images if not (records.get(name) or {}).get("ref")]
    if missing:
        raise _images_missing(missing)
    return records


def _native(reason: str, tools: dict[str, str]) -> RuntimeChoice:
    check = require_tools(tools)
    return RuntimeChoice("native", reason, check.found, check.notes, path_prepend=check.path_prepend)


def _docker(workspace: Path, reason: str, wanted: tuple[str, ...]) -> RuntimeChoice:
    from bioinfra.adaptors.docker import client as docker_client
    from bioinfra.adaptors.docker import sdk

    client = docker_client()
    records = _recorded_images(workspace, wanted)
    missing = []
    for name in wanted:  # recorded, but still in Docker's image store?
        try:
            client.images.get(records[name]["ref"])
        except sdk().errors.ImageNotFound:
            missing.append(name)
    if missing:
        raise _images_missing(missing)
    # After `images push`, name each image by digest: exactly what was built and pushed.
    images = {name: records[name].get("pinned") or records[name]["ref"] for name in wanted}
    notes = []
    if (records.get("bwa-mem2") or {}).get("aligner") == "bwa" and "bwa-mem2" in images:
        notes.append("the aligner image was built with ALIGNER=bwa: the align step will use 'bwa mem' (same alignments)")
    return RuntimeChoice("docker", reason, images, notes, images, client)


def make_runtime(choice: RuntimeChoice, *, lock_fd: int, workspace: Path, output: Path, input_paths: list[Path], run_id: str) -> Runtime:
    if choice.name == "native":
        return NativeRuntime(inherit_fds=(lock_fd,), path_prepend=choice.path_prepend)
    # Containers are not children of bioinfra: after a kill -9 they live on without the run lock.
    # Refuse to start a second writer while any container of this output folder still runs.
    leftovers = choice.client.containers.list(filters={"label": f"io.bioinfra.output={output}"})
    if leftovers:
        names = ", ".join(f"{c.name} ({c.labels.get('io.bioinfra.step', '?')})" for c in leftovers)
        raise RunLockedError(
            f"containers of the run in {output} are still running: {names}",
            hint="wait for them, or stop them with `docker rm -f`, then retry",
        )
    host_paths = [(str(output), True)] + [(str(p.resolve().parent), False) for p in input_paths]
    return DockerRuntime(
        choice.client,
        workspace_mounts={str(workspace): "/workspace"},
        host_paths=host_paths,
        labels={"io.bioinfra.run": run_id, "io.bioinfra.output": str(output)},
        # One container per image made as the run starts: its first step waits less for it (or not at all).
        prewarm=tuple(dict.fromkeys((choice.images or {}).values())),
    )
