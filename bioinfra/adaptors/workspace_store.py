"""The cluster's shared workspace as S3: `rclone serve s3` over the workspace volume (addons stack;
it replaced MinIO, whose plain-file FS mode is gone: bioinfra/targets/addons.py, WORKSPACE_S3_IMAGE).

Object key = workspace-relative path: `inputs/<sha16>/a_R1.fastq.gz` uploaded here is the file
/workspace/inputs/<sha16>/a_R1.fastq.gz in every workflow pod, and `runs/<id>/...` written by the
pods are objects here to download. The server is reached at $BIOINFRA_MINIO_URL when set (an ingress,
a NodePort, or a port-forward you run yourself), else through `kubectl port-forward` to its
ClusterIP Service, started here and stopped on close. Credentials come from the Kubernetes Secret
the addons stack generated; they are never printed or written anywhere.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from bioinfra.errors import ClusterUnreachableError, UnsupportedError

BUCKET = "workspace"  # the steps' /workspace: the directory workspace/ of the claim rclone serves at /export
MINIO_URL_ENV = "BIOINFRA_MINIO_URL"
SHA_METADATA = "sha256"  # x-amz-meta-sha256: an upload is skipped when the object already has it
_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")

Progress = Optional[Callable[[int], None]]


@dataclass
class WorkspaceStore:
    s3: Any
    endpoint: str
    _forward: Optional[subprocess.Popen] = None

    def close(self) -> None:
        if self._forward is not None and self._forward.poll() is None:
            self._forward.terminate()
            try:
                self._forward.wait(5)
            except subprocess.TimeoutExpired:
                self._forward.kill()

    def __enter__(self) -> WorkspaceStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def has(self, key: str, sha256: str) -> bool:
        """The object exists with this content (by the checksum recorded at upload)."""
        try:
            head = self.s3.head_object(Bucket=BUCKET, Key=key)
        except Exception as exc:  # noqa: BLE001 - botocore is imported lazily
            if _status(exc) in (403, 404):
                return False
            raise
        # Metadata names are HTTP header names, case-insensitive (RFC 9110 section 5.1): AWS answers
        # x-amz-meta-sha256, rclone serve s3 (Go's canonical form) X-Amz-Meta-Sha256, which boto3 gives
        # as "Sha256". rclone keeps user metadata in memory only: after a server restart an input is
        # uploaded again (Ref https://rclone.org/commands/rclone_serve_s3/, "Limitations").
        metadata = {name.lower(): value for name, value in head.get("Metadata", {}).items()}
        return metadata.get(SHA_METADATA) == sha256

    def upload(self, path: Path, key: str, sha256: str, progress: Progress = None) -> None:
        self.s3.upload_file(str(path), BUCKET, key, ExtraArgs={"Metadata": {SHA_METADATA: sha256}},
                            Callback=progress)

    def list(self, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every object under prefix."""
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            found += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
        return found

    def download(self, prefix: str, dest: Path, progress: Progress = None, skip: Callable[[str], bool] = lambda _k: False
                 ) -> list[Path]:
        """Copy every object under `prefix` into `dest` (paths below the prefix kept); returns the files."""
        written = []
        for key, _size in self.list(prefix):
            rel = key[len(prefix):].lstrip("/")
            if not rel or skip(rel) or ".." in Path(rel).parts:
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.part")
            self.s3.download_file(BUCKET, key, str(tmp), Callback=progress)
            os.replace(tmp, target)
            written.append(target)
        return written


def open_store(kube: Any, namespace: str, service: str, secret: str, *, user_key: str, password_key: str) -> WorkspaceStore:
    """An S3 client for the cluster's workspace S3 server (rclone serve s3 in Service bioinfra-minio), reached directly or through a port-forward."""
    try:
        import boto3
        from botocore.config import Config as BotoConfig
    except ImportError:  # pragma: no cover - depends on the install
        raise UnsupportedError("talking to the cluster's workspace S3 server needs boto3",
                               hint="pip install 'bioinfra[kube]'") from None
    creds = kube.secret_values(namespace, secret)
    if user_key not in creds or password_key not in creds:
        raise ClusterUnreachableError(f"Secret {namespace}/{secret} lacks '{user_key}'/'{password_key}'",
                                      hint="re-apply the addons stack: `bioinfra up TARGET`")
    forward = None
    endpoint = os.environ.get(MINIO_URL_ENV, "").rstrip("/")
    if not endpoint:
        forward, endpoint = port_forward(kube, namespace, service, 9000)
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=creds[user_key], aws_secret_access_key=creds[password_key],
        # Checksums only where an S3 API requires one: boto3 >= 1.36 otherwise sends a CRC32 with every
        # PutObject ("when_supported": x-amz-checksum-crc32 over http, an aws-chunked trailer over
        # https), and rclone serve s3 answered such PUTs 0.3-6 s late, at times over a minute
        # (measured 2026-12-06: 7 of 12 small uploads over 0.3 s, one test 161 s; with "when_required"
        # 12 of 12 under 0.13 s). Integrity stays checked:
        # each object carries the file's sha256, compared before reuse (`has`).
        # Ref https://docs.aws.amazon.com/sdkref/latest/guide/feature-dataintegrity.html
        config=BotoConfig(s3={"addressing_style": "path"}, signature_version="s3v4",
                          retries={"max_attempts": 5, "mode": "standard"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"),
    )
    return WorkspaceStore(s3, endpoint, forward)


def port_forward(kube: Any, namespace: str, service: str, port: int) -> tuple[subprocess.Popen, str]:
    """`kubectl port-forward svc/<service> :<port>` on 127.0.0.1; returns the process and its URL."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise UnsupportedError(
            "reaching the cluster's workspace S3 server needs kubectl (for a port-forward) or $BIOINFRA_MINIO_URL",
            hint="install kubectl, or expose Service bioinfra/bioinfra-minio and set BIOINFRA_MINIO_URL=http://HOST:PORT",
        )
    proc = subprocess.Popen(
        [kubectl, "--kubeconfig", str(kube.kubeconfig), "--context", kube.context, "-n", namespace,
         "port-forward", "--address", "127.0.0.1", f"svc/{service}", f":{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line.strip())
        match = parse_forwarding(line)
        if match:
            return proc, f"http://127.0.0.1:{match}"
        if len(seen) > 20:
            break
    proc.kill()
    raise ClusterUnreachableError(f"kubectl port-forward to svc/{service} failed: {' / '.join(seen[-3:]) or 'no output'}",
                                  hint="`bioinfra doctor` checks that the workspace S3 server runs; or set BIOINFRA_MINIO_URL")


def parse_forwarding(line: str) -> Optional[int]:
    """The local port in kubectl's "Forwarding from 127.0.0.1:PORT -> 9000" line."""
    match = _FORWARDING.search(line)
    return int(match.group(1)) if match else None


def _status(exc: Any) -> Optional[int]:
    response = getattr(exc, "response", None) or {}
    try:
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
    except (TypeError, ValueError):
        return None
