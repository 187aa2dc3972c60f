"""Fan-out in the local executor (withParam, withItems, withSequence), continueOn, failFast,
parallelism: small Workflows of real bash steps, no tools needed."""

from __future__ import annotations

import copy
import json

import pytest

from bioinfra.errors import WorkflowSpecError
from bioinfra.executor.runner import LocalExecutor
from bioinfra.executor.runtime import NativeRuntime
from bioinfra.executor.workflow import item_label, parse_workflow
from tests.unit.test_executor import run, step, workflow

PLAN = step("plan", 'printf \'[{"first":1,"last":4},{"first":5,"last":8},{"first":9,"last":10}]\' > batches.json\n',
            out_params={"batches": "/ws/batches.json"})
# One batch: writes first..last into its own file; the batch holding 5 fails (its retries too).
BATCH = step("batch", 'if [ "{{inputs.parameters.first}}" = "$FAIL_AT" ]; then echo "batch {{inputs.parameters.first}} broke" >&2; exit 3; fi\n'
             'seq {{inputs.parameters.first}} {{inputs.parameters.last}} > "part-{{inputs.parameters.first}}.txt"\n',
             params=["first", "last"], retries=1)
GATHER = step("gather", "cat $(ls part-*.txt | sort -t- -k2 -n) > all.txt\n")


def fan_out_doc(fail_at: str = "", *, continue_on: bool = True) -> dict:
    analyze = {
        "name": "analyze", "template": "batch", "depends": "plan",
        "withParam": "{{tasks.plan.outputs.parameters.batches}}",
        "arguments": {"parameters": [{"name": "first", "value": "{{item.first}}"},
                                     {"name": "last", "value": "{{item.last}}"}]},
    }
    if continue_on:
        analyze["continueOn"] = {"failed": True}
    doc = workflow(
        [{"name": "plan", "template": "plan"}, analyze,
         {"name": "gather", "template": "gather", "depends": "analyze.Succeeded || analyze.Failed"}],
        copy.deepcopy([PLAN, BATCH, GATHER]),  # tests change them
    )
    doc["spec"]["templates"][2]["script"]["env"] = [{"name": "FAIL_AT", "value": fail_at}]
    return doc


def test_with_param_runs_one_child_per_item_named_as_argo_names_them(tmp_path):
    result, ws = run(fan_out_doc(), tmp_path)
    assert result.phase == "Succeeded", {n: t.message for n, t in result.tasks.items()}
    children = [n for n, t in result.tasks.items() if t.group == "analyze"]
    assert children == ["analyze(0:first:1,last:4)", "analyze(1:first:5,last:8)", "analyze(2:first:9,last:10)"]
    assert result.tasks["analyze"].children == 3 and result.tasks["analyze"].phase == "Succeeded"
    assert (ws / "all.txt").read_text().split() == [str(i) for i in range(1, 11)]
    # Each child has its own log (file name made safe) with its own command.
    log = (tmp_path / "logs" / "analyze(1_first_5_last_8).log").read_text()
    assert "=== bioinfra: step 'analyze(1:first:5,last:8)' attempt 1/2" in log


def test_a_failing_child_is_retried_others_go_on_and_the_gather_still_runs(tmp_path):
    result, ws = run(fan_out_doc(fail_at="5"), tmp_path)
    bad = result.tasks["analyze(1:first:5,last:8)"]
    assert bad.phase == "Failed" and bad.attempts == 2 and bad.exit_code == 3
    assert result.tasks["analyze(0:first:1,last:4)"].phase == "Succeeded"
    assert result.tasks["analyze(2:first:9,last:10)"].phase == "Succeeded"
    assert result.tasks["analyze"].phase == "Failed"
    assert "1 of 3 failed: analyze(1:first:5,last:8)" in result.tasks["analyze"].message
    assert result.tasks["gather"].phase == "Succeeded"  # depends on analyze.Failed too
    assert (ws / "all.txt").read_text().split() == ["1", "2", "3", "4", "9", "10"]
    # continueOn.failed: the failure is tolerated, so the run's phase is the gather's.
    assert result.phase == "Succeeded"
    assert [t.name for t in result.failed_steps] == ["analyze(1:first:5,last:8)"]


def test_without_continue_on_a_failed_child_does_not_stop_the_others(tmp_path):
    result, _ = run(fan_out_doc(fail_at="1", continue_on=False), tmp_path, cpus=1)
    assert result.tasks["analyze(0:first:1,last:4)"].phase == "Failed"
    # failFast (Argo's default) does not stop other tasks from starting: executeDAG (dag.go) creates
    # every task whose dependencies are complete before assessDAGPhase, which stays Running while
    # any node runs. The other children run; gather's depends accepts analyze.Failed, so it runs and
    # is the only target: its Succeeded settles the DAG (the failure is handled).
    assert result.tasks["analyze(1:first:5,last:8)"].phase == "Succeeded"
    assert result.tasks["analyze"].phase == "Failed"
    assert result.tasks["gather"].phase == "Succeeded"
    assert result.phase == "Succeeded"


def test_fail_fast_false_lets_independent_branches_finish(tmp_path):
    doc = workflow(
        [{"name": "bad", "template": "bad"}, {"name": "after-bad", "template": "ok", "depends": "bad"},
         {"name": "slow", "template": "slow"}, {"name": "after-slow", "template": "ok2", "depends": "slow"}],
        [step("bad", "exit 1\n"), step("ok", "true\n"), step("slow", "sleep 0.5\n"), step("ok2", "touch ok2\n")],
    )
    doc["spec"]["templates"][0]["dag"]["failFast"] = False
    result, ws = run(doc, tmp_path, cpus=1)
    assert result.phase == "Failed"
    assert result.tasks["after-slow"].phase == "Succeeded" and (ws / "ok2").exists()
    assert result.tasks["after-bad"].phase == "Omitted"


def test_with_sequence_and_with_items(tmp_path):
    doc = workflow(
        [{"name": "seq", "template": "echo", "withSequence": {"start": "3", "end": "1", "format": "s%02d"},
          "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]}},
         {"name": "items", "template": "echo", "withItems": ["a", {"k": "v"}],
          "arguments": {"parameters": [{"name": "x", "value": "i-{{item}}"}]}}],
        [step("echo", "echo '{{inputs.parameters.x}}' >> seen.txt\n", params=["x"], cpu="0.5")],
    )
    result, ws = run(doc, tmp_path)
    assert result.phase == "Succeeded"
    assert sorted(n for n, t in result.tasks.items() if t.group) == sorted(
        ["seq(0:s03)", "seq(1:s02)", "seq(2:s01)", "items(0:a)", "items(1:k:v)"])
    assert sorted((ws / "seen.txt").read_text().split()) == sorted(["s03", "s02", "s01", "i-a", 'i-{"k":"v"}'])


def test_parallelism_caps_concurrent_steps(tmp_path):
    # Each step records how many are running at once (a counter file under flock).
    body = ("exec 9>lock; flock 9; n=$(( $(cat n 2>/dev/null || echo 0) + 1 )); echo $n > n; echo $n >> peak; flock -u 9\n"
            "sleep 0.3\n"
            "flock 9; echo $(( $(cat n) - 1 )) > n; flock -u 9\n")
    doc = workflow([{"name": "many", "template": "w", "withSequence": {"count": "6"},
                     "arguments": {"parameters": [{"name": "i", "value": "{{item}}"}]}}],
                   [step("w", body, params=["i"], cpu="0.1")])
    doc["spec"]["parallelism"] = 2
    result, ws = run(doc, tmp_path, cpus=4)
    assert result.phase == "Succeeded"
    assert max(int(x) for x in (ws / "peak").read_text().split()) == 2
    # --max-parallel (the executor's argument) wins over the Workflow's own setting.
    (ws / "peak").unlink()
    executor = LocalExecutor(parse_workflow(doc), volume_roots={"ws": ws}, state_dir=tmp_path / "s2",
                             log_dir=tmp_path / "l2", runtime=NativeRuntime(), max_cpus=4, max_parallel=1)
    assert executor.run().phase == "Succeeded"
    assert max(int(x) for x in (ws / "peak").read_text().split()) == 1


def test_bad_with_param_fails_that_task_with_the_reason(tmp_path):
    doc = fan_out_doc()
    doc["spec"]["templates"][1]["script"]["source"] = "set -e\nprintf '{\"not\": \"a list\"}' > batches.json\n"
    result, _ = run(doc, tmp_path)
    # dag.go executeDAGTask: a task whose expansion fails gets an Error node; the run fails.
    assert result.tasks["analyze"].phase == "Error"
    assert result.phase == "Failed" and result.argo_phase == "Error"
    assert "withParam must be a JSON list" in result.tasks["analyze"].message


def test_item_fields_that_do_not_exist_are_named():
    doc = fan_out_doc()
    doc["spec"]["templates"][0]["dag"]["tasks"][1]["withItems"] = [{"first": 1}]
    del doc["spec"]["templates"][0]["dag"]["tasks"][1]["withParam"]
    wf = parse_workflow(doc)
    from bioinfra.executor.workflow import children_of

    with pytest.raises(WorkflowSpecError, match="has no field 'last'"):
        children_of(wf.task("analyze"), [{"first": 1}])


def test_labels_and_resume_of_children(tmp_path):
    assert item_label({"last": 4, "first": 1}) == "first:1,last:4"
    assert item_label(3.0) == "3" and item_label(True) == "true"
    first, _ = run(fan_out_doc(fail_at="5"), tmp_path)
    assert first.tasks["analyze(1:first:5,last:8)"].phase == "Failed"
    # Children declare no outputs here, so nothing is cached; markers are per child.
    markers = sorted(p.name for p in (tmp_path / "state" / "steps").glob("analyze*.json"))
    assert markers == ["analyze(0_first_1_last_4).json", "analyze(2_first_9_last_10).json"]
    assert json.loads((tmp_path / "state" / "steps" / markers[0]).read_text())["task"] == "analyze(0:first:1,last:4)"


class _GroupMessages:
    """A reporter keeping every message the fan-out's parent row showed."""

    def __init__(self, parent: str) -> None:
        self.parent = parent
        self.messages: list[str] = []

    def started(self, tasks) -> None:
        pass

    def changed(self, task) -> None:
        if task.name == self.parent:
            self.messages.append(task.message)

    def finished(self, result) -> None:
        pass


def test_a_large_fan_out_is_counted_exactly_as_it_goes(tmp_path):
    """The group's counts are kept per change (not recounted over every child, which made runs of
    thousands of children cubic): every message the row shows adds up to the group's size, and the
    final one is right (here 150 children, one fails after its retry, a later task runs on)."""
    n = 150
    doc = workflow([{"name": "fan", "template": "w", "withSequence": {"count": str(n)}, "continueOn": {"failed": True},
                     "arguments": {"parameters": [{"name": "i", "value": "{{item}}"}]}},
                    {"name": "after", "template": "u", "depends": "fan.Succeeded || fan.Failed"}],
                   [step("w", '[ "{{inputs.parameters.i}}" != 57 ] || exit 4\n', params=["i"], retries=1, cpu="0.5"),
                    step("u", "echo after > after.txt\n")])
    ws = tmp_path / "ws"
    ws.mkdir()
    reporter = _GroupMessages("fan")
    result = LocalExecutor(parse_workflow(doc), volume_roots={"ws": ws}, state_dir=tmp_path / "state",
                           log_dir=tmp_path / "logs", runtime=NativeRuntime(), max_cpus=2, reporter=reporter).run()

    fan = result.tasks["fan"]
    assert fan.phase == "Failed" and fan.message == f"1 of {n} failed: fan(57:57)"
    assert fan.attempts == n + 1  # one each, two for the one retried
    assert result.tasks["after"].phase == "Succeeded" and (ws / "after.txt").exists()
    running = [m for m in reporter.messages if m.startswith(f"{n} items: ")]
    assert running, reporter.messages
    for message in running:  # "150 items: 3 pending, 2 running, 145 succeeded"
        counts = [int(part.split()[0]) for part in message.removeprefix(f"{n} items: ").split(", ")]
        assert sum(counts) == n, message
    assert any("running" in m for m in running)  # started children are counted as running
    # 4 at a time (0.5 CPU each on 2): never more than that running at once.
    assert max(int(m.split(" running")[0].rsplit(" ", 1)[1]) for m in running if " running" in m) <= 4


def test_plain_display_of_a_big_fan_out_is_one_summary_line_per_interval():
    """Logs and CI: a fan-out of 100 children writes its running summary at most once per
    SUMMARY_LINE_SECONDS (a clock the test moves), its children not at all, its final line always."""
    import io

    from bioinfra.executor.progress import MAX_CHILD_ROWS, SUMMARY_LINE_SECONDS, PlainReporter
    from bioinfra.executor.runner import TaskState

    now = [0.0]
    stream = io.StringIO()
    reporter = PlainReporter(stream, clock=lambda: now[0])
    parent = TaskState(name="fan", template="w", log=None, phase="Running", children=100)
    assert parent.children > MAX_CHILD_ROWS
    for done in range(100):
        now[0] = done * 0.5  # one child finishes every half second: 50 s in all
        parent.message = f"100 items: {100 - done} running, {done} succeeded"
        reporter.changed(parent)
        child = TaskState(name=f"fan({done}:{done})", template="w", log=None, phase="Succeeded", group="fan")
        reporter.changed(child)
    parent.phase, parent.message = "Succeeded", "100 items: 100 succeeded"
    reporter.changed(parent)
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    summaries = [line for line in lines if line.startswith("… fan: running")]
    assert len(summaries) == int(50 / SUMMARY_LINE_SECONDS)  # at 0, 10, 20, 30, 40 s
    assert summaries[0] == "… fan: running: 100 items: 100 running, 0 succeeded"
    assert not [line for line in lines if line.startswith("✓ fan(")]  # children of a big group: not listed
    assert lines[-1].startswith("✓ fan: succeeded")


# ----- the run's phase: Argo's leaf rule (assessDAGPhase, workflow/controller/dag.go), issue #16 -----

def _depends_only(fail_at: str, *, target: str | None = None, tail_when: str | None = None) -> dict:
    """The --samples / cellprofiler shape Argo v3.7 admits: no continueOn, the gather depends on
    `analyze.Succeeded || analyze.Failed`, failFast: false; optionally a leaf after the gather."""
    doc = fan_out_doc(fail_at=fail_at, continue_on=False)
    dag = doc["spec"]["templates"][0]["dag"]
    dag["failFast"] = False
    if tail_when is not None:
        dag["tasks"].append({"name": "tail", "template": "tail", "depends": "gather.Succeeded || gather.Failed",
                             "when": tail_when})
        doc["spec"]["templates"].append(step("tail", "true\n"))
    if target:
        dag["target"] = target
    return doc


def test_a_failed_child_with_a_successful_final_leaf_ends_as_the_leaf_says(tmp_path):
    """assessDAGPhase reads the leaves: a failed fan-out child whose failure a downstream task takes
    (`depends: analyze.Succeeded || analyze.Failed`) does not fail the DAG when that leaf succeeds.
    (Before #16 the executor failed any run in which a task without continueOn failed.)"""
    result, ws = run(_depends_only("5"), tmp_path)
    assert result.tasks["analyze(1:first:5,last:8)"].phase == "Failed" and result.tasks["analyze"].phase == "Failed"
    assert result.tasks["gather"].phase == "Succeeded"
    assert (ws / "all.txt").read_text().split() == ["1", "2", "3", "4", "9", "10"]
    assert result.phase == "Succeeded"


def test_a_skipped_leaf_inherits_the_phase_of_its_branch(tmp_path):
    """A Skipped (or Omitted) leaf is not Completed: it takes the branch phase it is reached with,
    Failed in preference to Succeeded. A failed gather followed by a Skipped stage-out-like leaf
    fails the DAG; a succeeded one does not."""
    doc = _depends_only("5", tail_when="false")
    doc["spec"]["templates"][3]["script"]["source"] = "exit 1\n"  # the gather fails
    result, _ = run(doc, tmp_path / "a")
    assert result.tasks["gather"].phase == "Failed" and result.tasks["tail"].phase == "Skipped"
    assert result.phase == "Failed"
    result, _ = run(_depends_only("5", tail_when="false"), tmp_path / "b")
    assert result.tasks["tail"].phase == "Skipped" and result.phase == "Succeeded"


def test_a_leaf_that_runs_after_a_failure_hides_it_unless_the_failure_is_a_target(tmp_path):
    """What the pipelines' stage-out does on a cluster: it runs after a failed gather (depends
    gather.Failed too) and succeeds, so as the only leaf it would end the DAG Succeeded; naming the
    gather in dag.target makes the gather's Failed the DAG's."""
    def failing_gather(doc: dict) -> dict:
        doc["spec"]["templates"][3]["script"]["source"] = "exit 1\n"
        return doc

    result, _ = run(failing_gather(_depends_only("", tail_when="true")), tmp_path / "leaf")
    assert result.tasks["gather"].phase == "Failed" and result.tasks["tail"].phase == "Succeeded"
    assert result.phase == "Succeeded"  # Argo's leaf rule: the one leaf succeeded
    result, _ = run(failing_gather(_depends_only("", tail_when="true", target="gather tail")), tmp_path / "target")
    assert result.tasks["tail"].phase == "Succeeded"
    assert result.phase == "Failed"


def test_dag_target_runs_only_the_targets_and_their_ancestors():
    doc = _depends_only("", target="analyze")
    wf = parse_workflow(doc)
    assert [t.name for t in wf.tasks] == ["plan", "analyze"] and wf.targets == ["analyze"]
    assert parse_workflow(_depends_only("")).targets == ["gather"]  # findLeafTaskNames
    doc["spec"]["templates"][0]["dag"]["target"] = "nope"
    with pytest.raises(WorkflowSpecError, match="unknown task"):
        parse_workflow(doc)


def test_any_succeeded_and_all_failed_read_the_children(tmp_path):
    """evaluateDependsLogic: AnySucceeded / AllFailed look at a TaskGroup's children."""
    doc = _depends_only("5")
    tasks = doc["spec"]["templates"][0]["dag"]["tasks"]
    tasks[2]["depends"] = "analyze.AnySucceeded"
    tasks.append({"name": "none", "template": "gather", "depends": "analyze.AllFailed"})
    result, _ = run(doc, tmp_path)
    assert result.tasks["gather"].phase == "Succeeded"
    assert result.tasks["none"].phase == "Omitted"
