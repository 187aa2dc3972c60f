"""The engine's pipeline side (#17): pipeline.yaml validation, input values, rendering with values
set only on the parsed Workflow, summaries from a step's file, the fan-out width check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bioinfra.config import Config
from bioinfra.engine.engine import fan_out, format_line
from bioinfra.engine.inputs import CheckedInput, check_scalar, resolve_values, sample_name_from
from bioinfra.engine.render import render_pipeline
from bioinfra.engine.spec import discover, find_pipeline, load_spec
from bioinfra.errors import InputError
from bioinfra.sampledata import bundled

ONE_STEP = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: tiny-
spec:
  entrypoint: main
  arguments:
    parameters:
      - name: note
        value: ""
      - name: run-dir
        value: ""
      - name: stage-in
        value: ""
      - name: stage-out
        value: ""
  templates:
    - name: main
      script:
        image: {{ images.fastqc | yaml_str }}
        command: [bash]
        env:
          - name: NOTE
            value: "{{ '{{workflow.parameters.note}}' }}"
        source: |
          echo "$NOTE"
"""


def write_pipeline(folder: Path, spec: dict, template: str = ONE_STEP) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(spec))
    (folder / "workflow.yaml.j2").write_text(template)
    return folder


def tiny(**extra) -> dict:
    return {"name": "tiny", "version": "1.0", "description": "one step", "workflow": "workflow.yaml.j2",
            "inputs": [{"name": "note", "type": "string", "default": "hello", "help": "a note"}], **extra}


def test_the_built_ins_are_folders():
    found = discover()
    assert {"fastqc-to-bwa", "cellprofiler", "variant-calling"} <= set(found)
    assert all(spec.builtin for spec in found.values())
    assert [m.name for m in found["fastqc-to-bwa"].modes] == ["single", "samples"]


@pytest.mark.parametrize("change, problem", [
    ({"name": "Bad_Name"}, "name"),
    ({"version": "one"}, "version"),
    ({"inputs": [{"name": "x", "type": "fastq", "help": "h", "default": "/etc/passwd"}]}, "bundled sample data"),
    ({"inputs": [{"name": "x", "type": "string", "help": "h", "pattern": ".*"}]}, "pattern"),
    ({"inputs": [{"name": "x", "type": "string", "help": "h", "flag": "--output"}]}, "own options"),
    ({"inputs": [{"name": "x", "type": "blob", "help": "h"}]}, "type"),
    ({"surprise": 1}, "surprise"),
    ({"deadlines": {"main": "forever"}}, "deadlines"),
])
def test_a_bad_pipeline_yaml_names_the_field(tmp_path, change, problem):
    folder = write_pipeline(tmp_path / "p", tiny(**change))
    with pytest.raises(InputError) as err:
        load_spec(folder)
    assert problem in err.value.message and "pipeline.yaml" in err.value.message


def test_a_folder_without_pipeline_yaml_says_how_to_make_one(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no pipeline.yaml") as err:
        find_pipeline(str(tmp_path / "empty"))
    assert "pipelines new" in err.value.hint


def test_bundled_inputs_go_together():
    spec = discover()["fastqc-to-bwa"]
    mode = spec.mode_for(set())
    values = resolve_values(spec, mode, {})
    data = bundled()
    assert (values["r1"], values["r2"], values["reference"], values["sample"]) == (data.r1, data.r2, data.reference,
                                                                                    "lambda")
    with pytest.raises(InputError, match="missing --r2, --reference: give --r1, --r2, --reference together"):
        resolve_values(spec, mode, {"r1": "a_R1.fastq.gz"})
    assert resolve_values(spec, mode, {"r1": "x/S7_R1_001.fq.gz", "r2": "b", "reference": "c"})["sample"] == "S7"


def test_a_sheet_selects_the_samples_mode_and_refuses_single_sample_options():
    spec = discover()["fastqc-to-bwa"]
    mode = spec.mode_for({"samples"})
    assert mode.name == "samples" and mode.workflow == "samples.yaml.j2"
    with pytest.raises(InputError, match="--r1: not with this run's inputs"):
        resolve_values(spec, mode, {"samples": "s.csv", "r1": "a.fq"})
    values = resolve_values(spec, mode, {"samples": "plate 7/cohort.csv"})
    assert values["title"] == "cohort" and values["reference"] == bundled().reference


@pytest.mark.parametrize("hostile", ["a'b", 'a"b', "$(id)", "`id`", "a\nb", "{{workflow.name}}", "a;b", "a b", ""])
def test_string_inputs_refuse_what_is_not_a_plain_name(hostile):
    spec = discover()["fastqc-to-bwa"]
    with pytest.raises(InputError, match="is not allowed"):
        check_scalar(spec.input("sample"), hostile)


def test_int_and_bool_inputs_are_checked():
    spec = discover()["fastqc-to-bwa"]
    assert check_scalar(spec.input("chunk_size"), "7").value == 7
    with pytest.raises(InputError, match="at least 1"):
        check_scalar(spec.input("chunk_size"), 0)
    with pytest.raises(InputError, match="not a whole number"):
        check_scalar(spec.input("chunk_size"), "7; rm -rf /")
    assert check_scalar(spec.input("qc_gate"), "true").parameter == "true"


def test_values_reach_the_workflow_only_as_parameter_values(tmp_path):
    """The template's text never sees a value: the rendered Workflow holds it exactly once, as the
    value of its spec.arguments.parameters entry (render.fill), whatever it contains."""
    folder = write_pipeline(tmp_path / "p", tiny(inputs=[
        {"name": "note", "type": "string", "default": "x", "help": "h", "pattern": r"[^'\"$`\\{};\n]{1,200}"}]))
    spec = load_spec(folder)
    hostile = "a & b | c > d < e ( f ) # g ~ h ! i * j ? k [ l ] m"
    wf = render_pipeline(spec, spec.mode_for(set()), Config(), "local", values={"note": hostile},
                         parameters={"note": hostile, "run-dir": "runs/r", "stage-in": "", "stage-out": ""},
                         labels={})
    params = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    assert params["note"] == hostile
    assert json.dumps(wf).count("a & b") == 1
    assert wf["metadata"]["labels"]["bioinfra.io/pipeline"] == "tiny"


def test_a_parameter_the_template_does_not_declare_is_the_pipelines_mistake(tmp_path):
    folder = write_pipeline(tmp_path / "p", tiny(inputs=[{"name": "other", "type": "string", "help": "h"}]))
    spec = load_spec(folder)
    with pytest.raises(InputError, match="declares no parameter other"):
        render_pipeline(spec, spec.mode_for(set()), Config(), "local", values={},
                        parameters={"other": "x", "run-dir": "runs/r", "stage-in": "", "stage-out": ""}, labels={})


def test_summary_lines_take_plain_keys_only():
    data = {"recall": "12/12", "nuclei": 168, "obj": {"a": 1}}
    assert format_line("recall {recall}, {nuclei} nuclei", data) == "recall 12/12, 168 nuclei"
    assert format_line("{missing} left", data) is None  # a line whose key is absent is left out
    assert format_line("{obj.__class__}", data) == "{obj.__class__}"  # no attribute access: kept as text


def test_a_run_wider_than_argo_can_hold_is_refused_naming_the_option():
    spec = discover()["cellprofiler"]
    mode = spec.mode_for(set())
    holder = CheckedInput(spec.input("data_file"), None, items=5000)
    with pytest.raises(InputError, match="5,000 image sets in groups of 4 make 1,250 pods") as err:
        fan_out(spec, mode, {"data_file": holder}, {"batch_size": 4})
    assert "--batch-size 5 or more" in err.value.hint
    assert fan_out(spec, mode, {"data_file": holder}, {"batch_size": 5})["pods"] == 1000


def test_sample_names_from_fastq_names():
    assert sample_name_from("S1_R1_001.fastq.gz") == "S1" and sample_name_from("x.fq") == "x"
