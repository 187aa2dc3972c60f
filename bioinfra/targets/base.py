"""Pieces more than one target shares (kept apart from targets/__init__ so target modules can import them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bioinfra.config import Config


class RegistryPathTarget:
    """Targets whose images live under one registry path: a reference is theirs if it starts with it."""

    def registry(self, config: Config) -> str:
        raise NotImplementedError

    def serves(self, config: Config, ref: str) -> bool:
        return ref.startswith(self.registry(config).rstrip("/") + "/")
