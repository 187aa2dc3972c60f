#!/usr/bin/env python3
"""The AWS section of `make bench`: plan/up/destroy against moto_server (EMULATED AWS).

- `bioinfra plan aws` wall time against `terraform plan` run directly in the same rendered stack
  folders (already initialised, same state), after `up`, so both compare 0-change plans; interleaved
  (the order rotates each repetition: the machine is shared), medians reported. The ratio is
  bioinfra's overhead: Python start-up, the credentials check (STS), rendering, the -json stream and
  the saved plan; `terraform init` only when the folder is not initialised for its configuration
  and upstream outputs read from the state file (issue #19.3). Where bioinfra's time goes is
  measured too: Python start-up and import (`python -m bioinfra --help`), and the Terraform
  processes it ran (their logs' start stamps and last writes).
- `bioinfra up aws --yes` and `bioinfra destroy aws --yes` wall times for the full stack.

Run alone: `python bench/aws_bench.py` rewrites only the "## AWS" section of bench/results.md;
`--plan-only` skips the destroy and rewrites only the plan lines of that section; `--baseline DIR`
adds an earlier bioinfra source tree (e.g. `git archive <commit>` unpacked) as a third interleaved
command, for a before/after ratio in one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

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
    return _measured(cmd, env, cwd)[0]


def _measured(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process under it: Terraform, the provider)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 2):  # terraform plan -detailed-exitcode may say 2
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _summed(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return sum(w for w, _ in pairs), sum(c for _, c in pairs)


def _terraform_seconds(stack_dirs: list[Path], since: float) -> dict[str, float]:
    """Seconds of the Terraform processes bioinfra ran since `since`, by command: each log's name
    is its start (UTC), its last write its end."""
    spent: dict[str, float] = {}
    for folder in stack_dirs:
        for log in (folder / "logs").glob("*.log"):
            match = re.match(r"(\d{8}T\d{6}\.\d+)Z-(.+)\.log$", log.name)
            if not match:
                continue
            start = dt.datetime.strptime(match[1], "%Y%m%dT%H%M%S.%f").replace(tzinfo=dt.timezone.utc).timestamp()
            if start >= since:
                spent[match[2]] = spent.get(match[2], 0.0) + log.stat().st_mtime - start
    return spent


def aws_section(repeats: int = 3) -> list[str]:
    """The whole "## AWS (moto)" section (bench/run_bench.py's part)."""
    return full_section({**aws_numbers(repeats), "baseline_label": ""})


def aws_numbers(repeats: int = 3, *, plan_only: bool = False, baseline: Path | None = None) -> dict:
    """Runs the bench; returns the numbers (see plan_lines / the section written by main)."""
    if shutil.which("terraform") is None or not MIRROR.is_dir():
        return {"skipped": "terraform or the provider mirror /opt/tf-plugins is absent"}
    work = Path(tempfile.mkdtemp(prefix="bioinfra-aws-bench-"))
    moto, url = _start_moto(work)
    try:
        rc = work / "terraform.rc"
        rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n')
        (work / "plugins").mkdir()
        # CHECKPOINT_DISABLE for both sides: bioinfra sets it itself; a raw `terraform` would otherwise
        # try to call home for a version check (no network here) in every plan.
        env = {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "TF_PLUGIN_CACHE_DIR": str(work / "plugins"),
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "CHECKPOINT_DISABLE": "1",
               "AWS_EC2_METADATA_DISABLED": "true", "BIOINFRA_AWS_ENDPOINT_URL": url, "HOME": str(work)}
        env["PYTHONPATH"] = str(REPO)  # this tree's bioinfra, whatever the venv has installed
        (work / "bioinfra.yaml").write_text(
            "name: bench\ntarget: aws\nregion: eu-west-2\n"
            "node_pools:\n  gpu:\n    machine_type: g5.xlarge\n    max: 2\n    gpu: {count: 1}\n")
        bio = [sys.executable, "-m", "bioinfra"]
        up = _timed([*bio, "up", "aws", "--yes"], env, work)
        stack_dirs = [work / ".bioinfra" / "bench" / "aws" / stack for stack in STACKS]
        tf_env = {**env, "TF_IN_AUTOMATION": "1"}
        raw_plan = ["terraform", "plan", "-input=false", "-detailed-exitcode", "-no-color"]
        runs: dict[str, Any] = {
            "bioinfra": lambda: _measured([*bio, "plan", "aws"], env, work),
            "terraform": lambda: _summed([_measured(raw_plan, tf_env, folder) for folder in stack_dirs]),
        }
        if baseline is not None:
            base_env = {**env, "PYTHONPATH": str(baseline)}
            runs["baseline"] = lambda: _measured([*bio, "plan", "aws"], base_env, work)
        times: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        inside: list[dict[str, float]] = []
        overheads: list[float] = []  # per bioinfra run: its wall time less its Terraform processes'
        for rep in range(repeats):
            names = list(runs)
            for name in names[rep % len(names):] + names[:rep % len(names)]:  # rotate the order
                since = time.time()
                wall, used = runs[name]()
                times[name].append(wall)
                cpu[name].append(used)
                if name == "bioinfra":
                    inside.append(_terraform_seconds(stack_dirs, since))
                    overheads.append(wall - sum(inside[-1].values()))
        startup = statistics.median(_timed([*bio, "--help"], env, work) for _ in range(repeats))
        destroy = None if plan_only else _timed([*bio, "destroy", "aws", "--yes"], env, work)
        count = sum(1 for _ in (work / ".bioinfra" / "bench" / "aws").glob("*/logs/*-apply.log"))
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)
    commands = sorted({c for run in inside for c in run})
    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "repeats": repeats, "times": times,
        "median": {name: statistics.median(t) for name, t in times.items()}, "up": up, "destroy": destroy,
        "cpu": {name: statistics.median(c) for name, c in cpu.items()},
        "overhead": statistics.median(overheads),
        # Each repetition's ratio: its runs are minutes apart at most, so a load that drifts over the
        # run (the machine is shared) cancels in the ratio, not in the medians of the columns.
        "ratios": {name: statistics.median(t[i] / times["terraform"][i] for i in range(repeats))
                   for name, t in times.items() if name != "terraform"},
        "apply_logs": count, "startup": startup,
        "inside": {c: statistics.median(run.get(c, 0.0) for run in inside) for c in commands},
        "baseline": str(baseline) if baseline else None,
    }


PLAN_ROW = "| plan, 0 changes"
TERRAFORM_DIRECTLY = ("`terraform directly` = `terraform plan` in each rendered stack folder, already initialised, on "
                      "the same state and inputs (bioinfra's tfvars and upstream values).")


def plan_lines(r: dict) -> tuple[str, list[str]]:
    """The plan row of the table and the paragraph under it (what the plan costs and where it goes)."""
    m, reps, ratio, cpu = r["median"], r["repeats"], r["ratios"], r["cpu"]
    b, t = m["bioinfra"], m["terraform"]
    row = (f"{PLAN_ROW}, median of {reps} interleaved (s; ratio: median of the repetitions' ratios) "
           f"| {b:.1f} | {t:.1f} | {ratio['bioinfra']:.2f} |")
    each = [x / y for x, y in zip(r["times"]["bioinfra"], r["times"]["terraform"], strict=True)]
    inside = r["inside"]
    tf_total = sum(inside.values())
    parts = ", ".join(f"`terraform {c}` {s:.1f}" for c, s in sorted(inside.items(), key=lambda kv: -kv[1]))
    text = [
        f"Plan measured {r['when']}: bioinfra and `terraform plan` interleaved (the order rotating), {reps} "
        f"repetitions on a shared 2-core machine; wall (s) bioinfra {', '.join(f'{x:.1f}' for x in r['times']['bioinfra'])}, "
        f"terraform {', '.join(f'{x:.1f}' for x in r['times']['terraform'])}. Ratio = median of each repetition's "
        f"bioinfra/terraform: **{ratio['bioinfra']:.2f}** (each: {', '.join(f'{x:.2f}' for x in each)}; target <= 1.10: "
        f"{'MET' if ratio['bioinfra'] <= 1.10 else 'NOT MET'}); CPU seconds (every process under the command, "
        f"less sensitive to the other users' load): bioinfra {cpu['bioinfra']:.1f}, terraform {cpu['terraform']:.1f}, "
        f"ratio {cpu['bioinfra'] / cpu['terraform']:.2f}.",
    ]
    if "baseline" in m:
        text.append(f"Before #19.3, in the same run ({r['baseline_label']}): wall {m['baseline']:.1f} s, ratio "
                    f"**{ratio['baseline']:.2f}**; CPU {cpu['baseline']:.1f} s, ratio {cpu['baseline'] / cpu['terraform']:.2f} "
                    "(`terraform init` of every stack and `terraform output` of each upstream in every plan).")
    rest = (f"bioinfra's own share, per run its wall time less its Terraform processes': {r['overhead']:.1f} s "
            f"(of it Python start-up and import {r['startup']:.1f} s, `python -m bioinfra --help`; then config, "
            "render, the credentials check (STS), reading the states)") if "overhead" in r else (
        f"Python start-up and import {r['startup']:.1f} s (`python -m bioinfra --help`)")
    text.append(
        f"Where bioinfra's time goes (medians): Terraform processes {tf_total:.1f} s ({parts}); {rest}; in CPU, "
        f"bioinfra {cpu['bioinfra'] - cpu['terraform']:+.1f} s against the raw plans. "
        "`terraform init` runs only when a stack folder is not initialised for its configuration "
        "(.bioinfra-init.json); upstream outputs and `state list` are read from the state file in-process "
        "(local backend).")
    return row, text


def plan_section(r: dict, old_section: str) -> str:
    """The "## AWS (moto)" section with only the plan row and the plan paragraph replaced."""
    row, text = plan_lines(r)
    lines = old_section.split("\n")
    lines = [row if line.startswith(PLAN_ROW) else line for line in lines]
    lines = [TERRAFORM_DIRECTLY if line.startswith("`terraform directly` =") else line for line in lines]
    start = next((i for i, line in enumerate(lines) if line.startswith("Plan measured ")), None)
    if start is not None:  # our own paragraph from an earlier run: replaced up to the next blank line
        end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
        lines[start:end] = text
    else:
        lines[-1:-1] = ["", *text] if lines and not lines[-1].strip() else ["", *text, ""]
    return "\n".join(lines)


def full_section(r: dict) -> list[str]:
    if "skipped" in r:
        return ["", "## AWS (moto)", "", f"Skipped: {r['skipped']}."]
    row, text = plan_lines(r)
    destroy = f"{r['destroy']:.1f}" if r["destroy"] is not None else "not measured"
    return [
        "",
        "## AWS (moto)",
        "",
        f"Measured {r['when']} by bench/aws_bench.py against moto_server "
        "(EMULATED AWS) with Terraform and hashicorp/aws 5.100.0 from the local mirror; 3 stacks (network, cluster "
        f"with 3 node groups, storage), {r['apply_logs']} apply logs kept.",
        "",
        "| | bioinfra | terraform directly | ratio |",
        "|---|---:|---:|---:|",
        row,
        f"| up, from nothing (s) | {r['up']:.1f} | | |",
        f"| destroy, incl. the sweep (s) | {destroy} | | |",
        "",
        TERRAFORM_DIRECTLY,
        "",
        *text,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plan-only", action="store_true",
                        help="skip the destroy; rewrite only the plan lines of the AWS section")
    parser.add_argument("--baseline", type=Path, help="an earlier bioinfra source tree, planned interleaved too")
    parser.add_argument("--baseline-label", default="", help="what the baseline is, for results.md (e.g. a commit)")
    args = parser.parse_args(argv)
    r = aws_numbers(args.repeats, plan_only=args.plan_only, baseline=args.baseline)
    r["baseline_label"] = args.baseline_label or str(args.baseline)
    print(json.dumps(r, indent=1, default=str), file=sys.stderr)
    results = HERE / "results.md"
    text = results.read_text() if results.exists() else "# Benchmarks\n"
    marker = "\n## AWS (moto)\n"
    if args.plan_only and "skipped" not in r and marker in text:
        head, _, rest = text.partition(marker)
        ends = [i for i in (rest.find("\n## "), rest.find("\nRaw repetitions")) if i >= 0]
        end = min(ends) if ends else len(rest)
        section = plan_section(r, marker.lstrip("\n") + rest[:end])
        results.write_text(head + "\n" + section + rest[end:])
        print(section)
        return 0
    return update_results(full_section(r))


if __name__ == "__main__":
    sys.exit(main())
