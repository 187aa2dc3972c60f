"""The only module that talks to Docker (through the Docker SDK for Python, imported lazily)."""

from __future__ import annotations

from typing import Any

from bioinfra.errors import ToolMissingError, UnsupportedError


def sdk() -> Any:
    try:
        import docker
    except ImportError:
        raise ToolMissingError(
            "the Docker SDK for Python is not installed", hint="pip install 'bioinfra[docker]'"
        ) from None
    return docker


def client(timeout: int | None = None) -> Any:
    """A client for the local daemon, or an error that says how to get one.

    The daemon is first pinged with a short timeout, so a hung daemon fails fast; the client
    returned has `timeout` (default none: a step may print nothing for an hour while its log
    is followed).
    """
    docker = sdk()
    try:
        docker.from_env(timeout=5).ping()
        c = docker.from_env(timeout=timeout)
    except docker.errors.DockerException as exc:
        raise UnsupportedError(
            f"no Docker daemon answers ({str(exc).splitlines()[0][:160]})",
            hint="start Docker (e.g. `dockerd &` as root), or use --runtime native",
        ) from None
    return c


def daemon_answers() -> bool:
    try:
        client()
    except (ToolMissingError, UnsupportedError):
        return False
    return True
