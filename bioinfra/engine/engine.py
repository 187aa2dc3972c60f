"""One run engine for every pipeline and every target: Pipeline x Backend.

A pipeline (a folder, bioinfra.engine.spec) says what to check, what parameters and files its
Workflow gets, and how its outcome is summarised. A backend runs the rendered Workflow: the local
executor (bioinfra.engine.local: native or docker) or Argo on a cluster (bioinfra.engine.cluster:
submit, follow, collect logs and results). The engine owns what every run shares: the output-folder
check, the manifest, the failure summary and --resume. (Pattern: SkyPilot's sky/execution.py
`execute` over the sky/backends/backend.py interface.)

    check (inputs, output folder)  ->  parameters  ->  what to stage  ->  render + lint
        ->  backend.run  ->  manifest  ->  summary (or the failure, named)
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol

from bioinfra import __version__
from bioinfra.config import Config
from bioinfra.engine import inputs as inputs_mod
from bioinfra.engine.inputs import CheckedInput, StagedFile
from bioinfra.engine.render import render_pipeline
from bioinfra.engine.spec import ModeSpec, OutputsSpec, PipelineSpec
from bioinfra.errors import InputError, StepFailedError
from bioinfra.executor.runner import FAILED, RunResult, TaskState
from bioinfra.files import log_tail, read_json_or_empty

Say = Callable[[str], None]


@dataclass
class RunOptions:
    """What `bioinfra run` asks besides the pipeline's own inputs."""

    target: str = "local"
    output: Optional[Path] = None
    resume: bool = False
    max_cpus: Optional[int] = None
    runtime: Optional[str] = None  # local: native | docker | auto
    max_parallel: Optional[int] = None
    detach: bool = False


@dataclass
class Prepared:
    """A run, checked and rendered, before anything is created."""

    spec: PipelineSpec
    mode: ModeSpec
    run_id: str
    output: Path
    record: Optional[dict[str, Any]]  # the run being resumed
    checked: dict[str, CheckedInput]
    parameters: dict[str, str]
    staged: list[StagedFile]
    workflow: dict[str, Any]
    values: dict[str, Any]
    fan_out: dict[str, int] = field(default_factory=dict)

    @property
    def outputs(self) -> OutputsSpec:
        return self.spec.outputs_of(self.mode)

    @property
    def run_dir(self) -> str:
        return f"runs/{self.run_id}"

    def run_record(self, target: str, **extra: Any) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "pipeline": self.spec.name, "pipeline_version": self.spec.version,
            "pipeline_source": self.spec.source, "mode": self.mode.name, "target": target,
            "inputs": {n: c.record for n, c in self.checked.items()},
            "fingerprints": inputs_mod.fingerprints(self.checked),
            "status": "running",
            "started": (self.record or {}).get("started", dt.datetime.now(dt.timezone.utc).isoformat()),
            **extra,
        }


@dataclass
class Outcome:
    run_id: str
    output: Path
    phase: str  # Succeeded | Failed | Submitted (--detach)
    tasks: dict[str, TaskState]
    manifest: Optional[Path]
    summary: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report: Optional[Path] = None
    results: Optional[Path] = None
    files: dict[str, Path] = field(default_factory=dict)
    results_url: str = ""
    result: Optional[RunResult] = None


class Backend(Protocol):
    """Where a rendered Workflow runs."""

    target: str

    def preflight(self, spec: PipelineSpec, say: Say) -> None:
        """Checks before inputs are read (runtime, tools, images; the cluster's reachability)."""

    def images(self) -> Optional[dict[str, str]]:
        """Image references the Workflow must name (None: the target's registry)."""

    def stage_out(self, run_id: str) -> tuple[str, str]:
        """(rclone destination for the stage-out step or "", the URL users see)."""

    def check_remote(self, ref: inputs_mod.RemoteInput, role: str) -> None:
        """An s3:// / gs:// input exists and is readable."""

    def max_cpus(self, options: RunOptions) -> Optional[int]:
        """The CPU budget threads are capped at (local), or None."""

    def run(self, prepared: Prepared, options: RunOptions, *, say: Say, reporter: Any) -> Outcome:
        """Stage, run (or submit), collect; write the run record and manifest."""

    def dry_run(self, prepared: Prepared, options: RunOptions) -> list[str]:
        """What run would do, for --dry-run."""


# -- the pipeline's side -----------------------------------------------------------------------------


def fan_out(spec: PipelineSpec, mode: ModeSpec, checked: dict[str, CheckedInput], values: dict[str, Any]
            ) -> dict[str, int]:
    """How a fan-out run is cut: `items` (samples / image sets), `per_pod` (the int input the
    mode's items_per_pod names, else auto: at most MAX_CHUNKS pods), `pods` per fan-out step.
    Refuses, before anything is made, a run wider than MAX_FAN_OUT_PODS: Argo keeps a run's status,
    a few nodes per pod, in one Kubernetes object of at most 1 MiB (bioinfra.pipelines)."""
    from bioinfra.pipelines import MAX_CHUNKS, MAX_FAN_OUT_PODS

    if not mode.items_per_pod:
        return {}
    holder = next((c for c in checked.values() if c.items), None)
    if holder is None:
        return {}
    items = holder.items or 0
    size_input = next(iter(set(mode.items_per_pod.values())))
    asked = values.get(size_input)
    per_pod = asked or max(1, math.ceil(items / MAX_CHUNKS))
    pods = math.ceil(items / per_pod)
    stages = len(mode.items_per_pod)
    most = MAX_FAN_OUT_PODS // stages
    if pods > most:
        flag = spec.input(size_input).option
        noun = "sample" if holder.spec.type == "sample_sheet" else "image set"
        raise InputError(
            f"{spec.name}: {items:,} {noun}s in groups of {per_pod} make {pods:,} pods per step; one run may have "
            f"at most {most:,}" + (f" ({stages} fan-out steps)" if stages > 1 else ""),
            hint=f"use {flag} {math.ceil(items / most)} or more, or split the input into several runs. Why: Argo "
                 "keeps a run's status, a few nodes per pod, in one Kubernetes object of at most 1 MiB "
                 "(docs/pipelines/write-your-own.md#fan-out)")
    return {"items": items, "per_pod": per_pod, "pods": pods, "per_pod_in_pod": min(per_pod, items)}


def prepare(config: Config, spec: PipelineSpec, given: dict[str, Any], options: RunOptions, backend: Backend, *,
            say: Say, progress: inputs_mod.Progress = None, vet: bool = True, run_id: Optional[str] = None,
            check_files: bool = True) -> Prepared:
    """check -> parameters -> what to stage -> render (and lint): everything `run` does before it
    creates anything, shared with --dry-run. Without `vet` (`render`) no output folder is looked at
    and the run id is `run_id` (else a new one); without `check_files` a sample sheet's FASTQs are
    not read (`render` reads the sheet's shape only, fast for 100,000 rows)."""
    from bioinfra.engine.rundir import new_run_id, vet_output

    mode = spec.mode_for({k for k, v in given.items() if v is not None})
    backend.preflight(spec, say)
    if vet:
        output, run_id, record = vet_output(spec.name, options.output, options.resume, mode.name)
        from bioinfra.targets import get_target

        if not get_target(options.target).runs_locally:
            output, run_id, record = _cluster_output(spec, options, output, run_id)
    else:
        run_id = run_id or new_run_id(pipeline=spec.name)
        output, record = (options.output or Path("results") / run_id), None
    values = inputs_mod.resolve_values(spec, mode, given)
    checked = inputs_mod.check_inputs(spec, mode, values, options.target, progress, backend.check_remote,
                                      check_files=check_files)
    if record is not None:
        _check_resume_matches(record, checked)
    values = {n: c.value for n, c in checked.items()}
    shape = fan_out(spec, mode, checked, values)
    run_dir = f"runs/{run_id}"
    # A plain Workflow file keeps the values it declares for the parameters not given (-p).
    parameters = {c.spec.param: c.parameter.replace("{run_dir}", run_dir) for c in checked.values()
                  if c.spec.param and not (spec.plain and c.value is None)}
    staged = inputs_mod.staged_files(checked)
    stage_in = "\n".join(f"{f.remote.rclone()}\t{f.workspace_path}" for f in staged if f.remote is not None)
    stage_out, _url = backend.stage_out(run_id)
    if not spec.plain:  # a plain Workflow file declares only its own parameters
        parameters.update({"run-dir": run_dir, "stage-in": stage_in, "stage-out": stage_out})
    cpus = backend.max_cpus(options)
    align_threads = min(config.pipeline.align_threads, cpus) if cpus else config.pipeline.align_threads
    labels = {c.spec.label: str(c.value) for c in checked.values() if c.spec.label and c.value is not None}
    items = {step: shape.get("per_pod_in_pod", 1) for step in mode.items_per_pod} if shape else None
    workflow = render_pipeline(
        spec, mode, config, options.target, values=values, parameters=parameters, labels=labels,
        images=backend.images(), stage_in=bool(stage_in), stage_out=bool(stage_out), items=items,
        parallelism=options.max_parallel, extra={"align_threads": align_threads, "fan_out": shape})
    return Prepared(spec, mode, run_id, output, record, checked, parameters, staged, workflow, values, shape)


def _cluster_output(spec: PipelineSpec, options: RunOptions, output: Path, run_id: str
                    ) -> tuple[Path, str, None]:
    if options.resume:
        raise InputError("--resume applies to local runs only",
                         hint="on a cluster, Argo retries failed steps itself (pipeline.retries)")
    return output, run_id, None


def _check_resume_matches(record: dict[str, Any], checked: dict[str, CheckedInput]) -> None:
    before = record.get("fingerprints") or {}
    now = inputs_mod.fingerprints(checked)
    changed = [checked[n].spec.option for n in now if n in before and before[n] != now[n]]
    if changed:
        raise InputError(f"--resume: {', '.join(changed)} differ(s) from what run {record['run_id']} started with",
                         hint="resume with the same inputs, or start a new run without --resume")


# -- outcome: summary, manifest, failure ----------------------------------------------------------

_FIELD_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def format_line(template: str, data: dict[str, Any]) -> Optional[str]:
    """A summary line with `{key}` replaced from the pipeline's summary file; None when a key is
    missing or empty (the line is left out). Only plain names: no attribute or index access."""
    missing = [k for k in _FIELD_RE.findall(template) if data.get(k) in (None, "", [])]
    if missing:
        return None

    def value(match: re.Match[str]) -> str:
        v = data[match.group(1)]
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    return _FIELD_RE.sub(value, template)


def summary_lines(outputs: OutputsSpec, output: Path, *, failed: bool = False) -> tuple[list[str], dict[str, Any]]:
    data = read_json_or_empty(output / outputs.summary_file) if outputs.summary_file else {}
    if not isinstance(data, dict):
        data = {}
    table = items_table(outputs, output)
    if outputs.items is not None and table:
        ok = [r for r in table if r.get(outputs.items.status) == outputs.items.ok]
        data.setdefault("items_ok", len(ok))
        data.setdefault("items", len(table))
    templates = outputs.failure if failed else outputs.summary
    if outputs.items is not None and not failed and not templates:
        templates = [f"{{items_ok}} {outputs.items.noun}s complete"]
    lines = [line for line in (format_line(t, data) for t in templates) if line]
    return lines, data


def step_value(tasks: dict[str, TaskState], ref: str) -> Optional[str]:
    """"STEP.PARAMETER" of a finished step (or of its template), "STEP" -> its phase."""
    step, _, param = ref.partition(".")
    states = [t for name, t in tasks.items() if name == step] or [t for t in tasks.values() if t.template == step]
    for state in states:
        if not param:
            return state.phase
        if param in state.output_parameters:
            return state.output_parameters[param]
    return None


def notes_for(outputs: OutputsSpec, tasks: dict[str, TaskState]) -> list[str]:
    notes = []
    for condition, note in outputs.notes.items():
        ref, _, want = condition.partition("=")
        if step_value(tasks, ref) == want:
            notes.append(note)
    return notes


def items_table(outputs: OutputsSpec, output: Path) -> list[dict[str, str]]:
    if outputs.items is None:
        return []
    from bioinfra.engine.sheets import read_samples_tsv

    return read_samples_tsv(output / outputs.items.file)


def tool_versions(outputs: OutputsSpec, tasks: dict[str, TaskState]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for state in tasks.values():
        if "tool-version" in state.output_parameters:
            versions[outputs.versions.get(state.template, state.template)] = state.output_parameters["tool-version"]
    return dict(sorted(versions.items()))


def manifest_body(prepared: Prepared, tasks: dict[str, TaskState], output: Path, *, target: str,
                  started: str, finished: Optional[str] = None) -> dict[str, Any]:
    """The engine's one manifest: what ran, on what, from which inputs, with what outcome. Backends
    add their own keys (runtime and tool paths or images locally; cluster, Workflow and phase)."""
    outputs = prepared.outputs
    summary, data = summary_lines(outputs, output)
    body: dict[str, Any] = {
        "bioinfra_version": __version__,
        "run_id": prepared.run_id,
        "pipeline": prepared.spec.name,
        "pipeline_version": prepared.spec.version,
        "pipeline_source": prepared.spec.source,
        "mode": prepared.mode.name,
        "target": target,
        "started": started,
        "finished": finished or dt.datetime.now(dt.timezone.utc).isoformat(),
        "inputs": {n: c.record for n, c in prepared.checked.items() if c.value is not None and c.spec.is_path},
        "values": {n: c.value for n, c in prepared.checked.items() if c.spec.type in ("string", "int", "bool")},
        "tool_versions": tool_versions(outputs, tasks),
        "notes": notes_for(outputs, tasks),
    }
    for key, ref in outputs.record.items():
        body[key] = step_value(tasks, ref)
    if prepared.spec.plain:  # a plain Workflow file: every parameter as it ran, by its Argo name
        body["parameters"] = {p.get("name"): p.get("value") for p in
                              prepared.workflow["spec"].get("arguments", {}).get("parameters", [])}
    if prepared.fan_out:
        body["fan_out"] = prepared.fan_out
    if outputs.items is not None:
        body["items"] = items_table(outputs, output)
    if outputs.summary_file or summary:
        body["summary"] = {"lines": summary, "data": data}
    return body


def failure(prepared: Prepared, output: Path, tasks: dict[str, TaskState], *, where: str = "",
            hint: str = "", logs: Optional[dict[str, Path]] = None) -> StepFailedError:
    """The engine's one failure summary: the step that failed and its log; with a per-item table
    (samples.tsv), the items that failed, the others kept; the pipeline's summary lines (e.g. what
    the gather step could still count)."""
    outputs = prepared.outputs
    run_id = prepared.run_id
    failed = [t for t in tasks.values() if t.phase in (FAILED, "Error") and not t.children] or \
        [t for t in tasks.values() if t.phase in (FAILED, "Error")]
    step = failed[0] if failed else None
    log = (logs or {}).get(step.name, step.log) if step else output / "logs"
    error = StepFailedError(step.name if step else "?", step.exit_code if step else None, str(log),
                            tail=log_tail(Path(log), 40) if step else "")
    ended = f"failed{where}"
    table = items_table(outputs, output)
    spec_items = outputs.items
    bad = [r for r in table if spec_items and r.get(spec_items.status) != spec_items.ok]
    if spec_items and bad:
        shown = "; ".join(f"{r.get(spec_items.key)} ({r.get(spec_items.stage)}: {r.get(spec_items.reason)})"
                          for r in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        report = f" and in the report ({output / outputs.report})" if outputs.report else ""
        error.message = (f"run {run_id} {ended}: {len(bad)} of {len(table)} {spec_items.noun}(s) failed: {shown}{more}; "
                         f"the others are complete{report}; per-{spec_items.noun} status: "
                         f"{output / spec_items.file}")
    else:
        failed_names = ", ".join(f"'{t.name}'" for t in failed[:5]) or "?"
        why = f" ({step.message})" if step is not None and step.message else ""
        error.message = f"run {run_id} {ended}: step {failed_names} failed{why}; log: {log}"
        summary, _data = summary_lines(outputs, output, failed=True)
        if summary:
            error.message += "; " + "; ".join(summary)
    error.hint = hint
    return error


# -- the one entry point --------------------------------------------------------------------------


def execute(config: Config, spec: PipelineSpec, given: dict[str, Any], options: RunOptions, backend: Backend, *,
            say: Say, reporter: Any, progress: inputs_mod.Progress = None) -> Outcome:
    """Run a pipeline on a backend: prepare (nothing created until it passes), then backend.run."""
    prepared = prepare(config, spec, given, options, backend, say=say, progress=progress)
    shape = prepared.fan_out
    lines = []
    for c in prepared.checked.values():
        if c.summary:
            # The input that sets the fan-out says how it is cut, e.g. "4 batch(es) of up to 4".
            cut = f", {shape['pods']:,} batch(es) of up to {shape['per_pod']}" if shape and c.items else ""
            lines.append(c.summary + cut)
    say("inputs ok: " + "; ".join(lines) if lines else "inputs ok")
    return backend.run(prepared, options, say=say, reporter=reporter)


def dry_run(config: Config, spec: PipelineSpec, given: dict[str, Any], options: RunOptions, backend: Backend,
            ) -> list[str]:
    prepared = prepare(config, spec, given, options, backend, say=lambda _m: None)
    lines = ["dry run: nothing was created",
             f"pipeline\t{spec.name} {spec.version} ({spec.source})" + (f", mode {prepared.mode.name}"
                                                                        if spec.modes else ""),
             f"run id\t{prepared.run_id}{' (resumed)' if prepared.record else ''}",
             f"output\t{prepared.output}"]
    lines += [f"input\t{c.summary}" for c in prepared.checked.values() if c.summary]
    if prepared.fan_out:
        lines.append(f"fan-out\t{prepared.fan_out['items']:,} items, {prepared.fan_out['per_pod']} per pod, "
                     f"{prepared.fan_out['pods']:,} pod(s) per step")
    return lines + backend.dry_run(prepared, options)
