"""The tree engine (bioinfra/executor/tree.py): steps templates and templates calling templates, as
Argo v3.7.18 runs them (workflow/controller/steps.go, dag.go), on small Workflows of real bash steps."""

from __future__ import annotations

import json

from bioinfra.executor.workflow import parse_workflow
from tests.unit.test_executor import run, step


def steps_workflow(groups: list[list[dict]], templates: list[dict], *, entry_extra: dict | None = None,
                   parameters: dict | None = None) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "wf"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in (parameters or {}).items()]},
            "volumes": [{"name": "ws", "emptyDir": {}}],
            "templates": [{"name": "main", "steps": groups, **(entry_extra or {})}, *templates],
        },
    }


def test_groups_run_in_order_steps_of_a_group_together_and_outputs_flow(tmp_path):
    # steps.go executeSteps: group after group; each step's outputs join the scope as steps.<name>.*.
    doc = steps_workflow(
        [[{"name": "a", "template": "w", "arguments": {"parameters": [{"name": "f", "value": "a"}]}},
          {"name": "b", "template": "w", "arguments": {"parameters": [{"name": "f", "value": "b"}]}}],
         [{"name": "c", "template": "cat",
           "arguments": {"parameters": [{"name": "x", "value": "{{steps.a.outputs.parameters.v}}"},
                                        {"name": "y", "value": "{{steps.b.outputs.result}}"}]}}]],
        [step("w", "until [ -e a.started ] && [ -e b.started ]; do touch {{inputs.parameters.f}}.started; "
                   "sleep 0.05; done; echo {{inputs.parameters.f}}-out > {{inputs.parameters.f}}.v; echo said-{{inputs.parameters.f}}\n",
              params=["f"], out_params={"v": "/ws/{{inputs.parameters.f}}.v"}),
         step("cat", "printf '%s %s' '{{inputs.parameters.x}}' '{{inputs.parameters.y}}' > seen\n", params=["x", "y"])],
    )
    result, ws = run(doc, tmp_path)
    assert result.phase == "Succeeded", {n: (t.phase, t.message) for n, t in result.tasks.items()}
    assert (ws / "seen").read_text() == "a-out said-b"
    assert result.tasks["wf"].phase == "Succeeded" and result.tasks["c"].phase == "Succeeded"


def test_a_failed_step_fails_the_steps_node_and_later_groups_never_start(tmp_path):
    # steps.go executeStepGroup: a Failed child without continueOn fails the group; executeSteps
    # fails the steps node with it and returns.
    doc = steps_workflow([[{"name": "bad", "template": "bad"}], [{"name": "later", "template": "ok"}]],
                         [step("bad", "exit 2\n"), step("ok", "touch later\n")])
    result, ws = run(doc, tmp_path)
    assert result.phase == "Failed" and result.tasks["wf"].phase == "Failed"
    assert "later" not in result.tasks and not (ws / "later").exists()
    assert {t.name for t in result.failed_steps} == {"bad", "wf"}


def test_continue_on_failed_lets_the_steps_go_on(tmp_path):
    # WorkflowStep.ContinuesOn: continueOn.failed tolerates Failed (not Error).
    doc = steps_workflow([[{"name": "bad", "template": "bad", "continueOn": {"failed": True}}],
                          [{"name": "later", "template": "ok"}]],
                         [step("bad", "exit 2\n"), step("ok", "touch later\n")])
    result, ws = run(doc, tmp_path)
    assert result.tasks["bad"].phase == "Failed" and result.tasks["later"].phase == "Succeeded"
    assert result.phase == "Succeeded" and (ws / "later").exists()
    doc["spec"]["templates"][0]["steps"][0][0]["continueOn"] = {"error": True}
    result, _ = run(doc, tmp_path / "again")
    assert result.phase == "Failed"


def test_fan_out_with_when_per_item_and_aggregated_outputs(tmp_path):
    # steps.go expandStepGroup; processAggregateNodeOutputs.
    doc = steps_workflow(
        [[{"name": "sq", "template": "sq", "withItems": [1, 2, 3], "when": "{{item}} != 2",
           "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]}}],
         [{"name": "sum", "template": "sum",
           "arguments": {"parameters": [{"name": "xs", "value": "{{steps.sq.outputs.result}}"}]}}]],
        [step("sq", "echo $(( {{inputs.parameters.x}} * {{inputs.parameters.x}} ))\n", params=["x"]),
         step("sum", "printf '%s' '{{inputs.parameters.xs}}' > xs\n", params=["xs"])],
    )
    result, ws = run(doc, tmp_path)
    assert result.tasks["sq(1:2)"].phase == "Skipped"
    assert json.loads((ws / "xs").read_text()) == [1, 9]


def test_templates_call_templates_at_any_depth_with_arguments_and_outputs(tmp_path):
    # A steps entrypoint calls a dag, whose task calls a steps template; each passes arguments down
    # and exports an output up (valueFrom.parameter, getTemplateOutputsFromScope).
    inner = {"name": "inner", "inputs": {"parameters": [{"name": "n"}]},
             "outputs": {"parameters": [{"name": "o", "valueFrom": {"parameter": "{{steps.leaf.outputs.result}}"}}]},
             "steps": [[{"name": "leaf", "template": "echo",
                         "arguments": {"parameters": [{"name": "x", "value": "inner-{{inputs.parameters.n}}"}]}}]]}
    middle = {"name": "middle", "inputs": {"parameters": [{"name": "n"}]},
              "outputs": {"parameters": [{"name": "o", "valueFrom": {"parameter": "{{tasks.t.outputs.parameters.o}}"}}]},
              "dag": {"tasks": [{"name": "t", "template": "inner",
                                 "arguments": {"parameters": [{"name": "n", "value": "{{inputs.parameters.n}}"}]}}]}}
    doc = steps_workflow(
        [[{"name": "m", "template": "middle", "arguments": {"parameters": [{"name": "n", "value": "{{workflow.parameters.n}}"}]}}],
         [{"name": "show", "template": "keep", "arguments": {"parameters": [{"name": "x", "value": "{{steps.m.outputs.parameters.o}}"}]}}]],
        [inner, middle, step("echo", "echo {{inputs.parameters.x}}\n", params=["x"]),
         step("keep", "printf '%s' '{{inputs.parameters.x}}' > kept\n", params=["x"])],
        parameters={"n": "7"},
    )
    assert parse_workflow(doc).tree
    result, ws = run(doc, tmp_path)
    assert result.phase == "Succeeded", {n: (t.phase, t.message) for n, t in result.tasks.items()}
    assert (ws / "kept").read_text() == "inner-7"
    assert result.tasks["m"].phase == "Succeeded" and result.tasks["leaf"].phase == "Succeeded"


def test_a_skipped_steps_output_default_or_an_error(tmp_path):
    # functional_test.go TestStepsSkippedProducerOutputDefault / absent optional without default.
    prod = step("prod", "echo real > out\n", out_params={"m": "/ws/out"})
    prod["outputs"]["parameters"][0]["valueFrom"]["default"] = "dflt"
    doc = steps_workflow(
        [[{"name": "p", "template": "prod", "when": "false"}],
         [{"name": "c", "template": "keep",
           "arguments": {"parameters": [{"name": "x", "value": "{{steps.p.outputs.parameters.m}}"}]}}]],
        [prod, step("keep", "printf '%s' '{{inputs.parameters.x}}' > kept\n", params=["x"])],
    )
    result, ws = run(doc, tmp_path)
    assert result.tasks["p"].phase == "Skipped" and (ws / "kept").read_text() == "dflt"
    del prod["outputs"]["parameters"][0]["valueFrom"]["default"]
    result, _ = run(doc, tmp_path / "again")
    assert result.tasks["c"].phase == "Error" and result.phase == "Failed"


def test_an_empty_with_param_step_is_skipped(tmp_path):
    doc = steps_workflow(
        [[{"name": "gen", "template": "gen"}],
         [{"name": "each", "template": "ok", "withParam": "{{steps.gen.outputs.result}}"}]],
        [step("gen", "echo '[]'\n"), step("ok", "true\n")],
    )
    result, _ = run(doc, tmp_path)
    assert result.tasks["each"].phase == "Skipped" and result.phase == "Succeeded"


def test_a_nested_dag_decides_its_phase_as_assess_dag_phase_does(tmp_path):
    dag = {"name": "d", "dag": {"tasks": [{"name": "x", "template": "bad"},
                                          {"name": "y", "template": "ok", "depends": "x.Failed"}]}}
    doc = steps_workflow([[{"name": "run-dag", "template": "d"}]], [dag, step("bad", "exit 1\n"), step("ok", "true\n")])
    result, _ = run(doc, tmp_path)
    # y (the leaf) ran on x's failure and succeeded: the DAG, and the Workflow, succeed.
    assert result.tasks["y"].phase == "Succeeded" and result.tasks["run-dag"].phase == "Succeeded"
    assert result.phase == "Succeeded"


def test_a_templates_own_input_values_may_use_earlier_inputs(tmp_path):
    # SubstituteParams: a template's input value/default is substituted with the globals and the
    # inputs before it (steps-when-expr-filter.yaml's `list` from `test`).
    doc = steps_workflow(
        [[{"name": "s", "template": "keep", "arguments": {"parameters": [{"name": "x", "value": "{{inputs.parameters.b}}"}]}}]],
        [step("keep", "printf '%s' '{{inputs.parameters.x}}' > kept\n", params=["x"])],
        entry_extra={"inputs": {"parameters": [{"name": "a", "value": "1"},
                                               {"name": "b", "value": "{{=asInt(inputs.parameters.a) + 1}}-{{workflow.name}}"}]}},
    )
    result, ws = run(doc, tmp_path)
    assert (ws / "kept").read_text() == "2-wf"


def test_a_steps_output_from_an_expression(tmp_path):
    # scope.go wfScope.resolveParameter / operator.go getTemplateOutputsFromScope (examples/
    # conditional-parameters.yaml): valueFrom.expression is expr over the node's scope; its value is
    # fmt "%v" text; nil is an error that valueFrom.default stands in for, else the node is Error.
    def doc_with(outputs: list[dict]) -> dict:
        return steps_workflow(
            [[{"name": "flip", "template": "say"}],
             [{"name": "heads", "template": "say", "when": "{{steps.flip.outputs.result}} == heads"},
              {"name": "tails", "template": "say", "when": "{{steps.flip.outputs.result}} == tails"}]],
            [step("say", "echo heads\n")], entry_extra={"outputs": {"parameters": outputs}})

    doc = doc_with([
        {"name": "r", "valueFrom": {"expression":
                                    "steps.flip.outputs.result == 'heads' ? steps.heads.outputs.result : 'no'"}},
        {"name": "n", "valueFrom": {"expression": "len(steps.flip.outputs.result) + 1"}},
        {"name": "d", "valueFrom": {"expression": "nil", "default": "fallback"}},
    ])
    result, _ = run(doc, tmp_path)
    assert result.tasks["tails"].phase == "Skipped"
    assert result.tasks["wf"].output_parameters == {"r": "heads", "n": "6", "d": "fallback"}
    result, _ = run(doc_with([{"name": "x", "valueFrom": {"expression": "nil"}}]), tmp_path / "nil")
    assert result.tasks["wf"].phase == "Error" and "failed to evaluate" in result.tasks["wf"].message


def _inline(source: str, **kw) -> dict:
    """A step() template as an inline body (no name: Argo's inline templates have none)."""
    body = step("x", source, **kw)
    body.pop("name")
    return body


def test_inline_templates_run_in_place_nested_with_arguments_and_outputs(tmp_path):
    # templateresolution/context.go resolveTemplateImpl: an inline template is the holder's own
    # (DAGTask/WorkflowStep.GetTemplate); it takes the holder's arguments and yields its outputs, and it
    # may hold inline templates itself. A user template named like the step does not collide with it.
    doc = steps_workflow(
        [[{"name": "a", "inline": _inline("echo -n from-a > a.v\n", out_params={"v": "/ws/a.v"})}],
         [{"name": "b", "arguments": {"parameters": [{"name": "x", "value": "{{steps.a.outputs.parameters.v}}"}]},
           "inline": {"inputs": {"parameters": [{"name": "x"}]}, "dag": {"tasks": [
               {"name": "c", "arguments": {"parameters": [{"name": "y", "value": "{{inputs.parameters.x}}"}]},
                "inline": _inline("printf '%s' '{{inputs.parameters.y}}' > seen\n", params=["y"])}]}}}],
         [{"name": "d", "template": "a"}]],
        [step("a", "touch user-a\n")],
    )
    result, ws = run(doc, tmp_path)
    assert result.phase == "Succeeded", {n: (t.phase, t.message) for n, t in result.tasks.items()}
    assert (ws / "seen").read_text() == "from-a" and (ws / "user-a").exists()


def test_an_inline_dag_task_runs_on_the_flat_runner(tmp_path):
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "wf"},
           "spec": {"entrypoint": "main", "volumes": [{"name": "ws", "emptyDir": {}}],
                    "templates": [{"name": "main", "dag": {"tasks": [
                        {"name": "a", "inline": _inline("touch a\n")},
                        {"name": "b", "depends": "a", "inline": _inline("touch b\n")}]}}]}}
    assert not parse_workflow(doc).tree
    result, ws = run(doc, tmp_path)
    assert result.phase == "Succeeded" and (ws / "a").exists() and (ws / "b").exists()


def test_what_an_inline_template_uses_that_the_executor_does_not_run_is_rejected():
    import pytest

    from bioinfra.errors import WorkflowSpecError

    body = {**_inline("true\n"), "daemon": True}
    doc = steps_workflow([[{"name": "a", "inline": body}]], [])
    with pytest.raises(WorkflowSpecError, match="uses daemon, which the local executor does not run"):
        parse_workflow(doc)
    doc = steps_workflow([[{"name": "a", "template": "t", "inline": _inline("true\n")}]], [step("t", "true\n")])
    with pytest.raises(WorkflowSpecError, match="names a template and an inline template"):
        parse_workflow(doc)


def test_a_failed_inline_nodes_failure_has_no_template_name(tmp_path):
    # operator.go initializeNode: TemplateName is orgTmpl.GetTemplateName(), the holder's empty
    # template field for an inline template; failedNodeStatus copies it into workflow.failures.
    doc = steps_workflow([[{"name": "bad", "inline": _inline("exit 3\n")}]],
                         [step("exit", "printf '%s' '{{workflow.failures}}' > failures\n")],
                         )
    doc["spec"]["onExit"] = "exit"
    result, ws = run(doc, tmp_path)
    assert result.phase == "Failed"
    failures = {f["displayName"]: f for f in json.loads((ws / "failures").read_text())}
    assert failures["bad"]["templateName"] == ""
