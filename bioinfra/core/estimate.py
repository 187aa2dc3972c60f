"""`bioinfra estimate` and the budget guard of `bioinfra run` (issue #8): node-hours and USD of a run.

The model, in four steps, each stated in the estimate's `assumptions`:

1. **Work per step.** The pipeline's typed inputs say what to measure (bioinfra.engine.spec
   WORK_UNITS): FASTQ inputs and a sample sheet's FASTQs give reads, read pairs and read bases
   (sampled, not read whole), a FASTA the reference's bases, a LoadData file its image sets, and an
   int input such as --batch-size / --chunk-size how many pods a fan-out step has (the engine's
   `fan_out`). Each step's CPU-seconds come from its pipeline.yaml `throughput` entry, data and not
   code: a start-up per pod + seconds per item (sample, image set) + units / rate (units per second
   per core) for each work term. The numbers of the built-ins were MEASURED with bioinfra's own
   steps and each says how beside it in templates/pipelines/NAME/pipeline.yaml (docs/cost.md);
   an unmeasured one says so. A pod's hours = its CPU-seconds / the threads it runs (a `threaded`
   step: its CPU request).
2. **Where it runs.** The pool, CPU and memory request of every step are read from the Workflow
   the run would submit (rendered here with the same config by the engine), so the estimate
   follows the templates (pipeline.yaml `resources` where a template requests nothing); the pool's
   machine type and spot setting come from `node_pools`.
3. **What it pays.** A pod pays the share of a node it occupies: if k such pods fit on a node
   (allocatable = capacity less the kubelet's reservations and the daemonsets), 1/k of the node's
   hourly price per hour it runs. Pools that grow for the run pay each added node's boot and the
   autoscaler's scale-down delay; a pool's standing nodes (`min`) are paid for the makespan.
4. **How long.** The makespan is the longest path through the Workflow's DAG, a step taking as
   many waves of pods as the pool's `max` nodes need; the control plane's fee is paid for it.

Prices: bioinfra/data/prices.yaml (list prices of a date; spot prices are typical, not quotes).
Not counted: storage (EFS/Filestore, buckets, disks), NAT gateways, egress, load balancers,
logs, stage-in/stage-out copies, retries (failures or spot reclaims), discounts.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import statistics
import zlib
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from bioinfra.argo.model import Template, Workflow
from bioinfra.errors import InputError, OverBudgetError, UnsupportedError

if TYPE_CHECKING:
    from bioinfra.config import Config, NodePool
    from bioinfra.engine.spec import ModeSpec, PipelineSpec, ThroughputSpec

PRICES_FILE = Path(__file__).resolve().parents[1] / "data" / "prices.yaml"
PRICED_TARGETS = ("aws", "gcp")  # the price table's sections (bioinfra/data/prices.yaml)
STALE_AFTER_DAYS = 180  # a price table older than this is said to be stale
# The engine's copies in and out of the workspace: not counted (see "not counted" above).
COPY_STEPS = ("stage-in", "stage-out")

# -- sizing inputs without reading them whole ---------------------------------------------------------
# Reads: bytes per read pair of the bundled gzip files (1,012,237 B / 6,000 pairs = 168.7; the
# 100,000-pair simulation: 168.1) and of plain FASTQ (221 B per 100-bp read). Used only for files
# that cannot be sampled (each local FASTQ's first MiB is read to measure its own ratio).
GZ_BYTES_PER_PAIR = 168.4
PLAIN_BYTES_PER_PAIR = 442.0
DEFAULT_READ_LENGTH = 100
FASTQ_SAMPLE_BYTES = 1 << 20
FASTQ_SAMPLED_FILES = 16  # beyond this many files, the others take the median ratio of these
# Reference bases per byte: lambda_phage.fa.gz 3.149, a 20 Mb random FASTA gzipped 3.18; plain
# FASTA with 60-80 columns ~0.985.
GZ_BASES_PER_BYTE = 3.15
PLAIN_BASES_PER_BYTE = 0.985
UNKNOWN_REFERENCE_BASES = 3.1e9  # a reference that cannot be sized (s3:// / gs://) is taken as GRCh38-sized

# -- cluster assumptions (not measured: documented defaults) ----------------------------------------
# Kubelet reservations: GKE's documented formula, used for EKS too (its AMI reserves slightly less):
# Ref https://cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes#memory_and_cpu_reservations
EVICTION_GIB = 0.1
DAEMONSET_CPU = 0.3  # CNI, kube-proxy, CSI node drivers, log agents: their requests on every node
DAEMONSET_MEMORY_GIB = 0.6
POD_START_S = 10.0  # schedule + start a container whose image the node already has
NODE_START_S = 150.0  # a node added by the autoscaler: boot, join, first image pull (billed)
# cluster-autoscaler's --scale-down-unneeded-time default (GKE's OPTIMIZE_UTILIZATION is quicker):
# Ref https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/FAQ.md
SCALE_DOWN_S = 600.0


# -- price table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodePrice:
    machine_type: str
    spot: bool
    usd_per_hour: float  # the node, GPUs included
    vcpus: float
    memory_gib: float
    region: str  # the price table's region used
    notes: tuple[str, ...] = ()


class PriceTable:
    """bioinfra/data/prices.yaml: per cloud, region and machine type, on-demand and spot USD/hour."""

    def __init__(self, data: dict[str, Any], source: Path = PRICES_FILE) -> None:
        self.data = data
        self.source = source
        problems = self.problems()
        if problems:
            raise UnsupportedError(f"the price table {source} is not usable: {'; '.join(problems[:5])}",
                                   hint="restore it from the package, or fix the entries named")

    @classmethod
    def load(cls, path: Path = PRICES_FILE) -> PriceTable:
        return _load_table(path)

    @property
    def as_of(self) -> dt.date:
        value = self.data["as_of"]
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))

    def problems(self) -> list[str]:
        """The schema, checked: dated, both clouds, every price a positive on_demand and spot."""
        d, problems = self.data, []
        if not isinstance(d, dict):
            return ["not a mapping"]
        try:
            dt.date.fromisoformat(str(d.get("as_of")))
        except ValueError:
            problems.append("as_of: missing or not a date (YYYY-MM-DD)")
        for cloud, shapes_key in (("aws", "instance_types"), ("gcp", "machine_types")):
            section = d.get(cloud)
            if not isinstance(section, dict):
                problems.append(f"{cloud}: missing")
                continue
            fee = (section.get("control_plane") or {}).get("usd_per_hour")
            if not isinstance(fee, (int, float)) or fee < 0:
                problems.append(f"{cloud}.control_plane.usd_per_hour: missing")
            shapes = section.get(shapes_key) or {}
            for name, shape in shapes.items():
                if not (isinstance(shape, dict) and shape.get("vcpus", 0) > 0 and shape.get("memory_gib", 0) > 0):
                    problems.append(f"{cloud}.{shapes_key}.{name}: needs vcpus and memory_gib")
            for region, table in (section.get("regions") or {}).items():
                # Read by the table's own shape, not the cloud's name: a gcp region nests machines and
                # gpus (priced per GPU); an aws region is the instance types themselves.
                nested = shapes_key == "machine_types"
                machines = table.get("machines", {}) if nested else table
                groups = [("machines" if nested else "", machines)]
                if nested:
                    groups.append(("gpus", table.get("gpus", {})))
                for group, entries in groups:
                    for name, price in (entries or {}).items():
                        where = ".".join(p for p in (cloud, "regions", region, group, name) if p)
                        if not (isinstance(price, dict) and all(
                                isinstance(price.get(k), (int, float)) and price[k] > 0 for k in ("on_demand", "spot"))):
                            problems.append(f"{where}: needs positive on_demand and spot")
                        elif price["spot"] > price["on_demand"]:
                            problems.append(f"{where}: spot above on_demand")
                        if group != "gpus" and name not in shapes:
                            problems.append(f"{where}: no shape in {cloud}.{shapes_key}")
            if not section.get("regions"):
                problems.append(f"{cloud}.regions: empty")
        return problems

    def control_plane(self, cloud: str) -> tuple[str, float]:
        fee = self.data[cloud]["control_plane"]
        return fee.get("name", cloud.upper()), float(fee["usd_per_hour"])

    def region_for(self, cloud: str, region: Optional[str]) -> tuple[str, Optional[str]]:
        """The table's region for a config region, and a note when it stands in for another."""
        section = self.data[cloud]
        regions = section["regions"]
        if region in regions:
            return str(region), None
        families = section.get("region_families", {})
        family = str(region or "").split("-")[0]
        used = families.get(family) or families.get("default") or next(iter(regions))
        return used, f"no prices for {region} in the table: {used}'s are used (refresh the table to add it)"

    def node_price(self, cloud: str, region: Optional[str], pool: NodePool) -> NodePrice:
        used, region_note = self.region_for(cloud, region)
        notes = [region_note] if region_note else []
        section = self.data[cloud]
        table = section["regions"][used]
        # The table's shape says how to read it (see validate): gcp nests machines and per-GPU prices.
        nested = "machine_types" in section
        machines = table["machines"] if nested else table
        shapes = section["machine_types" if nested else "instance_types"]
        price, shape, scaled = _priced(pool.machine_type, machines, shapes)
        if price is None:
            raise UnsupportedError(
                f"no price for {cloud} machine type {pool.machine_type} in {used} (price table of {self.as_of})",
                hint=f"add it to {self.source} (the file says where prices come from), or use a priced type",
            )
        if scaled:
            notes.append(f"{pool.machine_type} is not in the table: priced as {scaled}, scaled by size")
        kind = "spot" if pool.spot else "on_demand"
        usd = float(price[kind])
        if nested and pool.gpu is not None:  # aws: the instance type's price includes its GPUs
            gpu_type = pool.gpu.type or ""
            gpu = table.get("gpus", {}).get(gpu_type)
            if gpu is None:
                raise UnsupportedError(f"no price for GPU {gpu_type or '(no type)'} in {used} "
                                       f"(price table of {self.as_of})", hint=f"add it to {self.source}")
            usd += float(gpu[kind]) * pool.gpu.count
        return NodePrice(pool.machine_type, pool.spot, usd, float(shape["vcpus"]), float(shape["memory_gib"]), used,
                         tuple(notes))


@cache
def _load_table(path: Path) -> PriceTable:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UnsupportedError(f"the price table {path} cannot be read: {exc.strerror}",
                               hint="reinstall bioinfra: the table ships with the package") from None
    return PriceTable(data, path)


_AWS_SIZE = re.compile(r"^(?P<family>[a-z0-9-]+)\.(?P<n>\d*)(?P<size>medium|large|xlarge)$")
_GCP_SIZE = re.compile(r"^(?P<family>[a-z0-9]+-[a-z]+)-(?P<n>\d+)$")


def _size_units(machine_type: str) -> Optional[tuple[str, float]]:
    """(family, size in a unit linear in price) or None: c6i.4xlarge -> ("c6i", 4); n2-standard-8 -> ("n2-standard", 8).
    The two naming schemes cannot be confused (an EC2 type has a dot, a GCE type none)."""
    m = _AWS_SIZE.match(machine_type)
    if m:
        base = {"medium": 0.25, "large": 0.5, "xlarge": 1.0}[m["size"]]
        return m["family"], base * (int(m["n"]) if m["n"] else 1)
    m = _GCP_SIZE.match(machine_type)
    return (m["family"], float(m["n"])) if m else None


def _priced(machine_type: str, machines: dict[str, Any], shapes: dict[str, Any]
            ) -> tuple[Optional[dict[str, float]], dict[str, float], Optional[str]]:
    """The price and shape of a machine type; a missing size of a priced family is scaled linearly."""
    if machine_type in machines:
        return machines[machine_type], shapes[machine_type], None
    wanted = _size_units(machine_type)
    if wanted is None:
        return None, {}, None
    for known in machines:
        have = _size_units(known)
        if have and have[0] == wanted[0]:
            f = wanted[1] / have[1]
            price = {k: v * f for k, v in machines[known].items()}
            shape = {k: v * f for k, v in shapes[known].items()}
            return price, shape, f"{f:g} x {known}"
    return None, {}, None


def allocatable(vcpus: float, memory_gib: float) -> tuple[float, float]:
    """What pods can request on a node: capacity less the kubelet's reservations (GKE's formula),
    the eviction threshold and the daemonsets' requests."""
    cpu_reserved = 0.0
    for upto, rate in ((1, 0.06), (2, 0.01), (4, 0.005), (math.inf, 0.0025)):
        prev = {1: 0, 2: 1, 4: 2, math.inf: 4}[upto]
        cpu_reserved += max(0.0, min(vcpus, upto) - prev) * rate
    if memory_gib < 1:
        mem_reserved = 0.25
    else:
        mem_reserved = 0.0
        for lo, hi, rate in ((0, 4, 0.25), (4, 8, 0.20), (8, 16, 0.10), (16, 128, 0.06), (128, math.inf, 0.02)):
            mem_reserved += max(0.0, min(memory_gib, hi) - lo) * rate
    return (vcpus - cpu_reserved - DAEMONSET_CPU,
            memory_gib - mem_reserved - EVICTION_GIB - DAEMONSET_MEMORY_GIB)


def cpu_quantity(value: Any) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "": 1}


def memory_gib(value: Any) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(value))
    if not m:
        raise ValueError(f"not a memory quantity: {value!r}")
    return float(m[1]) * _MEMORY_UNITS[m[2] or ""] / 2**30


# -- inputs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadsInfo:
    """One FASTQ file's size in reads and bases (estimated from a sample of the file)."""

    path: str
    bytes: int
    reads: float
    bases: float
    how: str  # "counted" (the whole file was read), "sampled", "typical ratio", "not sized"


def _remote(value: Union[str, Path, None]) -> bool:
    return isinstance(value, str) and value.startswith(("s3://", "gs://"))


def measure_fastq(path: Path, sample_bytes: int = FASTQ_SAMPLE_BYTES) -> Optional[tuple[float, float, bool]]:
    """(bytes per read, mean read length, whole file read?) from the file's first `sample_bytes`.
    None if the start is not FASTQ (the run's own checks will say why)."""
    with open(path, "rb") as fh:
        raw = fh.read(sample_bytes)
        whole = fh.read(1) == b""
    if raw[:2] == b"\x1f\x8b":
        text, rest = b"", raw
        try:
            while rest:  # multi-member files (bgzip, cat a.gz b.gz) are several gzip streams
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                text += d.decompress(rest)
                rest = d.unused_data
        except zlib.error:
            pass  # a sample cut mid-stream: what was decompressed is enough
    else:
        text = raw
    lines = text.split(b"\n")
    records = (len(lines) - 1) // 4  # the last line may be cut
    if records < 1 or not lines[0].startswith(b"@"):
        return None
    used = b"\n".join(lines[: records * 4]) + b"\n"
    bases = sum(len(lines[i * 4 + 1].strip()) for i in range(records))
    compressed_per_plain = len(raw) / len(text) if text else 1.0
    return len(used) * compressed_per_plain / records, bases / records, whole


def size_fastqs(paths: list[Union[str, Path]]) -> tuple[list[ReadsInfo], list[str]]:
    """Reads and bases of every file; missing files are collected (all of them), not raised one by one."""
    infos: list[ReadsInfo] = []
    missing: list[str] = []
    measured: list[tuple[float, float]] = []
    for value in paths:
        if _remote(value):
            infos.append(ReadsInfo(str(value), 0, 0.0, 0.0, "not sized"))
            continue
        path = Path(value)
        if not path.is_file():
            missing.append(str(path))
            continue
        size = path.stat().st_size
        ratio = measure_fastq(path) if len(measured) < FASTQ_SAMPLED_FILES else None
        if ratio is not None:
            per_read, length, whole = ratio
            measured.append((per_read, length))
            how = "counted" if whole else "sampled"
        elif measured:
            per_read = statistics.median(m[0] for m in measured)
            length = statistics.median(m[1] for m in measured)
            how = "typical ratio"
        else:
            gz = path.name.endswith(".gz")
            per_read = (GZ_BYTES_PER_PAIR if gz else PLAIN_BYTES_PER_PAIR) / 2
            length = DEFAULT_READ_LENGTH
            how = "typical ratio"
        reads = size / per_read if per_read else 0.0
        infos.append(ReadsInfo(str(path), size, reads, reads * length, how))
    return infos, missing


def reference_bases(reference: Union[str, Path, None], flag: str = "--reference") -> tuple[float, str]:
    """The reference's length in bases, from its size (or its .fai), and how it was found."""
    from bioinfra.sampledata import bundled

    if reference is None:
        reference = bundled().reference
    if _remote(reference):
        return UNKNOWN_REFERENCE_BASES, f"{reference} not sized: taken as {UNKNOWN_REFERENCE_BASES:,.0f} bases (GRCh38)"
    path = Path(reference)
    if not path.is_file():
        raise InputError(f"{flag} {path} does not exist", hint="check the path")
    fai = path.with_name(path.name + ".fai")
    if fai.is_file():
        try:
            return float(sum(int(line.split("\t")[1]) for line in fai.read_text().splitlines() if line)), "from its .fai"
        except (IndexError, ValueError):
            pass
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    size = path.stat().st_size
    return size * (GZ_BASES_PER_BYTE if gz else PLAIN_BASES_PER_BYTE), "from its file size"


def count_image_sets(data_file: Path, flag: str = "--data-file") -> int:
    """Rows of a LoadData CSV (one per image set); blank lines skipped."""
    try:
        with open(data_file, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except FileNotFoundError:
        raise InputError(f"{flag} {data_file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{flag} {data_file}: cannot read it ({exc})") from None
    if len(rows) < 2:
        raise InputError(f"{flag} {data_file}: no image sets (a header and one row per image set)")
    return len(rows) - 1


# -- the estimate -----------------------------------------------------------------------------------


@dataclass
class StepCost:
    step: str  # the Workflow task
    pods: int
    pool: str
    machine_type: str
    spot: bool
    cpu_request: float
    memory_request_gib: float
    pods_per_node: int
    hours_per_pod: float
    node_hours: float
    usd_per_node_hour: float
    usd: float
    basis: str  # what the work was computed from


@dataclass
class CostItem:
    name: str  # "scale-up/down", "idle standing nodes", "control plane"
    pool: str
    machine_type: str
    spot: Optional[bool]
    hours: float  # node-hours (or control-plane hours)
    usd: float
    note: str = ""


@dataclass
class Estimate:
    pipeline: str
    target: str
    region: str
    price_region: str
    prices_as_of: str
    currency: str
    inputs: dict[str, Any]
    steps: list[StepCost]
    overheads: list[CostItem]
    control_plane: CostItem
    makespan_hours: float
    total_node_hours: float
    total_usd: float
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def items(self) -> list[tuple[str, float]]:
        """Every cost line, most expensive first: (name, USD)."""
        lines = [(f"{s.step} ({s.pool} {s.machine_type}{' spot' if s.spot else ''})", s.usd) for s in self.steps]
        lines += [(f"{o.name} ({o.pool})", o.usd) for o in self.overheads]
        lines.append((self.control_plane.name, self.control_plane.usd))
        return sorted(lines, key=lambda item: -item[1])

    def top_items(self, n: int = 3) -> list[tuple[str, float]]:
        return self.items()[:n]

    @property
    def summary(self) -> str:
        parts = []
        i = self.inputs
        if "samples" in i:
            parts.append(f"{i['samples']:,} sample{'s' if i['samples'] != 1 else ''}")
        if "read_pairs" in i:
            parts.append(f"{i['read_pairs']:,.0f} read pairs")
        if "image_sets" in i:
            parts.append(f"{i['image_sets']:,} image sets")
        return ", ".join(parts)


@dataclass(frozen=True)
class Work:
    """A step's work: `pods` pods of `cpu_seconds` each (threaded: spread over its CPU request at
    `efficiency`)."""

    pods: int
    cpu_seconds: float
    basis: str
    threaded: bool = False
    efficiency: float = 1.0


def estimate(config: Config, pipeline: Union[str, PipelineSpec], *, prices: Optional[PriceTable] = None,
             today: Optional[dt.date] = None, seconds_per_set: Optional[float] = None,
             search_path: Union[list[Path], tuple[Path, ...]] = (), **given: Any) -> Estimate:
    """`estimate_pipeline` for a pipeline by name (built-in or on `search_path`), folder or spec,
    its inputs as keywords named as in its pipeline.yaml (r1=..., samples=..., batch_size=...)."""
    from bioinfra.engine.spec import PipelineSpec, find_pipeline

    spec = pipeline if isinstance(pipeline, PipelineSpec) else find_pipeline(str(pipeline), search_path)
    return estimate_pipeline(config, spec, given, prices=prices, today=today, seconds_per_set=seconds_per_set)


def estimate_pipeline(config: Config, spec: PipelineSpec, given: dict[str, Any], *,
                      prices: Optional[PriceTable] = None, today: Optional[dt.date] = None,
                      seconds_per_set: Optional[float] = None) -> Estimate:
    """Node-hours and USD of running `spec` with these inputs (input name -> value, as `bioinfra run`
    takes them; none given: the bundled sample) on config.target (aws or gcp). The typed inputs say
    what is measured, the pipeline.yaml's `throughput` what each step's work is: no per-pipeline code.

    Raises UnsupportedError for targets without prices (local, onprem) or unpriced machine types, and
    InputError for missing input files (all of them named) or inputs the pipeline does not take."""
    from bioinfra.engine.engine import fan_out
    from bioinfra.engine.inputs import CheckedInput

    if config.target not in PRICED_TARGETS:
        from bioinfra.targets import get_target

        hardware = "this machine" if get_target(config.target).runs_locally else "your own hardware"
        raise UnsupportedError(
            f"no prices for target {config.target}: {hardware}"
            " costs what you paid for it, which bioinfra cannot know",
            hint="`--target aws` or `--target gcp` estimates the same run in that cloud",
        )
    prices = prices or PriceTable.load()
    assumptions: list[str] = []
    warnings: list[str] = []
    mode, values, defaulted = estimate_values(spec, given)
    measured = measure_inputs(spec, mode, values, assumptions, warnings, defaulted)
    stand_ins = [spec.input(n).option for n in measured.sized if n in defaulted]
    if stand_ins and any(n not in defaulted for n in measured.sized):
        assumptions.append(f"{', '.join(stand_ins)}: not given, so the bundled sample's is counted")
    holder = next((n for n in measured.sized if measured.item_counts.get(n)), None)
    checked = {holder: CheckedInput(spec.input(holder), values[holder], items=measured.item_counts[holder])} \
        if holder else {}
    shape = fan_out(spec, mode, checked, values)
    inputs = dict(measured.inputs)
    if shape:
        size_input = next(iter(set(mode.items_per_pod.values())))
        inputs[size_input] = shape["per_pod"]
        inputs[_pods_key(size_input)] = shape["pods"]
    workflow = workflow_for(config, spec, mode, values, shape)
    shapes = workflow_tasks(workflow)
    work = step_work(spec, mode, shapes, measured, shape, seconds_per_set, assumptions, warnings)
    where = (f"templates/pipelines/{spec.name}/pipeline.yaml" if spec.builtin else str(spec.folder / "pipeline.yaml"))
    assumptions.insert(0, f"work per step: the `throughput` of {where}, where each number says how it was measured "
                          "(docs/cost.md)")
    return _cost(config, spec, workflow, work, inputs, prices, assumptions, warnings, today or dt.date.today())


def _pods_key(size_input: str) -> str:
    """The estimate's `inputs` key for a fan-out's pod count: chunk_size -> chunks, batch_size -> batches."""
    if not size_input.endswith("_size"):
        return "pods"
    stem = size_input[: -len("_size")]
    return stem + ("es" if stem.endswith(("s", "x", "ch", "sh")) else "s")


# -- inputs: what the typed inputs say to measure -------------------------------------------------


def estimate_values(spec: PipelineSpec, given: dict[str, Any]) -> tuple[ModeSpec, dict[str, Any], list[str]]:
    """The run's mode and every input's value: given, else its default (the bundled sample's data).
    Unlike `run`, a bundled input may stand in for one not given (an estimate of your reads against
    the bundled reference is still an estimate, and says so), except a FASTQ's mate: R1 and R2 go
    together. Returns (mode, values, the names whose bundled default was used)."""
    from bioinfra.engine.inputs import check_scalar, resolve_values
    from bioinfra.engine.spec import FILE_TYPES, FOLDER_TYPES

    known = {i.name for i in spec.inputs}
    unknown = [n for n, v in given.items() if v is not None and n not in known]
    if unknown:
        raise InputError(f"{', '.join('--' + n.replace('_', '-') for n in unknown)}: not an input of {spec.name} "
                         f"(its inputs: {', '.join(i.option for i in spec.inputs)})",
                         hint=f"`bioinfra estimate {spec.name} --help` lists them")
    present = {n for n, v in given.items() if v is not None}
    mode = spec.mode_for(present)
    outside = [spec.input(n).option for n in present if n not in mode.inputs]
    if outside:
        raise InputError(f"{', '.join(outside)}: not with this run's inputs "
                         f"({', '.join(spec.input(n).option for n in mode.inputs)})")
    for n in mode.inputs:
        i = spec.input(n)
        partner = i.mate or next((o.name for o in spec.inputs if o.mate == n), None)
        if partner and partner in mode.inputs and (n in present) != (partner in present) and n in present:
            first, second = sorted((n, partner), key=[o.name for o in spec.inputs].index)
            raise InputError(f"give {spec.input(first).option} and {spec.input(second).option} together "
                             "(or neither, for the bundled sample)")
    bundled = {n for n in mode.inputs
               if isinstance(spec.input(n).default, str) and str(spec.input(n).default).startswith("bundled:")}
    values = resolve_values(spec, mode, {n: v for n, v in given.items() if v is not None and n not in bundled})
    for n in bundled & present:
        values[n] = given[n]
    for n in mode.inputs:
        if spec.input(n).type not in FILE_TYPES + FOLDER_TYPES and values.get(n) is not None:
            values[n] = check_scalar(spec.input(n), values[n]).value
    return mode, values, sorted(bundled - present, key=mode.inputs.index)


@dataclass
class Measured:
    """What the work model counts in a run's inputs (bioinfra.engine.spec WORK_UNITS)."""

    totals: dict[str, float] = field(default_factory=dict)  # unit -> the run's total
    by_input: dict[str, dict[str, float]] = field(default_factory=dict)  # input -> unit -> its own
    item_counts: dict[str, int] = field(default_factory=dict)  # input -> the items it holds (fan-out)
    items: int = 1  # samples / image sets of the run
    noun: str = "item"
    sized: list[str] = field(default_factory=list)  # the inputs measured
    uneven: bool = False  # items of different sizes (a fan-out's pods differ from the mean)
    inputs: dict[str, Any] = field(default_factory=dict)  # the estimate's `inputs` record

    def add(self, name: str, **units: float) -> None:
        own = self.by_input.setdefault(name, {})
        for unit, amount in units.items():
            own[unit] = own.get(unit, 0.0) + amount
            self.totals[unit] = self.totals.get(unit, 0.0) + amount


def _pair(a: ReadsInfo, b: ReadsInfo) -> float:
    return min(a.reads, b.reads) if a.reads and b.reads else max(a.reads, b.reads)


def measure_inputs(spec: PipelineSpec, mode: ModeSpec, values: dict[str, Any], assumptions: list[str],
                   warnings: list[str], defaulted: Union[list[str], tuple[str, ...]] = ()) -> Measured:
    """Size every input the work model counts, by its type, cheaply: FASTQs from their first MiB
    (size_fastqs), a reference from its .fai or size, a LoadData file by its rows. Every missing FASTQ
    is named at once."""
    from bioinfra.engine.sheets import read_sheet

    m = Measured()
    fastqs: list[tuple[str, Union[str, Path]]] = []  # (input or "sheet row", path)
    where: dict[str, str] = {}
    sheets: dict[str, Any] = {}
    for n in mode.inputs:
        i = spec.input(n)
        value = values.get(n)
        if value is None:
            continue
        if i.type == "fastq":
            fastqs.append((n, value))
            where[str(value)] = i.option
        elif i.type == "sample_sheet":
            if _remote(value):
                raise InputError(f"{i.option} {value}: a sample sheet is a local file (its FASTQs may be anywhere local)")
            sheet = read_sheet(Path(value), i.option)
            sheets[n] = sheet
            for row in sheet.rows:
                for mate, path in (("r1", row.r1), ("r2", row.r2)):
                    fastqs.append((n, path))
                    where[str(path)] = f"line {row.line} ({row.sample}) {mate}"
    infos, missing = size_fastqs([p for _n, p in fastqs])
    if missing:
        shown = [f"{where.get(x, x)}: {x}" for x in missing]
        raise InputError(f"{len(missing)} FASTQ file(s) not found:\n  " + "\n  ".join(shown[:50])
                         + ("\n  ..." if len(shown) > 50 else ""),
                         hint="fix the paths (a sheet's relative paths start from the sheet's folder)")
    by_input: dict[str, list[ReadsInfo]] = {}
    for (n, _path), info in zip(fastqs, infos, strict=True):  # missing files raised above: aligned
        by_input.setdefault(n, []).append(info)
    samples: list[tuple[str, list[ReadsInfo]]] = []  # (input, its sample's files)
    for n in mode.inputs:
        i = spec.input(n)
        if n in sheets:
            files = by_input[n]
            samples += [(n, files[2 * k: 2 * k + 2]) for k in range(len(sheets[n].rows))]
            m.item_counts[n] = len(sheets[n].rows)
            m.inputs["sheet"] = str(sheets[n].path)
        elif i.type == "fastq" and n in by_input:
            partner = i.mate or next((o.name for o in spec.inputs if o.mate == n), None)
            if partner in by_input and [o.name for o in spec.inputs].index(partner) < [
                    o.name for o in spec.inputs].index(n):
                continue  # counted with its mate, declared first
            samples.append((n, by_input[n] + (by_input[partner] if partner in by_input else [])))
        else:
            continue
        m.sized.append(n)
    for n, files in by_input.items():  # each input's own reads (`of: r1`)
        own = m.by_input.setdefault(n, {})
        own["reads"] = sum(f.reads for f in files)
        own["read_bases"] = sum(f.bases for f in files)
        own["read_pairs"] = own["reads"] if spec.input(n).type == "fastq" else 0.0
    per_sample_pairs = [_pair(*files) if len(files) == 2 else files[0].reads for _n, files in samples]
    for n, _files in samples:
        if spec.input(n).type == "fastq":
            partner = spec.input(n).mate or next((o.name for o in spec.inputs if o.mate == n), None)
            if partner in by_input and partner not in m.sized:
                m.sized.append(partner)
    for (n, files), pairs in zip(samples, per_sample_pairs, strict=True):
        m.totals["reads"] = m.totals.get("reads", 0.0) + sum(f.reads for f in files)
        m.totals["read_bases"] = m.totals.get("read_bases", 0.0) + sum(f.bases for f in files)
        m.totals["read_pairs"] = m.totals.get("read_pairs", 0.0) + pairs
        m.totals["samples"] = m.totals.get("samples", 0.0) + 1
        if spec.input(n).type == "sample_sheet":
            own = m.by_input[n]
            own["read_pairs"] += pairs
            own["samples"] = own.get("samples", 0.0) + 1
    if samples:
        m.noun = "sample"
    all_infos = infos
    if all_infos:
        unsized = [i.path for i in all_infos if i.how == "not sized"]
        if unsized:
            warnings.append(f"{len(unsized)} remote input(s) not sized ({unsized[0]}"
                            f"{', ...' if len(unsized) > 1 else ''}): counted as no reads, so this is a lower bound")
        hows = sorted({i.how for i in all_infos})
        m.inputs.update({"samples": round(m.totals.get("samples", 0)), "read_pairs": round(m.totals["read_pairs"]),
                         "read_bases": round(m.totals["read_bases"]),
                         "fastq_bytes": sum(i.bytes for i in all_infos), "reads_sized_by": hows})
        if "sampled" in hows or "typical ratio" in hows:
            assumptions.append("reads per FASTQ file: its size x the bytes per read of its first MiB (the first "
                               f"{FASTQ_SAMPLED_FILES} files; the others take their median)")
        m.uneven = len({round(p) for p in per_sample_pairs}) > 1
    for n in mode.inputs:
        i = spec.input(n)
        value = values.get(n)
        if value is None:
            continue
        if i.type == "fasta":
            bases, how = reference_bases(value, i.option)
            m.add(n, reference_bases=bases)
            m.sized.append(n)
            m.inputs["reference_bases"] = round(m.totals["reference_bases"])
            m.inputs.setdefault("reference_sized_by", []).append(how)
        elif i.type == "data_file":
            sets = count_image_sets(Path(value), i.option)
            m.add(n, image_sets=sets)
            m.sized.append(n)
            m.item_counts[n] = sets
            m.noun = "image set"
            m.inputs.update({"image_sets": round(m.totals["image_sets"]),
                             n: "the bundled sample" if n in defaulted else str(value)})
    m.items = next((c for c in m.item_counts.values()), None) or int(m.totals.get("samples", 0)) or 1
    return m


def rate_at(rate: Union[float, list[tuple[float, float]]], reference: float) -> float:
    """A work term's units per second: the number itself, or from [[reference_bases, rate], ...]: the
    first point's rate up to its length, then the power law through the two points around (or, beyond
    the last, the last two: extrapolated)."""
    if not isinstance(rate, list):
        return float(rate)
    points = sorted((float(x), float(r)) for x, r in rate)
    if len(points) == 1 or reference <= points[0][0]:
        return points[0][1]
    for (x0, r0), (x1, r1) in zip(points, points[1:], strict=False):
        if reference <= x1 or (x1, r1) == points[-1]:
            k = math.log(r1 / r0) / math.log(x1 / x0)
            return r0 * (reference / x0) ** k
    return points[-1][1]  # not reached


def _entry(spec: PipelineSpec, shape: TaskShape) -> tuple[Optional[str], Optional[ThroughputSpec]]:
    """A task's throughput: by its name, else by its template's (fastqc-r1 -> fastqc)."""
    for key in (shape.task, shape.step):
        if key in spec.throughput:
            return key, spec.throughput[key]
    return None, None


def step_work(spec: PipelineSpec, mode: ModeSpec, shapes: dict[str, TaskShape], m: Measured,
              fan: dict[str, int], seconds_per_set: Optional[float], assumptions: list[str],
              warnings: list[str]) -> dict[str, Work]:
    """Each task's pods and CPU-seconds per pod, from its pipeline.yaml `throughput` entry: start +
    per_item x the items in the pod + each work term's units in the pod / rate."""
    reference = m.totals.get("reference_bases", 0.0)
    entries = {t: _entry(spec, s) for t, s in shapes.items()}
    fan_steps = {t for t, s in shapes.items() if t in mode.items_per_pod or s.step in mode.items_per_pod}
    scale = 1.0
    user = [t for t, (_k, e) in entries.items() if e is not None and e.user_work]
    if seconds_per_set is not None:
        if not user:
            raise InputError(f"--seconds-per-set: no step of {spec.name} runs a program of yours whose time per item "
                             "it would set (pipeline.yaml throughput: `user_work: true`)")
        main = next((t for t in user if t in fan_steps), user[0])
        entry = entries[main][1]
        assert entry is not None
        per_item = entry.per_item + sum(1 / rate_at(w.rate, reference) for w in entry.work
                                        if w.unit in ("image_sets", "samples") and not w.per_item)
        if per_item <= 0:
            raise InputError(f"--seconds-per-set: {spec.name}'s {main} step has no per-item work to set")
        scale = seconds_per_set / per_item
        others = [t for t in user if t != main]
        assumptions.append(f"{main}: {seconds_per_set:g} s per {m.noun} (--seconds-per-set)"
                           + (f"; {', '.join(others)} scaled by as much ({per_item:g} s measured)" if others else ""))
    size_input = next(iter(set(mode.items_per_pod.values())), "")
    pods_noun = _pods_key(size_input) if fan else "pods"
    work: dict[str, Work] = {}
    bare: list[str] = []
    noted: set[str] = set()
    unmeasured: list[str] = []
    for task, shape in shapes.items():
        key, entry = entries[task]
        if task in COPY_STEPS or shape.step in COPY_STEPS:
            continue
        pods = fan.get("pods", 1) if task in fan_steps else 1
        items = m.items / pods
        if entry is None:
            bare.append(task)
            work[task] = Work(pods, 0.0, "no throughput in pipeline.yaml: its pod's start only")
            continue
        k = scale if entry.user_work else 1.0
        seconds = entry.start + entry.per_item * k * items
        basis = []
        for term in entry.work:
            own = m.by_input.get(term.of, {}) if term.of else m.totals
            total = own.get(term.unit, 0.0)
            amount = total * items if term.per_item else total / pods
            rate = rate_at(term.rate, reference)
            seconds += amount / rate * k
            label = term.unit.replace("_", " ") + (f" of {spec.input(term.of).option}" if term.of else "")
            basis.append(f"{total:,.0f} {label} per {m.noun}" if term.per_item else
                         f"{amount:,.0f} {label}" + (" per pod" if pods > 1 else ""))
            if isinstance(term.rate, list) and reference > min(x for x, _r in term.rate) * 10:
                assumptions.append(
                    f"{task}: {1e6 / rate:.2f} us CPU per {term.unit.replace('_', ' ').rstrip('s')} against "
                    f"{reference:,.0f} reference bases: a power law in the reference length through pipeline.yaml's "
                    + ", ".join(f"{1e6 / r:.2f} us at {x:,.0f}" for x, r in term.rate))
        if task in fan_steps and fan:
            basis.insert(0, f"{m.items:,} {m.noun}s in {pods:,} {pods_noun} of up to {fan['per_pod']}")
        elif entry.per_item and not entry.work:
            basis.append(f"{m.items:,} {m.noun}{'s' if m.items != 1 else ''}")
        work[task] = Work(pods, seconds, "; ".join(basis) or "start-up only", entry.threaded, entry.efficiency)
        if key not in noted:
            noted.add(key or task)
            if not entry.measured:
                unmeasured.append(task)
            if entry.note and not (entry.user_work and seconds_per_set is not None):
                assumptions.append(f"{task}: {entry.note}")
    if unmeasured:
        assumptions.append(f"{', '.join(unmeasured)}: unmeasured estimates (their pipeline.yaml entries say why)")
    if bare:
        warnings.append(f"{', '.join(bare)}: no throughput in {spec.name}'s pipeline.yaml, so only their pods' start "
                        f"({POD_START_S:g} s) is counted: a lower bound")
    if fan and fan.get("pods", 1) > 1 and m.uneven and fan_steps & set(work):
        assumptions.append(f"fan-out: the {m.noun}s' work spread evenly over the pods (a pod of large {m.noun}s "
                           "takes longer than the mean)")
    return work


def workflow_for(config: Config, spec: PipelineSpec, mode: ModeSpec, values: dict[str, Any], fan: dict[str, int]
            ) -> dict[str, Any]:
    """The Workflow the run would submit, rendered by the engine with this config (its pools and
    requests); no input value is set (the estimate only reads its shape)."""
    from bioinfra.engine.render import render_pipeline

    scalars = {n: v for n, v in values.items() if type(v) in (int, bool)}  # noqa: E721 - exactly int/bool
    items = {step: fan.get("per_pod_in_pod", 1) for step in mode.items_per_pod} if fan else None
    return render_pipeline(spec, mode, config, config.target, values=scalars, parameters={}, labels={}, items=items,
                           extra={"align_threads": config.pipeline.align_threads, "fan_out": fan})


# -- from the Workflow: pools, requests, the DAG ----------------------------------------------------


@dataclass(frozen=True)
class TaskShape:
    task: str
    pool: str
    cpu: float
    memory_gib: float
    after: tuple[str, ...]
    step: str = ""  # the template the task runs (fastqc-r1 -> fastqc)
    requested: bool = True  # whether the template requests cpu/memory (else the 1 CPU / 1 GiB shown)


def workflow_tasks(workflow: Union[dict[str, Any], Workflow]) -> dict[str, TaskShape]:
    """Each DAG task of the entrypoint, read through the typed Argo model (bioinfra.argo.model): the
    pool, CPU and memory request of the script it runs (through the one-step retry wrapper) and the
    tasks its `depends` names."""
    from bioinfra.pipelines import POOL_LABEL

    wf = workflow if isinstance(workflow, Workflow) else Workflow.parse(workflow)
    main = wf.template(wf.entrypoint)
    if main is None or main.dag is None:
        raise RuntimeError(f"the Workflow's entrypoint {wf.entrypoint!r} is not a DAG template")
    names = [t.name for t in main.dag.tasks]
    shapes = {}
    for task in main.dag.tasks:
        template = _template(wf, task.template)
        while template.steps:  # the wrapper around its -attempt template
            template = _template(wf, template.steps[0][0].template)
        requests = _requests(template)
        after = tuple(n for n in names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", task.depends))
        shapes[task.name] = TaskShape(task.name, str(template.node_selector.get(POOL_LABEL, "general")),
                                      cpu_quantity(requests.get("cpu", "1")),
                                      memory_gib(requests.get("memory", "1Gi")), after, task.template,
                                      bool(requests))
    return shapes


def _template(wf: Workflow, name: str) -> Template:
    template = wf.template(name)
    if template is None:
        raise RuntimeError(f"the Workflow has no template {name!r}")
    return template


def _requests(template: Template) -> dict[str, Any]:
    """The script's (else the container's) resources.requests. An adapter: bioinfra.argo.model keeps a
    template's script/container as the dict it came from (no typed resources yet)."""
    body = template.script or template.container or {}
    return ((body.get("resources") or {}).get("requests")) or {}


def longest_path(duration: dict[str, float], after: dict[str, tuple[str, ...]]) -> float:
    """The makespan: the latest finish over the DAG (a task starts when everything it depends on ended)."""
    finish: dict[str, float] = {}

    def end(name: str, seen: tuple[str, ...] = ()) -> float:
        if name not in finish:
            if name in seen:
                raise RuntimeError(f"the Workflow's DAG has a cycle through {name}")
            start = max((end(dep, (*seen, name)) for dep in after.get(name, ())), default=0.0)
            finish[name] = start + duration.get(name, 0.0)
        return finish[name]

    return max((end(name) for name in duration), default=0.0)


def requests_of(config: Config, spec: PipelineSpec, shape: TaskShape, warnings: list[str]) -> TaskShape:
    """A task's CPU and memory request: the rendered Workflow's (what the cluster is asked for), else
    the pipeline.yaml `resources` of its task or template; a disagreement is warned about."""
    entry = spec.resources.get(shape.task) or spec.resources.get(shape.step)
    if entry is None:
        return shape
    named = {"align_threads": config.pipeline.align_threads, "align_memory": config.pipeline.align_memory}
    cpu = cpu_quantity(named.get(str(entry.cpu), entry.cpu))
    memory = memory_gib(named.get(entry.memory, entry.memory))
    if not shape.requested:
        return TaskShape(shape.task, shape.pool, cpu, memory, shape.after, shape.step, True)
    if (cpu, memory) != (shape.cpu, shape.memory_gib):
        warnings.append(f"{shape.task}: {spec.name}'s pipeline.yaml resources say {cpu:g} CPU / {memory:g} GiB, its "
                        f"template requests {shape.cpu:g} CPU / {shape.memory_gib:g} GiB: the template's are priced")
    return shape


def _cost(config: Config, spec: PipelineSpec, workflow: dict[str, Any], work: dict[str, Work],
          inputs: dict[str, Any], prices: PriceTable, assumptions: list[str], warnings: list[str], today: dt.date
          ) -> Estimate:
    pipeline = spec.name
    shapes = {name: requests_of(config, spec, shape, warnings) for name, shape in workflow_tasks(workflow).items()}
    steps: list[StepCost] = []
    duration: dict[str, float] = {}  # seconds from a task's start (its dependencies done) to its end
    pool_nodes: dict[str, int] = {}
    pool_work_hours: dict[str, float] = {}
    pool_price: dict[str, NodePrice] = {}
    for name, shape in shapes.items():
        w = work.get(name)
        if w is None:  # stage-in / stage-out: copies, not counted
            duration[name] = 0.0
            continue
        pool = getattr(config.node_pools, shape.pool, None)
        if pool is None:
            raise UnsupportedError(f"step {name} runs on pool {shape.pool}, which the config does not define")
        price = pool_price.setdefault(shape.pool, prices.node_price(config.target, config.region, pool))
        for note in price.notes:
            if note not in warnings:
                warnings.append(note)
        alloc_cpu, alloc_mem = allocatable(price.vcpus, price.memory_gib)
        fit = math.floor(min(alloc_cpu / shape.cpu, alloc_mem / shape.memory_gib) + 1e-9)
        if fit < 1:
            warnings.append(f"{name} requests {shape.cpu:g} CPU / {shape.memory_gib:g} GiB, more than a "
                            f"{price.machine_type} offers ({alloc_cpu:.1f} CPU / {alloc_mem:.1f} GiB allocatable): its "
                            f"pods would stay Pending; costed as one node each")
            fit = 1
        elif fit == 1 and shape.cpu / alloc_cpu < 0.6 and shape.memory_gib / alloc_mem < 0.6:
            warnings.append(f"{name}: one pod per {price.machine_type} uses {shape.cpu / alloc_cpu:.0%} of its "
                            "allocatable CPU; the rest is paid for and idle")
        threads = max(1.0, shape.cpu) if w.threaded else 1.0
        efficiency = w.efficiency if w.threaded and threads > 1 else 1.0
        seconds = POD_START_S + w.cpu_seconds / (threads * efficiency)
        hours = seconds / 3600
        node_hours = w.pods * hours / fit
        steps.append(StepCost(name, w.pods, shape.pool, price.machine_type, price.spot, shape.cpu, shape.memory_gib,
                              fit, hours, node_hours, price.usd_per_hour, node_hours * price.usd_per_hour, w.basis))
        nodes = min(pool.max, math.ceil(w.pods / fit))
        waves = math.ceil(w.pods / (pool.max * fit))
        boot = NODE_START_S if nodes > pool.min else 0.0
        duration[name] = boot + waves * seconds
        pool_nodes[shape.pool] = max(pool_nodes.get(shape.pool, 0), nodes)
        pool_work_hours[shape.pool] = pool_work_hours.get(shape.pool, 0.0) + node_hours
    makespan_h = longest_path(duration, {name: shape.after for name, shape in shapes.items()}) / 3600
    overheads: list[CostItem] = []
    for pool_name, price in pool_price.items():
        pool = getattr(config.node_pools, pool_name)
        added = max(0, pool_nodes[pool_name] - pool.min)
        if added:
            nh = added * (NODE_START_S + SCALE_DOWN_S) / 3600
            overheads.append(CostItem("scale-up/down", pool_name, price.machine_type, price.spot, nh,
                                      nh * price.usd_per_hour,
                                      f"{added} node(s) added: boot {NODE_START_S / 60:g} min + "
                                      f"{SCALE_DOWN_S / 60:g} min idle before removal"))
        idle = pool.min * makespan_h - pool_work_hours[pool_name]
        if pool.min and idle > 0:
            overheads.append(CostItem("idle standing nodes", pool_name, price.machine_type, price.spot, idle,
                                      idle * price.usd_per_hour,
                                      f"min {pool.min} node(s) for the makespan, less the steps' share"))
    plane_name, fee = prices.control_plane(config.target)
    plane_basis = f"{fee:g} USD per cluster-hour for the makespan"
    from bioinfra.targets import get_target

    version = get_target(config.target).kubernetes_support(config, today)
    if version is not None:  # a cloud with a support calendar (EKS): extended support bills more
        from bioinfra.targets.eks_versions import ENDED, EXTENDED

        if version.phase == EXTENDED:
            fee = float(prices.data[config.target]["control_plane"].get("extended_support_usd_per_hour", fee))
            plane_basis = f"{fee:g} USD per cluster-hour (Kubernetes {version.version}: extended support) for the makespan"
            warnings.append(version.describe())
        elif version.phase == ENDED:
            warnings.append(f"{version.describe()}: `up {config.target}` will refuse it "
                            f'(aws.kubernetes_version: "{version.recommended}")')
    plane = CostItem(f"control plane ({plane_name})", "-", plane_name, None, makespan_h, makespan_h * fee, plane_basis)
    total_nh = sum(s.node_hours for s in steps) + sum(o.hours for o in overheads)
    total_usd = sum(s.usd for s in steps) + sum(o.usd for o in overheads) + plane.usd
    age = (today - prices.as_of).days
    if age > STALE_AFTER_DAYS:
        warnings.append(f"the price table is {age} days old (as of {prices.as_of}): refresh "
                        f"bioinfra/data/prices.yaml (it says how) before trusting the numbers")
    price_region = next(iter(pool_price.values())).region if pool_price else str(config.region)
    threaded = [f"{name} at {w.efficiency:.0%} efficiency" for name, w in work.items() if w.threaded]
    assumptions[1:1] = [
        "a pod pays 1/k of its node, k = how many such pods fit in the node's allocatable CPU and memory "
        f"(kubelet reservations as on GKE, plus {DAEMONSET_CPU:g} CPU / {DAEMONSET_MEMORY_GIB:g} GiB of daemonsets)",
        f"each pod: {POD_START_S:g} s to start; "
        + (f"{', '.join(t.split(' at ')[0] for t in threaded)} run{'s' if len(threaded) == 1 else ''} its CPU request "
           f"as threads at {', '.join(t.split(' at ')[1] for t in threaded)}; other steps are single-threaded"
           if threaded else "every step is single-threaded"),
        f"a pool that grows pays each added node's boot ({NODE_START_S / 60:g} min) and the autoscaler's scale-down "
        f"delay ({SCALE_DOWN_S / 60:g} min); a pool's standing nodes (min) are paid for the makespan",
        "prices: list prices of the table's date, spot prices typical of it; the machine_type of each pool "
        "(AWS alternatives are not priced separately)",
        "not counted: storage (EFS/Filestore, buckets, disks), NAT gateways, egress, load balancers, logs, "
        "stage-in/stage-out copies, retries after failures or spot reclaims, discounts",
    ]
    return Estimate(pipeline=pipeline, target=config.target, region=str(config.region), price_region=price_region,
                    prices_as_of=prices.as_of.isoformat(), currency=str(prices.data.get("currency", "USD")),
                    inputs=inputs, steps=steps, overheads=overheads, control_plane=plane, makespan_hours=makespan_h,
                    total_node_hours=total_nh, total_usd=total_usd, assumptions=assumptions, warnings=warnings)


# -- config and budget ------------------------------------------------------------------------------


def estimate_config(config_path: Optional[Path], target: Optional[str]) -> tuple[Config, Optional[str]]:
    """The config to estimate with: the file's (with --target applied), or, with no file, the
    defaults `bioinfra init --target TARGET` writes (said in the returned note)."""
    import yaml

    from bioinfra.config import find_config_path, load_config, parse_config
    from bioinfra.core.init import config_text
    from bioinfra.targets import get_target

    if target is not None:
        get_target(target)  # an unknown target is bad input (exit 4), before any config problem
    path = find_config_path(config_path)
    if path is not None:
        return (load_config(path, target=target) if target else load_config(path)), None
    chosen = target or "local"
    if chosen not in PRICED_TARGETS:
        return load_config(None, target=target) if target else load_config(None), None
    config = parse_config(yaml.safe_load(config_text(chosen, "bioinfra")), source=f"the {chosen} defaults")
    return config, (f"no bioinfra.yaml: the defaults of `bioinfra init --target {chosen}` (region {config.region}, "
                    f"pools {config.node_pools.general.machine_type} / {config.node_pools.highcpu.machine_type})")


def check_budget(config: Config, estimate: Estimate) -> None:
    """Refuse (OverBudgetError, exit 14) when the estimate is above `budget.max_usd`; no budget: no limit."""
    limit = config.budget.max_usd
    if limit is None or estimate.total_usd <= limit:
        return
    what = f"{estimate.pipeline} on {estimate.target}" + (f" ({estimate.summary})" if estimate.summary else "")
    raise OverBudgetError(estimate.total_usd, limit, estimate.top_items(3), what=what)
