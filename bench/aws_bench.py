#!/usr/bin/env python3
"""The AWS section of `make bench`: plan/up/destroy against moto_server (EMULATED AWS).

- `bioinfra plan aws` wall time against `terraform plan` run directly in the same rendered stack
  folders (already initialised, same state), after `up`, so both compare 0-change plans. The ratio
  is bioinfra's overhead: Python start-up, the credentials check, rendering, `terraform init` and
  `terraform output` per stack (upstream outputs become variables), the -json stream.
- `bioinfra up aws --yes` and `bioinfra destroy aws --yes` wall times for the full stack.

Run alone: `python bench/aws_bench.py` rewrites only the "## AWS" section of bench/results.md.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MIRROR = Path("/opt/tf-plugins")
STACKS = ("network", "cluster", "storage")


def _start_moto(work: Path) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "moto_server"
    log = open(work / "moto.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("moto_server did not start")


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 2):  # terraform plan -detailed-exitcode may say 2
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall


def aws_section(repeats: int = 3) -> list[str]:
    if shutil.which("terraform") is None or not MIRROR.is_dir():
        return ["", "## AWS (moto)", "", "Skipped: terraform or the provider mirror /opt/tf-plugins is absent."]
    work = Path(tempfile.mkdtemp(prefix="bioinfra-aws-bench-"))
    moto, url = _start_moto(work)
    try:
        rc = work / "terraform.rc"
        rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n')
        (work / "plugins").mkdir()
        env = {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "TF_PLUGIN_CACHE_DIR": str(work / "plugins"),
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_EC2_METADATA_DISABLED": "true", "BIOINFRA_AWS_ENDPOINT_URL": url, "HOME": str(work)}
        (work / "bioinfra.yaml").write_text(
            "name: bench\ntarget: aws\nregion: eu-west-2\n"
            "node_pools:\n  gpu:\n    machine_type: g5.xlarge\n    max: 2\n    gpu: {count: 1}\n")
        bio = [sys.executable, "-m", "bioinfra"]
        up = _timed([*bio, "up", "aws", "--yes"], env, work)
        plans_bio, plans_tf = [], []
        tf_env = {**env, "TF_IN_AUTOMATION": "1"}
        for _ in range(repeats):
            plans_bio.append(_timed([*bio, "plan", "aws"], env, work))
            plans_tf.append(sum(
                _timed(["terraform", "plan", "-input=false", "-detailed-exitcode", "-no-color"], tf_env,
                       work / ".bioinfra" / "bench" / "aws" / stack) for stack in STACKS))
        destroy = _timed([*bio, "destroy", "aws", "--yes"], env, work)
        count = sum(1 for _ in (work / ".bioinfra" / "bench" / "aws").glob("*/logs/*-apply.log"))
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)
    b, t = statistics.median(plans_bio), statistics.median(plans_tf)
    return [
        "",
        "## AWS (moto)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by bench/aws_bench.py against moto_server "
        "(EMULATED AWS) with Terraform and hashicorp/aws 5.100.0 from the local mirror; 3 stacks (network, cluster "
        f"with 3 node groups, storage), {count} apply logs kept.",
        "",
        "| | bioinfra | terraform directly | ratio |",
        "|---|---:|---:|---:|",
        f"| plan, 0 changes, median of {repeats} (s) | {b:.1f} | {t:.1f} | {b / t:.2f} |",
        f"| up, from nothing (s) | {up:.1f} | | |",
        f"| destroy, incl. the sweep (s) | {destroy:.1f} | | |",
        "",
        "`terraform directly` = `terraform plan` in each rendered stack folder, already initialised. bioinfra adds "
        "per stack `terraform init` and `terraform output` of the upstream stacks (their outputs become variables), "
        "plus Python start-up and the credentials check (STS).",
    ]


def replace_section(text: str, section: list[str], title: str = "## AWS (moto)") -> str:
    """results.md with the section under `title` replaced (or inserted before the raw repetitions)."""
    block = "\n".join(section) + "\n"
    marker = f"\n{title}\n"
    if marker in text:
        head, _, rest = text.partition(marker)
        ends = [i for i in (rest.find("\n## "), rest.find("\nRaw repetitions")) if i >= 0]
        return head + block + (rest[min(ends):] if ends else "")
    if "\nRaw repetitions" in text:
        head, _, rest = text.partition("\nRaw repetitions")
        return head.rstrip("\n") + "\n" + block + "\nRaw repetitions" + rest
    return text.rstrip("\n") + "\n" + block


def update_results(section: list[str], title: str = "## AWS (moto)") -> int:
    """A part of the bench run alone: replaces only its own section of bench/results.md, prints it."""
    results = HERE / "results.md"
    results.write_text(replace_section(results.read_text() if results.exists() else "# Benchmarks\n", section, title))
    print("\n".join(section))
    return 0


def main() -> int:
    return update_results(aws_section())


if __name__ == "__main__":
    sys.exit(main())
