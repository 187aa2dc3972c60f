"""`bioinfra run my-workflow.yaml -p NAME=VALUE` (#17 point 4): a plain Argo Workflow, no bioinfra
metadata, run through the one engine (bioinfra.engine.workflow_file) as `argo submit` would run it.

Real local runs with the native runtime, through the CLI in a subprocess. The Workflows are written
here, after Argo v3.7.18's examples/steps.yaml and test/e2e/functional_test.go TestContinueOnFail
(what phase Argo reaches for each is cited beside it); no Argo file is copied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bioinfra.errors import ExitCode
from tests.conftest import REPO

pytestmark = pytest.mark.integration

ARGO_SCHEMA = json.loads((REPO / "tests" / "schemas" / "argo-workflow.schema.json").read_text())

CANARY = "CANARY"
# Quotes, command substitution, backticks, a newline and an Argo tag: must arrive as written.
HOSTILE = "it's \"quoted\" $(id) `touch CANARY` $(touch CANARY)\nline two {{workflow.name}} ;>CANARY"

HELLO = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: hello-world-
spec:
  entrypoint: hello
  arguments:
    parameters:
      - name: message
        value: hello world
  templates:
    - name: hello
      container:
        image: busybox
        command: [echo]
        args: ["{{workflow.parameters.message}}"]
"""

# examples/steps.yaml's shape: one step, then two in parallel, each printing its own message.
# Argo reaches Succeeded (examples_test.go runs every example to Succeeded).
STEPS = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: three-greetings-
spec:
  entrypoint: greet
  arguments:
    parameters:
      - name: Greeting-Word
        value: hello
  templates:
    - name: greet
      steps:
        - - name: opening
            template: shout
            arguments:
              parameters: [{name: words, value: "{{workflow.parameters.Greeting-Word}} opening"}]
        - - name: left
            template: shout
            arguments:
              parameters: [{name: words, value: "{{workflow.parameters.Greeting-Word}} left"}]
          - name: right
            template: shout
            arguments:
              parameters: [{name: words, value: "{{workflow.parameters.Greeting-Word}} right"}]
    - name: shout
      inputs:
        parameters:
          - name: words
      container:
        image: busybox
        command: [echo]
        args: ["{{inputs.parameters.words}}"]
"""

# functional_test.go TestContinueOnFail: a step whose dag fails, with continueOn.failed, beside one
# that succeeds; a later group still runs. Argo: the Workflow Succeeded, node B Failed.
CONTINUE_ON_FAIL = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: keep-going-
spec:
  entrypoint: main
  parallelism: 2
  templates:
    - name: main
      steps:
        - - name: A
            template: ok
          - name: B
            template: breaks
            continueOn:
              failed: true
        - - name: C
            template: ok
    - name: breaks
      dag:
        tasks:
          - name: B-1
            template: fail
    - name: ok
      container:
        image: busybox
        command: [echo, fine]
    - name: fail
      container:
        image: busybox
        command: [sh, -c, "echo going down; exit 1"]
"""

# validate.go refuses a template tag naming an input the template does not declare.
REFUSED = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: refused-
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: one
            template: say
    - name: say
      container:
        image: busybox
        command: [echo]
        args: ["{{inputs.parameters.nowhere}}"]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def step_output(log: Path) -> str:
    """What the step printed: the log between the executor's `=== cwd:` header and `=== exit`."""
    lines = log.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("=== cwd:")) + 1
    end = max(i for i, line in enumerate(lines) if line.startswith("=== exit"))
    return "\n".join(lines[start:end])


def leaves(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [x for k, v in node.items() for x in leaves(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [x for i, v in enumerate(node) for x in leaves(v, f"{path}[{i}]")]
    return [(path, node)] if isinstance(node, str) else []


def nothing_made(tmp_path: Path, out: Path) -> None:
    assert not out.exists()
    assert not (tmp_path / "results").exists()
    assert not list(tmp_path.rglob(CANARY))


# -- (a) + (f): a hello world, its parameter set with -p ----------------------------------------


@pytest.mark.parametrize("value", ["hi from -p", HOSTILE], ids=["plain", "hostile"])
def test_hello_world_prints_the_parameter_given_with_p(cli, tmp_path: Path, value: str) -> None:
    wf = write(tmp_path, "hello.yaml", HELLO)
    out = tmp_path / "out"
    proc = cli("run", str(wf), "-p", f"message={value}", "--runtime", "native", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"results\t{out}" in proc.stdout and f"manifest\t{out / 'manifest.json'}" in proc.stdout
    # The step printed the value exactly: nothing in it ran, no tag in it was substituted.
    assert step_output(out / "logs" / "hello-world.log") == value
    assert not list(tmp_path.rglob(CANARY)) and "uid=" not in (out / "logs" / "hello-world.log").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "succeeded" and manifest["target"] == "local" and manifest["runtime"] == "native"
    assert manifest["pipeline"] == "hello-world" and manifest["pipeline_source"] == str(wf)
    assert manifest["parameters"] == {"message": value}
    assert manifest["steps"]["hello-world"]["phase"] == "Succeeded"
    # (f) The run folder's workflow.yaml holds the value once, as the parameter's value, nowhere else.
    rendered = yaml.safe_load((out / "workflow.yaml").read_text())
    assert [p for p, v in leaves(rendered) if value in v] == [".spec.arguments.parameters[0].value"]
    assert rendered["spec"]["templates"][0]["container"]["args"] == ["{{workflow.parameters.message}}"]


def test_a_parameter_not_given_keeps_the_files_value(cli, tmp_path: Path) -> None:
    wf = write(tmp_path, "hello.yaml", HELLO)
    proc = cli("run", str(wf), "--runtime", "native", "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert step_output(tmp_path / "out" / "logs" / "hello-world.log") == "hello world"


# -- (b): Argo's own examples, in our words, reach Argo's phase --------------------------------


def test_steps_run_in_their_groups_and_succeed_as_in_argo(cli, tmp_path: Path) -> None:
    wf = write(tmp_path, "steps.yaml", STEPS)
    out = tmp_path / "out"
    # A parameter name with capitals and '-' is matched exactly.
    proc = cli("run", str(wf), "-p", "Greeting-Word=howdy", "--runtime", "native", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    steps = manifest["steps"]
    assert manifest["status"] == "succeeded" and steps["three-greetings"]["phase"] == "Succeeded"
    for name in ("opening", "left", "right"):
        assert steps[name]["phase"] == "Succeeded"
        assert step_output(out / "logs" / f"{name}.log") == f"howdy {name}"
    # The second group starts after the first has finished.
    assert steps["opening"]["finished"] <= min(steps["left"]["started"], steps["right"]["started"])
    assert manifest["parameters"] == {"Greeting-Word": "howdy"}


def test_continue_on_failed_step_succeeds_as_in_argo(cli, tmp_path: Path) -> None:
    wf = write(tmp_path, "keep-going.yaml", CONTINUE_ON_FAIL)
    out = tmp_path / "out"
    proc = cli("run", str(wf), "--runtime", "native", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    steps = manifest["steps"]
    assert manifest["status"] == "succeeded"
    assert steps["B"]["phase"] == "Failed" and steps["B-1"]["phase"] == "Failed"
    assert steps["A"]["phase"] == steps["C"]["phase"] == "Succeeded"


def test_a_failing_step_fails_the_run_with_its_log(cli, tmp_path: Path) -> None:
    wf = write(tmp_path, "fails.yaml", CONTINUE_ON_FAIL.replace("            continueOn:\n              failed: true\n", ""))
    out = tmp_path / "out"
    proc = cli("run", str(wf), "--runtime", "native", "-o", str(out))
    assert proc.returncode == int(ExitCode.STEP_FAILED), proc.stderr
    assert "'B-1'" in proc.stderr and str(out / "logs") in proc.stderr
    assert f"bioinfra run {wf} --resume --output {out}" in proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["steps"]["keep-going"]["phase"] == "Failed"
    assert "going down" in (out / "logs" / "B-1.log").read_text()


# -- (c): what Argo or the local executor refuses, before anything is made ----------------------


def test_a_workflow_argo_refuses_exits_4_with_argos_message(cli, tmp_path: Path) -> None:
    wf = write(tmp_path, "refused.yaml", REFUSED)
    out = tmp_path / "out"
    proc = cli("run", str(wf), "--runtime", "native", "-o", str(out))
    assert proc.returncode == int(ExitCode.INPUT_INVALID), proc.stderr
    # validate.go validateLeaf -> resolveAllVariables: "failed to resolve {{...}}"
    assert "templates.main.steps[0].one templates.say: failed to resolve {{inputs.parameters.nowhere}}" in proc.stderr
    nothing_made(tmp_path, out)


def test_a_parameter_without_a_value_is_refused_as_the_controller_refuses_it(cli, tmp_path: Path) -> None:
    wf = write(tmp_path, "hello.yaml", HELLO.replace("        value: hello world\n", ""))
    out = tmp_path / "out"
    proc = cli("run", str(wf), "--runtime", "native", "-o", str(out))
    assert proc.returncode == int(ExitCode.INPUT_INVALID), proc.stderr
    # validate.go validateArgumentsValues
    assert "spec.arguments.message.value or spec.arguments.message.valueFrom is required" in proc.stderr
    assert "-p message=VALUE" in proc.stderr
    nothing_made(tmp_path, out)


def test_what_the_local_executor_cannot_run_is_refused_naming_it(cli, tmp_path: Path) -> None:
    suspend = HELLO.replace("      container:\n        image: busybox\n        command: [echo]\n"
                            "        args: [\"{{workflow.parameters.message}}\"]\n", "      suspend: {}\n")
    scratch = HELLO.replace("  templates:", "  volumes:\n    - name: scratch\n      emptyDir: {}\n  templates:")
    for name, text, said in (("suspend.yaml", suspend, "('hello' is a suspend template)"),
                             ("scratch.yaml", scratch, "no local folder for volume(s): 'scratch' (emptyDir)")):
        out = tmp_path / f"out-{name}"
        proc = cli("run", str(write(tmp_path, name, text)), "--runtime", "native", "-o", str(out))
        assert proc.returncode == int(ExitCode.UNSUPPORTED), proc.stderr
        assert said in proc.stderr and "--target onprem|aws|gcp" in proc.stderr
        nothing_made(tmp_path, out)


# -- (d): -p of a name the Workflow does not declare ---------------------------------------------


def test_p_of_an_undeclared_parameter_is_refused(cli, tmp_path: Path) -> None:
    wf = write(tmp_path, "steps.yaml", STEPS)
    out = tmp_path / "out"
    proc = cli("run", str(wf), "-p", "colour=red", "--runtime", "native", "-o", str(out))
    assert proc.returncode == int(ExitCode.INPUT_INVALID), proc.stderr
    assert "-p colour:" in proc.stderr and "declares no parameter 'colour'" in proc.stderr
    assert "Greeting-Word" in proc.stderr  # what it does declare
    # Names are exact: another case or '_' for '-' is not the parameter (but is suggested).
    proc = cli("run", str(wf), "-p", "greeting_word=hi", "--runtime", "native", "-o", str(out))
    assert proc.returncode == int(ExitCode.INPUT_INVALID) and "did you mean 'Greeting-Word'?" in proc.stderr
    proc = cli("run", str(wf), "-p", "Greeting-Word", "--runtime", "native", "-o", str(out))
    assert proc.returncode == int(ExitCode.INPUT_INVALID)
    assert "expected parameter of the form: NAME=VALUE. Received: Greeting-Word" in proc.stderr  # argo's words
    nothing_made(tmp_path, out)


# -- (e): --dry-run ---------------------------------------------------------------------------------


def test_dry_run_lists_the_steps_and_creates_nothing(cli, tmp_path: Path) -> None:
    wf = write(tmp_path, "steps.yaml", STEPS)
    out = tmp_path / "out"
    proc = cli("run", str(wf), "-p", "Greeting-Word=hey", "--runtime", "native", "--dry-run", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "dry run: nothing was created"
    assert "pipeline\tthree-greetings 0+" in proc.stdout and f"({wf})" in proc.stdout
    assert [line for line in lines if line.startswith("step\t")] == [
        "step\topening (shout, 1 cpu), group 1",
        "step\tleft (shout, 1 cpu), group 2",
        "step\tright (shout, 1 cpu), group 2",
    ]
    nothing_made(tmp_path, out)
    assert not (tmp_path / "cache" / "bioinfra" / "workspace" / "runs").exists()


def test_help_lists_the_workflows_parameters(cli, tmp_path: Path) -> None:
    wf = write(tmp_path, "steps.yaml", STEPS)
    proc = cli("run", str(wf), "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Greeting-Word" in proc.stdout and "default 'hello'" in proc.stdout
    assert "-p, --parameter NAME=VALUE" in proc.stdout and "--dry-run" in proc.stdout


# -- on a cluster: submitted like `argo submit` (kmock + the Argo stand-in, tests/fakes) ----------

DAG = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: two-tasks-
spec:
  entrypoint: main
  arguments:
    parameters:
      - name: message
        value: hello
  volumes:
    - name: workspace
      persistentVolumeClaim:
        claimName: my-own-claim
  templates:
    - name: main
      dag:
        tasks:
          - name: first
            template: say
          - name: second
            template: say
            depends: first
    - name: say
      container:
        image: busybox
        command: [echo]
        args: ["{{workflow.parameters.message}}"]
        volumeMounts: [{name: workspace, mountPath: /data}]
"""


def test_submitted_to_the_cluster_like_argo_submit(onprem, env, monkeypatch, tmp_path: Path) -> None:
    """In process, as `bioinfra run FILE --target onprem -p ...` runs it after parsing its options
    (bioinfra.cli.workflow_file): the file's pipeline and -p values, then the engine with the cluster
    backend. STAND-INS: the API server is kmock's emulator, Argo's controller tests/fakes/argo.py,
    MinIO moto's S3."""
    from bioinfra.adaptors.kube import connect
    from bioinfra.config import parse_config
    from bioinfra.engine import workflow_file
    from bioinfra.engine.cluster import ClusterBackend
    from bioinfra.engine.engine import RunOptions, execute
    from bioinfra.executor.runner import NullReporter
    from tests.fakes.argo import play

    for key in ("BIOINFRA_MINIO_URL", "XDG_CACHE_HOME"):
        monkeypatch.setenv(key, env[key])

    def script(argo, _result) -> None:
        argo.patch()
        for task in argo.tasks:
            argo.step(task, [("Succeeded", f"{task} said it\n", "")])
            argo.patch()
        argo.finish("Succeeded", "")

    argo = play(onprem["api"], onprem["s3"], script)
    wf = workflow_file.load(write(tmp_path, "two-tasks.yaml", DAG))
    given = workflow_file.given(wf, [f"message={HOSTILE}"])
    config = parse_config({"name": "lab", "target": "onprem"})
    out = tmp_path / "out"
    outcome = execute(config, wf.spec, given, RunOptions(target="onprem", output=out),
                      ClusterBackend(config, None, "onprem", kube=connect(onprem["kubeconfig"])),
                      say=lambda _m: None, reporter=NullReporter())
    argo.join(30)
    assert "error" not in argo.result, argo.result.get("error")
    assert outcome.phase == "Succeeded"
    submitted = argo.result["workflow"]
    jsonschema.validate(submitted, ARGO_SCHEMA)  # on the wire: the strict Argo schema
    run_id = submitted["metadata"]["name"]
    assert run_id == outcome.run_id and run_id.startswith("two-tasks-") and "generateName" not in submitted["metadata"]
    assert submitted["metadata"]["namespace"] == "bioinfra"
    assert submitted["metadata"]["labels"]["bioinfra.io/run-id"] == run_id
    assert [p for p, v in leaves(submitted) if HOSTILE in v] == [".spec.arguments.parameters[0].value"]
    assert submitted["spec"]["arguments"]["parameters"] == [{"name": "message", "value": HOSTILE}]
    # The `workspace` claim is bioinfra's workspace; the steps are as written (no local workingDir).
    assert submitted["spec"]["volumes"] == [{"name": "workspace",
                                             "persistentVolumeClaim": {"claimName": "bioinfra-workspace"}}]
    assert "workingDir" not in submitted["spec"]["templates"][1]["container"]
    assert "first said it" in (out / "logs" / "first.log").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["phase"] == "Succeeded" and manifest["workflow"] == f"bioinfra/{run_id}"
    assert manifest["parameters"] == {"message": HOSTILE}


def test_a_workflow_a_cluster_run_cannot_follow_is_refused_before_anything(cli, tmp_path: Path) -> None:
    """A followed cluster run reads its entrypoint DAG's tasks (core.cluster_run.dag_tasks): a steps
    entrypoint is refused before the cluster is contacted (the kubeconfig does not even exist)."""
    config = write(tmp_path, "bioinfra.yaml", "name: lab\ntarget: onprem\nonprem: {kubeconfig: /nonexistent}\n")
    proc = cli("--config", str(config), "run", str(write(tmp_path, "steps.yaml", STEPS)), "-o", str(tmp_path / "out"))
    assert proc.returncode == int(ExitCode.UNSUPPORTED), proc.stderr
    assert "its entrypoint 'greet' is not a DAG template" in proc.stderr and "--detach" in proc.stderr
    nothing_made(tmp_path, tmp_path / "out")


# -- names: the Workflow's, kept exactly ----------------------------------------------------------


def test_parameter_names_are_mapped_exactly_and_the_run_is_named_after_the_workflow(tmp_path: Path) -> None:
    from bioinfra.engine import workflow_file

    long_name = "A" * 60
    text = HELLO.replace("      - name: message\n        value: hello world\n",
                         "".join(f"      - name: {n}\n        value: v\n" for n in ("a-b", "a_b", "A-B", long_name)))
    text = text.replace("generateName: hello-world-", "name: 9-lives.of.a.cat").replace("parameters.message", "name")
    wf = workflow_file.load(write(tmp_path, "names.yaml", text))
    assert wf.spec.name == "wf-9-lives-of-a-cat"
    assert list(wf.by_parameter) == ["a-b", "a_b", "A-B", long_name]
    assert len(set(wf.by_parameter.values())) == 4
    values = workflow_file.given(wf, ["a_b=under", "A-B=caps=and=equals", f"{long_name}="])
    assert {n: values[k] for n, k in wf.by_parameter.items()} == {
        "a-b": None, "a_b": "under", "A-B": "caps=and=equals", long_name: ""}
    assert workflow_file.pipeline_name("hello-world-") == "hello-world"
    assert workflow_file.pipeline_name("x" * 80 + "-") == "x" * 42
