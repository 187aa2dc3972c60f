"""One module per target behind one small interface.

Each target answers the same few questions (declared once here, in `Target`); adding a cloud means
adding a module and an entry in TARGETS. Only `local` can run pipelines so far; the cluster
targets render the same Workflow and gain `up`/`run` in issues #4-#6.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from bioinfra.errors import InputError
from bioinfra.targets.aws import AwsTarget

if TYPE_CHECKING:
    from bioinfra.config import Config


class Target(Protocol):
    name: str
    runs_locally: bool

    def registry(self, config: Config) -> str:
        """Where this target's tool images live (<host>/<path>, no tag)."""
        ...

    def serves(self, config: Config, ref: str) -> bool:
        """Whether an image reference lives in this target's registry (so its pods can pull it)."""
        ...


class _RegistryPathTarget:
    """Targets whose images live under one registry path: a reference is theirs if it starts with it."""

    def registry(self, config: Config) -> str:
        raise NotImplementedError

    def serves(self, config: Config, ref: str) -> bool:
        return ref.startswith(self.registry(config).rstrip("/") + "/")


class LocalTarget(_RegistryPathTarget):
    name = "local"
    runs_locally = True

    def registry(self, config: Config) -> str:
        # 127.0.0.1, not localhost: `up local --registry` listens on IPv4 loopback only.
        return config.registry.url or "127.0.0.1:5000/bioinfra"


class OnpremTarget(_RegistryPathTarget):
    name = "onprem"
    runs_locally = False

    def registry(self, config: Config) -> str:
        return config.registry.url or "localhost:5000/bioinfra"


class GcpTarget(_RegistryPathTarget):
    name = "gcp"
    runs_locally = False

    def registry(self, config: Config) -> str:
        # Ref https://cloud.google.com/artifact-registry/docs/docker/names
        return config.registry.url or f"{config.region}-docker.pkg.dev/{config.project}/{config.name}"


TARGETS: dict[str, Target] = {t.name: t for t in (LocalTarget(), OnpremTarget(), GcpTarget(), AwsTarget())}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise InputError(f"unknown target '{name}'; choose one of: {', '.join(TARGETS)}") from None
