"""`bioinfra up local` / `bioinfra destroy local`.

`up` prepares this machine: it checks Docker (or, without it, the native tools), starts a local
image registry when asked, and builds the images. Everything it makes is written to
`<workspace>/local-target.json` as it is made, so `destroy` removes exactly that and nothing else,
and is safe to re-run (also after an interrupted `up`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bioinfra.errors import ToolMissingError, UnsupportedError
from bioinfra.files import write_json_atomic

STATE_FILE = "local-target.json"


@dataclass
class UpResult:
    runtime: str
    registry: Optional[str] = None
    images: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _state_path(workspace: Path) -> Path:
    return workspace / STATE_FILE


def read_state(workspace: Path) -> dict[str, Any]:
    try:
        return json.loads(_state_path(workspace).read_text())
    except (OSError, ValueError):
        return {}


def _save(workspace: Path, state: dict[str, Any]) -> None:
    write_json_atomic(_state_path(workspace), state)
    os.chmod(_state_path(workspace), 0o600)


def start_registry(workspace: Path, port: int) -> dict[str, Any]:
    """Debian's docker-registry (distribution) on 127.0.0.1:PORT, storage in the workspace."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise ToolMissingError(
            "--registry needs the `docker-registry` program", hint="apt-get install -y docker-registry"
        )
    root = workspace / "registry"
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    # Loopback only and no auth: a registry for this machine, not the network.
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = open(root / "registry.log", "ab")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v2/"
    for _ in range(100):
        if proc.poll() is not None:
            raise UnsupportedError(f"the registry exited at start; see {root / 'registry.log'}")
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.terminate()
        raise UnsupportedError(f"the registry did not answer on 127.0.0.1:{port}; see {root / 'registry.log'}")
    return {"pid": proc.pid, "address": f"127.0.0.1:{port}", "binary": binary, "config": str(config)}


def up_local(
    workspace: Path,
    *,
    registry_port: Optional[int],
    build: Callable[[Any, Callable[[str, str, bool], None]], None],
    say: Callable[[str], None],
) -> UpResult:
    """`build(client, record)` builds the images, calling record(name, ref, made_now) after each."""
    from bioinfra.adaptors.docker import client as docker_client

    state = read_state(workspace)
    try:
        client = docker_client()
    except (UnsupportedError, ToolMissingError) as exc:
        if registry_port is not None:
            raise
        from bioinfra.core.tools import require_tools

        tools = require_tools()  # no Docker: the native runtime must have its tools
        say(f"no Docker ({exc.message}); runs will use the native runtime: {', '.join(tools.found)}")
        return UpResult("native", notes=tools.notes)
    say("Docker answers; runs will use the docker runtime")
    result = UpResult("docker")
    if registry_port is not None:
        running = state.get("registry")
        if running and _is_our_registry(running):
            say(f"registry already running on {running['address']} (pid {running['pid']})")
        else:
            state["registry"] = start_registry(workspace, registry_port)
            _save(workspace, state)
            say(f"registry started on {state['registry']['address']} (pid {state['registry']['pid']})")
        result.registry = state["registry"]["address"]

    def record(name: str, ref: str, made_now: bool) -> None:
        # Saved after each image, so an interrupted `up` leaves a record `destroy` can act on.
        # Only images this command built are ours to remove; one that already existed is not.
        result.images[name] = ref
        if made_now:
            state.setdefault("images", {})[ref] = name
            _save(workspace, state)

    build(client, record)
    return result


def _is_our_registry(entry: dict[str, Any]) -> bool:
    """The pid is alive and is the registry we started (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{entry['pid']}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return entry["config"].encode() in cmdline


def destroy_local(workspace: Path, *, say: Callable[[str], None]) -> list[str]:
    """Remove what `up local` recorded; returns what was removed (empty: nothing to do)."""
    state = read_state(workspace)
    removed: list[str] = []
    registry = state.get("registry")
    if registry:
        if _is_our_registry(registry):
            os.kill(registry["pid"], signal.SIGTERM)
            for _ in range(100):
                if not _is_our_registry(registry):
                    break
                time.sleep(0.1)
            removed.append(f"registry on {registry['address']} (pid {registry['pid']})")
        state.pop("registry")
        _save(workspace, state)
    images = state.get("images") or {}
    if images:
        from bioinfra.adaptors.docker import client as docker_client
        from bioinfra.adaptors.docker import sdk

        client = docker_client()
        for ref in sorted(images):
            try:
                client.images.remove(ref)
                removed.append(f"image {ref}")
            except sdk().errors.ImageNotFound:
                pass
            del state["images"][ref]
            _save(workspace, state)
    for line in removed:
        say(f"removed {line}")
    _state_path(workspace).unlink(missing_ok=True)
    return removed
