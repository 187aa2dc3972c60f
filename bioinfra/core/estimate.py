"""`bioinfra estimate` and the budget guard of `bioinfra run` (issue #8): node-hours and USD of a run.

The model, in four steps, each stated in the estimate's `assumptions`:

1. **Work per step.** Each step of the pipeline's Workflow costs CPU-seconds = a fixed start-up
   per pod + a cost per unit of input (read base, read pair, reference base, image set). The
   constants below were MEASURED with bioinfra's own steps (see MEASURED_ON and docs/cost.md);
   the one that cannot be measured here, aligning against a large genome, is a published ballpark
   and says so. A pod's hours = its CPU-seconds / the threads it runs (align: its CPU request).
2. **Where it runs.** The pool, CPU and memory request of every step are read from the Workflow
   the run would submit (rendered here with the same config), so the estimate follows the
   templates; the pool's machine type and spot setting come from `node_pools`.
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

PRICES_FILE = Path(__file__).resolve().parents[1] / "data" / "prices.yaml"
PRICED_TARGETS = ("aws", "gcp")
STALE_AFTER_DAYS = 180  # a price table older than this is said to be stale

# -- measured constants -----------------------------------------------------------------------------
# MEASURED ON 2026-11-27 on a 2-core AMD EPYC VM (shared: load average 4-10 during the runs), with
# the tools bioinfra's native runtime used (the cluster images run the same programs):
#   bioinfra run fastqc-to-bwa -o /tmp/est-measure                 bundled sample, 6,000 read pairs
#   bioinfra run fastqc-to-bwa --r1/--r2 (100,000 pairs, `bioinfra sample-data generate --pairs 100000`)
#   the steps' own commands under /usr/bin/time on 500,000 / 1,000,000 / 2,000,000 reads (the same
#     files concatenated), bwa index on the lambda phage and on a 20 Mb random reference
#   bioinfra run cellprofiler (16 image sets) with --batch-size 4, 16 and 2
# CPU-seconds (user + sys) where a step is one program, since wall time on a shared machine
# overstates it; wall seconds from manifest.json where the step is mostly start-up (MultiQC,
# CellProfiler), which errs high. Reads: 2 x 100 bp, simulated from the lambda phage.
MEASURED_ON = ("2026-11-27, 2-core AMD EPYC VM (shared), native runtime: FastQC 0.11.9, bwa 0.7.17, samtools 1.16.1, "
               "MultiQC 1.14, CellProfiler 5.0.0.dev784 (bundled synthetic screen)")

# FastQC, one read file, --threads 1: 500k reads 8.09 s, 1M 11.72 s, 2M 20.34 s CPU (least squares:
# 3.8 s + 8.2 us per 100-bp read). The 6,000-read bundled files: 7.8 / 6.9 s wall in manifest.json.
FASTQC_START_S = 3.8
FASTQC_PER_BASE_S = 8.2e-8
# A sample sheet's chunks run one FastQC (one JVM) for both read files: the bundled pair took 5.10 s
# CPU that way against 3.35 s for R1 alone, so the second file adds 1.7 s, not a second start-up.
FASTQC_SECOND_FILE_S = 1.7
# bwa index: lambda phage (48,502 bases) 0.01 s; 20,000,000 random bases 18.99 s CPU -> 0.95 us/base
# (~49 min for GRCh38, in line with the usual "about an hour"). Counted once per run even though a
# workspace that already holds the index skips it (the marker file): an estimate errs high.
INDEX_START_S = 0.1
INDEX_PER_BASE_S = 0.95e-6
# bwa mem -t 2 | samtools sort | samtools index, against the lambda phage: 6,000 pairs 0.50 s,
# 100,000 pairs 7.88 s, 500,000 pairs 34.98 s CPU (-t 1: 33.81 s) -> 70 us per 2 x 100 bp pair,
# 3.5e-7 s per read base. 2 threads used 3% more CPU than 1: threads scale almost linearly.
ALIGN_START_S = 0.5
ALIGN_MEASURED_REF_BASES = 48_502
ALIGN_PER_READ_BASE_S = 3.5e-7
# NOT MEASURED (no large genome here): against GRCh38, bwa mem takes about 2.5 CPU-hours per Gbp of
# reads (a commonly quoted ballpark from 30x whole-genome benchmarks: ~200-300 CPU-hours for ~100
# Gbp) = 9e-6 s per read base. Between the two points the cost per read base follows a power law
# in the reference's length (exponent ~0.29). bwa-mem2, the cluster image's aligner, is ~1.5-3x
# faster (Vasimuddin et al., IPDPS 2019): not credited, so the estimate errs high.
ALIGN_LARGE_REF_BASES = 3.1e9
ALIGN_LARGE_PER_READ_BASE_S = 9e-6
ALIGN_THREAD_EFFICIENCY = 0.9  # assumption: sort and I/O phases keep 8 threads from being 8x faster
# Loading the index over the shared workspace once per sample (~1.7 bytes per reference base at
# ~170 MB/s): an assumption, 30 s for GRCh38.
ALIGN_INDEX_LOAD_PER_REF_BASE_S = 1e-8
# samtools flagstat + stats + idxstats: 100,000 pairs 0.51 s, 500,000 pairs 1.86 s CPU.
STATS_START_S = 0.05
STATS_PER_PAIR_S = 3.7e-6
# MultiQC: 3.1-4.0 s wall (1.9 s CPU: Python start-up is I/O) for one sample; 20 samples' samtools
# reports added 0.5 s CPU. Wall counted.
MULTIQC_START_S = 3.5
MULTIQC_PER_SAMPLE_S = 0.05
PLAN_S = 0.2  # the plan steps (read the sheet / data file, write chunks): 0.07-0.19 s measured
# CellProfiler, bundled synthetic screen (16 one-channel 128 px image sets): analyze batches of 2
# (serial): 5.8-10.4 s wall, median 7.0 s; one batch of 16: 27.2 s -> 4.1 s start-up (Python, Java)
# + 1.44 s per image set. illum over 16 sets: 6.2 s (8.2 and 18.9 s under heavier load). gather:
# 0.5-1.1 s. Real screens (several channels of 1-4 Mpx) cost far more per set: measure yours (run
# a data file of a few rows locally; manifest.json: analyze wall / sets) and pass --seconds-per-set.
CP_ILLUM_START_S = 4.0
CP_ILLUM_PER_SET_S = 0.15
CP_ANALYZE_START_S = 4.1
CP_ANALYZE_PER_SET_S = 1.44
CP_GATHER_START_S = 0.5
CP_GATHER_PER_SET_S = 0.03

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
                machines = table.get("machines", {}) if cloud == "gcp" else table
                groups = [("machines" if cloud == "gcp" else "", machines)]
                if cloud == "gcp":
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
        machines = table["machines"] if cloud == "gcp" else table
        shapes = section["machine_types" if cloud == "gcp" else "instance_types"]
        price, shape, scaled = _priced(pool.machine_type, machines, shapes, cloud)
        if price is None:
            raise UnsupportedError(
                f"no price for {cloud} machine type {pool.machine_type} in {used} (price table of {self.as_of})",
                hint=f"add it to {self.source} (the file says where prices come from), or use a priced type",
            )
        if scaled:
            notes.append(f"{pool.machine_type} is not in the table: priced as {scaled}, scaled by size")
        kind = "spot" if pool.spot else "on_demand"
        usd = float(price[kind])
        if cloud == "gcp" and pool.gpu is not None:
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


def _size_units(cloud: str, machine_type: str) -> Optional[tuple[str, float]]:
    """(family, size in a unit linear in price) or None: c6i.4xlarge -> ("c6i", 4); n2-standard-8 -> ("n2-standard", 8)."""
    if cloud == "aws":
        m = _AWS_SIZE.match(machine_type)
        if not m:
            return None
        base = {"medium": 0.25, "large": 0.5, "xlarge": 1.0}[m["size"]]
        return m["family"], base * (int(m["n"]) if m["n"] else 1)
    m = _GCP_SIZE.match(machine_type)
    return (m["family"], float(m["n"])) if m else None


def _priced(machine_type: str, machines: dict[str, Any], shapes: dict[str, Any], cloud: str
            ) -> tuple[Optional[dict[str, float]], dict[str, float], Optional[str]]:
    """The price and shape of a machine type; a missing size of a priced family is scaled linearly."""
    if machine_type in machines:
        return machines[machine_type], shapes[machine_type], None
    wanted = _size_units(cloud, machine_type)
    if wanted is None:
        return None, {}, None
    for known in machines:
        have = _size_units(cloud, known)
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


def reference_bases(reference: Union[str, Path, None]) -> tuple[float, str]:
    """The reference's length in bases, from its size (or its .fai), and how it was found."""
    from bioinfra.sampledata import bundled

    if reference is None:
        reference = bundled().reference
    if _remote(reference):
        return UNKNOWN_REFERENCE_BASES, f"{reference} not sized: taken as {UNKNOWN_REFERENCE_BASES:,.0f} bases (GRCh38)"
    path = Path(reference)
    if not path.is_file():
        raise InputError(f"--reference {path} does not exist", hint="check the path")
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


def count_image_sets(data_file: Path) -> int:
    """Rows of a LoadData CSV (one per image set); blank lines skipped."""
    try:
        with open(data_file, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except FileNotFoundError:
        raise InputError(f"--data-file {data_file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--data-file {data_file}: cannot read it ({exc})") from None
    if len(rows) < 2:
        raise InputError(f"--data-file {data_file}: no image sets (a header and one row per image set)")
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
    """A step's work: `pods` pods of `cpu_seconds` each (threaded: spread over its CPU request)."""

    pods: int
    cpu_seconds: float
    basis: str
    threaded: bool = False


def estimate(config: Config, pipeline: str, *, samples: Optional[Path] = None,
             r1: Union[str, Path, None] = None, r2: Union[str, Path, None] = None,
             reference: Union[str, Path, None] = None, data_file: Optional[Path] = None, batch_size: int = 4,
             chunk_size: Optional[int] = None, seconds_per_set: Optional[float] = None,
             prices: Optional[PriceTable] = None, today: Optional[dt.date] = None) -> Estimate:
    """Node-hours and USD of running `pipeline` with these inputs on config.target (aws or gcp).

    The same inputs as `bioinfra run` takes; none given: the bundled sample / screen. Raises
    UnsupportedError for targets without prices (local, onprem) or unpriced machine types, and
    InputError for missing input files (all of them named)."""
    from bioinfra.pipelines import PIPELINES

    if pipeline not in PIPELINES:
        raise InputError(f"unknown pipeline '{pipeline}'; known: {', '.join(PIPELINES)}")
    if config.target not in PRICED_TARGETS:
        raise UnsupportedError(
            f"no prices for target {config.target}: {'your own hardware' if config.target == 'onprem' else 'this machine'}"
            " costs what you paid for it, which bioinfra cannot know",
            hint="`--target aws` or `--target gcp` estimates the same run in that cloud",
        )
    prices = prices or PriceTable.load()
    assumptions: list[str] = []
    warnings: list[str] = []
    if pipeline == "cellprofiler":
        if samples is not None or r1 is not None or r2 is not None or reference is not None:
            raise InputError("--samples, --r1, --r2, --reference: fastqc-to-bwa options; cellprofiler takes --data-file")
        workflow, work, inputs = _cellprofiler_work(config, data_file, batch_size, seconds_per_set, assumptions)
    else:
        if data_file is not None or seconds_per_set is not None:
            raise InputError("--data-file and --seconds-per-set are cellprofiler options")
        workflow, work, inputs = _fastqc_to_bwa_work(config, samples, r1, r2, reference, chunk_size, assumptions,
                                                     warnings)
    return _cost(config, pipeline, workflow, work, inputs, prices, assumptions, warnings, today or dt.date.today())


def _bundled_data_file() -> Path:
    return Path(__file__).resolve().parents[1] / "sampledata" / "data" / "cellprofiler" / "images" / "images.csv"


def _cellprofiler_work(config: Config, data_file: Optional[Path], batch_size: int, seconds_per_set: Optional[float],
                       assumptions: list[str]) -> tuple[dict[str, Any], dict[str, Work], dict[str, Any]]:
    from bioinfra.pipelines import CellProfilerParams, load_workflow, render_cellprofiler

    sets = count_image_sets(data_file or _bundled_data_file())
    if batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    batches = math.ceil(sets / batch_size)
    per_set = seconds_per_set if seconds_per_set is not None else CP_ANALYZE_PER_SET_S
    if seconds_per_set is None:
        assumptions.append(f"analyze: {CP_ANALYZE_PER_SET_S} s per image set, measured on the bundled synthetic "
                           "screen (one small channel); real screens cost far more per set: pass --seconds-per-set "
                           "measured on a few of your own sets")
    else:
        assumptions.append(f"analyze: {seconds_per_set:g} s per image set (--seconds-per-set)")
    # illum's per-set cost scales with the analysis' (both read every image once).
    illum_per_set = CP_ILLUM_PER_SET_S * (per_set / CP_ANALYZE_PER_SET_S)
    work = {
        "plan": Work(1, PLAN_S, "the data file"),
        "illum": Work(1, CP_ILLUM_START_S + illum_per_set * sets, f"{sets:,} image sets, one pod"),
        "analyze": Work(batches, CP_ANALYZE_START_S + per_set * sets / batches,
                        f"{sets:,} image sets in {batches:,} batches of up to {batch_size}"),
        "gather": Work(1, CP_GATHER_START_S + CP_GATHER_PER_SET_S * sets, f"{batches:,} batches' tables"),
    }
    params = CellProfilerParams(images_dir="inputs/estimate/images", data_file="inputs/estimate/images.csv",
                                illum_pipeline="inputs/estimate/illum.cppipe",
                                analysis_pipeline="inputs/estimate/analysis.cppipe", run_dir="runs/estimate",
                                batch_size=batch_size)
    workflow = load_workflow(render_cellprofiler(config, config.target, params))
    inputs = {"image_sets": sets, "batch_size": batch_size, "batches": batches,
              "data_file": str(data_file) if data_file else "bundled synthetic screen"}
    return workflow, work, inputs


def _fastqc_to_bwa_work(config: Config, samples: Optional[Path], r1: Union[str, Path, None],
                        r2: Union[str, Path, None], reference: Union[str, Path, None], chunk_size: Optional[int],
                        assumptions: list[str], warnings: list[str]
                        ) -> tuple[dict[str, Any], dict[str, Work], dict[str, Any]]:
    from bioinfra.pipelines import load_workflow
    from bioinfra.sampledata import bundled

    if samples is not None:
        if r1 is not None or r2 is not None:
            raise InputError("--r1/--r2: not with --samples (the sheet names each sample's reads)")
        from bioinfra.core.samples import read_sheet

        sheet = read_sheet(samples)
        names = [row.sample for row in sheet.rows]
        files = [p for row in sheet.rows for p in (row.r1, row.r2)]
        where = {str(p): f"line {row.line} ({row.sample}) {mate}"
                 for row in sheet.rows for mate, p in (("r1", row.r1), ("r2", row.r2))}
    else:
        if (r1 is None) != (r2 is None):
            raise InputError("give --r1 and --r2 together (or neither, for the bundled sample)")
        data = bundled()
        if r1 is None:
            r1, r2 = data.r1, data.r2
            reference = reference or data.reference
        names = ["sample"]
        files = [r1, r2]
        where = {str(r1): "--r1", str(r2): "--r2"}
    infos, missing = size_fastqs(files)
    if missing:
        shown = [f"{where.get(m, m)}: {m}" for m in missing]
        raise InputError(f"{len(missing)} FASTQ file(s) not found:\n  " + "\n  ".join(shown[:50])
                         + ("\n  ..." if len(shown) > 50 else ""),
                         hint="fix the paths (a sheet's relative paths start from the sheet's folder)")
    unsized = [i.path for i in infos if i.how == "not sized"]
    if unsized:
        warnings.append(f"{len(unsized)} remote input(s) not sized ({unsized[0]}{', ...' if len(unsized) > 1 else ''}):"
                        " counted as no reads, so this is a lower bound")
    ref_bases, ref_how = reference_bases(reference)
    per_read_base = align_cost_per_read_base(ref_bases)
    if ref_bases > ALIGN_MEASURED_REF_BASES * 10:
        assumptions.append(f"align: {per_read_base * 1e6:.2f} us CPU per read base against {ref_bases:,.0f} bases, "
                           f"between the measured {ALIGN_PER_READ_BASE_S * 1e6:.2f} us (lambda phage) and a published "
                           f"~{ALIGN_LARGE_PER_READ_BASE_S * 1e6:.0f} us for GRCh38 (power law in the reference length)")
    sample_reads = [(infos[2 * i], infos[2 * i + 1]) for i in range(len(names))]
    pairs = [min(a.reads, b.reads) if a.reads and b.reads else max(a.reads, b.reads) for a, b in sample_reads]
    bases = [a.bases + b.bases for a, b in sample_reads]
    n = len(names)
    fastqc_s = [FASTQC_START_S + FASTQC_SECOND_FILE_S + FASTQC_PER_BASE_S * b for b in bases]
    align_s = [ALIGN_START_S + ALIGN_INDEX_LOAD_PER_REF_BASE_S * ref_bases + per_read_base * b for b in bases]
    stats_s = [STATS_START_S + STATS_PER_PAIR_S * p for p in pairs]
    index = Work(1, INDEX_START_S + INDEX_PER_BASE_S * ref_bases, f"reference {ref_bases:,.0f} bases ({ref_how})")
    inputs: dict[str, Any] = {
        "samples": n, "read_pairs": round(sum(pairs)), "read_bases": round(sum(bases)),
        "reference_bases": round(ref_bases), "fastq_bytes": sum(i.bytes for i in infos),
        "reads_sized_by": sorted({i.how for i in infos}),
    }
    hows = inputs["reads_sized_by"]
    if "sampled" in hows or "typical ratio" in hows:
        assumptions.append("reads per FASTQ file: its size x the bytes per read of its first MiB (the first "
                           f"{FASTQ_SAMPLED_FILES} files; the others take their median)")
    if samples is not None:
        from bioinfra.pipelines import MAX_CHUNKS, SamplesParams, render_samples

        size = chunk_size or max(1, math.ceil(n / MAX_CHUNKS))
        chunks = math.ceil(n / size)
        inputs.update({"sheet": str(samples), "chunk_size": size, "chunks": chunks})
        per = f"{n:,} samples in {chunks:,} chunk(s) of up to {size}"
        work = {
            "plan": Work(1, PLAN_S, "the sheet"),
            "index-reference": index,
            "fastqc": Work(chunks, sum(fastqc_s) / chunks, per),
            "align": Work(chunks, sum(align_s) / chunks, per, threaded=True),
            "stats": Work(chunks, sum(stats_s) / chunks, per),
            "report": Work(1, MULTIQC_START_S + MULTIQC_PER_SAMPLE_S * n, f"MultiQC over {n:,} samples"),
        }
        if chunks > 1 and len(set(round(p) for p in pairs)) > 1:
            assumptions.append("chunks: the samples' work spread evenly over the chunks (a chunk of large samples "
                               "takes longer than the mean)")
        params = SamplesParams(sheet="runs/estimate/sheet.tsv", reference="references/estimate/reference.fa",
                               run_dir="runs/estimate", chunk_size=size)
        workflow = load_workflow(render_samples(config, config.target, params))
    else:
        from bioinfra.pipelines import FastqcToBwaParams, render_fastqc_to_bwa

        r1_info, r2_info = sample_reads[0]
        work = {
            "fastqc-r1": Work(1, FASTQC_START_S + FASTQC_PER_BASE_S * r1_info.bases, f"{r1_info.reads:,.0f} reads"),
            "fastqc-r2": Work(1, FASTQC_START_S + FASTQC_PER_BASE_S * r2_info.bases, f"{r2_info.reads:,.0f} reads"),
            "index-reference": index,
            "align": Work(1, align_s[0], f"{pairs[0]:,.0f} read pairs", threaded=True),
            "stats": Work(1, stats_s[0], f"{pairs[0]:,.0f} read pairs"),
            "multiqc": Work(1, MULTIQC_START_S + MULTIQC_PER_SAMPLE_S, "one sample"),
        }
        params = FastqcToBwaParams(sample=names[0], r1="inputs/estimate/r1.fastq.gz",
                                   r2="inputs/estimate/r2.fastq.gz", reference="references/estimate/reference.fa",
                                   run_dir="runs/estimate")
        workflow = load_workflow(render_fastqc_to_bwa(config, config.target, params))
    assumptions.append("index-reference counted although a workspace that already holds the index skips it")
    return workflow, work, inputs


def align_cost_per_read_base(ref_bases: float) -> float:
    """CPU-seconds per read base: the measured value up to the measured reference's length, then a
    power law through the published GRCh38 figure (extrapolated beyond it)."""
    if ref_bases <= ALIGN_MEASURED_REF_BASES:
        return ALIGN_PER_READ_BASE_S
    k = math.log(ALIGN_LARGE_PER_READ_BASE_S / ALIGN_PER_READ_BASE_S) / math.log(
        ALIGN_LARGE_REF_BASES / ALIGN_MEASURED_REF_BASES)
    return ALIGN_PER_READ_BASE_S * (ref_bases / ALIGN_MEASURED_REF_BASES) ** k


# -- from the Workflow: pools, requests, the DAG ----------------------------------------------------


@dataclass(frozen=True)
class TaskShape:
    task: str
    pool: str
    cpu: float
    memory_gib: float
    after: tuple[str, ...]


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
                                      memory_gib(requests.get("memory", "1Gi")), after)
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


def _cost(config: Config, pipeline: str, workflow: dict[str, Any], work: dict[str, Work], inputs: dict[str, Any],
          prices: PriceTable, assumptions: list[str], warnings: list[str], today: dt.date) -> Estimate:
    shapes = workflow_tasks(workflow)
    unknown = sorted(set(work) - set(shapes))
    if unknown:  # the model and the template disagree: a bug, caught by the tests
        raise RuntimeError(f"estimate model names steps the {pipeline} Workflow does not have: {', '.join(unknown)}")
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
        efficiency = ALIGN_THREAD_EFFICIENCY if w.threaded and threads > 1 else 1.0
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
    if config.target == "aws":
        from bioinfra.targets.eks_versions import ENDED, EXTENDED, support

        version = support(config.aws.kubernetes_version, today)
        if version.phase == EXTENDED:
            fee = float(prices.data["aws"]["control_plane"].get("extended_support_usd_per_hour", fee))
            plane_basis = f"{fee:g} USD per cluster-hour (Kubernetes {version.version}: extended support) for the makespan"
            warnings.append(version.describe())
        elif version.phase == ENDED:
            warnings.append(f"{version.describe()}: `up aws` will refuse it "
                            f'(aws.kubernetes_version: "{version.recommended}")')
    plane = CostItem(f"control plane ({plane_name})", "-", plane_name, None, makespan_h, makespan_h * fee, plane_basis)
    total_nh = sum(s.node_hours for s in steps) + sum(o.hours for o in overheads)
    total_usd = sum(s.usd for s in steps) + sum(o.usd for o in overheads) + plane.usd
    age = (today - prices.as_of).days
    if age > STALE_AFTER_DAYS:
        warnings.append(f"the price table is {age} days old (as of {prices.as_of}): refresh "
                        f"bioinfra/data/prices.yaml (it says how) before trusting the numbers")
    price_region = next(iter(pool_price.values())).region if pool_price else str(config.region)
    assumptions[:0] = [
        f"work per step: CPU-seconds measured {MEASURED_ON}; see bioinfra/core/estimate.py and docs/cost.md",
        "a pod pays 1/k of its node, k = how many such pods fit in the node's allocatable CPU and memory "
        f"(kubelet reservations as on GKE, plus {DAEMONSET_CPU:g} CPU / {DAEMONSET_MEMORY_GIB:g} GiB of daemonsets)",
        f"each pod: {POD_START_S:g} s to start; align runs its CPU request as threads at "
        f"{ALIGN_THREAD_EFFICIENCY:.0%} efficiency; other steps are single-threaded",
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
