"""No credential is printed, logged, written to a file or put on a command line (issue #15).

bioinfra is given canary credentials (tests/canaries.py) as a user's environment and a cluster's
Secret carry them; the test then greps every file under the project's .bioinfra/, results/, the
logs and the workspace cache, the command's output, and every process command line sampled while it
ran. The AWS `up`/`destroy` cycle does the same against moto in tests/integration/test_aws_stacks.py.

STAND-INS for the cluster run, as in test_cluster_run.py: kmock is the Kubernetes API server (it
holds the MinIO Secret), moto's S3 is MinIO, the test plays Argo's controller.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import canaries
from tests.conftest import MINIO_CREDS, require_native_tools
from tests.integration.test_cluster_run import play_argo

pytestmark = pytest.mark.integration


def test_a_local_run_leaves_no_credential_anywhere(cli, tmp_path):
    require_native_tools()
    with canaries.command_lines_watched(canaries.ALL) as command_lines:
        proc = cli("run", "fastqc-to-bwa", "--output", str(tmp_path / "results" / "r1"),
                   extra_env=canaries.credential_env())
    assert proc.returncode == 0, proc.stderr
    assert command_lines == []
    assert not [c for c in canaries.ALL if c in proc.stdout + proc.stderr]
    # results (manifest, logs, the rendered Workflow, step scripts) and the workspace cache
    assert canaries.files_with([tmp_path / "results", tmp_path / "cache"], canaries.ALL) == []
    assert (tmp_path / "results" / "r1" / "logs" / "align.log").is_file()  # the logs were there to be read


def test_a_cluster_run_leaves_the_minio_password_only_in_its_secret(onprem, cli, tmp_path):
    argo = play_argo(onprem["api"], onprem["s3"])
    secrets = [*MINIO_CREDS.values(), *canaries.ALL]
    with canaries.command_lines_watched(secrets) as command_lines:
        proc = cli("run", "fastqc-to-bwa", "--target", "onprem", "-o", str(tmp_path / "results" / "r1"),
                   extra_env=canaries.credential_env(), timeout=120)
    argo.join(10)
    assert proc.returncode == 0, proc.stderr
    assert command_lines == []
    assert not [s for s in secrets if s in proc.stdout + proc.stderr]
    # Everything under the project folder: config, .bioinfra/, results/, logs, the workspace cache.
    assert canaries.files_with([tmp_path], secrets) == []
    assert (tmp_path / "results" / "r1" / "manifest.json").is_file()
    # ... and nothing bioinfra sent to the cluster carries them: the Workflow reads the Secret by name.
    workflow = str(argo.result["workflow"])
    assert not [s for s in secrets if s in workflow] and "bioinfra-minio" in workflow


def test_the_watcher_sees_a_canary_on_a_command_line(tmp_path: Path):
    """The command-line watch is a real check: a process that does carry a canary is caught."""
    import subprocess
    import sys

    with canaries.command_lines_watched([canaries.AWS_SECRET_KEY]) as command_lines:
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.5)", canaries.AWS_SECRET_KEY], check=True)
    assert any(canaries.AWS_SECRET_KEY in line for line in command_lines)
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "x.log").write_text(f"token={canaries.GCP_TOKEN}\n")
    assert canaries.files_with([tmp_path], canaries.ALL) == [f"{tmp_path / 'deep' / 'x.log'}: {canaries.GCP_TOKEN}"]
