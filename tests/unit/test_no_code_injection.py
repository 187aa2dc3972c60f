"""No parameter value ever enters code (issue #15): every Workflow bioinfra can render, for every
pipeline and target, keeps Argo tags out of script `source`, container `command`/`args` and `when`.

Values reach a step only as environment variables (`env: - name: X, value: "{{...}}"`), read as
"$X" by the script: Argo and the local executor substitute tags in env values, and to the shell
they are data. A tag in `source` would paste the value into the code; a tag in `when` into an
expression Argo evaluates (govaluate/expr) after substitution, where a `'` ends the string.

ALLOW-LIST (tags that may appear in `when`; none may appear in source, command or args):
  - tasks.fastqc-r1.outputs.parameters.per-base-quality, tasks.fastqc-r2.outputs.parameters.per-base-quality
    (the QC gate, `--qc-gate`): Argo reads them from a file the fastqc step writes itself, and that
    step writes only one of PASS, WARN, FAIL or UNKNOWN, whatever FastQC printed (checked below);
    no user value reaches them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bioinfra.config import Config, parse_config
from bioinfra.engine.render import dump
from bioinfra.errors import InputError
from bioinfra.sampledata import DATA_DIR
from tests import render_engine

TAG_RE = re.compile(r"\{\{\s*(=?)([^{}]*?)\s*\}\}")
WHEN_ALLOWED = {
    "tasks.fastqc-r1.outputs.parameters.per-base-quality",
    "tasks.fastqc-r2.outputs.parameters.per-base-quality",
}
SOURCE_ALLOWED: set[str] = set()  # nothing: every value a script reads comes from its env

CONFIGS = {
    "local": Config(),
    "onprem": parse_config({"target": "onprem"}),
    "aws": parse_config({"target": "aws", "name": "lab-seq", "region": "eu-west-2"}),
    "gcp": parse_config({"target": "gcp", "name": "lab-seq", "project": "my-lab-project", "region": "europe-west2"}),
}
# Workflow parameters as the engine makes them (workspace-relative paths, checked names).
FASTQ = {"sample": "S1", "r1": "inputs/ae63f46049d7afc0/S1_R1.fastq.gz", "r2": "inputs/1917d8cac872af5f/S1_R2.fastq.gz",
         "reference": "references/08fe207fcb4bbe47/reference.fa.gz", "run-dir": "runs/preview"}
SCREEN = {"images-dir": "inputs/3f0c1a2b4d5e6f70/images", "data-file": "inputs/9a8b7c6d5e4f3a2b/data-file.csv",
          "illum-pipeline": "inputs/0011223344556677/illum.cppipe",
          "analysis-pipeline": "inputs/8899aabbccddeeff/analysis.cppipe", "run-dir": "runs/preview", "title": "plate 1"}
SHEET = {"sheet": "runs/preview/sheet.tsv", "reference": FASTQ["reference"], "run-dir": "runs/preview",
         "title": "cohort-7"}
VARIANT = {"sample": "S1", "r1": FASTQ["r1"], "r2": FASTQ["r2"], "reference": FASTQ["reference"],
           "truth": "inputs/5a5a5a5a5a5a5a5a/truth.tsv", "run-dir": "runs/preview"}
SCREEN_FILES = {"data_file": str(DATA_DIR / "cellprofiler" / "images" / "images.csv"),
                "illum": str(DATA_DIR / "cellprofiler" / "illum.cppipe"),
                "analysis": str(DATA_DIR / "cellprofiler" / "analysis.cppipe")}


def staged(name: str, config, target: str, given: dict, **kwargs) -> str:
    """A cluster run's Workflow through the engine: s3:// / gs:// inputs staged in, results out."""
    p = render_engine.prepared(name, config, target, given, run_id=f"{name}-t", **kwargs)
    return dump(p.workflow, p.spec, p.mode)


def variants() -> dict[str, str]:
    """Every Workflow the CLI can render: each pipeline on each target, single sample, --qc-gate,
    --samples, cellprofiler, variant-calling, with s3:// / gs:// inputs staged in and results staged out."""
    out = {}
    for target, config in CONFIGS.items():
        for gate in (False, True):
            out[f"fastqc-to-bwa.{target}{'.qc-gate' if gate else ''}"] = render_engine.text(
                "fastqc-to-bwa", config, target, FASTQ, values={"qc_gate": gate})
        out[f"samples.{target}"] = render_engine.text("fastqc-to-bwa", config, target, SHEET, mode="samples",
                                                      parallelism=4)
        out[f"cellprofiler.{target}"] = render_engine.text("cellprofiler", config, target, SCREEN,
                                                           values={"batch_size": 4})
        out[f"variant-calling.{target}"] = render_engine.text("variant-calling", config, target, VARIANT)
    for target, scheme in (("aws", "s3"), ("gcp", "gs")):
        config = CONFIGS[target]
        reads = {"r1": f"{scheme}://lab-data/S1_R1.fastq.gz", "r2": f"{scheme}://lab-data/S1_R2.fastq.gz",
                 "reference": f"{scheme}://lab-data/ref.fa.gz"}
        for gate in (False, True):
            out[f"fastqc-to-bwa.{target}.staged{'.qc-gate' if gate else ''}"] = staged(
                "fastqc-to-bwa", config, target, {**reads, "sample": "S1", "qc_gate": gate})
        out[f"cellprofiler.{target}.staged"] = staged(
            "cellprofiler", config, target, {"images": f"{scheme}://lab-hcs/plate1/", **SCREEN_FILES, "batch_size": 50,
                                             "title": "plate 1"}, max_parallel=8)
        out[f"variant-calling.{target}.staged"] = staged(
            "variant-calling", config, target, {**reads, "truth": f"{scheme}://lab-data/truth.tsv", "sample": "S1"})
        out[f"samples.{target}.staged"] = render_engine.text(
            "fastqc-to-bwa", config, target, {**SHEET, "stage-out": render_engine.STAGE_OUT[target].format(
                run_id="fastqc-to-bwa-t")}, mode="samples", values={"chunk_size": 25}, items=25)
    return out


VARIANTS = variants()


def tags(text: str) -> list[str]:
    return [m.group(2) for m in TAG_RE.finditer(text)]


def code_fields(workflow: dict[str, Any]):
    """(where, text) of everything that is code: script source, command, args; and every `when`."""
    for t in workflow["spec"]["templates"]:
        body = t.get("script") or t.get("container")
        if body:
            if "source" in body:
                yield f"{t['name']} source", "source", body["source"]
            for i, part in enumerate(body.get("command") or []):
                yield f"{t['name']} command[{i}]", "command", part
            for i, part in enumerate(body.get("args") or []):
                yield f"{t['name']} args[{i}]", "args", part
        for task in (t.get("dag") or {}).get("tasks") or []:
            if "when" in task:
                yield f"{t['name']} task {task['name']} when", "when", task["when"]
        for group in t.get("steps") or []:
            for step in group:
                if "when" in step:
                    yield f"{t['name']} step {step['name']} when", "when", step["when"]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_no_tag_in_source_command_args_or_when(name):
    workflow = yaml.safe_load(VARIANTS[name])
    found = []
    for where, kind, text in code_fields(workflow):
        allowed = WHEN_ALLOWED if kind == "when" else SOURCE_ALLOWED
        rest = TAG_RE.sub(lambda m, allowed=allowed: "" if m.group(2) in allowed and not m.group(1) else m.group(0), text)
        if "{{" in rest:  # Argo's tags open with {{ ("}}" alone, as in bash's ${a:+${b}}, is nothing to it)
            found.append(f"{where}: {[t for t in tags(text) if t not in allowed] or 'a {{'}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_tag_is_one_argo_knows_and_no_value_holds_one(name):
    """Tags appear only where Argo substitutes data (env values, arguments, paths, withParam) and
    name declared things; the values themselves hold no tags (Argo substitutes a template twice)."""
    workflow = yaml.safe_load(VARIANTS[name])
    params = {p["name"]: p.get("value", "") for p in workflow["spec"]["arguments"]["parameters"]}
    for value in params.values():
        assert "{{" not in value and "}}" not in value
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", value)
    known = re.compile(r"workflow\.parameters\.(?P<wp>[\w-]+)|inputs\.parameters\.[\w-]+|item\.\w+"
                       r"|tasks\.[\w-]+\.outputs\.parameters\.[\w-]+|steps\.run\.outputs\.parameters\.[\w-]+")
    for tag in tags(VARIANTS[name]):
        m = known.fullmatch(tag)
        assert m, tag
        assert m.group("wp") is None or m.group("wp") in params, tag


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_paths_argo_reads_take_only_checked_values(name):
    """valueFrom.path and the outputs annotation are paths, not code; the values in them are ones
    the engine makes (workspace-relative paths) or checks (sample names), or numbers from a plan step."""
    workflow = yaml.safe_load(VARIANTS[name])
    path_values = {"workflow.parameters.run-dir", "workflow.parameters.sample", "workflow.parameters.reference",
                   "inputs.parameters.stem", "inputs.parameters.first", "inputs.parameters.last"}
    for t in workflow["spec"]["templates"]:
        texts = [((t.get("metadata") or {}).get("annotations") or {}).get("bioinfra.io/outputs", "")]
        texts += [(p.get("valueFrom") or {}).get("path", "") for p in (t.get("outputs") or {}).get("parameters", [])]
        for text in texts:
            assert set(tags(text)) <= path_values, (t["name"], text)


def test_every_script_reads_the_env_it_is_given():
    """Each env entry with a tag is used by its script as "$NAME" (a typo would leave it unread)."""
    for name, text in VARIANTS.items():
        for t in yaml.safe_load(text)["spec"]["templates"]:
            script = t.get("script")
            if not script:
                continue
            for entry in script.get("env", []):
                if "{{" in str(entry.get("value", "")):
                    assert f'"${entry["name"]}"' in script["source"], (name, t["name"], entry["name"])


def test_the_qc_gate_output_is_one_of_four_words():
    """Why the gate's tags are on the allow-list: the step writes a fixed word whatever it read."""
    workflow = yaml.safe_load(VARIANTS["fastqc-to-bwa.local.qc-gate"])
    fastqc = next(t for t in workflow["spec"]["templates"] if t["name"] == "fastqc-attempt")
    source = fastqc["script"]["source"]
    assert 'case "$verdict" in PASS | WARN | FAIL) ;; *) verdict=UNKNOWN ;; esac' in source
    assert source.index("verdict=UNKNOWN") < source.index('printf \'%s\' "$verdict" > "$run/.bioinfra/params/')
    [param] = [p for p in fastqc["outputs"]["parameters"] if p["name"] == "per-base-quality"]
    assert param["valueFrom"]["path"].endswith("fastqc-{{inputs.parameters.stem}}.per-base-quality")


def test_templates_hold_no_tag_in_code_even_unrendered():
    """The Jinja sources themselves, so a variant the list above misses cannot bring one back."""
    root = Path(__file__).resolve().parents[2] / "templates"
    for path in [*root.glob("workflows/*.j2"), *root.glob("pipelines/*/*.j2"), *root.glob("scaffold/*.j2")]:
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if "{{ '{{" not in stripped:
                continue
            ok = (stripped.startswith(("value:", "path:", "parameter:", "withParam:", "when: \"'{{ '{{tasks.fastqc-r"))
                  or re.match(r"^\{\{ '\{\{workflow\.parameters\.(run-dir|reference)\}\}' \}\}", stripped))
            assert ok, f"{path.name}: {stripped}"


BUNDLED = {"r1": str(DATA_DIR / "lambda_R1.fastq.gz"), "r2": str(DATA_DIR / "lambda_R2.fastq.gz"),
           "reference": str(DATA_DIR / "lambda_phage.fa.gz")}
REMOTE = {"r1": "s3://b/k.fq.gz", "r2": "s3://b/k2.fq.gz", "reference": "s3://b/r.fa.gz"}


@pytest.mark.parametrize("target, given, start", [
    ("local", {"sample": 'S1"; touch CANARY; echo "'}, "sample name"),
    ("local", {"sample": "S1{{inputs.parameters.reads}}"}, "sample name"),
    ("local", {"run_id": "../../etc"}, "--run-id"), ("local", {"run_id": "x$(id)"}, "--run-id"),
    ("local", {**BUNDLED, "reference": "/etc/passwd"}, "reference"),
    ("local", {**BUNDLED, "r1": "inputs/x/a\nb.fq", "sample": "S1"}, "R1 file"),
    ("aws", {**REMOTE, "r1": "s3://b/k$(id)"}, "--r1"), ("aws", {**REMOTE, "r2": "s3://b/../k"}, "--r2"),
])
def test_render_refuses_values_that_are_not_plain(target, given, start):
    """The line of defence at the one place every Workflow is made (engine.prepare, which `render`
    and `run` call): exit 4, naming the value, before anything is rendered."""
    from bioinfra.cli.render_cmd import render_text

    given = dict(given)
    run_id = given.pop("run_id", "preview")
    config = {"local": None, "aws": "aws"}[target]
    with pytest.raises(InputError) as err:
        render_text({}, render_engine.spec("fastqc-to-bwa"), given, target=config, run_id=run_id)
    assert err.value.message.startswith(start), err.value.message


def test_a_results_bucket_that_is_not_plain_is_refused_with_the_config():
    """The stage-out destination is made from the config's results bucket, refused when it is read."""
    from bioinfra.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config({"target": "aws", "name": "lab-seq", "region": "eu-west-2", "buckets": {"results": "b/'x"}})
    assert any(p.startswith("buckets.results") for p in err.value.problems), err.value.problems


@pytest.mark.parametrize("title", ['x"; touch CANARY; "', "a`id`", "a\nb", "{{workflow.name}}", "$(id)"])
def test_render_refuses_titles_with_anything_but_plain_text(title, tmp_path):
    from bioinfra.cli.render_cmd import render_text

    sheet = tmp_path / "s.csv"
    sheet.write_text(f"sample,r1,r2\nS1,{BUNDLED['r1']},{BUNDLED['r2']}\n")
    with pytest.raises(InputError, match="--title"):
        render_text({}, render_engine.spec("cellprofiler"), {"title": title}, target=None)
    with pytest.raises(InputError, match="--title"):
        render_text({}, render_engine.spec("fastqc-to-bwa"), {"samples": str(sheet), "title": title}, target=None)
