"""Exit hooks as Argo v3.7.18 runs them (issue #16): spec.hooks.exit / spec.onExit and a step's or
task's hooks.exit / onExit, on small Workflows of real bash steps.

Go source: workflow/controller/operator.go operate (the Workflow's exit handler, node
"<workflow>.onExit"), exit_handler.go runOnExitNode / resolveExitTmplArgument (a node's exit hook,
node "<node>.onExit"), steps.go executeStepGroup and dag.go processTask (when it runs),
pkg/apis/workflow/v1alpha1/workflow_types.go GetExitHook / LifecycleHook.WithArgs.
"""

from __future__ import annotations

import pytest

from bioinfra.errors import WorkflowSpecError
from bioinfra.executor.workflow import parse_workflow
from tests.unit.test_executor import run, step, workflow
from tests.unit.test_executor_tree import steps_workflow


def _say(name: str, params: list[str], body: str) -> dict:
    return step(name, body, params=params)


def test_spec_hooks_exit_is_the_workflows_exit_handler_with_its_own_arguments(tmp_path):
    # operator.go operate + WorkflowSpec.GetExitHook (functional_test.go TestWorkflowHookParameterTemplates):
    # hooks.exit runs as "<workflow>.onExit"; its arguments see workflow.status (expression tags too).
    doc = workflow([{"name": "a", "template": "ok"}],
                   [step("ok", "true\n"),
                    _say("exit", ["s", "t"], "printf '%s %s' '{{inputs.parameters.s}}' '{{inputs.parameters.t}}' > seen\n")])
    doc["metadata"] = {"name": "wf"}
    doc["spec"]["hooks"] = {"exit": {"template": "exit", "arguments": {"parameters": [
        {"name": "s", "value": "{{workflow.status}}"},
        {"name": "t", "value": '{{= workflow.status == "Succeeded" ? "yes" : "no" }}'}]}}}
    result, ws = run(doc, tmp_path)
    assert result.tasks["wf.onExit"].phase == "Succeeded" and (ws / "seen").read_text() == "Succeeded yes"


def test_without_arguments_the_exit_handler_gets_the_workflows(tmp_path):
    # LifecycleHook.WithArgs: a hook with no arguments is given spec.arguments.
    doc = workflow([{"name": "a", "template": "ok"}],
                   [step("ok", "true\n"), _say("exit", ["p"], "printf '%s' '{{inputs.parameters.p}}' > seen\n")],
                   parameters={"p": "from-spec"})
    doc["metadata"] = {"name": "wf"}
    doc["spec"]["hooks"] = {"exit": {"template": "exit"}}
    result, ws = run(doc, tmp_path)
    assert (ws / "seen").read_text() == "from-spec"


def test_a_steps_exit_hook_reads_its_outputs_and_runs_before_the_next_group(tmp_path):
    # steps.go executeStepGroup -> runOnExitNode: after the step's node completes, "<node>.onExit" runs
    # with steps.<name>.outputs.* in its arguments (resolveExitTmplArgument); the group waits for it.
    doc = steps_workflow(
        [[{"name": "s1", "template": "prod",
           "hooks": {"exit": {"template": "exit", "arguments": {"parameters": [
               {"name": "m", "value": "{{steps.s1.outputs.parameters.msg}} {{steps.s1.status}}"}]}}}}],
         [{"name": "s2", "template": "after"}]],
        [step("prod", "printf hello > out.txt\n", out_params={"msg": "/ws/out.txt"}),
         _say("exit", ["m"], "printf '%s' '{{inputs.parameters.m}}' > hooked\n"),
         step("after", "cat hooked > after\n")])
    result, ws = run(doc, tmp_path)
    assert result.tasks["s1.onExit"].phase == "Succeeded"
    assert (ws / "after").read_text() == "hello Succeeded" and result.phase == "Succeeded"


def test_a_tasks_on_exit_runs_after_a_failure_and_a_failed_hook_changes_no_phase(tmp_path):
    # dag.go processTask: a completed task's exit hook runs (Failed too); only the Workflow's own
    # exit handler decides the Workflow's phase (operator.go operate), not a task's hook.
    doc = workflow([{"name": "a", "template": "bad", "onExit": "exit"},
                    {"name": "b", "template": "ok", "onExit": "failing"}],
                   [step("bad", "exit 1\n"), step("ok", "true\n"),
                    step("exit", "echo ran > exit-ran\n"), step("failing", "exit 3\n")])
    result, ws = run(doc, tmp_path)
    assert result.tasks["a"].phase == "Failed" and result.tasks["a.onExit"].phase == "Succeeded"
    assert (ws / "exit-ran").is_file()
    assert result.tasks["b"].phase == "Succeeded" and result.tasks["b.onExit"].phase == "Failed"
    assert result.argo_phase == "Failed"  # from a, as without hooks
    doc["spec"]["templates"][0]["dag"]["tasks"] = [doc["spec"]["templates"][0]["dag"]["tasks"][1]]
    result, _ = run(doc, tmp_path / "only-b")
    assert result.tasks["b.onExit"].phase == "Failed" and result.argo_phase == "Succeeded"


@pytest.mark.parametrize("hooks", [{"running": {"template": "ok", "expression": "true"}},
                                   {"exit": {"template": "ok", "expression": "true"}}])
def test_hooks_run_on_an_expression_are_rejected(hooks):
    doc = workflow([{"name": "a", "template": "ok", "hooks": hooks}], [step("ok", "true\n")])
    with pytest.raises(WorkflowSpecError, match="hooks run on an expression"):
        parse_workflow(doc)
    doc = workflow([{"name": "a", "template": "ok"}], [step("ok", "true\n")])
    doc["spec"]["hooks"] = hooks
    with pytest.raises(WorkflowSpecError, match="spec uses hooks run on an expression"):
        parse_workflow(doc)
