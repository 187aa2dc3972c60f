from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Build the tool images (FastQC, bwa-mem2, CellProfiler).", no_args_is_help=True)


@app.command("build")
def build(
    ctx: typer.Context,
    names: Optional[list[str]] = typer.Argument(None, help="Images to build (default: all): fastqc bwa-mem2 cellprofiler."),
    base_image: Optional[str] = typer.Option(
        None, "--base-image", help="BASE_IMAGE build argument (default in the Dockerfiles: debian:bookworm-slim)."
    ),
    aligner: str = typer.Option("bwa-mem2", "--aligner", help="bwa-mem2 (official release) or bwa (Debian's) in the aligner image."),
    extra_ca: Optional[Path] = typer.Option(
        None, "--extra-ca", help="CA bundle to trust inside builds (a TLS-intercepting proxy); not part of the tag.",
        dir_okay=False,
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild from scratch even if the tag exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Build images with Docker; an image whose folder is unchanged is not rebuilt.

    Tags are <tool version>-<content hash of images/NAME/>, under the target's registry. Prints
    name, reference and image id per image on stdout.

    Example (no Docker Hub): bioinfra images build --base-image bioinfra-base:bookworm --aligner bwa
    """
    from bioinfra.adaptors.docker import client
    from bioinfra.config import load_config
    from bioinfra.core.images import build_images
    from bioinfra.engine.rundir import usable_workspace
    from bioinfra.errors import InputError
    from bioinfra.images import IMAGES
    from bioinfra.targets import get_target

    if aligner not in ("bwa-mem2", "bwa"):
        raise InputError(f"--aligner must be bwa-mem2 or bwa (got {aligner!r})")
    config = load_config(ctx.obj["config_path"])
    registry = get_target(config.target).registry(config)
    docker = client()
    progress = None if quiet else _progress()
    try:
        built = build_images(
            docker, list(names or IMAGES), registry=registry, base_image=base_image, aligner=aligner,
            workspace=usable_workspace(config), progress=progress.update if progress else None, extra_ca=extra_ca,
            no_cache=no_cache,
        )
    finally:
        if progress:
            progress.stop()
    for image in built:
        typer.echo(f"{'✓' if not image.cached else '='} {image.name}: {'unchanged' if image.cached else 'built'} in {image.seconds:.1f}s", err=True)
        typer.echo(f"{image.name}\t{image.ref}\t{image.image_id}")


@app.command("push")
def push(
    ctx: typer.Context,
    names: Optional[list[str]] = typer.Argument(None, help="Images to push (default: all built here)."),
) -> None:
    """Push built images to the target's registry; prints name and repository@digest per image.

    local/onprem: the configured registry (default 127.0.0.1:5000/bioinfra). aws: ECR of your
    account (login token from GetAuthorizationToken; repositories created if missing). gcp:
    Artifact Registry REGION-docker.pkg.dev/PROJECT/NAME (token from google-auth). Runs then name
    images by digest, so a run uses exactly the image that was built.
    """
    from bioinfra.adaptors.docker import client, docker_login
    from bioinfra.config import load_config
    from bioinfra.core.images import cloud_registry, push_images, read_records, retag
    from bioinfra.engine.rundir import default_workspace

    config = load_config(ctx.obj["config_path"])
    workspace = default_workspace(config)
    names = list(names or read_records(workspace))
    docker = client()
    from bioinfra.targets import get_target

    if get_target(config.target).is_cloud:  # a registry of the cloud account, with its own login
        registry, login = cloud_registry(config, names)
        docker_login(docker, login)
        retag(docker, names, registry=registry, workspace=workspace)
    bars = _push_progress()
    try:
        pushed = push_images(docker, names, workspace=workspace, progress=bars.update)
    finally:
        bars.stop()
    for image in pushed:
        typer.echo(f"✓ {image.name}: pushed", err=True)
        typer.echo(f"{image.name}\t{image.pinned}")


@app.command("list")
def list_images(ctx: typer.Context) -> None:
    """Show the images recorded as built on this machine."""
    from bioinfra.config import load_config
    from bioinfra.core.images import read_records
    from bioinfra.engine.rundir import default_workspace

    for name, record in sorted(read_records(default_workspace(load_config(ctx.obj["config_path"]))).items()):
        typer.echo(f"{name}\t{record['ref']}\t{record['id']}")


class _progress:  # noqa: N801
    """One bar per image, advanced by the Dockerfile's steps; plain lines off a terminal."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.bars: dict[str, int] = {}
        self.last: dict[str, int] = {}
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("[bold]{task.fields[image]:<13}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("{task.description}"), console=Console(stderr=True))
            self.progress.start()

    def update(self, image: str, step: int, steps: int, line: str) -> None:
        if not self.tty:
            if step and self.last.get(image) != step:
                self.last[image] = step
                sys.stderr.write(f"{image}: step {step}/{steps}\n")
            return
        if image not in self.bars:
            self.bars[image] = self.progress.add_task("", image=image, total=steps or None)
        self.progress.update(self.bars[image], completed=max(step - 1, 0), total=steps or None, description=line[:60])

    def stop(self) -> None:
        if self.tty:
            for task in self.bars.values():
                t = self.progress.tasks[task]
                self.progress.update(task, completed=t.total or 0)
            self.progress.stop()


class _push_progress:  # noqa: N801
    """Bytes pushed per image: a bar on a terminal, nothing otherwise (the ✓ lines follow)."""

    def __init__(self) -> None:
        self.progress = None
        self.tasks: dict[str, int] = {}
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            self.progress = Progress(TextColumn("[bold]{task.fields[image]:<13}"), BarColumn(), DownloadColumn(),
                                     console=Console(stderr=True))
            self.progress.start()

    def update(self, image: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        if image not in self.tasks:
            self.tasks[image] = self.progress.add_task("", image=image, total=total)
        self.progress.update(self.tasks[image], completed=done, total=total)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
