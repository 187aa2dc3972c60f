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


def docker_login(client: Any, login: Any) -> None:
    """`docker login` through the daemon. The password goes to the daemon only: it is never
    printed, logged or put in an error message (the daemon's error text is passed on as is)."""
    docker = sdk()
    try:
        client.login(username=login.username, password=login.password, registry=login.registry, reauth=True)
    except docker.errors.APIError as exc:
        detail = str(getattr(exc, "explanation", None) or exc).replace(login.password, "***")
        raise UnsupportedError(
            f"docker login to {login.registry} failed: {detail[:300]}",
            hint="check your cloud credentials and that the registry is reachable",
        ) from None
