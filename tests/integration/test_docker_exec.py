"""The docker runtime's long-lived containers (#19.4), with the real Docker daemon.

A run keeps its containers and runs each step with `docker exec`; these tests check that each step
keeps the isolation one container per step gave it: no network, the caller's uid:gid, its own CPU
and memory limits, only the run's mounts, values only as environment variables, a deadline that
stops the step's processes inside the container, and no container left behind (success, failure,
interrupted run, bioinfra killed). The image is the local base image (scripts/docker-up.sh), which
has sh and coreutils; no tool image is needed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from bioinfra.executor.runtime import DockerRuntime, StepCommand
from tests.conftest import require_docker

pytestmark = [pytest.mark.integration, pytest.mark.docker]
BASE = "bioinfra-base:bookworm"
MiB = 2**20


@pytest.fixture
def client():
    require_docker()
    from bioinfra.adaptors.docker import client as docker_client

    return docker_client()


def containers_of(run_id: str) -> list[str]:
    return subprocess.run(["docker", "ps", "-a", "-q", "--filter", f"label=io.bioinfra.run={run_id}"],
                          capture_output=True, text=True, check=True).stdout.split()


def wait_for(condition, seconds: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def runtime(client, tmp_path, request):
    ws = tmp_path / "ws"
    ws.mkdir()
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "r1.fastq").write_text("@r\nA\n+\nI\n")
    run_id = f"t-{request.node.name[:40]}-{os.getpid()}"
    rt = DockerRuntime(client, workspace_mounts={str(ws): "/workspace"}, host_paths=[(str(inputs), False)],
                       labels={"io.bioinfra.run": run_id, "io.bioinfra.output": str(tmp_path)}, grace_seconds=2.0)
    rt.ws, rt.inputs, rt.run_id = ws, inputs, run_id
    yield rt
    rt.close()
    subprocess.run(["docker", "rm", "-f", *containers_of(run_id)], capture_output=True) if containers_of(run_id) else None


def step(task: str, script: str, *, env: dict[str, str] | None = None, cpus: float = 0.5,
         memory: int | None = 256 * MiB) -> StepCommand:
    return StepCommand(task=task, argv=["sh", "-c", script], env=env or {}, cwd=Path("/"), cpus=cpus,
                       image=BASE, container_cwd="/workspace", memory_bytes=memory)


def run_step(rt: DockerRuntime, command: StepCommand, tmp_path: Path) -> tuple[int, str]:
    log = tmp_path / f"{command.task}.log"
    with open(log, "ab") as fh:
        code = rt.run(command, fh)
    return code, log.read_text()


def test_steps_reuse_one_container_with_no_network(runtime, tmp_path):
    code, out = run_step(runtime, step("a", "cat /proc/net/dev; hostname"), tmp_path)
    assert code == 0, out
    interfaces = {line.split(":")[0].strip() for line in out.splitlines() if ":" in line}
    assert interfaces == {"lo"}, out  # --network none: loopback only
    code, again = run_step(runtime, step("b", "hostname"), tmp_path)
    assert code == 0 and again.strip() == out.splitlines()[-1], "the second step did not reuse the container"
    (cid,) = containers_of(runtime.run_id)
    host = runtime._client.api.inspect_container(cid)["HostConfig"]
    assert host["NetworkMode"] == "none"


def test_steps_run_as_the_callers_uid_and_gid(client, tmp_path, monkeypatch):
    # As root here, the caller's uid would be the image's default (0): a uid no image has shows that
    # both the container and each exec get the caller's, not the image's.
    monkeypatch.setattr(os, "getuid", lambda: 4321)
    monkeypatch.setattr(os, "getgid", lambda: 4322)
    run_id = f"t-uid-{os.getpid()}"
    rt = DockerRuntime(client, workspace_mounts={str(tmp_path): "/workspace"}, host_paths=[],
                       labels={"io.bioinfra.run": run_id})
    try:
        code, out = run_step(rt, step("uid", "id -u; id -g"), tmp_path)
        assert code == 0, out
        assert out.split()[:2] == ["4321", "4322"], out
        (cid,) = containers_of(run_id)
        assert client.api.inspect_container(cid)["Config"]["User"] == "4321:4322"
    finally:
        rt.close()


def test_a_step_over_its_memory_limit_is_killed_and_limits_are_the_steps_own(runtime, tmp_path):
    """One container serves these steps one after the other; each runs under its own limits (the
    container's cgroup is set to them before it starts), read from inside the container."""
    hog = "head -c 268435456 /dev/zero | tail -n 1 >/dev/null"  # `tail -n 1` keeps a line without newline whole
    limits = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null " \
             "|| cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max"  # cgroup v1, else v2
    code, out = run_step(runtime, step("hog", f"{limits}; {hog}", memory=32 * MiB), tmp_path)
    assert code == 128 + signal.SIGKILL, out  # the OOM killer's SIGKILL, as `docker run` reported it before
    assert out.split()[:2] == [str(32 * MiB), "50000"], out
    code, out = run_step(runtime, step("fits", f"{limits}; {hog}", memory=512 * MiB, cpus=2), tmp_path)
    assert code == 0, out
    assert out.split()[:2] == [str(512 * MiB), "200000"], out
    code, out = run_step(runtime, step("hog-again", f"{limits}; {hog}", memory=32 * MiB), tmp_path)
    assert code == 128 + signal.SIGKILL and out.split()[:2] == [str(32 * MiB), "50000"], out
    (cid,) = containers_of(runtime.run_id)  # all three in one container, each with its own limits
    host = runtime._client.api.inspect_container(cid)["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["CpuQuota"]) == (32 * MiB, 64 * MiB, 50000)


def test_a_prewarmed_container_serves_the_first_step_with_its_limits(client, tmp_path):
    run_id = f"t-warm-{os.getpid()}"
    rt = DockerRuntime(client, workspace_mounts={str(tmp_path): "/workspace"}, host_paths=[],
                       labels={"io.bioinfra.run": run_id}, prewarm=(BASE,))
    try:
        # At once, while the container is still being made: the step waits for it, makes no second one.
        code, out = run_step(rt, step("first", "hostname", memory=128 * MiB), tmp_path)
        (warm,) = containers_of(run_id)
        assert code == 0 and warm.startswith(out.strip())
        assert client.api.inspect_container(warm)["HostConfig"]["Memory"] == 128 * MiB
    finally:
        rt.close()
    assert containers_of(run_id) == []


def test_concurrent_steps_get_a_container_each(runtime, tmp_path):
    """Limits are per container: two steps at once must not share one (nor its memory limit)."""
    rendezvous = "touch /workspace/{me}; for i in $(seq 300); do [ -e /workspace/{other} ] && break; sleep 0.1; done; hostname"
    results: dict[str, tuple[int, str]] = {}
    threads = [threading.Thread(target=lambda m=m, o=o: results.__setitem__(m, run_step(
        runtime, step(m, rendezvous.format(me=m, other=o)), tmp_path))) for m, o in (("x", "y"), ("y", "x"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results["x"][0] == 0 and results["y"][0] == 0, results
    assert results["x"][1].split()[-1] != results["y"][1].split()[-1]


def test_values_reach_a_step_only_as_its_environment(runtime, tmp_path):
    value = "$(touch /workspace/pwned); `id` 'q\" ; rm -rf /"
    code, out = run_step(runtime, step("env", 'printf "%s" "$V"', env={"V": value}), tmp_path)
    assert code == 0 and out == value
    assert not (runtime.ws / "pwned").exists()
    code, out = run_step(runtime, step("next", 'printf "%s" "${V-unset}"'), tmp_path)
    assert code == 0 and out == "unset", "a step saw another step's environment"


def test_mounts_are_the_runs_and_inputs_are_read_only(runtime, tmp_path):
    inputs = runtime.inputs
    code, out = run_step(runtime, step("m", f"cat {inputs}/r1.fastq >/dev/null && echo ok > /workspace/w "
                                            f"&& ! touch {inputs}/x 2>/dev/null && echo ro"), tmp_path)
    assert code == 0 and out.split() == ["ro"], out
    assert (runtime.ws / "w").read_text() == "ok\n" and not (inputs / "x").exists()


def test_exit_code_and_output_of_each_step(runtime, tmp_path):
    code, out = run_step(runtime, step("fail", "echo to-out; echo to-err >&2; exit 7"), tmp_path)
    assert code == 7 and set(out.split()) == {"to-out", "to-err"}
    code, out = run_step(runtime, step("ok", "echo fine"), tmp_path)
    assert code == 0 and out == "fine\n"


def test_a_deadline_stops_the_steps_processes_inside_the_container(runtime, tmp_path):
    """`docker exec` does not stop the exec'd process when the client lets go: terminate_step must
    reach it in the container: SIGTERM first (the step traps it), then the container goes."""
    script = "trap 'echo term > /workspace/termed; exit 143' TERM; echo started > /workspace/started; " \
             "while :; do sleep 0.1; done"
    command = step("slow", script)
    result: list[tuple[int, str]] = []
    t = threading.Thread(target=lambda: result.append(run_step(runtime, command, tmp_path)))
    t.start()
    wait_for(lambda: (runtime.ws / "started").exists(), what="the step to start")
    (cid,) = containers_of(runtime.run_id)
    runtime.terminate_step(command)
    t.join(timeout=60)
    assert not t.is_alive() and result[0][0] != 0
    assert (runtime.ws / "termed").read_text() == "term\n"
    wait_for(lambda: not containers_of(runtime.run_id), 30, "the stopped step's container to go")
    # the next step gets a fresh container, not the one its predecessor was stopped in
    code, out = run_step(runtime, step("after", "hostname"), tmp_path)
    assert code == 0 and not cid.startswith(out.strip())


def test_a_step_that_leaves_a_process_behind_does_not_hand_it_to_the_next(runtime, tmp_path):
    code, first = run_step(runtime, step("bg", "sleep 300 >/dev/null 2>&1 & hostname"), tmp_path)
    assert code == 0
    code, second = run_step(runtime, step("next", "hostname"), tmp_path)
    assert code == 0 and second != first, "the next step ran beside the first one's background process"
    assert len(containers_of(runtime.run_id)) == 1  # the first container (and its sleep) is gone


def test_terminate_all_and_close_leave_no_container(runtime, tmp_path):
    command = step("long", "echo started > /workspace/started; sleep 300")
    result: list[tuple[int, str]] = []
    t = threading.Thread(target=lambda: result.append(run_step(runtime, command, tmp_path)))
    t.start()
    run_step(runtime, step("idle", "true", memory=64 * MiB), tmp_path)  # an idle container too
    wait_for(lambda: (runtime.ws / "started").exists(), what="the step to start")
    assert len(containers_of(runtime.run_id)) == 2
    runtime.terminate_all()
    t.join(timeout=60)
    assert not t.is_alive() and result[0][0] != 0
    assert containers_of(runtime.run_id) == []
    assert runtime.run(step("late", "true"), open(os.devnull, "wb")) == -signal.SIGTERM


def test_the_executor_closes_the_runtime_after_success_and_failure(client, tmp_path):
    """LocalExecutor.run calls the runtime's close() however the run ends (before #19.4 nothing
    ended the containers a runtime keeps for the run)."""
    from bioinfra.executor.runner import LocalExecutor
    from bioinfra.executor.workflow import parse_workflow

    def doc(source: str) -> dict:
        template = {"name": "s", "script": {"image": BASE, "command": ["sh"], "workingDir": "/workspace", "source": source,
                                             "resources": {"requests": {"cpu": "0.5", "memory": "64Mi"}},
                                             "volumeMounts": [{"name": "ws", "mountPath": "/workspace"}]}}
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "t-"},
                "spec": {"entrypoint": "main", "volumes": [{"name": "ws", "emptyDir": {}}],
                         "templates": [{"name": "main", "dag": {"tasks": [
                             {"name": "one", "template": "s"}, {"name": "two", "template": "s", "depends": "one"}]}},
                             template]}}

    for outcome, source in (("ok", "echo hi > out.txt"), ("fail", "exit 3")):
        ws = tmp_path / outcome / "ws"
        ws.mkdir(parents=True)
        run_id = f"t-exec-{outcome}-{os.getpid()}"
        # the output folder at its host path, as make_runtime mounts it: the step scripts are in it
        rt = DockerRuntime(client, workspace_mounts={str(ws): "/workspace"}, host_paths=[(str(tmp_path / outcome), True)],
                           labels={"io.bioinfra.run": run_id})
        result = LocalExecutor(parse_workflow(doc(source)), volume_roots={"ws": ws}, state_dir=tmp_path / outcome / "state",
                               log_dir=tmp_path / outcome / "logs", runtime=rt, max_cpus=2).run()
        assert result.phase == ("Succeeded" if outcome == "ok" else "Failed")
        assert containers_of(run_id) == [], f"containers outlived the {outcome} run"


def test_containers_end_when_bioinfra_is_killed(client, tmp_path):
    """SIGKILL leaves no finally: the container's `cat` loses its stdin and the container removes itself."""
    run_id = f"t-kill9-{os.getpid()}"
    ws = tmp_path / "ws"
    ws.mkdir()
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from bioinfra.adaptors.docker import client
        from bioinfra.executor.runtime import DockerRuntime, StepCommand
        rt = DockerRuntime(client(), workspace_mounts={{{str(ws)!r}: "/workspace"}}, host_paths=[],
                           labels={{"io.bioinfra.run": {run_id!r}}})
        rt.run(StepCommand(task="s", argv=["sh", "-c", "echo started > /workspace/started; sleep 300"], env={{}},
                           cwd=Path("/"), cpus=0.5, image={BASE!r}, container_cwd="/workspace"), sys.stdout.buffer)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2],
                            stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: (ws / "started").exists() or proc.poll() is not None, what="the step to start")
        assert proc.poll() is None
        assert len(containers_of(run_id)) == 1
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: not containers_of(run_id), 60, "the container to end after bioinfra's SIGKILL")
