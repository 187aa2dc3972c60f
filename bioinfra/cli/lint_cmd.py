"""`bioinfra lint FILE|FOLDER|-`: our `argo lint`, thin over bioinfra.argo.validate; for a pipeline
folder, its pipeline.yaml checked and every mode rendered for every target, each Workflow linted."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer


def lint(
    file: str = typer.Argument(..., metavar="FILE|FOLDER|-",
                               help="A Workflow YAML file (several `---` documents are fine), a pipeline folder, or - "
                                    "for stdin."),
    allow_missing_arguments: bool = typer.Option(
        False, "--allow-missing-arguments",
        help="Like `argo lint`: accept spec.arguments parameters without a value (given at submit time). "
             "Without it the check is the controller's at submission, which refuses them.",
    ),
    schema: bool = typer.Option(True, "--schema/--no-schema",
                                help="Also check the strict Argo JSON schema (unknown keys, wrong types)."),
) -> None:
    """Check a Workflow against the rules the Argo v3.7 controller applies when it is submitted.

    Argo is the spec: what its controller refuses ("invalid spec: ..."), lint refuses, with Argo's own message, so the problem is found here rather than as a Failed Workflow on the cluster.

    Checked: the rules of Argo's workflow/validate/validate.go (template, task and step names and their lengths; the entrypoint, onExit and every template reference; one kind per template; arguments and required inputs; {{variables}} only where Argo can resolve them, e.g. {{tasks.X.status}} only from tasks downstream of X; depends / dependencies / continueOn; cycles; outputs; retryStrategy; podGC; ...), what the Kubernetes API server refuses before Argo sees it (metadata.name, generateName), and the strict JSON schema of Argo's API (a typo such as `retryStategy` is an error where Argo would silently drop the field).

    One line per problem on stdout: ✗ <message>. Like Argo, the controller's rules stop at the first broken one: fix it and lint again. A warning (!) is something Argo admits but cannot run as meant (spec.parallelism 0, a `depends` expression that does not parse: the task ends in Error at run time); a note (•) says what needs the cluster to check (templateRef targets).

    A pipeline folder (pipeline.yaml beside its template): pipeline.yaml is validated, then each of its modes is rendered for local, onprem, aws and gcp with placeholder values (every bool input off and on), and each Workflow is linted; every line names the mode and target.

    Exit 0 when Argo would accept every document (warnings and notes included), 4 when it would refuse one.

    \b
    Examples:
      bioinfra lint wf.yaml
      bioinfra lint ./my-pipeline/
      bioinfra render fastqc-to-bwa --target gcp | bioinfra lint -
      bioinfra lint --allow-missing-arguments wf-with-open-parameters.yaml

    \b
    Problems read as Argo prints them, e.g.:
      ✗ templates.main cannot use 'continueOn' when using 'depends'. Instead use 'dep-task.Failed'/'dep-task.Errored'
      ✗ templates.main.tasks.align templates.bwa inputs.parameters.reads was not supplied
      ✗ schema: spec.templates.1: Additional properties are not allowed ('retryStategy' was unexpected)
    """
    from bioinfra.argo.validate import lint_yaml, schema_available
    from bioinfra.errors import InputError, WorkflowInvalidError

    if file != "-" and Path(file).is_dir():
        docs = lint_folder(Path(file), schema=schema)
        source = file
    elif file == "-":
        text, source = sys.stdin.read(), "stdin"
    else:
        path = Path(file)
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {path}: {exc}") from None
    if not Path(file).is_dir() or file == "-":
        try:
            docs = lint_yaml(text, schema=schema, lint_mode=allow_missing_arguments)
        except InputError as exc:
            raise InputError(f"{source}: {exc.message}") from None
    if schema and not schema_available():
        typer.echo("! schema not checked: the jsonschema package is not installed (pip install jsonschema)", err=True)
    refused = []
    for doc in docs:
        for p in doc.problems:
            if p.severity == "note":
                typer.echo(f"• {doc.name}: note: {p.message}")
            elif p.severity == "warning":
                typer.echo(f"! {p.message}")
            elif p.source == "schema":
                typer.echo(f"✗ schema: {p.message}")
            else:
                typer.echo(f"✗ {p.message}")
        if doc.errors:
            refused.append(doc)
        else:
            typer.echo(f"✓ {doc.name}: no problems (Argo v3.7 rules)")
    if refused:
        problems = [p.message for d in refused for p in d.errors]
        name = refused[0].name if len(refused) == 1 else f"{len(refused)} of {len(docs)} documents in {source}"
        raise WorkflowInvalidError(name, problems)


def lint_folder(folder: Path, *, schema: bool = True) -> list[Any]:
    """A pipeline folder: pipeline.yaml validated (InputError naming each field), then each mode
    rendered for each target with placeholder values (bioinfra.engine.preview: as `run` renders it)
    and linted. One LintedDocument per (mode, target, bool setting), named "mode M on T"."""
    import itertools

    from bioinfra.argo.validate import LintedDocument, LintProblem, lint
    from bioinfra.config import parse_config
    from bioinfra.engine.preview import placeholder_workflow
    from bioinfra.engine.spec import load_spec
    from bioinfra.errors import BioinfraError
    from bioinfra.targets import TARGETS

    spec = load_spec(folder)
    out = []
    # Each target's placeholder config: what a pipeline's Workflow depends on per target (images, pools).
    for mode, target in itertools.product(spec.modes or [spec.mode_for(set())], TARGETS):
        config = parse_config(TARGETS[target].sample_config)
        bools = [n for n in mode.inputs if spec.input(n).type == "bool"]
        for setting in ([False, True] if bools else [None]):
            name = f"mode {mode.name} on {target}" + (f" ({', '.join(bools)} {'on' if setting else 'off'})"
                                                      if bools else "")
            try:
                problems = tuple(lint(placeholder_workflow(spec, mode, config, target, bools=setting), schema=schema))
            except BioinfraError as exc:
                problems = (LintProblem(exc.message, "bioinfra"),)
            except Exception as exc:  # noqa: BLE001 - e.g. YAML the template rendered badly
                problems = (LintProblem(f"{mode.workflow} does not render a Workflow: {exc}", "bioinfra"),)
            out.append(LintedDocument(name, tuple(LintProblem(f"{name}: {p.message}", p.source, p.severity)
                                                  for p in problems)))
    return out
