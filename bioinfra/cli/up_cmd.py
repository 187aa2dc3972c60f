from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _only_local(target: str) -> None:
    from bioinfra.errors import UnsupportedError
    from bioinfra.targets import get_target

    if get_target(target).name != "local":
        raise UnsupportedError(
            f"`up`/`destroy` for target '{target}' arrive with its issue (#4 aws, #5 gcp, #6 onprem)",
            hint=f"`bioinfra render fastqc-to-bwa --target {target}` shows the Workflow it will run",
        )


def up(
    ctx: typer.Context,
    target: str = typer.Argument("local", help="local (aws, gcp, onprem: later issues)."),
    registry: bool = typer.Option(False, "--registry", help="Start a local image registry and push the images to it."),
    registry_port: int = typer.Option(5000, "--registry-port", min=1, max=65535, help="Port of that registry (127.0.0.1 only)."),
    base_image: Optional[str] = typer.Option(None, "--base-image", help="BASE_IMAGE for the image builds."),
    aligner: str = typer.Option("bwa-mem2", "--aligner", help="bwa-mem2 (official release) or bwa (Debian's)."),
    with_cellprofiler: bool = typer.Option(False, "--with-cellprofiler", help="Also build the CellProfiler image."),
    extra_ca: Optional[Path] = typer.Option(None, "--extra-ca", dir_okay=False, help="CA bundle to trust inside builds."),
) -> None:
    """Prepare a target. For local: check Docker (or the native tools), start a registry if asked,
    build the images. Undo with `bioinfra destroy local`.

    Example (no Docker Hub): bioinfra up local --base-image bioinfra-base:bookworm --aligner bwa
    """
    _only_local(target)
    from bioinfra.config import load_config
    from bioinfra.core.images import build_images, push_images
    from bioinfra.core.local_target import up_local
    from bioinfra.core.run import usable_workspace
    from bioinfra.errors import InputError

    if aligner not in ("bwa-mem2", "bwa"):
        raise InputError(f"--aligner must be bwa-mem2 or bwa (got {aligner!r})")
    config = load_config(ctx.obj["config_path"])
    workspace = usable_workspace(config)
    # A registry started here serves 127.0.0.1 (not `localhost`, which may resolve to ::1 first).
    registry_url = config.registry.url or (f"127.0.0.1:{registry_port}/bioinfra" if registry else "127.0.0.1:5000/bioinfra")
    names = ["fastqc", "bwa-mem2"] + (["cellprofiler"] if with_cellprofiler else [])

    def say(msg: str) -> None:
        typer.echo(f"✓ {msg}", err=True)

    def build(client, record) -> None:
        for name in names:
            (image,) = build_images(client, [name], registry=registry_url, base_image=base_image, aligner=aligner,
                                    workspace=workspace, extra_ca=extra_ca)
            record(name, image.ref, not image.cached)
            say(f"image {name}: {'unchanged' if image.cached else 'built'} ({image.ref})")
        if registry:
            for pushed in push_images(client, names, workspace=workspace):
                say(f"image {pushed.name}: pushed as {pushed.pinned}")

    result = up_local(workspace, registry_port=registry_port if registry else None, build=build, say=say)
    for name, ref in result.images.items():
        typer.echo(f"{name}\t{ref}")
    if result.registry:
        typer.echo(f"registry\t{result.registry}")


def destroy(
    ctx: typer.Context,
    target: str = typer.Argument("local", help="local (aws, gcp, onprem: later issues)."),
) -> None:
    """Remove what `bioinfra up TARGET` made, and nothing else. Safe to re-run."""
    _only_local(target)
    from bioinfra.config import load_config
    from bioinfra.core.local_target import destroy_local
    from bioinfra.core.run import default_workspace

    removed = destroy_local(default_workspace(load_config(ctx.obj["config_path"])),
                            say=lambda msg: typer.echo(f"✓ {msg}", err=True))
    if not removed:
        typer.echo("✓ nothing to remove: `up local` made nothing here (or it was already destroyed)", err=True)
