from __future__ import annotations

from pathlib import Path

import typer

from bioinfra.config import CONFIG_FILENAME


def init(
    target: str = typer.Option("local", "--target", "-t", help="local | onprem | gcp | aws"),
    name: str = typer.Option("bioinfra", "--name", help="Project / cluster name (a-z, 0-9, '-')."),
    path: Path = typer.Option(Path(CONFIG_FILENAME), "--path", help="Where to write the file."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented bioinfra.yaml for TARGET.

    Example: bioinfra init --target gcp --name lab-seq, then edit project/region and run
    `bioinfra config validate`.
    """
    from bioinfra.config import TARGETS
    from bioinfra.core.init import write_config
    from bioinfra.errors import InputError

    if target not in TARGETS:
        raise InputError(f"--target must be one of {', '.join(TARGETS)} (got {target!r})")
    written = write_config(path, target, name, force)
    typer.echo(f"✓ wrote {written} for target {target}; check it with: bioinfra config validate", err=True)
