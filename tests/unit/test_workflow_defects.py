"""The #16 point-4 defects of the rendered Workflows, each pinned by a test that failed before its fix:
the namespace `render` names, deadlines, label values, and the fan-out width cap."""

from __future__ import annotations

import pytest
import yaml

from bioinfra.config import Config, parse_config
from bioinfra.core import cluster_run
from bioinfra.errors import ConfigError
from bioinfra.pipelines import (
    CellProfilerParams,
    SamplesParams,
    load_workflow,
    render_cellprofiler,
    render_fastqc_to_bwa,
    render_samples,
)
from bioinfra.targets import addons
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
