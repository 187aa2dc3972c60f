"""FakeGoogleApis: a small stateful stand-in for Google's REST APIs, for tests.

This is NOT an emulator Google ships (there is none for these APIs): it is our own in-memory HTTP
server on 127.0.0.1 that answers the REST paths the real google-cloud-* client libraries call, so
the code under test runs unchanged with `AnonymousCredentials`, `transport="rest"` and
`client_options={"api_endpoint": fake.url}`. Every request is recorded (`fake.requests`) so tests
assert on what went over the wire.

What it speaks (collections are a table: `fake.add_collection(...)` adds more):

  container v1         /v1/projects/*/locations/*/clusters[/*[/nodePools[/*]]]  (a cluster's GET
                       embeds its node pools; create/delete answer a container Operation, status
                       DONE), /v1/projects/*/locations/*/operations/*  (get_operation)
  compute v1           /compute/v1/projects/*                                    (Project, quotas)
                       /compute/v1/projects/*/regions[/*], /zones[/*]           (Region quotas, zones)
                       /compute/v1/projects/*/zones/*/acceleratorTypes[/*]
                       /compute/v1/projects/*/aggregated/<collection>           (any compute collection)
                       global:   firewalls networks routes addresses forwardingRules backendServices
                                 healthChecks
                       regional: subnetworks routers addresses forwardingRules targetPools disks
                                 instanceGroupManagers backendServices healthChecks
                       zonal:    disks instanceGroups instanceGroupManagers instances
                       + global/regional/zonal operations[/*][/wait]; insert/patch/put/delete and
                       <resource>/setLabels answer an Operation (status DONE unless
                       `fake.operation_polls` > 0, see below)
  serviceusage v1      /v1/projects/*/services[/*], /v1/projects/*/services:batchGet,
                       /v1/projects/*/services/*:enable|:disable, /v1/projects/*/services:batchEnable
                       (a service never seeded reads as DISABLED, as in Google)
  cloudresourcemanager /v3/projects/*  (an unknown project is 403 PERMISSION_DENIED, as in Google)
  file v1              /v1/projects/*/locations/*/instances[/*]        (create/delete: done LRO)
  artifactregistry v1  /v1/projects/*/locations/*/repositories[/*]     (create/delete: done LRO)
  iam v1               /v1/projects/*/serviceAccounts[/*]              (accountId -> email name)
  storage v1           GET /storage/v1/b/*  (buckets.get: `fake.add_bucket`; 404 for an unknown
                       bucket, 403 for one of another project, as GCS answers), PATCH /storage/v1/b/*
                       (buckets.patch: `labels` merged, a label sent as null deleted); objects are
                       gcp-storage-emulator's, tests/fakes/fixtures.py

Lists page (`maxResults`/`pageSize` + `pageToken`; `fake.max_page_size` forces small pages) and
filter (`filter=`): `labels.KEY=VALUE`, `labels.KEY = "VALUE"`, `name != x`, `name eq 'regex'`,
`state:ENABLED`, `name:prefix*`, `labels.KEY:*`, several terms joined by AND or in parentheses.
A `-` location lists every location (`/v1/projects/p/locations/-/instances`).

Differences from Google a test may meet: changes apply at once (an operation only *reports*
RUNNING for `fake.operation_polls` reads); no IAM, no validation of bodies beyond the id; enum
fields in request bodies arrive as numbers (the clients send `$alt=json;enum-encoding=int`) and
are stored as sent; selfLinks point at https://www.googleapis.com like Google's.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

GOOGLEAPIS = "https://www.googleapis.com"
CONTAINER = "https://container.googleapis.com"
COMPUTE = "/compute/v1/projects/{project}"

STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE",
}
TIMESTAMP = "2024-01-01T00:00:00.000-00:00"

Hook = Callable[["FakeGoogleApis", str, dict[str, Any]], dict[str, Any]]


@dataclass
class Recorded:
    """One request as it arrived: method, path (no query), query (last value of each parameter),
    query_lists (every value), JSON body (None without one)."""

    method: str
    path: str
    query: dict[str, str]
    query_lists: dict[str, list[str]]
    body: Any


@dataclass
class Collection:
    """A REST collection: `path` is a pattern such as /compute/v1/projects/{project}/global/firewalls.

    style: "compute" (items/kind/Operation), "container" (GKE: list without paging, container
    Operation) or "aip" (resource-oriented: full names, pageSize, long-running operations).
    """

    path: str
    style: str
    items_key: str = "items"
    kind: Optional[str] = None  # compute: "compute#firewall" (lists are kind + "List")
    body_key: Optional[str] = None  # create body wraps the resource: {"cluster": {...}}
    id_param: Optional[str] = None  # aip: query parameter with the new id ("instanceId")
    lro_type: Optional[str] = None  # aip: type URL of a create's LRO response; None: no LRO
    missing: Optional[Callable[[FakeGoogleApis, str], Optional[dict[str, Any]]]] = None  # GET of an absent id
    missing_status: int = 404
    prepare: Optional[Hook] = None  # fills a resource before it is stored (after the defaults)
    render: Optional[Hook] = None  # adds derived fields when it is read
    regex: re.Pattern = field(init=False, repr=False)
    item_regex: re.Pattern = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/:]+)", re.escape(self.path))
        self.regex = re.compile(f"^{pattern}$")
        self.item_regex = re.compile(f"^{pattern}/(?P<_id>[^/:]+)$")

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def scope(self) -> str:
        """compute: which operations collection answers its changes."""
        if "/zones/{" in self.path:
            return "zone"
        if "/regions/{" in self.path:
            return "region"
        return "global"


@dataclass
class _Failure:
    pattern: str
    status: int
    message: str
    method: Optional[str]
    times: Optional[int]
    reason: str


class HttpError(Exception):
    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


def _singular(plural: str) -> str:
    if plural.endswith("sses"):
        return plural[:-2]
    if plural.endswith("ies"):
        return plural[:-3] + "y"
    return plural[:-1] if plural.endswith("s") else plural


class FakeGoogleApis:
    """The stand-in server. Use as a context manager (or the `fake_google_apis` fixture):

        with FakeGoogleApis() as fake:
            fake.add_project("demo-project")
            fake.put("/compute/v1/projects/demo-project/global/firewalls/fw", {"labels": {...}})
            ... clients with api_endpoint=fake.url ...
            assert fake.paths("DELETE") == [...]
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.collections: list[Collection] = []
        self.routes: list[tuple[str, re.Pattern, Callable[..., Any]]] = []
        self.max_page_size: Optional[int] = None  # force paging on every list
        self.operation_polls = 0  # operations report RUNNING for this many reads, then DONE
        self._store: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, list[Any]] = {}  # operation path -> [reads left, final operation]
        self._failures: list[_Failure] = []
        self.buckets: dict[str, dict[str, Any]] = {}  # GCS buckets by name (add_bucket)
        self._ids = itertools.count(1000)
        self._lock = threading.RLock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._install_defaults()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeGoogleApis:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms delayed-ACK stall)

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = fake.handle(self.command, self.path, raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _answer

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-google-apis", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGoogleApis:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- the table ----------------------------------------------------------------------------

    def add_collection(self, path: str, style: str, **kwargs: Any) -> Collection:
        """Make a collection reachable: get, list, create (POST), delete, patch/put on its items."""
        collection = Collection(path, style, **kwargs)
        self.collections.insert(0, collection)  # later additions win over defaults
        return collection

    def add_compute_collection(self, name: str, scope: str, kind: Optional[str] = None, **kwargs: Any) -> Collection:
        """A compute collection under global/, regions/{region}/ or zones/{zone}/ (scope: global|region|zone)."""
        where = {"global": "/global", "region": "/regions/{region}", "zone": "/zones/{zone}"}[scope]
        return self.add_collection(f"{COMPUTE}{where}/{name}", "compute",
                                   kind=kind or f"compute#{_singular(name)}", **kwargs)

    def route(self, method: str, regex: str, handler: Callable[..., tuple[int, Any]]) -> None:
        """A custom route, tried before the collections: handler(fake, request, match) -> (status, body)."""
        self.routes.insert(0, (method.upper(), re.compile(regex), handler))

    def _install_defaults(self) -> None:
        for name, scope in (("firewalls", "global"), ("networks", "global"), ("routes", "global"),
                            ("addresses", "global"), ("forwardingRules", "global"), ("backendServices", "global"),
                            ("healthChecks", "global"), ("subnetworks", "region"), ("routers", "region"),
                            ("addresses", "region"), ("forwardingRules", "region"), ("targetPools", "region"),
                            ("disks", "region"), ("instanceGroupManagers", "region"),
                            ("backendServices", "region"), ("healthChecks", "region"), ("disks", "zone"),
                            ("instanceGroups", "zone"), ("instanceGroupManagers", "zone"), ("instances", "zone"),
                            ("acceleratorTypes", "zone"), ("machineTypes", "zone"), ("operations", "global"), ("operations", "region"),
                            ("operations", "zone")):
            self.add_compute_collection(name, scope)
        self.add_collection("/compute/v1/projects", "compute", kind="compute#project")
        self.add_collection(f"{COMPUTE}/regions", "compute", kind="compute#region")
        self.add_collection(f"{COMPUTE}/zones", "compute", kind="compute#zone")

        locations = "/v1/projects/{project}/locations/{location}"
        self.add_collection(f"{locations}/clusters", "container", items_key="clusters", body_key="cluster",
                            prepare=_prepare_cluster, render=_render_cluster)
        self.add_collection(f"{locations}/clusters/{{cluster}}/nodePools", "container", items_key="nodePools",
                            body_key="nodePool", prepare=_prepare_node_pool)
        self.add_collection(f"{locations}/operations", "container", items_key="operations")
        self.add_collection(f"{locations}/instances", "aip", items_key="instances", id_param="instanceId",
                            lro_type="type.googleapis.com/google.cloud.filestore.v1.Instance")
        self.add_collection(f"{locations}/repositories", "aip", items_key="repositories", id_param="repositoryId",
                            lro_type="type.googleapis.com/google.devtools.artifactregistry.v1.Repository")
        self.add_collection("/v1/projects/{project}/serviceAccounts", "aip", items_key="accounts",
                            prepare=_prepare_service_account)
        self.add_collection("/v1/projects/{project}/services", "aip", items_key="services",
                            missing=_service_missing, prepare=_prepare_service)
        self.add_collection("/v1/operations", "aip", items_key="operations")
        self.add_collection("/v3/projects", "aip", items_key="projects", missing=_project_missing, missing_status=403,
                            prepare=_prepare_project)
        self.add_collection("/v3/operations", "aip", items_key="operations")

        self.route("GET", r"^/compute/v1/projects/(?P<project>[^/]+)/aggregated/(?P<name>\w+)$", _aggregated)
        self.route("GET", r"^/storage/v1/b/(?P<bucket>[^/]+)$", _get_bucket)
        self.route("PATCH", r"^/storage/v1/b/(?P<bucket>[^/]+)$", _patch_bucket)
        self.route("POST", r"^(?P<op>/compute/v1/projects/[^/]+/(?:global|regions/[^/]+|zones/[^/]+)/operations/[^/]+)"
                   r"/wait$", lambda fake, req, m: (200, fake._read(m["op"])))
        self.route("POST", r"^(?P<res>/compute/v1/projects/.+)/setLabels$", _set_labels)
        self.route("GET", r"^/v1/projects/(?P<project>[^/]+)/services:batchGet$", _batch_get_services)
        self.route("POST", r"^/v1/projects/(?P<project>[^/]+)/services:batchEnable$", _batch_enable_services)
        self.route("POST", r"^(?P<res>/v1/projects/[^/]+/services/[^/:]+):(?P<verb>enable|disable)$", _enable_service)

    # -- seeding and inspection ---------------------------------------------------------------

    def put(self, path: str, resource: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """Store (or replace) the resource at `path` as if created; fills name, selfLink, kind ... Returns it."""
        path = "/" + path.lstrip("/")
        with self._lock:
            found = self._item_collection(path)
            if found is None:
                raise KeyError(f"no collection of the fake serves {path}; add one with add_collection()")
            collection, match = found
            return self._store_item(collection, path, match, copy.deepcopy(resource or {}))

    def get(self, path: str) -> Optional[dict[str, Any]]:
        """The stored resource (as the API would answer it), or None."""
        path = "/" + path.lstrip("/")
        with self._lock:
            found = self._item_collection(path)
            if path not in self._store or found is None:
                return None
            return self._rendered(found[0], path)

    def delete(self, path: str) -> None:
        with self._lock:
            self._remove("/" + path.lstrip("/"))

    def paths(self, method: Optional[str] = None) -> list[str]:
        """Paths of the requests seen, optionally of one method only."""
        return [r.path for r in self.requests if method is None or r.method == method.upper()]

    def seen(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    def fail(self, pattern: str, status: int = 403, message: Optional[str] = None, *, method: Optional[str] = None,
             times: Optional[int] = None, reason: str = "forbidden") -> None:
        """Answer requests whose path matches the glob `pattern` with an HTTP error (`times` times, or always)."""
        message = message or f"The caller does not have permission ({STATUS_NAMES.get(status, status)})"
        self._failures.append(_Failure(pattern, status, message, method and method.upper(), times, reason))

    # Helpers for the resources the tests need most.

    def add_project(self, project: str, number: int = 123456789012, state: str = "ACTIVE") -> dict[str, Any]:
        self.put(f"/compute/v1/projects/{project}", {"name": project, "quotas": []})
        return self.put(f"/v3/projects/{project}", {"projectNumber": str(number), "state": state})

    def enable_services(self, project: str, apis: list[str]) -> None:
        for api in apis:
            self.put(f"/v1/projects/{project}/services/{api}", {"state": "ENABLED"})

    def add_region(self, project: str, region: str, zones: list[str],
                   quotas: Optional[dict[str, tuple[float, float]]] = None) -> dict[str, Any]:
        """A region with its zones (suffixes such as "a" or full names) and quotas {metric: (limit, usage)}."""
        zones = [z if "-" in z else f"{region}-{z}" for z in zones]
        for zone in zones:
            self.put(f"{COMPUTE.format(project=project)}/zones/{zone}",
                     {"region": f"{GOOGLEAPIS}/compute/v1/projects/{project}/regions/{region}", "status": "UP"})
        return self.put(f"{COMPUTE.format(project=project)}/regions/{region}", {
            "status": "UP",
            "zones": [f"{GOOGLEAPIS}/compute/v1/projects/{project}/zones/{z}" for z in zones],
            "quotas": [{"metric": m, "limit": limit, "usage": usage} for m, (limit, usage) in (quotas or {}).items()],
        })

    def add_bucket(self, name: str, project_number: int = 123456789012, labels: Optional[dict[str, str]] = None, *,
                   readable: bool = True) -> None:
        """A GCS bucket as buckets.get returns it (a few fields of the Bucket resource); readable=False: a
        bucket of another project, which answers 403. Ref https://cloud.google.com/storage/docs/json_api/v1/buckets"""
        self.buckets[name] = {"kind": "storage#bucket", "id": name, "name": name, "projectNumber": str(project_number),
                              "labels": dict(labels or {}), "location": "EUROPE-WEST2", "storageClass": "STANDARD",
                              "timeCreated": TIMESTAMP, "updated": TIMESTAMP, "metageneration": "1",
                              "etag": "CAE=", "readable": readable}

    def add_machine_type(self, project: str, zone: str, machine_type: str, guest_cpus: int,
                         memory_mb: Optional[int] = None) -> None:
        """A machine type as machineTypes.get returns it. Ref https://cloud.google.com/compute/docs/reference/rest/v1/machineTypes"""
        self.put(f"{COMPUTE.format(project=project)}/zones/{zone}/machineTypes/{machine_type}",
                 {"guestCpus": guest_cpus, "memoryMb": memory_mb or guest_cpus * 4096, "zone": zone})

    def add_accelerator(self, project: str, zone: str, accelerator_type: str, max_per_instance: int = 4) -> None:
        self.put(f"{COMPUTE.format(project=project)}/zones/{zone}/acceleratorTypes/{accelerator_type}",
                 {"description": accelerator_type, "maximumCardsPerInstance": max_per_instance})

    # -- the server side ----------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, raw_body: bytes) -> tuple[int, Any]:
        split = urlsplit(raw_path)
        path = split.path
        query_lists = parse_qs(split.query, keep_blank_values=True)
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except ValueError:
            body = raw_body.decode(errors="replace")
        request = Recorded(method, path, {k: v[-1] for k, v in query_lists.items()}, query_lists, body)
        with self._lock:
            self.requests.append(request)
            try:
                self._check_failures(method, path)
                return self._dispatch(request)
            except HttpError as exc:
                return exc.status, _error_body(exc.status, exc.message, exc.reason)

    def _check_failures(self, method: str, path: str) -> None:
        for failure in self._failures:
            if failure.method not in (None, method) or not fnmatch.fnmatchcase(path, failure.pattern):
                continue
            if failure.times is not None:
                if failure.times <= 0:
                    continue
                failure.times -= 1
            raise HttpError(failure.status, failure.message, failure.reason)

    def _dispatch(self, req: Recorded) -> tuple[int, Any]:
        for method, regex, handler in self.routes:
            match = regex.match(req.path)
            if method == req.method and match:
                return handler(self, req, match)
        for collection in self.collections:
            if collection.regex.match(req.path):
                if req.method == "GET":
                    return 200, self._list(collection, req)
                if req.method == "POST":
                    return self._create(collection, req)
        found = self._item_collection(req.path)
        if found is not None:
            collection, match = found
            if req.method == "GET":
                return 200, self._read(req.path)
            if req.method == "DELETE":
                return self._delete(collection, req.path, match)
            if req.method in ("PATCH", "PUT"):
                return self._update(collection, req, match)
        raise HttpError(501, f"FakeGoogleApis has no route for {req.method} {req.path}; add one "
                             "(add_collection / route) in tests/fakes/google_api.py", "notImplemented")

    def _item_collection(self, path: str) -> Optional[tuple[Collection, re.Match]]:
        for collection in self.collections:
            match = collection.item_regex.match(path)
            if match:
                return collection, match
        return None

    # -- reading ------------------------------------------------------------------------------

    def _read(self, path: str) -> dict[str, Any]:
        found = self._item_collection(path)
        if found is None:
            raise HttpError(501, f"FakeGoogleApis has no collection for {path}", "notImplemented")
        collection, _ = found
        if path not in self._store:
            made = collection.missing(self, path) if collection.missing else None
            if made is None:
                raise _not_found(collection, path)
            return made
        pending = self._pending.get(path)
        if pending is not None:  # an operation that reports RUNNING for a few reads
            pending[0] -= 1
            if pending[0] <= 0:
                self._store[path] = pending[1]
                del self._pending[path]
        return self._rendered(collection, path)

    def _rendered(self, collection: Collection, path: str) -> dict[str, Any]:
        resource = copy.deepcopy(self._store[path])
        return collection.render(self, path, resource) if collection.render else resource

    def _children(self, collection_path: str) -> Iterator[str]:
        """Stored paths directly under a collection path; a "-" segment matches any value."""
        want = collection_path.split("/")
        for path in self._store:
            parts = path.split("/")
            if len(parts) == len(want) + 1 and all(w in ("-", p) for w, p in zip(want, parts[:-1], strict=True)):
                yield path

    def _list(self, collection: Collection, req: Recorded) -> dict[str, Any]:
        items = [self._rendered(collection, p) for p in self._children(req.path)]
        if req.query.get("filter"):
            items = [i for i in items if matches_filter(i, req.query["filter"])]
        if collection.style == "container":  # GKE lists are not paged
            return {collection.items_key: items}
        size_param = "maxResults" if collection.style == "compute" else "pageSize"
        size = int(req.query.get(size_param) or 0) or 500
        if self.max_page_size:
            size = min(size, self.max_page_size)
        start = int(base64.urlsafe_b64decode(req.query["pageToken"]).decode()) if req.query.get("pageToken") else 0
        page, rest = items[start:start + size], items[start + size:]
        answer: dict[str, Any] = {}
        if collection.style == "compute":
            answer = {"kind": f"{collection.kind}List", "id": req.path.split("/compute/v1/", 1)[-1],
                      "selfLink": GOOGLEAPIS + req.path}
        answer[collection.items_key] = page
        if rest:
            answer["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return answer

    # -- writing ------------------------------------------------------------------------------

    def _store_item(self, collection: Collection, path: str, match: re.Match, resource: dict[str, Any]) -> dict:
        ident = match["_id"]
        if collection.style == "compute":
            scope = {k: v for k, v in match.groupdict().items() if k in ("project", "region", "zone")}
            resource.setdefault("kind", collection.kind)
            resource.setdefault("id", str(next(self._ids)))
            resource.setdefault("creationTimestamp", TIMESTAMP)
            resource["name"] = ident
            resource["selfLink"] = GOOGLEAPIS + path
            if "region" in scope:
                resource.setdefault("region", f"{GOOGLEAPIS}/compute/v1/projects/{scope['project']}/regions/"
                                              f"{scope['region']}")
            if "zone" in scope:
                resource.setdefault("zone", f"{GOOGLEAPIS}/compute/v1/projects/{scope['project']}/zones/{scope['zone']}")
        elif collection.style == "container":
            resource["name"] = ident
            resource["selfLink"] = CONTAINER + path
        else:
            resource.setdefault("name", path.split("/", 2)[2])  # /v1/projects/p/... -> projects/p/...
        if collection.prepare:
            resource = collection.prepare(self, path, resource)
        self._store[path] = resource
        return copy.deepcopy(resource)

    def _remove(self, path: str) -> None:
        for key in [k for k in self._store if k == path or k.startswith(path + "/")]:
            del self._store[key]

    def _create(self, collection: Collection, req: Recorded) -> tuple[int, Any]:
        body = req.body if isinstance(req.body, dict) else {}
        resource = body.get(collection.body_key, {}) if collection.body_key else body
        if collection.id_param:
            ident = req.query.get(collection.id_param)
        elif collection.prepare is _prepare_service_account:
            ident = f"{body.get('accountId')}@{req.path.split('/')[3]}.iam.gserviceaccount.com"
            resource = body.get("serviceAccount") or {}
        else:
            ident = resource.get("name")
        if not ident:
            raise HttpError(400, f"FakeGoogleApis: no id for the new resource in POST {req.path}", "invalid")
        path = f"{req.path}/{ident}"
        if path in self._store:
            raise HttpError(409, f"The resource '{path.split('/', 3)[-1]}' already exists", "alreadyExists")
        match = collection.item_regex.match(path)
        if match is None:
            raise HttpError(400, f"FakeGoogleApis: '{ident}' is not a valid id", "invalid")
        stored = self._store_item(collection, path, match, copy.deepcopy(resource))
        return 200, self._operation(collection, path, match, "insert", stored)

    def _delete(self, collection: Collection, path: str, match: re.Match) -> tuple[int, Any]:
        if path not in self._store:
            raise _not_found(collection, path)
        self._remove(path)
        return 200, self._operation(collection, path, match, "delete", None)

    def _update(self, collection: Collection, req: Recorded, match: re.Match) -> tuple[int, Any]:
        if req.path not in self._store:
            raise _not_found(collection, req.path)
        body = req.body if isinstance(req.body, dict) else {}
        if collection.body_key and collection.body_key in body:
            body = body[collection.body_key]
        current = self._store[req.path]
        merged = {**current, **body} if req.method == "PATCH" else {**body}
        stored = self._store_item(collection, req.path, match, merged)
        return 200, self._operation(collection, req.path, match, "patch" if req.method == "PATCH" else "update",
                                    stored)

    def _operation(self, collection: Collection, path: str, match: re.Match, verb: str,
                   resource: Optional[dict[str, Any]]) -> dict[str, Any]:
        """The answer to a change, in the collection's style; stored so it can be read (polled)."""
        n = next(self._ids)
        groups = match.groupdict()
        project = groups.get("project", "-")
        if collection.style == "compute":
            where = {"zone": f"zones/{groups.get('zone')}", "region": f"regions/{groups.get('region')}",
                     "global": "global"}[collection.scope]
            op_path = f"/compute/v1/projects/{project}/{where}/operations/operation-{n}"
            done = {"kind": "compute#operation", "id": str(n), "name": f"operation-{n}", "status": "DONE",
                    "operationType": verb, "targetLink": GOOGLEAPIS + path, "progress": 100, "insertTime": TIMESTAMP, "startTime": TIMESTAMP, "endTime": TIMESTAMP,
                    "selfLink": GOOGLEAPIS + op_path}
            if resource is not None and resource.get("id"):
                done["targetId"] = resource["id"]
            if collection.scope != "global":
                done[collection.scope] = f"{GOOGLEAPIS}/compute/v1/projects/{project}/{where}"
            running = {**done, "status": "RUNNING", "progress": 0}
            running.pop("endTime")
        elif collection.style == "container":
            location = groups.get("location", "-")
            # Operation.Type names: CREATE_CLUSTER, DELETE_NODE_POOL, ... (any other change: UPDATE_CLUSTER)
            kind = "NODE_POOL" if collection.name == "nodePools" else "CLUSTER"
            op_type = {"insert": f"CREATE_{kind}", "delete": f"DELETE_{kind}"}.get(verb, "UPDATE_CLUSTER")
            op_path = f"/v1/projects/{project}/locations/{location}/operations/operation-{n}"
            done = {"name": f"operation-{n}", "zone": location, "location": location,
                    "operationType": op_type, "status": "DONE", "selfLink": CONTAINER + op_path,
                    "targetLink": CONTAINER + path, "startTime": TIMESTAMP, "endTime": TIMESTAMP}
            running = {**done, "status": "RUNNING"}
            running.pop("endTime")
        else:
            if collection.lro_type is None:
                return resource if resource is not None else {}
            location = groups.get("location")
            prefix = f"projects/{project}/locations/{location}" if location else f"projects/{project}"
            op_path = f"/v1/{prefix}/operations/operation-{n}"
            response = ({"@type": collection.lro_type, **resource} if resource is not None
                        else {"@type": "type.googleapis.com/google.protobuf.Empty"})
            done = {"name": op_path.split("/", 2)[2], "done": True, "response": response}
            running = {"name": done["name"], "done": False}
        return self._keep_operation(op_path, running, done)

    def _keep_operation(self, op_path: str, running: dict[str, Any], done: dict[str, Any]) -> dict[str, Any]:
        if self._item_collection(op_path) is None:  # e.g. an LRO path no collection lists: answer done
            return done
        if self.operation_polls > 0:
            self._store[op_path] = running
            self._pending[op_path] = [self.operation_polls, done]
            return copy.deepcopy(running)
        self._store[op_path] = done
        return copy.deepcopy(done)


# -- errors ---------------------------------------------------------------------------------------


def _error_body(status: int, message: str, reason: str = "") -> dict[str, Any]:
    """Google's JSON error shape (google.api_core reads error.message and error.status)."""
    return {"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN"),
                      "errors": [{"message": message, "domain": "global", "reason": reason or "error"}]}}


def _not_found(collection: Collection, path: str) -> HttpError:
    if collection.missing_status == 403:
        return HttpError(403, "The caller does not have permission", "forbidden")
    name = path.split("/compute/v1/", 1)[-1] if collection.style == "compute" else path.split("/", 2)[2]
    return HttpError(404, f"The resource '{name}' was not found", "notFound")


# -- filters --------------------------------------------------------------------------------------

_TERM = re.compile(
    r"""(?P<field>[A-Za-z_][\w.\-/]*)\s*(?P<op>!=|=|:|\beq\b|\bne\b)\s*(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s()]+)"""
)


def _field(resource: Any, dotted: str) -> Any:
    current = resource
    for part in dotted.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return None
    return current


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def matches_filter(resource: dict[str, Any], expression: str) -> bool:
    """Compute / AIP list filters, the subset the code under test uses (AND of terms; no OR)."""
    if re.search(r"\bOR\b", expression):
        raise HttpError(400, "FakeGoogleApis: OR in filters is not supported", "invalid")
    terms = list(_TERM.finditer(expression))
    if not terms:
        raise HttpError(400, f"Invalid list filter expression '{expression}'", "invalid")
    for term in terms:
        value = term["value"]
        if value[:1] in "\"'" and value[-1:] == value[:1]:
            value = value[1:-1]
        actual = _field(resource, term["field"])
        op = term["op"]
        if op == "=":
            ok = actual is not None and _text(actual) == value
        elif op == "!=":
            ok = actual is None or _text(actual) != value
        elif op == ":":
            values = actual if isinstance(actual, list) else [actual]
            ok = actual is not None and (value == "*" or any(fnmatch.fnmatchcase(_text(v), value) for v in values))
        elif op == "eq":
            ok = actual is not None and re.fullmatch(value, _text(actual)) is not None
        else:  # ne
            ok = actual is None or re.fullmatch(value, _text(actual)) is None
        if not ok:
            return False
    return True


# -- per-API behaviour ----------------------------------------------------------------------------


def _prepare_cluster(fake: FakeGoogleApis, path: str, cluster: dict[str, Any]) -> dict[str, Any]:
    """A cluster's node pools live in their own collection (as in GKE): split them out."""
    cluster.setdefault("status", "RUNNING")
    cluster.setdefault("location", path.split("/")[5])
    pools = cluster.pop("nodePools", None)
    if pools is not None:
        fake._remove(path + "/nodePools")
        for pool in pools:
            fake.put(f"{path}/nodePools/{pool['name']}", pool)
    return cluster


def _render_cluster(fake: FakeGoogleApis, path: str, cluster: dict[str, Any]) -> dict[str, Any]:
    cluster["nodePools"] = [copy.deepcopy(fake._store[p]) for p in fake._children(path + "/nodePools")]
    return cluster


def _prepare_node_pool(fake: FakeGoogleApis, path: str, pool: dict[str, Any]) -> dict[str, Any]:
    pool.setdefault("status", "RUNNING")
    return pool


def _prepare_service_account(fake: FakeGoogleApis, path: str, account: dict[str, Any]) -> dict[str, Any]:
    email = path.rsplit("/", 1)[-1]
    account.update(name=f"projects/{path.split('/')[3]}/serviceAccounts/{email}", email=email)
    account.setdefault("uniqueId", str(next(fake._ids)))
    return account


def _prepare_service(fake: FakeGoogleApis, path: str, service: dict[str, Any]) -> dict[str, Any]:
    project, api = path.split("/")[3], path.rsplit("/", 1)[-1]
    service.setdefault("state", "ENABLED")
    service.setdefault("config", {"name": api, "title": api})
    service.setdefault("parent", f"projects/{project}")
    return service


def _service_missing(fake: FakeGoogleApis, path: str) -> dict[str, Any]:
    """Google answers every known service name; one never enabled is DISABLED."""
    project, api = path.split("/")[3], path.rsplit("/", 1)[-1]
    return {"name": f"projects/{project}/services/{api}", "config": {"name": api, "title": api},
            "state": "DISABLED", "parent": f"projects/{project}"}


def _prepare_project(fake: FakeGoogleApis, path: str, project: dict[str, Any]) -> dict[str, Any]:
    project_id = path.rsplit("/", 1)[-1]
    number = project.pop("projectNumber", None) or str(next(fake._ids))
    project.update(name=f"projects/{number}", projectId=project_id)
    project.setdefault("state", "ACTIVE")
    project.setdefault("displayName", project_id)
    return project


def _project_missing(fake: FakeGoogleApis, path: str) -> Optional[dict[str, Any]]:
    """projects/NUMBER reads the project with that number (the API takes either form)."""
    wanted = f"projects/{path.rsplit('/', 1)[-1]}"
    for key in fake._children("/v3/projects"):
        if fake._store[key].get("name") == wanted:
            return copy.deepcopy(fake._store[key])
    return None


def _aggregated(fake: FakeGoogleApis, req: Recorded, m: re.Match) -> tuple[int, Any]:
    """compute's aggregated list: every scope's items of that collection, keyed global / regions/R / zones/Z."""
    project, name = m["project"], m["name"]
    collections = [c for c in fake.collections if c.style == "compute" and c.name == name
                   and c.path.startswith(COMPUTE + "/")]
    if not collections:
        raise HttpError(501, f"FakeGoogleApis has no compute collection '{name}' to aggregate", "notImplemented")
    items: dict[str, dict[str, list]] = {}
    for collection in collections:
        for path in list(fake._store):
            match = collection.item_regex.match(path)
            if not match or match["project"] != project:
                continue
            resource = fake._rendered(collection, path)
            if req.query.get("filter") and not matches_filter(resource, req.query["filter"]):
                continue
            groups = match.groupdict()
            scope = (f"zones/{groups['zone']}" if "zone" in groups else
                     f"regions/{groups['region']}" if "region" in groups else "global")
            items.setdefault(scope, {name: []})[name].append(resource)
    kind = collections[0].kind
    return 200, {"kind": f"{kind}AggregatedList", "id": f"projects/{project}/aggregated/{name}",
                 "items": items, "selfLink": GOOGLEAPIS + req.path}


def _get_bucket(fake: FakeGoogleApis, req: Recorded, m: re.Match) -> tuple[int, Any]:
    """storage buckets.get. GCS answers 404 for no such bucket and 403 when the caller may not read it
    (another project's: "... does not have storage.buckets.get access to the Google Cloud Storage
    bucket"). Ref https://cloud.google.com/storage/docs/json_api/v1/buckets/get and
    https://cloud.google.com/storage/docs/json_api/v1/status-codes"""
    bucket = fake.buckets.get(m["bucket"])
    if bucket is None:
        raise HttpError(404, "The specified bucket does not exist.", "notFound")
    if not bucket["readable"]:
        raise HttpError(403, "caller does not have storage.buckets.get access to the Google Cloud Storage bucket. "
                             "Permission 'storage.buckets.get' denied on resource (or it may not exist).", "forbidden")
    return 200, {k: v for k, v in bucket.items() if k != "readable"}


def _patch_bucket(fake: FakeGoogleApis, req: Recorded, m: re.Match) -> tuple[int, Any]:
    """storage buckets.patch with patch semantics: the fields sent replace the bucket's, but `labels` is
    merged key by key and a label sent as null is deleted (google-cloud-storage sends a removed label so;
    the google provider's bucket update too: "To delete a label using PATCH, we have to explicitly set its
    value to null", terraform-provider-google google/services/storage/resource_storage_bucket.go); the
    metageneration goes up by one. 404/403 as buckets.get.
    Ref https://cloud.google.com/storage/docs/json_api/v1/buckets/patch"""
    _get_bucket(fake, req, m)
    bucket = fake.buckets[m["bucket"]]
    for key, value in (req.body or {}).items():
        if key == "labels":
            labels = {**bucket["labels"], **(value or {})}
            bucket["labels"] = {k: v for k, v in labels.items() if v is not None}
        elif key not in ("kind", "id", "name", "projectNumber", "metageneration", "etag", "timeCreated", "updated"):
            bucket[key] = value
    bucket["metageneration"] = str(int(bucket["metageneration"]) + 1)
    return _get_bucket(fake, req, m)


def _set_labels(fake: FakeGoogleApis, req: Recorded, m: re.Match) -> tuple[int, Any]:
    path = m["res"]
    found = fake._item_collection(path)
    if found is None or path not in fake._store:
        raise HttpError(404, f"The resource '{path.split('/compute/v1/', 1)[-1]}' was not found", "notFound")
    collection, match = found
    labels = (req.body or {}).get("labels", {})
    fake._store[path]["labels"] = labels
    fake._store[path]["labelFingerprint"] = base64.b64encode(json.dumps(labels, sort_keys=True).encode()[:8]).decode()
    return 200, fake._operation(collection, path, match, "setLabels", fake._store[path])


def _batch_get_services(fake: FakeGoogleApis, req: Recorded, m: re.Match) -> tuple[int, Any]:
    names = req.query_lists.get("names", [])
    if len(names) > 30:  # Google's limit per call
        raise HttpError(400, "At most 30 services can be requested per batchGet", "invalid")
    return 200, {"services": [fake._read(f"/v1/{name}") for name in names]}


def _batch_enable_services(fake: FakeGoogleApis, req: Recorded, m: re.Match) -> tuple[int, Any]:
    ids = (req.body or {}).get("serviceIds", [])
    fake.enable_services(m["project"], ids)
    services = [fake._read(f"/v1/projects/{m['project']}/services/{i}") for i in ids]
    return 200, {"name": f"operations/batch-{next(fake._ids)}", "done": True, "response": {
        "@type": "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse", "services": services}}


def _enable_service(fake: FakeGoogleApis, req: Recorded, m: re.Match) -> tuple[int, Any]:
    service = fake._read(m["res"])
    service["state"] = "ENABLED" if m["verb"] == "enable" else "DISABLED"
    fake.put(m["res"], service)
    response_type = "EnableServiceResponse" if m["verb"] == "enable" else "DisableServiceResponse"
    return 200, {"name": f"operations/{m['verb']}-{next(fake._ids)}", "done": True, "response": {
        "@type": f"type.googleapis.com/google.api.serviceusage.v1.{response_type}", "service": service}}
