#!/usr/bin/env python3
"""The docker runtime against native at real size (#19.4), on `make bench-scale`'s data
(bench/work/scale: 2 x 10^6 pairs, a 5 Mb genome): one native warm-up (it indexes the reference in
the shared workspace), then docker, native, native, docker; prints one JSON line per run. Needs the
images built in the workspace of $BIOINFRA_CONFIG (`make images`) and `make bench-scale` run first.
Results were copied into bench/results.md ("Docker runtime vs native") by hand.
"""
import json
import os
import subprocess
import sys
import time

S = os.path.join(os.path.dirname(os.path.abspath(__file__)), "work", "scale")
env = {k: v for k, v in os.environ.items() if not k.startswith("BIOINFRA_")}
env["BIOINFRA_CONFIG"] = os.environ["BIOINFRA_CONFIG"]
def run(rt, tag):
    out = os.path.join(S, f"docker-scale-{tag}")
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "bioinfra", "run", "fastqc-to-bwa", "--r1", f"{S}/sample/scale_R1.fastq.gz",
                        "--r2", f"{S}/sample/scale_R2.fastq.gz", "--reference", f"{S}/genome.fa.gz", "--runtime", rt,
                        "--quiet", "--output", out], env=env, capture_output=True, text=True)
    w = time.perf_counter() - t
    if p.returncode:
        sys.exit(p.stderr[-2000:])
    steps = {k: s["wall_seconds"] for k, s in json.load(open(f"{out}/manifest.json"))["steps"].items()}
    print(json.dumps({"runtime": rt, "tag": tag, "wall": round(w, 1), "load": os.getloadavg()[0], "steps": steps}), flush=True)
if __name__ == "__main__":
    run("native", "warm")
    for i, rt in enumerate(["docker", "native", "native", "docker"]):
        run(rt, f"{rt}-{i}")
