"""A local run whose Workflow is refused leaves nothing behind (#16 point 4, small): the Workflow is
rendered, and so linted (bioinfra.engine.render.render_pipeline), before any input is staged into the workspace
cache or the output folder is made. The refusal is stood in for by making the lint refuse, as Argo's
rules would refuse a Workflow (WorkflowInvalidError, exit 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

import bioinfra.argo
from bioinfra.config import parse_config
from bioinfra.engine.engine import RunOptions, execute
from bioinfra.engine.local import LocalBackend
from bioinfra.engine.spec import discover
from bioinfra.errors import BioinfraError, WorkflowInvalidError
from bioinfra.sampledata import bundled
from tests.conftest import require_native_tools

pytestmark = pytest.mark.integration


@pytest.fixture
def refusing_lint(monkeypatch):
    calls = []

    def refuse(workflow, *args, **kwargs):
        calls.append(workflow["metadata"].get("generateName"))
        raise WorkflowInvalidError("the Workflow is invalid: stood-in refusal", problems=["stood-in refusal"])

    monkeypatch.setattr(bioinfra.argo, "check_workflow", refuse)
    return calls


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def config_for(tmp_path: Path):
    return parse_config({"local": {"workspace": str(tmp_path / "workspace"), "runtime": "native"}})


def run_local(tmp_path: Path, pipeline: str, **given):
    """A local run through the one engine, as `bioinfra run PIPELINE` does it."""
    config = config_for(tmp_path)
    execute(config, discover()[pipeline], given, RunOptions(output=tmp_path / "out"),
            LocalBackend(config, requested_runtime="native"), say=lambda _m: None, reporter=None)


def test_fastqc_to_bwa_refused_before_staging(tmp_path, refusing_lint):
    require_native_tools()
    with pytest.raises(WorkflowInvalidError):
        run_local(tmp_path, "fastqc-to-bwa")
    assert refusing_lint == ["fastqc-to-bwa-"]
    assert files_under(tmp_path / "workspace") == []  # no input linked, no reference copied into the cache
    assert not (tmp_path / "out").exists()


def test_samples_refused_before_staging(tmp_path, refusing_lint):
    require_native_tools()
    data = bundled()
    sheet = tmp_path / "samples.csv"
    sheet.write_text(f"sample,r1,r2\nS1,{data.r1},{data.r2}\n")
    with pytest.raises(WorkflowInvalidError):
        run_local(tmp_path, "fastqc-to-bwa", samples=str(sheet))
    assert refusing_lint == ["fastqc-to-bwa-"]
    assert files_under(tmp_path / "workspace") == []
    assert not (tmp_path / "out").exists()


def test_variant_calling_refused_before_staging(tmp_path, refusing_lint):
    require_native_tools()
    with pytest.raises(WorkflowInvalidError):
        run_local(tmp_path, "variant-calling")
    assert refusing_lint == ["variant-calling-"]
    assert files_under(tmp_path / "workspace") == []
    assert not (tmp_path / "out").exists()


def test_screen_refused_before_staging(tmp_path, refusing_lint):
    try:
        run_local(tmp_path, "cellprofiler")
    except WorkflowInvalidError:
        pass
    except BioinfraError as exc:  # no CellProfiler here: the run stops before the render
        pytest.skip(f"cellprofiler run not possible here: {exc.message}")
    else:
        pytest.fail("the refused Workflow ran")
    assert refusing_lint == ["cellprofiler-"]
    assert files_under(tmp_path / "workspace") == []
    assert not (tmp_path / "out").exists()
