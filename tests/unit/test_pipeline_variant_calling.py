"""The variant-calling pipeline folder (templates/pipelines/variant-calling): its pipeline.yaml, the
Workflow it renders on every target, the contracts the engine relies on, and compare_truth.py.
The real run is tests/integration/test_variant_calling.py."""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from pathlib import Path

import jsonschema
import pytest

from bioinfra.config import STEP_DEADLINE_DEFAULTS, Config, parse_config
from tests.conftest import REPO
from tests.pipeline_folder import builtin, workflow

PIPELINE = builtin("variant-calling")
ARGO_SCHEMA = json.loads((REPO / "tests" / "schemas" / "argo-workflow.schema.json").read_text())
CONFIGS = {
    "local": Config(),
    "onprem": parse_config({"target": "onprem", "name": "lab-seq"}),
    "aws": parse_config({"target": "aws", "name": "lab-seq", "region": "eu-west-2"}),
    "gcp": parse_config({"target": "gcp", "name": "lab-seq", "project": "my-lab-project", "region": "europe-west2"}),
}
CASES = {target: (target, False) for target in CONFIGS} | {"aws-staged": ("aws", True), "gcp-staged": ("gcp", True)}
PARAMETERS = {"r1", "r2", "reference", "truth", "sample", "run-dir", "stage-in", "stage-out", "align-threads"}
TAG_RE = re.compile(r"\{\{\s*(=?)([^{}]*?)\s*\}\}")
PLANTED = "chrom\tpos\tref\talt\nchr1\t10\tA\tG\nchr1\t20\tC\tT\nchr2\t5\tG\tA\n"


def rendered(case: str) -> dict:
    target, staged = CASES[case]
    # Through the engine: rendered, parameters left as declared, linted as Argo v3.7 admits it.
    return workflow(PIPELINE, CONFIGS[target], target, stage_in=staged, stage_out=staged)


def templates(doc: dict) -> dict[str, dict]:
    return {t["name"]: t for t in doc["spec"]["templates"]}


def test_the_spec_is_valid_and_declares_what_the_brief_asks():
    assert PIPELINE.name == "variant-calling" and PIPELINE.builtin
    inputs = {i.name: i for i in PIPELINE.inputs}
    assert list(inputs) == ["r1", "r2", "reference", "truth", "sample"]
    assert {i.param for i in inputs.values()} | {"run-dir", "stage-in", "stage-out", "align-threads"} == PARAMETERS
    assert (inputs["r1"].mate, inputs["r2"].mate) == ("r2", "r1")
    assert inputs["truth"].type == "file" and inputs["truth"].default == "bundled:planted_snps"
    assert not inputs["truth"].required
    assert inputs["sample"].derive == "sample_name:r1" and inputs["sample"].label == "bioinfra.io/sample"
    assert PIPELINE.images == ["fastqc", "bwa-mem2"]
    assert {"bash", "bwa-mem2|bwa", "samtools", "bcftools", "multiqc", "python3"} == set(PIPELINE.tools)
    assert PIPELINE.outputs.report == "multiqc/multiqc_report.html"
    assert PIPELINE.outputs.summary_file == "variants/truth.json"


def test_every_step_has_a_configurable_deadline_and_resources():
    assert set(PIPELINE.steps) <= set(STEP_DEADLINE_DEFAULTS)
    assert set(PIPELINE.resources) == set(PIPELINE.steps)


def test_summary_lines_use_only_plain_keys_of_the_truth_json():
    keys = {"truth", "called", "tp", "fp", "fn", "recall", "precision"}
    for line in PIPELINE.outputs.summary:
        fields = re.findall(r"\{([^{}]*)\}", line)
        assert fields and set(fields) <= keys, line


@pytest.mark.parametrize("case", sorted(CASES))
def test_renders_for_every_target_and_passes_the_strict_argo_schema(case):
    doc = rendered(case)
    errors = sorted(jsonschema.Draft202012Validator(ARGO_SCHEMA).iter_errors(doc), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors)
    when = {t["name"]: t.get("when") for t in templates(doc)["main"]["dag"]["tasks"]}
    staged = CASES[case][1]
    assert when["stage-in"] == when["stage-out"] == ("true" if staged else "false")


@pytest.mark.parametrize("case", sorted(CASES))
def test_parameters_are_declared_empty_for_the_engine_to_set(case):
    params = {p["name"]: p["value"] for p in rendered(case)["spec"]["arguments"]["parameters"]}
    assert set(params) == PARAMETERS
    assert params.pop("align-threads") == str(CONFIGS[CASES[case][0]].pipeline.align_threads)
    assert set(params.values()) == {""}


def test_every_step_is_an_attempt_with_its_deadline_and_outputs():
    by_name = templates(rendered("local"))
    attempts = {name[: -len("-attempt")] for name in by_name if name.endswith("-attempt")}
    assert attempts == set(PIPELINE.steps)
    for step in PIPELINE.steps:
        attempt = by_name[f"{step}-attempt"]
        assert attempt["activeDeadlineSeconds"] == Config().run.step_deadline(step), step
        if step not in ("stage-in", "stage-out"):
            listed = attempt["metadata"]["annotations"]["bioinfra.io/outputs"].splitlines()
            assert listed and all(p.startswith(("{{workflow.parameters.run-dir}}/", "{{workflow.parameters.reference}}"))
                                  for p in listed), step
        if step not in ("stage-in", "stage-out", "index-reference"):
            outputs = {p["name"] for p in attempt["outputs"]["parameters"]}
            assert "tool-version" in outputs, step
    assert {p["name"] for p in by_name["align-attempt"]["outputs"]["parameters"]} == {"aligner", "tool-version"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_value_enters_code(case):
    """As tests/unit/test_no_code_injection.py holds for the other pipelines: tags only in env values
    (read as "$NAME"), arguments and paths; none in source, command, args or when."""
    for t in rendered(case)["spec"]["templates"]:
        body = t.get("script") or t.get("container") or {}
        for text in [body.get("source", ""), *(body.get("command") or []), *(body.get("args") or [])]:
            assert "{{" not in text, t["name"]
        for task in (t.get("dag") or {}).get("tasks", []):
            assert "{{" not in task.get("when", ""), task["name"]
        for entry in body.get("env", []):
            if "{{" in str(entry.get("value", "")):
                assert f'"${entry["name"]}"' in body["source"], (t["name"], entry["name"])
        paths = [((t.get("metadata") or {}).get("annotations") or {}).get("bioinfra.io/outputs", "")]
        paths += [(p.get("valueFrom") or {}).get("path", "") for p in (t.get("outputs") or {}).get("parameters", [])]
        for text in paths:
            assert {m.group(2) for m in TAG_RE.finditer(text)} <= {
                "workflow.parameters.run-dir", "workflow.parameters.sample", "workflow.parameters.reference"}


def test_scripts_can_be_pasted_into_a_step():
    for name in PIPELINE.scripts:
        text = (PIPELINE.folder / name).read_text()
        # Argo substitutes every {{...}} in a script's source; the heredoc ends at BIOINFRA_PY.
        assert "{{" not in text and "BIOINFRA_PY" not in text, name


def test_the_repository_provides_bcftools():
    """The aligner image, its smoke test and `make setup` provide what pipeline.yaml needs."""
    dockerfile = (REPO / "images" / "bwa-mem2" / "Dockerfile").read_text()
    assert re.search(r'"bcftools=\$\{BCFTOOLS_VERSION\}"', dockerfile) and "ARG BASE_IMAGE" in dockerfile
    assert "bcftools --version" in (REPO / "images" / "bwa-mem2" / "smoke-test.sh").read_text()
    assert re.search(r"for tool in [^;]*\bbcftools\b", (REPO / "scripts" / "setup.sh").read_text())


# -- compare_truth.py ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compare_truth():
    spec = importlib.util.spec_from_file_location("compare_truth", PIPELINE.folder / "compare_truth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vcf(path: Path, records: list[str], *, gz: bool = True) -> Path:
    text = ("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=100>\n##contig=<ID=chr2,length=100>\n"
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
            + "".join(f"{r}\t.\tGT\t1/1\n" for r in records))
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def run(compare_truth, tmp_path: Path, calls: Path, truth: str) -> dict:
    out = tmp_path / "truth.json"
    assert compare_truth.main(["--vcf", str(calls), "--truth", truth, "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_compare_truth_counts_hits_misses_and_false_calls(compare_truth, tmp_path):
    (tmp_path / "truth.tsv").write_text(PLANTED)
    calls = vcf(tmp_path / "calls.vcf.gz", [
        "chr1\t10\t.\tA\tG\t200\t.",         # planted: a hit
        "chr1\t20\t.\tC\tG,T\t200\tPASS",    # multiallelic: T is planted, G is not
        "chr1\t30\t.\tA\tAT\t50\t.",         # an indel nobody planted
        "chr1\t40\t.\tT\tC\t3\tLowQual",     # filtered: not a call
    ])
    scored = run(compare_truth, tmp_path, calls, str(tmp_path / "truth.tsv"))
    assert scored == {"truth": 3, "called": 4, "tp": 2, "fp": 2, "fn": 1, "recall": 0.6667, "precision": 0.5,
                      "missed": ["chr2:5 G>A"], "false_positives": ["chr1:20 C>G", "chr1:30 A>AT"]}


def test_compare_truth_reads_a_plain_vcf_and_a_headerless_truth(compare_truth, tmp_path):
    (tmp_path / "truth.tsv").write_text("# planted\nchr1 10 a g\n")
    calls = vcf(tmp_path / "calls.vcf", ["chr1\t10\t.\tA\tG\t200\t."], gz=False)
    scored = run(compare_truth, tmp_path, calls, str(tmp_path / "truth.tsv"))
    assert (scored["recall"], scored["precision"], scored["tp"]) == (1.0, 1.0, 1)


def test_compare_truth_without_a_truth_set_writes_truth_0_only(compare_truth, tmp_path):
    calls = vcf(tmp_path / "calls.vcf.gz", ["chr1\t10\t.\tA\tG\t200\t."])
    assert run(compare_truth, tmp_path, calls, "") == {"truth": 0}
    (tmp_path / "empty.tsv").write_text("chrom\tpos\tref\talt\n")
    assert run(compare_truth, tmp_path, calls, str(tmp_path / "empty.tsv")) == {"truth": 0}


def test_compare_truth_with_no_calls_has_precision_0(compare_truth, tmp_path):
    (tmp_path / "truth.tsv").write_text(PLANTED)
    scored = run(compare_truth, tmp_path, vcf(tmp_path / "calls.vcf.gz", []), str(tmp_path / "truth.tsv"))
    assert (scored["recall"], scored["precision"], scored["fn"]) == (0.0, 0.0, 3)


@pytest.mark.parametrize("line, why", [
    ("chr1\t10\tA\n", "expected 4 columns"),
    ("chr1\tten\tA\tG\n", "not a 1-based position"),
    ("chr1\t10\tA\tA\n", "is not a variant"),
    ("chr1\t10\tA\t<DEL>\n", "is not a variant"),
])
def test_compare_truth_refuses_a_malformed_truth_naming_the_line(compare_truth, tmp_path, capsys, line, why):
    (tmp_path / "truth.tsv").write_text("chrom\tpos\tref\talt\n" + line)
    calls = vcf(tmp_path / "calls.vcf.gz", [])
    out = tmp_path / "truth.json"
    assert compare_truth.main(["--vcf", str(calls), "--truth", str(tmp_path / "truth.tsv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and why in err
    assert not out.exists()


def test_compare_truth_warns_when_the_truth_is_for_another_reference(compare_truth, tmp_path, capsys):
    (tmp_path / "truth.tsv").write_text("chrom\tpos\tref\talt\nNC_001416.1\t10\tA\tG\n")
    run(compare_truth, tmp_path, vcf(tmp_path / "calls.vcf.gz", []), str(tmp_path / "truth.tsv"))
    assert "chromosomes the reference does not have: NC_001416.1" in capsys.readouterr().err
