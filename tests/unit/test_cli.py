"""The command line's contract: help that teaches, usage errors exit 2, named exit codes."""

from __future__ import annotations

import pytest

from bioinfra.errors import ExitCode
from tests.conftest import require_native_tools


def test_help_lists_commands_and_exit_codes(cli):
    proc = cli("--help", check=True)
    for word in ("run", "render", "init", "config", "Exit codes"):
        assert word in proc.stdout


def test_run_help_has_examples(cli):
    proc = cli("run", "--help", check=True)
    assert "--resume" in proc.stdout and "bioinfra run fastqc-to-bwa --r1" in proc.stdout


def test_usage_errors_exit_2(cli):
    proc = cli("run", "fastqc-to-bwa", "--no-such-option")
    assert proc.returncode == ExitCode.USAGE and "No such option" in proc.stderr
    assert cli("run").returncode == ExitCode.USAGE


def test_unknown_pipeline_is_bad_input(cli):
    proc = cli("run", "nope")
    known = proc.stderr.split("known: ", 1)[-1].split("\n", 1)[0].split(", ")
    assert proc.returncode == ExitCode.INPUT_INVALID and "fastqc-to-bwa" in known


def test_cluster_run_checks_the_target_config_and_local_only_flags_first(cli, tmp_path):
    proc = cli("run", "fastqc-to-bwa", "--target", "gcp")
    assert proc.returncode == ExitCode.CONFIG_INVALID and "region: required for target gcp" in proc.stderr
    proc = cli("run", "fastqc-to-bwa", "--target", "onprem", "--resume")
    assert proc.returncode == ExitCode.UNSUPPORTED and "local runs only" in proc.stderr
    proc = cli("run", "fastqc-to-bwa", "--detach")
    assert proc.returncode == ExitCode.UNSUPPORTED and "--detach needs a cluster target" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_version(cli):
    from bioinfra import __version__

    assert cli("--version", check=True).stdout.strip() == f"bioinfra {__version__}"


def test_render_prints_a_workflow(cli):
    import yaml

    proc = cli("render", "fastqc-to-bwa", "--target", "aws", check=True)
    doc = yaml.safe_load(proc.stdout)
    assert doc["kind"] == "Workflow"
    assert doc["spec"]["arguments"]["parameters"][0] == {"name": "sample", "value": "lambda"}


@pytest.mark.parametrize("run_id", ['../../etc', 'x"$(touch CANARY)"', "a b", "-rf", "x\ny", ".hidden", "a" * 101])
def test_render_refuses_a_run_id_that_is_not_a_folder_name(cli, tmp_path, run_id):
    proc = cli("render", "fastqc-to-bwa", "--target", "aws", "--run-id", run_id)
    assert proc.returncode == ExitCode.INPUT_INVALID, proc.stderr
    assert "--run-id" in proc.stderr and "is not a run id" in proc.stderr and proc.stdout == ""
    assert "\n" not in proc.stderr.split("is not a run id")[0].split("--run-id", 1)[1]  # shown escaped, on one line
    assert not (tmp_path / "CANARY").exists()


def test_dry_run_creates_nothing(cli, tmp_path):
    require_native_tools()  # a dry run still checks the tools are there
    proc = cli("run", "fastqc-to-bwa", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "dry run: nothing was created" in proc.stdout and "step\talign" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_missing_tools_are_named_with_the_install_command(cli, tmp_path):
    # PATH=/nonexistent stands in for a machine without the bioinformatics tools.
    proc = cli("run", "fastqc-to-bwa", extra_env={"PATH": "/nonexistent"})
    assert proc.returncode == ExitCode.TOOL_MISSING, proc.stderr
    assert "apt-get install -y --no-install-recommends bash fastqc samtools multiqc bwa" in proc.stderr
    assert list(tmp_path.iterdir()) == []
