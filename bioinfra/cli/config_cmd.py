from __future__ import annotations

import typer

app = typer.Typer(help="Check and show the configuration.", no_args_is_help=True)


@app.command("validate")
def validate(ctx: typer.Context) -> None:
    """Validate the config and report every problem with its field path (exit 3 if any)."""
    from bioinfra.config import find_config_path, load_config

    path = find_config_path(ctx.obj["config_path"])
    config = load_config(ctx.obj["config_path"])
    where = str(path) if path else "built-in defaults (no bioinfra.yaml here)"
    typer.echo(f"✓ {where}: valid (target {config.target}, name {config.name})", err=True)


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the effective config, defaults filled in, as YAML."""
    import yaml

    from bioinfra.config import load_config

    config = load_config(ctx.obj["config_path"])
    typer.echo(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), nl=False)
