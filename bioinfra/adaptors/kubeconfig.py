"""Kubeconfig files and kubectl notation, the same for every target.

The target adaptors (gcp.py, aws.py) read their cloud's API and decide the names and the user entry
(an exec plugin or a token); this module builds the one-cluster kubeconfig from them, merges it into
an existing file (entries of the same name replaced, others kept) and writes the file atomically,
readable by its owner only (0600). No cloud SDK here: only PyYAML.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal, Optional

from bioinfra.errors import InputError

AUTH_MODES = ("auto", "plugin", "token")
EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"

# The clouds' taint effects (GKE and EKS spell them alike) in the form kubectl prints.
TAINT_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}


def taint(key: str, value: Optional[str], effect: str) -> str:
    """kubectl form of a taint: key=value:Effect (key:Effect without a value)."""
    kind = TAINT_EFFECTS.get(effect, effect)
    return f"{key}={value}:{kind}" if value else f"{key}:{kind}"


def resolve_auth(auth: str, plugin: str) -> Literal["plugin", "token"]:
    """auto: the exec plugin if `plugin` (a command) is on PATH, else a token stored in the file."""
    if auth not in AUTH_MODES:
        raise InputError(f"--auth must be auto, plugin or token (got {auth!r})")
    if auth == "auto":
        return "plugin" if shutil.which(plugin) else "token"
    return auth  # type: ignore[return-value]


def single(name: str, server: str, ca_data: str, user: dict[str, Any]) -> dict[str, Any]:
    """A kubeconfig with one cluster, context and user, all called `name`, and that context current."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "users": [{"name": name, "user": user}],
        "current-context": name,
        "preferences": {},
    }


def merge(existing: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Entries of the same name are replaced, others kept; the new context becomes current."""
    merged = dict(existing)
    for key in ("clusters", "contexts", "users"):
        names = {entry["name"] for entry in new[key]}
        kept = [e for e in (existing.get(key) or []) if not (isinstance(e, dict) and e.get("name") in names)]
        merged[key] = kept + new[key]
    merged["current-context"] = new["current-context"]
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    merged.setdefault("preferences", {})
    return merged


def read(path: Path) -> Optional[dict[str, Any]]:
    """The kubeconfig at `path`; None if there is none (or it is empty); InputError if the file is
    something else, so it is never overwritten."""
    import yaml

    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path} exists but is not a readable kubeconfig ({type(exc).__name__}); not overwritten",
                         hint="choose another file with --output, or move that one away") from None
    if data is None:
        return None
    if not isinstance(data, dict) or not (data.get("kind") == "Config"
                                          or any(k in data for k in ("clusters", "contexts", "users"))):
        raise InputError(f"{path} exists and is not a kubeconfig; not overwritten",
                         hint="choose another file with --output, or move that one away")
    return data


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with a file only its owner can read (created 0600, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(path: Path, new: dict[str, Any]) -> Path:
    """Write `new` to `path`, merged into the kubeconfig already there (a symlink's target is
    written); returns the file written."""
    import yaml

    path = Path(path).expanduser()
    if path.is_symlink():
        path = path.resolve()
    existing = read(path)
    merged = merge(existing, new) if existing else new
    write_private(path, yaml.safe_dump(merged, sort_keys=False))
    return path
