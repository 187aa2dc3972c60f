"""The #16 point-4 defects of the rendered Workflows, each pinned by a test that failed before its fix:
the namespace `render` names, deadlines, label values, and the fan-out width cap."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bioinfra.config import Config, parse_config
from bioinfra.errors import ConfigError, InputError
from bioinfra.pipelines import MAX_FAN_OUT_PODS, SAMPLE_NAME_RE, check_sample_name, label_value
from bioinfra.sampledata import DATA_DIR
from bioinfra.targets import addons
from tests import render_engine
from tests.argo_status import MIB, simulated_workflow, stored_sizes
from tests.unit.test_no_code_injection import FASTQ, SCREEN, SHEET, VARIANTS

FILES = {"illum": str(DATA_DIR / "cellprofiler" / "illum.cppipe"),
         "analysis": str(DATA_DIR / "cellprofiler" / "analysis.cppipe")}


def fastqc_to_bwa(config, target, params, **kwargs):
    return render_engine.workflow("fastqc-to-bwa", config, target, params, values={"qc_gate": False}, **kwargs)


def samples(config, target, params, chunk_size=None, items=1):
    return render_engine.workflow("fastqc-to-bwa", config, target, params, mode="samples",
                                  values={"chunk_size": chunk_size}, items=items)


def screen(config, target, params, batch_size=4):
    return render_engine.workflow("cellprofiler", config, target, params, values={"batch_size": batch_size},
                                  items=batch_size)

# -- render names the namespace ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_workflow_names_the_namespace_the_controller_watches(name):
    """The addons stack installs Argo to watch WORKFLOW_NAMESPACE only; a Workflow `render` prints
    (and `kubectl create -f` would create) must land there, as the cluster path submits it."""
    workflow = yaml.safe_load(VARIANTS[name])
    assert workflow["metadata"]["namespace"] == addons.WORKFLOW_NAMESPACE


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
    single = fastqc_to_bwa(config, "local", FASTQ)
    by_name = {t["name"]: t for t in single["spec"]["templates"]}
    assert single["spec"]["activeDeadlineSeconds"] == 2 * 86400
    assert by_name["align-attempt"]["activeDeadlineSeconds"] == 3 * 3600
    assert by_name["fastqc-attempt"]["activeDeadlineSeconds"] == 4 * 3600  # bioinfra's default
    # A chunk's pod is given several samples: its deadline is per sample, capped by the Workflow's.
    chunks = samples(config, "aws", SHEET, items=5)
    by_name = {t["name"]: t for t in chunks["spec"]["templates"]}
    assert by_name["align-attempt"]["activeDeadlineSeconds"] == 5 * 3 * 3600
    assert by_name["fastqc-attempt"]["activeDeadlineSeconds"] == 5 * 4 * 3600
    assert by_name["report-attempt"]["activeDeadlineSeconds"] == 2 * 3600  # not a fan-out: once
    chunks = samples(config, "aws", SHEET, chunk_size=20, items=20)
    by_name = {t["name"]: t for t in chunks["spec"]["templates"]}
    assert by_name["align-attempt"]["activeDeadlineSeconds"] == 2 * 86400  # 20 x 3h, capped at 2d
    screen_wf = screen(config, "gcp", SCREEN, batch_size=7)
    by_name = {t["name"]: t for t in screen_wf["spec"]["templates"]}
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
    path = tmp_path / "s.csv"
    path.write_text("sample,r1,r2\n" + "".join(f"S{i},a{i}.fq,b{i}.fq\n" for i in range(450)))
    auto = render_engine.prepared("fastqc-to-bwa", Config(), "local", {"samples": str(path)})
    # "auto": 450 samples in at most 200 chunks; the plan step decides (chunk-size "")
    assert auto.parameters["chunk-size"] == "" and auto.fan_out["per_pod_in_pod"] == 3
    by_name = {t["name"]: t for t in auto.workflow["spec"]["templates"]}
    assert by_name["align-attempt"]["activeDeadlineSeconds"] == 3 * Config().run.step_deadline("align")
    small = render_engine.prepared("fastqc-to-bwa", Config(), "local", {"samples": str(path), "chunk_size": 1000})
    assert small.fan_out["per_pod_in_pod"] == 450  # never more than the sheet holds


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
    workflow = fastqc_to_bwa(Config(), "aws", {**FASTQ, "sample": sample})
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


def _remote(sample: str) -> dict[str, str]:
    return {"r1": f"s3://lab-data/{sample}_R1.fastq.gz", "r2": f"s3://lab-data/{sample}_R2.fastq.gz",
            "reference": "s3://lab-data/ref.fa.gz"}


@settings(max_examples=50, deadline=None)
@example(sample="S1_")
@given(sample=SAMPLE_NAMES)
def test_the_cluster_path_submits_only_valid_label_values(sample):
    config = parse_config({"target": "aws", "name": "lab-seq", "region": "eu-west-2"})
    workflow = render_engine.prepared("fastqc-to-bwa", config, "aws", {**_remote(sample), "sample": sample},
                                      run_id="fastqc-to-bwa-t").workflow
    assert_labels_valid(workflow)


class _NoCloudCalls(render_engine.StagingBackend):
    def check_remote(self, ref, role):
        pytest.fail("a cloud call before the name check")


@pytest.mark.parametrize("key", ["runs/-bad_R1.fastq.gz", "runs/S1%_R1.fastq.gz"])
def test_remote_inputs_check_the_sample_name_before_any_cloud_call(key):
    """With s3:// inputs the sample name (given or taken from the object's name) is checked as a
    local run checks it, before the object is looked at."""
    config = parse_config({"target": "aws", "name": "lab-seq", "region": "eu-west-2"})
    given = {"r1": f"s3://lab-data/{key}", "r2": "s3://lab-data/runs/x_R2.fq.gz", "reference": "s3://lab-data/ref.fa.gz"}
    with pytest.raises(InputError, match="sample name"):
        render_engine.prepared("fastqc-to-bwa", config, "aws", given, backend=_NoCloudCalls("aws"))
    for bad in ("S1 x", "-S1", "S" * 65, "S1\n"):
        with pytest.raises(InputError, match="sample name"):
            render_engine.prepared("fastqc-to-bwa", config, "aws", {**given, "sample": bad},
                                   backend=_NoCloudCalls("aws"))


def test_a_sheets_sample_names_are_checked_as_every_other_path_checks_them(tmp_path):
    from bioinfra.engine.sheets import read_sheet

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
    spec = screen(AWS, "aws", SCREEN, batch_size=BATCH)
    items = [{"first": 1 + BATCH * i, "last": BATCH * (i + 1)} for i in range(batches)]
    return simulated_workflow(spec, "cellprofiler-20261206-040000-a1b2", CELLPROFILER_TASKS, {"analyze": items},
                              ("plan:batches", json.dumps(items, separators=(",", ":"))), failures)


def widest_sheet(chunks: int, failures: int = 0) -> dict:
    spec = samples(AWS, "aws", SHEET, chunk_size=1)
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
    spec = screen(AWS, "aws", SCREEN, batch_size=BATCH)
    wf = simulated_workflow(spec, "cellprofiler-20261206-040000-a1b2", CELLPROFILER_TASKS, {"analyze": items},
                            ("plan:batches", json.dumps(items, separators=(",", ":"))))
    assert stored_sizes(wf)["compressed"] > MIB


def _screen_files(tmp_path, image_sets: int) -> dict[str, str]:
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    (images / "a.png").write_bytes(b"x")
    data = tmp_path / "d.csv"
    data.write_text("FileName_DNA,Metadata_Plate\n" + "a.png,P1\n" * image_sets)
    return {"images": str(images), "data_file": str(data), **FILES}


def test_a_screen_wider_than_the_cap_is_refused_at_render_saying_why_and_what_to_do(tmp_path):
    render_engine.prepared("cellprofiler", Config(), "local", {**_screen_files(tmp_path, 4 * MAX_FAN_OUT_PODS),
                                                               "batch_size": 4})
    with pytest.raises(InputError) as info:
        render_engine.prepared("cellprofiler", Config(), "local",
                               {**_screen_files(tmp_path, 4 * MAX_FAN_OUT_PODS + 1), "batch_size": 4})
    assert info.value.message == ("cellprofiler: 4,801 image sets in groups of 4 make 1,201 pods per step; "
                                  "one run may have at most 1,200")
    assert "use --batch-size 5 or more, or split the input" in info.value.hint and "1 MiB" in info.value.hint


def test_a_sheet_wider_than_the_cap_is_refused_at_render_saying_why_and_what_to_do(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("sample,r1,r2\n" + "".join(f"S{i},a{i}.fq,b{i}.fq\n" for i in range(1000)))
    for chunk_size in (None, 3):  # auto (200 chunks) and 334 chunks of 3: allowed
        render_engine.prepared("fastqc-to-bwa", Config(), "local", {"samples": str(path), "chunk_size": chunk_size})
    with pytest.raises(InputError) as info:
        render_engine.prepared("fastqc-to-bwa", Config(), "local", {"samples": str(path), "chunk_size": 2})
    assert info.value.message == ("fastqc-to-bwa: 1,000 samples in groups of 2 make 500 pods per step; "
                                  "one run may have at most 400 (3 fan-out steps)")
    assert "use --chunk-size 3 or more" in info.value.hint


def test_the_plan_steps_refuse_a_wider_run_in_the_cluster_too(tmp_path):
    """A Workflow submitted with other parameters (argo submit -p batch-size=1) or built by a path
    that did not count: the plan step refuses before any fan-out."""
    from bioinfra.engine.inputs import loaddata_module

    plan = loaddata_module()
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"x")
    data = tmp_path / "d.csv"
    data.write_text("FileName_DNA,Metadata_Plate\n" + "a.png,P1\n" * 5)
    with pytest.raises(plan.PlanError, match="5 image sets in batches of 1 make 5 batches; one run may have at most 4"):
        plan.run(str(data), str(images), str(tmp_path / "illum"), str(tmp_path / "out"), 1, max_batches=4)
    screen_wf = screen(Config(), "local", SCREEN)
    plan_step = next(t for t in screen_wf["spec"]["templates"] if t["name"] == "plan-attempt")
    assert f"--max-batches {MAX_FAN_OUT_PODS} " in plan_step["script"]["source"]
    # The sheet's plan (awk): 401 samples in chunks of 1 against a cap of 400.
    sheet_wf = samples(Config(), "local", SHEET)
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
    """A cluster run (remote images, a local data file) counts the data file's rows, so the fan-out
    cap is enforced with the render's message before anything is submitted, not first by the plan
    step in the cluster."""
    files = _screen_files(tmp_path, 4 * MAX_FAN_OUT_PODS + 1)
    given = {**files, "images": "s3://lab-hcs/plate1/", "batch_size": 4}
    with pytest.raises(InputError) as info:
        render_engine.prepared("cellprofiler", AWS, "aws", given, run_id="cellprofiler-t")
    assert info.value.message == ("cellprofiler: 4,801 image sets in groups of 4 make 1,201 pods per step; "
                                  "one run may have at most 1,200")
    _screen_files(tmp_path, 4 * MAX_FAN_OUT_PODS)
    render_engine.prepared("cellprofiler", AWS, "aws", given, run_id="cellprofiler-t")
