"""End to end on a real cloud account (issue #18): `bioinfra up` → `run fastqc-to-bwa` → `runs logs` →
`destroy`, then the target's own sweep must find nothing.

Nothing here is emulated: it spends money on the account whose credentials are in the environment.
It therefore runs only when asked (`make e2e-aws`, `make e2e-gcp`, or `pytest -m e2e`; the default
run deselects the `e2e` marker, see pyproject.toml), only with the opt-in variable set and
credentials present, and prints what it will cost before anything is made. Without them it skips,
naming exactly what to set. docs/testing.md ("On a real account") says what it costs, how long it
takes and which permissions it needs.

It uses the CLI as a user would: `bioinfra init` writes the config into a folder of its own, every
step is `bioinfra ...` in a subprocess. Interrupting it is safe: each step runs in a process group
of its own, a Ctrl-C (or SIGTERM, SIGHUP) reaches the step as one SIGINT (bioinfra then stops
Terraform cleanly: state saved, lock released), and `destroy` runs afterwards in any case.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e

PIPELINE = "fastqc-to-bwa"
# Each step's limit (seconds). The cloud bill runs from `up` to the end of `destroy`: their sum bounds
# how long the cluster can stand, and so the cost printed before the test starts.
TIMEOUTS = {"images": 1800, "up": 2700, "push": 900, "run": 1800, "logs": 300, "destroy": 2700}
BILLED_STEPS = ("up", "push", "run", "logs", "destroy")
# The price table (bioinfra/data/prices.yaml) has no price for these; they are named beside the cost.
NOT_PRICED = {
    "aws": "NAT gateway (one, plus its data), EFS, the ECR interface endpoints, CloudWatch logs, the KMS key, "
           "S3 and ECR storage, egress",
    "gcp": "Cloud NAT, Artifact Registry and GCS storage, logs, egress (and Filestore, billed per provisioned TiB, "
           "if gcp.filestore is turned on: it is off in `bioinfra init`'s config)",
}


@dataclass(frozen=True)
class Cloud:
    target: str
    opt_in: str  # the variable that says "yes, spend money on this account"
    region_var: str
    default_region: str
    credentials_hint: str  # what to set when no credentials are found
    endpoint_var: str  # an emulator's endpoint: refused here, this test is for the real cloud


CLOUDS = {
    "aws": Cloud("aws", "BIOINFRA_E2E_AWS", "BIOINFRA_E2E_AWS_REGION", "eu-west-2",
                 "AWS credentials: AWS_PROFILE=<a profile in ~/.aws/config>, or AWS_ACCESS_KEY_ID and "
                 "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)",
                 "BIOINFRA_AWS_ENDPOINT_URL"),
    "gcp": Cloud("gcp", "BIOINFRA_E2E_GCP", "BIOINFRA_E2E_GCP_REGION", "europe-west2",
                 "Google Application Default Credentials: `gcloud auth application-default login`, or "
                 "GOOGLE_APPLICATION_CREDENTIALS=<a service account key file>",
                 "BIOINFRA_GCP_ENDPOINT_URL"),
}
GCP_PROJECT_VAR = "BIOINFRA_E2E_GCP_PROJECT"


# -- the steps: `bioinfra ...` in a process group of its own -------------------------------------


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP to this test, handled as Ctrl-C: the step stops cleanly, destroy runs."""


@pytest.fixture
def interrupts_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (a CI job cancelled) and SIGHUP (the terminal closed) raise as Ctrl-C does, so the
    `finally` that destroys runs instead of the process dying with the cluster up."""

    def raise_interrupt(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def say(text: str) -> None:
    """To the terminal at once (`make e2e-*` runs pytest with -s), or into the captured output."""
    print(text, file=sys.stderr, flush=True)


def _tee(pipe, sink: list[str], echo: bool) -> None:
    for line in pipe:
        sink.append(line)
        if echo:
            sys.stderr.write(line)
            sys.stderr.flush()


def stop_cleanly(proc: subprocess.Popen, what: str) -> None:
    """What a terminal's Ctrl-C does, to the step's own process group: one SIGINT; bioinfra stops
    Terraform cleanly (it may take minutes: Terraform finishes the calls in flight and saves state).
    Never SIGKILL while Terraform may be writing state: after 15 min, SIGTERM (bioinfra takes it as an
    interrupt too), and only then, after 5 more, SIGKILL with the way out said."""
    for sig, grace in ((signal.SIGINT, 900), (signal.SIGTERM, 300)):
        if proc.poll() is not None:
            return
        say(f"e2e: stopping `{what}` ({sig.name}); waiting up to {grace // 60} min for it to stop cleanly")
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=grace)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    say(f"e2e: `{what}` had to be killed; a stale state lock it left is cleared by `destroy` (provably its own)")


class Bioinfra:
    """`bioinfra ARGS` in the test's folder, as a user runs it; output shown live and kept."""

    def __init__(self, folder: Path, env: dict[str, str]):
        self.folder, self.env = folder, env

    def __call__(self, *args: str, timeout: int, echo: bool = True) -> subprocess.CompletedProcess:
        what = "bioinfra " + " ".join(args)
        if echo:
            say(f"\ne2e: $ {what}")
        proc = subprocess.Popen([sys.executable, "-m", "bioinfra", *args], cwd=self.folder, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)  # Ctrl-C reaches it only as we forward it
        out: list[str] = []
        err: list[str] = []
        readers = [threading.Thread(target=_tee, args=(pipe, sink, echo), daemon=True)
                   for pipe, sink in ((proc.stdout, out), (proc.stderr, err))]
        for reader in readers:
            reader.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_cleanly(proc, what)
            pytest.fail(f"`{what}` took more than {timeout // 60} min; stopped")
        except BaseException:  # Ctrl-C, SIGTERM, SIGHUP
            stop_cleanly(proc, what)
            raise
        finally:
            for reader in readers:
                reader.join(timeout=30)
        return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(out), "".join(err))


# -- before anything: opt-in, credentials, tools, and what it will cost ---------------------------


def missing(cloud: Cloud) -> list[str]:
    """What must be set for this test to run on `cloud`, each said with how to set it."""
    problems = []
    if os.environ.get(cloud.opt_in) != "1":
        problems.append(f"set {cloud.opt_in}=1 (the opt-in: it makes a real cluster and spends money)")
    if cloud.target == "gcp" and not os.environ.get(GCP_PROJECT_VAR):
        problems.append(f"set {GCP_PROJECT_VAR}=<a project id> (a project with billing, where you may create a "
                        "GKE cluster)")
    if os.environ.get(cloud.endpoint_var):
        problems.append(f"unset {cloud.endpoint_var} (an emulator's endpoint: this test is for the real cloud)")
    if not has_credentials(cloud):
        problems.append(f"set {cloud.credentials_hint}")
    if shutil.which(os.environ.get("BIOINFRA_TERRAFORM", "terraform")) is None:
        problems.append("install Terraform >= 1.5 on the PATH (or set BIOINFRA_TERRAFORM)")
    if not docker_answers():
        problems.append("start Docker (scripts/docker-up.sh): the run's images are built here and pushed to "
                        f"the {cloud.target} registry")
    return problems


def has_credentials(cloud: Cloud) -> bool:
    """The credentials the CLI would find (found only: `up`'s preflight checks they are accepted)."""
    try:
        if cloud.target == "aws":
            import boto3

            return boto3.session.Session().get_credentials() is not None
        import google.auth

        google.auth.default()
        return True
    except Exception:  # no SDK, an unknown profile, no ADC: all mean "not set up"
        return False


def docker_answers() -> bool:
    try:
        from bioinfra.adaptors.docker import daemon_answers

        return daemon_answers()
    except Exception:
        return False


def write_config(bioinfra: Bioinfra, cloud: Cloud, name: str) -> Path:
    """`bioinfra init` as a user starts, then the region (and project) they would edit in."""
    init = bioinfra("init", "--target", cloud.target, "--name", name, timeout=120)
    assert init.returncode == 0, init.stderr
    path = bioinfra.folder / "bioinfra.yaml"
    config = yaml.safe_load(path.read_text())
    config["region"] = os.environ.get(cloud.region_var) or cloud.default_region
    if cloud.target == "gcp" and os.environ.get(GCP_PROJECT_VAR):  # else init's example: priced, never used
        config["project"] = os.environ[GCP_PROJECT_VAR]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def cost_preview(bioinfra: Bioinfra, cloud: Cloud, config_path: Path) -> str:
    """What the test will cost, from bioinfra's own numbers: `bioinfra estimate` for the run, and for
    the cluster standing while the test runs, the same price table (bioinfra/data/prices.yaml: the
    control plane's fee and the pools' standing `min` nodes) times the test's billed time limit.
    bioinfra has no cost report for `up` itself (`up --dry-run` shows Terraform's plan, not prices)."""
    from bioinfra.config import load_config
    from bioinfra.core.estimate import PriceTable

    table = bioinfra("estimate", PIPELINE, "--target", cloud.target, timeout=300)
    assert table.returncode == 0, table.stderr
    as_json = bioinfra("estimate", PIPELINE, "--target", cloud.target, "--json", timeout=300, echo=False)
    assert as_json.returncode == 0, as_json.stderr
    run_usd = json.loads(as_json.stdout)["total_usd"]

    config = load_config(config_path)
    prices = PriceTable.load()
    plane, fee = prices.control_plane(cloud.target)
    pools = [(name, getattr(config.node_pools, name)) for name in ("general", "highcpu", "gpu")]
    standing = [(name, pool.min, prices.node_price(cloud.target, config.region, pool).usd_per_hour)
                for name, pool in pools if pool is not None and pool.min]
    per_hour = fee + sum(count * usd for _, count, usd in standing)
    hours = sum(TIMEOUTS[s] for s in BILLED_STEPS) / 3600
    nodes = ", ".join(f"{count} {name} node(s) at {usd:.3f}" for name, count, usd in standing) or "no standing nodes"
    return (f"e2e {cloud.target} ({config.region}), what it will cost (list prices of {prices.as_of}, USD):\n"
            f"  the run, `bioinfra estimate {PIPELINE} --target {cloud.target}`: {run_usd:.2f}\n"
            f"  the cluster while the test runs: {per_hour:.3f}/h ({plane} control plane {fee:.2f}/h; {nodes}/h);"
            f" at most {hours:.1f} h (the sum of the billed steps' time limits): at most {per_hour * hours:.2f}\n"
            f"  not in the price table, so not counted: {NOT_PRICED[cloud.target]}")


@pytest.fixture(params=sorted(CLOUDS))
def cloud(request) -> Cloud:
    return CLOUDS[request.param]


def test_up_run_logs_destroy_leaves_nothing(cloud, tmp_path, interrupts_as_ctrl_c, capsys):
    """On a real account: up, run fastqc-to-bwa on the bundled sample, its logs, destroy; the sweep finds
    nothing. Torn down in any case (a failed step, Ctrl-C, SIGTERM)."""
    # The user's environment (their credentials), without any BIOINFRA_* of theirs but what says where
    # Terraform is; a private cache so the run stages into a clean workspace.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOINFRA_") or k == "BIOINFRA_TERRAFORM"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    bioinfra = Bioinfra(tmp_path, env)
    name = f"e2e-{secrets.token_hex(3)}"  # its own name: never another cluster's resources
    with capsys.disabled():  # shown even under capture: the cost comes before anything else
        config_path = write_config(bioinfra, cloud, name)
        say(cost_preview(bioinfra, cloud, config_path))
    problems = missing(cloud)
    if problems:
        pytest.skip(f"real {cloud.target} account needed: " + "; ".join(problems))

    say(f"e2e: cluster {name}, folder {tmp_path} (its Terraform state; `bioinfra destroy {cloud.target} --yes "
        "--force-empty-buckets` there finishes a teardown by hand)")
    failed: BaseException | None = None
    try:
        built = bioinfra("images", "build", "fastqc", "bwa-mem2", timeout=TIMEOUTS["images"])
        assert built.returncode == 0, built.stderr[-3000:]
        up = bioinfra("up", cloud.target, "--yes", timeout=TIMEOUTS["up"])
        assert up.returncode == 0, up.stderr[-3000:]
        pushed = bioinfra("images", "push", "fastqc", "bwa-mem2", timeout=TIMEOUTS["push"])
        assert pushed.returncode == 0, pushed.stderr[-3000:]
        run = bioinfra("run", PIPELINE, "--target", cloud.target, timeout=TIMEOUTS["run"])
        assert run.returncode == 0, run.stderr[-3000:]
        found = re.search(r"✓ run (\S+) finished", run.stderr)
        assert found, run.stderr[-3000:]
        logs = bioinfra("runs", "logs", found.group(1), "--step", "align", timeout=TIMEOUTS["logs"])
        assert logs.returncode == 0, logs.stderr[-3000:]
        assert logs.stdout.strip(), f"no log of the align step of {found.group(1)}"
    except BaseException as exc:
        failed = exc
        raise
    finally:
        problems = teardown(bioinfra, cloud, name, config_path)
        if problems and failed is None:
            pytest.fail("\n".join(problems))
        for problem in problems:  # the step's own failure is the one raised; these are said beside it
            say(f"e2e teardown: {problem}")


def teardown(bioinfra: Bioinfra, cloud: Cloud, name: str, config_path: Path) -> list[str]:
    """`destroy` (the run's results are in the bucket: emptied), then the target's sweep, which must find
    nothing; every problem said, none raised (a Ctrl-C during the destroy stops it cleanly and is raised,
    with the command that finishes it)."""
    from bioinfra.config import load_config
    from bioinfra.targets import get_target

    problems = []
    by_hand = f"cd {bioinfra.folder} && bioinfra destroy {cloud.target} --yes --force-empty-buckets"
    try:
        done = bioinfra("destroy", cloud.target, "--yes", "--force-empty-buckets", timeout=TIMEOUTS["destroy"])
        if done.returncode != 0:
            problems.append(f"destroy exited {done.returncode}: {done.stderr[-3000:]}\nretry: {by_hand}")
    except KeyboardInterrupt:
        say(f"e2e: destroy interrupted; the cluster may still cost money: finish it with `{by_hand}`")
        raise
    except BaseException as exc:  # a timeout (pytest.fail): the sweep below still says what is left
        problems.append(f"destroy did not finish ({exc}); retry: {by_hand}")

    config = load_config(config_path)
    target = get_target(cloud.target)
    started = time.monotonic()
    try:
        leftovers = target.find_leftovers(config, target.open_session(config))
    except Exception as exc:
        problems.append(f"the {cloud.target} sweep could not list {name}'s resources: {exc}")
        return problems
    say(f"e2e: sweep of {name} after destroy: {len(leftovers)} left ({time.monotonic() - started:.0f} s)")
    for leftover in leftovers:
        problems.append(f"left after destroy: {leftover.kind} {leftover.id}"
                        + (f" ({leftover.detail})" if leftover.detail else "") + f"; remove it with `{by_hand}`")
    return problems
