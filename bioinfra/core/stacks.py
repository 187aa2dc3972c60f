"""A Terraform stack as data: its name, its root template, and the stacks whose outputs it reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stack:
    name: str
    template: str  # under terraform/, rendered to <workdir>/<name>/main.tf
    upstream: tuple[str, ...] = ()
