"""STAND-IN for a Kubernetes API server: kmock's KubernetesEmulator over real HTTP on 127.0.0.1.

No kube-apiserver can run on the development machine, so the kubernetes-client code is tested
against kmock (a stateful in-memory API server: create/get/list/patch/delete/watch, request log).
kmock is asyncio-only and the official client is synchronous, so the server runs on its own event
loop in a background thread (docs/notes/kmock.md). Known differences from a real API server, and
what the tests do about them:
  - label and field selectors are ignored: the code filters again on its side;
  - custom-object creates answer 200 where the client expects 201: a route answers 201;
  - no resourceVersion/uid/creationTimestamp: tests set what the code reads;
  - watches end only when the client stops them or the response is scripted to close;
  - kmock takes only `watch=true` as a watch; the kubernetes client (36) sends `watch=True`, which
    kube-apiserver accepts (Go's strconv.ParseBool): `_accept_any_bool_watch` lowercases it.
Argo's controller is played by the test: it PATCHes the Workflow's /status over HTTP from kmock's
loop (`KubeApi.patch_status`), which is what makes the watch deliver MODIFIED events.

Nodes (cluster-scoped, GET /api/v1/nodes and PATCH /api/v1/nodes/{name}) are kmock's bundled `nodes`
resource: `add_node` creates one as a kubelet would report it, checked first against the upstream
Kubernetes 1.31 schema (kubernetes-validate, strict: no field the API does not have), and
`node_patches` hands a test the PATCHes as sent (path, Content-Type, body) to check against what
the API's patchCoreV1Node accepts. CustomResourceDefinitions (GET
/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}) and Deployments (GET
/apis/apps/v1/deployments) are kmock's bundled resources too: `add_crd` and `add_deployment` create
them, checked against the same schema (an Argo Workflows someone else installed: onprem.argo).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

WORKFLOW_RESOURCE = "argoproj.io/v1alpha1/workflows"
NAMESPACE = "bioinfra"


def _accept_any_bool_watch() -> None:
    from kmock._internal import parsing

    if getattr(parsing.guess_k8s, "bioinfra_patched", False):
        return
    original = parsing.guess_k8s

    def guess_k8s(k8s: Any, method: Any, query: dict[str, str]) -> Any:
        if str(query.get("watch", "")).lower() in ("true", "1"):
            query = {**query, "watch": "true"}
        return original(k8s, method, query)

    guess_k8s.bioinfra_patched = True  # type: ignore[attr-defined]
    parsing.guess_k8s = guess_k8s


class KubeApi:
    """kmock's emulator in a thread; `.url` is its base URL, `.k` the emulator (its request log)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="kmock")
        self.url = ""

    def __enter__(self) -> KubeApi:
        _accept_any_bool_watch()
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        import kmock

        # Built inside the loop: the emulator owns asyncio locks and queues.
        self._stack = contextlib.AsyncExitStack()
        self.k = await self._stack.enter_async_context(kmock.KubernetesEmulator())
        server = await self._stack.enter_async_context(kmock.Server(self.k, host="127.0.0.1"))
        self.url = str(server.url).rstrip("/")
        self.k.resources.load_bundled()  # core kinds (pods, secrets, services, PVCs, ...)
        self.k.resources[WORKFLOW_RESOURCE] = {"kind": "Workflow", "namespaced": True}
        # The client maps a custom-object create only on 201; the emulator answers 200.
        self.k[kmock.action.CREATE] << 201 << (lambda req: req.data)
        self.k["get /version"] << {"major": "1", "minor": "31", "gitVersion": "v1.31.2-kmock",
                                   "gitCommit": "", "gitTreeState": "", "buildDate": "",
                                   "goVersion": "", "compiler": "", "platform": "linux/amd64"}

    def __exit__(self, *exc: Any) -> None:
        try:
            self.run(self._stack.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()

    # -- driving it from a test ----------------------------------------------------------------

    def run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run kmock's DSL (`k[...] << ...`) on its own loop (its queues are not thread-safe)."""

        async def inside() -> Any:
            return fn(*args)

        return self.run(inside())

    def request(self, method: str, path: str, body: Optional[dict[str, Any]] = None) -> int:
        """An HTTP request to the emulator from its own loop (e.g. what Argo's controller would send)."""

        async def send() -> int:
            import aiohttp

            async with aiohttp.ClientSession() as session, session.request(
                method, f"{self.url}{path}", json=body,
                headers={"Content-Type": "application/merge-patch+json"} if method == "PATCH" else None,
            ) as resp:
                await resp.read()
                return resp.status

        return self.run(send())

    def patch_status(self, name: str, status: dict[str, Any], namespace: str = NAMESPACE) -> None:
        """Play Argo's controller: set the Workflow's status (a watch sees MODIFIED)."""
        code = self.request("PATCH", f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/workflows/{name}/status",
                            {"metadata": {"namespace": namespace}, "status": status})
        assert code == 200, f"status patch answered {code}"

    def later(self, delay: float, fn: Any, *args: Any) -> None:
        """Run `fn(*args)` in a plain thread after `delay` seconds (e.g. status changes during a watch)."""
        timer = threading.Timer(delay, fn, args)
        timer.daemon = True
        timer.start()

    def create(self, path: str, body: dict[str, Any]) -> None:
        code = self.request("POST", path, body)
        assert code in (200, 201), f"create {path} answered {code}"

    def requests(self, method: Optional[str] = None, contains: str = "") -> list[Any]:
        found = []
        for i in range(len(self.k)):
            req = self.k[i]
            if (method is None or req.method == method) and contains in str(req.url.path):
                found.append(req)
        return found

    def add_node(self, name: str, *, ready: bool = True, cordoned: bool = False, pool: Optional[str] = None,
                 cpu: str = "4", taints: tuple[tuple[str, str], ...] = (), control_plane: bool = False,
                 gpus: int = 0) -> dict[str, Any]:
        """A Node as the kubelet reports it: Ready condition, allocatable, taints ((key, effect) pairs)."""
        import kubernetes_validate

        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        if pool:
            labels["bioinfra.io/pool"] = pool
        if control_plane:
            labels["node-role.kubernetes.io/control-plane"] = ""
        allocatable = {"cpu": cpu, "memory": "16Gi", "pods": "110", **({"nvidia.com/gpu": str(gpus)} if gpus else {})}
        body = {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {**({"unschedulable": True} if cordoned else {}),
                     **({"taints": [{"key": k, "effect": e} for k, e in taints]} if taints else {})},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "Unknown",
                                       "reason": "KubeletReady" if ready else "NodeStatusUnknown"}],
                       "allocatable": allocatable, "capacity": allocatable},
        }
        kubernetes_validate.validate(body, "1.31", strict=True)  # raises on a shape the API does not have
        self.create("/api/v1/nodes", body)
        return body

    def add_crd(self, group: str, kind: str, plural: str, *, annotations: Optional[dict[str, str]] = None) -> dict[str, Any]:
        """A CustomResourceDefinition as `kubectl apply` or Helm leaves it (Helm adds its
        meta.helm.sh/release-name and release-namespace annotations to every object of a release).
        Shape: apiextensions.k8s.io/v1 CustomResourceDefinition, checked against the Kubernetes 1.31
        schema (kubernetes-validate, strict). Ref
        https://kubernetes.io/docs/reference/kubernetes-api/extend-resources/custom-resource-definition-v1/"""
        import kubernetes_validate

        body = {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}", **({"annotations": annotations} if annotations else {})},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                     "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]},
        }
        kubernetes_validate.validate(body, "1.31", strict=True)
        self.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body)
        return body

    def add_deployment(self, namespace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
        """An apps/v1 Deployment (one container), checked against the Kubernetes 1.31 schema. Ref
        https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/"""
        import kubernetes_validate

        body = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "main", "image": "quay.io/argoproj/workflow-controller:v3.6.4"}]}}},
        }
        kubernetes_validate.validate(body, "1.31", strict=True)
        self.create(f"/apis/apps/v1/namespaces/{namespace}/deployments", body)
        return body

    def node(self, name: str) -> dict[str, Any]:
        """A Node as stored now (e.g. after a PATCH)."""
        import kmock

        def plain(value: Any) -> Any:  # kmock's ObjectVersion views -> plain dicts and lists
            if hasattr(value, "items"):
                return {k: plain(v) for k, v in value.items()}
            return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value

        return plain(self.k.objects[kmock.resource("v1/nodes"), None, name].last)

    def node_patches(self) -> list[tuple[str, str, Any]]:
        """(path, Content-Type, body) of every PATCH of a Node."""
        return [(str(r.url.path), r.headers.get("Content-Type", ""), r.data) for r in self.requests("PATCH", "/api/v1/nodes/")]

    def kubeconfig(self, path: Path, context: str = "kmock") -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "kmock-token"}}],
            "contexts": [{"name": context, "context": {"cluster": "kmock", "user": "tester"}}],
        }))
        path.chmod(0o600)
        return path


def unreachable_kubeconfig(context: str = "c") -> str:
    """A kubeconfig (YAML text) whose API server is a loopback port nothing listens on: what a
    cluster that is down, or a VPN that is off, looks like to the client."""
    import socket

    with socket.socket() as probe:  # bound, then closed: free, and nobody listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "u"}}]})


@pytest.fixture
def kube_api() -> Iterator[KubeApi]:
    """kmock's Kubernetes emulator on a free 127.0.0.1 port (STAND-IN for kube-apiserver)."""
    pytest.importorskip("kmock", reason="kmock (the API-server stand-in) needs Python >= 3.11")
    with KubeApi() as api:
        yield api
