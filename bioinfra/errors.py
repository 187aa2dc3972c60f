"""One exception hierarchy for everything a user can act on, each with a named exit code.

Exit codes are part of the CLI's contract: scripts branch on them, so a code never changes meaning.
(Pattern from HTTPie's ExitStatus and SkyPilot's exceptions.)
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1  # unexpected: a bug or an environment we did not foresee
    USAGE = 2  # bad command line (Typer/Click's own code)
    CONFIG_INVALID = 3  # bioinfra.yaml failed validation; nothing was created
    INPUT_INVALID = 4  # input files or output folder rejected before any step ran, or the output's disk/folder
    # became unusable during the run (full, read-only): what was finished is kept, --resume continues
    STEP_FAILED = 5  # a workflow step failed after its retries
    TOOL_MISSING = 6  # a required program (fastqc, bwa, ...) is not installed
    RUN_LOCKED = 7  # another bioinfra process is working on the same run
    UNSUPPORTED = 8  # asked of a target or runtime that cannot do it (yet)
    TERRAFORM_FAILED = 9  # Terraform (or the cloud behind it) refused or failed a change
    STATE_LOCKED = 10  # a stack's Terraform state is locked by someone else
    LEFTOVERS = 11  # destroy finished, but resources tagged with the cluster remain (each named)
    PREFLIGHT_FAILED = 12  # the cloud project/account is not ready (API off, no quota); nothing was created
    CLUSTER_UNREACHABLE = 13  # no kubeconfig, the API server does not answer, or it refuses our credentials
    OVER_BUDGET = 14  # the run's cost estimate is above budget.max_usd; nothing was started (--over-budget overrides)
    INTERRUPTED = 130  # Ctrl-C; same as a shell's 128 + SIGINT


class BioinfraError(Exception):
    """Base of every error meant for the user: a message, an optional hint, an exit code."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(BioinfraError):
    """The config file is missing, unreadable or invalid. Carries every problem found."""

    exit_code = ExitCode.CONFIG_INVALID

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = problems or []


class InputError(BioinfraError):
    """An input file, sample sheet or output folder was rejected before anything ran."""

    exit_code = ExitCode.INPUT_INVALID


class OutputUnusableError(InputError):
    """The output folder (or the workspace) cannot take the run's files: read-only, a symlink loop,
    or its disk filled up during the run. Exit 4 like any rejected output folder: nothing is retried,
    what finished is kept, and the hint says what to do."""


class WorkflowInvalidError(InputError):
    """A Workflow the Argo v3.7 controller would refuse at submission (`bioinfra lint`): exit 4.

    Carries every problem found, each worded as Argo (or the Kubernetes API server) words it."""

    def __init__(self, name: str, problems: list[str], *, hint: str | None = None) -> None:
        count = f"{len(problems)} problem" + ("" if len(problems) == 1 else "s")
        super().__init__(
            f"{name}: {count}; Argo v3.7 would refuse this Workflow",
            hint=hint or "fix the spec (or the template it was rendered from); `bioinfra lint --help` explains each rule",
        )
        self.name = name
        self.problems = problems


class ToolMissingError(BioinfraError):
    exit_code = ExitCode.TOOL_MISSING


class RunLockedError(BioinfraError):
    exit_code = ExitCode.RUN_LOCKED


class UnsupportedError(BioinfraError):
    exit_code = ExitCode.UNSUPPORTED


class TerraformFailedError(BioinfraError):
    exit_code = ExitCode.TERRAFORM_FAILED


class StateLockedError(BioinfraError):
    exit_code = ExitCode.STATE_LOCKED


class LeftoversError(BioinfraError):
    exit_code = ExitCode.LEFTOVERS


class PreflightError(BioinfraError):
    """The cloud project is not ready for `up` (an API disabled, no GPU quota, project unknown).

    Carries every problem found, each with the command that fixes it; raised before any Terraform call."""

    exit_code = ExitCode.PREFLIGHT_FAILED

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = problems or []


class ClusterUnreachableError(BioinfraError):
    """The cluster's API server cannot be used: no kubeconfig or context, no answer, or 401/403."""

    exit_code = ExitCode.CLUSTER_UNREACHABLE


class OverBudgetError(BioinfraError):
    """A run's estimated cost is above `budget.max_usd`: refused before anything was started.

    Carries the numbers (estimate, budget, the largest cost items) so a script can report them."""

    exit_code = ExitCode.OVER_BUDGET

    def __init__(self, estimate_usd: float, max_usd: float, top_items: list[tuple[str, float]], *,
                 what: str = "the run", hint: str | None = None) -> None:
        items = ", ".join(f"{name} {usd:,.2f}" for name, usd in top_items)
        super().__init__(
            f"{what} is estimated at {estimate_usd:,.2f} USD, above budget.max_usd {max_usd:,.2f} USD"
            + (f"; largest items: {items}" if items else ""),
            hint=hint or "pass --over-budget to run it anyway, or raise budget.max_usd in bioinfra.yaml; "
                         "`bioinfra estimate` shows every step and the assumptions",
        )
        self.estimate_usd = estimate_usd
        self.max_usd = max_usd
        self.top_items = top_items


class WorkflowSpecError(BioinfraError):
    """A Workflow the local executor cannot run (unknown template, bad expression, ...)."""

    exit_code = ExitCode.ERROR


class StepFailedError(BioinfraError):
    exit_code = ExitCode.STEP_FAILED

    def __init__(self, step: str, exit_status: int | None, log_path: str, *, tail: str = ""):
        code = "no exit code" if exit_status is None else f"exit {exit_status}"
        super().__init__(
            f"step '{step}' failed ({code}); log: {log_path}",
            hint="read the log, fix the cause, then re-run with --resume to keep finished steps",
        )
        self.step = step
        self.exit_status = exit_status
        self.log_path = log_path
        self.tail = tail


class InterruptedRunError(BioinfraError):
    exit_code = ExitCode.INTERRUPTED
