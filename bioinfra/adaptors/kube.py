"""The Kubernetes API, through the official `kubernetes` client (the only module that imports it).

Everything bioinfra does inside a cluster goes through `Kube`: Workflows (Argo's custom resource),
pods and their logs, Secrets, Services and PVCs. Connection problems (no kubeconfig, no answer,
401/403) become ClusterUnreachableError (exit 13) naming the kubeconfig and context; other API
errors keep the status code so callers can tell "not found" from "refused".
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from bioinfra.errors import BioinfraError, ClusterUnreachableError, UnsupportedError

ARGO = ("argoproj.io", "v1alpha1")
WORKFLOWS = "workflows"


def _client() -> Any:
    try:
        import kubernetes
    except ImportError:  # pragma: no cover - depends on the install
        raise UnsupportedError(
            "running on a cluster needs the kubernetes client",
            hint="pip install 'bioinfra[kube]' (included in the aws and gcp extras)",
        ) from None
    return kubernetes


class KubeApiError(BioinfraError):
    """The API server answered with an error other than 401/403 (e.g. 404, 409, 422)."""

    def __init__(self, message: str, status: int, *, hint: Optional[str] = None):
        super().__init__(message, hint=hint)
        self.status = status


@dataclass
class Kube:
    """One cluster: an ApiClient built from a kubeconfig and context."""

    api: Any
    kubeconfig: Path
    context: str
    server: str

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def core(self) -> Any:
        return _client().client.CoreV1Api(self.api)

    @property
    def custom(self) -> Any:
        return _client().client.CustomObjectsApi(self.api)

    @property
    def apps(self) -> Any:
        return _client().client.AppsV1Api(self.api)

    @property
    def storage(self) -> Any:
        return _client().client.StorageV1Api(self.api)

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the API; map transport and auth failures to ClusterUnreachableError, the rest to KubeApiError."""
        kubernetes = _client()
        kwargs.setdefault("_request_timeout", 30)
        try:
            return fn(*args, **kwargs)
        except kubernetes.client.exceptions.ApiException as exc:
            if exc.status in (401, 403):
                refused = ClusterUnreachableError(
                    f"the cluster refused {what} ({exc.status} {exc.reason}) at {self.server}",
                    hint=f"check the credentials of context '{self.context}' in {self.kubeconfig}"
                    + ("; RBAC must allow it" if exc.status == 403 else ""),
                )
                refused.status = exc.status  # 403: these credentials work, RBAC refuses this one call
                raise refused from None
            raise KubeApiError(f"{what} failed: {exc.status} {_reason(exc)}", exc.status) from None
        except Exception as exc:
            if _is_transport_error(exc):
                raise ClusterUnreachableError(
                    f"the cluster's API server at {self.server} does not answer ({what})",
                    hint=f"is the cluster up? context '{self.context}' in {self.kubeconfig}; "
                    "`bioinfra doctor` checks each part",
                ) from None
            raise

    def version(self) -> str:
        """The API server's version ("v1.31.2"); a cheap reachability check."""
        # Not VersionApi: it asks for "/version/", which some API-server stand-ins do not serve.
        data = self.call("GET /version", self.api.call_api, "/version", "GET", response_types_map={200: "object"},
                         auth_settings=["BearerToken"], _return_http_data_only=True)
        return str((data or {}).get("gitVersion", "?"))

    # -- workflows -----------------------------------------------------------------------------

    def create_workflow(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("creating the Workflow", self.custom.create_namespaced_custom_object,
                         *ARGO, namespace, WORKFLOWS, body)

    def get_workflow(self, namespace: str, name: str) -> dict[str, Any]:
        return self.call(f"reading Workflow {name}", self.custom.get_namespaced_custom_object,
                         *ARGO, namespace, WORKFLOWS, name)

    def list_workflows(self, namespace: str, label_selector: str = "") -> list[dict[str, Any]]:
        found = self.call("listing Workflows", self.custom.list_namespaced_custom_object,
                          *ARGO, namespace, WORKFLOWS, label_selector=label_selector)
        return list(found.get("items", []))

    def patch_workflow(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.call(f"updating Workflow {name}", self.custom.patch_namespaced_custom_object,
                         *ARGO, namespace, WORKFLOWS, name, patch)

    def watch_workflow(self, namespace: str, name: str, *, timeout_seconds: int = 300) -> Iterator[dict[str, Any]]:
        """Yield the Workflow each time it changes, until the caller stops iterating.

        A watch that ends (server timeout, dropped connection, 410 Gone) is re-opened after a fresh
        GET, so a long run survives API-server restarts; the caller sees the current object first."""
        kubernetes = _client()
        while True:
            yield self.get_workflow(namespace, name)
            watch = kubernetes.watch.Watch()
            try:
                for event in watch.stream(self.custom.list_namespaced_custom_object, *ARGO, namespace, WORKFLOWS,
                                          field_selector=f"metadata.name={name}", timeout_seconds=timeout_seconds,
                                          _request_timeout=timeout_seconds + 30):
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR" or obj.get("metadata", {}).get("name") != name:
                        continue  # an ERROR (410 Gone) is followed by the stream's end: re-list below
                    if event.get("type") == "DELETED":
                        raise KubeApiError(f"Workflow {name} was deleted while being watched", 404)
                    stop = yield obj
                    if stop:
                        watch.stop()
                        return
            except kubernetes.client.exceptions.ApiException as exc:
                if exc.status != 410:
                    raise KubeApiError(f"watching Workflow {name} failed: {exc.status} {_reason(exc)}",
                                       exc.status) from None
            except Exception as exc:
                if not _is_transport_error(exc):
                    raise
                time.sleep(1)  # a dropped connection: re-list and watch again

    # -- pods, secrets, services, claims ---------------------------------------------------------

    def pod_log(self, namespace: str, pod: str, *, container: str = "main", tail_lines: Optional[int] = None) -> str:
        kwargs: dict[str, Any] = {"container": container}
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        # The raw body, decoded here: the generated client's own deserialising turns a log into the repr
        # of its bytes ("b'...'") in kubernetes 36 (kubernetes-client/python#2596, the version pinned
        # here), and before that it json-loaded a log that happened to be JSON and gave back Python's
        # repr of it ('{"a": 1}' became "{'a': 1}", kubernetes-client/python#811). The API server sends
        # the log as text/plain bytes (core/v1 readNamespacedPodLog).
        response = self.call(f"reading the log of pod {pod}", self.core.read_namespaced_pod_log, pod, namespace,
                             _preload_content=False, **kwargs)
        if response is None:
            return ""
        data = response.data if hasattr(response, "data") else response
        if isinstance(data, bytes):
            return data.decode("utf-8", errors="replace")
        return str(data)

    def secret_values(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret's data, decoded. Never logged or printed by callers."""
        secret = self.call(f"reading Secret {namespace}/{name}", self.core.read_namespaced_secret, name, namespace)
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    # -- appended for issue #6: doctor and teardown ----------------------------------------------

    def version_within(self, timeout: float) -> str:
        """Like version(), but each attempt gives up after `timeout` seconds (doctor: no long hangs)."""
        data = self.call("GET /version", self.api.call_api, "/version", "GET", response_types_map={200: "object"},
                         auth_settings=["BearerToken"], _return_http_data_only=True, _request_timeout=timeout)
        return str((data or {}).get("gitVersion", "?"))


    # -- nodes (onprem: the pool labels the Workflows' nodeSelectors ask for) ----------------------

    def list_nodes(self, **kwargs: Any) -> list[Any]:
        """Every Node (V1Node objects): GET /api/v1/nodes (listCoreV1Node)."""
        return list(self.call("listing the cluster's nodes", self.core.list_node, **kwargs).items)

    def label_node(self, name: str, labels: dict[str, str]) -> Any:
        """Set `labels` on Node `name`, leaving its other labels alone: what `kubectl label node` does.

        PATCH /api/v1/nodes/{name} (patchCoreV1Node) with a JSON merge patch (RFC 7386) of
        metadata.labels: keys in the patch are set, the others kept. Ref
        https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1/#patch-partially-update-the-specified-node
        (the operation accepts application/merge-patch+json among its patch types; kubectl label
        sends a merge patch too). Needs RBAC `patch` on nodes (cluster-scoped): a 403 becomes
        ClusterUnreachableError naming the context."""
        body = {"metadata": {"labels": dict(labels)}}
        return self.call(f"labelling node {name}", self.core.patch_node, name, body,
                         _content_type="application/merge-patch+json")


    # -- an Argo Workflows installed by someone else (onprem.argo) --------------------------------

    def custom_resource_definition(self, name: str) -> Optional[dict[str, Any]]:
        """The CustomResourceDefinition `name` (e.g. workflows.argoproj.io) as a plain dict, or None if
        the cluster has none. GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}
        (readApiextensionsV1CustomResourceDefinition), cluster-scoped; Ref
        https://kubernetes.io/docs/reference/kubernetes-api/extend-resources/custom-resource-definition-v1/#get-read-the-specified-customresourcedefinition
        Needs RBAC `get` on customresourcedefinitions (403: ClusterUnreachableError with status 403)."""
        api = _client().client.ApiextensionsV1Api(self.api)
        try:
            crd = self.call(f"reading CustomResourceDefinition {name}", api.read_custom_resource_definition, name)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise
        return self.api.sanitize_for_serialization(crd)

    def deployments_everywhere(self) -> list[dict[str, Any]]:
        """Every Deployment of every namespace (metadata only is read), as plain dicts.
        GET /apis/apps/v1/deployments (listAppsV1DeploymentForAllNamespaces); Ref
        https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/#list-list-or-watch-objects-of-kind-deployment
        Needs RBAC `list` on deployments cluster-wide (often refused on shared clusters: 403)."""
        found = self.call("listing Deployments in every namespace", self.apps.list_deployment_for_all_namespaces)
        return [self.api.sanitize_for_serialization(d) for d in found.items]


def connect(kubeconfig: Path, context: Optional[str] = None) -> Kube:
    """An API client for `context` (default: the file's current context) of `kubeconfig`."""
    kubernetes = _client()
    path = kubeconfig.expanduser()
    if not path.is_file():
        raise ClusterUnreachableError(f"kubeconfig {path} does not exist",
                                      hint="onprem: set onprem.kubeconfig; aws/gcp: `bioinfra kubeconfig TARGET`")
    try:
        contexts, current = kubernetes.config.list_kube_config_contexts(config_file=str(path))
        names = [c["name"] for c in contexts]
        chosen = context or (current or {}).get("name")
        if not chosen:
            raise ClusterUnreachableError(f"{path} has no current context", hint="set onprem.context in bioinfra.yaml")
        if chosen not in names:
            raise ClusterUnreachableError(f"context '{chosen}' is not in {path}",
                                          hint=f"contexts there: {', '.join(names) or 'none'}")
        api = kubernetes.config.new_client_from_config(config_file=str(path), context=chosen)
    except kubernetes.config.ConfigException as exc:
        raise ClusterUnreachableError(f"cannot use {path}: {exc}",
                                      hint="`kubectl --kubeconfig FILE config view` shows what is wrong") from None
    return Kube(api=api, kubeconfig=path, context=chosen, server=api.configuration.host)


def _reason(exc: Any) -> str:
    """The message of a Kubernetes Status body, else the HTTP reason."""
    import json

    try:
        return json.loads(exc.body).get("message") or exc.reason
    except Exception:  # noqa: BLE001 - any body that is not a Status
        return str(exc.reason)


def _is_transport_error(exc: BaseException) -> bool:
    """urllib3's connection/timeout errors (imported lazily; the kubernetes client brings urllib3)."""
    import urllib3

    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))
