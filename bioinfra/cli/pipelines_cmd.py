"""`bioinfra pipelines list | show NAME|FOLDER | new PATH`: the pipelines bioinfra can run, and a
working one of your own to start from. Thin over bioinfra.engine.spec (discover, find_pipeline,
load_spec); `new` copies templates/scaffold/ (docs/pipelines/write-your-own.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer(help="List, show and start pipelines (built-in, on the config's pipelines.path, or a folder).",
                  no_args_is_help=True)

SCAFFOLD_FILES = ("pipeline.yaml", "workflow.yaml.j2", "test_pipeline.py")
EXAMPLE_FILE = "example.txt"


def first_clause(description: str) -> str:
    """A description's first clause, for one line of `list`."""
    return re.split(r": |\. |; ", description.strip(), maxsplit=1)[0].rstrip(".")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every pipeline `bioinfra run NAME` finds: the built-ins, then each folder of the config's
    pipelines.path in order (a name taken by an earlier one is skipped, as on a shell's PATH).

    One line each on stdout, tab-separated: name, version, source (built-in or its folder),
    what it does.
    """
    from bioinfra.cli.run_cmd import known_pipelines

    for name, spec in known_pipelines(ctx).items():
        typer.echo(f"{name}\t{spec.version}\t{spec.source}\t{first_clause(spec.description)}")


@app.command("show")
def show(ctx: typer.Context, pipeline: str = typer.Argument(..., metavar="NAME|FOLDER",
                                                            help="A pipeline name or a pipeline folder.")) -> None:
    """A pipeline's inputs (flag, type, default, help), modes, outputs, images, tools, steps and folder."""
    from bioinfra.cli.run_cmd import _folder, find
    from bioinfra.engine.spec import looks_like_path

    spec = _folder(pipeline) if looks_like_path(pipeline) else find(ctx, pipeline)
    for line in describe(spec):
        typer.echo(line)


def _default(i: Any) -> str:
    if isinstance(i.default, str) and i.default.startswith("bundled:"):
        return "the bundled sample"
    if i.default is None:
        return "required" if i.required else "none"
    return str(i.default).lower() if isinstance(i.default, bool) else str(i.default)


def describe(spec: Any) -> list[str]:
    lines = [f"{spec.name} {spec.version} ({spec.source})", spec.description.strip(), "",
             f"folder\t{spec.folder}", "", "inputs (flag, type, default, help):"]
    for i in spec.inputs:
        lines.append(f"  {i.option}\t{i.type}\t{_default(i)}\t{' '.join(i.help.split())}")
    if spec.modes:
        lines += ["", "modes:"]
        for m in spec.modes:
            when = f"with {spec.input(m.when).option}" if m.when else "default"
            lines.append(f"  {m.name}\t{when}\t{m.workflow}\t{', '.join(spec.input(n).option for n in m.inputs)}")
    else:
        lines += ["", f"workflow\t{spec.workflow}"]
    lines += ["", "outputs:"]
    out = spec.outputs
    for key in ("report", "results", "summary_file"):
        if getattr(out, key) not in (None, "."):
            lines.append(f"  {key}\t{getattr(out, key)}")
    for line in out.summary:
        lines.append(f"  summary\t{line}")
    for label, path in out.files.items():
        lines.append(f"  file\t{label}: {path}")
    if out.items is not None:
        lines.append(f"  items\t{out.items.file} (one row per {out.items.noun})")
    for m in spec.modes:
        if m.outputs is not None and m.outputs.report:
            lines.append(f"  report ({m.name})\t{m.outputs.report}")
    lines += ["", f"images\t{', '.join(spec.images) or 'none'}",
              f"tools\t{', '.join(f'{k} ({v})' for k, v in spec.tools.items()) or 'none'}"]
    steps = [s for m in spec.modes for s in m.steps] if spec.modes else spec.steps
    lines.append(f"steps\t{', '.join(dict.fromkeys(steps)) or 'none'}")
    if spec.scripts:
        lines.append(f"scripts\t{', '.join(spec.scripts)}")
    return lines


@app.command("new")
def new(
    path: Path = typer.Argument(..., metavar="PATH", help="The folder to write (must not exist, or be empty)."),
    name: Optional[str] = typer.Option(None, "--name", help="The pipeline's name (default: the folder's name)."),
) -> None:
    """Write a working one-step pipeline folder at PATH: pipeline.yaml, its Workflow template, its own
    test (test_pipeline.py) and an example input (its input's default). It runs as written:

    \b
      bioinfra pipelines new my-counter
      bioinfra run ./my-counter/                      # counts my-counter/example.txt
      bioinfra run ./my-counter/ --input notes.txt
      pytest my-counter/test_pipeline.py

    Then replace the step's command with yours (docs/pipelines/write-your-own.md).
    """
    folder = write_scaffold(path, name)
    shown = str(path) if str(path).startswith((".", "/", "~")) else f"./{path}"
    shown = shown.rstrip("/") + "/"
    typer.echo(f"✓ wrote {folder}: {', '.join(SCAFFOLD_FILES)}, {EXAMPLE_FILE}", err=True)
    typer.echo(f"run\tbioinfra run {shown}")
    typer.echo(f"test\tpytest {shown}test_pipeline.py")


def write_scaffold(path: Path, name: Optional[str] = None) -> Path:
    """templates/scaffold/ copied to PATH with the pipeline's name filled in (plain replacement:
    the files are data, not rendered)."""
    from bioinfra.engine.spec import NAME_RE, load_spec
    from bioinfra.errors import InputError
    from bioinfra.render import templates_root

    folder = path.expanduser()
    pipeline = name or re.sub(r"[^a-z0-9-]+", "-", folder.resolve().name.lower()).strip("-")
    if not NAME_RE.fullmatch(pipeline):
        raise InputError(f"{pipeline!r} is not a pipeline name: 2-42 lowercase letters, digits and '-', "
                         "starting with a letter", hint="give one with --name")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{folder} already exists and is not an empty folder", hint="choose a new PATH")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for file in SCAFFOLD_FILES:
            text = (templates_root() / "scaffold" / file).read_text()
            text = text.replace("__NAME__", pipeline).replace("__PATH__", str(path)).replace("__FILE__", str(
                path / file))
            (folder / file).write_text(text)
        (folder / EXAMPLE_FILE).write_text("one\ntwo\nthree\n")
    except OSError as exc:
        raise InputError(f"cannot write {folder}: {exc.strerror or exc}") from None
    load_spec(folder)  # what was written is a valid pipeline
    return folder
