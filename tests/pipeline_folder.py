"""Render and run a built-in pipeline folder (templates/pipelines/NAME) from a test, below the CLI.

`workflow` renders through the engine (bioinfra.engine.render.render_pipeline: Jinja from config-side
variables only, then the run's parameters set on the parsed Workflow, then linted as Argo v3.7 admits
it); `run_native` runs the result with bioinfra's local executor and the native runtime over a
workspace laid out as `bioinfra run` lays it out, so a test can look inside the workspace too.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bioinfra.config import Config
from bioinfra.engine.render import render_pipeline
from bioinfra.engine.spec import PipelineSpec, builtin_root, load_spec
from bioinfra.executor.runner import LocalExecutor, RunResult
from bioinfra.executor.runtime import NativeRuntime
from bioinfra.executor.workflow import parse_workflow


def builtin(name: str) -> PipelineSpec:
    return load_spec(builtin_root() / name, builtin=True)


def workflow(spec: PipelineSpec, config: Config, target: str, parameters: dict[str, str] | None = None, *,
             values: dict[str, Any] | None = None, stage_in: bool = False, stage_out: bool = False) -> dict[str, Any]:
    """The default mode's Workflow, parsed, with `parameters` set (the others keep the template's value)."""
    return render_pipeline(spec, spec.mode_for(set()), config, target, values=values or {},
                           parameters=parameters or {}, labels={}, stage_in=stage_in, stage_out=stage_out)


def link(workspace: Path, rel: str, source: Path) -> str:
    path = workspace / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(source.resolve())
    return rel


def copy(workspace: Path, rel: str, source: Path) -> str:
    path = workspace / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, path)
    return rel


def run_native(workflow: dict[str, Any], workspace: Path, output: Path, run_dir: str,
               *, max_cpus: float = 2) -> RunResult:
    """Run on this machine: the run folder `run_dir` (workspace-relative) is a link to `output`."""
    output.mkdir(parents=True, exist_ok=True)
    (workspace / run_dir).parent.mkdir(parents=True, exist_ok=True)
    (workspace / run_dir).symlink_to(output.resolve())
    executor = LocalExecutor(
        parse_workflow(workflow),
        volume_roots={"workspace": workspace},
        state_dir=output / ".bioinfra",
        log_dir=output / "logs",
        runtime=NativeRuntime(),
        max_cpus=max_cpus,
    )
    return executor.run()
