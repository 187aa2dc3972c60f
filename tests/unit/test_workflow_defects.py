"""The #16 point-4 defects of the rendered Workflows, each pinned by a test that failed before its fix:
the namespace `render` names, deadlines, label values, and the fan-out width cap."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bioinfra.config import Config, parse_config
from bioinfra.core import cluster_run
from bioinfra.errors import ConfigError, InputError
from bioinfra.pipelines import (
    MAX_FAN_OUT_PODS,
    SAMPLE_NAME_RE,
    CellProfilerParams,
    FastqcToBwaParams,
    SamplesParams,
    check_sample_name,
    label_value,
    load_workflow,
    render_cellprofiler,
    render_fastqc_to_bwa,
    render_samples,
)
from bioinfra.targets import addons
from tests.argo_status import MIB, simulated_workflow, stored_sizes
from tests.unit.test_no_code_injection import FASTQ, SCREEN, SHEET, VARIANTS

# -- render names the namespace ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_workflow_names_the_namespace_the_controller_watches(name):
    """The addons stack installs Argo to watch WORKFLOW_NAMESPACE only; a Workflow `render` prints
    (and `kubectl create -f` would create) must land there, as the cluster path submits it."""
    workflow = yaml.safe_load(VARIANTS[name])
    assert workflow["metadata"]["namespace"] == addons.WORKFLOW_NAMESPACE == cluster_run.NAMESPACE


# -- deadlines ------------------------------------------------------------------------------------


def _leaves(workflow):
    return [t for t in workflow["spec"]["templates"] if "script" in t or "container" in t]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_step_attempt_and_the_workflow_have_a_deadline(name):
    """A hung step must not hold a (spot) node for ever: every pod template carries an integer
    activeDeadlineSeconds no longer than the Workflow's, and the wrappers (steps templates, where
    validate.go refuses it) none: Argo applies it to each attempt's pod."""
    workflow = yaml.safe_load(VARIANTS[name])
    whole = workflow["spec"].get("activeDeadlineSeconds")
    assert type(whole) is int and whole == Config().run.workflow_deadline
    for t in workflow["spec"]["templates"]:
        if "script" in t or "container" in t:
            assert t["name"].endswith("-attempt")
            ads = t.get("activeDeadlineSeconds")
            assert type(ads) is int and 60 <= ads <= whole, (t["name"], ads)
        else:
            assert "activeDeadlineSeconds" not in t, t["name"]
    assert len(_leaves(workflow)) >= 6


def test_deadlines_come_from_bioinfra_yaml_per_step_and_per_item():
    config = parse_config({"run": {"workflow_deadline": "2d", "step_deadlines": {"align": "3h", "analyze": 600}}})
    single = load_workflow(render_fastqc_to_bwa(config, "local", FASTQ))
    by_name = {t["name"]: t for t in single["spec"]["templates"]}
    assert single["spec"]["activeDeadlineSeconds"] == 2 * 86400
    assert by_name["align-attempt"]["activeDeadlineSeconds"] == 3 * 3600
    assert by_name["fastqc-attempt"]["activeDeadlineSeconds"] == 4 * 3600  # bioinfra's default
    # A chunk's pod is given several samples: its deadline is per sample, capped by the Workflow's.
    chunks = load_workflow(render_samples(config, "aws", SamplesParams(**{**SHEET.__dict__, "per_chunk": 5})))
    by_name = {t["name"]: t for t in chunks["spec"]["templates"]}
    assert by_name["align-attempt"]["activeDeadlineSeconds"] == 5 * 3 * 3600
    assert by_name["fastqc-attempt"]["activeDeadlineSeconds"] == 5 * 4 * 3600
    assert by_name["report-attempt"]["activeDeadlineSeconds"] == 2 * 3600  # not a fan-out: once
    chunks = load_workflow(render_samples(config, "aws", SamplesParams(**{**SHEET.__dict__, "chunk_size": 20})))
    by_name = {t["name"]: t for t in chunks["spec"]["templates"]}
    assert by_name["align-attempt"]["activeDeadlineSeconds"] == 2 * 86400  # 20 x 3h, capped at 2d
    screen = load_workflow(render_cellprofiler(config, "gcp", CellProfilerParams(**{**SCREEN.__dict__,
                                                                                    "batch_size": 7})))
    by_name = {t["name"]: t for t in screen["spec"]["templates"]}
    assert by_name["analyze-attempt"]["activeDeadlineSeconds"] == 7 * 600


@pytest.mark.parametrize(("run", "problem"), [
    ({"workflow_deadline": "45d"}, "run.workflow_deadline: must be between 10m and 30d (got '45d')"),
    ({"workflow_deadline": "1 week"}, "run.workflow_deadline: must be a duration such as 30m, 12h or 7d"),
    ({"step_deadlines": {"alignn": "1h"}}, "run.step_deadlines.alignn: no such step; did you mean 'align'?"),
    ({"step_deadlines": {"align": "10s"}}, "run.step_deadlines.align: must be between 1m and 30d (got '10s')"),
    ({"step_deadlines": {"stage-in": "soon"}}, "run.step_deadlines.stage-in: must be a duration"),
    ({"workflow_deadline": "1d", "step_deadlines": {"align": "2d"}},
     "run.step_deadlines.align: 2d is longer than workflow_deadline (1d); the Workflow would stop it first"),
    ({"deadline": "1d"}, "run.deadline: unknown key"),
])
def test_a_bad_deadline_is_refused_naming_its_field(run, problem):
    with pytest.raises(ConfigError) as info:
        parse_config({"run": run})
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_a_sheets_chunk_deadline_counts_the_samples_auto_chunking_gives_each_pod(tmp_path):
    from bioinfra.core.samples import read_sheet, samples_params

    path = tmp_path / "s.csv"
    path.write_text("sample,r1,r2\n" + "".join(f"S{i},a{i}.fq,b{i}.fq\n" for i in range(450)))
    params = samples_params(Config(), read_sheet(path), SHEET.reference, "r", chunk_size=None, max_parallel=None,
                            title="t")
    assert params.chunk_size is None and params.per_chunk == 3  # "auto": 450 samples in at most 200 chunks
    small = samples_params(Config(), read_sheet(path), SHEET.reference, "r", chunk_size=1000, max_parallel=None,
                           title="t")
    assert small.per_chunk == 450  # never more than the sheet holds


# -- label values ---------------------------------------------------------------------------------

# Kubernetes' own rule, written out again here from apimachinery (validation.go IsValidLabelValue),
# not imported from the code under test.
K8S_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
SAMPLE_NAMES = st.from_regex(SAMPLE_NAME_RE, fullmatch=True)


def assert_labels_valid(workflow: dict) -> None:
    for key, value in (workflow["metadata"].get("labels") or {}).items():
        assert isinstance(value, str) and len(value) <= 63 and K8S_LABEL_VALUE.fullmatch(value), (key, value)
    for t in workflow["spec"]["templates"]:
        for key, value in ((t.get("metadata") or {}).get("labels") or {}).items():
            assert len(value) <= 63 and K8S_LABEL_VALUE.fullmatch(value), (t["name"], key, value)


@settings(max_examples=100, deadline=None)
@example(sample="S1_")
@example(sample="S" * 62 + "-x")  # 64 characters: a 63-character cut ends in '-'
@example(sample="a" * 64)
@example(sample="lambda")
@given(sample=SAMPLE_NAMES)
def test_every_label_value_rendered_from_a_sample_name_is_valid(sample):
    check_sample_name(sample)  # every name bioinfra accepts, on any path, renders
    workflow = load_workflow(render_fastqc_to_bwa(Config(), "aws", FastqcToBwaParams(**{**FASTQ.__dict__,
                                                                                        "sample": sample})))
    assert_labels_valid(workflow)
    label = workflow["metadata"]["labels"]["bioinfra.io/sample"]
    if len(sample) <= 63 and K8S_LABEL_VALUE.fullmatch(sample):
        assert label == sample  # unchanged when it already was a label value
    else:
        assert label != sample and re.search(r"(^|-)[0-9a-f]{8}$", label)


@settings(max_examples=500, deadline=None)
@example(text="")
@example(text="-_.")
@example(text="é" * 70)
@given(text=st.text())
def test_label_value_is_valid_for_any_text_and_tells_changed_names_apart(text):
    value = label_value(text)
    assert len(value) <= 63 and K8S_LABEL_VALUE.fullmatch(value)
    assert label_value(text) == value
    if value != text:
        assert value != label_value(text + "_")


def test_names_that_differ_past_the_cut_get_different_labels():
    a, b = "S" * 60 + "_a", "S" * 60 + "_b"
    assert label_value(a) != label_value(b)


def _staged(sample: str) -> list[cluster_run.StagedInput]:
    return [cluster_run.StagedInput(role, f"s3://lab-data/{name}", f"{folder}/remote-0123456789abcdef/{name}",
                                    remote=cluster_run.RemoteInput(f"s3://lab-data/{name}", "lab-data", name))
            for role, folder, name in (("r1", "inputs", f"{sample}_R1.fastq.gz"),
                                       ("r2", "inputs", f"{sample}_R2.fastq.gz"),
                                       ("reference", "references", "ref.fa.gz"))]


@settings(max_examples=50, deadline=None)
@example(sample="S1_")
@given(sample=SAMPLE_NAMES)
def test_the_cluster_path_submits_only_valid_label_values(sample):
    config = parse_config({"target": "aws", "name": "lab-seq", "region": "eu-west-2"})
    workflow = cluster_run.build_workflow(config, "fastqc-to-bwa-t", sample, _staged(sample), qc_gate=False,
                                          stage_out=cluster_run.results_location(config, "fastqc-to-bwa-t")[0])
    assert_labels_valid(workflow)


@pytest.mark.parametrize("key", ["runs/-bad_R1.fastq.gz", "runs/S1%_R1.fastq.gz"])
def test_remote_inputs_check_the_sample_name_before_any_cloud_call(monkeypatch, key):
    """With s3:// inputs the sample name (given or taken from the object's name) is checked as a
    local run checks it, before the object is looked at."""
    config = parse_config({"target": "aws", "name": "lab-seq", "region": "eu-west-2"})
    monkeypatch.setattr(cluster_run, "check_remote", lambda *a: pytest.fail("a cloud call before the name check"))
    req = cluster_run.ClusterRunRequest(target="aws", r1=f"s3://lab-data/{key}", r2="s3://lab-data/runs/x_R2.fq.gz",
                                        reference="s3://lab-data/ref.fa.gz")
    with pytest.raises(InputError, match="sample name"):
        cluster_run.check_cluster_inputs(config, req)
    for bad in ("S1 x", "-S1", "S" * 65, "S1\n"):
        with pytest.raises(InputError, match="sample name"):
            cluster_run.check_cluster_inputs(config, dataclasses.replace(req, sample=bad))


def test_a_sheets_sample_names_are_checked_as_every_other_path_checks_them(tmp_path):
    from bioinfra.core.samples import read_sheet

    path = tmp_path / "s.csv"
    path.write_text('sample,r1,r2\n"S1\n",a.fq,b.fq\n' + "S" * 65 + ",c.fq,d.fq\nS3_,e.fq,f.fq\n")
    with pytest.raises(InputError) as info:
        read_sheet(path)
    # Only the 65-character name: "S1\n" is stripped to S1, and S3_ is a name (its label gets a hash).
    assert "1 problem(s)" in info.value.message and "sample name 'SSSS" in info.value.message


# -- fan-out width cap ----------------------------------------------------------------------------

CELLPROFILER_TASKS = [("stage-in", "stage-in"), ("plan", "plan"), ("illum", "illum"), ("analyze", "analyze"),
                      ("gather", "gather"), ("stage-out", "stage-out")]
SAMPLES_TASKS = [("stage-in", "stage-in"), ("plan", "plan"), ("index-reference", "index-reference"),
                 ("fastqc", "fastqc"), ("align", "align"), ("stats", "stats"), ("report", "report"),
                 ("stage-out", "stage-out")]
BATCH = 4


def widest_screen(batches: int, failures: int = 0) -> dict:
    params = CellProfilerParams(**{**SCREEN.__dict__, "batch_size": BATCH, "image_sets": batches * BATCH})
    spec = load_workflow(render_cellprofiler(AWS, "aws", params))
    items = [{"first": 1 + BATCH * i, "last": BATCH * (i + 1)} for i in range(batches)]
    return simulated_workflow(spec, "cellprofiler-20261206-040000-a1b2", CELLPROFILER_TASKS, {"analyze": items},
                              ("plan:batches", json.dumps(items, separators=(",", ":"))), failures)


def widest_sheet(chunks: int, failures: int = 0) -> dict:
    params = SamplesParams(**{**SHEET.__dict__, "chunk_size": 1, "samples": chunks})
    spec = load_workflow(render_samples(AWS, "aws", params))
    items = [{"first": i + 1, "last": i + 1} for i in range(chunks)]
    return simulated_workflow(spec, "fastqc-to-bwa-20261206-040000-a1b2", SAMPLES_TASKS,
                              dict.fromkeys(("fastqc", "align", "stats"), items),
                              ("plan:chunks", json.dumps(items, separators=(",", ":"))), failures)


AWS = parse_config({"target": "aws", "name": "lab-seq", "region": "eu-west-2"})


@pytest.mark.parametrize("widest", [lambda f: widest_screen(MAX_FAN_OUT_PODS, f),
                                    lambda f: widest_sheet(MAX_FAN_OUT_PODS // 3, f)], ids=["cellprofiler", "samples"])
def test_the_status_of_the_widest_allowed_run_fits_argos_object_with_margin(widest):
    """The widest run bioinfra allows, every node with every field Argo writes: the Workflow as the
    controller stores it (status.nodes compressed once the JSON passes 1 MiB: packer.go) stays under
    half of 1 MiB, and under 1 MiB even when every fan-out child failed once and was retried."""
    done = stored_sizes(widest(0))
    assert done["nodes"] >= 5 * MAX_FAN_OUT_PODS  # 5 nodes per fan-out pod (the retry wrapper's tree)
    assert done["raw"] > MIB  # so Argo stores it compressed: that is what must fit
    assert done["compressed"] <= MIB // 2, done
    retried = stored_sizes(widest(1))
    assert retried["nodes"] >= 9 * MAX_FAN_OUT_PODS and retried["compressed"] < MIB, retried


def test_without_the_cap_a_screen_outgrows_the_object():
    """What the cap prevents: 6,000 batches (24,000 image sets of 4) no longer fit even compressed."""
    items = [{"first": 1 + BATCH * i, "last": BATCH * (i + 1)} for i in range(6000)]
    spec = load_workflow(render_cellprofiler(AWS, "aws", CellProfilerParams(**{**SCREEN.__dict__, "batch_size": BATCH})))
    wf = simulated_workflow(spec, "cellprofiler-20261206-040000-a1b2", CELLPROFILER_TASKS, {"analyze": items},
                            ("plan:batches", json.dumps(items, separators=(",", ":"))))
    assert stored_sizes(wf)["compressed"] > MIB


def test_a_screen_wider_than_the_cap_is_refused_at_render_saying_why_and_what_to_do():
    at_cap = CellProfilerParams(**{**SCREEN.__dict__, "batch_size": 4, "image_sets": 4 * MAX_FAN_OUT_PODS})
    render_cellprofiler(Config(), "local", at_cap)
    with pytest.raises(InputError) as info:
        render_cellprofiler(Config(), "local", dataclasses.replace(at_cap, image_sets=4 * MAX_FAN_OUT_PODS + 1))
    assert info.value.message == ("cellprofiler: 4,801 image sets in batches of 4 make 1,201 analyze batches; "
                                  "one run may have at most 1,200")
    assert "use --batch-size 5 or more, or split the screen" in info.value.hint and "1 MiB" in info.value.hint


def test_a_sheet_wider_than_the_cap_is_refused_at_render_saying_why_and_what_to_do(tmp_path):
    from bioinfra.core.samples import read_sheet, samples_params

    path = tmp_path / "s.csv"
    path.write_text("sample,r1,r2\n" + "".join(f"S{i},a{i}.fq,b{i}.fq\n" for i in range(1000)))
    sheet = read_sheet(path)
    for chunk_size in (None, 3):  # auto (200 chunks) and 334 chunks of 3: allowed
        render_samples(Config(), "local", samples_params(Config(), sheet, SHEET.reference, "r", chunk_size=chunk_size,
                                                         max_parallel=None, title="t"))
    with pytest.raises(InputError) as info:
        render_samples(Config(), "local", samples_params(Config(), sheet, SHEET.reference, "r", chunk_size=2,
                                                         max_parallel=None, title="t"))
    assert info.value.message == ("fastqc-to-bwa --samples: 1,000 samples in chunks of 2 make 500 chunks; "
                                  "one run may have at most 400 (3 pods each)")
    assert "use --chunk-size 3 or more, leave --chunk-size out" in info.value.hint


def test_the_plan_steps_refuse_a_wider_run_in_the_cluster_too(tmp_path):
    """A Workflow submitted with other parameters (argo submit -p batch-size=1) or built by a path
    that did not count: the plan step refuses before any fan-out."""
    from bioinfra.core.screening import plan_module

    plan = plan_module()
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"x")
    data = tmp_path / "d.csv"
    data.write_text("FileName_DNA,Metadata_Plate\n" + "a.png,P1\n" * 5)
    with pytest.raises(plan.PlanError, match="5 image sets in batches of 1 make 5 batches; one run may have at most 4"):
        plan.run(str(data), str(images), str(tmp_path / "illum"), str(tmp_path / "out"), 1, max_batches=4)
    screen = load_workflow(render_cellprofiler(Config(), "local", SCREEN))
    plan_step = next(t for t in screen["spec"]["templates"] if t["name"] == "plan-attempt")
    assert f"--max-batches {MAX_FAN_OUT_PODS} " in plan_step["script"]["source"]
    # The sheet's plan (awk): 401 samples in chunks of 1 against a cap of 400.
    sheet_wf = load_workflow(render_samples(Config(), "local", SHEET))
    source = next(t for t in sheet_wf["spec"]["templates"] if t["name"] == "plan-attempt")["script"]["source"]
    (tmp_path / "fq").write_text("x")
    (tmp_path / "sheet.tsv").write_text("sample\tr1\tr2\n" + "".join(f"S{i}\tfq\tfq\n" for i in range(401)))
    proc = subprocess.run(["bash", "-c", source], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "RUN_DIR": "run", "SHEET": "sheet.tsv", "CHUNK_SIZE": "1"})
    assert proc.returncode == 2 and "401 samples in chunks of 1 make 401 chunks; one run may have at most 400" \
        in proc.stderr, proc.stderr
    proc = subprocess.run(["bash", "-c", source], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "RUN_DIR": "run", "SHEET": "sheet.tsv", "CHUNK_SIZE": "auto"})
    assert proc.returncode == 0, proc.stderr


def test_a_cluster_screen_wider_than_the_cap_is_refused_before_submission_by_the_render(tmp_path):
    """The cluster path (cluster_screening.build_screen_workflow) counts the data file's rows, so the
    fan-out cap is enforced with the render's message before anything is submitted, not first by the
    plan step in the cluster."""
    from bioinfra.core.cluster_screening import build_screen_workflow

    data = tmp_path / "d.csv"
    data.write_text("FileName_DNA,Metadata_Plate\n" + "a.png,P1\n" * (4 * MAX_FAN_OUT_PODS + 1))
    images = cluster_run.RemoteInput("s3://lab-hcs/plate1/", "lab-hcs", "plate1/")
    staged = [cluster_run.StagedInput("images", images.url, "inputs/remote-5c1e0b9d7a3f2e11/images", remote=images),
              cluster_run.StagedInput("data_file", str(data), SCREEN.data_file, "0" * 64, data.stat().st_size)]
    paths = {"images": "inputs/remote-5c1e0b9d7a3f2e11/images", "data_file": SCREEN.data_file,
             "illum_pipeline": SCREEN.illum_pipeline, "analysis_pipeline": SCREEN.analysis_pipeline}
    stage_out = cluster_run.results_location(AWS, "cellprofiler-t")[0]
    with pytest.raises(InputError) as info:
        build_screen_workflow(AWS, "cellprofiler-t", paths, staged, batch_size=4, title="t", max_parallel=None,
                              stage_out=stage_out)
    assert info.value.message == ("cellprofiler: 4,801 image sets in batches of 4 make 1,201 analyze batches; "
                                  "one run may have at most 1,200")
    data.write_text("FileName_DNA,Metadata_Plate\n" + "a.png,P1\n" * (4 * MAX_FAN_OUT_PODS))
    build_screen_workflow(AWS, "cellprofiler-t", paths, staged, batch_size=4, title="t", max_parallel=None,
                          stage_out=stage_out)
