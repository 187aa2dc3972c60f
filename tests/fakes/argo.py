"""STAND-IN for Argo's workflow controller, for the `run --target` tests (no Argo can run here).

A test plays the controller in a thread (`play`): it waits for the Workflow bioinfra creates through
the emulated API server (tests/fakes/kube_api.py), then its script builds the Workflow's status as
Argo would, node by node (`ArgoStatus`): the DAG root, Skipped nodes, a Retry node per task over one
Pod node per attempt, TaskGroup nodes over fan-out children named as Argo names them
(`analyze(1:first:5,last:8)`); each Pod node comes with the pod itself (Argo's workflow label and
node-id annotation) and its log. What the pods would have written into the run folder, the script
puts into the MinIO stand-in (moto's S3). Failures in the script reach the test as thread.result["error"].
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

TEXT = {"Content-Type": "text/plain"}
STARTED = "2026-11-27T08:00:00Z"
FINISHED = "2026-11-27T08:09:00Z"


def created_workflow(api, timeout: float = 60) -> dict[str, Any]:
    """The last Workflow bioinfra POSTed, as sent (waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        posts = api.requests("POST", "/workflows")
        if posts:
            return posts[-1].data
        time.sleep(0.1)
    raise AssertionError("bioinfra never created a Workflow")


def node(wf: str, name: str, kind: str, phase: str, template: str = "", message: str = "",
         started: str = STARTED) -> tuple[str, dict[str, Any]]:
    """One entry of status.nodes: (id, body)."""
    node_id = f"{wf}-{abs(hash(name)) % 10**9}"
    body = {"id": node_id, "name": name, "displayName": name.split(".")[-1], "type": kind, "phase": phase,
            "templateName": template, "startedAt": started}
    if phase in ("Succeeded", "Failed", "Error"):
        body["finishedAt"] = "2026-11-27T08:01:00Z"
    if message:
        body["message"] = message
    return node_id, body


def fake_pod(api, workflow: str, node_name: str, phase: str, log: str, nodes: dict[str, Any], *,
             template: str = "x-attempt", message: str = "", started: str = STARTED) -> None:
    """What Argo does for one attempt: a Pod node in the status, the pod with Argo's label and
    node-id annotation, and its log."""
    pid, body = node(workflow, node_name, "Pod", phase, template=template, message=message, started=started)
    nodes[pid] = body
    pod_name = f"{workflow}-{abs(hash(node_name)) % 10**6}"
    api.create("/api/v1/namespaces/bioinfra/pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": "bioinfra", "labels": {"workflows.argoproj.io/workflow": workflow},
                     "annotations": {"workflows.argoproj.io/node-id": pid}},
        "spec": {"containers": [{"name": "main", "image": "x"}]}})
    api.call(lambda p=pod_name, t=log: api.k[f"get /api/v1/namespaces/bioinfra/pods/{p}/log"] << TEXT << t.encode())


class ArgoStatus:
    """One Workflow's status, built as Argo's controller would, and written with `patch`/`finish`."""

    def __init__(self, api, s3, workflow: dict[str, Any]):
        self.api, self.s3, self.workflow = api, s3, workflow
        self.name = workflow["metadata"]["name"]
        self.run_dir = f"runs/{self.name}"
        self.nodes: dict[str, Any] = {}
        self.root_id, self.root = node(self.name, self.name, "DAG", "Running")
        self.nodes[self.root_id] = self.root

    @property
    def tasks(self) -> list[str]:
        """The DAG's task names, in the Workflow's order."""
        main = next(t for t in self.workflow["spec"]["templates"] if t["name"] == self.workflow["spec"]["entrypoint"])
        return [t["name"] for t in main["dag"]["tasks"]]

    def skipped(self, task: str, message: str = "") -> None:
        self._add(f"{self.name}.{task}", "Skipped", "Skipped", message=message)

    def step(self, task: str, attempts: list[tuple[str, str, str]], *, node_name: str | None = None,
             started: Callable[[int], str] | None = None) -> str:
        """A task (or fan-out child, with its Argo `node_name`) run as `attempts`: (phase, log, message)
        each, one pod per attempt; its Retry node takes the last attempt's phase, which it returns."""
        name = node_name or f"{self.name}.{task}"
        for attempt, (phase, log, message) in enumerate(attempts):
            fake_pod(self.api, self.name, f"{name}({attempt})[0].run(0)", phase, log, self.nodes,
                     template=f"{task}-attempt", message=message,
                     started=started(attempt) if started else STARTED)
        phase = attempts[-1][0]
        self._add(name, "Retry", phase, template=task, message="child failed" if phase == "Failed" else "")
        return phase

    def succeeded(self, *tasks: str) -> None:
        """Tasks that ran once and succeeded, with a one-line log each."""
        for task in tasks:
            self.step(task, [("Succeeded", f"{task}: done\n", "")])

    def group(self, task: str) -> str:
        """A fan-out's TaskGroup node (Running); `group_done` settles it."""
        return self._add(f"{self.name}.{task}", "TaskGroup", "Running", template=task)

    def group_done(self, group_id: str, phase: str) -> None:
        self.nodes[group_id] = {**self.nodes[group_id], "phase": phase}

    def put(self, rel: str, body: bytes | str) -> None:
        """A file the pods wrote into the run folder (MinIO serves the shared volume)."""
        self.s3.put_object(Bucket="workspace", Key=f"{self.run_dir}/{rel}",
                           Body=body.encode() if isinstance(body, str) else body)

    def patch(self, **extra: Any) -> None:
        """The Workflow still Running, with the nodes so far."""
        self.api.patch_status(self.name, {"phase": "Running", "startedAt": STARTED, "nodes": self.nodes, **extra})

    def finish(self, phase: str, message: str = "") -> None:
        self.nodes[self.root_id] = {**self.root, "phase": phase, "finishedAt": FINISHED}
        self.api.patch_status(self.name, {"phase": phase, "finishedAt": FINISHED, "nodes": self.nodes,
                                          **({"message": message} if message else {})})

    def _add(self, name: str, kind: str, phase: str, *, template: str = "", message: str = "") -> str:
        node_id, body = node(self.name, name, kind, phase, template=template, message=message)
        self.nodes[node_id] = body
        return node_id


def play(api, s3, script: Callable[[ArgoStatus, dict[str, Any]], None]) -> threading.Thread:
    """Plays the controller in a thread: waits for the Workflow, then `script(status, result)`.
    thread.result["workflow"] is the Workflow as created; ["error"] what went wrong in the script."""
    result: dict[str, Any] = {}

    def controller() -> None:
        try:
            workflow = created_workflow(api)
            result["workflow"] = workflow
            script(ArgoStatus(api, s3, workflow), result)
        except Exception as exc:  # surfaced by the test through result["error"]
            result["error"] = exc

    thread = threading.Thread(target=controller, daemon=True)
    thread.result = result  # type: ignore[attr-defined]
    thread.start()
    return thread
