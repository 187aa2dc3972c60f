"""variant-calling on the bundled sample, with the real bwa, samtools, bcftools and MultiQC: the 12
planted SNPs are all called and nothing else is (issue 17 point 5).

Two ways in. `pipeline_run` renders the folder's Workflow through the engine with the bundled
sample's workspace paths and runs it with bioinfra's local executor and the native runtime
(tests/pipeline_folder.py): the very commands the template runs, with the workspace in reach.
`test_bioinfra_run_variant_calling` runs the CLI, as a user does.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bioinfra.config import Config
from bioinfra.sampledata import bundled
from bioinfra.sampledata.simulate import read_planted_snps
from tests.conftest import cli_env, require_native_tools
from tests.pipeline_folder import builtin, copy, link, run_native, workflow

pytestmark = pytest.mark.integration

PIPELINE = builtin("variant-calling")
RUN_DIR = "runs/test-variant-calling"
PLANTED = 12


@pytest.fixture(autouse=True)
def _tools():
    require_native_tools()
    if shutil.which("bcftools") is None:
        pytest.skip("bcftools is not installed; run `make setup` (or apt-get install -y bcftools)")


def planted() -> set[tuple[str, int, str, str]]:
    return {(s.chrom, s.pos, s.ref, s.alt) for s in read_planted_snps(bundled().planted_snps)}


def called(vcf: Path) -> set[tuple[str, int, str, str]]:
    """Every ALT allele in the VCF, read by bcftools itself (independently of compare_truth.py)."""
    out = subprocess.run(["bcftools", "query", "-f", "%CHROM\t%POS\t%REF\t%ALT\n", str(vcf)],
                         check=True, capture_output=True, text=True).stdout
    calls = set()
    for line in out.splitlines():
        chrom, pos, ref, alts = line.split("\t")
        calls.update((chrom, int(pos), ref, alt) for alt in alts.split(","))
    return calls


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory, matplotlib_cache):
    """One run of the folder's Workflow on the bundled sample, laid out as `bioinfra run` lays it out."""
    root = tmp_path_factory.mktemp("variant-calling")
    workspace, output = root / "workspace", root / "out"
    data = bundled()
    params = {
        "r1": link(workspace, "inputs/r1/lambda_R1.fastq.gz", data.r1),
        "r2": link(workspace, "inputs/r2/lambda_R2.fastq.gz", data.r2),
        # The reference is a real copy (indexed beside it), gzip as bundled: the call step makes
        # the plain, faidx-indexed FASTA bcftools needs.
        "reference": copy(workspace, "references/lambda/reference.fa.gz", data.reference),
        "truth": link(workspace, "inputs/truth/truth.tsv", data.planted_snps),
        "sample": data.sample,
        "run-dir": RUN_DIR,
    }
    rendered = workflow(PIPELINE, Config(), "local", params)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("MPLCONFIGDIR", matplotlib_cache)  # MultiQC's matplotlib: one font cache
    try:
        result = run_native(rendered, workspace, output, RUN_DIR)
    finally:
        monkeypatch.undo()
    return result, output, workspace


def test_every_step_succeeds(pipeline_run):
    result, output, _ = pipeline_run
    assert result.phase == "Succeeded", {t.name: (t.phase, t.message, t.log.read_text()[-2000:] if t.log.exists() else "")
                                         for t in result.failed_tasks}
    phases = {name: state.phase for name, state in result.tasks.items()}
    assert phases == {"stage-in": "Skipped", "index-reference": "Succeeded", "align": "Succeeded",
                      "call": "Succeeded", "bcftools-stats": "Succeeded", "compare-truth": "Succeeded",
                      "multiqc": "Succeeded", "stage-out": "Skipped"}
    versions = {name: state.output_parameters.get("tool-version") for name, state in result.tasks.items()
                if state.phase == "Succeeded" and name != "index-reference"}
    assert versions["call"].startswith("bcftools 1.") and versions["bcftools-stats"] == versions["call"]
    assert versions["align"].split()[0] in ("bwa", "bwa-mem2") and versions["multiqc"].startswith("multiqc")
    assert versions["compare-truth"].startswith("Python 3.")
    assert result.tasks["align"].output_parameters["aligner"] in ("bwa", "bwa-mem2")


def test_all_planted_snps_are_called_and_nothing_else(pipeline_run):
    """Recall 12/12 and no false positive at the bundled sample's depth, read from the VCF by bcftools."""
    _, output, _ = pipeline_run
    vcf = output / "variants" / "lambda.vcf.gz"
    assert (output / "variants" / "lambda.vcf.gz.csi").is_file()
    with gzip.open(vcf, "rt") as f:  # bgzipped, as -Oz writes it, with the read group's sample
        header = [line for line in f if line.startswith("#CHROM")]
    assert header[0].rstrip("\n").split("\t")[9:] == ["lambda"]
    truth = planted()
    assert len(truth) == PLANTED
    calls = called(vcf)
    assert truth - calls == set(), "missed"
    assert calls - truth == set(), "false positives"


def test_compare_truth_writes_exactly_those_numbers(pipeline_run):
    _, output, _ = pipeline_run
    scored = json.loads((output / "variants" / "truth.json").read_text())
    assert scored == {"truth": 12, "called": 12, "tp": 12, "fp": 0, "fn": 0, "recall": 1.0, "precision": 1.0,
                      "missed": [], "false_positives": []}
    summary = PIPELINE.outputs.summary[0].format(**scored)
    assert summary == "recall 1.0 (12/12), precision 1.0 (12/12)"


def test_bcftools_stats_is_in_the_multiqc_report(pipeline_run):
    _, output, _ = pipeline_run
    stats = output / "variants" / "lambda.bcftools_stats.txt"
    assert "This file was produced by bcftools stats" in stats.read_text()
    assert "number of SNPs:\t12" in stats.read_text()
    assert (output / PIPELINE.outputs.report).is_file()
    sources = (output / "multiqc" / "multiqc_data" / "multiqc_sources.txt").read_text()
    assert "bcftools" in sources and "lambda.bcftools_stats.txt" in sources
    assert (output / "multiqc" / "multiqc_data" / "multiqc_bcftools_stats.txt").is_file()


def test_the_plain_indexed_reference_is_made_once_beside_the_reference(pipeline_run):
    _, _, workspace = pipeline_run
    folder = workspace / "references" / "lambda"
    assert (folder / "reference.fa.fai").read_text().startswith("gi|9626243|ref|NC_001416.1|\t48502\t")
    assert not list(folder.glob(".faidx-tmp-*"))


def test_every_attempt_lists_files_that_exist(pipeline_run):
    """The bioinfra.io/outputs annotation is what --resume checks: each file there must be made."""
    _, output, workspace = pipeline_run
    for state in pipeline_run[0].tasks.values():
        for rel in state.outputs:
            assert (workspace / rel).exists(), (state.name, rel)
    assert any(rel.endswith("variants/truth.json") for rel in pipeline_run[0].tasks["compare-truth"].outputs)


def test_bioinfra_run_variant_calling(tmp_path, matplotlib_cache):
    """The pipeline as a user runs it, through the engine (issue 17): the run's summary line, the
    truth score, the MultiQC data and the manifest. Skips only where `bioinfra run` does not know
    the pipeline (a checkout without the engine)."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "bioinfra"), "run", "variant-calling", "--runtime", "native", "-o", str(out)],
        cwd=tmp_path, env=cli_env(tmp_path / "cache", matplotlib_cache), capture_output=True, text=True, timeout=900,
    )
    if "unknown pipeline" in proc.stderr + proc.stdout:
        pytest.skip("`bioinfra run` does not know variant-calling yet (the engine of issue 17 runs pipeline folders)")
    assert proc.returncode == 0, proc.stderr[-4000:]
    scored = json.loads((out / "variants" / "truth.json").read_text())
    assert (scored["tp"], scored["truth"], scored["called"], scored["fp"]) == (12, 12, 12, 0)
    assert scored["recall"] == 1.0 and scored["precision"] == 1.0
    assert "recall" in proc.stdout + proc.stderr
    data = out / "multiqc" / "multiqc_data"
    assert any("bcftools" in p.read_text(errors="replace") for p in data.glob("*.txt")), "no bcftools in MultiQC"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"

