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
from bioinfra.core.cluster_run import RemoteInput, StagedInput, build_workflow, results_location
from bioinfra.core.cluster_screening import build_screen_workflow
from bioinfra.errors import InputError
from bioinfra.pipelines import (
    CellProfilerParams,
    FastqcToBwaParams,
    SamplesParams,
    render_cellprofiler,
    render_fastqc_to_bwa,
    render_samples,
)

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
FASTQ = FastqcToBwaParams(sample="S1", r1="inputs/ae63f46049d7afc0/S1_R1.fastq.gz",
                          r2="inputs/1917d8cac872af5f/S1_R2.fastq.gz",
                          reference="references/08fe207fcb4bbe47/reference.fa.gz", run_dir="runs/preview")
SCREEN = CellProfilerParams(images_dir="inputs/3f0c1a2b4d5e6f70/images",
                            data_file="inputs/9a8b7c6d5e4f3a2b/data-file.csv",
                            illum_pipeline="inputs/0011223344556677/illum.cppipe",
                            analysis_pipeline="inputs/8899aabbccddeeff/analysis.cppipe", run_dir="runs/preview",
                            title="plate 1")
SHEET = SamplesParams(sheet="runs/preview/sheet.tsv", reference=FASTQ.reference, run_dir="runs/preview",
                      title="cohort-7")


def _remote(url: str) -> RemoteInput:
    scheme, rest = url.split("://", 1)
    bucket, key = rest.split("/", 1)
    return RemoteInput(url, bucket, key)


def _staged_fastq(scheme: str) -> list[StagedInput]:
    return [StagedInput(role, f"{scheme}://lab-data/{name}", f"{folder}/remote-0123456789abcdef/{name}",
                        remote=_remote(f"{scheme}://lab-data/{name}"))
            for role, folder, name in (("r1", "inputs", "S1_R1.fastq.gz"), ("r2", "inputs", "S1_R2.fastq.gz"),
                                       ("reference", "references", "ref.fa.gz"))]


def variants() -> dict[str, str]:
    """Every Workflow the CLI can render: each pipeline on each target, single sample, --qc-gate,
    --samples, cellprofiler, with s3:// / gs:// inputs staged in and results staged out."""
    out = {}
    for target, config in CONFIGS.items():
        for gate in (False, True):
            params = FastqcToBwaParams(**{**FASTQ.__dict__, "qc_gate": gate})
            out[f"fastqc-to-bwa.{target}{'.qc-gate' if gate else ''}"] = render_fastqc_to_bwa(config, target, params)
        out[f"samples.{target}"] = render_samples(config, target, SamplesParams(**{**SHEET.__dict__, "parallelism": 4}))
        out[f"cellprofiler.{target}"] = render_cellprofiler(config, target, SCREEN)
    for target, scheme in (("aws", "s3"), ("gcp", "gs")):
        config = CONFIGS[target]
        stage_out = results_location(config, "fastqc-to-bwa-t")[0]
        for gate in (False, True):
            wf = build_workflow(config, "fastqc-to-bwa-t", "S1", _staged_fastq(scheme), qc_gate=gate,
                                stage_out=stage_out)
            out[f"fastqc-to-bwa.{target}.staged{'.qc-gate' if gate else ''}"] = yaml.safe_dump(wf)
        images = _remote(f"{scheme}://lab-hcs/plate1/")
        staged = [StagedInput("images", images.url, "inputs/remote-5c1e0b9d7a3f2e11/images", remote=images)]
        paths = {"images": "inputs/remote-5c1e0b9d7a3f2e11/images", "data_file": SCREEN.data_file,
                 "illum_pipeline": SCREEN.illum_pipeline, "analysis_pipeline": SCREEN.analysis_pipeline}
        wf = build_screen_workflow(config, "cellprofiler-t", paths, staged, batch_size=50, title="plate 1",
                                   max_parallel=8, stage_out=stage_out)
        out[f"cellprofiler.{target}.staged"] = yaml.safe_dump(wf)
        out[f"samples.{target}.staged"] = render_samples(config, target, SamplesParams(**{
            **SHEET.__dict__, "chunk_size": 25, "stage_out": stage_out}))
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
    check_params holds to plain workspace-relative paths and names, or numbers from a plan step."""
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
    root = Path(__file__).resolve().parents[2] / "templates" / "workflows"
    for path in root.glob("*.j2"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if "{{ '{{" not in stripped:
                continue
            ok = (stripped.startswith(("value:", "path:", "parameter:", "withParam:", "when: \"'{{ '{{tasks.fastqc-r"))
                  or re.match(r"^\{\{ '\{\{workflow\.parameters\.(run-dir|reference)\}\}' \}\}", stripped))
            assert ok, f"{path.name}: {stripped}"


@pytest.mark.parametrize("field, value", [
    ("sample", 'S1"; touch CANARY; echo "'), ("sample", "S1{{inputs.parameters.reads}}"),
    ("run_dir", "runs/../../etc"), ("run_dir", "runs/x$(id)"), ("reference", "/etc/passwd"),
    ("r1", "inputs/x/a\nb.fq"), ("stage_in", ":s3,provider=AWS,env_auth=true:b/k$(id)\tinputs/x/k"),
    ("stage_in", ":s3,provider=AWS,env_auth=true:b/k\t../k"), ("stage_out", ":s3:b/'x"),
])
def test_render_refuses_values_that_are_not_plain(field, value):
    """The last line of defence, at the one place every Workflow is made: exit 4, naming the value."""
    params = FastqcToBwaParams(**{**FASTQ.__dict__, field: value})
    with pytest.raises(InputError) as err:
        render_fastqc_to_bwa(Config(), "local", params)
    assert err.value.message.startswith("sample name" if field == "sample" else field.replace("_", "-"))


@pytest.mark.parametrize("title", ['x"; touch CANARY; "', "a`id`", "a\nb", "{{workflow.name}}", "$(id)"])
def test_render_refuses_titles_with_anything_but_plain_text(title):
    with pytest.raises(InputError, match="--title"):
        render_cellprofiler(Config(), "local", CellProfilerParams(**{**SCREEN.__dict__, "title": title}))
    with pytest.raises(InputError, match="--title"):
        render_samples(Config(), "local", SamplesParams(**{**SHEET.__dict__, "title": title}))
