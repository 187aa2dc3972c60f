"""Render a built-in pipeline's Workflow through the engine, below the CLI, for the render/static
tests (golden files, schema, no code injection, defects).

`text` renders one mode with the Workflow parameters given (name -> text, as the engine's prepare
makes them from checked inputs: workspace-relative paths, names, numbers), labels from the inputs
that declare one, staging on when its parameter is set: the same calls `bioinfra render` and `run`
make (bioinfra.engine.render.render_pipeline, then dump). `prepared` goes through engine.prepare
itself, for inputs read in place (s3:// / gs://) and the fan-out width, with `StagingBackend`:
`render`'s backend plus a stage-out destination and a stand-in for the object stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Optional

from bioinfra.cli.render_cmd import RenderBackend
from bioinfra.config import Config
from bioinfra.engine.engine import Prepared, RunOptions, prepare
from bioinfra.engine.render import dump, render_pipeline
from bioinfra.engine.spec import ModeSpec, PipelineSpec, builtin_root, load_spec

STAGE_OUT = {"aws": ":s3,provider=AWS,env_auth=true:lab-seq-results/runs/{run_id}",
             "gcp": ":gcs,env_auth=true,bucket_policy_only=true:lab-seq-results/runs/{run_id}"}


@cache
def spec(name: str) -> PipelineSpec:
    return load_spec(builtin_root() / name, builtin=True)


def mode_of(name: str, mode: Optional[str] = None) -> ModeSpec:
    s = spec(name)
    return next(m for m in s.modes if m.name == mode) if mode else s.mode_for(set())


def workflow(name: str, config: Config, target: str, parameters: dict[str, str], *, mode: Optional[str] = None,
             values: Optional[dict[str, Any]] = None, items: int = 1, parallelism: Optional[int] = None
             ) -> dict[str, Any]:
    """The mode's Workflow, parsed and linted. `parameters`: Workflow parameter -> text (an input's
    parameter left out is "", as for an optional input not given); `values`: int/bool inputs (also
    set on their parameters); `items`: what one pod of a fan-out step is given."""
    s, m = spec(name), mode_of(name, mode)
    values = dict(values or {})
    params = {s.input(n).param: "" for n in m.inputs if s.input(n).param}
    for n, v in values.items():
        if s.input(n).param and v is not None:
            params[s.input(n).param] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    params.update({"run-dir": "runs/preview", "stage-in": "", "stage-out": ""})
    params.update(parameters)
    labels = {s.input(n).label: params[s.input(n).param] for n in m.inputs
              if s.input(n).label and params.get(s.input(n).param)}
    return render_pipeline(s, m, config, target, values=values, parameters=params, labels=labels,
                           stage_in=bool(params["stage-in"]), stage_out=bool(params["stage-out"]),
                           items=dict.fromkeys(m.items_per_pod, items) or None, parallelism=parallelism,
                           extra={"align_threads": config.pipeline.align_threads})


def text(name: str, config: Config, target: str, parameters: dict[str, str], **kwargs: Any) -> str:
    """The Workflow as `bioinfra render` prints it."""
    return dump(workflow(name, config, target, parameters, **kwargs), spec(name), mode_of(name, kwargs.get("mode")))


@dataclass
class StagingBackend(RenderBackend):
    """`render`'s backend with a cluster run's stage-out destination; every object "exists" (the
    calls are recorded: a STAND-IN for S3 and GCS)."""

    checked: list[str] = field(default_factory=list)

    def stage_out(self, run_id: str) -> tuple[str, str]:
        dest = STAGE_OUT.get(self.target, "").format(run_id=run_id)
        return dest, dest

    def check_remote(self, ref: Any, role: str) -> None:
        self.checked.append(ref.url)


def prepared(name: str, config: Config, target: str, given: dict[str, Any], *, run_id: str = "preview",
             backend: Optional[RenderBackend] = None, max_parallel: Optional[int] = None,
             check_files: bool = False) -> Prepared:
    """engine.prepare as `render` calls it (no output folder, a sheet's shape only), on `backend`
    (default: StagingBackend, so s3:// / gs:// inputs are staged in and the results staged out)."""
    backend = backend or StagingBackend(target)
    return prepare(config, spec(name), given, RunOptions(target=target, max_parallel=max_parallel), backend,
                   say=lambda _m: None, vet=False, run_id=run_id, check_files=check_files)
