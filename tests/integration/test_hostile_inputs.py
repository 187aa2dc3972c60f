"""A canary command in every input of every pipeline never runs (issue #15).

Every name a user gives (FASTQ, reference, sheet and its fields, data file, pipelines, images
folder, sample, title, s3:// and gs:// object URLs) and every Workflow parameter (as `argo submit -p`
would set it) is built from shell metacharacters around a command that makes a file named CANARY:
`$(touch CANARY)`, backticks, quotes, `;`, `|`, `&&`, `>CANARY`, a newline, an Argo tag. Each such
input is either refused (exit 4, naming the input) or carried as data; CANARY never appears.

  (a) locally, for real, through the CLI: files whose names hold the canary; the real FastQC, bwa,
      samtools, MultiQC (and CellProfiler where `make cellprofiler` installed it);
  (b) for the clusters: the Workflow `bioinfra render --target aws|gcp|onprem` prints, or the one the
      engine prepares for a cluster run with s3:// / gs:// inputs, has each of its
      step scripts run here with bash in a scratch workspace, env values substituted as Argo does
      (`argo_env`: workflow parameters, then the step's inputs).

STAND-INS (named): no cluster runs here, so
  - the tools in the pods (fastqc, bwa, samtools, multiqc, rclone, cellprofiler, python3, bcftools) are
    one fake (FAKE_TOOL) on PATH that makes the files the script reads next and exits 0;
  - the object stores are the backend's `check_remote` (tests/render_engine.py StagingBackend),
    which says every object exists.
Hypothesis draws the names (bounded examples, no deadline) from PAYLOADS and metacharacter noise.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from bioinfra.errors import BioinfraError, ExitCode
from bioinfra.sampledata import DATA_DIR, bundled

pytestmark = pytest.mark.integration

CANARY = "CANARY"
PAYLOADS = [
    "$(touch CANARY)", "`touch CANARY`", '"$(touch CANARY)"', "'$(touch CANARY)'", '";touch CANARY;"',
    "';touch CANARY;'", "; touch CANARY;", "\ntouch CANARY\n", "|touch CANARY|", "&& touch CANARY &&",
    ">CANARY", ";>CANARY;", "$(touch${IFS}CANARY)", "{{workflow.name}}", "x' ; touch CANARY ; echo '",
    "{{inputs.parameters.reads}}", "$((a[$(touch CANARY)]))",
]
NOISE = st.text(alphabet="\"'`$;|&()<> \n\t{}*?!#~\\_.-aZ9", max_size=3)
# What a file name may hold (not '/', not NUL); a payload in the middle of noise.
NAMES = st.builds(lambda a, p, b: a + p + b, NOISE, st.sampled_from(PAYLOADS), NOISE)
# S3/GCS keys bioinfra accepts (no quotes, $, backticks, spaces, braces): what still reaches a pod.
KEY_PAYLOADS = [">CANARY", ";>CANARY;", "|tee>CANARY|", "&>CANARY&", "(>CANARY)", "a;touch;CANARY"]
KEY_NAMES = st.builds(lambda a, p: a + p, st.text(alphabet=";|&()<>*?!#~_.-aZ9", max_size=3),
                      st.sampled_from(KEY_PAYLOADS))
# A sheet's cells are read stripped of surrounding whitespace, so names that keep it cannot be
# written into one; read-group values may hold anything but tabs, newlines, quotes and backslashes.
SHEET_NAMES = NAMES.filter(lambda s: s == s.strip())
RG_VALUES = NAMES.filter(lambda s: s == s.strip() and not re.search(r"[\t\n\r'\"\\]", s))
WORST = "x\"'`touch CANARY`$(touch CANARY);touch CANARY;|touch CANARY|>CANARY\ntouch CANARY\n{{workflow.name}}"
PLAIN = "a$(touch CANARY)b"  # pasted into a script, this runs; WORST is mostly a syntax error there
# How many drawn names each test tries besides its explicit examples (PLAIN, WORST: every metacharacter
# class at once). Sized for CI's 30 minutes: a whole local pipeline run costs 5-15 s, a CLI process or a
# render of three targets with their scripts run about 1 s; each CI run draws new names.
ONLY_EXPLICIT = settings(phases=[Phase.explicit], deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW = settings(max_examples=1, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SOME = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MANY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def canaries(*roots: Path) -> list[Path]:
    found = [p for root in roots if root.exists() for p in root.rglob(CANARY)]
    return found + [Path.cwd() / CANARY] * (Path.cwd() / CANARY).exists()


def fresh(root: Path) -> Path:
    path = root / uuid.uuid4().hex[:8]
    path.mkdir(parents=True)
    return path


# -- (a) locally, for real, through the CLI -------------------------------------------------------


def refused(proc, flag: str) -> bool:
    return proc.returncode == int(ExitCode.INPUT_INVALID) and flag in proc.stderr


def refused_in_process(monkeypatch, here: Path, flag: str, *args: str) -> bool:
    """`bioinfra ARGS` in this process (the same command code, without a process start: a refusal is
    an InputError raised before anything is made, which bioinfra's main() turns into exit 4 and its
    message on stderr); True if it was refused naming `flag`."""
    from typer.testing import CliRunner

    from bioinfra.cli import app

    for name in [k for k in os.environ if k.startswith("BIOINFRA_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(here)
    result = CliRunner().invoke(app, list(args))
    exc = result.exception
    assert isinstance(exc, BioinfraError), (result.exit_code, result.output, exc)
    return int(exc.exit_code) == int(ExitCode.INPUT_INVALID) and flag in exc.message


@MANY
@given(sample=NAMES)
def test_local_run_refuses_a_hostile_sample_name(cache, monkeypatch, sample):
    here = fresh(cache)
    out = here / "out"
    assert refused_in_process(monkeypatch, here, "sample name", "run", "fastqc-to-bwa", "--sample", sample, "-o", str(out))
    assert not canaries(cache) and not out.exists()


@FEW
@example(names=(PLAIN + "_R1", PLAIN + "_R2", PLAIN + "ref"))
@example(names=(WORST + "_R1", WORST + "_R2", WORST + "ref"))
@given(names=st.tuples(NAMES, NAMES, NAMES).filter(lambda t: len({t[0], t[1]}) == 2))
def test_local_fastqc_to_bwa_carries_hostile_file_names_as_data(cli, tmp_path, names):
    data = bundled()
    here = fresh(tmp_path)
    r1, r2, ref = here / f"{names[0]}.fastq.gz", here / f"{names[1]}.fastq.gz", here / f"{names[2]}.fa.gz"
    for src, dst in ((data.r1, r1), (data.r2, r2), (data.reference, ref)):
        shutil.copy(src, dst)
    out = here / "out"
    # Without --sample the name comes from R1's file name: refused, naming it.
    proc = cli("run", "fastqc-to-bwa", "--r1", str(r1), "--r2", str(r2), "--reference", str(ref), "-o", str(out))
    assert refused(proc, "sample name"), proc.stderr
    proc = cli("run", "fastqc-to-bwa", "--r1", str(r1), "--r2", str(r2), "--reference", str(ref), "--sample", "S1",
               "-o", str(out), "-q", timeout=300)
    assert not canaries(tmp_path), canaries(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "align" / "S1.sorted.bam").stat().st_size > 0


@FEW
@example(names=(PLAIN, PLAIN + "1", PLAIN + "2"), rg=PLAIN)
@example(names=(WORST, WORST + "1", WORST + "2"), rg="$(touch CANARY)`touch CANARY`;touch CANARY;|>CANARY")
@given(names=st.tuples(SHEET_NAMES, SHEET_NAMES, SHEET_NAMES).filter(lambda t: len(set(t)) == 3), rg=RG_VALUES)
def test_local_sample_sheet_carries_hostile_names_and_read_groups_as_data(cli, tmp_path, names, rg):
    data = bundled()
    here = fresh(tmp_path)
    r1, r2 = here / f"{names[1]}_R1.fastq.gz", here / f"{names[2]}_R2.fastq.gz"
    shutil.copy(data.r1, r1)
    shutil.copy(data.r2, r2)
    sheet = here / f"{names[0]}.csv"
    with open(sheet, "w", newline="") as fh:  # the csv module quotes what needs quoting
        csv.writer(fh).writerows([["sample", "r1", "r2", "rg_id", "rg_sm", "rg_lb", "rg_pl", "rg_pu"],
                                  ["S1", r1.name, r2.name, rg, rg, rg, rg, rg]])
    out = here / "out"
    proc = cli("run", "fastqc-to-bwa", "--samples", str(sheet), "-o", str(out), "-q", timeout=300)
    assert not canaries(tmp_path), canaries(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "samples" / "S1" / "align" / "S1.sorted.bam").stat().st_size > 0
    # The read group went into the BAM as data (the sheet's value, verbatim).
    assert rg in (out / "sheet.tsv").read_text()


@MANY
@given(sample=NAMES, title=NAMES)
def test_local_sample_sheet_refuses_hostile_sample_names_and_titles(cache, monkeypatch, sample, title):
    here = fresh(cache)
    sheet = here / "s.csv"
    with open(sheet, "w", newline="") as fh:
        csv.writer(fh).writerows([["sample", "r1", "r2"], [sample, str(bundled().r1), str(bundled().r2)]])
    assert refused_in_process(monkeypatch, here, "line 2: sample name",
                              "run", "fastqc-to-bwa", "--samples", str(sheet), "-o", str(here / "o"))
    good = here / "good.csv"
    good.write_text(f"sample,r1,r2\nS1,{bundled().r1},{bundled().r2}\n")
    assert refused_in_process(monkeypatch, here, "--title",
                              "run", "fastqc-to-bwa", "--samples", str(good), "--title", title, "-o", str(here / "o"))
    assert not canaries(cache) and not (here / "o").exists()


def _screen_copy(here: Path, names: tuple[str, str, str, str]) -> list[str]:
    """The bundled screen with every input renamed; returns the CLI arguments."""
    src = DATA_DIR / "cellprofiler"
    images = here / names[0]
    shutil.copytree(src / "images", images)
    data_file = here / f"{names[1]}.csv"
    (images / "images.csv").rename(data_file)
    illum, analysis = here / f"{names[2]}.cppipe", here / f"{names[3]}.cppipe"
    shutil.copy(src / "illum.cppipe", illum)
    shutil.copy(src / "analysis.cppipe", analysis)
    return ["--images", str(images), "--data-file", str(data_file), "--illum", str(illum), "--pipeline", str(analysis)]


@MANY
@given(title=NAMES)
def test_local_cellprofiler_refuses_a_hostile_title(cache, monkeypatch, title):
    from bioinfra.core.tools import CELLPROFILER_VENV_BIN

    if not (CELLPROFILER_VENV_BIN / "cellprofiler").exists():
        pytest.skip("headless CellProfiler is not installed: `make cellprofiler` (CI installs it)")
    here = fresh(cache)
    out = here / "out"
    assert refused_in_process(monkeypatch, here, "--title", "run", "cellprofiler", "--title", title, "-o", str(out),
                              "--dry-run")
    assert not canaries(cache) and not out.exists()


@ONLY_EXPLICIT  # three real CellProfiler runs cost ~40 s; the rendered test below draws names for it
@example(names=(PLAIN + "images", PLAIN + "data", PLAIN + "illum", PLAIN + "analysis"))
@example(names=(WORST + "images", WORST + "data", WORST + "illum", WORST + "analysis"))
@given(names=st.tuples(NAMES, NAMES, NAMES, NAMES).filter(lambda t: len(set(t)) == 4))
def test_local_cellprofiler_carries_hostile_file_names_as_data(cli, tmp_path, names):
    from bioinfra.core.tools import CELLPROFILER_VENV_BIN

    if not (CELLPROFILER_VENV_BIN / "cellprofiler").exists():
        pytest.skip("headless CellProfiler is not installed: `make cellprofiler` (CI installs it)")
    here = fresh(tmp_path)
    out = here / "out"
    # A title of its own: the data file's name would only make a cleaned default one (tested below).
    proc = cli("run", "cellprofiler", *_screen_copy(here, names), "--title", "plate 1", "--runtime", "native",
               "-o", str(out), "-q", timeout=600)
    assert not canaries(tmp_path), canaries(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "results" / "Image.csv").stat().st_size > 0


# -- (b) the clusters' Workflows, their scripts run here ---------------------------------------------

FAKE_TOOL = r"""#!/bin/bash
# STAND-IN for a tool in a pod (fastqc, bwa, samtools, multiqc, rclone, cellprofiler, python3): makes
# the files the step's script reads next, and exits 0. Arguments are only ever data here.
tool=$(basename "$0")
all=("$@")
out="" first=1 last=1 prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    --outdir | -o) out="$2"; shift ;;
    -f) first="$2"; shift ;;
    -l) last="$2"; shift ;;
    -p) prefix="$2"; shift ;;
  esac
  shift
done
case "$tool" in
  fastqc)
    for f in "${all[@]}"; do
      [ -f "$f" ] || continue
      s=$(basename "$f"); s=${s%.gz}; s=${s%.fastq}; s=${s%.fq}
      mkdir -p "$out/${s}_fastqc"
      printf '##FastQC\t0.12.1\n' > "$out/${s}_fastqc/fastqc_data.txt"
      printf 'PASS\tPer base sequence quality\t%s\n' "$s" > "$out/${s}_fastqc/summary.txt"
      : > "$out/${s}_fastqc.html"; : > "$out/${s}_fastqc.zip"
    done ;;
  bwa)
    case "${all[0]:-}" in
      index) : > "$prefix.bwt" ;;
      mem) echo "@HD	VN:1.6" ;;
      *) echo "Version: 0.7.17-stand-in" ;;
    esac ;;
  samtools)
    case "${all[0]:-}" in
      sort) cat > /dev/null; : > "$out" ;;
      index) : > "${all[1]}.bai" ;;
      --version) echo "samtools 1.16 (stand-in)" ;;
      *) echo "0 + 0 in total" ;;
    esac ;;
  multiqc)
    mkdir -p "$out/multiqc_report_data"
    echo '{"config_version": "1.14"}' > "$out/multiqc_report_data/multiqc_data.json"
    : > "$out/multiqc_report.html" ;;
  cellprofiler)
    if [ "$first" != 1 ] || [ "$last" != 1 ] || printf '%s\n' "${all[@]}" | grep -qx -- -f; then
      { echo ImageNumber; seq "$first" "$last"; } > "$out/Image.csv"
    else
      : > "$out/P1_IllumDNA.npy"
    fi ;;
  python3) cat > /dev/null ;;
  rclone) ;;
esac
exit 0
"""
TOOLS = ("fastqc", "bwa", "samtools", "multiqc", "rclone", "cellprofiler", "python3", "bcftools")
TAG_RE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def argo_substitute(text: str, params: dict[str, str], inputs: dict[str, str]) -> str:
    """A template's text as Argo substitutes it: the Workflow's parameters first, then the
    template's inputs over the result (Argo's SubstituteParams makes these two passes)."""
    def first(m):
        name = m.group(1)
        return params.get(name[len("workflow.parameters."):], m.group(0)) if name.startswith("workflow.parameters.") \
            else m.group(0)

    def second(m):
        name = m.group(1)
        return inputs.get(name[len("inputs.parameters."):], m.group(0)) if name.startswith("inputs.parameters.") \
            else m.group(0)

    return TAG_RE.sub(second, TAG_RE.sub(first, text))


def argo_env(template: dict[str, Any], params: dict[str, str], inputs: dict[str, str]) -> dict[str, str]:
    """The env a step's pod gets (a secretKeyRef is an optional Secret, absent here)."""
    return {e["name"]: argo_substitute(str(e["value"]), params, inputs)
            for e in template["script"].get("env", []) if "value" in e}


def run_scripts(workflow: dict[str, Any], scratch: Path, *, params: dict[str, str] | None = None,
                rows: int = 1) -> dict[str, subprocess.CompletedProcess]:
    """Each DAG task's script, in order, with bash in `scratch` as the workspace and the tools
    stood in by FAKE_TOOL; a task whose `when` is the literal "false" is skipped, as Argo would."""
    bin_dir = scratch.parent / f"{scratch.name}-bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in TOOLS:
        (bin_dir / tool).write_text(FAKE_TOOL)
        (bin_dir / tool).chmod(0o755)
    spec = workflow["spec"]
    params = params or {p["name"]: p.get("value", "") for p in spec["arguments"]["parameters"]}
    templates = {t["name"]: t for t in spec["templates"]}
    results = {}
    item = {"item.first": "1", "item.last": str(rows)}  # one chunk / batch over every row
    for task in templates[spec["entrypoint"]]["dag"]["tasks"]:
        if task.get("when") == "false":
            continue
        wrapper = templates[task["template"]]
        attempt = templates[wrapper["steps"][0][0]["template"]]
        inputs = {p["name"]: TAG_RE.sub(lambda m: item.get(m.group(1)) or (
                      params.get(m.group(1)[len("workflow.parameters."):], "")), str(p["value"]))
                  for p in (task.get("arguments") or {}).get("parameters", [])}
        script = scratch.parent / f"{scratch.name}-{task['name']}.sh"
        # Argo substitutes the whole template, source included (there is nothing to substitute there now).
        script.write_text(argo_substitute(attempt["script"]["source"], params, inputs))
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(scratch.parent), **argo_env(attempt, params, inputs)}
        results[task["name"]] = subprocess.run(["bash", str(script)], cwd=scratch, env=env, capture_output=True,
                                               text=True, timeout=60)
    return results


def workspace_for(workflow: dict[str, Any], root: Path, sheet: str = "") -> Path:
    """A scratch workspace holding the files the Workflow's parameters name."""
    scratch = fresh(root)
    params = {p["name"]: p.get("value", "") for p in workflow["spec"]["arguments"]["parameters"]}
    for name in ("r1", "r2", "reference", "data-file", "illum-pipeline", "analysis-pipeline"):
        if params.get(name):
            (scratch / params[name]).parent.mkdir(parents=True, exist_ok=True)
            (scratch / params[name]).write_text("x\n")
    if params.get("images-dir"):
        (scratch / params["images-dir"]).mkdir(parents=True, exist_ok=True)
    if params.get("sheet"):
        (scratch / params["sheet"]).parent.mkdir(parents=True, exist_ok=True)
        (scratch / params["sheet"]).write_text(sheet)
        for line in sheet.splitlines()[1:]:
            for rel in line.split("\t")[1:3]:
                (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
                (scratch / rel).write_text("x\n")
    return scratch


def render_cli(monkeypatch, here: Path, *args: str) -> tuple[int, str, str]:
    """`bioinfra render ...` in this process (the same command code, without a process start)."""
    from typer.testing import CliRunner

    from bioinfra.cli import app

    monkeypatch.chdir(here)
    result = CliRunner().invoke(app, ["render", *args])
    if isinstance(result.exception, BioinfraError):
        return int(result.exception.exit_code), result.stdout, result.exception.message
    assert result.exception is None, result.exception
    return result.exit_code, result.stdout, ""


def assert_ran_inertly(results: dict[str, subprocess.CompletedProcess], roots: list[Path], *, all_ok: bool = True):
    assert not canaries(*roots), canaries(*roots)
    if all_ok:
        failed = {name: r.stderr[-600:] for name, r in results.items() if r.returncode != 0}
        assert not failed, failed


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@SOME
@example(names=(WORST + "_R1", WORST + "_R2", WORST), sample=WORST)
@given(names=st.tuples(NAMES, NAMES, NAMES).filter(lambda t: len({t[0], t[1]}) == 2), sample=NAMES)
def test_rendered_fastqc_to_bwa_scripts_run_inertly_on_every_target(cache, monkeypatch, names, sample):
    data = bundled()
    here = fresh(cache)
    r1, r2, ref = here / f"{names[0]}.fastq.gz", here / f"{names[1]}.fastq.gz", here / f"{names[2]}.fa.gz"
    for src, dst in ((data.r1, r1), (data.r2, r2), (data.reference, ref)):
        os.symlink(src, dst)
    files = ["--r1", str(r1), "--r2", str(r2), "--reference", str(ref)]
    for target in ("aws", "gcp", "onprem"):
        code, _out, message = render_cli(monkeypatch, here, "fastqc-to-bwa", "--target", target, *files,
                                         "--sample", sample)
        assert code == int(ExitCode.INPUT_INVALID) and message.startswith("sample name"), message
        code, _out, message = render_cli(monkeypatch, here, "fastqc-to-bwa", "--target", target, *files)
        assert code == int(ExitCode.INPUT_INVALID) and message.startswith("sample name"), message  # from R1's name
        gate = ["--qc-gate"] if target == "gcp" else []  # the gate's own `when`, on one target
        code, text, message = render_cli(monkeypatch, here, "fastqc-to-bwa", "--target", target, *files,
                                         "--sample", "S1", *gate)
        assert code == 0, message
        workflow = yaml.safe_load(text)
        results = run_scripts(workflow, workspace_for(workflow, here))
        assert_ran_inertly(results, [cache])


@SOME
@example(names=(PLAIN + "images", PLAIN + "data", PLAIN + "illum", PLAIN + "analysis"), title=PLAIN)
@example(names=(WORST + "images", WORST + "data", WORST + "illum", WORST + "analysis"), title=WORST)
@given(names=st.tuples(NAMES, NAMES, NAMES, NAMES).filter(lambda t: len(set(t)) == 4), title=NAMES)
def test_rendered_cellprofiler_scripts_run_inertly_on_every_target(cache, monkeypatch, names, title):
    here = fresh(cache)
    args = _screen_copy(here, names)
    for target in ("aws", "gcp", "onprem"):
        code, _out, message = render_cli(monkeypatch, here, "cellprofiler", "--target", target, *args, "--title", title)
        assert code == int(ExitCode.INPUT_INVALID) and message.startswith("--title"), message
        # On aws a title of its own; elsewhere the default, made from the data file's name, cleaned.
        title_args = ["--title", "plate 1"] if target == "aws" else []
        code, text, message = render_cli(monkeypatch, here, "cellprofiler", "--target", target, *args, *title_args)
        assert code == 0, message
        workflow = yaml.safe_load(text)
        results = run_scripts(workflow, workspace_for(workflow, here), rows=2)
        assert_ran_inertly(results, [cache])


@SOME
@example(names=(PLAIN, PLAIN + "1", PLAIN + "2"), rg=PLAIN)
@example(names=(WORST, WORST + "1", WORST + "2"), rg="$(touch CANARY)`touch CANARY`;touch CANARY;|>CANARY")
@given(names=st.tuples(SHEET_NAMES, SHEET_NAMES, SHEET_NAMES).filter(lambda t: len(set(t)) == 3), rg=RG_VALUES)
def test_rendered_sample_sheet_scripts_run_inertly_on_every_target(cache, monkeypatch, names, rg):
    from bioinfra.core.inputs import inspect_fastq
    from bioinfra.engine.sheets import CheckedSample, SampleRow, normalised_sheet

    data = bundled()
    here = fresh(cache)
    r1, r2 = here / f"{names[1]}_R1.fastq.gz", here / f"{names[2]}_R2.fastq.gz"
    os.symlink(data.r1, r1)
    os.symlink(data.r2, r2)
    sheet = here / f"{names[0]}.csv"
    with open(sheet, "w", newline="") as fh:
        csv.writer(fh).writerows([["sample", "r1", "r2", "rg_id", "rg_sm", "rg_lb", "rg_pl", "rg_pu"],
                                  ["S1", r1.name, r2.name, rg, rg, rg, rg, rg]])
    # The sheet the Workflow reads is the one bioinfra writes from these rows (engine.sheets).
    row = SampleRow(2, "S1", r1, r2, {k: rg for k in ("rg_id", "rg_sm", "rg_lb", "rg_pl", "rg_pu")})
    tsv = normalised_sheet([CheckedSample(row, inspect_fastq(r1, "r1"), inspect_fastq(r2, "r2"))])
    for target in ("aws", "gcp", "onprem"):
        title_args = ["--title", "cohort 7"] if target == "aws" else []  # elsewhere: from the sheet's name
        code, text, message = render_cli(monkeypatch, here, "fastqc-to-bwa", "--target", target,
                                         "--samples", str(sheet), "--reference", str(data.reference), *title_args)
        assert code == 0, message
        workflow = yaml.safe_load(text)
        results = run_scripts(workflow, workspace_for(workflow, here, tsv))
        assert_ran_inertly(results, [cache])


def _stand_in_stores(target: str):
    """STAND-IN for S3 and GCS: every object exists (the checks run before any such call); the
    backend `render` uses, with a cluster run's stage-out destination (tests/render_engine.py)."""
    from tests.render_engine import StagingBackend

    return StagingBackend(target)


CLOUDS = {"aws": ("s3", {"target": "aws", "name": "lab", "region": "eu-west-2"}),
          "gcp": ("gs", {"target": "gcp", "name": "lab", "project": "my-lab", "region": "europe-west2"})}


@MANY
@example(key=";>CANARY;", url_junk=PLAIN, sample=PLAIN)
@example(key=";>CANARY;", url_junk=WORST, sample=WORST)
@given(key=KEY_NAMES, url_junk=NAMES.filter(lambda s: re.search(r"[\x00-\x20\x7f'\"`$\\{}]", s)), sample=NAMES)
def test_cluster_runs_with_remote_inputs_refuse_or_carry_hostile_urls_and_samples(cache, key, url_junk, sample):
    from bioinfra.config import parse_config
    from bioinfra.errors import InputError
    from tests.render_engine import prepared

    for target, (scheme, raw) in CLOUDS.items():
        config = parse_config(raw)
        stores = _stand_in_stores(target)
        urls = {role: f"{scheme}://lab-data/{key}_{role}.fastq.gz" for role in ("r1", "r2")}
        urls["reference"] = f"{scheme}://lab-data/{key}.fa.gz"
        # A hostile --sample, or one made from a hostile key: refused before any cloud call.
        for given_sample in (sample, None):
            with pytest.raises(InputError, match="^sample name"):
                prepared("fastqc-to-bwa", config, target, {**urls, "sample": given_sample}, backend=stores)
        assert not stores.checked
        # A URL with quotes, $, backticks, spaces, braces or control characters: refused, naming the flag.
        with pytest.raises(InputError, match="^--r2 "):
            prepared("fastqc-to-bwa", config, target, {**urls, "r2": f"{scheme}://lab-data/{url_junk}", "sample": "S1"},
                     backend=stores)
        # Keys with ; | & ( ) < > are valid object names: carried to rclone as data.
        workflow = prepared("fastqc-to-bwa", config, target, {**urls, "sample": "S1", "qc_gate": target == "gcp"},
                            backend=stores, run_id="fastqc-to-bwa-t").workflow
        results = run_scripts(workflow, workspace_for(workflow, cache))
        assert "stage-in" in results and "stage-out" in results
        assert_ran_inertly(results, [cache])


@MANY
@example(key=";>CANARY;", title=WORST)
@given(key=KEY_NAMES, title=NAMES)
def test_cluster_cellprofiler_with_remote_images_refuses_a_hostile_title_and_carries_keys(cache, key, title):
    from bioinfra.config import parse_config
    from bioinfra.errors import InputError
    from tests.render_engine import prepared

    here = fresh(cache)
    args = dict(zip(("images", "data_file", "illum", "analysis"),
                    _screen_copy(here, ("imgs", WORST + "data", WORST + "illum", WORST + "analysis"))[1::2],
                    strict=True))
    for target, (scheme, raw) in CLOUDS.items():
        config = parse_config(raw)
        stores = _stand_in_stores(target)
        base = {k: v for k, v in args.items() if k != "images"}
        with pytest.raises(InputError, match="^--title"):
            prepared("cellprofiler", config, target, {"images": f"{scheme}://lab-hcs/{key}/", "title": title, **base},
                     backend=stores)
        assert not stores.checked
        workflow = prepared("cellprofiler", config, target, {"images": f"{scheme}://lab-hcs/{key}/", "batch_size": 2,
                                                             **base}, backend=stores, run_id="cellprofiler-t").workflow
        results = run_scripts(workflow, workspace_for(workflow, cache), rows=2)
        assert "stage-in" in results
        assert_ran_inertly(results, [cache])


def _all_variants() -> dict[str, dict[str, Any]]:
    from tests.unit.test_no_code_injection import VARIANTS

    # The scripts are the same on every target; these three have every step, staging included.
    return {name: yaml.safe_load(VARIANTS[name])
            for name in ("fastqc-to-bwa.aws.staged.qc-gate", "samples.aws.staged", "cellprofiler.gcp.staged",
                         "variant-calling.aws.staged")}


@SOME
@example(value=PLAIN)
@example(value=WORST)
@given(value=NAMES)
def test_any_parameter_value_set_at_submission_stays_data(cache, value):
    """`argo submit -p name=VALUE` (or an edited workflow.yaml) bypasses bioinfra's checks: every
    parameter of every Workflow set to a hostile value still runs nothing (steps may fail; that is
    fine, CANARY must not appear)."""
    for name, workflow in _all_variants().items():
        params = {p["name"]: value for p in workflow["spec"]["arguments"]["parameters"]}
        scratch = fresh(cache)
        run_scripts(workflow, scratch, params=params, rows=1)
        assert not canaries(cache), (name, canaries(cache))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(value=PLAIN)
@example(value=WORST)
@given(value=NAMES)
def test_the_local_executor_carries_any_parameter_value_as_data(cache, monkeypatch, value):
    """The same, through bioinfra's own executor (runner._resolve substitutes env values as Argo
    does): every parameter of every Workflow set to a hostile value, tools stood in by FAKE_TOOL."""
    from bioinfra.executor.runner import LocalExecutor
    from bioinfra.executor.runtime import NativeRuntime
    from bioinfra.executor.workflow import parse_workflow

    bin_dir = cache / "executor-bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        for tool in TOOLS:
            (bin_dir / tool).write_text(FAKE_TOOL)
            (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    # Everything hostile; then the structural values sane (nothing staged, numbers), so that every
    # step, not only the first one to fail, gets the hostile rest.
    structural = {"stage-in": "", "chunk-size": "auto", "batch-size": "2", "align-threads": "1"}
    for name, workflow in _all_variants().items():
        for keep in ({}, structural):
            for p in workflow["spec"]["arguments"]["parameters"]:
                p["value"] = keep.get(p["name"], value)
            for t in workflow["spec"]["templates"]:
                if "steps" in t:
                    t["retryStrategy"] = {"limit": "0"}  # failing steps are expected; no waiting on backoffs
            here = fresh(cache)
            (here / "ws").mkdir()
            executor = LocalExecutor(parse_workflow(workflow), volume_roots={"workspace": here / "ws"},
                                     state_dir=here / "state", log_dir=here / "logs", runtime=NativeRuntime(),
                                     max_cpus=2)
            result = executor.run()
            assert not canaries(cache), (name, canaries(cache))
            ran = {t for t, state in result.tasks.items() if state.attempts}
            assert ran - {"stage-in"} if keep else ran, (name, ran)  # steps past staging got the values
