"""`bioinfra estimate` and the budget guard (issue #8): the price table, the model's maths, inputs."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from bioinfra.config import DEFAULT_POOLS, NodePool, parse_config
from bioinfra.core import estimate as est
from bioinfra.core.init import GPU_TYPES, MACHINE_TYPES, config_text
from bioinfra.engine.spec import discover, find_pipeline
from bioinfra.errors import ExitCode, InputError, OverBudgetError, UnsupportedError
from bioinfra.sampledata import bundled

TODAY = dt.date(2025, 7, 1)  # within STALE_AFTER_DAYS of the table's as_of, so no staleness warning

# The measured work model now lives in each pipeline's pipeline.yaml `throughput` (issue 17): the
# constants these tests once imported from bioinfra.core.estimate, read from there.
FTB = find_pipeline("fastqc-to-bwa").throughput
CP = find_pipeline("cellprofiler").throughput
FASTQC_START_S = FTB["fastqc-r1"].start
FASTQC_PER_BASE_S = 1 / FTB["fastqc-r1"].work[0].rate
FASTQC_SECOND_FILE_S = FTB["fastqc"].per_item - FASTQC_START_S
ALIGN_START_S = FTB["align"].per_item
ALIGN_INDEX_LOAD_PER_REF_BASE_S = 1 / FTB["align"].work[0].rate
ALIGN_POINTS = FTB["align"].work[1].rate
(ALIGN_MEASURED_REF_BASES, _measured_rate) = ALIGN_POINTS[0]  # the lambda phage
ALIGN_PER_READ_BASE_S = 1 / _measured_rate
ALIGN_THREAD_EFFICIENCY = FTB["align"].efficiency
CP_ANALYZE_START_S = CP["analyze"].start
CP_ANALYZE_PER_SET_S = CP["analyze"].per_item


def align_cost_per_read_base(reference_bases: float) -> float:
    return 1 / est.rate_at(ALIGN_POINTS, reference_bases)


def template_config(target: str, **changes) -> object:
    data = yaml.safe_load(config_text(target, "lab-seq"))
    data.update(changes)
    return parse_config(data)


@pytest.fixture(scope="module")
def prices() -> est.PriceTable:
    return est.PriceTable.load()


# -- the price table --------------------------------------------------------------------------------


def test_price_table_is_dated_sourced_and_well_formed(prices):
    assert prices.problems() == []
    assert isinstance(prices.as_of, dt.date) and prices.as_of <= dt.date.today()
    assert prices.data["currency"] == "USD"
    assert all(url.startswith("https://") for url in prices.data["sources"].values())
    text = est.PRICES_FILE.read_text()
    for needed in ("REFRESH", "aws pricing get-products", "describe-spot-price-history", "cloudbilling.googleapis.com",
                   "list prices", "Spot prices are NOT"):
        assert needed in text
    for cloud in ("aws", "gcp"):
        name, fee = prices.control_plane(cloud)
        assert name in ("EKS", "GKE") and fee == 0.10


def test_the_schema_check_names_bad_entries():
    data = yaml.safe_load(est.PRICES_FILE.read_text())
    data["as_of"] = "soon"
    data["aws"]["regions"]["us-east-1"]["m6i.large"] = {"on_demand": 0.1, "spot": 0.2}
    data["gcp"]["regions"]["us-central1"]["machines"]["n9-standard-4"] = {"on_demand": 0.1, "spot": 0.05}
    with pytest.raises(UnsupportedError) as err:
        est.PriceTable(data)
    assert "as_of: missing or not a date" in err.value.message
    assert "aws.regions.us-east-1.m6i.large: spot above on_demand" in err.value.message
    assert "gcp.regions.us-central1.machines.n9-standard-4: no shape" in err.value.message


def _template_types() -> dict[str, set[str]]:
    types: dict[str, set[str]] = {"aws": set(), "gcp": set()}
    for cloud in types:
        for pool in DEFAULT_POOLS[cloud].values():
            types[cloud].add(pool["machine_type"])
            types[cloud].update(pool.get("alternatives", []))
        types[cloud].update(MACHINE_TYPES[cloud].values())
        for pool in ("general", "highcpu", "gpu"):
            p = getattr(template_config(cloud).node_pools, pool)
            types[cloud].update([p.machine_type, *p.alternatives])
    types["aws"].update(f"{family}.{size}" for family in ("m6i", "c6i", "c7i", "r6i")
                        for size in ("large", "xlarge", "2xlarge", "4xlarge"))
    types["aws"].update({"g5.xlarge", "g5.2xlarge", "g4dn.xlarge"})
    types["gcp"].update({"n2-standard-4", "n2-standard-8", "n2-standard-16", "c2-standard-8", "c3-standard-8",
                         "n1-standard-8"})
    return types


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_every_machine_type_of_the_defaults_and_templates_is_priced_in_every_region(prices, cloud):
    for region, table in prices.data[cloud]["regions"].items():
        machines = table["machines"] if cloud == "gcp" else table
        missing = sorted(_template_types()[cloud] - set(machines))
        assert missing == [], f"{cloud} {region} has no price for {missing}"
        if cloud == "gcp":
            assert {GPU_TYPES["gcp"], "nvidia-tesla-t4", "nvidia-l4"} <= set(table["gpus"])


def test_spot_is_cheaper_and_read_from_the_table(prices):
    on_demand = prices.node_price("aws", "eu-west-2", NodePool(machine_type="c6i.4xlarge"))
    spot = prices.node_price("aws", "eu-west-2", NodePool(machine_type="c6i.4xlarge", spot=True))
    row = prices.data["aws"]["regions"]["eu-west-2"]["c6i.4xlarge"]
    assert (on_demand.usd_per_hour, spot.usd_per_hour) == (row["on_demand"], row["spot"])
    assert spot.usd_per_hour < on_demand.usd_per_hour
    assert (on_demand.vcpus, on_demand.memory_gib, on_demand.notes) == (16, 32, ())


def test_gcp_gpus_are_added_per_gpu_hour(prices):
    pool = NodePool(machine_type="n1-standard-8", gpu={"type": "nvidia-tesla-t4", "count": 2})
    table = prices.data["gcp"]["regions"]["europe-west2"]
    got = prices.node_price("gcp", "europe-west2", pool).usd_per_hour
    assert got == pytest.approx(table["machines"]["n1-standard-8"]["on_demand"] + 2 * table["gpus"]["nvidia-tesla-t4"]["on_demand"])
    with pytest.raises(UnsupportedError, match="no price for GPU nvidia-h100"):
        prices.node_price("gcp", "europe-west2", NodePool(machine_type="n1-standard-8", gpu={"type": "nvidia-h100"}))


def test_a_missing_size_is_scaled_from_its_family_and_an_unknown_type_refused(prices):
    big = prices.node_price("aws", "us-east-1", NodePool(machine_type="c6i.12xlarge"))
    assert big.usd_per_hour == pytest.approx(3 * 0.68) and big.vcpus == 48
    assert "scaled by size" in big.notes[0]
    n2 = prices.node_price("gcp", "us-central1", NodePool(machine_type="n2-standard-48"))
    assert n2.vcpus == 48 and n2.memory_gib == 192
    with pytest.raises(UnsupportedError) as err:
        prices.node_price("aws", "us-east-1", NodePool(machine_type="x2iedn.xlarge"))
    assert err.value.exit_code == ExitCode.UNSUPPORTED and "no price for aws machine type x2iedn.xlarge" in err.value.message


def test_regions_without_a_table_use_their_family_and_say_so(prices):
    assert prices.region_for("aws", "eu-west-2") == ("eu-west-2", None)
    used, note = prices.region_for("aws", "eu-central-1")
    assert used == "eu-west-2" and "no prices for eu-central-1" in note
    assert prices.region_for("aws", "us-west-2")[0] == "us-east-1"
    assert prices.region_for("gcp", "us-east1")[0] == "us-central1"
    assert prices.region_for("gcp", "asia-east1")[0] == "europe-west2"  # the table's default


# -- the model --------------------------------------------------------------------------------------


def test_allocatable_follows_the_gke_reservations():
    cpu, mem = est.allocatable(16, 32)
    # CPU: 6% + 1% + 2 x 0.5% + 12 x 0.25% = 0.11; memory: 1 + 0.8 + 0.8 + 16 x 0.06 = 3.56 GiB
    assert cpu == pytest.approx(16 - 0.11 - est.DAEMONSET_CPU)
    assert mem == pytest.approx(32 - 3.56 - est.EVICTION_GIB - est.DAEMONSET_MEMORY_GIB)


def test_quantities():
    assert est.cpu_quantity("500m") == 0.5 and est.cpu_quantity(8) == 8
    assert est.memory_gib("16Gi") == 16 and est.memory_gib("512Mi") == 0.5
    with pytest.raises(ValueError):
        est.memory_gib("lots")


def test_align_cost_follows_the_measured_points_then_the_last_two_points_law():
    points = sorted((float(x), 1 / float(r)) for x, r in ALIGN_POINTS)  # (reference bases, s per read base)
    assert len(points) >= 2 and all(a[1] < b[1] for a, b in zip(points, points[1:], strict=False))
    assert align_cost_per_read_base(1000) == ALIGN_PER_READ_BASE_S  # below the first point: its cost
    for x, cost in points:
        assert align_cost_per_read_base(x) == pytest.approx(cost)
    for (x0, c0), (x1, c1) in zip(points, points[1:], strict=False):  # between two points: between them
        assert c0 < align_cost_per_read_base((x0 * x1) ** 0.5) < c1
    # Beyond the last point, the last two points' power law (GRCh38 is 62x the largest measured genome).
    (x0, c0), (x1, c1) = points[-2:]
    expected = c1 * (3.1e9 / x1) ** (math.log(c1 / c0) / math.log(x1 / x0))
    assert align_cost_per_read_base(3.1e9) == pytest.approx(expected)
    # ...which lands near the ~2.5 CPU-hours per Gbp of reads quoted for 30x human bwa mem runs
    # (docs/cost.md): calibrated by `make bench-scale`, not by this test.
    assert 1.0 < align_cost_per_read_base(3.1e9) * 1e9 / 3600 < 5.0


def test_bundled_sample_on_aws_step_by_step(prices):
    config = template_config("aws")
    e = est.estimate(config, "fastqc-to-bwa", prices=prices, today=TODAY)
    steps = {s.step: s for s in e.steps}
    assert list(steps) == ["fastqc-r1", "fastqc-r2", "index-reference", "align", "stats", "multiqc"]
    assert e.inputs["read_pairs"] == 6000 and e.inputs["read_bases"] == 1_200_000
    assert e.inputs["reads_sized_by"] == ["counted"]

    fastqc = steps["fastqc-r1"]
    general = prices.data["aws"]["regions"]["eu-west-2"]["m6i.xlarge"]["on_demand"]
    assert (fastqc.pool, fastqc.machine_type, fastqc.spot, fastqc.cpu_request) == ("general", "m6i.xlarge", False, 1)
    assert fastqc.hours_per_pod * 3600 == pytest.approx(est.POD_START_S + FASTQC_START_S + FASTQC_PER_BASE_S * 600_000)
    cpu, mem = est.allocatable(4, 16)
    assert fastqc.pods_per_node == math.floor(min(cpu / 1, mem / 1))
    assert fastqc.node_hours == pytest.approx(fastqc.hours_per_pod / fastqc.pods_per_node)
    assert fastqc.usd == pytest.approx(fastqc.node_hours * general)

    align = steps["align"]
    highcpu = prices.data["aws"]["regions"]["eu-west-2"]["c6i.4xlarge"]["spot"]
    assert (align.pool, align.machine_type, align.spot, align.cpu_request, align.memory_request_gib) == (
        "highcpu", "c6i.4xlarge", True, 8, 16)
    assert align.pods_per_node == 1  # 2 x 8 CPU do not fit in 15.6 allocatable: said in a warning
    assert any("align: one pod per c6i.4xlarge" in w for w in e.warnings)
    reference = bundled().reference.stat().st_size * est.GZ_BASES_PER_BYTE
    cpu_s = (ALIGN_START_S + ALIGN_INDEX_LOAD_PER_REF_BASE_S * reference
             + align_cost_per_read_base(reference) * 1_200_000)
    assert align.hours_per_pod * 3600 == pytest.approx(est.POD_START_S + cpu_s / (8 * ALIGN_THREAD_EFFICIENCY))
    assert align.usd == pytest.approx(align.node_hours * highcpu)

    over = {o.name: o for o in e.overheads}
    assert over["scale-up/down"].pool == "highcpu"  # min 0: the run adds a node
    assert over["scale-up/down"].hours == pytest.approx((est.NODE_START_S + est.SCALE_DOWN_S) / 3600)
    assert over["idle standing nodes"].pool == "general"  # min 1, mostly idle for a small run
    assert e.control_plane.hours == pytest.approx(e.makespan_hours)
    assert e.control_plane.usd == pytest.approx(e.makespan_hours * 0.10)
    # the makespan: longest path fastqc -> align -> stats -> multiqc, plus the highcpu node's boot
    longest = (max(steps["fastqc-r1"].hours_per_pod, est.NODE_START_S / 3600 + steps["index-reference"].hours_per_pod)
               + est.NODE_START_S / 3600 + align.hours_per_pod + steps["stats"].hours_per_pod
               + steps["multiqc"].hours_per_pod)
    assert e.makespan_hours == pytest.approx(longest)
    assert e.total_usd == pytest.approx(sum(s.usd for s in e.steps) + sum(o.usd for o in e.overheads) + e.control_plane.usd)
    assert e.total_node_hours == pytest.approx(sum(s.node_hours for s in e.steps) + sum(o.hours for o in e.overheads))
    assert not any("days old" in w for w in e.warnings)
    assert e.prices_as_of == prices.as_of.isoformat() and e.price_region == "eu-west-2"
    assert json.loads(json.dumps(e.to_dict()))["steps"][3]["step"] == "align"


def test_on_demand_pools_cost_more_than_spot(prices):
    spot = est.estimate(template_config("gcp"), "fastqc-to-bwa", prices=prices, today=TODAY)
    data = yaml.safe_load(config_text("gcp", "lab-seq"))
    data["node_pools"]["highcpu"]["spot"] = False
    on_demand = est.estimate(parse_config(data), "fastqc-to-bwa", prices=prices, today=TODAY)
    a = {s.step: s for s in spot.steps}["align"]
    b = {s.step: s for s in on_demand.steps}["align"]
    assert a.node_hours == pytest.approx(b.node_hours) and b.usd > 2 * a.usd


def test_a_stale_table_and_an_unpriced_region_are_warned_about(prices):
    e = est.estimate(template_config("aws", region="eu-central-1"), "fastqc-to-bwa", prices=prices,
                     today=prices.as_of + dt.timedelta(days=est.STALE_AFTER_DAYS + 1))
    assert any("price table is 181 days old" in w for w in e.warnings)
    assert any("no prices for eu-central-1" in w for w in e.warnings)


@pytest.mark.parametrize("target", ["local", "onprem"])
def test_targets_without_prices_are_unsupported(prices, target):
    with pytest.raises(UnsupportedError) as err:
        est.estimate(parse_config({"target": target}), "fastqc-to-bwa", prices=prices)
    assert err.value.exit_code == ExitCode.UNSUPPORTED and f"no prices for target {target}" in err.value.message


# -- inputs -----------------------------------------------------------------------------------------


def test_fastq_sizing_counts_small_files_and_samples_large_ones(tmp_path):
    data = bundled()
    per_read, length, whole = est.measure_fastq(data.r1)
    assert whole and length == 100 and data.r1.stat().st_size / per_read == pytest.approx(6000, rel=1e-3)
    # three gzip members (as `cat a.gz b.gz c.gz` makes): larger than the sample read from it
    triple = tmp_path / "x_R1.fastq.gz"
    triple.write_bytes(data.r1.read_bytes() * 3)
    plain = tmp_path / "x_R2.fastq"
    plain.write_bytes(gzip.decompress(data.r2.read_bytes()) * 3)
    infos, missing = est.size_fastqs([triple, plain, tmp_path / "gone.fastq.gz", "s3://bucket/y_R1.fastq.gz"])
    assert missing == [str(tmp_path / "gone.fastq.gz")]
    by_name = {Path(i.path).name: i for i in infos}
    assert by_name["x_R1.fastq.gz"].how == "sampled" and by_name["x_R1.fastq.gz"].reads == pytest.approx(18000, rel=0.03)
    assert by_name["x_R2.fastq"].how == "sampled" and by_name["x_R2.fastq"].reads == pytest.approx(18000, rel=0.01)
    assert by_name["y_R1.fastq.gz"].how == "not sized" and by_name["y_R1.fastq.gz"].reads == 0


def test_a_file_that_is_not_fastq_falls_back_to_the_measured_ratio(tmp_path):
    odd = tmp_path / "odd.fastq.gz"
    odd.write_bytes(gzip.compress(b"not a fastq\n" * 100))
    (info,), _ = est.size_fastqs([odd])
    assert info.how == "typical ratio" and info.reads == pytest.approx(odd.stat().st_size / (est.GZ_BYTES_PER_PAIR / 2))


def test_reference_bases_from_fai_or_size(tmp_path):
    bases, how = est.reference_bases(None)
    assert bases == pytest.approx(48_502, rel=0.01) and how == "from its file size"
    ref = tmp_path / "ref.fa"
    ref.write_text(">a\nACGT\n")
    (tmp_path / "ref.fa.fai").write_text("a\t1000\t3\t60\t61\nb\t500\t9\t60\t61\n")
    assert est.reference_bases(ref) == (1500.0, "from its .fai")
    assert est.reference_bases("gs://b/GRCh38.fa")[0] == est.UNKNOWN_REFERENCE_BASES
    with pytest.raises(InputError, match="does not exist"):
        est.reference_bases(tmp_path / "none.fa")


def _sheet(tmp_path: Path, rows: list[str]) -> Path:
    sheet = tmp_path / "samples.csv"
    sheet.write_text("sample,r1,r2,rg_pl\n" + "".join(f"{r}\n" for r in rows))
    return sheet


def test_a_sample_sheet_is_sized_per_sample_and_chunked(tmp_path, prices):
    data = bundled()
    for name in ("a", "b", "c"):
        shutil.copy(data.r1, tmp_path / f"{name}_R1.fastq.gz")
        shutil.copy(data.r2, tmp_path / f"{name}_R2.fastq.gz")
    sheet = _sheet(tmp_path, [f"{n},{n}_R1.fastq.gz,{n}_R2.fastq.gz,ILLUMINA" for n in ("a", "b", "c")])
    e = est.estimate(template_config("aws"), "fastqc-to-bwa", samples=sheet, chunk_size=2, prices=prices, today=TODAY)
    assert e.inputs["samples"] == 3 and e.inputs["read_pairs"] == 18000
    assert (e.inputs["chunk_size"], e.inputs["chunks"]) == (2, 2)
    steps = {s.step: s for s in e.steps}
    assert set(steps) == {"plan", "index-reference", "fastqc", "align", "stats", "report"}
    assert steps["align"].pods == 2 and steps["report"].pods == 1
    per_sample = FASTQC_START_S + FASTQC_SECOND_FILE_S + FASTQC_PER_BASE_S * 1_200_000
    assert steps["fastqc"].hours_per_pod * 3600 == pytest.approx(est.POD_START_S + 3 * per_sample / 2)
    assert "3 samples, 18,000 read pairs" == e.summary


def test_a_sheet_with_missing_files_names_every_one(tmp_path, prices):
    data = bundled()
    shutil.copy(data.r1, tmp_path / "a_R1.fastq.gz")
    sheet = _sheet(tmp_path, ["a,a_R1.fastq.gz,a_R2.fastq.gz,ILLUMINA", "b,b_R1.fastq.gz,b_R2.fastq.gz,ILLUMINA"])
    with pytest.raises(InputError) as err:
        est.estimate(template_config("aws"), "fastqc-to-bwa", samples=sheet, prices=prices)
    assert err.value.exit_code == ExitCode.INPUT_INVALID
    assert "3 FASTQ file(s) not found" in err.value.message
    for where in ("line 2 (a) r2", "line 3 (b) r1", "line 3 (b) r2"):
        assert where in err.value.message
    with pytest.raises(InputError, match="no such file"):
        est.estimate(template_config("aws"), "fastqc-to-bwa", samples=tmp_path / "nope.csv", prices=prices)


def test_single_sample_flags_go_together(prices):
    with pytest.raises(InputError, match="--r1 and --r2 together"):
        est.estimate(template_config("aws"), "fastqc-to-bwa", r1=str(bundled().r1), prices=prices)
    with pytest.raises(InputError, match="--data-file: not an input of fastqc-to-bwa"):
        est.estimate(template_config("aws"), "fastqc-to-bwa", data_file=Path("x.csv"), prices=prices)


def test_cellprofiler_counts_image_sets_and_batches(tmp_path, prices):
    e = est.estimate(template_config("gcp"), "cellprofiler", prices=prices, today=TODAY)
    steps = {s.step: s for s in e.steps}
    assert e.inputs["image_sets"] == 16 and steps["analyze"].pods == 4 and steps["analyze"].pool == "highcpu"
    assert steps["analyze"].hours_per_pod * 3600 == pytest.approx(
        est.POD_START_S + CP_ANALYZE_START_S + 4 * CP_ANALYZE_PER_SET_S)
    data_file = tmp_path / "images.csv"
    data_file.write_text("Metadata_Plate,FileName_DNA,PathName_DNA\n" + "".join(f"P1,{i}.png,.\n" for i in range(10)))
    e = est.estimate(template_config("gcp"), "cellprofiler", data_file=data_file, batch_size=3, seconds_per_set=30,
                     prices=prices, today=TODAY)
    steps = {s.step: s for s in e.steps}
    assert e.inputs["image_sets"] == 10 and steps["analyze"].pods == 4
    assert steps["analyze"].hours_per_pod * 3600 == pytest.approx(est.POD_START_S + CP_ANALYZE_START_S + 30 * 10 / 4)
    assert any("--seconds-per-set" in a for a in e.assumptions)
    with pytest.raises(InputError, match="no such file"):
        est.estimate(template_config("gcp"), "cellprofiler", data_file=tmp_path / "none.csv", prices=prices)


def _rendered(config, spec, mode):
    values = {n: spec.input(n).default for n in mode.inputs
              if spec.input(n).type in ("int", "bool") and spec.input(n).default is not None}
    return est.workflow_for(config, spec, mode, values, {})


def test_every_modelled_step_is_a_task_of_the_rendered_workflow(prices):
    # Every throughput and resources key of a built-in names a task (or its template) of one of its
    # modes' Workflows, every task but the copies has a throughput, and `resources` says what the
    # template requests; this also reads the pools.
    config = template_config("aws")
    spec = find_pipeline("fastqc-to-bwa")
    tasks = est.workflow_tasks(_rendered(config, spec, spec.mode_for(set())))
    assert tasks["align"].pool == "highcpu" and tasks["align"].after == ("fastqc-r1", "fastqc-r2", "index-reference")
    assert tasks["multiqc"].after == ("fastqc-r1", "fastqc-r2", "stats")
    for spec in discover().values():
        names: set[str] = set()
        for mode in spec.modes or [spec.mode_for(set())]:
            shapes = est.workflow_tasks(_rendered(config, spec, mode))
            names |= {s.task for s in shapes.values()} | {s.step for s in shapes.values()}
            for shape in shapes.values():
                if shape.task not in est.COPY_STEPS:
                    assert shape.task in spec.throughput or shape.step in spec.throughput, (spec.name, shape.task)
                    assert spec.resources.get(shape.task) or spec.resources.get(shape.step), (spec.name, shape.task)
                warnings: list[str] = []
                assert est.requests_of(config, spec, shape, warnings) == shape and warnings == [], (spec.name, warnings)
        assert set(spec.throughput) <= names and set(spec.resources) <= names, spec.name


# -- the budget -------------------------------------------------------------------------------------


def test_budget_config_is_optional_positive_and_strict():
    assert parse_config({}).budget.max_usd is None
    assert parse_config({"budget": None}).budget.max_usd is None
    assert parse_config({"budget": {"max_usd": 25}}).budget.max_usd == 25
    from bioinfra.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config({"budget": {"max_usd": -1, "maxusd": 3}})
    assert "budget.max_usd: Input should be greater than 0 (got -1)" in err.value.problems
    assert "budget.maxusd: unknown key; did you mean 'max_usd'?" in err.value.problems


def test_check_budget_refuses_above_the_budget_with_the_numbers(prices):
    e = est.estimate(template_config("aws"), "fastqc-to-bwa", prices=prices, today=TODAY)
    est.check_budget(template_config("aws"), e)  # no budget: no limit
    est.check_budget(template_config("aws", budget={"max_usd": e.total_usd + 0.01}), e)
    with pytest.raises(OverBudgetError) as err:
        est.check_budget(template_config("aws", budget={"max_usd": 0.01}), e)
    exc = err.value
    assert exc.exit_code == ExitCode.OVER_BUDGET == 14
    assert (exc.estimate_usd, exc.max_usd) == (e.total_usd, 0.01)
    assert exc.message.startswith(f"fastqc-to-bwa on aws (1 sample, 6,000 read pairs) is estimated at "
                                  f"{e.total_usd:,.2f} USD, above budget.max_usd 0.01 USD; largest items: ")
    assert [name for name, _ in exc.top_items] == [name for name, _ in e.items()[:3]]
    assert "scale-up/down (highcpu)" in exc.message
    assert "--over-budget" in exc.hint and "budget.max_usd" in exc.hint


# -- the command ------------------------------------------------------------------------------------


def test_cli_estimate_prints_a_table_with_the_price_date(cli, prices):
    proc = cli("estimate", "fastqc-to-bwa", "--target", "aws", check=True)
    out = proc.stdout
    assert out.splitlines()[0] == "fastqc-to-bwa on aws (eu-west-2): 1 sample, 6,000 read pairs"
    header = out.splitlines()[1].split()
    assert header == ["STEP", "PODS", "POOL", "MACHINE", "CAPACITY", "PODS/NODE", "TIME/POD", "NODE-HOURS", "USD"]
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:] if line.strip()}
    assert rows["align"][1:5] == ["1", "highcpu", "c6i.4xlarge", "spot"]
    assert "total" in rows and f"as of {prices.as_of}" in out
    assert "no bioinfra.yaml: the defaults of `bioinfra init --target aws`" in out
    assert "! align: one pod per c6i.4xlarge" in proc.stderr


def test_cli_estimate_json_uses_the_config_file(cli, tmp_path):
    config = tmp_path / "bioinfra.yaml"
    config.write_text(config_text("gcp", "lab-seq").replace("# max_usd: 50", "max_usd: 50"))
    data = json.loads(cli("estimate", "cellprofiler", "--json", check=True).stdout)
    assert data["target"] == "gcp" and data["inputs"]["image_sets"] == 16
    assert data["total_usd"] == pytest.approx(sum(s["usd"] for s in data["steps"]) + sum(
        o["usd"] for o in data["overheads"]) + data["control_plane"]["usd"])
    assert not any("no bioinfra.yaml" in a for a in data["assumptions"])


def test_cli_estimate_refuses_onprem_and_names_missing_inputs(cli, tmp_path):
    proc = cli("estimate", "fastqc-to-bwa", "--target", "onprem")
    assert proc.returncode == ExitCode.UNSUPPORTED and "no prices for target onprem" in proc.stderr
    proc = cli("estimate", "fastqc-to-bwa", "--target", "aws", "--r1", "a.fq.gz", "--r2", "b.fq.gz")
    assert proc.returncode == ExitCode.INPUT_INVALID and "--r1: " in proc.stderr and "--r2: " in proc.stderr
    proc = cli("estimate", "fastqc-to-bwa", "--target", "azure")
    assert proc.returncode == ExitCode.INPUT_INVALID and "unknown target 'azure'" in proc.stderr


def test_cli_estimate_help_has_examples(cli):
    out = cli("estimate", "--help", check=True).stdout
    assert "bioinfra estimate fastqc-to-bwa --target gcp --samples samples.csv" in out and "--over-budget" in out


def test_the_makespan_is_the_longest_path_whatever_the_order():
    after = {"d": ("b", "c"), "b": ("a",), "c": ("a",), "a": ()}
    assert est.longest_path({"d": 1, "c": 5, "b": 2, "a": 3}, after) == 9
    with pytest.raises(RuntimeError, match="cycle"):
        est.longest_path({"a": 1, "b": 1}, {"a": ("b",), "b": ("a",)})


def test_run_refuses_above_budget_before_anything_and_over_budget_goes_on(cli, tmp_path):
    """`run --target aws` with a budget: exit 14 naming the estimate, before credentials or the
    cluster are touched; --over-budget skips the check (then stops at the missing credentials)."""
    (tmp_path / "bioinfra.yaml").write_text("name: lab\ntarget: aws\nregion: eu-west-2\nbudget:\n  max_usd: 0.001\n")
    refused = cli("run", "fastqc-to-bwa", extra_env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    assert refused.returncode == ExitCode.OVER_BUDGET, refused.stderr
    assert "above budget.max_usd" in refused.stderr and "--over-budget" in refused.stderr
    assert not (tmp_path / "results").exists()
    forced = cli("run", "fastqc-to-bwa", "--over-budget", extra_env={"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                                                                   "AWS_CONFIG_FILE": str(tmp_path / "none")})
    assert forced.returncode != ExitCode.OVER_BUDGET
    assert "not checking the estimate against budget.max_usd" in forced.stderr


# -- any pipeline folder: the work model is its pipeline.yaml's data ------------------------------

OWN_PIPELINE = """\
apiVersion: bioinfra.io/v1alpha1
kind: Pipeline
name: read-counter
version: 0.1.0
description: Counts a FASTQ's reads, then writes a summary.
workflow: workflow.yaml.j2
steps: [count, summarise]
inputs:
  - name: reads
    type: fastq
    default: bundled:r1
    help: reads to count
resources:
  count: {cpu: 2, memory: 3Gi}
throughput:
  count:
    start: 2
    threaded: true
    efficiency: 0.5
    work: [{unit: read_bases, rate: 1.0e+6}]
  summarise: {start: 1, measured: false, note: a guess}
"""

OWN_WORKFLOW = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: read-counter-
spec:
  entrypoint: main
  arguments:
    parameters:
      - {name: reads, value: ""}
      - {name: run-dir, value: ""}
      - {name: stage-in, value: ""}
      - {name: stage-out, value: ""}
  templates:
    - name: main
      dag:
        tasks:
          - {name: count, template: count}
          - {name: summarise, template: summarise, depends: count}
    - name: count
      script:
        image: busybox
        command: [sh]
        source: zcat "$READS" | wc -l
        env:
          - {name: READS, value: "{{ '{{workflow.parameters.reads}}' }}"}
    - name: summarise
      script:
        image: busybox
        command: [sh]
        source: echo done
"""


@pytest.fixture
def own_pipeline(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere" / "read-counter"
    folder.mkdir(parents=True)
    (folder / "pipeline.yaml").write_text(OWN_PIPELINE)
    (folder / "workflow.yaml.j2").write_text(OWN_WORKFLOW)
    return folder


def test_a_pipeline_folder_outside_the_repo_is_estimated_from_its_own_throughput(own_pipeline, prices, tmp_path):
    """No code knows read-counter: its typed input says what to measure (a FASTQ: read bases), its
    throughput how long each step works, its resources what `count` requests (its template asks
    for nothing)."""
    e = est.estimate(template_config("aws"), str(own_pipeline), prices=prices, today=TODAY)
    steps = {s.step: s for s in e.steps}
    assert list(steps) == ["count", "summarise"]
    assert e.pipeline == "read-counter" and e.summary == "1 sample, 6,000 read pairs"
    assert e.inputs["read_bases"] == 600_000
    count = steps["count"]
    assert (count.cpu_request, count.memory_request_gib, count.pool) == (2, 3, "general")
    assert count.hours_per_pod * 3600 == pytest.approx(est.POD_START_S + (2 + 600_000 / 1e6) / (2 * 0.5))
    assert steps["summarise"].hours_per_pod * 3600 == pytest.approx(est.POD_START_S + 1)
    assert (steps["summarise"].cpu_request, steps["summarise"].memory_request_gib) == (1, 1)  # the defaults
    assert "summarise: a guess" in e.assumptions
    assert "summarise: unmeasured estimates (their pipeline.yaml entries say why)" in e.assumptions
    assert any(str(own_pipeline / "pipeline.yaml") in a for a in e.assumptions)
    # Its own reads: the typed input is measured, not the bundled sample's.
    mine = tmp_path / "mine_R1.fastq.gz"
    mine.write_bytes(bundled().r1.read_bytes() * 2)
    e2 = est.estimate(template_config("aws"), str(own_pipeline), reads=mine, prices=prices, today=TODAY)
    assert e2.inputs["read_bases"] == pytest.approx(1_200_000, rel=0.01)


def test_cli_estimates_a_pipeline_folder_and_shows_its_options(cli, own_pipeline):
    help_text = cli("estimate", str(own_pipeline), "--help", check=True).stdout
    assert "--reads FASTQ" in help_text and "--seconds-per-set" in help_text and "--json" in help_text
    data = json.loads(cli("estimate", str(own_pipeline), "--target", "gcp", "--json", check=True).stdout)
    assert [s["step"] for s in data["steps"]] == ["count", "summarise"] and data["pipeline"] == "read-counter"
    proc = cli("estimate", str(own_pipeline), "--target", "gcp", "--seconds-per-set", "3")
    assert proc.returncode == ExitCode.INPUT_INVALID and "no step of read-counter runs a program of yours" in proc.stderr


def test_a_step_without_throughput_counts_its_pod_start_and_says_so(own_pipeline, prices):
    text = (own_pipeline / "pipeline.yaml").read_text()
    (own_pipeline / "pipeline.yaml").write_text(text.split("throughput:")[0])
    e = est.estimate(template_config("gcp"), str(own_pipeline), prices=prices, today=TODAY)
    assert all(s.hours_per_pod * 3600 == pytest.approx(est.POD_START_S) for s in e.steps)
    assert any("count, summarise: no throughput in read-counter's pipeline.yaml" in w for w in e.warnings)


def test_a_throughput_naming_no_input_is_refused(own_pipeline):
    text = (own_pipeline / "pipeline.yaml").read_text().replace("{unit: read_bases,", "{unit: read_bases, of: r9,")
    (own_pipeline / "pipeline.yaml").write_text(text)
    with pytest.raises(InputError, match="throughput: Value error, count: `of: r9` names no input"):
        find_pipeline(str(own_pipeline))


def test_variant_calling_is_estimated_with_honest_hints(prices, tmp_path):
    e = est.estimate(template_config("aws"), "variant-calling", prices=prices, today=TODAY)
    steps = {s.step: s for s in e.steps}
    assert list(steps) == ["index-reference", "align", "call", "bcftools-stats", "compare-truth", "multiqc"]
    assert e.summary == "1 sample, 6,000 read pairs" and steps["align"].cpu_request == 8
    call = find_pipeline("variant-calling").throughput["call"]
    reference = e.inputs["reference_bases"]
    assert steps["call"].hours_per_pod * 3600 == pytest.approx(
        est.POD_START_S + call.start + 1_200_000 / call.work[0].rate + reference / call.work[1].rate)
    assert "bcftools-stats, compare-truth: unmeasured estimates (their pipeline.yaml entries say why)" in e.assumptions
    assert any(a.startswith("call: measured against the lambda phage only") for a in e.assumptions)
    # the truth set is not measured, and a user's reads against the bundled reference say so
    with pytest.raises(InputError, match="give --r1 and --r2 together"):
        est.estimate(template_config("aws"), "variant-calling", r2=bundled().r2, prices=prices)
    e = est.estimate(template_config("aws"), "variant-calling", r1=bundled().r1, r2=bundled().r2, prices=prices,
                     today=TODAY)
    assert "--reference: not given, so the bundled sample's is counted" in e.assumptions


def test_seconds_per_set_needs_a_step_that_runs_the_users_program(prices):
    with pytest.raises(InputError, match="--seconds-per-set: no step of fastqc-to-bwa"):
        est.estimate(template_config("aws"), "fastqc-to-bwa", seconds_per_set=3, prices=prices)


def test_no_pipeline_is_named_in_the_estimate_code():
    source = Path(est.__file__).read_text()
    for name in discover():
        assert f'"{name}"' not in source, name
    assert "pipeline ==" not in source
