"""`bioinfra doctor [--target X]`: thin over bioinfra.core.doctor."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from bioinfra.cli.options import Target


def doctor(
    ctx: typer.Context,
    target: Target = None,
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", dir_okay=False,
        help="Config file (default: the one given before the command, $BIOINFRA_CONFIG, then ./bioinfra.yaml).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the checks as a JSON list on stdout (for scripts)."),
    timeout: float = typer.Option(5.0, "--timeout", min=0.5, max=120,
                                  help="Seconds to wait for each answer (API server, registry)."),
) -> None:
    """Check everything a run on the target needs; say how to fix each failed check.

    One line per check on stderr: ✓ passed, ✗ failed (the fix on the next line), ! skipped because an earlier check failed, or a warning (e.g. not checked). Nothing is changed.

    local: the native tools (or the Docker daemon with local.runtime docker), the workspace. aws/gcp: credentials, terraform >= 1.5, the cluster, its kubeconfig (`bioinfra kubeconfig TARGET`), the API server. onprem: onprem.kubeconfig and its context, the API server. Then on every cluster: Argo Workflows served and its controller ready, the storage class, the workspace volume Bound, MinIO's Service and Secret (values never shown), the workflow service account (and its cloud identity); onprem: a Ready, schedulable node carrying each bioinfra.io/pool label the Workflows prefer (a warning: without one, steps run on any node); the tool images in the target's registry.

    Exit 0 when every check passes, 12 when any failed ("not ready"), 3 when bioinfra.yaml is invalid.

    Examples:

      bioinfra doctor --target onprem

      bioinfra doctor --target aws --json | jq '.[] | select(.status == "failed")'
    """
    from bioinfra.config import load_config
    from bioinfra.core.doctor import diagnose, require_ready

    path = config or (ctx.obj or {}).get("config_path")
    if target is not None:
        from bioinfra.targets import get_target

        get_target(target)  # an unknown target is bad input (exit 4) before the config is read
    loaded = load_config(path, target=target)
    checks = diagnose(loaded, path, timeout=timeout)
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in checks], indent=2, ensure_ascii=False))
    print_checks(checks)
    require_ready(checks)


def print_checks(checks) -> None:
    err = sys.stderr
    width = max(len(c.name) for c in checks)
    for check in checks:
        err.write(f"{check.mark} {check.name.ljust(width)}  {check.detail}\n")
        if check.fix and check.status != "ok":
            err.write(f"  {' ' * width}  → {check.fix}\n")
    err.flush()
