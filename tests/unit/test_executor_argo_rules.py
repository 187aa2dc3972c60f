"""The local executor decides as Argo v3.7.18 does (issue #16), on small Workflows of real bash steps.

Each case states the rule and where Argo implements or tests it (workflow/controller/*.go,
test/e2e/functional_test.go); the Workflows are our own, written for these facts.
"""

from __future__ import annotations

import json
import time

import pytest

from bioinfra.errors import WorkflowSpecError
from bioinfra.executor.runner import POD_DEADLINE_MESSAGE, WORKFLOW_DEADLINE_MESSAGE
from bioinfra.executor.workflow import parse_workflow
from tests.unit.test_executor import run, step, workflow


def _producer(name: str, *, default: str | None = None) -> dict:
    t = step(name, "printf real > out.txt\n", out_params={"msg": "/ws/out.txt"})
    if default is not None:
        t["outputs"]["parameters"][0]["valueFrom"]["default"] = default
    return t


def test_an_omitted_producers_output_without_default_makes_the_consumer_error(tmp_path):
    # functional_test.go TestDAGOmittedOutputRef; dag.go resolveDependencyReferences: the consumer's
    # node is an Error (not an aborted run) and, as the target, makes the Workflow Error.
    doc = workflow(
        [{"name": "a", "template": "ok"},
         {"name": "b", "template": "prod", "depends": "a.Failed"},
         {"name": "c", "template": "cons", "depends": "a && (b || b.Omitted)",
          "arguments": {"parameters": [{"name": "m", "value": "{{tasks.b.outputs.parameters.msg}}"}]}}],
        [step("ok", "true\n"), _producer("prod"), step("cons", "echo '{{inputs.parameters.m}}'\n", params=["m"])],
    )
    result, _ = run(doc, tmp_path)
    assert result.tasks["b"].phase == "Omitted"
    assert result.tasks["c"].phase == "Error" and "absent optional" in result.tasks["c"].message
    assert result.argo_phase == "Error" and result.phase == "Failed"
    assert [t.name for t in result.failed_steps] == ["c"]


def test_a_skipped_producers_default_reaches_the_consumer(tmp_path):
    # functional_test.go TestDAGSkippedProducerOutputDefault: valueFrom.default stands in for the output.
    doc = workflow(
        [{"name": "p", "template": "prod", "when": "false"},
         {"name": "c", "template": "cons", "depends": "p.Succeeded || p.Skipped",
          "arguments": {"parameters": [{"name": "m", "value": "got {{tasks.p.outputs.parameters.msg}}"}]}}],
        [_producer("prod", default="fallback"), step("cons", "printf '%s' '{{inputs.parameters.m}}' > seen\n",
                                                      params=["m"])],
    )
    result, ws = run(doc, tmp_path)
    assert result.tasks["p"].phase == "Skipped" and result.argo_phase == "Succeeded"
    assert (ws / "seen").read_text() == "got fallback"


def test_a_consumer_input_default_applies_to_an_absent_pure_reference(tmp_path):
    # functional_test.go TestDAGSkippedConsumerInputDefault; dag.go markAbsentOptionalArgs.
    cons = step("cons", "printf '%s' '{{inputs.parameters.m}}' > seen\n")
    cons["inputs"] = {"parameters": [{"name": "m", "default": "from-input"}]}
    doc = workflow(
        [{"name": "p", "template": "prod", "when": "false"},
         {"name": "c", "template": "cons", "depends": "p.Succeeded || p.Skipped",
          "arguments": {"parameters": [{"name": "m", "value": "{{tasks.p.outputs.parameters.msg}}"}]}}],
        [_producer("prod"), cons],
    )
    result, ws = run(doc, tmp_path)
    assert result.tasks["c"].phase == "Succeeded" and (ws / "seen").read_text() == "from-input"


def test_an_empty_with_param_is_skipped(tmp_path):
    # dag.go executeDAGTask: "DAG task with empty withParams list should be skipped";
    # functional_test.go TestDAGEmptyParam.
    doc = workflow(
        [{"name": "gen", "template": "gen"},
         {"name": "each", "template": "echo", "depends": "gen", "withParam": "{{tasks.gen.outputs.result}}",
          "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]}}],
        [step("gen", "echo '[]'\n"), step("echo", "echo {{inputs.parameters.x}}\n", params=["x"])],
    )
    result, _ = run(doc, tmp_path)
    assert result.tasks["each"].phase == "Skipped" and result.phase == "Succeeded"


def test_outputs_result_and_aggregated_fan_out_outputs(tmp_path):
    # operator.go processAggregateNodeOutputs / aggregatedJSONValueList: a fan-out's output parameter
    # is the JSON list of its children's values; outputs.result is what the step printed.
    doc = workflow(
        [{"name": "each", "template": "sq", "withItems": [1, 2, 3],
          "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]}},
         {"name": "sum", "template": "sum", "depends": "each",
          "arguments": {"parameters": [{"name": "xs", "value": "{{tasks.each.outputs.parameters.v}}"},
                                       {"name": "rs", "value": "{{tasks.each.outputs.result}}"}]}},
         {"name": "gate", "template": "sum2", "depends": "sum",
          "when": "'{{tasks.sum.outputs.result}}' == 'done'",
          "arguments": {"parameters": [{"name": "xs", "value": "{{tasks.sum.exitCode}}"}]}}],
        [step("sq", "echo $(( {{inputs.parameters.x}} * 10 )); echo {{inputs.parameters.x}} > v\n",
              params=["x"], out_params={"v": "/ws/v"}),
         step("sum", "printf '%s|%s' '{{inputs.parameters.xs}}' '{{inputs.parameters.rs}}' > agg; echo done\n",
              params=["xs", "rs"]),
         step("sum2", "printf '%s' '{{inputs.parameters.xs}}' > code\n", params=["xs"])],
    )
    # The children write the same file one after another (one CPU): each reads its own value.
    result, ws = run(doc, tmp_path, cpus=1)
    assert result.phase == "Succeeded", {n: t.message for n, t in result.tasks.items()}
    xs, rs = (ws / "agg").read_text().split("|")
    assert json.loads(xs) == [1, 2, 3] and json.loads(rs) == [10, 20, 30]
    assert result.tasks["gate"].phase == "Succeeded" and (ws / "code").read_text() == "0"


def test_all_children_skipped_make_a_succeeded_group(tmp_path):
    # dag.go executeDAGTask groupPhase: Succeeded unless a child Failed or Errored.
    doc = workflow(
        [{"name": "each", "template": "noop", "withItems": ["a", "b"], "when": "'{{item}}' == 'c'"}],
        [step("noop", "true\n")],
    )
    result, _ = run(doc, tmp_path)
    assert [result.tasks[f"each({i}:{x})"].phase for i, x in enumerate("ab")] == ["Skipped", "Skipped"]
    assert result.tasks["each"].phase == "Succeeded" and result.phase == "Succeeded"


def test_fail_fast_does_not_stop_independent_tasks(tmp_path):
    # dag.go executeDAG: every task whose dependencies are complete is created before assessDAGPhase,
    # which stays Running while a node runs (functional_test.go TestDAGDepends: should-execute-1 runs
    # after F failed).
    doc = workflow(
        [{"name": "p", "template": "slow"}, {"name": "f", "template": "bad"},
         {"name": "after", "template": "ok", "depends": "p && (f.Succeeded || f.Failed)"}],
        [step("slow", "sleep 0.3\n"), step("bad", "exit 1\n"), step("ok", "touch ran\n")],
    )
    result, ws = run(doc, tmp_path)
    assert result.tasks["after"].phase == "Succeeded" and (ws / "ran").exists()
    assert result.phase == "Succeeded"  # the only target succeeded: the failure was handled


def test_template_active_deadline_fails_the_node_with_the_kubelets_message(tmp_path):
    t = step("slow", "sleep 30\n")
    t["activeDeadlineSeconds"] = 1
    doc = workflow([{"name": "s", "template": "slow"}], [t])
    start = time.monotonic()
    result, _ = run(doc, tmp_path)
    assert time.monotonic() - start < 15
    assert result.tasks["s"].phase == "Failed" and result.tasks["s"].message == POD_DEADLINE_MESSAGE
    assert result.phase == "Failed"


def test_workflow_active_deadline_stops_running_steps_and_fails(tmp_path):
    # operator.go: past spec.activeDeadlineSeconds running steps are stopped ("Step exceeded its
    # deadline") and the Workflow ends Failed; nothing new starts.
    doc = workflow([{"name": "s", "template": "slow"}, {"name": "next", "template": "ok", "depends": "s"}],
                   [step("slow", "sleep 30\n"), step("ok", "true\n")])
    doc["spec"]["activeDeadlineSeconds"] = 1
    start = time.monotonic()
    result, _ = run(doc, tmp_path)
    assert time.monotonic() - start < 15
    assert result.tasks["s"].phase == "Failed" and result.tasks["s"].message == WORKFLOW_DEADLINE_MESSAGE
    assert result.tasks["next"].phase != "Succeeded"
    assert result.phase == "Failed" and not result.interrupted


@pytest.mark.parametrize(("policy", "attempts"), [("OnFailure", 3), ("Always", 3), ("OnError", 1),
                                                   ("OnTransientError", 1)])
def test_retry_policy_decides_whether_a_failed_step_is_retried(tmp_path, policy, attempts):
    # operator.go processNodeRetries: OnError/OnTransientError retry only Errors; a failed local step is Failed.
    t = step("bad", "exit 1\n", retries=2)
    t["retryStrategy"]["retryPolicy"] = policy
    result, _ = run(workflow([{"name": "b", "template": "bad"}], [t]), tmp_path)
    assert result.tasks["b"].phase == "Failed" and result.tasks["b"].attempts == attempts


def test_a_pod_template_as_entrypoint_is_the_workflows_one_node(tmp_path):
    # operator.go: the entrypoint may be any template; a pod's phase is the Workflow's.
    doc = workflow([], [step("hello", "echo {{inputs.parameters.who}} > said\n", params=["who"])],
                   parameters={"who": "world"})
    doc["spec"]["entrypoint"] = "hello"
    result, ws = run(doc, tmp_path)
    assert result.phase == "Succeeded" and (ws / "said").read_text() == "world\n"
    doc["spec"]["templates"][1]["script"]["source"] = "exit 1\n"
    result, _ = run(doc, tmp_path / "again")
    assert result.phase == "Failed"


def test_the_entrypoints_inputs_and_a_target_from_a_parameter(tmp_path):
    doc = workflow([{"name": "a", "template": "ok"}, {"name": "b", "template": "ok"}], [step("ok", "true\n")],
                   parameters={"target": "b"})
    doc["spec"]["templates"][0]["inputs"] = {"parameters": [{"name": "target"}]}
    doc["spec"]["templates"][0]["dag"]["target"] = "{{inputs.parameters.target}}"
    result, _ = run(doc, tmp_path)
    assert list(result.tasks) == ["b"] and result.phase == "Succeeded"


@pytest.mark.parametrize(("change", "named"), [
    (lambda d: d["spec"]["templates"][1].update(outputs={"artifacts": [{"name": "a", "path": "/ws/a"}]}),
     "template 'ok' uses artifacts"),
    (lambda d: d["spec"]["templates"][1].update(timeout="10s"), "template 'ok' uses timeout"),
    (lambda d: d["spec"].update(hooks={"running": {"template": "ok", "expression": "true"}}), "spec uses hooks"),
    (lambda d: d["spec"]["templates"][1]["container"].update(tty=True) if "container" in d["spec"]["templates"][1]
     else d["spec"]["templates"][1]["script"].update(tty=True), "uses tty"),
    (lambda d: d["spec"]["templates"][1].update(resource={"action": "create"}), "uses resource"),
])
def test_what_it_cannot_run_is_rejected_up_front_naming_it(change, named):
    doc = workflow([{"name": "a", "template": "ok"}], [step("ok", "true\n")])
    change(doc)
    with pytest.raises(WorkflowSpecError, match=named):
        parse_workflow(doc)


def test_expression_tags_in_when_and_arguments(tmp_path):
    # functional_test.go TestDAGWhenExprSkip: an expression-form `when` false makes the task Skipped.
    doc = workflow(
        [{"name": "a", "template": "keep", "arguments": {"parameters": [{"name": "x", "value": "{{=asInt(workflow.parameters.n) * 2}}"}]}},
         {"name": "b", "template": "keep", "depends": "a", "when": "{{= workflow.parameters.n == '0'}}",
          "arguments": {"parameters": [{"name": "x", "value": "never"}]}}],
        [step("keep", "printf '%s' '{{inputs.parameters.x}}' > kept\n", params=["x"])],
        parameters={"n": "21"},
    )
    result, ws = run(doc, tmp_path)
    assert result.tasks["b"].phase == "Skipped" and (ws / "kept").read_text() == "42"


def test_retry_expression_decides_whether_to_retry(tmp_path):
    # operator.go processNodeRetries with retryStrategy.expression over lastRetry.* (strings).
    t = step("bad", "echo x >> tries; exit 3\n", retries=3)
    t["retryStrategy"]["expression"] = "asInt(lastRetry.exitCode) == 3 && asInt(retries) < 1"
    result, ws = run(workflow([{"name": "b", "template": "bad"}], [t]), tmp_path)
    assert result.tasks["b"].attempts == 2 and len((ws / "tries").read_text().split()) == 2


def test_the_exit_handler_runs_after_the_entrypoint_with_workflow_status(tmp_path):
    # operator.go operate: spec.onExit runs as "<workflow>.onExit" once the entrypoint is done, with
    # workflow.status and workflow.failures; the Workflow keeps the entrypoint's phase.
    doc = workflow([{"name": "a", "template": "bad"}],
                   [step("bad", "exit 1\n"),
                    step("exit", "printf '%s' '{{workflow.status}}' > status; printf '%s' '{{workflow.failures}}' > failures\n")])
    doc["metadata"] = {"name": "wf"}
    doc["spec"]["onExit"] = "exit"
    result, ws = run(doc, tmp_path)
    assert result.tasks["wf.onExit"].phase == "Succeeded"
    assert (ws / "status").read_text() == "Failed" and result.phase == "Failed"
    assert sorted(f["displayName"] for f in json.loads((ws / "failures").read_text())) == ["a", "wf"]


def test_a_failed_exit_handler_fails_a_succeeded_workflow(tmp_path):
    doc = workflow([{"name": "a", "template": "ok"}], [step("ok", "true\n"), step("exit", "exit 1\n")])
    doc["metadata"] = {"name": "wf"}
    doc["spec"]["onExit"] = "exit"
    result, _ = run(doc, tmp_path)
    assert result.tasks["a"].phase == "Succeeded" and result.tasks["wf.onExit"].phase == "Failed"
    assert result.phase == "Failed" and result.argo_phase == "Failed"


def _no_retry(t: dict) -> dict:
    t.pop("retryStrategy", None)
    return t


def test_spec_retry_strategy_is_the_default_of_every_template_without_one(tmp_path):
    # operator.go wfOperationCtx.retryStrategy: a template's own retryStrategy, else spec.retryStrategy,
    # for steps/dag templates too (executeTemplate makes a Retry node "<node>" whose attempts are
    # "<node>(0)", "<node>(1)", ...: functional_test.go TestParameterAggregationDAGWithRetry asserts
    # "parameter-aggregation-dag-with-retry(0)"). A pod's own retryStrategy (limit 0) wins.
    doc = workflow([{"name": "flaky", "template": "flaky"}, {"name": "once", "template": "once"}],
                   [_no_retry(step("flaky", "echo x >> tries; [ $(wc -l < tries) -ge 2 ]\n")),
                    step("once", "echo y >> once; exit 1\n")])
    doc["metadata"] = {"name": "wf"}
    doc["spec"]["retryStrategy"] = {"limit": 2}
    result, ws = run(doc, tmp_path)
    assert result.tasks["flaky"].attempts == 2 and result.tasks["flaky"].phase == "Succeeded"
    assert (ws / "once").read_text().count("y") == 3  # the DAG is retried: each attempt runs "once" again
    assert [n for n in result.tasks if n.startswith("wf(") and "." not in n] == ["wf(0)", "wf(1)", "wf(2)"]
    assert result.tasks["wf"].phase == "Failed" and result.tasks["wf(2)"].phase == "Failed"


def test_a_pod_output_parameter_given_as_value_is_substituted_and_kept(tmp_path):
    # executor.go SaveParameters skips a parameter without valueFrom.path: its value is the template's,
    # substituted with the inputs (functional_test.go TestParameterAggregationDAGWithRetry: ["1","2","3"]).
    echo = step("echo", "true\n", params=["m"])
    echo["outputs"] = {"parameters": [{"name": "out", "value": "v{{inputs.parameters.m}}"}]}
    doc = workflow([{"name": "e", "template": "echo", "withItems": [1, 2],
                     "arguments": {"parameters": [{"name": "m", "value": "{{item}}"}]}},
                    {"name": "c", "template": "keep", "depends": "e",
                     "arguments": {"parameters": [{"name": "x", "value": "{{tasks.e.outputs.parameters.out}}"}]}}],
                   [echo, step("keep", "printf '%s' '{{inputs.parameters.x}}' > kept\n", params=["x"])])
    result, ws = run(doc, tmp_path)
    assert result.phase == "Succeeded" and json.loads((ws / "kept").read_text()) == ["v1", "v2"]


def test_template_defaults_are_merged_under_each_template(tmp_path):
    # operator.go mergedTemplateDefaultsInto (functional_test.go TestTemplateDefaultImage): a strategic
    # merge of each template over spec.templateDefaults; a type's section (script, container, ...)
    # only into templates of that type; env merges by name, the template's value winning.
    from bioinfra.executor.workflow import apply_template_defaults

    t = step("s", "printf '%s %s' \"$A\" \"$B\" > seen\n")
    t["script"]["env"] = [{"name": "B", "value": "own"}]
    t["script"].pop("workingDir")
    doc = workflow([{"name": "a", "template": "s"}], [t])
    doc["spec"]["templateDefaults"] = {
        "script": {"workingDir": "/ws", "env": [{"name": "A", "value": "default"}, {"name": "B", "value": "x"}]},
        "container": {"image": "never-used"},
        "activeDeadlineSeconds": 600,
    }
    merged = apply_template_defaults(doc)
    assert "templateDefaults" not in merged["spec"] and apply_template_defaults(merged) == merged
    main, s = merged["spec"]["templates"]
    assert main.get("activeDeadlineSeconds") == 600 and "script" not in main and "container" not in main
    assert s["script"]["env"] == [{"name": "B", "value": "own"}, {"name": "A", "value": "default"}]
    assert "container" not in s
    result, ws = run(doc, tmp_path)
    assert result.phase == "Succeeded" and (ws / "seen").read_text() == "default own"


def test_a_tasks_status_and_exit_code_reach_later_tasks(tmp_path):
    # docs/variables.md (DAG templates): tasks.<TASKNAME>.status and tasks.<TASKNAME>.exitCode;
    # operator.go buildLocalScope (.status of every node) and addOutputsToLocalScope (.exitCode).
    doc = workflow(
        [{"name": "a", "template": "fails"},
         {"name": "s", "template": "skipped", "when": "false"},
         {"name": "b", "template": "see", "depends": "a.Failed && s.Skipped",
          "arguments": {"parameters": [
              {"name": "v", "value": "{{tasks.a.status}} {{tasks.a.exitCode}} {{tasks.s.status}}"}]}}],
        [step("fails", "exit 3\n"), step("skipped", "true\n"),
         step("see", "printf '%s' '{{inputs.parameters.v}}' > seen\n", params=["v"])],
    )
    result, ws = run(doc, tmp_path)
    assert result.tasks["b"].phase == "Succeeded", result.tasks["b"].message
    assert (ws / "seen").read_text() == "Failed 3 Skipped"
