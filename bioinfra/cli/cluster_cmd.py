"""`bioinfra kubeconfig TARGET` and `bioinfra status TARGET`: thin over bioinfra.core.cluster."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Optional

import typer

ConfigOption = typer.Option(
    None, "--config", "-c", dir_okay=False,
    help="Config file (default: the one given before the command, $BIOINFRA_CONFIG, then ./bioinfra.yaml).",
)


class Auth(str, enum.Enum):
    auto = "auto"
    plugin = "plugin"
    token = "token"


def _load(ctx: typer.Context, command: str, target: str, config_path: Optional[Path]):
    from bioinfra.config import load_config
    from bioinfra.core.cluster import check_supported

    check_supported(command, target)  # "not yet" before the target's config requirements
    path = config_path or (ctx.obj or {}).get("config_path")
    return load_config(path, target=target), path


def kubeconfig(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="gcp or aws."),
    config: Optional[Path] = ConfigOption,
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", dir_okay=False,
        help="File to write or merge into (default: .bioinfra/<name>/<target>/kubeconfig beside bioinfra.yaml).",
    ),
    auth: Auth = typer.Option(
        Auth.auto, "--auth",
        help="plugin: kubectl runs gke-gcloud-auth-plugin (gcp) or `aws eks get-token` (aws) for fresh tokens; "
             "token: a token stored in the file (gcp: a google-auth access token, about 1 hour; aws: an EKS token "
             "signed with your AWS credentials, about 15 minutes); auto: plugin if installed, else token.",
    ),
) -> None:
    """Write a kubeconfig for the cluster `bioinfra up TARGET` made; prints its path on stdout.

    The endpoint and CA come from the cloud's API (GKE get_cluster, EKS describe_cluster); context, cluster and user are named as the cloud's own CLI names them: gke_PROJECT_REGION_NAME (gcloud), the cluster's ARN arn:aws:eks:REGION:ACCOUNT:cluster/NAME (aws eks update-kubeconfig). An existing kubeconfig is merged into (entries of the same name replaced, others kept) and its current context set; the file is private to you (mode 0600). The token is never printed.

    Examples:

      export KUBECONFIG=$(bioinfra kubeconfig gcp) && kubectl get nodes

      bioinfra kubeconfig gcp --output ~/.kube/config --auth plugin

      bioinfra kubeconfig aws --auth token
    """
    from bioinfra.core.cluster import kubeconfig as write

    loaded, path = _load(ctx, "kubeconfig", target, config)
    result = write(loaded, path, output, auth.value)
    how = result.plugin if result.auth == "plugin" else "a token stored in the file"
    typer.echo(f"✓ kubeconfig for cluster {loaded.name}: context {result.context}, auth by {how}", err=True)
    if result.auth == "token":
        until = f" (at {result.expires:%H:%M} UTC)" if result.expires else ""
        typer.echo(f"  the token expires in {result.lifetime}{until}: run this command again for a new one, "
                   "or use --auth plugin", err=True)
    typer.echo(str(result.path))


def status(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="gcp or aws."),
    config: Optional[Path] = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout instead of the table."),
) -> None:
    """Show the cluster `bioinfra up TARGET` made and its node pools, as the cloud reports them now.

    Per pool (GKE node pool, EKS managed node group): state, machine type(s), spot or on-demand, nodes now (gcp: the instance groups' target size; aws: the node group's desired size), the autoscaler's bounds, GPUs per node and taints. Exit 12 if the cluster does not exist.

    With a time-to-live (`up --ttl 8h`): a warning on stderr once the cluster is past it, else the time left; in --json a `ttl` object (absent when none is set).

    Examples:

      bioinfra status gcp

      bioinfra status aws --json | jq '.pools[] | {name, nodes}'
    """
    from bioinfra.core.cluster import status as read_status
    from bioinfra.errors import BioinfraError, UnsupportedError

    try:
        loaded, path = _load(ctx, "status", target, config)
    except UnsupportedError:
        # No status from the cloud for this target (onprem), but a time-to-live may still be due.
        print_ttl(_ttl_only(ctx, target, config))
        raise
    ttl = ttl_of(loaded, path)
    try:
        found = read_status(loaded)
    except BioinfraError:
        print_ttl(ttl)  # the reminder matters most when the cluster is in trouble
        raise
    if as_json:
        data = found.to_dict()
        if ttl is not None and not isinstance(ttl, str):
            data["ttl"] = ttl.to_dict()
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print_status(found)
    print_ttl(ttl)


def ttl_of(loaded, path: Optional[Path]):
    """The TtlCheck, None, or the message of a TTL record that cannot be read (never fatal here)."""
    from bioinfra.core.cluster import ttl_check
    from bioinfra.errors import InputError

    try:
        return ttl_check(loaded, path)
    except InputError as exc:
        return f"{exc.message} ({exc.hint})" if exc.hint else exc.message


def _ttl_only(ctx: typer.Context, target: str, config_path: Optional[Path]):
    from bioinfra.config import load_config
    from bioinfra.errors import BioinfraError

    path = config_path or (ctx.obj or {}).get("config_path")
    try:
        return ttl_of(load_config(path, target=target), path)
    except BioinfraError:
        return None  # the config's own problem is not this command's to report


def print_ttl(ttl) -> None:
    """stderr: '! ... past its time-to-live ...' or '✓ ...: 3h left of its time-to-live ...'."""
    if ttl is None:
        return
    if isinstance(ttl, str):
        typer.echo(f"! {ttl}", err=True)
    else:
        typer.echo(f"{'!' if ttl.expired else '✓'} {ttl.message}", err=True)


def print_status(found) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console = Console(width=160, no_color=True, soft_wrap=True)
    mark = "✓" if found.status in ("RUNNING", "ACTIVE") else "…" if found.status in (
        "PROVISIONING", "RECONCILING", "CREATING", "UPDATING") else "✗"
    console.print(f"{mark} cluster {found.name}  {found.status}  {found.target} {found.account} {found.location}",
                  markup=False, highlight=False)
    if found.message:
        console.print(f"  {found.message}", markup=False, highlight=False)
    console.print(f"  endpoint https://{found.endpoint}   version {found.version}", markup=False, highlight=False)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("POOL", "STATUS", "MACHINE", "CAPACITY", "NODES", "MIN-MAX", "GPUS/NODE", "TAINTS"):
        table.add_column(column, no_wrap=True)
    for pool in found.pools:
        bounds = f"{pool.min_nodes}-{pool.max_nodes}" if pool.max_nodes is not None else "fixed"
        table.add_row(pool.name, pool.status, pool.machine_type, "spot" if pool.spot else "on-demand",
                      "?" if pool.nodes is None else str(pool.nodes), bounds,
                      ", ".join(pool.accelerators) or "-", ", ".join(pool.taints) or "-")
    console.print(table)
