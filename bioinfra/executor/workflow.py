"""Reading an Argo Workflow (a plain dict) into what the local executor needs.

Supported: a DAG entrypoint whose tasks call `script` or `container` templates, with `depends`
(or `dependencies`), `when`, `arguments.parameters`, template `inputs.parameters` (with defaults),
`outputs.parameters[].valueFrom.path`, `retryStrategy` (limit, backoff), `resources.requests.cpu`,
`env`, `workingDir`, `volumeMounts`, and the `bioinfra.io/outputs` annotation. Anything else a
Workflow uses that changes how it runs is rejected up front, not ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from bioinfra.errors import WorkflowSpecError
from bioinfra.executor.expressions import depends_tasks

OUTPUTS_ANNOTATION = "bioinfra.io/outputs"

# Template keys that only matter on a cluster (scheduling, pod shape): the local executor ignores them.
_CLUSTER_ONLY_TEMPLATE_KEYS = {
    "name", "inputs", "outputs", "metadata", "nodeSelector", "tolerations", "affinity", "retryStrategy",
    "activeDeadlineSeconds", "podSpecPatch", "serviceAccountName", "securityContext", "priorityClassName",
    "script", "container", "dag", "archiveLocation", "timeout", "volumes",
}
_TASK_KEYS = {"name", "template", "arguments", "depends", "dependencies", "when"}


@dataclass(frozen=True)
class RetryPolicy:
    limit: int = 0
    backoff_seconds: float = 0.0
    factor: float = 1.0
    max_backoff_seconds: float | None = None

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before retry `retry_number` (1-based), as Argo's backoff does."""
        delay = self.backoff_seconds * (self.factor ** (retry_number - 1))
        if self.max_backoff_seconds is not None:
            delay = min(delay, self.max_backoff_seconds)
        return delay


@dataclass(frozen=True)
class OutputParameter:
    name: str
    path: str  # container path, tags not yet substituted


@dataclass(frozen=True)
class Template:
    name: str
    kind: str  # "script" or "container"
    command: list[str]
    args: list[str]
    source: str | None
    working_dir: str | None
    env: dict[str, str]
    volume_mounts: dict[str, str]  # mountPath -> volume name
    cpu: float
    memory_bytes: int | None  # limits.memory, else requests.memory
    image: str
    input_parameters: dict[str, str | None]  # name -> default
    output_parameters: list[OutputParameter]
    outputs: list[str]  # from the bioinfra.io/outputs annotation, tags not yet substituted
    retry: RetryPolicy


@dataclass(frozen=True)
class Task:
    name: str
    template: str
    arguments: dict[str, str]
    depends: str | None
    when: str | None

    @property
    def upstream(self) -> list[str]:
        return depends_tasks(self.depends) if self.depends else []


@dataclass
class Workflow:
    name: str
    parameters: dict[str, str]
    tasks: list[Task]
    templates: dict[str, Template]
    volumes: list[str] = field(default_factory=list)

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)


_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def parse_duration(value: Any, where: str) -> float:
    text = str(value).strip()
    m = _DURATION_RE.match(text)
    if not m:
        raise WorkflowSpecError(f"{where}: cannot read duration {value!r} (use e.g. 10s, 2m)")
    number, unit = float(m.group(1)), m.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def parse_cpu(value: Any, where: str) -> float:
    """Kubernetes CPU quantity: "2", "500m", 1.5."""
    text = str(value).strip()
    try:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise WorkflowSpecError(f"{where}: cannot read CPU quantity {value!r}") from None


_MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def parse_memory(value: Any, where: str) -> int:
    """Kubernetes memory quantity: "16Gi", "500Mi", "1G", 1048576."""
    m = re.match(r"^(\d+(?:\.\d+)?)([kMGT]i?)?$", str(value).strip())
    if not m:
        raise WorkflowSpecError(f"{where}: cannot read memory quantity {value!r}")
    return int(float(m.group(1)) * _MEMORY_UNITS[m.group(2) or ""])


def _retry(spec: dict[str, Any] | None, where: str) -> RetryPolicy:
    if not spec:
        return RetryPolicy()
    try:
        limit = int(str(spec.get("limit", 0)))
    except ValueError:
        raise WorkflowSpecError(f"{where}.retryStrategy.limit must be a whole number") from None
    backoff = spec.get("backoff") or {}
    return RetryPolicy(
        limit=limit,
        backoff_seconds=parse_duration(backoff.get("duration", "0s"), f"{where}.retryStrategy.backoff"),
        factor=float(str(backoff.get("factor", 1))),
        max_backoff_seconds=(
            parse_duration(backoff["maxDuration"], f"{where}.retryStrategy.backoff") if "maxDuration" in backoff else None
        ),
    )


def _template(raw: dict[str, Any]) -> Template:
    name = raw.get("name") or "<unnamed>"
    where = f"template '{name}'"
    unknown = set(raw) - _CLUSTER_ONLY_TEMPLATE_KEYS
    if unknown:
        raise WorkflowSpecError(f"{where} uses {', '.join(sorted(unknown))}, which the local executor does not run")
    if "script" in raw:
        kind, body = "script", raw["script"]
    elif "container" in raw:
        kind, body = "container", raw["container"]
    else:
        raise WorkflowSpecError(f"{where} has neither script nor container")
    resources = (body.get("resources") or {}).get("requests") or {}
    limits = (body.get("resources") or {}).get("limits") or {}
    memory = limits.get("memory", resources.get("memory"))
    annotations = ((raw.get("metadata") or {}).get("annotations") or {})
    outputs = [line.strip() for line in str(annotations.get(OUTPUTS_ANNOTATION, "")).splitlines() if line.strip()]
    output_parameters = []
    for p in (raw.get("outputs") or {}).get("parameters") or []:
        path = (p.get("valueFrom") or {}).get("path")
        if not path:
            raise WorkflowSpecError(f"{where}: output parameter '{p.get('name')}' needs valueFrom.path locally")
        output_parameters.append(OutputParameter(p["name"], path))
    return Template(
        name=name,
        kind=kind,
        command=[str(c) for c in body.get("command") or []],
        args=[str(a) for a in body.get("args") or []],
        source=body.get("source"),
        working_dir=body.get("workingDir"),
        env={e["name"]: str(e.get("value", "")) for e in body.get("env") or []},
        volume_mounts={m["mountPath"]: m["name"] for m in body.get("volumeMounts") or []},
        cpu=parse_cpu(resources.get("cpu", "1"), f"{where}.resources.requests.cpu"),
        memory_bytes=parse_memory(memory, f"{where}.resources") if memory is not None else None,
        image=str(body.get("image", "")),
        input_parameters={
            p["name"]: (str(p["value"]) if "value" in p else (str(p["default"]) if "default" in p else None))
            for p in (raw.get("inputs") or {}).get("parameters") or []
        },
        output_parameters=output_parameters,
        outputs=outputs,
        retry=_retry(raw.get("retryStrategy"), where),
    )


def parse_workflow(doc: dict[str, Any]) -> Workflow:
    if doc.get("apiVersion") != "argoproj.io/v1alpha1" or doc.get("kind") != "Workflow":
        raise WorkflowSpecError("not an Argo Workflow (apiVersion argoproj.io/v1alpha1, kind Workflow)")
    spec = doc.get("spec") or {}
    meta = doc.get("metadata") or {}
    templates = {t["name"]: t for t in spec.get("templates") or []}
    entry = templates.get(spec.get("entrypoint", ""))
    if entry is None or "dag" not in entry:
        raise WorkflowSpecError("the local executor runs Workflows whose entrypoint is a DAG template")
    tasks: list[Task] = []
    seen: set[str] = set()
    for raw in entry["dag"].get("tasks") or []:
        where = f"task '{raw.get('name')}'"
        unknown = set(raw) - _TASK_KEYS
        if unknown:
            raise WorkflowSpecError(f"{where} uses {', '.join(sorted(unknown))}, which the local executor does not run")
        depends = raw.get("depends")
        if depends is None and raw.get("dependencies"):
            depends = " && ".join(raw["dependencies"])
        if raw["template"] not in templates or "dag" in templates[raw["template"]]:
            raise WorkflowSpecError(f"{where} calls unknown or nested template '{raw['template']}'")
        task = Task(
            name=raw["name"],
            template=raw["template"],
            arguments={p["name"]: str(p.get("value", "")) for p in (raw.get("arguments") or {}).get("parameters") or []},
            depends=depends,
            when=raw.get("when"),
        )
        if task.name in seen:
            raise WorkflowSpecError(f"two tasks are named '{task.name}'")
        seen.add(task.name)
        tasks.append(task)
    names = {t.name for t in tasks}
    for t in tasks:
        for up in t.upstream:
            if up not in names:
                raise WorkflowSpecError(f"task '{t.name}' depends on unknown task '{up}'")
    _check_acyclic(tasks)
    return Workflow(
        name=str(meta.get("name") or meta.get("generateName") or "workflow").rstrip("-"),
        parameters={p["name"]: str(p.get("value", "")) for p in (spec.get("arguments") or {}).get("parameters") or []},
        tasks=tasks,
        templates={n: _template(t) for n, t in templates.items() if "dag" not in t},
        volumes=[v["name"] for v in spec.get("volumes") or []],
    )


def topological_order(tasks: list[Task]) -> list[str]:
    """Kahn's algorithm, ties broken by declaration order (so output is stable)."""
    order: list[str] = []
    remaining = {t.name: set(t.upstream) for t in tasks}
    while remaining:
        ready = [t.name for t in tasks if t.name in remaining and not remaining[t.name]]
        if not ready:
            cycle = ", ".join(sorted(remaining))
            raise WorkflowSpecError(f"the DAG has a cycle among: {cycle}")
        for name in ready:
            order.append(name)
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def _check_acyclic(tasks: list[Task]) -> None:
    topological_order(tasks)


def container_to_host(path: str, mounts: dict[str, str], volume_roots: dict[str, PurePosixPath | Any]) -> Any:
    """Map a container path under a volume mount to the volume's host folder."""
    p = PurePosixPath(path)
    for mount_path in sorted(mounts, key=len, reverse=True):
        try:
            rel = p.relative_to(mount_path)
        except ValueError:
            continue
        volume = mounts[mount_path]
        if volume not in volume_roots:
            raise WorkflowSpecError(f"volume '{volume}' has no local folder")
        return volume_roots[volume] / rel
    raise WorkflowSpecError(f"path {path} is not under any volume mount of its template")
