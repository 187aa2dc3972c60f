"""The cluster status reader (core/cluster_run.py) and `estimate` read Workflows through the one typed
Argo model (bioinfra/argo/model.py, #16 point 1), not through dict walks of their own.

Status objects are written here as Argo v3.7's controller serialises them (Go's NodeStatus with
`omitempty`: a field it has no value for is absent). JSON null where Go would omit the field is
read as absent by the model, as Go's unmarshalling into a string does; the reader's own dict walk
raised TypeError on a null message.
"""

from __future__ import annotations

from pathlib import Path

from bioinfra.argo.model import Workflow
from bioinfra.core.cluster_run import LogKeeper, dag_tasks, pod_nodes_by_step, task_states
from bioinfra.core.estimate import workflow_tasks
from bioinfra.executor.runner import FAILED, PENDING, SUCCEEDED

WF = "fastqc-to-bwa-t"


def _workflow(nodes: dict) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": WF, "namespace": "bioinfra"},
        "spec": {"entrypoint": "main", "templates": [
            {"name": "main", "dag": {"tasks": [
                {"name": "align", "template": "align"},
                {"name": "stats", "template": "stats", "depends": "align"}]}},
            {"name": "align", "steps": [[{"name": "run", "template": "align-attempt"}]]},
            {"name": "align-attempt", "nodeSelector": {"bioinfra.io/pool": "highcpu"},
             "script": {"image": "x", "source": "true", "resources": {"requests": {"cpu": "8", "memory": "16Gi"}}}},
            {"name": "stats", "container": {"image": "x", "resources": {"requests": {"cpu": "500m"}}}},
        ]},
        "status": {"phase": "Running", "nodes": nodes},
    }


def test_the_reader_takes_nodes_as_argo_writes_them_and_null_as_absent() -> None:
    nodes = {
        "n1": {"id": "n1", "name": f"{WF}.align", "type": "Retry", "phase": "Succeeded",
               "startedAt": "2026-11-27T08:00:00Z", "finishedAt": "2026-11-27T08:05:00Z"},
        "n2": {"id": "n2", "name": f"{WF}.align(0)[0].run(0)", "type": "Pod", "phase": "Failed",
               "message": None, "startedAt": "2026-11-27T08:00:00Z"},
        "n3": {"id": "n3", "name": f"{WF}.align(1)[0].run(0)", "type": "Pod", "phase": "Succeeded",
               "message": "pod deleted during operation", "startedAt": "2026-11-27T08:01:00Z"},
        "n4": {"id": "n4", "name": f"{WF}.stats", "type": "Retry", "phase": None},
    }
    raw = _workflow(nodes)
    states = task_states(raw, dag_tasks(raw), Path("logs"), 2)
    assert states["align"].phase == SUCCEEDED and states["align"].attempts == 2
    assert states["align"].wall_seconds == 300
    assert states["stats"].phase == PENDING  # phase null: not yet decided
    # The same answer from the model parsed once (what the follow loop passes).
    typed = task_states(Workflow.parse(raw), dag_tasks(raw), Path("logs"), 2)
    assert {n: (s.phase, s.attempts, s.message) for n, s in typed.items()} == \
        {n: (s.phase, s.attempts, s.message) for n, s in states.items()}
    assert [n.id for n in pod_nodes_by_step(Workflow.parse(raw), ["align", "stats"])["align"]] == ["n2", "n3"]


def test_a_failed_pod_node_is_read_with_its_message(tmp_path: Path) -> None:
    nodes = {"n1": {"id": "n1", "name": f"{WF}.align", "type": "Retry", "phase": "Failed", "message": "child failed"},
             "n2": {"id": "n2", "name": f"{WF}.align(0)[0].run(0)", "type": "Pod", "phase": "Failed",
                    "message": "Error (exit code 1)", "startedAt": "2026-11-27T08:00:00Z"}}
    states = task_states(_workflow(nodes), ["align", "stats"], tmp_path, 0)
    assert (states["align"].phase, states["align"].message, states["align"].attempts) == (FAILED, "child failed", 1)


def test_log_keeper_writes_nothing_until_a_node_finishes(tmp_path: Path) -> None:
    """Running Pod nodes are not read (no API call at all: the stand-in kube has none)."""
    nodes = {"n2": {"id": "n2", "name": f"{WF}.align(0)[0].run(0)", "type": "Pod", "phase": "Running"}}
    keeper = LogKeeper(kube=object(), log_dir=tmp_path / "logs")
    assert keeper.update(_workflow(nodes)) == {}
    assert not (tmp_path / "logs").exists()


def test_estimate_reads_pools_requests_and_depends_through_the_model() -> None:
    raw = _workflow({})
    shapes = workflow_tasks(raw)
    assert shapes == workflow_tasks(Workflow.parse(raw))
    align, stats = shapes["align"], shapes["stats"]
    assert (align.pool, align.cpu, align.memory_gib, align.after) == ("highcpu", 8.0, 16.0, ())
    assert (stats.pool, stats.cpu, stats.memory_gib, stats.after) == ("general", 0.5, 1.0, ("align",))
