"""Issue #17 "Done when": a pipeline of one's own, written by `bioinfra pipelines new` in a temporary
folder (not in the repository), runs locally as written, lints, renders for aws, gcp and onprem,
appears in `bioinfra pipelines list` from the configured pipelines.path, shows its own options in
`bioinfra run NAME --help`, and its own test passes. A hostile value reaches its step only as data.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bioinfra.errors import ExitCode

pytestmark = pytest.mark.integration

# Quotes, command substitution, backticks, newlines and an Argo tag: pasted into a script this runs.
HOSTILE = "x'\"$(touch CANARY)`touch CANARY`;touch CANARY\n{{workflow.name}} }}{{ $HOME"


def new_pipeline(cli, where: Path, name: str = "my-counter") -> tuple[Path, list[str]]:
    """`bioinfra pipelines new`; returns the folder and the run command it printed (as argv)."""
    proc = cli("pipelines", "new", str(where / name), check=True)
    lines = dict(line.split("\t", 1) for line in proc.stdout.splitlines())
    return where / name, shlex.split(lines["run"])


def test_a_new_pipeline_runs_as_written_lints_renders_and_is_listed(cli, tmp_path):
    pipes = tmp_path / "pipes"
    folder, command = new_pipeline(cli, pipes)
    assert sorted(p.name for p in folder.iterdir()) == ["example.txt", "pipeline.yaml", "test_pipeline.py",
                                                         "workflow.yaml.j2"]
    # The command `new` printed, as written.
    assert command[:3] == ["bioinfra", "run", f"{folder}/"]
    proc = cli(*command[1:], "-o", str(tmp_path / "out"), "--runtime", "native", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "count.txt").read_text() == "lines\t3\n"
    assert "3 lines counted" in proc.stderr and f"count\t{tmp_path / 'out' / 'count.txt'}" in proc.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["pipeline"] == "my-counter" and manifest["pipeline_source"] == str(folder)

    # lint: pipeline.yaml, then the Workflow of every mode on every target.
    proc = cli("lint", str(folder))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for target in ("local", "onprem", "aws", "gcp"):
        assert f"✓ mode default on {target}: no problems" in proc.stdout

    # render for each cluster: the Workflow a run would submit, which lints again.
    data = folder / "example.txt"
    for target in ("aws", "gcp", "onprem"):
        proc = cli("render", str(folder), "--input", str(data), "--target", target, "--run-id", "r1")
        assert proc.returncode == 0, proc.stderr
        doc = yaml.safe_load(proc.stdout)
        params = {p["name"]: p["value"] for p in doc["spec"]["arguments"]["parameters"]}
        assert params["input"].startswith("inputs/") and params["input"].endswith("/input.txt")
        assert params["label"] == "lines" and params["run-dir"] == "runs/r1"
        assert doc["metadata"]["labels"]["bioinfra.io/pipeline"] == "my-counter"
        pool = json.dumps(doc)
        assert ("preferredDuringScheduling" in pool) == (target == "onprem")
        lint = subprocess.run([sys.executable, "-m", "bioinfra", "lint", "-"], input=proc.stdout, text=True,
                              capture_output=True, cwd=tmp_path)
        assert lint.returncode == 0, lint.stdout + lint.stderr

    # On the configured pipelines.path: listed, run by name, with its own options.
    (tmp_path / "bioinfra.yaml").write_text("pipelines:\n  path: [pipes]\n")
    proc = cli("pipelines", "list", check=True)
    rows = {line.split("\t")[0]: line.split("\t") for line in proc.stdout.splitlines()}
    assert rows["my-counter"][1:3] == ["0.1.0", str(folder.resolve())]
    assert {"fastqc-to-bwa", "cellprofiler", "variant-calling"} <= set(rows)
    proc = cli("run", "my-counter", "--help", check=True)
    assert "--input FILE" in proc.stdout and "--label TEXT" in proc.stdout and "--r1" not in proc.stdout
    proc = cli("pipelines", "show", "my-counter", check=True)
    assert "--input\tfile\texample.txt" in proc.stdout and "steps\tstage-in, count, stage-out" in proc.stdout
    proc = cli("run", "my-counter", "--input", str(data), "--label", "rows", "-o", str(tmp_path / "o2"),
               "--runtime", "native")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o2" / "count.txt").read_text() == "rows\t3\n"
    # A missing file input is refused naming it, before anything is made.
    proc = cli("run", "my-counter", "--input", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "o3"))
    assert proc.returncode == ExitCode.INPUT_INVALID and "--input" in proc.stderr and "no such file" in proc.stderr
    assert not (tmp_path / "o3").exists()


def test_the_generated_test_passes(cli, tmp_path, env):
    folder, _command = new_pipeline(cli, tmp_path, "counter")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:kmock",
                           str(folder / "test_pipeline.py")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout


def test_new_refuses_a_folder_that_holds_files_and_a_name_that_is_not_one(cli, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    proc = cli("pipelines", "new", str(tmp_path / "full"))
    assert proc.returncode == ExitCode.INPUT_INVALID and "not an empty folder" in proc.stderr
    assert (tmp_path / "full" / "keep.txt").read_text() == "x"
    proc = cli("pipelines", "new", str(tmp_path / "x"), "--name", "Not_A_Name")
    assert proc.returncode == ExitCode.INPUT_INVALID and "not a pipeline name" in proc.stderr


def test_a_hostile_value_reaches_the_step_only_as_data(cli, tmp_path):
    """At the CLI the string input refuses it (exit 4, naming the option; spec.py holds a string
    input's pattern to refuse quotes, '$', '`', '{', ';' and newlines). Set as the Workflow's
    parameter anyway, as `argo submit -p label=...`, `bioinfra run wf.yaml -p label=...` or an edited
    workflow.yaml would: the Workflow's text holds it only as that parameter's value, and the step
    writes it verbatim, running nothing."""
    from bioinfra.config import Config
    from bioinfra.engine.render import dump, render_pipeline
    from bioinfra.engine.spec import load_spec
    from bioinfra.executor.runner import LocalExecutor
    from bioinfra.executor.runtime import NativeRuntime
    from bioinfra.executor.workflow import parse_workflow

    folder, _command = new_pipeline(cli, tmp_path)
    proc = cli("run", str(folder), "--input", str(folder / "example.txt"), "--label", HOSTILE, "-o",
               str(tmp_path / "o"))
    assert proc.returncode == ExitCode.INPUT_INVALID and "--label" in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()

    spec = load_spec(folder)
    workspace = tmp_path / "ws"
    (workspace / "inputs").mkdir(parents=True)
    (workspace / "inputs" / "data.txt").write_text("a\nb\nc\n")
    (workspace / "runs" / "h").mkdir(parents=True)
    workflow = render_pipeline(spec, spec.mode_for(set()), Config(), "local", values={}, labels={}, parameters={
        "input": "inputs/data.txt", "label": HOSTILE, "run-dir": "runs/h", "stage-in": "", "stage-out": ""})
    text = dump(workflow, spec, spec.mode_for(set()))
    doc = yaml.safe_load(text)
    [param] = [p for p in doc["spec"]["arguments"]["parameters"] if p["name"] == "label"]
    assert param["value"] == HOSTILE
    param["value"] = ""
    assert "CANARY" not in json.dumps(doc)  # nowhere else: not in a script, an env entry or a name
    result = LocalExecutor(parse_workflow(yaml.safe_load(text)), volume_roots={"workspace": workspace},
                           state_dir=tmp_path / "state", log_dir=tmp_path / "logs", runtime=NativeRuntime(),
                           max_cpus=1).run()
    assert result.tasks["count"].phase == "Succeeded", result.tasks["count"].message
    assert (workspace / "runs" / "h" / "count.txt").read_text() == f"{HOSTILE}\t3\n"
    assert json.loads((workspace / "runs" / "h" / "summary.json").read_text()) == {"lines": 3}
    assert not list(tmp_path.rglob("CANARY")) and not (Path.cwd() / "CANARY").exists()

    # The same through the CLI: the Workflow `render` prints, run as a plain file with -p (as
    # `argo submit -p` would); the run's workflow.yaml holds the value only as the parameter's.
    rendered = tmp_path / "wf.yaml"
    rendered.write_text(cli("render", str(folder), "--input", str(folder / "example.txt"), check=True).stdout)
    out, run_dir = tmp_path / "out", tmp_path / "run-dir"
    run_dir.mkdir()
    proc = cli("run", str(rendered), "-p", f"label={HOSTILE}", "-p", f"input={folder / 'example.txt'}",
               "-p", f"run-dir={run_dir}", "-o", str(out), "--runtime", "native")
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "count.txt").read_text() == f"{HOSTILE}\t3\n"
    ran = yaml.safe_load((out / "workflow.yaml").read_text())
    assert [p["value"] for p in ran["spec"]["arguments"]["parameters"] if p["name"] == "label"] == [HOSTILE]
    assert "CANARY" not in json.dumps({**ran, "spec": {**ran["spec"], "arguments": {}}})
    assert not list(tmp_path.rglob("CANARY")) and not (Path.cwd() / "CANARY").exists()


def test_lint_names_the_mode_and_target_of_each_problem(cli, tmp_path):
    folder, _command = new_pipeline(cli, tmp_path)
    template = folder / "workflow.yaml.j2"
    template.write_text(template.read_text().replace('depends: "count.Succeeded"', 'depends: "cont.Succeeded"'))
    proc = cli("lint", str(folder))
    assert proc.returncode == ExitCode.INPUT_INVALID, proc.stdout + proc.stderr
    for target in ("local", "onprem", "aws", "gcp"):
        assert f"✗ mode default on {target}: templates.main sorting failed: invalid dependency cont" in proc.stdout
    spec = folder / "pipeline.yaml"
    spec.write_text(spec.read_text().replace("version: 0.1.0", "version: one"))
    proc = cli("lint", str(folder))
    assert proc.returncode == ExitCode.INPUT_INVALID and "is not a valid pipeline: version:" in proc.stderr
    # The built-ins: every mode (and the QC gate on and off) on every target.
    from bioinfra.engine.spec import builtin_root

    proc = cli("lint", str(builtin_root() / "fastqc-to-bwa"), check=True)
    assert proc.stdout.count("✓ mode ") == 12 and "✓ mode single on gcp (qc_gate on): no problems" in proc.stdout


def test_folder_int_and_bool_inputs_reach_the_step_as_data(cli, tmp_path):
    """The input types the scaffold does not use: a folder (staged whole, by content), an int and a
    bool (checked, then text in their parameters; the bool also shapes the Workflow through Jinja)."""
    folder, _command = new_pipeline(cli, tmp_path, "lister")
    spec = yaml.safe_load((folder / "pipeline.yaml").read_text())
    spec["inputs"] = [
        {"name": "data", "type": "folder", "help": "a folder whose files are listed", "required": True},
        {"name": "top", "type": "int", "default": 2, "min": 1, "max": 10, "help": "how many names"},
        {"name": "shout", "type": "bool", "default": False, "help": "upper-case the names"},
    ]
    spec["outputs"] = {"summary_file": "summary.json", "summary": ["{lines} names listed"]}
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    template = (folder / "workflow.yaml.j2").read_text()
    template = template.replace('''      - name: input
        value: ""
      - name: label
        value: ""''', '''      - name: data
        value: ""
      - name: top
        value: ""
      - name: shout
        value: ""''')
    template = template.replace(
        'INPUT="workflow.parameters.input", LABEL="workflow.parameters.label"',
        'DATA="workflow.parameters.data", TOP="workflow.parameters.top", SHOUT="workflow.parameters.shout"')
    old = template[template.index("          lines=$(wc -l"):template.index('          cat "$RUN_DIR/count.txt"')]
    template = template.replace(old, '''          ls "$DATA" | sort | head -n "$TOP" > "$RUN_DIR/count.txt"
{% if values.shout %}
          tr a-z A-Z < "$RUN_DIR/count.txt" > "$RUN_DIR/count.up" && mv "$RUN_DIR/count.up" "$RUN_DIR/count.txt"
{% endif %}
          printf '{"lines": %d}\\n' "$(wc -l < "$RUN_DIR/count.txt")" > "$RUN_DIR/summary.json"
''')
    (folder / "workflow.yaml.j2").write_text(template)
    data = tmp_path / "plate 1"
    data.mkdir()
    for name in ("c.tif", "a.tif", "b.tif"):
        (data / name).write_text(name)
    out = tmp_path / "out"
    proc = cli("run", str(folder), "--data", str(data), "--top", "2", "--shout", "-o", str(out), "--runtime", "native")
    assert proc.returncode == 0, proc.stderr
    assert (out / "count.txt").read_text() == "A.TIF\nB.TIF\n" and "2 names listed" in proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["data"]["files"] == 3 and len(manifest["inputs"]["data"]["sha256"]) == 64
    assert manifest["values"] == {"top": 2, "shout": True}
    params = {p["name"]: p["value"] for p in yaml.safe_load((out / "workflow.yaml").read_text())["spec"]["arguments"]["parameters"]}
    assert params["top"] == "2" and params["shout"] == "true" and params["data"].endswith("/data")
    # Checked before anything is made: an int out of range, a folder that is not there.
    for args, message in ((["--data", str(data), "--top", "11"], "--top must be between 1 and 10"),
                          (["--data", str(tmp_path / "nope")], "--data " + str(tmp_path / "nope") + ": no such folder")):
        proc = cli("run", str(folder), *args, "-o", str(tmp_path / "bad"), "--runtime", "native")
        assert proc.returncode == ExitCode.INPUT_INVALID and message in proc.stderr, proc.stderr
        assert not (tmp_path / "bad").exists()
