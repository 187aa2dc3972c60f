"""`bioinfra plan|up|destroy <cloud>` and `bioinfra state bootstrap`: thin over core.provision."""

from __future__ import annotations

import sys

import typer

from bioinfra.core.provision import StackPlan, StackProgress
from bioinfra.targets import get_target

ACTION_MARK = {"create": "+", "update": "~", "delete": "-", "replace": "-/+", "read": "<=", "noop": " "}

state_app = typer.Typer(help="Remote Terraform state: `bootstrap` creates the bucket and lock table.",
                        no_args_is_help=True)


def _say(msg: str) -> None:
    typer.echo(f"✓ {msg}", err=True)


class RichStackProgress(StackProgress):
    """One bar per stack on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[last]}"), console=self.console, transient=False,
        )
        self.tasks: dict[str, int] = {}
        self.failed: dict[str, int] = {}

    def start(self, stack: str, total: int, verb: str) -> None:
        self.failed[stack] = 0
        if self.live:
            if not self.tasks:
                self.progress.start()
            self.tasks[stack] = self.progress.add_task(f"{verb} {stack}", total=max(total, 1), last="")
        else:
            typer.echo(f"… {verb} {stack}: {total} change(s)", err=True)

    def advance(self, stack: str, address: str, ok: bool) -> None:
        if not ok:
            self.failed[stack] += 1
        if self.live:
            self.progress.update(self.tasks[stack], advance=1, last=("✗ " if not ok else "") + address)
        else:
            typer.echo(f"  {'✓' if ok else '✗'} {stack}: {address}", err=True)

    def finish(self, stack: str) -> None:
        if self.live and stack in self.tasks:
            self.progress.update(self.tasks[stack], last="✗ failed" if self.failed.get(stack) else "done")

    def close(self) -> None:
        if self.live and self.tasks:
            self.progress.stop()


def print_plans(plans: list[StackPlan], verbose: bool) -> None:
    """The summary on stdout (data), one line per stack, then resources or the full plan on --verbose."""
    for plan in plans:
        note = f"  (planned with placeholder outputs of {', '.join(plan.placeholders)}: not applied yet)" \
            if plan.placeholders else ""
        typer.echo(f"{plan.stack:<10} +{plan.add} add  ~{plan.change} change  -{plan.remove} destroy{note}")
        if verbose:
            if plan.full_text:
                typer.echo(plan.full_text.rstrip())
            else:
                for action, address in plan.resources:
                    typer.echo(f"  {ACTION_MARK.get(action, action):>3} {address}")
    total = sum(p.total for p in plans)
    typer.echo(f"total      {total} change(s)" + ("" if verbose else "   (--verbose lists every resource)"))


def _provisioner(ctx: typer.Context, target: str):
    from bioinfra.config import load_config
    from bioinfra.core.provision import Provisioner, cloud_target

    cloud_target(target)  # a target without stacks says so before its config is checked
    config = load_config(ctx.obj["config_path"], target=target)
    return Provisioner(config, ctx.obj["config_path"], say=_say)


def plan(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="aws, gcp or onprem."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print Terraform's full plan for every stack."),
) -> None:
    """Show what `bioinfra up TARGET` would change, stack by stack, without changing anything.

    Stacks whose upstream is not applied yet are planned with placeholder IDs (said so per line). Renders into .bioinfra/<name>/<target>/ beside bioinfra.yaml; Terraform logs go to <stack>/logs/.
    """
    provisioner = _provisioner(ctx, target)
    _say(provisioner.preflight())
    print_plans(provisioner.plan(verbose=verbose), verbose)


def up_cloud(ctx: typer.Context, target: str, yes: bool, dry_run: bool, verbose: bool) -> None:
    from bioinfra.errors import InputError

    provisioner = _provisioner(ctx, target)
    config = provisioner.config
    _say(provisioner.preflight())
    if dry_run:
        print_plans(provisioner.plan(verbose=verbose), verbose)
        return

    def confirm(plans: list[StackPlan]) -> bool:
        print_plans(plans, verbose)
        if yes:
            return True
        if not sys.stdin.isatty():
            raise InputError("`up` changes cloud resources: pass --yes to apply without a prompt",
                             hint=f"review first with `bioinfra plan {target}`")
        return typer.confirm(f"Apply these changes to {target} ({config.name}, {_place(config)})?", default=False,
                             err=True)

    provisioner.progress = progress = RichStackProgress()
    try:
        outputs = provisioner.up(confirm)
    finally:
        progress.close()
    cluster = outputs.get("cluster", {})
    storage = outputs.get("storage", {})
    addons = outputs.get("addons", {})
    for key, value in (("cluster", cluster.get("cluster_name")), ("endpoint", cluster.get("cluster_endpoint")),
                       ("namespace", addons.get("namespace")), ("storage_class", addons.get("storage_class")),
                       ("bucket", storage.get("results_bucket")), ("efs", storage.get("efs_id")),
                       ("registry", storage.get("repository_url")), ("filestore", storage.get("filestore_ip"))):
        if value:
            typer.echo(f"{key}\t{value}")


def destroy_cloud(ctx: typer.Context, target: str, yes: bool, force_empty_buckets: bool) -> None:
    from bioinfra.errors import InputError

    provisioner = _provisioner(ctx, target)
    config = provisioner.config
    _say(provisioner.preflight(destroying=True))
    if not yes:
        if not sys.stdin.isatty():
            raise InputError("`destroy` deletes cloud resources: pass --yes to run it without a prompt")
        if not typer.confirm(f"Destroy every resource of {config.name} in {target} {_place(config)}?",
                             default=False, err=True):
            raise InputError("not destroyed: declined", hint="nothing was changed")
    provisioner.progress = progress = RichStackProgress()
    try:
        provisioner.destroy(force_empty_buckets=force_empty_buckets)
    finally:
        progress.close()
    if not get_target(target).is_cloud:
        _say(f"destroyed: what bioinfra added to the cluster ({_place(config)}) is gone; the cluster itself is yours")
    else:
        _say(f"destroyed: nothing of cluster {config.name} remains in {_place(config)}")


def _place(config) -> str:
    return get_target(config.target).place(config)


@state_app.command("bootstrap")
def bootstrap(ctx: typer.Context) -> None:
    """Create the remote-state store named in `state:`. Safe to re-run.

    backend s3 (aws): the S3 bucket and the DynamoDB lock table.
      state: {backend: s3, bucket: my-tfstate, lock_table: my-tflocks}

    backend gcs (gcp): the GCS bucket (versioned, uniform access, no public access; GCS locks state itself).
      state: {backend: gcs, bucket: my-tfstate}
    """
    from bioinfra.config import load_config
    from bioinfra.core.provision import cloud_target
    from bioinfra.errors import InputError

    config = load_config(ctx.obj["config_path"])
    if config.state.backend == "local":
        raise InputError("`state bootstrap` needs a remote state.backend in bioinfra.yaml",
                         hint="state: {backend: s3, bucket: B, lock_table: T} on aws; {backend: gcs, bucket: B} on gcp")
    if not config.region:
        raise InputError("`state bootstrap` needs region in bioinfra.yaml")
    labels = {"managed-by": "bioinfra", "bioinfra-purpose": "terraform-state"}
    if config.state.backend == "gcs":
        from bioinfra.adaptors.gcs import bootstrap_state as bootstrap_gcs

        if not config.project:
            raise InputError("`state bootstrap` with backend gcs needs project in bioinfra.yaml (the GCP project id)")

        session = cloud_target("gcp").open_session(config)
        created = bootstrap_gcs(session, config.state.bucket, config.region, labels)
        for item in created:
            _say(f"created {item}")
        if not created:
            _say("state bucket already exists")
        typer.echo(f"bucket\t{config.state.bucket}")
        return

    from bioinfra.adaptors.aws import account_id, bootstrap_state

    aws = cloud_target("aws").open_session(config)
    account_id(aws)
    created = bootstrap_state(aws, config.state.bucket, config.state.lock_table,
                              tags={"managed-by": "bioinfra", "bioinfra:purpose": "terraform-state"})
    for item in created:
        _say(f"created {item}")
    if not created:
        _say("state bucket and lock table already exist")
    typer.echo(f"bucket\t{config.state.bucket}\nlock_table\t{config.state.lock_table}")
