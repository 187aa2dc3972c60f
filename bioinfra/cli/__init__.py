"""The `bioinfra` command: thin Typer commands over bioinfra.core.

Every command parses its options and calls one function. Errors meant for the user are
BioinfraError subclasses: printed as one ✗ line (plus problems and a hint) on stderr, with the
exit code named in bioinfra.errors. Tracebacks only with BIOINFRA_DEBUG=1, and never with local
variables (they may hold credentials).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Optional

import typer

from bioinfra import __version__
from bioinfra.errors import BioinfraError, ConfigError, ExitCode, PreflightError, StepFailedError, WorkflowInvalidError

app = typer.Typer(
    name="bioinfra",
    help=(
        "Run research pipelines on this machine, an on-prem cluster, GKE or EKS, from one Workflow spec.\n\n"
        "Start here:  bioinfra run fastqc-to-bwa   (bundled sample, this machine)\n\n"
        "Exit codes: 0 ok, 1 internal error, 2 usage, 3 bad config, 4 bad input or unusable output (read-only, disk full), 5 step failed, "
        "6 tool missing, 7 run busy, 8 not available on this target (yet), 9 Terraform failed, "
        "10 state locked, 11 resources left after destroy, 12 not ready (preflight, doctor), "
        "13 cluster unreachable, 14 over budget, 130 interrupted."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bioinfra {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="Config file (default: $BIOINFRA_CONFIG, then ./bioinfra.yaml, else built-in defaults).",
        dir_okay=False,
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    ctx.obj = {"config_path": config}


def _register() -> None:
    from bioinfra.cli import cloud_cmd, config_cmd, images_cmd, init_cmd, render_cmd, run_cmd, sample_cmd, up_cmd

    app.command("init")(init_cmd.init)
    app.add_typer(config_cmd.app, name="config")
    # As `run`: the pipeline's own options are parsed by its own command (render_cmd.render_command).
    app.command("render", context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                            "help_option_names": []}, add_help_option=False)(render_cmd.render)
    # The pipeline's own options are parsed by its own command (run_cmd.pipeline_command), so `run`
    # passes every argument after PIPELINE through, --help included.
    app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                         "help_option_names": []}, add_help_option=False)(run_cmd.run)
    app.command("up")(up_cmd.up)
    app.command("destroy")(up_cmd.destroy)
    app.command("plan")(cloud_cmd.plan)
    app.add_typer(cloud_cmd.state_app, name="state")
    app.add_typer(images_cmd.app, name="images")
    app.add_typer(sample_cmd.app, name="sample-data")
    from bioinfra.cli import cluster_cmd, doctor_cmd, estimate_cmd, lint_cmd, runs_cmd

    app.command("kubeconfig")(cluster_cmd.kubeconfig)
    app.command("status")(cluster_cmd.status)
    # As `run`: the pipeline's own options are parsed by its own command (estimate_cmd.estimate_command).
    app.command("estimate", context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                              "help_option_names": []}, add_help_option=False)(estimate_cmd.estimate)
    app.command("doctor")(doctor_cmd.doctor)
    app.add_typer(runs_cmd.app, name="runs")
    app.command("lint")(lint_cmd.lint)
    from bioinfra.cli import pipelines_cmd

    app.add_typer(pipelines_cmd.app, name="pipelines")


_register()


def report_error(exc: BioinfraError) -> None:
    err = sys.stderr
    err.write(f"✗ {exc.message}\n")
    if isinstance(exc, (ConfigError, PreflightError, WorkflowInvalidError)):
        for problem in exc.problems:
            err.write(f"  - {problem}\n")
    if isinstance(exc, StepFailedError) and exc.tail:
        err.write(f"--- last lines of {exc.log_path} ---\n{exc.tail}\n---\n")
    if exc.hint:
        err.write(f"  hint: {exc.hint}\n")


def _sigterm_as_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def main() -> None:
    debug = os.environ.get("BIOINFRA_DEBUG") == "1"
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    # A process started in the background by a non-interactive shell (a script's `cmd &`, some CI
    # runners) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt for it: an
    # interrupt sent to bioinfra would be lost while Terraform applies on (issue #16: CI's Ctrl-C
    # scenario went on to the next stack). Like Terraform (Go's signal.Notify re-enables an ignored
    # SIGINT), bioinfra always takes it: an interrupt stops cleanly, whoever started bioinfra.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = app(prog_name="bioinfra", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except BioinfraError as exc:
        if debug:
            traceback.print_exc()
        report_error(exc)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        sys.stderr.write("✗ interrupted\n")
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:  # noqa: BLE001
        # Typer's usage errors come from click, which newer Typer releases vendor under another
        # module name: recognise them by shape (show + exit_code), not by import.
        if type(exc).__name__ == "Abort":  # click's wrapper for Ctrl-C
            sys.stderr.write("✗ interrupted\n")
            sys.exit(int(ExitCode.INTERRUPTED))
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        if debug:
            traceback.print_exc()
        if type(exc).__module__.startswith("botocore"):
            # An AWS API refused or could not be reached (boto3 is imported lazily, so match by module).
            sys.stderr.write(f"✗ AWS error: {exc}\n  hint: check credentials, region and aws.endpoint_url\n")
            sys.exit(int(ExitCode.TERRAFORM_FAILED))
        sys.stderr.write(
            f"✗ internal error: {type(exc).__name__}: {exc}\n"
            "  hint: set BIOINFRA_DEBUG=1 for a traceback and report it\n"
        )
        sys.exit(int(ExitCode.ERROR))
