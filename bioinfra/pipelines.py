"""What every pipeline's Workflow template takes besides its own values: retry budgets, images,
pools, deadlines, cluster names (`common_variables`, `deadline_variables`, read by
bioinfra.engine.render), the limits on a run's width, and the checks and label values the engine
shares. The pipelines themselves are folders (templates/pipelines/, bioinfra.engine.spec).

A pipeline renders to one Argo Workflow for every target; only images, pool names and CPU sizes
differ between targets. Paths in the Workflow are relative to the shared workspace volume:

    references/<sha256[:16]>/<file>   content-addressed reference + its index (built once)
    inputs/<sha256[:16]>/<sample>_R1.fastq.gz
    runs/<run-id>/                     one run's outputs
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import yaml

from bioinfra.config import Config
from bioinfra.core.inputs import shown
from bioinfra.errors import InputError
from bioinfra.images import image_ref
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
# The taint of the spot pools (all but general; bioinfra.targets.gcp/aws node pools), in Kubernetes'
# spelling. The highcpu steps tolerate it (key Exists, effect NoSchedule: templates/workflows/_steps.j2
# and each pipeline's workflow.yaml.j2) and nothing else of ours does, so Argo, MinIO, CoreDNS and the
# cluster autoscaler stay on on-demand nodes, where a spot reclaim cannot take them down (#18.8).
SPOT_TAINT_VALUE = "true"
SPOT_TAINT_EFFECT = "NoSchedule"
WORKSPACE_CLAIM = "bioinfra-workspace"
WORKFLOW_SERVICE_ACCOUNT = "bioinfra-workflow"
MINIO_SECRET = "bioinfra-minio"  # root-user / root-password of the workspace S3 server (rclone serve s3; the name is MinIO's, kept)

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
# to the shell they are data whatever they hold; the engine sets them on the parsed Workflow
# (bioinfra.engine.render.fill) after checking each by its input's type (bioinfra.engine.inputs).

SAMPLE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a sample name (sheets, --sample)
TITLE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._,:()+-]{0,79}")  # --title (a report's heading)


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


def default_title(stem: str, fallback: str) -> str:
    """A title from a file's name when none was given: its characters outside --title's kept as '_'
    (a file may be called anything; a title goes into reports), or `fallback`."""
    cleaned = re.sub(r"[^A-Za-z0-9 ._,:()+-]", "_", stem)[:80]
    return cleaned if TITLE_RE.fullmatch(cleaned) else fallback


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
        "pool_preferred": get_target(target_name).pool_preferred,
        "spot_toleration": config.node_pools.highcpu.spot,
        "spot_taint_key": SPOT_TAINT_KEY,
        # `render` prints the Workflow as it is submitted: in the namespace the addons stack makes
        # and the controller watches (bioinfra.core.cluster_run submits there too).
        "namespace": WORKFLOW_NAMESPACE,
        "service_account": WORKFLOW_SERVICE_ACCOUNT,
        "workspace_claim": WORKSPACE_CLAIM,
    }


def load_workflow(text: str) -> dict[str, Any]:
    # libyaml's loader when PyYAML has it: ~10x faster than the pure-Python one on a Workflow.
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
