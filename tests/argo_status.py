"""A realistic Argo v3.7 status of a finished run, to size the Workflow object the controller stores.

Argo keeps a Workflow whole in one Kubernetes object; the controller measures the JSON of all of it
(metadata, spec, status: workflow/packer/packer.go getSize) against 1 MiB (getMaxWorkflowSize), then
stores status.nodes gzipped and base64-encoded in status.compressedNodes (CompressWorkflowIfNeeded,
util/file CompressEncodeString), and fails the run when even that is over ("workflow is longer than
maximum allowed size") unless node status offloading to a database is set up, which bioinfra's
addons do not do. Ref docs/offloading-large-workflows.md (argo-workflows v3.7).

Every node carries the fields Argo writes for it (pkg/apis/workflow/v1alpha1/workflow_types.go,
NodeStatus): id (`<workflow>-<fnv32a>`, Workflow.NodeID), name, displayName, type, templateName,
templateScope, phase, boundaryID, startedAt, finishedAt, progress, resourcesDuration,
estimatedDuration, inputs/outputs parameters, children, outboundNodes, hostNodeName, message,
nodeFlag, taskResultSynced. The tree is the one our retry wrappers make (templates/workflows/_steps.j2):
a DAG task calls `<step>` (a steps template with a retryStrategy: a Retry node, its attempt a Steps
node, a StepGroup), whose one step `run` calls `<step>-attempt` (a Retry node and its Pod): five
nodes per task, or per fan-out child under the task's TaskGroup node.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from typing import Any

MIB = 1024 * 1024
HOST = "ip-10-0-{a}-{b}.eu-west-2.compute.internal"  # EKS node names: the longest of the targets'


def node_id(workflow: str, name: str) -> str:
    """Workflow.NodeID: fmt.Sprintf("%s-%v", wf.Name, fnv32a(nodeName))."""
    h = 0x811C9DC5
    for byte in name.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{workflow}-{h}"


class StatusBuilder:
    def __init__(self, workflow: str, started: dt.datetime) -> None:
        self.workflow = workflow
        self.nodes: dict[str, dict[str, Any]] = {}
        self.clock = started
        self.pods = 0

    def _stamp(self, seconds: int) -> tuple[str, str]:
        start = self.clock
        self.clock += dt.timedelta(seconds=7)
        end = start + dt.timedelta(seconds=seconds)
        return start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")

    def node(self, name: str, display: str, kind: str, *, template: str | None, boundary: str | None,
             inputs: dict[str, str] | None = None, outputs: dict[str, str] | None = None, seconds: int = 300,
             retried_child: bool = False) -> dict[str, Any]:
        nid = node_id(self.workflow, name)
        started, finished = self._stamp(seconds)
        node: dict[str, Any] = {"id": nid, "name": name, "displayName": display, "type": kind}
        if template:
            node["templateName"] = template
            node["templateScope"] = f"local/{self.workflow}"
        node["phase"] = "Succeeded"
        if boundary:
            node["boundaryID"] = boundary
        node.update(startedAt=started, finishedAt=finished, progress="1/1",
                    resourcesDuration={"cpu": seconds, "memory": seconds * 2}, estimatedDuration=seconds)
        if retried_child:
            node["nodeFlag"] = {"retried": True}
        if inputs:
            node["inputs"] = {"parameters": [{"name": k, "value": v} for k, v in inputs.items()]}
        if kind == "Pod":
            node["outputs"] = {"exitCode": "0"}
            node["hostNodeName"] = HOST.format(a=self.pods % 250, b=self.pods % 200)
            node["taskResultSynced"] = True
            self.pods += 1
        if outputs:
            node.setdefault("outputs", {})["parameters"] = [{"name": k, "value": v} for k, v in outputs.items()]
        self.nodes[nid] = node
        return node

    def step(self, name: str, step: str, boundary: str, inputs: dict[str, str] | None = None,
             outputs: dict[str, str] | None = None, display: str | None = None, failures: int = 0) -> dict[str, Any]:
        """A DAG task (or fan-out child) `name` calling the wrapper `step`: Retry -> Steps -> StepGroup
        -> Retry(run) -> Pod, with `failures` failed attempts (each a whole Steps subtree, its pod
        Failed with a message) retried by the wrapper's failure budget before the one that succeeds.
        Returns the outer node; the last pod is its outbound node."""
        display = display or name.rsplit(".", 1)[-1]
        outer = self.node(name, display, "Retry", template=step, boundary=boundary, inputs=inputs, outputs=outputs)
        outer["children"] = []
        for n in range(failures + 1):
            failed = n < failures
            attempt = self.node(f"{name}({n})", f"{display}({n})", "Steps", template=step, boundary=boundary,
                                inputs=inputs, outputs=None if failed else outputs, retried_child=True)
            group = self.node(f"{name}({n})[0]", "[0]", "StepGroup", template=None, boundary=attempt["id"])
            run = self.node(f"{name}({n})[0].run", "run", "Retry", template=f"{step}-attempt",
                            boundary=attempt["id"], inputs=inputs, outputs=None if failed else outputs)
            pod = self.node(f"{name}({n})[0].run(0)", "run(0)", "Pod", template=f"{step}-attempt",
                            boundary=attempt["id"], inputs=inputs, outputs=None if failed else outputs,
                            retried_child=True)
            if failed:
                message = "Pod was active on the node longer than the specified deadline"
                for x in (attempt, group, run, pod):
                    x["phase"] = "Failed"
                    x["message"] = message if x is pod else f"child '{pod['id']}' failed"
                pod["outputs"] = {"exitCode": "137"}
            outer["children"].append(attempt["id"])
            attempt["children"] = [group["id"]]
            group["children"] = [run["id"]]
            run["children"] = [pod["id"]]
            for x in (outer, attempt, run):
                x["outboundNodes"] = [pod["id"]]
        return outer

    def fan_out(self, task: str, step: str, boundary: str, items: list[dict[str, int]], failures: int = 0
                ) -> dict[str, Any]:
        group = self.node(f"{self.workflow}.{task}", task, "TaskGroup", template=None, boundary=boundary)
        children = []
        for i, item in enumerate(items):
            desc = ",".join(f"{k}:{v}" for k, v in item.items())
            child = self.step(f"{self.workflow}.{task}({i}:{desc})", step, boundary,
                              inputs={k: str(v) for k, v in item.items()}, display=f"{task}({i}:{desc})",
                              failures=failures)
            children.append(child["id"])
        group["children"] = children
        return group


def simulated_workflow(spec_doc: dict[str, Any], workflow: str, tasks: list[tuple[str, str]],
                       fan_outs: dict[str, list[dict[str, int]]], plan_output: tuple[str, str] | None = None,
                       failures: int = 0) -> dict[str, Any]:
    """The Workflow object as the controller holds it at the end of a run in which every step
    succeeded (each fan-out child after `failures` failed attempts): the rendered spec, the metadata
    the API server and controller add, and a status with every node. `tasks`: (task, template) in
    order; `fan_outs`: the items of each fan-out task; `plan_output`: ("task:parameter", JSON) of the
    output parameter the fan-out reads (it is in the plan's nodes, four times)."""
    b = StatusBuilder(workflow, dt.datetime(2026, 12, 6, 4, 0, 0))
    root = b.node(workflow, workflow, "DAG", template="main", boundary=None, seconds=86400)
    root_children, outbound = [], []
    for task, template in tasks:
        if task in fan_outs:
            node = b.fan_out(task, template, root["id"], fan_outs[task], failures)
            outbound += [b.nodes[c]["outboundNodes"][-1] for c in node["children"]]
        else:
            outputs = {plan_output[0].split(":")[1]: plan_output[1]} if plan_output and plan_output[0].startswith(
                task + ":") else None
            node = b.step(f"{workflow}.{task}", template, root["id"], outputs=outputs)
            outbound.append(node["outboundNodes"][0])
        root_children.append(node["id"])
    root["children"] = root_children[:2]
    root["outboundNodes"] = outbound[-2:]
    pods = [n["id"] for n in b.nodes.values() if n["type"] == "Pod"]
    meta = dict(spec_doc["metadata"])
    meta.pop("generateName", None)
    meta.update(name=workflow, uid="0f4c1e6e-9a3d-4b8e-b1c2-3d4e5f6a7b8c", resourceVersion="123456789",
                generation=len(b.nodes), creationTimestamp="2026-12-06T04:00:00Z")
    meta["labels"] = {**meta.get("labels", {}), "workflows.argoproj.io/completed": "true",
                      "workflows.argoproj.io/phase": "Succeeded"}
    meta["annotations"] = {"workflows.argoproj.io/pod-name-format": "v2"}
    meta["managedFields"] = [{"manager": m, "operation": "Update", "apiVersion": "argoproj.io/v1alpha1",
                              "time": "2026-12-06T04:00:00Z", "fieldsType": "FieldsV1",
                              "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:workflows.argoproj.io/phase": {}}},
                                           "f:spec": {}, "f:status": {}}}
                             for m in ("bioinfra", "workflow-controller")]
    status = {
        "phase": "Succeeded", "startedAt": "2026-12-06T04:00:00Z", "finishedAt": "2026-12-07T04:00:00Z",
        "progress": f"{len(pods)}/{len(pods)}", "estimatedDuration": 86400,
        "resourcesDuration": {"cpu": 300 * len(pods), "memory": 600 * len(pods)},
        "conditions": [{"type": "PodRunning", "status": "False"}, {"type": "Completed", "status": "True"}],
        "artifactRepositoryRef": {"default": True, "artifactRepository": {}},
        "taskResultsCompletionStatus": dict.fromkeys(pods, True),
        "nodes": b.nodes,
    }
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": meta, "spec": spec_doc["spec"],
            "status": status}


def stored_sizes(workflow: dict[str, Any]) -> dict[str, int]:
    """Bytes of the object as Argo measures it (json.Marshal of the whole Workflow), with status.nodes
    as they are, and with them compressed into status.compressedNodes as packer.compressWorkflow does."""
    def size(obj: Any) -> int:
        return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())

    nodes = workflow["status"]["nodes"]
    compressed = base64.b64encode(gzip.compress(json.dumps(nodes, separators=(",", ":")).encode())).decode()
    packed = {**workflow, "status": {**{k: v for k, v in workflow["status"].items() if k != "nodes"},
                                     "compressedNodes": compressed}}
    return {"raw": size(workflow), "compressed": size(packed), "nodes": len(nodes)}
