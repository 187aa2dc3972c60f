"""The pipelines bioinfra knows, and the variables their Workflow templates take.

A pipeline renders to one Argo Workflow for every target; only images, pool names and CPU sizes
differ between targets. Paths in the Workflow are relative to the shared workspace volume:

    references/<sha256[:16]>/<file>   content-addressed reference + its index (built once)
    inputs/<sha256[:16]>/<sample>_R1.fastq.gz
    runs/<run-id>/                     one run's outputs
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, fields
from typing import Any

import yaml

from bioinfra.config import Config
from bioinfra.core.inputs import shown
from bioinfra.errors import InputError
from bioinfra.images import image_ref
from bioinfra.render import render
from bioinfra.targets import get_target
from bioinfra.targets.addons import WORKFLOW_NAMESPACE

POOL_LABEL = "bioinfra.io/pool"
# podGC.deleteDelayDuration of every Workflow (#16). OnWorkflowSuccess deletes a succeeded run's pods
# after the controller's podGCDeleteDelayDuration (5 s by default), before a --detach run's logs or the
# last node's log can be read. Argo v3.7.18 pod_cleanup.go getPodGCDelay: a Workflow's own
# podGC.deleteDelayDuration (workflow_types.go PodGC, a Go duration) overrides the controller's. Chosen
# over archiveLogs to MinIO: the addons stack configures no artifact repository for Argo, and logs
# read from pods need nothing new. The pods' resources are released when they end; only the Pod
# objects stay this long (ttlStrategy removes the Workflow after a day anyway).
POD_GC_DELETE_DELAY = "24h"
SPOT_TAINT_KEY = "bioinfra.io/spot"
WORKSPACE_CLAIM = "bioinfra-workspace"
WORKFLOW_SERVICE_ACCOUNT = "bioinfra-workflow"
MINIO_SECRET = "bioinfra-minio"  # root-user / root-password of the onprem MinIO install

# What Argo records on a step attempt whose node went away rather than whose program failed
# (`lastRetry.message`, Argo >= 3.5): graceful node shutdown on spot/preemptible nodes ("Pod was
# terminated in response to imminent node shutdown."), kubelet evictions ("The node was low on
# resource: memory. ...", "The node had condition: [DiskPressure]. ...", reason "Evicted"), and
# the controller's "pod deleted". Go RE2 syntax (expr's `matches`), partial match; kept to plain
# alternatives so Python's `re` reads it the same way (tests/unit/test_render.py checks it).
PREEMPTION_MESSAGE_PATTERN = "imminent node shutdown|node was low on resource|node had condition|Evicted|pod deleted"
# Retry an attempt only for a node-level loss: an Error phase (pod deleted, node lost, the
# controller gave up on the pod) or one of the messages above. Both this and the retryPolicy must
# hold. Ref https://argo-workflows.readthedocs.io/en/latest/retries/#conditional-retries
PREEMPTION_RETRY_EXPRESSION = (
    f"lastRetry.status == \"Error\" || lastRetry.message matches '{PREEMPTION_MESSAGE_PATTERN}'"
)


# -- what may go into a Workflow (issue #15) -----------------------------------------------------
# Values reach step scripts only as environment variables (templates/workflows/_steps.j2, env), so
# to the shell they are data whatever they hold. These checks are for the places where Argo itself
# reads them: paths (`valueFrom.path`, the `bioinfra.io/outputs` annotation) must be plain
# workspace-relative paths, and no value may hold `{{` or `}}` (Argo substitutes a template twice,
# globals then inputs, so a tag inside a value would be expanded in the second pass) or control
# characters. Every render goes through `check_params`, whichever command or target asked for it.

SAMPLE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # as bioinfra.core.run checks --sample
TITLE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._,:()+-]{0,79}")  # --title (a report's heading)
_PATH_SEGMENT_RE = re.compile(r"[A-Za-z0-9_.-]+")
# An rclone source or destination: what cluster_run builds from a checked s3:// / gs:// URL.
_RCLONE_RE = re.compile(r"[^\x00-\x20\x7f'\"`$\\{}]+")


# A Kubernetes label value: at most 63 characters, empty or alphanumeric at both ends with '-', '_'
# and '.' between. Ref k8s.io/apimachinery/pkg/util/validation/validation.go, IsValidLabelValue
# (LabelValueMaxLength = 63; labelValueFmt = "(" + qualifiedNameFmt + ")?", qualifiedNameFmt =
# "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"). The API server refuses anything else with a 422.
LABEL_VALUE_MAX = 63
LABEL_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_LABEL_HASH = 8


def label_value(text: str) -> str:
    """`text` as a valid label value: itself when it is one, else its label characters (others as
    '_'), trimmed to alphanumeric ends and cut to fit, plus '-' and 8 hex digits of its SHA-256, so two
    names that differ only in what was changed still get different labels. Valid by construction."""
    if len(text) <= LABEL_VALUE_MAX and LABEL_VALUE_RE.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_LABEL_HASH]
    kept = re.sub(r"[^-A-Za-z0-9_.]", "_", text)[: LABEL_VALUE_MAX - _LABEL_HASH - 1]
    kept = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", kept)
    return f"{kept}-{digest}" if kept else digest


def check_sample_name(sample: str) -> str:
    if not SAMPLE_NAME_RE.fullmatch(sample):
        raise InputError(
            f"sample name {shown(sample)} is not allowed",
            hint="use 1-64 letters, digits, '.', '_' or '-' (it names output files); set it with --sample",
        )
    return sample


def check_title(title: str) -> str:
    if not TITLE_RE.fullmatch(title):
        raise InputError(f"--title {shown(title)}: use 1-80 letters, digits, spaces and . _ , : ( ) + -")
    return title


def default_title(stem: str, fallback: str) -> str:
    """A title from a file's name when none was given: its characters outside --title's kept as '_'
    (a file may be called anything; a title goes into reports), or `fallback`."""
    cleaned = re.sub(r"[^A-Za-z0-9 ._,:()+-]", "_", stem)[:80]
    return cleaned if TITLE_RE.fullmatch(cleaned) else fallback


def check_workspace_path(value: str, what: str) -> str:
    """A relative path of plain segments (letters, digits, '.', '_', '-'; no '.' or '..')."""
    segments = value.split("/")
    if not all(_PATH_SEGMENT_RE.fullmatch(s) and s not in (".", "..") for s in segments):
        raise InputError(f"{what} {shown(value)}: not a plain workspace-relative path",
                         hint="workspace paths are made by bioinfra; this one was not (a tampered run record?)")
    return value


def check_stage_in(lines: str) -> str:
    """One line per input: an rclone source, a tab, a workspace-relative destination."""
    for line in lines.split("\n"):
        if not line:
            continue  # blank lines are skipped by the step too
        src, tab, dst = line.partition("\t")
        if not tab or not _RCLONE_RE.fullmatch(src):
            raise InputError(f"stage-in source {shown(src)}: not an rclone location bioinfra made")
        check_workspace_path(dst, "stage-in destination")
    return lines


def check_stage_out(dest: str) -> str:
    if dest and not _RCLONE_RE.fullmatch(dest):
        raise InputError(f"stage-out destination {shown(dest)}: not an rclone location bioinfra made",
                         hint="check results_bucket in bioinfra.yaml")
    return dest


_PATH_FIELDS = {"r1", "r2", "reference", "run_dir", "sheet", "images_dir", "data_file", "illum_pipeline",
                "analysis_pipeline"}


def check_params(params: Any) -> None:
    """Every value of a pipeline's parameters, before it goes into a Workflow."""
    for f in fields(params):
        value = getattr(params, f.name)
        if f.name in _PATH_FIELDS:
            check_workspace_path(value, f.name.replace("_", "-"))
        elif f.name == "sample":
            check_sample_name(value)
        elif f.name == "title":
            check_title(value)
        elif f.name == "stage_in":
            check_stage_in(value)
        elif f.name == "stage_out":
            check_stage_out(value)
        elif value is not None and not isinstance(value, (bool, int)):
            raise TypeError(f"{type(params).__name__}.{f.name}: no check for a {type(value).__name__}")


@dataclass(frozen=True)
class FastqcToBwaParams:
    sample: str
    r1: str  # workspace-relative
    r2: str
    reference: str
    run_dir: str
    qc_gate: bool = False
    align_threads: int | None = None  # None: from the config
    # Cluster staging (empty on local: both tasks are Skipped). stage_in: one line per file,
    # "<rclone source>\t<workspace-relative destination>"; stage_out: an rclone destination.
    stage_in: str = ""
    stage_out: str = ""


@dataclass(frozen=True)
class CellProfilerParams:
    """A screen's run: every path workspace-relative (see bioinfra.core.screening for the layout)."""

    images_dir: str
    data_file: str
    illum_pipeline: str
    analysis_pipeline: str
    run_dir: str
    batch_size: int = 4
    title: str = "screen"
    parallelism: int | None = None  # --max-parallel: spec.parallelism
    image_sets: int | None = None  # rows of the data file, when known here: the fan-out width is checked
    stage_in: str = ""
    stage_out: str = ""


@dataclass(frozen=True)
class SamplesParams:
    """fastqc-to-bwa over a sample sheet (see bioinfra.core.samples): workspace-relative paths."""

    sheet: str  # the normalised TSV: sample, r1, r2, rg_id, rg_sm, rg_lb, rg_pl, rg_pu
    reference: str
    run_dir: str
    chunk_size: int | None = None  # None: "auto", decided by the plan step from the sheet
    # The most samples one chunk holds (a chunk step's deadline is per sample): set from the sheet by
    # core.samples.samples_params; None: chunk_size, or 1.
    per_chunk: int | None = None
    samples: int | None = None  # rows of the sheet, when known here: the fan-out width is checked
    align_threads: int | None = None
    title: str = "samples"
    parallelism: int | None = None
    stage_in: str = ""
    stage_out: str = ""


PIPELINES = {"fastqc-to-bwa": "workflows/fastqc-to-bwa.yaml.j2", "cellprofiler": "workflows/cellprofiler.yaml.j2"}
SAMPLES_TEMPLATE = "workflows/fastqc-to-bwa-samples.yaml.j2"
MAX_CHUNKS = 200  # --samples without --chunk-size: at most this many chunks (pods per stage)
# The widest run allowed: at most this many fan-out pods (cellprofiler analyze batches; --samples
# chunks times their three stages). Argo keeps a whole Workflow, with a status node for every step
# of it, in one Kubernetes object: the controller measures its JSON against 1 MiB
# (workflow/packer/packer.go getMaxWorkflowSize), past that stores status.nodes gzipped
# (status.compressedNodes), and fails the run when even that is over 1 MiB (bioinfra sets up no
# node status offloading). Ref docs/offloading-large-workflows.md (argo-workflows v3.7).
# Each fan-out child is 5 nodes (retry wrapper: Retry, Steps, StepGroup, Retry, Pod; about 780
# bytes each with every field Argo writes). tests/argo_status.py simulates the status of the widest
# run (tests/unit/test_workflow_defects.py): cellprofiler at 1,200 batches is 4.7 MB as JSON, 441 KiB
# stored compressed; --samples at 400 chunks 4.6 MB, 386 KiB: under half the limit, so that every
# child may fail once and be retried (a whole second subtree each: 752 / 697 KiB) and still fit.
# The raw JSON passes 1 MiB from about 260 batches / 90 chunks on: a status reader must read
# status.compressedNodes, as Argo's own clients do.
MAX_FAN_OUT_PODS = 1200
SAMPLE_STAGES = 3  # fastqc, align, stats: one pod per chunk each
# The steps of each pipeline (their `-attempt` templates), each with a deadline (config.RunSettings).
FASTQC_TO_BWA_STEPS = ("stage-in", "fastqc", "index-reference", "align", "samtools-stats", "multiqc", "stage-out")
SAMPLES_STEPS = ("stage-in", "plan", "index-reference", "fastqc", "align", "stats", "report", "stage-out")
CELLPROFILER_STEPS = ("stage-in", "plan", "illum", "analyze", "gather", "stage-out")


def deadline_variables(config: Config, steps: tuple[str, ...], items: dict[str, int] | None = None,
                       defaults: dict[str, str] | None = None) -> dict[str, Any]:
    """activeDeadlineSeconds of the Workflow and of each step's attempt, whole seconds from the
    validated config (config.RunSettings): ints, never text. `items`: how many samples / image sets
    one pod of a fan-out step is given (its deadline is per item). `defaults`: a pipeline's own
    per-step defaults (pipeline.yaml `deadlines`), used where the config sets none."""
    items = items or {}
    defaults = defaults or {}
    deadlines = {step: config.run.step_deadline(step, items.get(step, 1), defaults.get(step)) for step in steps}
    values = [config.run.workflow_deadline, *deadlines.values()]
    if not all(type(v) is int and v > 0 for v in values):  # noqa: E721 - exactly int, not bool
        raise TypeError(f"deadlines must be positive whole seconds: {values}")
    return {"workflow_deadline": config.run.workflow_deadline, "deadlines": deadlines}


def common_variables(config: Config, target_name: str, images: dict[str, str] | None = None) -> dict[str, Any]:
    """What every pipeline's template takes: retry budgets, images, pools, cluster names.
    `images` (name -> reference) overrides the target's registry, e.g. with locally built images."""
    registry = get_target(target_name).registry(config)
    images = images or {}
    return {
        "retries": config.pipeline.retries,
        "retry_backoff": config.pipeline.retry_backoff,
        "preemption_retries": config.pipeline.preemption_retries,
        "preemption_retry_expression": PREEMPTION_RETRY_EXPRESSION,
        "minio_secret": MINIO_SECRET,
        "images": {
            "fastqc": images.get("fastqc") or image_ref(registry, "fastqc"),
            "bwa_mem2": images.get("bwa-mem2") or image_ref(registry, "bwa-mem2"),
            "cellprofiler": images.get("cellprofiler") or image_ref(registry, "cellprofiler"),
        },
        "pool_label": POOL_LABEL,
        "pod_gc_delay": POD_GC_DELETE_DELAY,
        "pools": {"general": "general", "highcpu": "highcpu"},
        # onprem prefers the pool instead of requiring it (templates/workflows/_steps.j2 `pool`): an
        # existing cluster's nodes may carry no bioinfra.io/pool label, and a one-node cluster can hold
        # only one of general/highcpu. aws/gcp pools are always labelled by Terraform.
        "pool_preferred": target_name == "onprem",
        "spot_toleration": config.node_pools.highcpu.spot,
        "spot_taint_key": SPOT_TAINT_KEY,
        # `render` prints the Workflow as it is submitted: in the namespace the addons stack makes
        # and the controller watches (bioinfra.core.cluster_run submits there too).
        "namespace": WORKFLOW_NAMESPACE,
        "service_account": WORKFLOW_SERVICE_ACCOUNT,
        "workspace_claim": WORKSPACE_CLAIM,
    }


SCREENING_SCRIPTS = ("plan_batches", "gather")


def screening_scripts() -> dict[str, str]:
    """The plan and gather programs, pasted verbatim into their steps (not through Jinja).

    Argo substitutes every `{{...}}` in a script's source, so a program may not contain `{{`.
    """
    from bioinfra.render import templates_root

    scripts = {}
    for name in SCREENING_SCRIPTS:
        path = templates_root() / "workflows" / "cellprofiler" / f"{name}.py"
        text = path.read_text()
        if "{{" in text or "BIOINFRA_PY" in text:
            raise ValueError(f"{path} contains '{{{{' or the heredoc marker BIOINFRA_PY; it cannot go into a step")
        scripts[name] = text.rstrip("\n")
    return scripts


def check_fan_out_width(pipeline: str, params: Any) -> None:
    """Refuse, before anything is made, a run wider than MAX_FAN_OUT_PODS: the status of the run
    would not fit the one object Argo keeps it in. (The plan step checks it again in the cluster.)"""
    if isinstance(params, CellProfilerParams) and params.image_sets:
        batches = -(-params.image_sets // params.batch_size)
        if batches > MAX_FAN_OUT_PODS:
            need = -(-params.image_sets // MAX_FAN_OUT_PODS)
            raise InputError(
                f"{pipeline}: {params.image_sets:,} image sets in batches of {params.batch_size} make {batches:,} "
                f"analyze batches; one run may have at most {MAX_FAN_OUT_PODS:,}",
                hint=f"use --batch-size {need} or more, or split the screen into several runs (e.g. by plate). "
                     "Why: Argo keeps a run's status, a few nodes per batch, in one Kubernetes object of at most 1 MiB "
                     "(docs/pipelines/cellprofiler.md)")
    if isinstance(params, SamplesParams) and params.samples:
        size = params.chunk_size or max(1, -(-params.samples // MAX_CHUNKS))
        chunks = -(-params.samples // size)
        most = MAX_FAN_OUT_PODS // SAMPLE_STAGES
        if chunks > most:
            raise InputError(
                f"{pipeline} --samples: {params.samples:,} samples in chunks of {size} make {chunks:,} chunks; "
                f"one run may have at most {most:,} ({SAMPLE_STAGES} pods each)",
                hint=f"use --chunk-size {-(-params.samples // most)} or more, leave --chunk-size out (auto: at most "
                     f"{MAX_CHUNKS} chunks), or split the sheet. Why: Argo keeps a run's status, a few nodes per "
                     "chunk and stage, in one Kubernetes object of at most 1 MiB (docs/pipelines/samples.md)")


def screening_variables(
    config: Config, target_name: str, params: CellProfilerParams, images: dict[str, str] | None = None
) -> dict[str, Any]:
    check_params(params)
    check_fan_out_width("cellprofiler", params)
    return {
        **common_variables(config, target_name, images),
        "max_fan_out": MAX_FAN_OUT_PODS,
        # An analyze pod is given batch_size image sets.
        **deadline_variables(config, CELLPROFILER_STEPS, {"analyze": params.batch_size}),
        "images_dir": params.images_dir,
        "data_file": params.data_file,
        "illum_pipeline": params.illum_pipeline,
        "analysis_pipeline": params.analysis_pipeline,
        "run_dir": params.run_dir,
        "batch_size": params.batch_size,
        "title": params.title,
        "parallelism": params.parallelism,
        "stage_in": params.stage_in,
        "stage_out": params.stage_out,
        "scripts": screening_scripts(),
    }


def render_workflow(template: str, variables: dict[str, Any]) -> str:
    """The one place every pipeline's Workflow is rendered (render, run local and cluster): the text,
    linted first as the Argo v3.7 controller admits it (bioinfra.argo.check_workflow: validate.go's
    rules, the API server's name rules, the strict schema). A Workflow Argo would refuse raises
    WorkflowInvalidError (exit 4) with Argo's message, before anything is created or submitted."""
    from bioinfra.argo import check_workflow

    text = render(template, **variables)
    check_workflow(load_workflow(text))
    return text


def render_cellprofiler(
    config: Config, target_name: str, params: CellProfilerParams, images: dict[str, str] | None = None
) -> str:
    return render_workflow(PIPELINES["cellprofiler"], screening_variables(config, target_name, params, images))


def samples_variables(
    config: Config, target_name: str, params: SamplesParams, images: dict[str, str] | None = None
) -> dict[str, Any]:
    check_params(params)
    check_fan_out_width("fastqc-to-bwa", params)
    return {
        **common_variables(config, target_name, images),
        "max_fan_out_chunks": MAX_FAN_OUT_PODS // SAMPLE_STAGES,
        # A chunk's pod is given up to per_chunk samples.
        **deadline_variables(config, SAMPLES_STEPS, dict.fromkeys(("fastqc", "align", "stats"),
                                                                      params.per_chunk or params.chunk_size or 1)),
        "sheet": params.sheet,
        "reference": params.reference,
        "run_dir": params.run_dir,
        "chunk_size": params.chunk_size,
        "max_chunks": MAX_CHUNKS,
        "align_threads": params.align_threads or config.pipeline.align_threads,
        "align_memory": config.pipeline.align_memory,
        "title": params.title,
        "parallelism": params.parallelism,
        "stage_in": params.stage_in,
        "stage_out": params.stage_out,
    }


def render_samples(config: Config, target_name: str, params: SamplesParams, images: dict[str, str] | None = None) -> str:
    return render_workflow(SAMPLES_TEMPLATE, samples_variables(config, target_name, params, images))


def template_variables(
    config: Config, target_name: str, params: FastqcToBwaParams, images: dict[str, str] | None = None
) -> dict[str, Any]:
    check_params(params)
    return {
        **common_variables(config, target_name, images),
        **deadline_variables(config, FASTQC_TO_BWA_STEPS),
        "sample": params.sample,
        # A sample name may end in '_' or run to 64 characters; a label value may not (see label_value).
        "sample_label": label_value(params.sample),
        "r1": params.r1,
        "r2": params.r2,
        "reference": params.reference,
        "run_dir": params.run_dir,
        "qc_gate": params.qc_gate,
        "align_threads": params.align_threads or config.pipeline.align_threads,
        "align_memory": config.pipeline.align_memory,
        "stage_in": params.stage_in,
        "stage_out": params.stage_out,
    }


def render_fastqc_to_bwa(
    config: Config, target_name: str, params: FastqcToBwaParams, images: dict[str, str] | None = None
) -> str:
    return render_workflow(PIPELINES["fastqc-to-bwa"], template_variables(config, target_name, params, images))


def load_workflow(text: str) -> dict[str, Any]:
    # libyaml's loader when PyYAML has it: ~10x faster than the pure-Python one on a Workflow.
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
