from __future__ import annotations

import pytest

from bioinfra.errors import WorkflowSpecError
from bioinfra.executor.expressions import depends_tasks, evaluate_depends, evaluate_when, substitute


def test_substitute_and_unknown_tag():
    assert substitute("a {{workflow.parameters.x}} b {{ inputs.parameters.y }}", {"workflow.parameters.x": "1", "inputs.parameters.y": "2"}, where="t") == "a 1 b 2"
    with pytest.raises(WorkflowSpecError, match="unknown variable"):
        substitute("{{workflow.parameters.nope}}", {}, where="t")
    # Expression tags (expr, exprlang): a missing variable is an error (expression_template.go).
    with pytest.raises(WorkflowSpecError, match="workflow is missing"):
        substitute("{{=workflow.name}}", {}, where="t")


def test_expression_tags_see_the_same_variables_as_simple_tags():
    from bioinfra.executor.expressions import ABSENT, ITEM

    scope = {"workflow.name": "wf", "inputs.parameters.n": "3", "tasks.p.outputs.parameters.m": ABSENT}
    assert substitute("{{=workflow.name}}-{{inputs.parameters.n}}", scope, where="t") == "wf-3"
    assert substitute("{{=asInt(inputs.parameters.n) + 1}}", scope, where="t") == "4"
    # An absent optional reads as nil, so ?? gives the fallback (dag.go's nil-preserving view).
    assert substitute("{{=tasks.p.outputs.parameters.m ?? 'fb'}}", scope, where="t") == "fb"
    assert substitute("{{=item.k}}", {ITEM: {"k": "v"}}, where="t") == "v"
    # A value holding a tag stays data: text a tag puts in is never evaluated again.
    assert substitute("{{=inputs.parameters.x}}", {"inputs.parameters.x": "{{=1+1}}"}, where="t") == "{{=1+1}}"


@pytest.mark.parametrize(
    "expr, phases, expected",
    [
        ("a && b", {"a": "Succeeded", "b": "Skipped"}, True),  # bare name = Succeeded|Skipped|Daemoned
        ("a && b", {"a": "Succeeded", "b": "Failed"}, False),
        ("a.Succeeded", {"a": "Skipped"}, False),
        ("a || b.Failed", {"a": "Failed", "b": "Failed"}, True),
        ("fastqc-r1 && fastqc-r2 && (stats.Succeeded || align.Skipped)",
         {"fastqc-r1": "Succeeded", "fastqc-r2": "Succeeded", "stats": "Omitted", "align": "Skipped"}, True),
        ("!a.Failed && b", {"a": "Failed", "b": "Succeeded"}, False),
        # The staging gate: inputs are in place whether stage-in ran (cluster) or was Skipped (local).
        ("(stage-in.Succeeded || stage-in.Skipped)", {"stage-in": "Skipped"}, True),
        ("(stage-in.Succeeded || stage-in.Skipped)", {"stage-in": "Succeeded"}, True),
        ("(stage-in.Succeeded || stage-in.Skipped)", {"stage-in": "Failed"}, False),
        ("(stage-in.Succeeded || stage-in.Skipped)", {"stage-in": "Omitted"}, False),
    ],
)
def test_depends(expr, phases, expected):
    assert evaluate_depends(expr, phases) is expected


def test_depends_tasks_and_unknown_task():
    assert depends_tasks("a && (b.Succeeded || c-1.Skipped) && a") == ["a", "b", "c-1"]
    with pytest.raises(WorkflowSpecError, match="unknown task"):
        evaluate_depends("x", {})


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("'PASS' != 'FAIL' && 'WARN' != 'FAIL'", True),
        ("'PASS' != 'FAIL' && 'FAIL' != 'FAIL'", False),
        ("2 > 1", True),
        ("true", True),
        ("!(1 == 1) || false", False),
        ("'' != ''", False),  # an empty stage-in/stage-out parameter: the task is Skipped
        ("':s3,provider=AWS,env_auth=true:b/k\tinputs/x/a.fq\n:gcs,env_auth=true:b/k2\tinputs/x/b.fq' != ''", True),
    ],
)
def test_when(expr, expected):
    assert evaluate_when(expr) is expected


def test_when_syntax_error():
    with pytest.raises(WorkflowSpecError):
        evaluate_when("'a' == ")


def test_govaluate_in_membership():
    # govaluate's `in` over a parenthesised list (Argo's `when`, e.g. steps-when-expr-filter.yaml).
    from bioinfra.executor.expressions import evaluate_when

    assert evaluate_when('"a" in ("b", "a")') is True
    assert evaluate_when("'x' in ('b', '')") is False
