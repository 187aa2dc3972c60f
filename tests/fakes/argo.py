"""STAND-IN for Argo's workflow controller, for the `run --target` tests (no Argo can run here).

A test plays the controller in a thread (`play`): it waits for the Workflow bioinfra creates through
the emulated API server (tests/fakes/kube_api.py), then its script builds the Workflow's status as
Argo would, node by node (`ArgoStatus`): the DAG root, Skipped nodes, a Retry node per task over one
Pod node per attempt, TaskGroup nodes over fan-out children named as Argo names them
(`analyze(1:first:5,last:8)`); each Pod node comes with the pod itself (Argo's workflow label and
node-id annotation) and its log. What the pods would have written into the run folder, the script
puts into the MinIO stand-in (moto's S3). Failures in the script reach the test as thread.result["error"].

The Workflow's phase is not the script's to say: `finish` derives it as Argo v3.7.18's controller does
(workflow/controller/dag.go). Tasks the script did not play whose dependencies are done get the node
Argo would make (Omitted when their `depends` is false, Skipped when their `when` is "false":
executeDAGTask); every node gets the `children` Argo links (connectDependencies: a root task under
the DAG, any other under each outbound node of each task it depends on, a fan-out's children under
its TaskGroup, a task's attempts under its Retry node); then assessDAGPhase walks that graph from the
DAG's children breadth first with a branch phase and reads the target tasks (dag.target, else
findLeafTaskNames). This is a separate port from the local executor's (bioinfra/executor/phase.py),
over Argo's node dicts, so the cluster tests do not take our executor's word for it.

Pod garbage collection, as Argo v3.7.18 does it: after the update that completes the Workflow,
operator.go `operate` calls `queuePodsForCleanup` (pod_cleanup.go), and pod/cleanup.go
`determinePodCleanupAction` deletes every pod of the Workflow for `podGC.strategy`
OnWorkflowSuccess when the Workflow Succeeded (OnWorkflowCompletion: when it completed;
OnPodCompletion/OnPodSuccess are not played). The deletion waits podGCDeleteDelayDuration (5 s by
default, 0 allowed: docs/workflow-controller-configmap.md), or the Workflow's own
podGC.deleteDelayDuration (pod_cleanup.go getPodGCDelay); a delay of a minute or more outlives any
test, so those pods are not deleted here; `finish` plays the worst case, the pods
gone before the client has seen the final status. Pods whose nodes finished in an earlier status
update had lived on for as long as the later steps ran: `finish` stands in for that time by giving
the client up to LIVED_S seconds to read their logs before it deletes them. Once a pod is deleted its
log answers 404, as the API server's does for a missing pod.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

TEXT = {"Content-Type": "text/plain"}
LIVED_S = 5.0  # how long the pods of nodes finished before the last update wait for their logs to be read
STARTED = "2026-11-27T08:00:00Z"
FINISHED = "2026-11-27T08:09:00Z"
MAX_WORKFLOW_SIZE = 1024 * 1024  # packer.go getMaxWorkflowSize's default


def go_duration(text: str) -> float:
    """Seconds of a Go duration ("24h", "1h30m", "90s") or plain seconds (ParseStringToDuration)."""
    if re.fullmatch(r"\d+", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text)
    assert parts and "".join(a + b for a, b in parts) == text, f"not a Go duration: {text!r}"
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[u] for n, u in parts)


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
             template: str = "x-attempt", message: str = "", started: str = STARTED) -> tuple[str, str]:
    """What Argo does for one attempt: a Pod node in the status, the pod with Argo's label and
    node-id annotation, and its log (404 once the pod is deleted). Returns (node id, pod name)."""
    pid, body = node(workflow, node_name, "Pod", phase, template=template, message=message, started=started)
    nodes[pid] = body
    pod_name = f"{workflow}-{abs(hash(node_name)) % 10**6}"
    api.create("/api/v1/namespaces/bioinfra/pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": "bioinfra", "labels": {"workflows.argoproj.io/workflow": workflow},
                     "annotations": {"workflows.argoproj.io/node-id": pid}},
        "spec": {"containers": [{"name": "main", "image": "x"}]}})
    api.call(lambda p=pod_name, t=log: api.k[f"get /api/v1/namespaces/bioinfra/pods/{p}/log"] << TEXT
             << (lambda _req: _pod_log(api, p, t)))
    return pid, pod_name


def _pod_log(api, pod: str, text: str) -> bytes:
    import kmock

    key = (kmock.resource("v1/pods"), "bioinfra", pod)
    if key not in api.k.objects or api.k.objects[key].deleted:  # kmock keeps a deleted object, marked deleted
        raise kmock.KubernetesError(status=404, message=f'pods "{pod}" not found')
    return text.encode()


class ArgoStatus:
    """One Workflow's status, built as Argo's controller would, and written with `patch`/`finish`."""

    def __init__(self, api, s3, workflow: dict[str, Any], *, max_workflow_size: int = MAX_WORKFLOW_SIZE):
        self.api, self.s3, self.workflow = api, s3, workflow
        self.max_workflow_size = max_workflow_size
        self.compressed_writes = 0  # status writes that carried compressedNodes instead of nodes
        self.name = workflow["metadata"]["name"]
        self.run_dir = f"runs/{self.name}"
        self.nodes: dict[str, Any] = {}
        self.pods: dict[str, str] = {}  # node id -> pod name
        self.seen_done: set[str] = set()  # Pod nodes that were done in a status update before the last
        self.deleted_pods: list[str] = []
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
            pid, pod = fake_pod(self.api, self.name, f"{name}({attempt})[0].run(0)", phase, log, self.nodes,
                                template=f"{task}-attempt", message=message,
                                started=started(attempt) if started else STARTED)
            self.pods[pid] = pod
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
        self._write({"phase": "Running", "startedAt": STARTED, "nodes": self.nodes, **extra})
        self.seen_done |= {i for i in self.pods if self.nodes[i]["phase"] in ("Succeeded", "Failed", "Error")}

    def omitted(self, task: str) -> None:
        self._add(f"{self.name}.{task}", "Skipped", "Omitted", message="omitted: depends condition not met")

    def finish(self, expect: str | None = None, message: str = "") -> str:
        """Ends the Workflow in the phase Argo's controller would give it (see the module docstring);
        `expect`, when given, must be that phase. Returns it."""
        self._settle()
        self._link()
        phase = self.dag_phase()
        if expect is not None and expect != phase:
            raise AssertionError(f"the script expected the Workflow to end {expect}; Argo's assessDAGPhase says {phase}")
        self.nodes[self.root_id] = {**self.nodes[self.root_id], "phase": phase, "finishedAt": FINISHED}
        pod_gc = self.workflow["spec"].get("podGC") or {}
        strategy = pod_gc.get("strategy", "")
        # pod_cleanup.go getPodGCDelay: podGC.deleteDelayDuration, when set, overrides the controller's
        # 5 s; a delay longer than any test means the pods outlive it (deleted later, not played).
        delay = go_duration(pod_gc["deleteDelayDuration"]) if pod_gc.get("deleteDelayDuration") else None
        if ((strategy == "OnWorkflowSuccess" and phase == "Succeeded") or strategy == "OnWorkflowCompletion") and (
                delay is None or delay < 60):
            self._collect_pods()
        self._write({"phase": phase, "finishedAt": FINISHED, "nodes": self.nodes,
                     **({"message": message} if message else {})})
        return phase

    def _write(self, status: dict[str, Any]) -> None:
        """One status write, its nodes compressed as packer.go CompressWorkflowIfNeeded does when the
        Workflow's JSON (spec, metadata, status) is over max_workflow_size. Go's json.Marshal writes
        no spaces; the gzip is Go's (pgzip by default), which Python's gzip reads and writes alike."""
        def size(obj: Any) -> int:
            return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())

        status = {**status, "compressedNodes": None}  # a merge patch: null removes what an earlier write set
        if size({**self.workflow, "status": status}) > self.max_workflow_size:
            blob = base64.b64encode(gzip.compress(json.dumps(status["nodes"], separators=(",", ":")).encode()))
            status = {**status, "nodes": None, "compressedNodes": blob.decode()}
            if size({**self.workflow, "status": status}) > self.max_workflow_size:
                raise AssertionError("workflow is longer than maximum allowed size (packer.go): Argo would "
                                     "offload the nodes to a database, which bioinfra's addons do not set up")
            self.compressed_writes += 1
        self.api.patch_status(self.name, status)

    def _collect_pods(self) -> None:
        """podGC: every pod of the Workflow deleted (see the module docstring), after the client has had
        LIVED_S seconds to read the logs of the pods whose nodes it could have seen finish."""
        deadline = time.monotonic() + LIVED_S
        waiting = {self.pods[i] for i in self.seen_done}
        while waiting and time.monotonic() < deadline:
            waiting = {p for p in waiting if not self.api.requests("GET", f"/pods/{p}/log")}
            time.sleep(0.05)
        for pod in self.pods.values():
            code = self.api.request("DELETE", f"/api/v1/namespaces/bioinfra/pods/{pod}")
            assert code == 200, f"deleting pod {pod} answered {code}"
            self.deleted_pods.append(pod)

    # -- Argo's controller, the part that decides phases (workflow/controller/dag.go, v3.7.18) ------

    @property
    def _dag(self) -> dict[str, Any]:
        spec = self.workflow["spec"]
        return next(t for t in spec["templates"] if t["name"] == spec["entrypoint"])["dag"]

    def _deps(self, task: dict[str, Any]) -> list[str]:
        """The tasks a `depends` expression names (Argo strips .Succeeded etc. off each word)."""
        words = re.findall(r"[A-Za-z0-9_.-]+", task.get("depends") or "")
        out: list[str] = []
        for word in words:
            name = re.sub(r"\.(Succeeded|Failed|Errored|Skipped|Omitted|Daemoned|AnySucceeded|AllFailed)$", "", word)
            if name not in out:
                out.append(name)
        return out + [d for d in task.get("dependencies") or [] if d not in out]

    def _node(self, name: str) -> dict[str, Any] | None:
        return next((n for n in self.nodes.values() if n["name"] == f"{self.name}.{name}"), None)

    def _children_of_group(self, task: str) -> list[dict[str, Any]]:
        prefix = f"{self.name}.{task}("
        return [n for n in self.nodes.values() if n["type"] == "Retry" and n["name"].startswith(prefix)
                and ")(" not in n["name"][len(prefix):] and not n["name"].endswith(")[0].run(0)")]

    def _settle(self) -> None:
        """evaluateDependsLogic / shouldExecute for the tasks the script did not play."""
        fulfilled = {"Succeeded", "Failed", "Error", "Skipped", "Omitted"}
        for task in self._dag["tasks"]:
            if self._node(task["name"]) is not None:
                continue
            deps = self._deps(task)
            nodes = {d: self._node(d) for d in deps}
            if any(n is None or n["phase"] not in fulfilled for n in nodes.values()):
                continue
            expr = task.get("depends") or " && ".join(task.get("dependencies") or [])
            if expr and not self._depends_true(expr, nodes):
                self.omitted(task["name"])
            elif str(task.get("when", "")).strip() == "false":
                self.skipped(task["name"], "when 'false' evaluated false")

    def _depends_true(self, expr: str, nodes: dict[str, dict[str, Any]]) -> bool:
        results = {"Succeeded": "Succeeded", "Failed": "Failed", "Errored": "Error", "Skipped": "Skipped",
                   "Omitted": "Omitted"}

        def word(m: re.Match[str]) -> str:
            text = m.group(0)
            base, _, result = text.rpartition(".")
            if result in results:
                return str(nodes[base]["phase"] == results[result])
            if result in ("AnySucceeded", "AllFailed"):
                kids = [k["phase"] for k in self._children_of_group(base)]
                ok = any(k == "Succeeded" for k in kids) if result == "AnySucceeded" else (
                    bool(kids) and all(k == "Failed" for k in kids))
                return str(ok)
            return str(nodes[text]["phase"] in ("Succeeded", "Skipped"))

        python = re.sub(r"[A-Za-z][A-Za-z0-9_.-]*", word, expr).replace("&&", " and ").replace("||", " or ")
        python = re.sub(r"!(?!=)", " not ", python)
        return bool(eval(python, {"__builtins__": {}}))  # noqa: S307 - True/False/and/or/not/() only

    def _outbound(self, node: dict[str, Any]) -> list[str]:
        """getOutboundNodes: a Retry node's last attempt's, a TaskGroup's children's, else the node."""
        if node["type"] == "Retry" and node.get("children"):
            return [node["children"][-1]]
        if node["type"] == "TaskGroup" and node.get("children"):
            return [o for c in node["children"] for o in self._outbound(self.nodes[c])]
        return [node["id"]]

    def _link(self) -> None:
        """connectDependencies (and the Retry/TaskGroup parents of attempts and fan-out children)."""
        for n in self.nodes.values():
            n["children"] = []
        by_name = {n["name"]: n for n in self.nodes.values()}
        for n in self.nodes.values():  # attempts under their Retry node, in order
            if n["type"] == "Pod":
                owner = by_name.get(re.sub(r"\(\d+\)\[0\]\.run\(0\)$", "", n["name"]))
                if owner is not None:
                    owner["children"].append(n["id"])
        for task in self._dag["tasks"]:
            group = self._node(task["name"])
            if group is not None and group["type"] == "TaskGroup":
                group["children"] = [c["id"] for c in self._children_of_group(task["name"])]
        for task in self._dag["tasks"]:
            node = self._node(task["name"])
            if node is None:
                continue
            deps = self._deps(task)
            parents = [self.root_id] if not deps else [
                o for d in deps if self._node(d) is not None for o in self._outbound(self._node(d))]
            for parent in parents:
                self.nodes[parent].setdefault("children", []).append(node["id"])

    def dag_phase(self) -> str:
        """assessDAGPhase (isShutdown false): BFS from the DAG's children with a branch phase; unique
        (node, phase) pairs; a Retry node's attempts are skipped (getRetryNodeChildrenIds)."""
        completed, fulfilled = {"Succeeded", "Failed", "Error"}, {"Succeeded", "Failed", "Error", "Skipped", "Omitted"}
        dag = self._dag
        tasks = dag["tasks"]
        if dag.get("target"):
            targets = str(dag["target"]).split(" ")
        else:
            depended = {d for t in tasks for d in self._deps(t)}
            targets = sorted(t["name"] for t in tasks if t["name"] not in depended)
        target_ids = {self._node(t)["id"]: t for t in targets if self._node(t) is not None}
        target_phase = dict.fromkeys(targets, "")
        queue, seen = deque(), set()

        def add(ids: list[str], phase: str) -> None:
            for i in ids:
                if (i, phase) not in seen:
                    seen.add((i, phase))
                    queue.append((i, phase))

        add(self.nodes[self.root_id].get("children", []), "Succeeded")
        while queue:
            node_id, branch = queue.popleft()
            node = self.nodes[node_id]
            if node["phase"] not in fulfilled:
                return "Running"
            if node["phase"] in completed:
                branch = node["phase"]
            task = target_ids.get(node_id)
            if task is not None and target_phase[task] not in ("Failed", "Error"):
                target_phase[task] = branch
            if node["type"] == "Retry":
                add([c for a in reversed(node.get("children", [])) for c in self.nodes[a].get("children", [])], branch)
            else:
                add(node.get("children", []), branch)
        fail_fast = dag.get("failFast", True) is not False
        by_name = {t["name"]: t for t in tasks}
        result = "Succeeded"
        for task in targets:
            branch = target_phase[task]
            if branch == "":
                result = "Running"
                if not fail_fast:
                    break
            elif branch in ("Failed", "Error"):
                continue_on = by_name[task].get("continueOn") or {}
                if continue_on.get({"Failed": "failed", "Error": "error"}[branch]):
                    continue
                result = branch
                if fail_fast:
                    break
        return result

    def _add(self, name: str, kind: str, phase: str, *, template: str = "", message: str = "") -> str:
        node_id, body = node(self.name, name, kind, phase, template=template, message=message)
        self.nodes[node_id] = body
        return node_id


def play(api, s3, script: Callable[[ArgoStatus, dict[str, Any]], None], *,
         max_workflow_size: int = MAX_WORKFLOW_SIZE) -> threading.Thread:
    """Plays the controller in a thread: waits for the Workflow, then `script(status, result)`.
    thread.result["workflow"] is the Workflow as created; ["error"] what went wrong in the script."""
    result: dict[str, Any] = {}

    def controller() -> None:
        try:
            workflow = created_workflow(api)
            result["workflow"] = workflow
            status = ArgoStatus(api, s3, workflow, max_workflow_size=max_workflow_size)
            result["argo"] = status
            script(status, result)
        except Exception as exc:  # surfaced by the test through result["error"]
            result["error"] = exc

    thread = threading.Thread(target=controller, daemon=True)
    thread.result = result  # type: ignore[attr-defined]
    thread.start()
    return thread
