"""Two index builds of one reference at once, on one shared folder, each with the same `$$` (#16).

On a cluster every pod has its own pid namespace, so the step's shell is pid 1 (or 7, ...) in all
of them: a temporary folder named after `$$` is the same folder in parallel pods on the shared
workspace volume (two runs of the same reference starting together, or a retried attempt racing
a slow one). Here each build runs in a pid namespace of its own (`unshare --pid --fork`), so both
see `$$ == 1` as two pods would, and both run the real step script from the rendered Workflow with
the real bwa, released at the same instant. Both must succeed and leave one valid index, the same
bytes a single build makes, and nothing private behind.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bioinfra.config import Config
from tests import render_engine

pytestmark = pytest.mark.integration

REFERENCE = "references/0123456789abcdef/reference.fa"
ROUNDS = 3


def _unshare_pid() -> list[str]:
    prefix = ["unshare", "--pid", "--fork"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    return prefix


def _require_tools() -> None:
    if not shutil.which("bwa") or not shutil.which("unshare"):
        pytest.skip("needs bwa and unshare")
    probe = subprocess.run([*_unshare_pid(), "bash", "-c", 'echo "$$"'], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a pid namespace here: {probe.stderr.strip()}")
    # The premise: in a pid namespace of its own, the step's shell is pid 1, as in every pod.
    assert probe.stdout.strip() == "1"


def index_script(pipeline: str) -> str:
    """The index step's script as the rendered Workflow carries it (its env is REFERENCE only)."""
    if pipeline == "samples":
        workflow = render_engine.workflow("fastqc-to-bwa", Config(), "local", {
            "sheet": "runs/r/sheet.tsv", "reference": REFERENCE, "run-dir": "runs/r"}, mode="samples")
    else:
        workflow = render_engine.workflow("fastqc-to-bwa", Config(), "local", {
            "sample": "s", "r1": "inputs/a/s_R1.fastq.gz", "r2": "inputs/b/s_R2.fastq.gz", "reference": REFERENCE,
            "run-dir": "runs/r"}, values={"qc_gate": False})
    template = next(t for t in workflow["spec"]["templates"] if t["name"] == "index-reference-attempt")
    assert [e["name"] for e in template["script"]["env"]] == ["LC_ALL", "REFERENCE"]
    return template["script"]["source"]


def write_reference(path: Path, bases: int = 3_000_000) -> None:
    """A random genome big enough that `bwa index` takes a few seconds (the builds overlap)."""
    rng = random.Random(16)
    seq = "".join(rng.choice("ACGT") for _ in range(bases))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(">chr1\n" + "\n".join(seq[i:i + 80] for i in range(0, len(seq), 80)) + "\n")


def index_files(workspace: Path) -> dict[str, str]:
    folder = (workspace / REFERENCE).parent
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.name != "reference.fa"}


def build_together(script: str, workspace: Path, n: int = 2) -> list[subprocess.CompletedProcess]:
    """n builds, each in its own pid namespace, released together by a go file."""
    go = workspace / ".go"
    gate = f'while [ ! -e {go} ]; do sleep 0.005; done; exec bash "$0"'
    (workspace / ".step.sh").write_text(script)
    env = {"PATH": os.environ["PATH"], "LC_ALL": "C", "REFERENCE": REFERENCE}
    procs = [subprocess.Popen([*_unshare_pid(), "bash", "-c", gate, str(workspace / ".step.sh")], cwd=workspace,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(n)]
    time.sleep(0.5)  # both namespaces made and waiting
    go.touch()
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, ""))
    go.unlink()
    (workspace / ".step.sh").unlink()
    return results


@pytest.fixture(scope="module")
def clean_index(tmp_path_factory) -> dict[str, str]:
    """What one build alone makes: the bytes every raced build must end with."""
    _require_tools()
    workspace = tmp_path_factory.mktemp("alone")
    write_reference(workspace / REFERENCE)
    proc = subprocess.run(["bash", "-c", index_script("single")], cwd=workspace, capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "LC_ALL": "C", "REFERENCE": REFERENCE})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = index_files(workspace)
    assert {"reference.fa.bwt", "reference.fa.sa", "reference.fa.bioinfra-index"} <= set(files)
    return files


@pytest.mark.parametrize("pipeline", ["single", "samples"])
def test_concurrent_index_builds_with_the_same_pid_do_not_collide(tmp_path, clean_index, pipeline):
    script = index_script(pipeline)
    for round_ in range(ROUNDS):
        workspace = tmp_path / f"round{round_}"
        write_reference(workspace / REFERENCE)
        results = build_together(script, workspace)
        for r in results:
            assert r.returncode == 0, f"round {round_}: a build failed (exit {r.returncode}):\n{r.stdout}"
        assert index_files(workspace) == clean_index, f"round {round_}: the index differs from a single build's"
        left = [p.name for p in (workspace / REFERENCE).parent.iterdir() if p.name.startswith(".")]
        assert not left, f"round {round_}: private build files left behind: {left}"
        # bwa can use what was left: align a read taken from the genome.
        seq = (workspace / REFERENCE).read_text().split("\n", 1)[1].replace("\n", "")[1000:1100]
        (workspace / "read.fq").write_text(f"@r\n{seq}\n+\n{'I' * len(seq)}\n")
        sam = subprocess.run(["bwa", "mem", str(workspace / REFERENCE), str(workspace / "read.fq")],
                             capture_output=True, text=True, check=True).stdout
        hit = next(line for line in sam.splitlines() if not line.startswith("@")).split("\t")
        assert (hit[2], hit[3]) == ("chr1", "1001")
