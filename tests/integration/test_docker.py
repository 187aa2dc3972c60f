"""The tool images and the docker runtime, with the real Docker daemon.

The base image is `bioinfra-base:bookworm`, made by scripts/docker-up.sh with debootstrap and
`docker import` (no Docker Hub here); builds use host networking so apt reaches Debian's mirror.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bioinfra.errors import ExitCode
from tests.conftest import cli_env, free_port, require_docker, require_native_tools

pytestmark = [pytest.mark.integration, pytest.mark.docker]
BASE = "bioinfra-base:bookworm"
CELLPROFILER_TESTS = ("test_cellprofiler_image_runs_headless", "test_cellprofiler_screen_runs_in_the_image")


def _selected(request, test: str) -> bool:
    """Whether this module's `test` is part of the session (not deselected by -k, -m, ...)."""
    return any(getattr(item, "module", None) is request.module and item.originalname == test
               for item in request.session.items)


@pytest.fixture(scope="module", autouse=True)
def cellprofiler_build(request, tmp_path_factory, matplotlib_cache):
    """`bioinfra images build cellprofiler`, started before anything else in this module and left to
    run beside the other builds and tests: it is the longest build (apt, then pip downloads and
    layer copies) and mostly waits on the network and the disk, so it overlaps well. Its own
    workspace, so its build record cannot race with the one `built` writes.
    The cellprofiler tests wait for it (`_cellprofiler_image`); nothing else uses it."""
    if not any(_selected(request, test) for test in CELLPROFILER_TESTS):
        yield None
        return
    import os

    require_docker()
    root = tmp_path_factory.mktemp("cellprofiler")
    env = cli_env(root / "cache", matplotlib_cache)
    args = [sys.executable, "-m", "bioinfra", "images", "build", "cellprofiler", "--base-image", BASE, "-q"]
    # pip inside the build must trust the same CA as this machine (a TLS-intercepting proxy here).
    ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE")
    if ca:
        args += ["--extra-ca", ca]
    # Output to files, not pipes: nobody reads them until the test, and a full pipe would stall the build.
    with (root / "build.out").open("w") as out, (root / "build.err").open("w") as err:
        proc = subprocess.Popen(args, cwd=root, env=env, stdout=out, stderr=err, text=True)
    try:
        yield proc, root, env
    finally:
        if proc.poll() is None:  # the test did not wait for it (deselected after all, or interrupted)
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def built(tmp_path_factory, matplotlib_cache):
    require_docker()
    root = tmp_path_factory.mktemp("images")
    env = cli_env(root / "cache", matplotlib_cache)
    proc = subprocess.run(
        [sys.executable, "-m", "bioinfra", "images", "build", "fastqc", "bwa-mem2", "--base-image", BASE,
         "--aligner", "bwa", "--quiet"],
        cwd=root, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr
    refs = {line.split("\t")[0]: line.split("\t")[1] for line in proc.stdout.splitlines()}
    ids = {line.split("\t")[0]: line.split("\t")[2] for line in proc.stdout.splitlines()}
    assert set(refs) == {"fastqc", "bwa-mem2"}
    return root, env, refs, ids


def inspect(ref: str) -> dict:
    return json.loads(subprocess.run(["docker", "image", "inspect", ref], check=True, capture_output=True, text=True).stdout)[0]


def test_images_pass_their_smoke_tests_as_non_root(built):
    _, _, refs, _ = built
    for name, ref in refs.items():
        config = inspect(ref)["Config"]
        assert config["User"] not in ("", "0", "root", "0:0"), f"{name} runs as root"
        labels = config["Labels"]
        assert labels["org.opencontainers.image.source"] and labels["io.bioinfra.tool-version"], name
        proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "1000:1000", ref, "bioinfra-smoke-test"],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{name} smoke test:\n{proc.stdout}\n{proc.stderr}"
    assert inspect(refs["bwa-mem2"])["Config"]["Labels"]["io.bioinfra.aligner"] == "bwa"
    assert ":bwa-0.7.17-" in refs["bwa-mem2"]


def test_rebuild_with_no_change_is_a_noop(built):
    root, env, refs, ids = built
    proc = subprocess.run(
        [sys.executable, "-m", "bioinfra", "images", "build", "fastqc", "bwa-mem2", "--base-image", BASE, "--aligner", "bwa", "-q"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("unchanged") == 2
    again = {line.split("\t")[0]: line.split("\t")[2] for line in proc.stdout.splitlines()}
    assert again == ids


def test_bwa_mem2_release_unreachable_fails_with_a_clear_message(built):
    root, env, _, _ = built
    proc = subprocess.run(
        [sys.executable, "-m", "bioinfra", "images", "build", "bwa-mem2", "--base-image", BASE, "-q"],
        cwd=root, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode != 0
    assert "bwa-mem2" in proc.stderr and "--aligner bwa" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_docker_runtime_gives_the_same_flagstat_as_native(built):
    require_native_tools()
    root, env, refs, _ = built
    outs = {}
    for runtime in ("docker", "native"):
        out = root / f"out-{runtime}"
        proc = subprocess.run([sys.executable, "-m", "bioinfra", "run", "fastqc-to-bwa", "--runtime", runtime, "--output", str(out)],
                              cwd=root, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
        assert f"runtime {runtime} (as asked)" in proc.stderr
        outs[runtime] = out
    manifest = json.loads((outs["docker"] / "manifest.json").read_text())
    assert manifest["runtime"] == "docker" and manifest["images"] == refs
    workflow = (outs["docker"] / "workflow.yaml").read_text()
    assert refs["fastqc"] in workflow and refs["bwa-mem2"] in workflow
    assert (outs["docker"] / "stats/lambda.flagstat.txt").read_text() == (outs["native"] / "stats/lambda.flagstat.txt").read_text()


def test_variant_calling_runs_in_the_images(built):
    """#17: bcftools is in the aligner image; the calls made in the containers find the 12 planted
    SNPs with no false positive, as the native run does (tests/integration/test_variant_calling.py)."""
    root, env, refs, _ = built
    out = root / "out-variants"
    proc = subprocess.run([sys.executable, "-m", "bioinfra", "run", "variant-calling", "--runtime", "docker",
                           "--output", str(out)], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    truth = json.loads((out / "variants" / "truth.json").read_text())
    assert (truth["tp"], truth["fp"], truth["fn"], truth["truth"]) == (12, 0, 0, 12)
    assert "recall 1.0 (12/12), precision 1.0 (12/12)" in proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runtime"] == "docker" and manifest["images"] == refs
    assert manifest["tool_versions"]["call"].startswith("bcftools 1.")


def test_auto_picks_docker_when_images_are_built(built):
    root, env, _, _ = built
    proc = subprocess.run([sys.executable, "-m", "bioinfra", "run", "fastqc-to-bwa", "--dry-run"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "runtime\tdocker (auto: a Docker daemon answers and the images are built)" in proc.stdout


def test_docker_runtime_without_images_says_how_to_build_them(cli, tmp_path):
    require_docker()
    proc = cli("run", "fastqc-to-bwa", "--runtime", "docker")
    assert proc.returncode == ExitCode.TOOL_MISSING and "bioinfra images build" in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def registry(tmp_path):
    """Debian's docker-registry (distribution 2.8) on a loopback port, no auth: a real registry."""
    import shutil
    import time
    import urllib.request

    if shutil.which("docker-registry") is None:
        if __import__("os").environ.get("CI") == "true":
            pytest.fail("CI must install docker-registry (scripts/docker-up.sh)")
        pytest.skip("docker-registry is not installed")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_push_to_a_registry_and_pull_back_by_digest(built, registry, tmp_path):
    root, env, _, _ = built
    config = tmp_path / "bioinfra.yaml"
    # Its own workspace, so these records do not replace the module's built images.
    config.write_text(f"registry: {{url: {registry}/bioinfra}}\nlocal: {{workspace: {tmp_path / 'ws'}}}\n")
    env = {**env, "BIOINFRA_CONFIG": str(config)}
    build = subprocess.run([sys.executable, "-m", "bioinfra", "images", "build", "bwa-mem2", "--aligner", "bwa",
                            "--base-image", BASE, "-q"], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr
    ref = build.stdout.split("\t")[1]
    assert ref.startswith(f"{registry}/bioinfra/bwa-mem2:bwa-0.7.17-")
    push = subprocess.run([sys.executable, "-m", "bioinfra", "images", "push", "bwa-mem2"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert push.returncode == 0, push.stderr
    name, pinned = push.stdout.strip().split("\t")
    assert name == "bwa-mem2" and pinned.startswith(f"{registry}/bioinfra/bwa-mem2@sha256:")
    subprocess.run(["docker", "image", "rm", pinned, ref], capture_output=True)  # drop the local copy, then pull it back
    pull = subprocess.run(["docker", "pull", pinned], capture_output=True, text=True, timeout=600)
    assert pull.returncode == 0, pull.stderr
    assert pinned in inspect(pinned)["RepoDigests"]
    # A Workflow rendered for this registry names the pushed image by digest.
    render = subprocess.run([sys.executable, "-m", "bioinfra", "render", "fastqc-to-bwa"],
                            cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert render.returncode == 0, render.stderr
    assert pinned in images_named(render.stdout)


def images_named(workflow_text: str) -> set[str]:
    """Every image a Workflow's templates run (the YAML is dumped by the engine: read, not grepped)."""
    import yaml

    doc = yaml.safe_load(workflow_text)
    return {(t.get("script") or t.get("container") or {}).get("image") for t in doc["spec"]["templates"]} - {None}


def _cellprofiler_image(cellprofiler_build) -> str:
    """Waits for the build `cellprofiler_build` started with the module; its image reference."""
    build, root, _ = cellprofiler_build
    try:
        build.wait(timeout=1800)
    except subprocess.TimeoutExpired:
        build.kill()
        build.wait()
        pytest.fail("`bioinfra images build cellprofiler` took more than 30 minutes")
    assert build.returncode == 0, (root / "build.err").read_text()
    return (root / "build.out").read_text().split("\t")[1]


def test_cellprofiler_image_runs_headless(cellprofiler_build):
    """`cellprofiler -c -r` on 2 PNGs with 3 and 4 planted nuclei: the smoke test checks 7 rows.
    The image is built by `cellprofiler_build`, which started it with the module."""
    ref = _cellprofiler_image(cellprofiler_build)
    assert inspect(ref)["Config"]["User"] not in ("", "0", "root", "0:0")
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "1000:1000", ref, "bioinfra-smoke-test"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "MyExpt_Nuclei.csv: 7 data rows" in proc.stdout


def test_cellprofiler_screen_runs_in_the_image(cellprofiler_build):
    """`run cellprofiler --runtime docker`: every step of the screen (plan, illum, 4 batches, gather) in
    the image, no network; the counts are the planted ones, exactly as natively (test_screening_run)."""
    from tests.integration.test_screening_run import COUNT_TOLERANCE, rows, truth

    ref = _cellprofiler_image(cellprofiler_build)
    _, root, env = cellprofiler_build
    out = root / "screen"
    proc = subprocess.run([sys.executable, "-m", "bioinfra", "run", "cellprofiler", "--runtime", "docker",
                           "--output", str(out)], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "runtime docker (as asked)" in proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runtime"] == "docker" and manifest["images"] == {"cellprofiler": ref}
    assert manifest["status"] == "succeeded"
    assert ref in images_named((out / "workflow.yaml").read_text())
    image_rows, nuclei_rows = rows(out / "results" / "Image.csv"), rows(out / "results" / "Nuclei.csv")
    per_image: dict[int, int] = {}
    for r in nuclei_rows:
        per_image[int(r["ImageNumber"])] = per_image.get(int(r["ImageNumber"]), 0) + 1
    counted = {r["FileName_DNA"]: per_image.get(int(r["ImageNumber"]), 0) for r in image_rows}
    planted = truth()
    assert set(counted) == set(planted)
    assert all(abs(counted[n] - planted[n]) <= COUNT_TOLERANCE for n in planted), (counted, planted)
    gather = json.loads((out / "results" / "gather.json").read_text())
    assert gather["complete"] is True and gather["batches_complete"] == 4
    assert (out / "results" / "Nuclei.parquet").stat().st_size > 0  # pyarrow in the image


def test_sigterm_stops_the_step_containers(built, tmp_path):
    import signal
    import time

    root, env, _, _ = built
    out = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "bioinfra", "run", "fastqc-to-bwa", "--runtime", "docker", "--output", str(out), "-q"],
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = out / "logs" / "fastqc-r1.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "=== cwd" in log.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before FastQC started"
        time.sleep(0.05)
    time.sleep(1.0)  # the container is running FastQC
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    left = subprocess.run(["docker", "ps", "-a", "-q", "--filter", f"label=io.bioinfra.output={out}"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert left == [], "containers outlived the run"
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
