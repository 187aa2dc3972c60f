"""`bioinfra run --target aws|gcp|onprem` and `bioinfra runs ...`: the same Workflow, on Argo.

A run on a cluster, in order (nothing is submitted until every input is checked):
  1. inputs: local files are checked as on `local` (FASTQ/FASTA, pairs, checksums); `s3://` (aws)
     and `gs://` (gcp) inputs are checked to exist and are read in place by the Workflow's
     stage-in step (copied into the workspace by the pod, never through this machine);
  2. local inputs are uploaded into the shared workspace through MinIO, content-addressed
     (`inputs/<sha16>/...`, `references/<sha16>/...`), skipped when already there;
  3. the Workflow (rendered from the same template as local runs) is created through the
     kubernetes client, named after the run id, labelled for `bioinfra runs`;
  4. a watch drives the per-step progress; at the end every step's pod log is saved under
     <output>/logs/, the failing step's log is shown, and the run folder (results, MultiQC report)
     is copied back to --output; on aws/gcp the stage-out step has already copied it to the
     target's bucket. The exit code is the Workflow's outcome (0, or 5 naming the failed step).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from bioinfra.argo.model import NodeStatus, Workflow
from bioinfra.config import Config
from bioinfra.core import inputs as inputs_mod
from bioinfra.errors import InputError, InterruptedRunError, StepFailedError, UnsupportedError
from bioinfra.executor.runner import (
    FAILED,
    OMITTED,
    PENDING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    RunResult,
    TaskState,
    safe_file_name,
)
from bioinfra.files import log_tail, read_json_or_empty, sha256_file, write_json_atomic
from bioinfra.pipelines import (  # noqa: F401
    MINIO_SECRET,
    PREEMPTION_MESSAGE_PATTERN,
    WORKFLOW_SERVICE_ACCOUNT,
    check_sample_name,
    label_value,
)

NAMESPACE = "bioinfra"
MINIO_SERVICE = "bioinfra-minio"
MINIO_USER_KEY, MINIO_PASSWORD_KEY = "root-user", "root-password"
RUN_LABEL = "bioinfra.io/run-id"


def run_label(run_id: str) -> str:
    """The bioinfra.io/run-id label value of a run: a run id may be 100 characters and end in '_'
    (core.run.check_run_id), a label value may not (63, alphanumeric ends: the API server answers
    422). Set and selected through this one function so both always agree."""
    return label_value(run_id)

MANAGED_LABEL = ("app.kubernetes.io/managed-by", "bioinfra")
# Argo's phases -> the executor's (the progress display and manifest speak the executor's).
_PHASES = {"Pending": PENDING, "Running": RUNNING, "Succeeded": SUCCEEDED, "Failed": FAILED, "Error": FAILED,
           "Skipped": SKIPPED, "Omitted": OMITTED}
DONE = ("Succeeded", "Failed", "Error")
# What Kubernetes/Argo say when a node, not the program, ended a pod (spot reclaim, eviction, lost
# node): the same pattern the Workflow's node-level retry matches (bioinfra.pipelines).
PREEMPTED = re.compile(PREEMPTION_MESSAGE_PATTERN)
REMOTE_SCHEMES = {"s3": "aws", "gs": "gcp"}
# The characters S3 and GCS allow in bucket names (lower-case letters, digits, '.', '-', '_' on GCS);
# lengths and the stricter per-cloud rules are left to the cloud, which answers "no such bucket".
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
# Refused in an object key: whitespace and other control characters (a newline or tab would split
# the stage-in list; Kubernetes and Argo carry them, but rclone logs and users' shells mangle
# them), quotes, backslashes, `$` and backticks (what a shell would act on, were the key ever
# pasted into code: it is not, it reaches rclone as data through the step's environment), and
# braces (Argo substitutes a Workflow twice, so a `{{...}}` inside a value would be expanded).
_KEY_REFUSED_RE = re.compile(r"[\x00-\x20\x7f'\"`$\\{}]")


@dataclass(frozen=True)
class RemoteInput:
    url: str
    bucket: str
    key: str

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    def rclone(self) -> str:
        """rclone's on-the-fly remote: credentials from the pod (IRSA / Workload Identity)."""
        if self.scheme == "s3":
            return f":s3,provider=AWS,env_auth=true:{self.bucket}/{self.key}"
        return f":gcs,env_auth=true,bucket_policy_only=true:{self.bucket}/{self.key}"


InputRef = Union[Path, RemoteInput]


def parse_input(value: Optional[str], flag: str, target: str) -> Optional[InputRef]:
    if value is None:
        return None
    match = re.fullmatch(r"([a-z0-9]+)://([^/]+)/(.+)", value, flags=re.DOTALL)
    if not match:
        if "://" in value:
            raise InputError(f"{flag} {value!r}: only s3://BUCKET/KEY (aws) and gs://BUCKET/KEY (gcp) are read in place")
        return Path(value)
    scheme, bucket, key = match.groups()
    if _KEY_REFUSED_RE.search(value) or any(part in (".", "..") for part in key.split("/")):
        raise InputError(f"{flag} {value!r}: object URLs with spaces, control characters, quotes, backslashes, "
                         "$, backticks, braces or '.'/'..' path parts are not supported",
                         hint="copy or rename the object, or download it and give the local file")
    if not _BUCKET_RE.fullmatch(bucket):
        raise InputError(f"{flag} {value!r}: {bucket!r} is not a bucket name (lower-case letters, digits, '.', '-', '_')")
    if REMOTE_SCHEMES.get(scheme) != target:
        raise InputError(
            f"{flag} {value}: {scheme}:// inputs are read in place only on target "
            f"{REMOTE_SCHEMES.get(scheme, 'none')}, not {target}",
            hint="give a local file instead: bioinfra uploads it into the cluster's workspace",
        )
    return RemoteInput(value, bucket, key)


@dataclass
class ClusterRunRequest:
    target: str
    r1: Optional[str] = None
    r2: Optional[str] = None
    reference: Optional[str] = None
    sample: Optional[str] = None
    output: Optional[Path] = None
    qc_gate: bool = False
    detach: bool = False


@dataclass
class StagedInput:
    role: str
    source: str  # local path or URL
    workspace_path: str
    sha256: Optional[str] = None  # local files only
    bytes: Optional[int] = None
    remote: Optional[RemoteInput] = None


@dataclass
class Submitted:
    run_id: str
    output: Path
    workflow: dict[str, Any]
    namespace: str
    inputs: list[StagedInput]
    sample: str
    stage_out: str


@dataclass
class ClusterOutcome:
    run_id: str
    output: Path
    phase: str
    tasks: dict[str, TaskState]
    manifest: Optional[Path] = None
    results_url: str = ""
    notes: list[str] = field(default_factory=list)


# -- connecting -----------------------------------------------------------------------------------


def kube_for(config: Config, config_path: Optional[Path]) -> Any:
    """The target's cluster: onprem's kubeconfig/context, or the one `bioinfra kubeconfig` writes
    (written now if missing) for aws/gcp."""
    from bioinfra.adaptors.kube import connect
    from bioinfra.core.cluster import default_kubeconfig_path, kubeconfig

    if config.target == "onprem":
        return connect(config.onprem.kubeconfig, config.onprem.context)
    if config.target not in ("aws", "gcp"):
        raise UnsupportedError(f"target {config.target} has no cluster", hint="use --target aws, gcp or onprem")
    path = default_kubeconfig_path(config, config_path)
    if not path.is_file():
        kubeconfig(config, config_path, None, "auto")
    return connect(path)


def open_workspace(kube: Any) -> Any:
    from bioinfra.adaptors.workspace_store import open_store

    return open_store(kube, NAMESPACE, MINIO_SERVICE, MINIO_SECRET, user_key=MINIO_USER_KEY,
                      password_key=MINIO_PASSWORD_KEY)


# -- inputs ---------------------------------------------------------------------------------------


def _remote_name(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def check_cluster_inputs(config: Config, req: ClusterRunRequest, progress: inputs_mod.Progress = None
                         ) -> tuple[str, list[StagedInput], bool]:
    """Check every input; returns the sample name, where each goes in the workspace, and whether
    the bundled sample is used."""
    from bioinfra.core.run import RunRequest, _fastq_name, check_inputs, sample_name_from

    refs = {role: parse_input(getattr(req, role), f"--{role}", config.target) for role in ("r1", "r2", "reference")}
    remote = {role: ref for role, ref in refs.items() if isinstance(ref, RemoteInput)}
    if not remote:
        local = {role: ref for role, ref in refs.items() if ref is not None}
        checked = check_inputs(RunRequest(r1=local.get("r1"), r2=local.get("r2"), reference=local.get("reference"),
                                          sample=req.sample), progress=progress)
        staged = []
        for role, facts, mate in (("r1", checked.r1, "R1"), ("r2", checked.r2, "R2")):
            staged.append(StagedInput(role, str(facts.path), f"inputs/{facts.sha256[:16]}/"
                                      f"{_fastq_name(checked.sample, mate, facts)}", facts.sha256, facts.bytes))
        ref = checked.reference
        staged.append(StagedInput("reference", str(ref.path), f"references/{ref.sha256[:16]}/reference.fa"
                                  + (".gz" if ref.gzipped else ""), ref.sha256, ref.bytes))
        return checked.sample, staged, checked.bundled
    missing = [f"--{role}" for role, ref in refs.items() if ref is None]
    if missing:
        raise InputError(f"missing {', '.join(missing)}: give --r1, --r2 and --reference together")
    first = refs["r1"]
    sample = req.sample or sample_name_from(Path(first.key if isinstance(first, RemoteInput) else first))
    # As a local run checks it (core.run.check_inputs), before any cloud call or upload.
    check_sample_name(sample)
    staged = []
    for role in ("r1", "r2", "reference"):
        ref = refs[role]
        if isinstance(ref, RemoteInput):
            check_remote(config, ref, role)
            # Named as a local input is (core.run._fastq_name): FastQC names its report after the
            # file, and the step reads <sample>_R1_fastqc; the object's own name stays out.
            gz = ".gz" if ref.key.endswith(".gz") else ""
            name = "reference.fa" + gz if role == "reference" else f"{sample}_{role.upper()}.fastq" + gz
            folder = "references" if role == "reference" else "inputs"
            staged.append(StagedInput(role, ref.url, f"{folder}/remote-{_remote_name(ref.url)}/{name}", remote=ref))
        elif role == "reference":
            facts = inputs_mod.inspect_fasta(ref, "reference", progress)
            staged.append(StagedInput(role, str(ref), f"references/{facts.sha256[:16]}/reference.fa"
                                      + (".gz" if facts.gzipped else ""), facts.sha256, facts.bytes))
        else:
            facts = inputs_mod.inspect_fastq(ref, f"{role.upper()} file", progress)
            mate = role.upper()
            staged.append(StagedInput(role, str(ref), f"inputs/{facts.sha256[:16]}/{_fastq_name(sample, mate, facts)}",
                                      facts.sha256, facts.bytes))
    return sample, staged, False


def check_remote(config: Config, ref: RemoteInput, role: str) -> None:
    """The object exists and this machine's credentials can see it (the pod reads it with its own)."""
    if ref.scheme == "s3":
        from bioinfra.core.cluster import aws_session

        s3 = aws_session(config).client("s3")
        try:
            s3.head_object(Bucket=ref.bucket, Key=ref.key)
        except Exception as exc:  # noqa: BLE001 - botocore is imported lazily
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            raise InputError(f"--{role} {ref.url}: cannot read it ({code})",
                             hint="check the URL; the workflow's role must be allowed to read it too") from None
    else:
        from google.cloud import storage  # type: ignore[attr-defined]

        blob = storage.Client(project=config.project).bucket(ref.bucket).get_blob(ref.key)
        if blob is None:
            raise InputError(f"--{role} {ref.url}: no such object",
                             hint="check the URL; the workflow's service account must be allowed to read it too")


def upload_inputs(store: Any, staged: list[StagedInput], say: Callable[[str], None],
                  progress: Optional[Callable[[int], None]] = None) -> None:
    for item in staged:
        if item.remote is not None:
            say(f"{item.role}: {item.source} is read in place by the stage-in step")
            continue
        assert item.sha256
        if store.has(item.workspace_path, item.sha256):
            say(f"{item.role}: already in the workspace ({item.workspace_path})")
            continue
        store.upload(Path(item.source), item.workspace_path, item.sha256, progress)
        say(f"{item.role}: uploaded to the workspace ({item.workspace_path}, {item.bytes:,} bytes)")


# -- the Workflow ---------------------------------------------------------------------------------


def results_location(config: Config, run_id: str) -> tuple[str, str]:
    """(rclone destination for the stage-out step, the URL users see) of a run's results."""
    bucket = config.results_bucket
    if config.target == "aws":
        return f":s3,provider=AWS,env_auth=true:{bucket}/runs/{run_id}", f"s3://{bucket}/runs/{run_id}/"
    if config.target == "gcp":
        return f":gcs,env_auth=true,bucket_policy_only=true:{bucket}/runs/{run_id}", f"gs://{bucket}/runs/{run_id}/"
    # onprem: the run folder already is an object in the cluster's MinIO.
    return "", f"s3://workspace/runs/{run_id}/ (the cluster's MinIO)"


def build_workflow(config: Config, run_id: str, sample: str, staged: list[StagedInput], *, qc_gate: bool,
                   stage_out: str, images: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """The rendered Workflow with this run's name and labels (same template as a local run)."""
    from bioinfra.pipelines import FastqcToBwaParams, load_workflow, render_fastqc_to_bwa

    paths = {s.role: s.workspace_path for s in staged}
    stage_in = "\n".join(f"{s.remote.rclone()}\t{s.workspace_path}" for s in staged if s.remote is not None)
    params = FastqcToBwaParams(sample=sample, r1=paths["r1"], r2=paths["r2"], reference=paths["reference"],
                               run_dir=f"runs/{run_id}", qc_gate=qc_gate)
    extra = {f.name for f in dataclasses.fields(FastqcToBwaParams)}
    if "stage_in" in extra:
        params = dataclasses.replace(params, stage_in=stage_in, stage_out=stage_out)
    elif stage_in or stage_out:  # pragma: no cover - the template predates staging
        raise UnsupportedError("this bioinfra's Workflow template has no stage-in/stage-out steps")
    workflow = load_workflow(render_fastqc_to_bwa(config, config.target, params, images))
    meta = workflow["metadata"]
    meta.pop("generateName", None)
    meta["name"] = run_id
    meta["namespace"] = NAMESPACE
    labels = meta.setdefault("labels", {})
    labels[RUN_LABEL] = run_label(run_id)
    # The rendered label is already a valid label value (pipelines.label_value); sample[:63] was not
    # ("S1_", or a cut ending in '-': the API server answers 422).
    labels.setdefault("bioinfra.io/sample", label_value(sample))
    return checked_submission(workflow)


def checked_submission(workflow: dict[str, Any]) -> dict[str, Any]:
    """The Workflow exactly as it will be submitted (name, namespace, run labels set), linted as the
    Argo v3.7 controller and the API server admit it: WorkflowInvalidError (exit 4) with their
    messages, before anything is uploaded or created. (The render was linted too; this covers what
    the cluster path adds to it.)"""
    from bioinfra.argo import check_workflow

    check_workflow(workflow)
    return workflow


def as_workflow(workflow: Union[dict[str, Any], Workflow]) -> Workflow:
    """The typed Argo model (bioinfra.argo.model) of a Workflow object, parsed once. A large run's
    nodes, which Argo stores compressed in status.compressedNodes, are decoded first (argo_nodes)."""
    from bioinfra.core.argo_nodes import inflate_nodes

    return workflow if isinstance(workflow, Workflow) else Workflow.parse(inflate_nodes(workflow))


def dag_tasks(workflow: Union[dict[str, Any], Workflow]) -> list[str]:
    """The entrypoint DAG's task names, in the Workflow's order."""
    wf = as_workflow(workflow)
    main = wf.template(wf.entrypoint)
    if main is None or main.dag is None:
        raise InputError(f"Workflow {wf.display_name}: its entrypoint {wf.entrypoint!r} is not a DAG template",
                         hint="bioinfra follows the Workflows it renders (a DAG entrypoint)")
    return [task.name for task in main.dag.tasks]


def submit(config: Config, config_path: Optional[Path], req: ClusterRunRequest, *, kube: Any, store: Any,
           say: Callable[[str], None], input_progress: inputs_mod.Progress = None) -> Submitted:
    from bioinfra.core.images import pushed_images
    from bioinfra.core.run import RunRequest, default_workspace, vet_output

    output, run_id, _record = vet_output(RunRequest(output=req.output))
    sample, staged, bundled = check_cluster_inputs(config, req, input_progress)
    say(f"inputs ok: sample {sample}" + (" (the bundled lambda sample)" if bundled else ""))
    stage_out, _url = results_location(config, run_id)
    images = pushed_images(config, config.target, default_workspace(config))
    workflow = build_workflow(config, run_id, sample, staged, qc_gate=req.qc_gate, stage_out=stage_out,
                              images=images)
    upload_inputs(store, staged, say)
    output.mkdir(parents=True, exist_ok=True)
    (output / "workflow.yaml").write_text(_yaml(workflow))
    created = kube.create_workflow(NAMESPACE, workflow)
    record = {
        "run_id": run_id, "pipeline": workflow["metadata"]["labels"].get("bioinfra.io/pipeline", "fastqc-to-bwa"),
        "target": config.target, "namespace": NAMESPACE, "workflow": (created or workflow)["metadata"]["name"],
        "cluster": kube.server, "context": kube.context, "sample": sample, "qc_gate": req.qc_gate,
        "inputs": [dataclasses.asdict(s) | {"remote": s.remote.url if s.remote else None} for s in staged],
        "status": "submitted", "submitted": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    write_json_atomic(output / ".bioinfra" / "run.json", record)
    say(f"submitted Workflow {NAMESPACE}/{run_id} to {kube.server}")
    return Submitted(run_id, output, workflow, NAMESPACE, staged, sample, stage_out)


def _yaml(obj: Any) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False, width=120)


# -- following a run ------------------------------------------------------------------------------


def _epoch(stamp: Optional[str]) -> Optional[float]:
    if not stamp:
        return None
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def task_of(node_name: str, workflow_name: str) -> Optional[str]:
    """The DAG task a node belongs to: "<wf>.align(0)[0].attempt(1)" -> "align"."""
    if not node_name.startswith(workflow_name + "."):
        return None
    return re.split(r"[(.\[]", node_name[len(workflow_name) + 1:], maxsplit=1)[0]


# A fan-out child is named "<task>(<index>:<item>)", as the local executor names it too.
_CHILD_RE = re.compile(r"^([^(.\[]+)(\(\d+:[^)]*\))?")


def step_of(node_name: str, workflow_name: str) -> Optional[str]:
    """The step a node belongs to: its DAG task, or for a fan-out the child:
    "<wf>.analyze(1:first:5,last:8)(0)[0].run(0)" -> "analyze(1:first:5,last:8)"."""
    if not node_name.startswith(workflow_name + "."):
        return None
    match = _CHILD_RE.match(node_name[len(workflow_name) + 1:])
    return match.group(0) if match else None


def _state_from_node(state: TaskState, node: Optional[NodeStatus], pods: list[NodeStatus]) -> TaskState:
    if node is not None:
        state.phase = _PHASES.get(node.phase or "Pending", PENDING)
        state.started, state.finished = _epoch(node.started_at), _epoch(node.finished_at)
        state.message = node.message
    preempted = [p for p in pods if p.phase in ("Failed", "Error") and PREEMPTED.search(p.message)]
    state.attempts = max(len(pods) - len(preempted), 1 if pods else 0)
    if preempted:
        note = f"{len(preempted)} node loss(es) retried, not counted as failures"
        state.message = f"{state.message}; {note}" if state.message else note
    return state


def task_states(workflow: Union[dict[str, Any], Workflow], tasks: list[str], log_dir: Path, retries: int
                ) -> dict[str, TaskState]:
    """Each DAG task's state from status.nodes (read through the typed model, NodeStatus): Argo names
    a DAG task's node "<workflow>.<task>"; its pods are below it ("<workflow>.<task>(0)[0].<step>(1)").
    A fan-out task (a TaskGroup node) also gets one state per child, "<task>(<i>:<item>)", right after it."""
    wf = as_workflow(workflow)
    name = wf.name
    nodes = list(wf.status.nodes.values())
    by_name = {n.name: n for n in nodes}
    pods_of: dict[str, list[NodeStatus]] = {}
    for node in nodes:
        if node.type == "Pod":
            pods_of.setdefault(step_of(node.name, name) or "", []).append(node)
    states = {}
    for task in tasks:
        node = by_name.get(f"{name}.{task}")
        children = sorted(
            {step for step in (step_of(n.name, name) for n in nodes) if step and step.startswith(task + "(")},
            key=lambda step: int(step[len(task) + 1:].split(":", 1)[0]),
        )
        own_pods = [p for p in nodes if p.type == "Pod" and task_of(p.name, name) == task]
        state = _state_from_node(TaskState(task, task, log_dir / f"{task}.log", max_attempts=retries + 1), node,
                                 [] if children else own_pods)
        states[task] = state
        if not children:
            continue
        state.children = len(children)
        state.attempts = 0
        for child in children:
            child_state = TaskState(child, task, log_dir / f"{safe_file_name(child)}.log", max_attempts=retries + 1,
                                    group=task)
            states[child] = _state_from_node(child_state, by_name.get(f"{name}.{child}"), pods_of.get(child, []))
            state.attempts += states[child].attempts
    return states


def follow(kube: Any, submitted_name: str, tasks: list[str], log_dir: Path, retries: int, reporter: Any,
           namespace: str = NAMESPACE, keeper: Optional[LogKeeper] = None) -> dict[str, Any]:
    """Watch the Workflow until it ends, reporting each step's changes and (with `keeper`) saving each
    step's log as its node finishes; returns the final object."""
    from bioinfra.core.argo_nodes import inflate_nodes

    watch = kube.watch_workflow(namespace, submitted_name)
    seen: dict[str, tuple[Any, ...]] = {}
    started = False
    workflow = inflate_nodes(next(watch))
    try:
        while True:
            wf = as_workflow(workflow)  # parsed once per status seen
            states = task_states(wf, tasks, log_dir, retries)
            if not started:
                reporter.started(list(states.values()))
                started = True
            for state in states.values():
                key = (state.phase, state.attempts, state.message)
                if seen.get(state.name) != key:
                    seen[state.name] = key
                    reporter.changed(state)
            if keeper is not None:
                keeper.update(wf)
            if wf.status.phase in DONE:
                try:
                    watch.send(True)
                except StopIteration:
                    pass
                return workflow
            workflow = inflate_nodes(next(watch))
    finally:
        watch.close()


def pod_names(kube: Any, workflow_name: str, namespace: str = NAMESPACE) -> dict[str, str]:
    """node id -> pod name of the run's pods that still exist. Pods carry the node id in the
    workflows.argoproj.io/node-id annotation (stable across Argo's pod-naming versions)."""
    pods = kube.call("listing the run's pods", kube.core.list_namespaced_pod, namespace,
                     label_selector=f"workflows.argoproj.io/workflow={workflow_name}")
    by_node = {}
    for pod in pods.items:
        labels = pod.metadata.labels or {}
        if labels.get("workflows.argoproj.io/workflow") != workflow_name:
            continue  # selectors are filtered again here (not every API server stand-in honours them)
        node_id = (pod.metadata.annotations or {}).get("workflows.argoproj.io/node-id")
        if node_id:
            by_node[node_id] = pod.metadata.name
    return by_node


def pod_nodes_by_step(wf: Workflow, steps: list[str]) -> dict[str, list[NodeStatus]]:
    """The Pod nodes (one per attempt) of each step, oldest first: a fan-out child's pods are its own
    step's ("analyze(1:first:5,last:8)"), any other pod its DAG task's."""
    found: dict[str, list[NodeStatus]] = {s: [] for s in steps}
    for node in sorted(wf.status.nodes.values(), key=lambda n: n.started_at):
        if node.type != "Pod":
            continue
        for step in (step_of(node.name, wf.name), task_of(node.name, wf.name)):
            if step in found:
                found[step].append(node)
                break
    return found


def pods_by_task(kube: Any, workflow: dict[str, Any], tasks: list[str], namespace: str) -> dict[str, list[tuple[dict, str]]]:
    """(node, pod name) of every pod a task ran that still exists, oldest first."""
    wf = as_workflow(workflow)
    by_node = pod_names(kube, wf.name, namespace)
    return {step: [(node.raw, by_node[node.id]) for node in nodes if node.id in by_node]
            for step, nodes in pod_nodes_by_step(wf, tasks).items()}


# Said in a step's log file when its pod is gone before bioinfra could read it.
POD_GONE = ("(log not available: the pod is gone. Argo deletes a Workflow's pods when it succeeds "
            "(podGC OnWorkflowSuccess) and after a node is lost; bioinfra reads each pod's log as soon as its "
            "node finishes, so this one ended together with the Workflow or while nobody was following the run)\n")


class LogKeeper:
    """Each step's pod logs, read as soon as its node finishes, and written to <log_dir>/<step>.log.

    The Workflows ask Argo to delete their pods once they succeed (podGC OnWorkflowSuccess: Argo
    v3.7.18 workflow/controller/operator.go queues every pod of the Workflow for deletion right after
    the update that completes it, `queuePodsForCleanup`; pod/cleanup.go `determinePodCleanupAction`
    deletes on OnWorkflowSuccess + Succeeded; docs/workflow-controller-configmap.md: 5 s later by
    default). Reading the logs only at the end lost them; so the follow loop calls `update` with each
    status it sees and a log is on disk once its node is done. A pod already gone is said in the file,
    never an error."""

    def __init__(self, kube: Any, log_dir: Path, namespace: str = NAMESPACE):
        self.kube, self.log_dir, self.namespace = kube, log_dir, namespace
        self.texts: dict[str, tuple[str, str]] = {}  # node id -> (pod name, its log)

    def update(self, workflow: Union[dict[str, Any], Workflow], *, final: bool = False) -> dict[str, Path]:
        """Read the log of each Pod node that finished since the last call (with `final`, of every Pod
        node left, and say so for a pod that is gone); rewrite the log of each step that gained one."""
        wf = as_workflow(workflow)
        by_step = pod_nodes_by_step(wf, _log_steps(wf))
        wanted = [n for nodes in by_step.values() for n in nodes
                  if n.id not in self.texts and (final or n.phase in DONE)]
        if not wanted:
            return self._write(by_step) if final else {}
        pods = pod_names(self.kube, wf.name, self.namespace)
        changed = set()
        for node in wanted:
            pod = pods.get(node.id)
            if pod is None:
                self.texts[node.id] = ("(deleted)", POD_GONE)
            else:
                try:
                    self.texts[node.id] = (pod, self.kube.pod_log(self.namespace, pod))
                except Exception as exc:  # noqa: BLE001 - e.g. deleted between the list and the read
                    if not final:
                        continue  # tried again with the next status
                    self.texts[node.id] = (pod, f"(log not available: {exc})\n")
            changed.add(node.id)
        return self._write({s: nodes for s, nodes in by_step.items()
                            if final or any(n.id in changed for n in nodes)})

    def _write(self, by_step: dict[str, list[NodeStatus]]) -> dict[str, Path]:

        self.log_dir.mkdir(parents=True, exist_ok=True)
        written = {}
        for step, nodes in by_step.items():
            parts = []
            for i, node in enumerate((n for n in nodes if n.id in self.texts), 1):
                pod, text = self.texts[node.id]
                parts.append(f"===== attempt {i}: pod {pod}, {node.phase}"
                             + (f": {node.message}" if node.message else "") + " =====\n" + text)
            if parts:
                path = self.log_dir / f"{safe_file_name(step)}.log"
                path.write_text("\n".join(parts))
                written[step] = path
        return written


def _log_steps(workflow: Union[dict[str, Any], Workflow]) -> list[str]:
    """The steps that run pods, each with a log of its own: the DAG's tasks, a fan-out's children."""
    states = task_states(workflow, dag_tasks(workflow), Path("logs"), 0)
    return [name for name, state in states.items() if not state.children]


def save_logs(kube: Any, workflow: Union[dict[str, Any], Workflow], log_dir: Path, namespace: str = NAMESPACE,
              keeper: Optional[LogKeeper] = None) -> dict[str, Path]:
    """Every attempt's log of every step into <log_dir>/<step>.log (attempts in order, headed): the
    logs `keeper` read while following the run, the others read now (or said to be gone)."""
    keeper = keeper or LogKeeper(kube, log_dir, namespace)
    return keeper.update(workflow, final=True)


def fetch_results(store: Any, run_id: str, output: Path, progress: Optional[Callable[[int], None]] = None) -> list[Path]:
    return store.download(f"runs/{run_id}/", output, progress)


def write_manifest(output: Path, run_id: str, config: Config, kube: Any, workflow: dict[str, Any],
                   states: dict[str, TaskState], results_url: str, staged: Optional[list[dict[str, Any]]] = None) -> Path:
    from bioinfra import __version__

    files = sorted(p for p in output.rglob("*") if p.is_file() and ".bioinfra" not in p.relative_to(output).parts
                   and p.name not in ("manifest.json",))
    wf = as_workflow(workflow)
    manifest = {
        "bioinfra_version": __version__,
        "run_id": run_id,
        "target": config.target,
        "cluster": kube.server,
        "workflow": f"{wf.namespace or NAMESPACE}/{wf.name}",
        "phase": wf.status.phase or None,
        "message": wf.status.message,
        "started": wf.status.started_at or None,
        "finished": wf.status.finished_at or None,
        "results": results_url,
        "inputs": staged or [],
        "steps": {name: {"phase": s.phase, "attempts": s.attempts, "message": s.message,
                         "wall_seconds": s.wall_seconds} for name, s in states.items()},
        "outputs": {str(p.relative_to(output)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in files},
    }
    path = output / "manifest.json"
    write_json_atomic(path, manifest)
    return path


def finish_run(config: Config, kube: Any, store: Any, workflow: dict[str, Any], output: Path, retries: int,
               say: Callable[[str], None], staged: Optional[list[dict[str, Any]]] = None,
               keeper: Optional[LogKeeper] = None) -> ClusterOutcome:
    """After the Workflow ended: logs, results, manifest; raises StepFailedError if it failed."""
    wf = as_workflow(workflow)
    run_id = wf.name
    tasks = dag_tasks(wf)
    states = task_states(wf, tasks, output / "logs", retries)
    # One log per step that ran pods (a fan-out's children each have their own); most were saved
    # while following the run, as their nodes finished.
    logs = save_logs(kube, wf, output / "logs", keeper=keeper)
    say(f"saved {len(logs)} step log(s) under {output / 'logs'}")
    copied = fetch_results(store, run_id, output)
    say(f"copied {len(copied)} result file(s) from the cluster into {output}")
    _stage_out, results_url = results_location(config, run_id)
    manifest = write_manifest(output, run_id, config, kube, workflow, states, results_url, staged)
    phase = wf.status.phase or "Unknown"
    record_path = output / ".bioinfra" / "run.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        record["status"] = phase.lower()
        write_json_atomic(record_path, record)
    outcome = ClusterOutcome(run_id, output, phase, states, manifest, results_url)
    if phase != "Succeeded" and wf.labels.get("bioinfra.io/pipeline") == "cellprofiler":
        from bioinfra.core.screening import screen_failure

        result = RunResult(FAILED, states)
        error = screen_failure(run_id, output, result, read_json_or_empty(output / "results" / "gather.json"))
        error.message = error.message.replace(f"run {run_id} failed", f"run {run_id} {phase.lower()} on the cluster", 1)
        error.hint = (f"read the batch logs under {output / 'logs'}; the Workflow stays on the cluster for a day: "
                      f"`bioinfra runs status {run_id}`")
        raise error
    if phase != "Succeeded" and wf.labels.get("bioinfra.io/mode") == "samples":
        from bioinfra.core.samples import read_samples_tsv, samples_failure

        error = samples_failure(run_id, output, RunResult(FAILED, states), read_samples_tsv(output / "samples.tsv"))
        error.hint = (f"read the chunk logs under {output / 'logs'}; the Workflow stays on the cluster for a day: "
                      f"`bioinfra runs status {run_id}`")
        raise error
    if phase != "Succeeded":
        failed = [s for s in states.values() if s.phase == FAILED and not s.children] or list(states.values())[:1]
        step = failed[0]
        log = logs.get(step.name, step.log)
        error = StepFailedError(step.name, None, str(log), tail=log_tail(log, 40))
        error.message = (f"run {run_id} {phase.lower()} on the cluster: step '{step.name}' failed"
                         + (f" ({step.message})" if step.message else "") + f"; log: {log}")
        error.hint = (f"read the log; the Workflow stays on the cluster for a day: `bioinfra runs status {run_id}`,"
                      f" `bioinfra runs logs {run_id} --step {step.name}`")
        raise error
    return outcome


def run_on_cluster(config: Config, config_path: Optional[Path], req: Any, *, reporter: Any,
                   say: Callable[[str], None], input_progress: inputs_mod.Progress = None,
                   kube: Any = None, submit_run: Optional[Callable[..., Submitted]] = None) -> ClusterOutcome:
    """Submit (fastqc-to-bwa by default; `submit_run` for another pipeline), follow, finish."""
    kube = kube or kube_for(config, config_path)
    say(f"cluster {kube.server} (context {kube.context}, Kubernetes {kube.version()})")
    with open_workspace(kube) as store:
        sub = (submit_run or submit)(config, config_path, req, kube=kube, store=store, say=say,
                                     input_progress=input_progress)
        staged = [dataclasses.asdict(s) | {"remote": s.remote.url if s.remote else None} for s in sub.inputs]
        if req.detach:
            return ClusterOutcome(sub.run_id, sub.output, "Submitted", {}, None,
                                  results_location(config, sub.run_id)[1])
        tasks = dag_tasks(sub.workflow)
        keeper = LogKeeper(kube, sub.output / "logs")
        try:
            final = follow(kube, sub.run_id, tasks, sub.output / "logs", config.pipeline.retries, reporter,
                           keeper=keeper)
        except KeyboardInterrupt:
            raise InterruptedRunError(
                f"stopped watching run {sub.run_id}; it goes on running on the cluster",
                hint=f"`bioinfra runs status {sub.run_id}`, `bioinfra runs fetch {sub.run_id} -o {sub.output}` "
                     f"when it is done, or `bioinfra runs cancel {sub.run_id}`",
            ) from None
        states = task_states(final, tasks, sub.output / "logs", config.pipeline.retries)
        reporter.finished(RunResult(_PHASES.get(as_workflow(final).status.phase, FAILED), states))
        return finish_run(config, kube, store, final, sub.output, config.pipeline.retries, say, staged, keeper)


# -- runs list | status | logs | cancel | fetch -----------------------------------------------------


@dataclass
class RunSummary:
    run_id: str
    phase: str
    sample: str
    started: Optional[str]
    finished: Optional[str]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def list_runs(kube: Any) -> list[RunSummary]:
    key, value = MANAGED_LABEL
    found = []
    for wf in kube.list_workflows(NAMESPACE, label_selector=f"{key}={value}"):
        run = as_workflow(wf)
        labels = run.labels
        if labels.get(key) != value:
            continue
        found.append(RunSummary(run.name, run.status.phase or "Pending",
                                labels.get("bioinfra.io/sample", ""), run.status.started_at or None,
                                run.status.finished_at or None, run.status.message))
    return sorted(found, key=lambda r: r.started or "", reverse=True)


def get_run(kube: Any, run_id: str) -> dict[str, Any]:
    from bioinfra.adaptors.kube import KubeApiError
    from bioinfra.core.argo_nodes import inflate_nodes

    try:
        return inflate_nodes(kube.get_workflow(NAMESPACE, run_id))
    except KubeApiError as exc:
        if exc.status == 404:
            raise InputError(f"no run {run_id} on the cluster ({NAMESPACE} namespace)",
                             hint="`bioinfra runs list` shows the runs there; finished ones are removed after a day"
                             ) from None
        raise


def run_status(kube: Any, run_id: str, retries: int) -> tuple[dict[str, Any], dict[str, TaskState]]:
    workflow = get_run(kube, run_id)
    return workflow, task_states(workflow, dag_tasks(workflow), Path("logs"), retries)


def run_logs(kube: Any, run_id: str, step: Optional[str]) -> Iterator[tuple[str, str]]:
    """(step, text) for every attempt of every step (or one step); a pod already gone (Argo deletes a
    succeeded run's pods) is said, with where bioinfra saved its log while following the run."""
    workflow = get_run(kube, run_id)
    tasks = dag_tasks(workflow)
    if step is not None and step not in tasks:
        raise InputError(f"run {run_id} has no step '{step}'", hint=f"steps: {', '.join(tasks)}")
    wf = as_workflow(workflow)
    pods = pod_names(kube, wf.name, NAMESPACE)
    steps = [s for s in _log_steps(workflow) if step is None or s == step or task_of(f"{wf.name}.{s}", wf.name) == step]
    for name, nodes in pod_nodes_by_step(wf, steps).items():
        for node in nodes:
            pod = pods.get(node.id)
            if pod is None:
                yield (f"{name} (pod deleted, {node.phase})",
                       f"(the pod is gone: Argo deletes a succeeded run's pods; `bioinfra run` saved its log as "
                       f"<output>/logs/{safe_file_name(name)}.log while following the run, `bioinfra runs fetch "
                       f"{run_id}` cannot read it any more)\n")
                continue
            yield f"{name} (pod {pod}, {node.phase})", kube.pod_log(NAMESPACE, pod)


def cancel_run(kube: Any, run_id: str) -> str:
    """Terminate: Argo stops every running pod now and marks the run Failed (`argo terminate`)."""
    workflow = get_run(kube, run_id)
    phase = as_workflow(workflow).status.phase or None
    if phase in DONE:
        return f"run {run_id} already ended ({phase}); nothing to cancel"
    kube.patch_workflow(NAMESPACE, run_id, {"spec": {"shutdown": "Terminate"}})
    return f"run {run_id}: cancel requested; its pods are being stopped"


def fetch_run(config: Config, kube: Any, run_id: str, output: Path, say: Callable[[str], None]) -> ClusterOutcome:
    """Logs, results and manifest of a finished run into `output` (e.g. after `run --detach`)."""
    workflow = get_run(kube, run_id)
    phase = as_workflow(workflow).status.phase or None
    if phase not in DONE:
        raise InputError(f"run {run_id} is still {phase or 'Pending'}", hint=f"`bioinfra runs status {run_id}`")
    output.mkdir(parents=True, exist_ok=True)
    with open_workspace(kube) as store:
        return finish_run(config, kube, store, workflow, output, config.pipeline.retries, say)
