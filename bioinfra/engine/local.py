"""The local backend: the package's Argo executor runs the Workflow on this machine (native tools
or the images under Docker), in the run folder, under the run lock; --resume skips finished steps."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bioinfra.config import Config
from bioinfra.core.runtimes import RuntimeChoice, choose_runtime, make_runtime
from bioinfra.engine import inputs as inputs_mod
from bioinfra.engine import rundir
from bioinfra.engine.engine import Outcome, Prepared, RunOptions, Say, failure, manifest_body
from bioinfra.engine.inputs import RemoteInput
from bioinfra.engine.spec import PipelineSpec
from bioinfra.errors import InterruptedRunError, UnsupportedError
from bioinfra.executor.runner import FAILED, LocalExecutor
from bioinfra.executor.workflow import parse_workflow
from bioinfra.files import sha256_file, write_json_atomic

STEP_KEYS = ("phase", "cached", "attempts", "exit_code", "started", "finished", "wall_seconds", "message", "log")


@dataclass
class LocalBackend:
    config: Config
    target: str = "local"
    choice: Optional[RuntimeChoice] = None
    requested_runtime: Optional[str] = None
    notes: list[str] = field(default_factory=list)

    def preflight(self, spec: PipelineSpec, say: Say) -> None:
        requested = self.requested_runtime or self.config.local.runtime
        self.choice = choose_runtime(requested, rundir.default_workspace(self.config), images=tuple(spec.images),
                                     tools=spec.tools)
        shown = ", ".join(f"{k} {v}" if self.choice.name == "docker" else k for k, v in self.choice.tools.items())
        say(f"runtime {self.choice.name} ({self.choice.reason}): {shown}")
        for note in self.choice.notes:
            say(note)

    def images(self) -> Optional[dict[str, str]]:
        return self.choice.images if self.choice else None

    def stage_out(self, run_id: str) -> tuple[str, str]:
        return "", ""

    def check_remote(self, ref: RemoteInput, role: str) -> None:  # pragma: no cover - refused before
        raise UnsupportedError(f"{ref.url}: object URLs are read in place on a cluster target only")

    def max_cpus(self, options: RunOptions) -> Optional[int]:
        return options.max_cpus or self.config.local.max_cpus or os.cpu_count() or 1

    # -- running --------------------------------------------------------------------------------

    def _stage(self, workspace: Path, prepared: Prepared) -> None:
        """Inputs linked into the content-addressed workspace (a reference copied: it is indexed
        beside itself), generated files written into the run folder, the run folder linked."""
        for f in prepared.staged:
            if f.in_run:
                target = prepared.output / f.workspace_path
                tmp = target.with_name(f".{target.name}.tmp")
                tmp.write_text(f.text or "")
                os.replace(tmp, target)
            elif f.source is None:
                continue
            elif f.copy and f.source.is_file():
                rundir.copy_into_workspace(workspace / f.workspace_path, f.source, f.sha256 or sha256_file(f.source))
            else:
                rundir.link_into_workspace(workspace / f.workspace_path, f.source)
        rundir.link_run_folder(workspace, prepared.run_id, prepared.output)

    def run(self, prepared: Prepared, options: RunOptions, *, say: Say, reporter: Any) -> Outcome:
        from bioinfra.pipelines import load_workflow
        from bioinfra.render import HEADER

        assert self.choice is not None
        if options.detach:
            raise UnsupportedError("--detach needs a cluster target (aws, gcp, onprem)")
        output, run_id, spec = prepared.output, prepared.run_id, prepared.spec
        workspace = rundir.usable_workspace(self.config)
        max_cpus = self.max_cpus(options) or 1
        import yaml

        text = HEADER.format(template=f"pipeline {spec.name} ({spec.source})") + yaml.safe_dump(
            prepared.workflow, sort_keys=False, width=120, allow_unicode=True)
        input_paths = [f.source for f in prepared.staged if f.source is not None and not f.in_run]

        def prepare(lock_fd: int) -> tuple[LocalExecutor, dict[str, Any], Path]:
            self._stage(workspace, prepared)
            (output / "workflow.yaml").write_text(text)
            state_dir = output / rundir.STATE_DIR
            record = prepared.run_record("local", runtime=self.choice.name)
            write_json_atomic(state_dir / "run.json", record)
            executor = LocalExecutor(
                parse_workflow(load_workflow(text)), volume_roots={"workspace": workspace}, state_dir=state_dir,
                log_dir=output / "logs",
                runtime=make_runtime(self.choice, lock_fd=lock_fd, workspace=workspace, output=output,
                                     input_paths=[Path(p) for p in input_paths], run_id=run_id),
                max_cpus=max_cpus, resume=options.resume, reporter=reporter, max_parallel=options.max_parallel,
            )
            return executor, record, state_dir

        def manifest_for(record: dict[str, Any], result: Any, makespan: float) -> dict[str, Any]:
            body = manifest_body(prepared, result.tasks, output, target="local", started=record["started"])
            body["runtime"] = self.choice.name
            body["makespan_seconds"] = round(makespan, 3)
            body[("tool_paths" if self.choice.name == "native" else "images")] = self.choice.tools
            body["steps"] = rundir.manifest_steps(result, output, STEP_KEYS)
            body["outputs"] = _output_files(result, output, run_id, prepared.outputs)
            body["workflow_sha256"] = sha256_file(output / "workflow.yaml")
            return body

        # FASTQs checked in bounded time before the run are read whole beside the first steps (#19).
        unverified = any(c.unverified for c in prepared.checked.values())
        before = (prepared.record or {}).get("inputs")
        verify = (lambda: inputs_mod.verify_inputs(prepared.checked, before)) if unverified else None
        result, manifest_path, manifest = rundir.execute(output, prepare, manifest_for, verify)
        outputs = prepared.outputs
        resume_cmd = f"bioinfra run {spec.name if spec.builtin else spec.source} --resume --output {output}"
        if result.interrupted:
            raise InterruptedRunError(f"run {run_id} interrupted; finished steps are kept",
                                      hint=f"continue with: {resume_cmd}" + _same_inputs(prepared))
        if result.phase == FAILED:
            hint = (f"read the log; fix the cause, then `{resume_cmd}`{_same_inputs(prepared)} reruns only what "
                    "did not finish")
            raise failure(prepared, output, result.tasks, hint=hint)
        summary = (manifest.get("summary") or {}).get("lines", [])
        return Outcome(run_id, output, "Succeeded", result.tasks, manifest_path, summary, manifest.get("notes", []),
                       report=output / outputs.report if outputs.report else None,
                       results=(output / outputs.results).resolve(),
                       files={k: output / v for k, v in outputs.files.items()}, result=result)

    def dry_run(self, prepared: Prepared, options: RunOptions) -> list[str]:
        from bioinfra.engine.rundir import dry_run_steps

        assert self.choice is not None
        workflow = parse_workflow(prepared.workflow)
        cpus = self.max_cpus(options)
        lines = [f"workspace\t{rundir.default_workspace(self.config)}",
                 f"runtime\t{self.choice.name} ({self.choice.reason})",
                 f"cpus\t{cpus}" + (f", at most {options.max_parallel} steps at once" if options.max_parallel else "")]
        return lines + dry_run_steps(workflow, prepared.fan_out.get("pods", 0))


def _same_inputs(prepared: Prepared) -> str:
    """The inputs a --resume must repeat (those given, not the bundled defaults)."""
    given = [f"{c.spec.option} {c.value}" for c in prepared.checked.values()
             if c.spec.type == "sample_sheet" and isinstance(c.value, Path)]
    return (" " + " ".join(given)) if given else ""


def _output_files(result: Any, output: Path, run_id: str, outputs: Any) -> dict[str, Any]:
    """Each file a step declared (bioinfra.io/outputs), relative to the run folder, with its digest;
    and what a step wrote that it could not declare beforehand: the pipeline's results folder
    (pipeline.yaml outputs.results, e.g. one table per object found) and its report."""
    files: dict[str, Any] = {}
    prefix = f"runs/{run_id}/"
    for state in result.tasks.values():
        for rel, facts in state.outputs.items():
            if rel.startswith(prefix) and "/.bioinfra/" not in rel:
                files[rel[len(prefix):]] = facts
    found = sorted((output / "multiqc").glob("*.html")) if (output / "multiqc").is_dir() else []
    if outputs.results not in (".", "") and (output / outputs.results).is_dir():
        found += sorted(p for p in (output / outputs.results).rglob("*") if p.is_file())
    if outputs.report and (output / outputs.report).is_file():
        found.append(output / outputs.report)
    for path in found:
        files.setdefault(str(path.relative_to(output)), {"bytes": path.stat().st_size, "sha256": sha256_file(path)})
    return dict(sorted(files.items()))
