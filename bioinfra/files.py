"""Small file helpers shared by the executor and the run: checksums and atomic JSON writes."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so a reader (or a resume after kill -9) never sees half a file.

    A write that fails (a full disk: ENOSPC) leaves no partial `.tmp` behind, and the previous
    version of the file, if any, in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def is_disk_full(exc: BaseException) -> bool:
    """An OSError that means the filesystem has no room (ENOSPC) or no quota left (EDQUOT)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def read_json_or_empty(path: Path) -> dict[str, Any]:
    """A JSON file a step may or may not have written (e.g. gather.json): {} when absent or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a step's log, for the error message; "" if there is no log."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def packaged_folder(in_wheel: str, in_repo: str) -> Path:
    """A top-level folder of the repository (templates/, images/), also found inside a wheel,
    where pyproject.toml copies it to bioinfra/<in_wheel>."""
    package = Path(__file__).resolve().parent
    for candidate in (package / in_wheel, package.parent / in_repo):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bioinfra's {in_repo}/ folder is missing from this installation")
