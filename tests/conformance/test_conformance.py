"""Argo conformance (issue #16 point 3): what docs/argo-conformance.md says is "same" stays "same".

Each Workflow whose verdict in the committed table is "same" runs again through the same harness
(scripts/conformance.py: parse_workflow, then LocalExecutor + NativeRuntime with the argosay stand-in),
and must still reach the phases Argo's own tests assert. Argo's files are read from
$BIOINFRA_ARGO_REFERENCE or ../shared/argo-v3.7.18; without them these tests skip and say so.
`make conformance` regenerates the table.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "argo-conformance.md"
# Workflows that take more than a few seconds (they sleep on purpose): run with the slow marker.
SLOW: set[str] = set()


def _harness():
    spec = importlib.util.spec_from_file_location("conformance", ROOT / "scripts" / "conformance.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["conformance"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _same_in_table() -> dict[str, set[str]]:
    """The files of the committed table's rows whose verdict is "same", each with the verdicts it may
    now have: "same"; or, for one that is "same" only while the executor ignores what it needs from a
    cluster ("same (ignores artifacts)"), also "rejected" (up front, as conformance asks)."""
    if not TABLE.is_file():
        return {}
    files: dict[str, set[str]] = {}
    for line in TABLE.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and cells[3].startswith("same"):
            allowed = {"same", "rejected"} if cells[3].startswith("same (ignores") else {"same"}
            files.setdefault(cells[0].split(" (")[0], set()).update(allowed)
    return files


conformance = _harness()
REFERENCE = conformance.reference_dir()
SAME = _same_in_table()


def test_the_table_has_rows_that_are_same():
    assert TABLE.is_file(), "docs/argo-conformance.md is missing: run `make conformance`"
    assert SAME, "no Workflow is 'same' in docs/argo-conformance.md"


def test_the_table_shows_no_differences():
    """Issue #16: every Workflow either ends as Argo's tests assert or is rejected up front."""
    text = TABLE.read_text()
    m = re.search(r"\*\*differs: (\d+)\*\*", text)
    assert m, "docs/argo-conformance.md has no differs count"
    rows = [line for line in text.splitlines() if line.startswith("|") and "| differs" in line]
    assert m.group(1) == "0" and not rows, rows[:5]


# Workflows the executor must run as Argo does (each asserted by an Argo Go test, see expected.yaml).
MUST_BE_SAME = [
    "test/e2e/functional/dag-omitted-output-ref.yaml",
    "test/e2e/functional/dag-skipped-output-ref.yaml",
    "test/e2e/functional/dag-skipped-consumer-default.yaml",
    "test/e2e/functional/dag-skipped-producer-default.yaml",
    "test/e2e/functional/dag-skipped-withparam-default.yaml",
    "test/e2e/functional/dag-empty-param.yaml",
    "examples/dag-conditional-parameters.yaml",
    "test/e2e/testdata/exit-1.yaml",
    "test/e2e/functional/parameter-aggregation-dag-with-retry.yaml",
    "test/e2e/functional/parameter-aggregation-steps-with-retry.yaml",
    "examples/conditional-parameters.yaml",
    "test/e2e/testdata/workflow-hook-parameter.yaml",
    "examples/exit-handler-with-param.yaml",
    "test/e2e/functional/template-default-image.yaml",
    "examples/dag-inline-workflow.yaml",
    "examples/steps-inline-workflow.yaml",
]


@pytest.mark.parametrize("file", MUST_BE_SAME)
def test_named_workflows_are_same_in_the_table(file):
    assert SAME.get(file) == {"same"}, f"{file} is not 'same' in docs/argo-conformance.md"


@pytest.mark.skipif(REFERENCE is None, reason="Argo v3.7.18 reference not found (BIOINFRA_ARGO_REFERENCE or ../shared)")
@pytest.mark.skipif(not conformance.can_sandbox(), reason=conformance.SANDBOX_NEEDS)
@pytest.mark.parametrize(
    "file", [pytest.param(f, marks=pytest.mark.slow) if f in SLOW else f for f in sorted(SAME)]
)
def test_stays_same_as_argo(file):
    rows = conformance.collect(REFERENCE, [file], timeout=30)
    assert rows, f"{file} holds no Workflow any more"
    for row in rows:
        assert row.kind in SAME[file], f"{file}: {row.verdict}"
