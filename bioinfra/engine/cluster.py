"""The cluster backend: Argo on aws, gcp or onprem runs the rendered Workflow.

A run on a cluster, in order (nothing is uploaded or created until every input is checked and the
Workflow, as it will be submitted, passes the lint):
  1. preflight: the target's cluster is reached (core.cluster_run.kube_for) before any input is read;
  2. the engine checks the inputs (`s3://` on aws, `gs://` on gcp are checked here to exist and are
     read in place by the Workflow's stage-in step, never through this machine) and renders;
  3. the Workflow is named after the run id, put in the bioinfra namespace and labelled for
     `bioinfra runs`, then linted as the controller and the API server admit it;
  4. local inputs are uploaded into the shared workspace through MinIO, content-addressed (skipped
     when already there); files made for this run (e.g. the normalised sample sheet) go into its
     run folder (`runs/<run-id>/`);
  5. the Workflow is created; a watch drives the per-step progress and each step's pod log is saved
     under <output>/logs/ as its node finishes; at the end the run folder (results, report) is
     copied back to --output (on aws/gcp the stage-out step has already copied it to the results
     bucket) and the engine's manifest is written with the cluster's keys. A failure is the
     engine's one failure summary (`engine.failure`), filled by the pipeline's outputs spec.
`bioinfra runs fetch` finishes a detached run the same way (`fetch_run`).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bioinfra.config import Config
from bioinfra.core import cluster_run as kc
from bioinfra.engine import inputs as inputs_mod
from bioinfra.engine.engine import Outcome, Prepared, RunOptions, Say, failure, manifest_body
from bioinfra.engine.inputs import CheckedInput, RemoteInput, StagedFile
from bioinfra.engine.spec import PipelineSpec
from bioinfra.errors import InputError, InterruptedRunError
from bioinfra.executor.runner import FAILED, RunResult, TaskState
from bioinfra.files import sha256_file, write_json_atomic
from bioinfra.targets.onprem_argo import workflow_labels

STATE_DIR = ".bioinfra"


@dataclass
class ClusterBackend:
    """Argo on the target's cluster (see the module's docstring for the order of a run)."""

    config: Config
    config_path: Optional[Path]
    target: str
    kube: Any = None  # connected by preflight (or given: tests, an already connected caller)
    # --dry-run: the cluster is not contacted (on aws/gcp that would write a kubeconfig), as before.
    offline: bool = False
    spec: Optional[PipelineSpec] = field(default=None, repr=False)

    # -- before the inputs are read ------------------------------------------------------------------

    def preflight(self, spec: PipelineSpec, say: Say) -> None:
        self.spec = spec
        if self.offline:
            return
        if self.kube is None:
            self.kube = kc.kube_for(self.config, self.config_path)
        kube = self.kube
        say(f"cluster {kube.server} (context {kube.context}, Kubernetes {kube.version()})")

    def images(self) -> Optional[dict[str, str]]:
        from bioinfra.core.images import pushed_images
        from bioinfra.engine.rundir import default_workspace

        return pushed_images(self.config, self.target, default_workspace(self.config))

    def stage_out(self, run_id: str) -> tuple[str, str]:
        return kc.results_location(self.config, run_id, offline=self.offline)

    def check_remote(self, ref: RemoteInput, role: str) -> None:
        flag = role
        if self.spec is not None and any(i.name == role for i in self.spec.inputs):
            flag = self.spec.input(role).option
        kc.check_remote(self.config, ref, flag)

    def max_cpus(self, options: RunOptions) -> Optional[int]:
        return None

    # -- running -------------------------------------------------------------------------------------

    def run(self, prepared: Prepared, options: RunOptions, *, say: Say, reporter: Any) -> Outcome:
        if self.kube is None:  # preflight was offline: connect now, before anything is made
            self.kube = kc.kube_for(self.config, self.config_path)
        kube = self.kube
        output, run_id = prepared.output, prepared.run_id
        # The Workflow exactly as it will be submitted, linted before anything is uploaded or created.
        workflow = submission(prepared.workflow, run_id, extra_labels=workflow_labels(self.config))
        # Followed step by step through its entrypoint DAG: one that is not is refused here, before
        # anything is made (with --detach it is only submitted).
        tasks = [] if options.detach else kc.dag_tasks(workflow)
        _stage_out, results_url = self.stage_out(run_id)
        created_output = not output.exists()
        with kc.open_workspace(kube) as store:
            try:
                # The whole read of FASTQs checked in bounded time (#19): before they are uploaded,
                # which reads them anyway; the upload then names them by their full digest.
                inputs_mod.verify_inputs(prepared.checked)
                upload_inputs(store, prepared.checked, say)
                output.mkdir(parents=True, exist_ok=True)
                write_run_files(store, prepared, output)
                (output / "workflow.yaml").write_text(workflow_text(prepared, workflow))
                created = kube.create_workflow(kc.NAMESPACE, workflow)
            except BaseException:
                # Nothing was submitted: leave no half-made output folder behind (the workspace keeps
                # what was uploaded: it is content-addressed, the next run skips it).
                if created_output:
                    shutil.rmtree(output, ignore_errors=True)
                raise
            submitted = dt.datetime.now(dt.timezone.utc).isoformat()
            record = prepared.run_record(
                self.target, namespace=kc.NAMESPACE, workflow=(created or workflow)["metadata"]["name"],
                cluster=kube.server, context=kube.context, status="submitted", submitted=submitted,
                staged=[f.as_record() for f in prepared.staged])
            write_json_atomic(output / STATE_DIR / "run.json", record)
            say(f"submitted Workflow {kc.NAMESPACE}/{run_id} to {kube.server}")
            if options.detach:
                return Outcome(run_id, output, "Submitted", {}, None, results_url=results_url)
            retries = self.config.pipeline.retries
            keeper = kc.LogKeeper(kube, output / "logs")
            try:
                final = kc.follow(kube, run_id, tasks, output / "logs", retries, reporter, keeper=keeper)
            except KeyboardInterrupt:
                raise InterruptedRunError(
                    f"stopped watching run {run_id}; it goes on running on the cluster",
                    hint=f"`bioinfra runs status {run_id}`, `bioinfra runs fetch {run_id} -o {output}` "
                         f"when it is done, or `bioinfra runs cancel {run_id}`",
                ) from None
            states = kc.task_states(final, tasks, output / "logs", retries)
            reporter.finished(RunResult(kc.executor_phase(kc.as_workflow(final).status.phase), states))
            return finish(self.config, kube, store, prepared, final, output, say, keeper=keeper,
                          started=record["started"])

    def dry_run(self, prepared: Prepared, options: RunOptions) -> list[str]:
        """What `run` would submit and move: the Workflow's steps, what would be uploaded (skipped
        when already there), what the stage-in step reads in place, where results go."""
        from bioinfra.engine.rundir import dry_run_steps
        from bioinfra.executor.workflow import parse_workflow

        workflow = prepared.workflow
        tasks = kc.dag_tasks(workflow)
        uploads = [f for c in prepared.checked.values() for f in local_files(c)]
        size = sum(f.bytes if f.bytes is not None else f.source.stat().st_size for f in uploads if f.source)
        from bioinfra.targets import get_target

        where = get_target(self.target).cluster_source(self.config)
        lines = [f"cluster\t{where}, not contacted (dry run)",
                 f"would submit Workflow {kc.NAMESPACE}/{prepared.run_id} to target {self.target} with steps: "
                 f"{', '.join(tasks)}",
                 f"upload\t{len(uploads)} file(s), {size:,} bytes (skipped when already there)"]
        for f in prepared.staged:
            if f.remote is not None:
                lines.append(f"{f.role}\t{f.remote.url} -> workspace:{f.workspace_path} (read in place by the "
                             "stage-in step)")
            elif f.in_run:
                lines.append(f"{f.role}\t{f.workspace_path} written into the run folder "
                             f"(workspace:{prepared.run_dir}/{f.workspace_path})")
        lines.append(f"bucket\t{self.stage_out(prepared.run_id)[1]}")
        return lines + dry_run_steps(parse_workflow(workflow), prepared.fan_out.get("pods", 0))


# -- the Workflow as submitted ----------------------------------------------------------------------


def submission(workflow: dict[str, Any], run_id: str, extra_labels: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """The rendered Workflow named after the run (no generateName), in the namespace the controller
    watches, labelled with the run id for `bioinfra runs` (and `extra_labels`: the controller's instance
    ID, targets/onprem_argo.py); linted as it will be submitted (WorkflowInvalidError, exit 4). Set on the
    parsed Workflow: data, never text."""
    meta = workflow.setdefault("metadata", {})
    meta.pop("generateName", None)
    meta["name"] = run_id
    meta["namespace"] = kc.NAMESPACE
    labels = meta.get("labels") or {}
    meta["labels"] = labels
    labels[kc.RUN_LABEL] = kc.run_label(run_id)
    labels.update(extra_labels or {})
    return kc.checked_submission(workflow)


def workflow_text(prepared: Prepared, workflow: dict[str, Any]) -> str:
    import yaml

    from bioinfra.render import HEADER

    spec = prepared.spec
    return HEADER.format(template=f"pipeline {spec.name} ({spec.source})") + yaml.safe_dump(
        workflow, sort_keys=False, width=120, allow_unicode=True)


# -- staging --------------------------------------------------------------------------------------


def local_files(checked: CheckedInput) -> list[StagedFile]:
    """The local files one input uploads into the workspace: an image folder's images one by one
    (`extra["files"]`, only those its data file names), a folder's files, else its staged files.
    Files read in place (remote) and files written per run (in_run) are not uploads."""
    if checked.extra.get("files") is not None:
        return list(checked.extra["files"])
    files = []
    for f in checked.staged:
        if f.remote is not None or f.in_run or f.source is None:
            continue
        if f.source.is_dir():
            files += [StagedFile(f.role, f"{f.workspace_path}/{p.relative_to(f.source).as_posix()}", p)
                      for p in sorted(f.source.rglob("*")) if p.is_file()]
        else:
            files.append(f)
    return files


def upload_inputs(store: Any, checked: dict[str, CheckedInput], say: Say) -> None:
    """Upload each input's local files (content-addressed: skipped when already there). An input of
    many files (a sheet's FASTQs, an image folder) is said in one line, any other file in its own."""
    for c in checked.values():
        for f in c.staged:
            if f.remote is not None:
                say(f"{f.role}: {f.remote.url} is read in place by the stage-in step")
        files = local_files(c)
        if not files:
            continue
        fresh = 0
        for f in files:
            assert f.source is not None
            digest = f.sha256 or sha256_file(f.source)
            if store.has(f.workspace_path, digest):
                if len(files) == 1:
                    say(f"{f.role}: already in the workspace ({f.workspace_path})")
                continue
            store.upload(f.source, f.workspace_path, digest)
            fresh += 1
            if len(files) == 1:
                size = f.bytes if f.bytes is not None else f.source.stat().st_size
                say(f"{f.role}: uploaded to the workspace ({f.workspace_path}, {size:,} bytes)")
        if len(files) > 1:
            where = f" ({c.parameter}/)" if c.spec.type in ("image_folder", "folder") else ""
            say(f"{c.spec.name}: {fresh} uploaded, {len(files) - fresh} already in the workspace{where}")


def write_run_files(store: Any, prepared: Prepared, output: Path) -> None:
    """Files made for this run (e.g. the normalised sample sheet): into the output folder, and into
    the run's folder in the workspace, where its steps read them."""
    for f in prepared.staged:
        if not f.in_run:
            continue
        path = output / f.workspace_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(f.text or "")
        tmp.replace(path)
        store.upload(path, f"{prepared.run_dir}/{f.workspace_path}", f.sha256 or sha256_file(path))


# -- after the Workflow ended ---------------------------------------------------------------------


def finish(config: Config, kube: Any, store: Any, prepared: Prepared, workflow: dict[str, Any], output: Path,
           say: Say, *, keeper: Optional[kc.LogKeeper] = None, started: Optional[str] = None) -> Outcome:
    """Logs, results, the engine's manifest with the cluster's keys, the run record's status; the
    engine's failure summary (StepFailedError, exit 5) when the Workflow did not succeed."""
    wf = kc.as_workflow(workflow)
    run_id = wf.name
    retries = config.pipeline.retries
    states = kc.task_states(wf, kc.dag_tasks(wf), output / "logs", retries)
    # One log per step that ran pods (a fan-out's children each have their own); most were saved
    # while following the run, as their nodes finished.
    logs = kc.save_logs(kube, wf, output / "logs", keeper=keeper)
    say(f"saved {len(logs)} step log(s) under {output / 'logs'}")
    copied = kc.fetch_results(store, run_id, output)
    say(f"copied {len(copied)} result file(s) from the cluster into {output}")
    _stage_out, results_url = kc.results_location(config, run_id)
    phase = wf.status.phase or "Unknown"
    # Argo's times (one clock for both), else when bioinfra submitted it.
    body = manifest_body(prepared, states, output, target=config.target,
                         started=wf.status.started_at or started or dt.datetime.now(dt.timezone.utc).isoformat(),
                         finished=wf.status.finished_at or None)
    if not prepared.checked and prepared.record:  # `runs fetch`: the inputs as the run recorded them
        recorded = prepared.record.get("inputs") or {}
        body["inputs"] = {n: r for n, r in recorded.items() if "value" not in r}
        body["values"] = {n: r["value"] for n, r in recorded.items() if r.get("value") is not None}
    body.update(cluster_keys(kube, wf, states, results_url, output))
    body["status"] = "succeeded" if phase == "Succeeded" else "failed"
    manifest = output / "manifest.json"
    write_json_atomic(manifest, body)
    record = read_record(output)
    if record is not None and record.get("run_id") == run_id:  # never another run's record
        write_json_atomic(output / STATE_DIR / "run.json", {**record, "status": phase.lower()})
    if phase != "Succeeded":
        failed = [s for s in states.values() if s.phase == FAILED and not s.children]
        step = (failed[0].group or failed[0].name) if failed else "STEP"
        raise failure(prepared, output, states, where=" on the cluster", logs=logs,
                      hint=f"read the logs under {output / 'logs'}; the Workflow stays on the cluster for a day: "
                           f"`bioinfra runs status {run_id}`, `bioinfra runs logs {run_id} --step {step}`")
    outputs = prepared.outputs
    return Outcome(run_id, output, phase, states, manifest, (body.get("summary") or {}).get("lines", []),
                   body.get("notes", []), report=output / outputs.report if outputs.report else None,
                   results=(output / outputs.results).resolve(),
                   files={k: output / v for k, v in outputs.files.items()}, results_url=results_url)


def cluster_keys(kube: Any, wf: Any, states: dict[str, TaskState], results_url: str, output: Path
                 ) -> dict[str, Any]:
    """What a cluster run's manifest adds to the engine's: where it ran, Argo's outcome, each step's
    attempts, and every file copied back with its digest."""
    files = sorted(p for p in output.rglob("*") if p.is_file() and STATE_DIR not in p.relative_to(output).parts
                   and p.name != "manifest.json")
    return {
        "cluster": kube.server,
        "workflow": f"{wf.namespace or kc.NAMESPACE}/{wf.name}",
        "phase": wf.status.phase or None,
        "message": wf.status.message,
        "results": results_url,
        "steps": {name: {"phase": s.phase, "attempts": s.attempts, "message": s.message,
                         "wall_seconds": s.wall_seconds} for name, s in states.items()},
        "outputs": {str(p.relative_to(output)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in files},
    }


def read_record(output: Path) -> Optional[dict[str, Any]]:
    from bioinfra.files import read_json_or_empty

    record = read_json_or_empty(output / STATE_DIR / "run.json")
    return record if isinstance(record, dict) and record else None


# -- bioinfra runs fetch ----------------------------------------------------------------------------


def fetch_run(config: Config, kube: Any, run_id: str, output: Path, say: Say,
              search_path: tuple[Path, ...] = ()) -> Outcome:
    """Logs, results and manifest of a finished run into `output` (e.g. after `run --detach`),
    finished as `run` finishes it; exit 5 with the failure summary when it failed."""
    workflow = kc.get_run(kube, run_id)
    phase = kc.as_workflow(workflow).status.phase or None
    if phase not in kc.DONE:
        raise InputError(f"run {run_id} is still {phase or 'Pending'}", hint=f"`bioinfra runs status {run_id}`")
    output.mkdir(parents=True, exist_ok=True)
    prepared = submitted_run(workflow, output, search_path)
    record = read_record(output)
    with kc.open_workspace(kube) as store:
        return finish(config, kube, store, prepared, workflow, output, say,
                      started=(record or {}).get("started") if (record or {}).get("run_id") == run_id else None)


def submitted_run(workflow: dict[str, Any], output: Path, search_path: tuple[Path, ...] = ()) -> Prepared:
    """The run a Workflow on the cluster was submitted as, for finishing it: its pipeline and mode
    from the run record `run --detach` left in `output` (else the Workflow's labels), the inputs'
    records from that record. A Workflow whose pipeline is not found here is finished with no
    pipeline outputs spec (no summary lines; the failure names the step)."""
    from bioinfra.engine.spec import find_pipeline
    from bioinfra.pipelines import label_value

    wf = kc.as_workflow(workflow)
    record = read_record(output)
    if record is not None and record.get("run_id") != wf.name:
        record = None
    labels = wf.labels
    ref = (record or {}).get("pipeline_source")
    name = (record or {}).get("pipeline") or labels.get("bioinfra.io/pipeline", "")
    spec: Optional[PipelineSpec] = None
    for candidate in ([ref] if ref and ref != "built-in" else []) + ([name] if name else []):
        try:
            spec = find_pipeline(candidate, search_path)
            break
        except InputError:
            continue
    if spec is None:
        spec = PipelineSpec.model_construct(name=label_value(name or wf.name), version="unknown",
                                            description="a Workflow bioinfra does not know the pipeline of",
                                            workflow="(on the cluster)")
    mode_name = (record or {}).get("mode") or labels.get("bioinfra.io/mode")
    mode = next((m for m in spec.modes if m.name == mode_name), None) or spec.mode_for(set())
    checked: dict[str, CheckedInput] = {}
    prepared = Prepared(spec, mode, wf.name, output, record, checked, {}, [], workflow, {})
    return prepared
