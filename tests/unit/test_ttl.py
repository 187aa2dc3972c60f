"""A cluster's time-to-live (issue #8): `up --ttl`, the record, `status`'s warning, `destroy`'s removal."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from types import SimpleNamespace

import pytest

from bioinfra.core import ttl
from bioinfra.errors import ExitCode, InputError

UTC = dt.timezone.utc
SET_AT = dt.datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("text, seconds", [
    ("30m", 1800), ("8h", 8 * 3600), ("2d", 2 * 86400), ("1w", 7 * 86400), ("1d12h", 36 * 3600), (" 8H ", 8 * 3600),
])
def test_durations(text, seconds):
    assert ttl.parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text, why", [
    ("", "not a duration"), ("8", "not a duration"), ("h", "not a duration"), ("8x", "not a duration"),
    ("8 h", "not a duration"), ("-1h", "not a duration"), ("0m", "at least 1m"), ("91d", "more than 90 days"),
])
def test_bad_durations_are_input_errors(text, why):
    with pytest.raises(InputError) as err:
        ttl.parse_duration(text)
    assert why in err.value.message and err.value.exit_code == ExitCode.INPUT_INVALID


def test_format_duration():
    f = ttl.format_duration
    assert [f(dt.timedelta(seconds=s)) for s in (20, 12 * 60, 3 * 3600, 3 * 3600 + 12 * 60, 76 * 3600, 48 * 3600)] == [
        "<1m", "12m", "3h", "3h 12m", "3d 4h", "2d"]
    assert f(dt.timedelta(hours=-3)) == "3h"


def test_the_record_is_written_atomically_with_mode_0600(tmp_path):
    env = tmp_path / ".bioinfra" / "lab-seq" / "aws"
    record = ttl.new_record("lab-seq", "aws", "8h", set_at=SET_AT)
    assert record.expires_at == SET_AT + dt.timedelta(hours=8)
    path = ttl.write_ttl(env, record)
    assert path == env / "ttl.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"cluster": "lab-seq", "target": "aws", "ttl": "8h",
                                            "set_at": "2026-01-05T09:00:00+00:00",
                                            "expires_at": "2026-01-05T17:00:00+00:00"}
    assert sorted(p.name for p in env.iterdir()) == ["ttl.json"]  # no temporary file left
    assert ttl.read_ttl(env) == record
    # an existing file with looser bits is replaced by a private one
    os.chmod(path, 0o644)
    ttl.write_ttl(env, ttl.new_record("lab-seq", "aws", "2d", set_at=SET_AT))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and ttl.read_ttl(env).ttl == "2d"


def test_past_its_ttl_the_warning_names_the_command(tmp_path):
    ttl.write_ttl(tmp_path, ttl.new_record("lab-seq", "aws", "8h", set_at=SET_AT))
    check = ttl.check(tmp_path, now=SET_AT + dt.timedelta(hours=11))
    assert check.expired
    assert check.message == ("cluster lab-seq is 3h past its time-to-live (set by `up --ttl 8h` at 2026-01-05 09:00 "
                             "UTC): `bioinfra destroy aws` stops the bill")
    assert check.to_dict() == {"cluster": "lab-seq", "target": "aws", "ttl": "8h",
                               "set_at": "2026-01-05T09:00:00+00:00", "expires_at": "2026-01-05T17:00:00+00:00",
                               "expired": True, "seconds_left": 0, "seconds_past": 3 * 3600, "message": check.message}


def test_within_its_ttl_the_note_says_the_time_left(tmp_path):
    ttl.write_ttl(tmp_path, ttl.new_record("lab-seq", "gcp", "8h", set_at=SET_AT))
    check = ttl.check(tmp_path, now=SET_AT + dt.timedelta(hours=2, minutes=48))
    assert not check.expired and check.to_dict()["seconds_left"] == (5 * 60 + 12) * 60
    assert check.message == ("cluster lab-seq: 5h 12m left of its time-to-live (set by `up --ttl 8h` at 2026-01-05 "
                             "09:00 UTC; due 2026-01-05 17:00 UTC)")


def test_onprem_is_reminded_without_a_bill(tmp_path):
    ttl.write_ttl(tmp_path, ttl.new_record("lab", "onprem", "30m", set_at=SET_AT))
    message = ttl.check(tmp_path, now=SET_AT + dt.timedelta(hours=1)).message
    assert message.endswith("`bioinfra destroy onprem` removes what bioinfra added")


def test_no_record_and_a_damaged_record(tmp_path):
    assert ttl.check(tmp_path) is None and ttl.read_ttl(tmp_path) is None
    (tmp_path / "ttl.json").write_text("{not json")
    with pytest.raises(InputError) as err:
        ttl.read_ttl(tmp_path)
    assert "not a time-to-live record" in err.value.message and "--ttl" in err.value.hint


def test_remove(tmp_path):
    ttl.write_ttl(tmp_path, ttl.new_record("lab-seq", "aws", "8h"))
    assert ttl.remove_ttl(tmp_path) is True
    assert ttl.remove_ttl(tmp_path) is False and ttl.read_ttl(tmp_path) is None


# -- what `up`, `destroy` and `status` do with it ---------------------------------------------------


def _config(tmp_path, target="onprem"):
    path = tmp_path / "bioinfra.yaml"
    region = "region: eu-west-2\n" if target == "aws" else ""
    path.write_text(f"name: lab-seq\ntarget: {target}\n{region}")
    return path, tmp_path / ".bioinfra" / "lab-seq" / target


def test_up_records_and_destroy_removes(tmp_path, capsys):
    from bioinfra.cli import up_cmd

    config, env = _config(tmp_path, "aws")
    ctx = SimpleNamespace(obj={"config_path": config})
    before = ttl.now_utc()
    record = up_cmd._ttl_recorder(ctx, "aws", "8h")
    record()
    saved = ttl.read_ttl(env)
    assert saved.cluster == "lab-seq" and saved.target == "aws" and saved.ttl == "8h"
    assert before - dt.timedelta(seconds=1) <= saved.set_at <= ttl.now_utc()
    assert saved.expires_at - saved.set_at == dt.timedelta(hours=8)
    assert stat.S_IMODE((env / "ttl.json").stat().st_mode) == 0o600
    assert "time-to-live 8h: `bioinfra destroy aws` is due at" in capsys.readouterr().err
    up_cmd._forget_ttl(ctx, "aws")  # what a clean `destroy aws` runs last
    assert ttl.read_ttl(env) is None
    assert "time-to-live of lab-seq removed" in capsys.readouterr().err
    up_cmd._forget_ttl(ctx, "aws")  # nothing to remove: silent
    assert capsys.readouterr().err == ""


def test_up_ttl_off_removes_and_a_bad_ttl_fails_before_anything(tmp_path):
    from bioinfra.cli import up_cmd

    config, env = _config(tmp_path, "aws")
    ctx = SimpleNamespace(obj={"config_path": config})
    ttl.write_ttl(env, ttl.new_record("lab-seq", "aws", "8h"))
    up_cmd._ttl_recorder(ctx, "aws", "off")()
    assert ttl.read_ttl(env) is None
    with pytest.raises(InputError, match="not a duration"):
        up_cmd._ttl_recorder(ctx, "aws", "8 hours")


def test_cli_up_ttl_checks(cli, tmp_path):
    proc = cli("up", "local", "--ttl", "8h")
    assert proc.returncode == ExitCode.UNSUPPORTED and "--ttl applies to clusters" in proc.stderr
    proc = cli("up", "aws", "--ttl", "soon")  # refused before the config or any cloud is looked at
    assert proc.returncode == ExitCode.INPUT_INVALID and "--ttl 'soon': not a duration" in proc.stderr
    assert "--ttl" in cli("up", "--help", check=True).stdout


def test_status_prints_the_ttl_warning_even_where_it_has_no_cloud_status(cli, tmp_path):
    config, env = _config(tmp_path, "onprem")
    ttl.write_ttl(env, ttl.new_record("lab-seq", "onprem", "8h", set_at=ttl.now_utc() - dt.timedelta(hours=11)))
    proc = cli("status", "onprem", "-c", str(config))
    assert proc.returncode == ExitCode.UNSUPPORTED
    assert "! cluster lab-seq is 3h past its time-to-live (set by `up --ttl 8h` at " in proc.stderr
    assert "`bioinfra destroy onprem` removes what bioinfra added" in proc.stderr


def test_status_formatting(tmp_path, capsys):
    from bioinfra.cli.cluster_cmd import print_ttl

    ttl.write_ttl(tmp_path, ttl.new_record("lab-seq", "aws", "8h", set_at=SET_AT))
    print_ttl(ttl.check(tmp_path, now=SET_AT + dt.timedelta(hours=9)))
    print_ttl(ttl.check(tmp_path, now=SET_AT + dt.timedelta(hours=1)))
    print_ttl(None)
    print_ttl("a damaged record")
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.splitlines() == [
        "! cluster lab-seq is 1h past its time-to-live (set by `up --ttl 8h` at 2026-01-05 09:00 UTC): "
        "`bioinfra destroy aws` stops the bill",
        "✓ cluster lab-seq: 7h left of its time-to-live (set by `up --ttl 8h` at 2026-01-05 09:00 UTC; "
        "due 2026-01-05 17:00 UTC)",
        "! a damaged record",
    ]


def test_ttl_of_reads_beside_the_config_and_survives_a_damaged_file(tmp_path):
    from bioinfra.cli.cluster_cmd import ttl_of
    from bioinfra.config import load_config

    config, env = _config(tmp_path, "aws")
    loaded = load_config(config, target="aws")
    assert ttl_of(loaded, config) is None
    ttl.write_ttl(env, ttl.new_record("lab-seq", "aws", "1h", set_at=SET_AT))
    assert ttl_of(loaded, config).expired
    (env / "ttl.json").write_text("[]")
    assert "not a time-to-live record" in ttl_of(loaded, config)


def _fake_cluster(monkeypatch):
    from bioinfra.core import cluster

    found = cluster.ClusterStatus("aws", "lab-seq", "eu-west-2", "123456789012", "ACTIVE", "abc.eks.example", "1.31",
                                  [cluster.PoolStatus("general", "ACTIVE", "m6i.xlarge", False, 1, 3, 1)])
    monkeypatch.setattr(cluster, "status", lambda config: found)


def test_status_json_has_a_ttl_object_only_when_one_is_set(tmp_path, monkeypatch, capsys):
    from bioinfra.cli.cluster_cmd import status

    _fake_cluster(monkeypatch)
    config, env = _config(tmp_path, "aws")
    ctx = SimpleNamespace(obj={"config_path": None})
    status(ctx, "aws", config, as_json=True)
    out = capsys.readouterr()
    assert "ttl" not in json.loads(out.out) and out.err == ""  # as before: no key, nothing on stderr
    ttl.write_ttl(env, ttl.new_record("lab-seq", "aws", "8h", set_at=ttl.now_utc() - dt.timedelta(hours=9)))
    status(ctx, "aws", config, as_json=True)
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert data["ttl"]["expired"] is True and data["ttl"]["ttl"] == "8h" and data["ttl"]["seconds_past"] >= 3600
    assert out.err.startswith("! cluster lab-seq is 1h past its time-to-live")


def test_status_table_then_the_ttl_note(tmp_path, monkeypatch, capsys):
    from bioinfra.cli.cluster_cmd import status

    _fake_cluster(monkeypatch)
    config, env = _config(tmp_path, "aws")
    ttl.write_ttl(env, ttl.new_record("lab-seq", "aws", "2d"))
    status(SimpleNamespace(obj={"config_path": None}), "aws", config, as_json=False)
    out = capsys.readouterr()
    assert "✓ cluster lab-seq  ACTIVE  aws 123456789012 eu-west-2" in out.out
    assert out.err.startswith("✓ cluster lab-seq: 1d 23h left of its time-to-live (set by `up --ttl 2d` at ")
