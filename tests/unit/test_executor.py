"""The local executor on small Workflows of real bash steps (no tools needed).

Concurrency is proven by rendezvous files, not timings: two steps that each wait for the other's
file can only both finish if they run at the same time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bioinfra.errors import WorkflowSpecError
from bioinfra.executor.runner import LocalExecutor
from bioinfra.executor.runtime import NativeRuntime
from bioinfra.executor.workflow import parse_workflow, topological_order


def step(name: str, source: str, *, cpu: str = "1", outputs: list[str] | None = None, retries: int = 0,
         params: list[str] | None = None, out_params: dict[str, str] | None = None) -> dict:
    t: dict = {
        "name": name,
        "script": {
            "image": "debian", "command": ["bash"], "workingDir": "/ws", "source": "set -euo pipefail\n" + source,
            "resources": {"requests": {"cpu": cpu}}, "volumeMounts": [{"name": "ws", "mountPath": "/ws"}],
        },
        "retryStrategy": {"limit": str(retries), "backoff": {"duration": "0s"}},
    }
    if outputs:
        t["metadata"] = {"annotations": {"bioinfra.io/outputs": "\n".join(outputs)}}
    if params:
        t["inputs"] = {"parameters": [{"name": p} for p in params]}
    if out_params:
        t["outputs"] = {"parameters": [{"name": k, "valueFrom": {"path": v}} for k, v in out_params.items()]}
    return t


def workflow(tasks: list[dict], templates: list[dict], parameters: dict | None = None) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "t-"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in (parameters or {}).items()]},
            "volumes": [{"name": "ws", "emptyDir": {}}],
            "templates": [{"name": "main", "dag": {"tasks": tasks}}, *templates],
        },
    }


def run(doc: dict, tmp_path: Path, *, cpus: float = 2, resume: bool = False):
    ws = tmp_path / "ws"
    ws.mkdir(parents=True, exist_ok=True)
    executor = LocalExecutor(
        parse_workflow(doc), volume_roots={"ws": ws}, state_dir=tmp_path / "state", log_dir=tmp_path / "logs",
        runtime=NativeRuntime(), max_cpus=cpus, resume=resume,
    )
    return executor.run(), ws


# Each waits (bounded: 20 s) for the other's file: both succeed only if they overlap in time.
RENDEZVOUS = "touch {me}; for i in $(seq 200); do [ -e {other} ] && exit 0; sleep 0.1; done; exit 1\n"


def test_independent_steps_run_in_parallel(tmp_path):
    doc = workflow(
        [{"name": "a", "template": "ta"}, {"name": "b", "template": "tb"}],
        [step("ta", RENDEZVOUS.format(me="a.here", other="b.here")), step("tb", RENDEZVOUS.format(me="b.here", other="a.here"))],
    )
    result, _ = run(doc, tmp_path, cpus=2)
    assert result.phase == "Succeeded", {n: t.message for n, t in result.tasks.items()}


def test_cpu_budget_serialises_steps(tmp_path):
    # With one CPU the two 1-CPU steps must not overlap: the log shows start/end pairs unbroken.
    body = "echo start-{n} >> order.txt; sleep 0.3; echo end-{n} >> order.txt\n"
    doc = workflow(
        [{"name": "a", "template": "ta"}, {"name": "b", "template": "tb"}],
        [step("ta", body.format(n="a")), step("tb", body.format(n="b"))],
    )
    result, ws = run(doc, tmp_path, cpus=1)
    assert result.phase == "Succeeded"
    assert (ws / "order.txt").read_text().split() == ["start-a", "end-a", "start-b", "end-b"]


def test_dag_order_follows_depends(tmp_path):
    doc = workflow(
        [
            {"name": "c", "template": "t", "depends": "a && b", "arguments": {"parameters": [{"name": "n", "value": "c"}]}},
            {"name": "a", "template": "t", "arguments": {"parameters": [{"name": "n", "value": "a"}]}},
            {"name": "b", "template": "t", "depends": "a", "arguments": {"parameters": [{"name": "n", "value": "b"}]}},
        ],
        [step("t", "echo {{inputs.parameters.n}} >> order.txt\n", params=["n"])],
    )
    assert topological_order(parse_workflow(doc).tasks) == ["a", "b", "c"]
    result, ws = run(doc, tmp_path)
    assert result.phase == "Succeeded"
    assert (ws / "order.txt").read_text().split() == ["a", "b", "c"]


def test_retries_as_the_spec_says(tmp_path):
    # Fails on attempts 1 and 2, succeeds on 3: limit 2 succeeds, limit 1 fails after 2 attempts.
    flaky = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo attempt $n; [ $n -ge 3 ]\n"
    ok, ws = run(workflow([{"name": "f", "template": "t"}], [step("t", flaky, retries=2)]), tmp_path / "ok")
    assert ok.phase == "Succeeded" and ok.tasks["f"].attempts == 3
    log = (tmp_path / "ok" / "logs" / "f.log").read_text()
    assert log.count("=== bioinfra: step 'f' attempt") == 3 and "attempt 3" in log
    bad, _ = run(workflow([{"name": "f", "template": "t"}], [step("t", flaky, retries=1)]), tmp_path / "bad")
    assert bad.phase == "Failed" and bad.tasks["f"].attempts == 2 and bad.tasks["f"].exit_code == 1


def test_failure_stops_new_steps_but_lets_running_ones_finish(tmp_path):
    doc = workflow(
        [
            {"name": "boom", "template": "fail"},
            {"name": "slow", "template": "slow"},
            {"name": "after", "template": "slow", "depends": "boom"},
        ],
        [step("fail", "for i in $(seq 100); do [ -e slow.started ] && exit 3; sleep 0.1; done; exit 3\n"),
         step("slow", "touch slow.started; sleep 0.5; touch slow.done\n")],
    )
    result, ws = run(doc, tmp_path)
    assert result.phase == "Failed"
    assert result.tasks["boom"].phase == "Failed" and result.tasks["boom"].exit_code == 3
    assert result.tasks["slow"].phase == "Succeeded" and (ws / "slow.done").exists()
    assert result.tasks["after"].phase == "Omitted"


def test_when_skips_and_depends_omits_with_output_parameters(tmp_path):
    doc = workflow(
        [
            {"name": "qc", "template": "qc"},
            {"name": "gated", "template": "noop", "depends": "qc",
             "when": "'{{tasks.qc.outputs.parameters.verdict}}' != 'FAIL'"},
            {"name": "needs-gated", "template": "noop", "depends": "gated.Succeeded"},
            {"name": "report", "template": "noop", "depends": "qc && (needs-gated.Succeeded || gated.Skipped)"},
        ],
        [step("qc", "printf FAIL > verdict\n", out_params={"verdict": "/ws/verdict"}), step("noop", "true\n")],
    )
    result, _ = run(doc, tmp_path)
    phases = {n: t.phase for n, t in result.tasks.items()}
    assert phases == {"qc": "Succeeded", "gated": "Skipped", "needs-gated": "Omitted", "report": "Succeeded"}
    assert result.tasks["qc"].output_parameters == {"verdict": "FAIL"}
    assert result.phase == "Succeeded"


def test_missing_declared_output_fails_the_step(tmp_path):
    doc = workflow([{"name": "a", "template": "t"}], [step("t", "true\n", outputs=["never-written.txt"])])
    result, _ = run(doc, tmp_path)
    assert result.phase == "Failed" and "declared output never-written.txt is missing" in result.tasks["a"].message


def test_resume_skips_complete_steps_and_reruns_from_a_damaged_one(tmp_path):
    counter = "echo {n} >> runs.log; echo {n}-output > {n}.out\n"
    doc = workflow(
        [{"name": "a", "template": "a"}, {"name": "b", "template": "b", "depends": "a"}, {"name": "c", "template": "c", "depends": "b"}],
        [step(n, counter.format(n=n), outputs=[f"{n}.out"]) for n in "abc"],
    )
    first, ws = run(doc, tmp_path)
    assert first.phase == "Succeeded"
    marker = json.loads((tmp_path / "state" / "steps" / "a.json").read_text())
    assert marker["outputs"]["a.out"]["bytes"] == len("a-output\n")

    again, _ = run(doc, tmp_path, resume=True)
    assert all(t.cached for t in again.tasks.values())
    assert (ws / "runs.log").read_text().split() == ["a", "b", "c"]

    (ws / "b.out").write_text("damaged\n")  # same step output, different content
    third, _ = run(doc, tmp_path, resume=True)
    assert [n for n, t in third.tasks.items() if t.cached] == ["a"]
    assert (ws / "runs.log").read_text().split() == ["a", "b", "c", "b", "c"]


def test_unsupported_workflow_features_are_rejected(tmp_path):
    doc = workflow([{"name": "a", "template": "t", "hooks": {"running": {"template": "t", "expression": "true"}}}], [step("t", "true\n")])
    with pytest.raises(WorkflowSpecError, match="hooks"):
        parse_workflow(doc)
    cyclic = workflow(
        [{"name": "a", "template": "t", "depends": "b"}, {"name": "b", "template": "t", "depends": "a"}], [step("t", "true\n")]
    )
    with pytest.raises(WorkflowSpecError, match="cycle"):
        parse_workflow(cyclic)


def test_rich_display_shows_each_step_and_its_outcome(tmp_path):
    import io

    from rich.console import Console

    from bioinfra.executor.progress import RichReporter

    buffer = io.StringIO()
    reporter = RichReporter(Console(file=buffer, force_terminal=True, width=100))
    doc = workflow(
        [{"name": "ok-step", "template": "ok"}, {"name": "bad-step", "template": "bad", "depends": "ok-step"}],
        [step("ok", "true\n"), step("bad", "exit 4\n")],
    )
    ws = tmp_path / "ws"
    ws.mkdir()
    result = LocalExecutor(
        parse_workflow(doc), volume_roots={"ws": ws}, state_dir=tmp_path / "state", log_dir=tmp_path / "logs",
        runtime=NativeRuntime(), max_cpus=2, reporter=reporter,
    ).run()
    assert result.phase == "Failed"
    screen = buffer.getvalue()
    assert "ok-step" in screen and "✓" in screen and "succeeded" in screen
    assert "bad-step" in screen and "✗" in screen and "exit 4" in screen


def test_plain_display_one_line_per_change(tmp_path):
    import io

    from bioinfra.executor.progress import PlainReporter

    stream = io.StringIO()
    doc = workflow([{"name": "a", "template": "t"}], [step("t", "true\n")])
    ws = tmp_path / "ws"
    ws.mkdir()
    LocalExecutor(
        parse_workflow(doc), volume_roots={"ws": ws}, state_dir=tmp_path / "state", log_dir=tmp_path / "logs",
        runtime=NativeRuntime(), max_cpus=1, reporter=PlainReporter(stream),
    ).run()
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("running 1 steps: a")
    assert any("… a: running" in line for line in lines) and lines[-1].split("] ", 1)[1].startswith("✓ a: succeeded")


def test_native_runtime_terminate_step_stops_only_that_step(tmp_path):
    # A step's own deadline (activeDeadlineSeconds) stops that step through Runtime.terminate_step;
    # another step running beside it goes on.
    import threading
    import time

    from bioinfra.executor.runtime import StepCommand

    runtime = NativeRuntime(grace_seconds=1.0)
    codes: dict[str, int] = {}

    def start(name: str, seconds: str) -> StepCommand:
        command = StepCommand(task=name, argv=["sleep", seconds], env={}, cwd=tmp_path, cpus=1)

        def go() -> None:
            with open(tmp_path / f"{name}.log", "wb") as log:
                codes[name] = runtime.run(command, log)

        threading.Thread(target=go, daemon=True).start()
        return command

    slow = start("slow", "30")
    start("short", "1.5")
    time.sleep(0.5)
    began = time.monotonic()
    runtime.terminate_step(slow)
    for _ in range(100):
        if "slow" in codes and "short" in codes:
            break
        time.sleep(0.05)
    assert codes["slow"] < 0 and time.monotonic() - began < 5
    assert codes["short"] == 0
