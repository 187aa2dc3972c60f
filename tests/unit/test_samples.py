"""Sample sheets and the many-samples Workflow: shape checks with line numbers, the normalised TSV,
chunking, the fan-out on its pools, and a size that does not depend on the number of samples
(golden files and the schema checks: tests/unit/test_render.py)."""

from __future__ import annotations

import re

import pytest

from bioinfra.cli.render_cmd import render_text
from bioinfra.config import parse_config
from bioinfra.engine.sheets import read_sheet
from bioinfra.engine.spec import discover
from bioinfra.errors import InputError
from bioinfra.executor.workflow import parse_workflow
from bioinfra.pipelines import MAX_CHUNKS
from tests import render_engine

# The golden files and schema checks of the --samples Workflow: tests/unit/test_render.py.
AWS = parse_config({"target": "aws", "name": "lab-seq", "region": "eu-west-2"})
SHEET_PARAMS = {"sheet": "runs/preview/sheet.tsv", "reference": "references/08fe207fcb4bbe47/reference.fa.gz",
                "title": "cohort-7", "stage-out": ":s3,provider=AWS,env_auth=true:lab-seq-results/runs/preview"}


def sheet(tmp_path, text: str, name: str = "samples.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def big_sheet(tmp_path, n: int):
    lines = ["sample,r1,r2"] + [f"S{i:06d},fq/S{i:06d}_R1.fastq.gz,fq/S{i:06d}_R2.fastq.gz" for i in range(n)]
    return sheet(tmp_path, "\n".join(lines) + "\n", f"s{n}.csv")


def test_stages_fan_out_over_chunks_on_their_own_pools():
    doc = render_engine.workflow("fastqc-to-bwa", AWS, "aws", SHEET_PARAMS, mode="samples",
                                 values={"chunk_size": 25}, items=25, parallelism=40)
    dag = doc["spec"]["templates"][0]["dag"]
    tasks = {t["name"]: t for t in dag["tasks"]}
    for stage in ("fastqc", "align", "stats"):
        assert tasks[stage]["withParam"] == "{{tasks.plan.outputs.parameters.chunks}}"
        assert "continueOn" not in tasks[stage]  # Argo v3.7 refuses it beside depends (#16)
    assert tasks["report"]["depends"] == "stats.Succeeded || stats.Failed || stats.Errored"
    # Every branch runs on after a failed chunk; the report's verdict is the Workflow's (#16).
    assert dag["failFast"] is False and dag["target"] == "report stage-out"
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    # FastQC never lands on the high-CPU spot pool; alignment does, tolerating its taint.
    assert templates["fastqc-attempt"]["nodeSelector"] == {"bioinfra.io/pool": "general"}
    assert templates["fastqc-attempt"]["script"]["resources"]["requests"]["cpu"] == "1"
    assert templates["align-attempt"]["nodeSelector"] == {"bioinfra.io/pool": "highcpu"}
    assert doc["spec"]["parallelism"] == 40
    parse_workflow(doc)  # the local executor takes the same document


def test_size_is_the_same_for_1_or_10000_samples(tmp_path):
    """`bioinfra render --samples` as the CLI renders it (a sheet's shape only, its FASTQs not read)."""
    sizes = {}
    spec = discover()["fastqc-to-bwa"]
    for n in (1, 100, 10_000):
        text = render_text({}, spec, {"samples": str(big_sheet(tmp_path, n)), "title": "t"}, target="local")
        # A chunk step's deadline is per sample it holds (#16): only those numbers' digits may differ.
        sizes[n] = len(re.sub(r"activeDeadlineSeconds: \d+", "activeDeadlineSeconds: N", text).encode())
        assert "S000000" not in text  # the sheet is never inlined (render time: bench/samples_bench.py)
    # Byte for byte the same size: the chunk size is "auto" in the Workflow, decided by its plan step.
    assert sizes[1] == sizes[100] == sizes[10_000]
    assert read_sheet(big_sheet(tmp_path, 10_000)).chunk_size() == 50 and MAX_CHUNKS == 200


def test_sheet_problems_are_listed_with_lines(tmp_path):
    bad = sheet(tmp_path, "sample,r1,r2,rg_lbb\nS1,a.fq,b.fq,x\nS1,c.fq,d.fq,y\nbad name,e.fq,e.fq,z\nS4,,f.fq,w\n")
    with pytest.raises(InputError) as info:
        read_sheet(bad)
    message = info.value.message
    assert "line 1: unknown column 'rg_lbb' (did you mean 'rg_lb'?)" in message
    bad = sheet(tmp_path, "sample,r1,r2\nS1,a.fq,b.fq\nS1,c.fq,d.fq\nbad name,e.fq,e.fq\nS4,,f.fq\nS5,g.fq\n")
    with pytest.raises(InputError) as info:
        read_sheet(bad)
    message = info.value.message
    assert "line 3: sample S1 is also on line 2" in message
    assert "line 4: sample name 'bad name'" in message and "line 4: r1 and r2 are the same file" in message
    assert "line 5: r1 is empty" in message and "line 6: 2 fields, the header has 3" in message
    with pytest.raises(InputError, match="missing column"):
        read_sheet(sheet(tmp_path, "sample,read1,r2\nS1,a,b\n"))
    with pytest.raises(InputError, match="no samples"):
        read_sheet(sheet(tmp_path, "sample,r1,r2\n"))
    with pytest.raises(InputError, match="no such file"):
        read_sheet(tmp_path / "nope.csv")


def test_tsv_read_groups_and_relative_paths(tmp_path):
    (tmp_path / "runs").mkdir()
    s = read_sheet(sheet(tmp_path / "runs", "\ufeffsample\tr1\tr2\trg_pl\trg_pu\nS1\ta_R1.fq\ta_R2.fq\tONT\tflowcell1.3\n",
                         "s.tsv"))
    row = s.rows[0]
    assert row.r1 == (tmp_path / "runs" / "a_R1.fq").resolve()
    assert row.read_group == {"rg_id": "S1", "rg_sm": "S1", "rg_lb": "S1", "rg_pl": "ONT", "rg_pu": "flowcell1.3"}
    with pytest.raises(InputError, match="rg_lb may not hold"):
        read_sheet(sheet(tmp_path, 'sample,r1,r2,rg_lb\nS1,a,b,"lib\\1"\n'))
