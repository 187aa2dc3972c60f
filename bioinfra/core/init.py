"""`bioinfra init`: write a commented bioinfra.yaml for a target, validated before it is written."""

from __future__ import annotations

from pathlib import Path

import yaml

from bioinfra.config import DEFAULT_POOLS, parse_config
from bioinfra.errors import InputError
from bioinfra.render import render

# The template's machine types: the target's default pools (one source: what a config that names no
# pool gets is what `init` writes), and a GPU machine for the commented-out GPU pool.
GPU_MACHINE_TYPES = {"gcp": "n1-standard-8", "aws": "g4dn.xlarge"}
MACHINE_TYPES = {
    target: {**{pool: spec["machine_type"] for pool, spec in pools.items()}, "gpu": GPU_MACHINE_TYPES[target]}
    for target, pools in DEFAULT_POOLS.items()
}
GPU_TYPES = {"gcp": "nvidia-tesla-t4", "aws": "nvidia-tesla-t4"}


def config_text(target: str, name: str) -> str:
    text = render(
        "config/bioinfra.yaml.j2",
        target=target,
        name=name,
        machine_types=MACHINE_TYPES.get(target, MACHINE_TYPES["gcp"]),
        gpu_type=GPU_TYPES.get(target, "nvidia-tesla-t4"),
    )
    parse_config(yaml.safe_load(text), source=f"the {target} template")  # a template bug never reaches a user
    return text


def write_config(path: Path, target: str, name: str, force: bool = False) -> Path:
    if path.exists() and not force:
        raise InputError(f"{path} already exists; not overwriting it", hint="use --force to replace it")
    text = config_text(target, name)
    path.write_text(text)
    return path
