#!/usr/bin/env python3
"""Argo conformance (issue #16 point 3): Argo's own Workflows through bioinfra's local executor.

For every Workflow in Argo v3.7.18's examples/*.yaml, test/e2e/functional/*.yaml and
test/e2e/testdata/*.yaml (read at run time from $BIOINFRA_ARGO_REFERENCE, else ../shared/argo-v3.7.18
beside the repo; never copied here), compare what Argo expects (tests/conformance/expected.yaml,
each entry citing the Go test it comes from) with what the local executor does:

- parse with bioinfra.executor.workflow.parse_workflow; a WorkflowSpecError is "rejected";
- else run with LocalExecutor + NativeRuntime in a child process bounded by --timeout, with
  tests/conformance/standin first on PATH (argosay; cowsay; python; sh as busybox's has $RANDOM)
  and each step run as nobody in a private mount namespace whose /tmp is the run's scratch folder
  and whose /mnt is a tmpfs (a pod's own), so no step writes anywhere else on this machine.

Native runs need a pod's shape the executor cannot guess, so the harness adds exactly this to each
script/container template, none of which Argo's phase logic reads: a workingDir (/argo-wd) when it
has none, and volume mounts of scratch folders at its workingDir and /tmp; an argoproj/argosay
container with no `command` runs `argosay ARGS` (the image's entrypoint). Every volume the spec
declares gets a scratch folder.

Verdicts: same (phase, and asserted node phases, as Argo's test expects) / rejected: <executor's
message> / differs: <what> / no assertion (ran; no Go test asserts a phase). A Workflow that uses
something only a cluster provides (artifacts, onExit, a resource template, a template timeout, ...) is
to be rejected up front (activeDeadlineSeconds, on templates and the spec, the executor runs): if the executor runs it anyway without the asserted outcome, that is "differs".

    python scripts/conformance.py                    # writes docs/argo-conformance.md
    python scripts/conformance.py --only FILE ...    # print verdicts for some files (paths under the reference)
    python scripts/conformance.py --only FILE ... --update   # and rewrite only their rows and the counts line
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ROOT / "tests" / "conformance" / "expected.yaml"
STANDIN = ROOT / "tests" / "conformance" / "standin"
TABLE = ROOT / "docs" / "argo-conformance.md"
GLOBS = ("examples/*.yaml", "test/e2e/functional/*.yaml", "test/e2e/testdata/*.yaml")
TIMEOUT = 420.0  # the longest examples sleep on purpose (11 steps of 20-30 s, run one at a time here)
SCRATCH_WD, SCRATCH_TMP = "argo-wd", "argo-tmp"


SANDBOX_NEEDS = "each step runs as nobody in a private mount namespace: needs root and unshare, setpriv, timeout"


def can_sandbox() -> bool:
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in ("unshare", "setpriv", "timeout"))


def reference_dir() -> Path | None:
    """Argo's v3.7.18 tree: $BIOINFRA_ARGO_REFERENCE, else ../shared/argo-v3.7.18 beside the repo."""
    env = os.environ.get("BIOINFRA_ARGO_REFERENCE")
    candidates = [Path(env)] if env else [ROOT.parent / "shared" / "argo-v3.7.18", Path("/work/shared/argo-v3.7.18")]
    return next((p for p in candidates if (p / "examples").is_dir()), None)


def load_expected() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(EXPECTED.read_text())
    return {e["file"]: e for e in data["workflows"]}


def workflows_in(path: Path) -> list[dict[str, Any]]:
    """The Workflow documents of one file (others, e.g. WorkflowTemplates, are not run)."""
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError:
        return []
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == "Workflow"]


# -- what only a cluster provides: Argo runs these; natively they must be rejected up front ------

def cluster_features(doc: dict[str, Any]) -> list[str]:
    """Features of a Workflow that change its outcome and that no local run can provide."""
    spec = doc.get("spec") or {}
    found: set[str] = set()
    for key in ("volumeClaimTemplates", "synchronization", "workflowTemplateRef", "artifactRepositoryRef"):
        if key in spec:
            found.add(f"spec.{key}")
    # Exit hooks (hooks.exit, onExit) run locally; hooks run on an expression (running, success, ...)
    # watch a live node and do not.
    if isinstance(spec.get("hooks"), dict) and set(spec["hooks"]) - {"exit"}:
        found.add("spec.hooks")
    # Volumes are not listed: the executor's caller gives every volume a folder (volume_roots), as
    # bioinfra run does for its workspace claim; here each gets a scratch folder (the pod shape).

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("resource", "suspend", "http", "plugin", "data", "containerSet", "sidecars",
                         "initContainers", "memoize", "synchronization", "templateRef",
                         "timeout", "artifacts", "archiveLocation"):
                    if not (k == "artifacts" and not v):
                        found.add(k)
                if k == "daemon" and v:
                    found.add("daemon")
                if k == "hooks" and isinstance(v, dict) and set(v) - {"exit"}:
                    found.add("hooks")
                if k in ("configMapKeyRef", "secretKeyRef", "fieldRef"):
                    found.add(f"valueFrom.{k}")
                if k == "name" and isinstance(v, str) and v.startswith("ARGO_DEBUG_PAUSE"):
                    found.add(v)
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for x in node:
                walk(x, path)

    walk(spec.get("templates") or [], "templates")
    walk(spec.get("arguments") or {}, "arguments")
    return sorted(found)


# -- the pod shape a native run needs (see the module docstring) --------------------------------

def with_pod_shape(doc: dict[str, Any]) -> dict[str, Any]:
    from bioinfra.errors import WorkflowSpecError
    from bioinfra.executor.workflow import apply_template_defaults, hoist_inline_templates

    doc = json.loads(json.dumps(doc))
    try:
        # The shape is given to each template as it runs: with spec.templateDefaults merged in, inline
        # templates among them (parse_workflow hoists them the same way).
        doc = apply_template_defaults(hoist_inline_templates(doc))
    except WorkflowSpecError:
        pass  # parse_workflow rejects it, naming it
    spec = doc.setdefault("spec", {})
    for t in spec.get("templates") or []:
        body = t.get("script") if isinstance(t.get("script"), dict) else t.get("container")
        if not isinstance(body, dict):
            continue
        if not body.get("command") and "argosay" in str(body.get("image", "")):
            body["command"] = ["argosay"]  # the image's entrypoint, which a pod runs when there is no command
        body.setdefault("workingDir", "/argo-wd")
        mounts = body.setdefault("volumeMounts", [])
        taken = {m.get("mountPath") for m in mounts}
        if body["workingDir"] not in taken:
            mounts.append({"name": SCRATCH_WD, "mountPath": body["workingDir"]})
        if "/tmp" not in taken and body["workingDir"] != "/tmp":
            mounts.append({"name": SCRATCH_TMP, "mountPath": "/tmp"})
    volumes = spec.setdefault("volumes", [])
    volumes += [{"name": SCRATCH_WD, "emptyDir": {}}, {"name": SCRATCH_TMP, "emptyDir": {}}]
    return doc


# -- one run, in a child process (so a hung Workflow is bounded) ---------------------------------

def _entrypoint_runtime(workflow: Any, raw_templates: dict[str, dict[str, Any]], tmp_root: Path, timeout: float,
                        standin: Path) -> Any:
    from bioinfra.executor.runtime import NativeRuntime, StepCommand

    class ArgoPodRuntime(NativeRuntime):
        """NativeRuntime with a private /tmp, and a hard time limit."""

        def run(self, command: StepCommand, log: Any) -> int:
            argv = list(command.argv)
            if argv and argv[0] == "/argosay":
                argv[0] = "argosay"
            # A pod's own /tmp and /mnt, and no write anywhere else on this machine: the step runs as
            # nobody in a private mount namespace (Argo's scripts write /mnt/out and the like as root).
            pod = 'mount --bind "$0" /tmp && mount -t tmpfs tmpfs /mnt && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"'
            argv = ["timeout", "-k", "5", str(int(timeout)), "unshare", "-m", "/bin/sh", "-c", pod, str(tmp_root), *argv]
            return super().run(StepCommand(**{**command.__dict__, "argv": argv}), log)

    return ArgoPodRuntime(path_prepend=(str(standin),), grace_seconds=2.0)


def run_child(doc: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one (shaped) Workflow; what happened as a JSON-able dict. Runs in the child process."""
    from bioinfra.errors import WorkflowSpecError
    from bioinfra.executor.runner import LocalExecutor, NullReporter
    from bioinfra.executor.workflow import parse_workflow

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # the executor stops every step's process group on this

    signal.signal(signal.SIGTERM, on_term)
    shaped = with_pod_shape(doc)
    workflow = parse_workflow(shaped)
    raw_templates = {t["name"]: t for t in shaped["spec"].get("templates") or []}
    # Not under /tmp: each step's /tmp is bind-mounted over, which would hide its own working folder.
    scratch_parent = os.environ.get("BIOINFRA_CONFORMANCE_SCRATCH", "/var/tmp")
    with tempfile.TemporaryDirectory(prefix="argo-conformance-", dir=scratch_parent) as scratch:
        base = Path(scratch)
        base.chmod(0o755)
        roots = {v: base / "volumes" / v for v in workflow.volumes}
        for p in roots.values():
            p.mkdir(parents=True)
            p.chmod(0o777)  # the steps run as nobody
        # The stand-ins are copied beside the run: a checkout under /tmp would be hidden from the steps
        # by the /tmp each of them gets bind-mounted over it.
        standin = base / "standin"
        shutil.copytree(STANDIN, standin)
        runtime = _entrypoint_runtime(workflow, raw_templates, roots[SCRATCH_TMP], timeout, standin)
        decided: dict[str, str] = {}  # tasks that ran or were judged (Skipped, Omitted) before any rejection

        class Recorder(NullReporter):
            def changed(self, task: Any) -> None:
                if task.phase != "Pending":
                    decided[task.name] = task.phase

        # One step at a time (max_cpus=1): every step's /tmp is the one scratch folder standing in for
        # each pod's own, so two steps at once would read each other's files.
        executor = LocalExecutor(workflow, volume_roots=roots, state_dir=base / "state", log_dir=base / "logs",
                                 runtime=runtime, max_cpus=1, reporter=Recorder())
        try:
            result = executor.run()
        except WorkflowSpecError as exc:
            done = ", ".join(f"{n}: {p}" for n, p in list(decided.items())[:3]) + (", ..." if len(decided) > 3 else "")
            return {"status": "rejected", "at": "run", "message": exc.message, "decided": done}
        return {
            "status": "ran",
            "phase": result.argo_phase or result.phase,
            "interrupted": result.interrupted,
            "nodes": {n: {"phase": s.phase, "message": s.message, "log": _tail(s.log) if s.phase == "Failed" else ""}
                      for n, s in result.tasks.items()},
        }


def _tail(log: Path) -> str:
    """The last lines a failed step printed (its log's own === lines left out)."""
    try:
        lines = [x for x in log.read_text(errors="replace").splitlines() if x and not x.startswith("=== ")]
    except OSError:
        return ""
    return " / ".join(lines[-3:])[-300:]


def run_one(doc: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Parse in-process (rejections are cheap), with the pod shape a native run needs (the one change
    made to Argo's Workflow); run in a bounded child process."""
    from bioinfra.errors import WorkflowSpecError
    from bioinfra.executor.workflow import parse_workflow

    try:
        parse_workflow(with_pod_shape(doc))
    except WorkflowSpecError as exc:
        return {"status": "rejected", "at": "parse", "message": exc.message}
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(timeout)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        # Each step is stopped at `timeout` (the runtime's `timeout`); the run gets a minute more, in
        # which exit handlers still run after a step that sleeps on purpose until it is stopped.
        out, err = proc.communicate(json.dumps(doc), timeout=timeout + 60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        return {"status": "timeout", "message": f"still running after {timeout:g} s; stopped"}
    if proc.returncode != 0 or not out.strip():
        tail = " ".join(err.strip().splitlines()[-1:])
        return {"status": "crashed", "message": f"the executor raised: {tail}"[:300]}
    return json.loads(out.strip().splitlines()[-1])


# -- verdicts ------------------------------------------------------------------------------------

@dataclass
class Row:
    file: str
    name: str
    expected: dict[str, Any] | None
    outcome: dict[str, Any]
    features: list[str]
    verdict: str = ""
    kind: str = ""  # same | rejected | differs | no assertion
    notes: list[str] = field(default_factory=list)


def judge(row: Row) -> None:
    exp, out = row.expected, row.outcome
    phase = exp.get("phase") if exp else None
    nodes = (exp or {}).get("nodes") or {}
    if out["status"] == "rejected":
        if out["at"] == "run" and out.get("decided"):
            row.kind = "differs"
            row.verdict = f"differs: rejected mid-run, after {out['decided']}: {out['message']}"
        else:
            row.kind, row.verdict = "rejected", f"rejected: {out['message']}"
        return
    if out["status"] in ("timeout", "crashed"):
        row.kind, row.verdict = "differs", f"differs: {out['message']}"
        return
    got = out["phase"]
    problems = []
    if phase is not None and got != phase:
        problems.append(f"Workflow {got}, Argo {phase}")
    for node, want in nodes.items():
        have = (out["nodes"].get(node) or {}).get("phase")
        if have is None:
            problems.append(f"no node '{node}' (Argo: {want})")
        elif have != want:
            problems.append(f"node '{node}' {have}, Argo {want}")
    if problems:
        row.kind, row.verdict = "differs", "differs: " + "; ".join(problems)
    elif phase is None and not nodes:
        if row.features:
            row.kind = "differs"
            row.verdict = f"differs: ran ({got}) although it uses {', '.join(row.features)}, which it does not provide"
        else:
            row.kind, row.verdict = "no assertion", f"no assertion (ran: {got})"
    else:
        row.kind, row.verdict = "same", "same"
        if row.features:
            row.notes.append(f"ignores {', '.join(row.features)}")


def describe(out: dict[str, Any]) -> str:
    if out["status"] == "ran":
        shown = ", ".join(f"{n}: {v['phase']}" for n, v in list(out["nodes"].items())[:6])
        more = ", ..." if len(out["nodes"]) > 6 else ""
        failed = next(((n, v) for n, v in out["nodes"].items() if v["phase"] == "Failed" and v["message"]), None)
        why = ""
        if failed is not None:
            why = f"; {failed[0]}: {failed[1]['message']}" + (f" ({failed[1]['log']})" if failed[1].get("log") else "")
        return f"{out['phase']} ({shown}{more}{why[:300]})"
    if out["status"] == "rejected":
        return f"rejected ({'parse' if out['at'] == 'parse' else 'run'})"
    return out["status"]


def collect(ref: Path, only: list[str] | None, timeout: float) -> list[Row]:
    expected = load_expected()
    rows = []
    files = sorted({p for g in GLOBS for p in ref.glob(g)})
    for path in files:
        rel = str(path.relative_to(ref))
        if only and rel not in only:
            continue
        for i, doc in enumerate(workflows_in(path)):
            meta = doc.get("metadata") or {}
            name = meta.get("name") or meta.get("generateName") or f"#{i}"
            row = Row(rel, name, expected.get(rel), run_one(doc, timeout), cluster_features(doc))
            judge(row)
            rows.append(row)
            print(f"{row.kind:12} {rel}: {row.verdict[:160]}", file=sys.stderr, flush=True)
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row_line(r: Row, rows: list[Row]) -> tuple[str, str]:
    """(the file cell, the table line) of one row."""
    if r.expected and (r.expected.get("phase") or r.expected.get("nodes")):
        want = r.expected.get("phase") or "phase not asserted"
        if r.expected.get("nodes"):
            want += "; " + ", ".join(f"{n}: {p}" for n, p in r.expected["nodes"].items())
        want += f" ({r.expected['test']})"
    else:
        want = "no assertion"
    if r.features and r.kind != "rejected":
        want += f"; needs {', '.join(r.features)}"
    verdict = r.verdict + (f" ({'; '.join(r.notes)})" if r.notes else "")
    file = r.file if sum(1 for x in rows if x.file == r.file) == 1 else f"{r.file} ({r.name})"
    return file, f"| {_cell(file)} | {_cell(want)} | {_cell(describe(r.outcome))} | {_cell(verdict)} |"


_KINDS = ("same", "rejected", "differs", "no assertion")


def _counts_line(counts: dict[str, int]) -> str:
    return (f"**same: {counts['same']}** · **rejected: {counts['rejected']}** · **differs: {counts['differs']}** · "
            f"no assertion: {counts['no assertion']}")


def update_table(text: str, rows: list[Row]) -> str:
    """The committed table with only the rows of the re-run files replaced and the counts line recounted
    from every row (`--only FILE... --update`: a full run takes half an hour)."""
    fresh = dict(_row_line(r, rows) for r in rows)
    files = {r.file for r in rows}
    out: list[str] = []
    counts = dict.fromkeys(_KINDS, 0)
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and cells[0] not in ("Workflow file", "---"):
            if cells[0].split(" (")[0] in files:
                if cells[0] not in fresh:
                    raise SystemExit(f"✗ row {cells[0]!r} was not re-run: run the whole file")
                line = fresh.pop(cells[0])
                cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            kind = next(k for k in _KINDS if cells[3].startswith(k))
            counts[kind] += 1
        out.append(line)
    if fresh:
        raise SystemExit(f"✗ no row in the table for {', '.join(fresh)}: run `make conformance`")
    new = "\n".join(out) + "\n"
    return re.sub(r"^\*\*same: \d+\*\*.*$", _counts_line(counts), new, count=1, flags=re.M)


def write_table(rows: list[Row], ref: Path) -> str:
    counts = {k: sum(1 for r in rows if r.kind == k) for k in ("same", "rejected", "differs", "no assertion")}
    asserted = sum(1 for r in rows if r.expected and (r.expected.get("phase") or r.expected.get("nodes")))
    lines = [
        "# Argo conformance of the local executor",
        "",
        f"Generated by `make conformance` (scripts/conformance.py) on {datetime.date.today().isoformat()} from "
        f"Argo v3.7.18 ({len(rows)} Workflows in examples/, test/e2e/functional/, test/e2e/testdata/; "
        f"{asserted} with an outcome Argo's tests assert).",
        "",
        _counts_line(counts),
        "",
        "How it is made: every Workflow document of those files is parsed by the local executor "
        "(`parse_workflow`); a `WorkflowSpecError` is *rejected* with the executor's own message. One that parses "
        "runs with `LocalExecutor` and `NativeRuntime` in a child process bounded at "
        f"{TIMEOUT:g} s, with shell stand-ins for the `argosay` image (its entrypoint when a container has no "
        "`command`), cowsay, python and busybox's sh first on PATH (tests/conformance/standin), each step run as "
        "nobody in a private mount namespace whose /tmp is the run's scratch folder and /mnt a tmpfs; the harness gives each template the pod shape the native runtime needs and Argo's phase logic "
        "never reads (a workingDir and scratch volumes at it and at /tmp). What Argo expects is "
        "tests/conformance/expected.yaml: labelled examples must succeed (examples_test.go), and each e2e file "
        "has the Workflow and node phases its Go test asserts, cited by file:line and function. *same*: the "
        "asserted phases match; *differs*: they do not, or the run was rejected only after some step ran or was "
        "judged (Skipped, Omitted), hung, or "
        "ran a Workflow that needs what only a cluster provides (artifacts, a hook run on an expression, ...) instead "
        "of rejecting it; *no assertion*: it ran and no Go test asserts its outcome.",
        "",
        "| Workflow file | Argo expects (Go test) | bioinfra | verdict |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(_row_line(r, rows)[1])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="files to run (paths under the Argo tree); prints verdicts")
    parser.add_argument("--update", action="store_true",
                        help="with --only: rewrite only those files' rows and the counts line of the table")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per Workflow (default 420)")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(run_child(json.loads(sys.stdin.read()), args.child)))
        return 0
    ref = reference_dir()
    if ref is None:
        print("✗ Argo v3.7.18 reference not found: set BIOINFRA_ARGO_REFERENCE or put it at ../shared/argo-v3.7.18",
              file=sys.stderr)
        return 2
    if not can_sandbox():
        print(f"✗ {SANDBOX_NEEDS}", file=sys.stderr)
        return 2
    rows = collect(ref, args.only, args.timeout)
    if args.only:
        for r in rows:
            print(f"{r.file}\t{r.kind}\t{r.verdict}")
        if args.update:
            TABLE.write_text(update_table(TABLE.read_text(), rows))
            print(f"✓ updated {len(rows)} row(s) of {TABLE.relative_to(ROOT)}", file=sys.stderr)
        return 0
    TABLE.write_text(write_table(rows, ref))
    print(f"✓ wrote {TABLE.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
