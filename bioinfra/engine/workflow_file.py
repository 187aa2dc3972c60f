"""A plain Argo Workflow file as a pipeline: `bioinfra run my-workflow.yaml -p NAME=VALUE` (#17 point 4).

The file carries no bioinfra metadata, so its pipeline is made here (`load`), and the one engine
runs it like any other (bioinfra.engine.engine prepare/execute, the local or the cluster backend):

- name: metadata.name, else generateName, made a pipeline name (a DNS label: it names runs);
- one mode whose template is the file itself, used verbatim (`PipelineSpec.plain`): its `{{...}}`
  are Argo's, so no Jinja ever reads it;
- one `string` input per `spec.arguments.parameters` entry. `-p NAME=VALUE` (as `argo submit -p`)
  sets that parameter's `value` on the parsed Workflow (render.fill): data, never text. A value is
  taken as given (quotes, `$(...)`, newlines, `{{...}}`): a Workflow's own tags are substituted in one
  pass, so a value is never evaluated again, and no shell text is built from it. A parameter not
  given keeps the file's value; one with neither is refused as the controller refuses it
  (validate.go validateArgumentsValues: "spec.arguments.NAME.value or spec.arguments.NAME.valueFrom
  is required").

Volumes: a persistentVolumeClaim named `workspace` is the workspace, as in bioinfra's own
pipelines (locally its folder; on a cluster the workspace claim). Locally every other volume is
refused before anything is made, as is whatever the local executor does not run (artifacts,
resource/suspend templates, ...: docs/architecture.md "Local executor"), with the executor's own
message (exit 8): such a Workflow runs on a cluster as written.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from bioinfra.engine.spec import InputSpec, PipelineSpec
from bioinfra.errors import InputError, UnsupportedError

WORKSPACE_VOLUME = "workspace"
LOCAL_WORKDIR = "/workspace"  # where bioinfra's own steps run (templates/pipelines/*/workflow.yaml.j2)
_ARGO_PARAM_RE = re.compile(r"[-a-zA-Z0-9_]+")  # validate.go paramOrArtifactNameRegex
_MAX_PARAM = 63  # InputSpec.parameter: bioinfra's limit on a parameter name (Argo sets none)


@dataclass(frozen=True)
class WorkflowFile:
    """A plain Workflow file and the pipeline the engine runs it as."""

    path: Path
    doc: dict[str, Any]  # as read (the engine renders from the file again: the same text)
    spec: PipelineSpec
    by_parameter: dict[str, str]  # Argo parameter name -> input name

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return [p for p in (self.doc["spec"].get("arguments") or {}).get("parameters") or [] if isinstance(p, dict)]

    def declared(self) -> str:
        return ", ".join(self.by_parameter) or "none"


def load(path: Path) -> WorkflowFile:
    """Read one Argo Workflow from `path`; refuse, with Argo's message (exit 4), what `argo lint`
    refuses (parameters may still lack a value: -p gives it), before anything is made."""
    import yaml

    from bioinfra.argo import check_workflow

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} cannot be read: {exc}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML: {exc}") from None
    if len(docs) != 1:
        raise InputError(f"{path} holds {len(docs)} YAML documents; `bioinfra run` takes one Argo Workflow",
                         hint="put each Workflow in a file of its own")
    doc = docs[0]
    if not isinstance(doc, dict) or doc.get("apiVersion") != "argoproj.io/v1alpha1" or doc.get("kind") != "Workflow":
        kind = doc.get("kind") if isinstance(doc, dict) else None
        raise InputError(
            f"{path} is not an Argo Workflow (apiVersion argoproj.io/v1alpha1, kind Workflow)"
            + (f": it is a {kind}" if kind else ""),
            hint="`bioinfra run` takes a Workflow (as `argo submit`), a pipeline name or a pipeline folder")
    if not isinstance(doc.get("spec"), dict):
        raise InputError(f"{path}: an Argo Workflow has a spec (entrypoint, templates)")
    check_workflow(copy.deepcopy(doc), lint_mode=True)
    params = [p for p in (doc["spec"].get("arguments") or {}).get("parameters") or [] if isinstance(p, dict)]
    inputs, by_parameter = [], {}
    for p in params:
        name = str(p.get("name"))
        if len(name) > _MAX_PARAM or not _ARGO_PARAM_RE.fullmatch(name):
            raise InputError(f"{path}: parameter {name[:80]!r}: bioinfra runs parameters of at most {_MAX_PARAM} "
                             "letters, digits, '_' and '-'", hint="shorten its name")
        by_parameter[name] = key = _input_name(name, set(by_parameter.values()))
        shown = p.get("description") or (f"default {p['value']!r}" if p.get("value") is not None
                                         else "no default: give -p " + name + "=VALUE")
        inputs.append(InputSpec(name=key, type="string", parameter=name, flag="--p-" + key.replace("_", "-"),
                                help=f"Argo parameter {name}: {shown}"[:400]))
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    description = ((meta.get("annotations") or {}).get("workflows.argoproj.io/description") or "").strip()
    digest = hashlib.sha256(text.encode()).hexdigest()
    spec = PipelineSpec(
        name=pipeline_name(str(meta.get("name") or meta.get("generateName") or path.stem)),
        version=f"0+{digest[:12]}",  # a plain Workflow has no version: its content's digest stands in
        description=(description or f"the Argo Workflow {path.name}")[:2000],
        workflow=path.name, inputs=inputs, folder=path.resolve().parent, plain=True)
    return WorkflowFile(path, doc, spec, by_parameter)


def pipeline_name(text: str) -> str:
    """A Workflow's name (or generateName) as a pipeline name: lowercase letters, digits and '-',
    2-42 characters, starting with a letter (it starts the run id and is a label value)."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    name = re.sub(r"-{2,}", "-", name).strip("-")
    if not name or not name[0].isalpha():
        name = ("wf-" + name).strip("-")
    name = name[:42].rstrip("-")
    return name if len(name) >= 2 else "workflow"


def _input_name(parameter: str, taken: set[str]) -> str:
    """An input name for an Argo parameter name ('Message-Text' -> message_text), unique. Internal:
    users name the parameter itself (-p Message-Text=...), and the manifest keys `parameters` by it."""
    base = re.sub(r"[^a-z0-9_]", "_", parameter.lower())
    if not base[:1].isalpha():
        base = "p_" + base
    base = base[:30]  # its flag (--p-NAME, never shown) fits InputSpec's 41 characters
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def given(wf: WorkflowFile, pairs: tuple[str, ...] | list[str]) -> dict[str, Optional[str]]:
    """-p NAME=VALUE pairs as the engine's `given` (input name -> value). The name is matched
    exactly (case and '-' kept); the value is everything after the first '='. `argo submit -p`
    adds a name the Workflow does not declare to its arguments, where nothing reads it: a typo
    that goes unnoticed, so it is refused here."""
    values: dict[str, Optional[str]] = {key: None for key in wf.by_parameter.values()}
    seen: set[str] = set()
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq:  # argo's own words (util.ApplySubmitOpts)
            raise InputError(f"expected parameter of the form: NAME=VALUE. Received: {pair}")
        if name not in wf.by_parameter:
            close = [p for p in wf.by_parameter if p.lower().replace("_", "-") == name.lower().replace("_", "-")]
            raise InputError(
                f"-p {name}: {wf.path} declares no parameter {name!r} (spec.arguments.parameters: {wf.declared()})",
                hint=f"did you mean {close[0]!r}? Names are exact (case, '-' and '_')" if close
                else "declare it under spec.arguments.parameters, or drop the -p")
        if name in seen:
            raise InputError(f"-p {name} is given twice", hint="give each parameter once")
        seen.add(name)
        values[wf.by_parameter[name]] = value
    return values


def require_values(wf: WorkflowFile, values: dict[str, Optional[str]]) -> None:
    """A parameter with no value in the file and none given is refused as the controller refuses it
    (validate.go validateArgumentsValues), with what to do about it."""
    for p in wf.parameters:
        name = str(p.get("name"))
        if p.get("value") is None and p.get("valueFrom") is None and values.get(wf.by_parameter[name]) is None:
            from bioinfra.argo import Workflow
            from bioinfra.errors import WorkflowInvalidError

            raise WorkflowInvalidError(  # validate.go validateArgumentsValues
                Workflow.parse(wf.doc).display_name,
                [f"spec.arguments.{name}.value or spec.arguments.{name}.valueFrom is required"],
                hint=f"give it: bioinfra run {wf.path} -p {name}=VALUE")


def shape(workflow: dict[str, Any], target: str) -> None:
    """What the engine does to a plain Workflow after its parameters are set (render.render_pipeline):
    its `workspace` claim is bioinfra's workspace; for a local run, each step gets the folder it runs in."""
    from bioinfra.targets import get_target

    bind_workspace(workflow)
    if get_target(target).runs_locally:
        local_pod_shape(workflow)


def bind_workspace(workflow: dict[str, Any], claim: Optional[str] = None) -> None:
    """A persistentVolumeClaim volume named `workspace` claims bioinfra's workspace, as bioinfra's
    own pipelines do (their `claimName: {{ workspace_claim }}`)."""
    from bioinfra.pipelines import WORKSPACE_CLAIM

    for volume in workflow.get("spec", {}).get("volumes") or []:
        if isinstance(volume, dict) and volume.get("name") == WORKSPACE_VOLUME and isinstance(
                volume.get("persistentVolumeClaim"), dict):
            volume["persistentVolumeClaim"]["claimName"] = claim or WORKSPACE_CLAIM


def local_pod_shape(workflow: dict[str, Any]) -> None:
    """A pod has a filesystem of its own; a local step does not, and the executor runs a step only
    in a workingDir on a volume. A step that names no workingDir runs, as bioinfra's own steps do,
    in the workspace (`workingDir: /workspace`, the `workspace` claim mounted there; the volume is
    added when the Workflow has none). Argo's phase logic reads none of this; a workingDir the
    Workflow gives (or its templateDefaults give) is kept."""
    spec = workflow.get("spec") or {}
    defaults = spec.get("templateDefaults") if isinstance(spec.get("templateDefaults"), dict) else {}
    added = False
    for kind, body in _pod_bodies(spec.get("templates") or []):
        if body.get("workingDir") or ((defaults.get(kind) or {}).get("workingDir") if isinstance(
                defaults.get(kind), dict) else None):
            continue
        body["workingDir"] = LOCAL_WORKDIR
        mounts = body.setdefault("volumeMounts", []) or []
        body["volumeMounts"] = mounts
        if not any(isinstance(m, dict) and m.get("mountPath") == LOCAL_WORKDIR for m in mounts):
            mounts.append({"name": WORKSPACE_VOLUME, "mountPath": LOCAL_WORKDIR})
        added = True
    volumes = spec.get("volumes") or []
    if added and not any(isinstance(v, dict) and v.get("name") == WORKSPACE_VOLUME for v in volumes):
        from bioinfra.pipelines import WORKSPACE_CLAIM

        spec["volumes"] = [*volumes, {"name": WORKSPACE_VOLUME, "persistentVolumeClaim": {"claimName": WORKSPACE_CLAIM}}]


def _pod_bodies(templates: list[Any]):
    """(kind, body) of every container/script template, inline ones (steps, dag tasks) included."""
    for t in templates:
        if not isinstance(t, dict):
            continue
        for kind in ("container", "script"):
            if isinstance(t.get(kind), dict):
                yield kind, t[kind]
        inline = [s.get("inline") for group in t.get("steps") or [] if isinstance(group, list)
                  for s in group if isinstance(s, dict)]
        inline += [task.get("inline") for task in (t.get("dag") or {}).get("tasks") or [] if isinstance(task, dict)]
        yield from _pod_bodies([i for i in inline if isinstance(i, dict)])


def check_runs_locally(wf: WorkflowFile, values: dict[str, Optional[str]]) -> None:
    """Refuse, before anything is made, what the local executor cannot run: a volume other than the
    `workspace` claim (it has no local folder), and what parse_workflow refuses, in its words."""
    from bioinfra.errors import WorkflowSpecError
    from bioinfra.executor.workflow import parse_workflow

    hint = (f"it runs on a cluster as written: `bioinfra run {wf.path} --target onprem|aws|gcp`; what runs "
            "locally: docs/architecture.md (Local executor)")
    others = [f"'{v.get('name')}' ({_volume_kind(v)})" for v in wf.doc["spec"].get("volumes") or []
              if isinstance(v, dict) and not (v.get("name") == WORKSPACE_VOLUME and "persistentVolumeClaim" in v)]
    if others:
        raise UnsupportedError(
            f"{wf.path}: no local folder for volume(s): {', '.join(others)}; locally only a "
            f"persistentVolumeClaim named '{WORKSPACE_VOLUME}' is mounted (bioinfra's workspace)", hint=hint)
    doc = copy.deepcopy(wf.doc)
    for p in (doc["spec"].get("arguments") or {}).get("parameters") or []:
        key = wf.by_parameter.get(str(p.get("name")))
        if key is not None and values.get(key) is not None:
            p["value"] = values[key]
    local_pod_shape(doc)
    try:
        parse_workflow(doc)
    except WorkflowSpecError as exc:
        raise UnsupportedError(f"{wf.path}: the local executor cannot run this Workflow: {exc.message}",
                               hint=hint) from None


def check_followable(wf: WorkflowFile) -> None:
    """A run followed on a cluster is followed through its entrypoint's tasks (core.cluster_run
    dag_tasks): refuse, before anything is uploaded or submitted, a Workflow it cannot follow.
    `--detach` submits it anyway (nothing is followed)."""
    from bioinfra.core.cluster_run import dag_tasks

    try:
        dag_tasks(wf.doc)
    except InputError as exc:
        raise UnsupportedError(f"{wf.path}: {exc.message}; a run is followed on a cluster through a DAG "
                               "entrypoint", hint="add --detach to submit it without following it (then `bioinfra runs status RUN`)") from None


def _volume_kind(volume: dict[str, Any]) -> str:
    kinds = [k for k in volume if k != "name"]
    return kinds[0] if kinds else "no source"


def resume_values(wf: WorkflowFile, values: dict[str, Optional[str]], output: Optional[Path]
                  ) -> dict[str, Optional[str]]:
    """--resume continues with the parameters the run started with: those not given again are taken
    from its run record; one given with another value is refused (the finished steps used the old)."""
    from bioinfra.engine.rundir import latest_run, read_run_record

    folder = output or latest_run(Path("results"), wf.spec.name)
    record = read_run_record(folder) if folder is not None and folder.is_dir() else None
    if not record or record.get("pipeline") != wf.spec.name:
        return values  # the engine's output-folder check says what is wrong
    before = record.get("inputs") or {}
    merged = dict(values)
    for name, key in wf.by_parameter.items():
        old = (before.get(key) or {}).get("value")
        if values.get(key) is None:
            merged[key] = old
        elif values[key] != old:
            raise InputError(f"--resume: -p {name} differs from the value run {record.get('run_id')} started with",
                             hint="resume with the same parameters (or none: the run's are used), or start a new run "
                                  "without --resume")
    return merged
