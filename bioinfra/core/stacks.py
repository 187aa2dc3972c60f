"""A Terraform stack as data: declared in targets.base, where the target modules read it without
importing core (core imports targets, never the other way round at import time)."""

from bioinfra.targets.base import ADOPT_FILES, Stack

__all__ = ["ADOPT_FILES", "Stack"]
