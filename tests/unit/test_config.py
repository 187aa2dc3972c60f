"""Config validation: good files load; bad files report every problem with its field path."""

from __future__ import annotations

import pytest

from bioinfra.config import Config, parse_config
from bioinfra.errors import ConfigError, ExitCode


def problems_of(data) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def test_empty_file_is_the_local_default():
    config = parse_config(None)
    assert config.target == "local" and config.name == "bioinfra"
    assert config.node_pools.highcpu.spot and config.node_pools.highcpu.min == 0


def test_full_gcp_config_loads():
    config = parse_config(
        {
            "name": "lab-seq",
            "target": "gcp",
            "project": "my-lab-project",
            "region": "europe-west2",
            "node_pools": {
                "general": {"machine_type": "e2-standard-4", "min": 1, "max": 3},
                "highcpu": {"machine_type": "c2-standard-30", "min": 0, "max": 20, "spot": True},
                "gpu": {"machine_type": "n1-standard-8", "min": 0, "max": 2, "gpu": {"type": "nvidia-tesla-t4", "count": 2}},
            },
            "buckets": {"results": "lab-seq-results"},
            "state": {"backend": "gcs", "bucket": "lab-tf-state"},
        }
    )
    assert config.node_pools.gpu.gpu.count == 2
    assert config.results_bucket("lab-project-123") == "lab-seq-results"


def test_unknown_key_suggests_the_right_one():
    assert problems_of({"node_pools": {"highcpu": {"machine_type": "x", "spto": True}}}) == [
        "node_pools.highcpu.spto: unknown key; did you mean 'spot'?"
    ]
    assert problems_of({"regoin": "eu-west-2"}) == ["regoin: unknown key; did you mean 'region'?"]


def test_every_problem_is_reported_at_once_with_its_path():
    problems = problems_of(
        {
            "name": "Bad_Name",
            "target": "aws",
            "region": "europe-west2",
            "node_pools": {"highcpu": {"machine_type": "c6i.4xlarge", "min": 5, "max": 2}},
            "pipeline": {"align_memory": "lots"},
            "extra": 1,
        }
    )
    text = "\n".join(problems)
    assert any(p.startswith("name: must be 1-40 characters") for p in problems), text
    assert "region: 'europe-west2' is not an AWS region (e.g. eu-west-2)" in problems, text
    assert any(p.startswith("node_pools.highcpu: min (5) is greater than max (2)") for p in problems), text
    assert any(p.startswith("pipeline.align_memory: must be a Kubernetes memory quantity") for p in problems), text
    assert any(p.startswith("extra: unknown key") for p in problems), text
    assert len(problems) == 5, text


def test_gcp_needs_project_and_region():
    assert problems_of({"target": "gcp"}) == [
        "project: required for target gcp (your GCP project id)",
        "region: required for target gcp (e.g. europe-west2)",
    ]


def test_gpu_pool_needs_gpus_and_wrong_types_name_the_value():
    problems = problems_of({"node_pools": {"gpu": {"machine_type": "g4dn.xlarge", "max": "many"}}})
    assert any(p.startswith("node_pools.gpu.max: Input should be a valid integer") and "'many'" in p for p in problems)


def test_remote_state_needs_bucket_and_lock_table():
    assert problems_of({"state": {"backend": "s3", "bucket": "lab-tfstate"}}) == [
        "state: backend 's3' needs 'lock_table' (a DynamoDB table) for locking"
    ]


def test_cli_validate_reports_and_exits_3(cli, tmp_path):
    (tmp_path / "bioinfra.yaml").write_text("target: aws\nregion: mars-1\nnode_pools:\n  general: {machine_type: m6i.large, mni: 1}\n")
    proc = cli("config", "validate")
    assert proc.returncode == ExitCode.CONFIG_INVALID
    assert "region: 'mars-1' is not an AWS region" in proc.stderr
    assert "node_pools.general.mni: unknown key; did you mean 'min'?" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_yaml_syntax_error_names_the_line(cli, tmp_path):
    (tmp_path / "bioinfra.yaml").write_text("name: x\ntarget: [local\n")
    proc = cli("config", "validate")
    assert proc.returncode == ExitCode.CONFIG_INVALID
    assert "not valid YAML at line" in proc.stderr


def test_bad_config_creates_nothing(cli, tmp_path):
    (tmp_path / "bioinfra.yaml").write_text("target: local\nlocal: {runtime: nativ}\n")
    proc = cli("run", "fastqc-to-bwa")
    assert proc.returncode == ExitCode.CONFIG_INVALID
    assert "local.runtime" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bioinfra.yaml"]  # no results/, no cache/


def test_cli_init_writes_a_valid_file_and_will_not_overwrite(cli, tmp_path):
    assert cli("init", "--target", "gcp", "--name", "lab-seq").returncode == 0
    text = (tmp_path / "bioinfra.yaml").read_text()
    assert "project: my-gcp-project" in text and "# GCP project id" in text
    assert cli("config", "validate").returncode == 0
    again = cli("init")
    assert again.returncode == ExitCode.INPUT_INVALID and "already exists" in again.stderr
    assert cli("init", "--target", "aws", "--force").returncode == 0
    assert "region: eu-west-2" in (tmp_path / "bioinfra.yaml").read_text()


def test_config_show_prints_effective_config(cli):
    proc = cli("config", "show", check=True)
    assert "target: local" in proc.stdout and "align_threads: 8" in proc.stdout


def test_model_defaults_are_valid():
    Config.model_validate(Config().model_dump())
