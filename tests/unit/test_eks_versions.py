"""The EKS version calendar (bioinfra/data/eks_versions.yaml): `up`/`plan aws` refuse a version EKS no
longer creates, note one in extended support; `estimate` charges its fee. Dates are passed in, never
read from the clock, except where the CLI is run (with a version that ended before these tests were written)."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from bioinfra.config import AwsSettings, parse_config
from bioinfra.core import estimate as est
from bioinfra.core.init import config_text
from bioinfra.errors import ExitCode
from bioinfra.targets.eks_versions import ENDED, EXTENDED, STANDARD, UNKNOWN, _table, support


def test_the_calendar_is_dated_and_each_version_follows_eks_rules():
    table = _table()
    assert isinstance(table["as_of"], dt.date)
    for version, d in table["versions"].items():
        assert d["released"] < d["standard_until"] < d["extended_until"], version
        # 14 months of standard support, then 12 of extended (the calendar's own days, +-1 week)
        assert abs((d["standard_until"] - d["released"]).days - 14 * 30.4) < 10, version
        assert abs((d["extended_until"] - d["standard_until"]).days - 365) < 3, version


def test_the_default_version_is_in_standard_support_on_the_calendars_date():
    """Refreshing the calendar without moving the default (or the autoscaler chart with it) fails here."""
    default = AwsSettings().kubernetes_version
    assert support(default, _table()["as_of"]).phase == STANDARD
    assert yaml.safe_load(config_text("aws", "lab"))["aws"]["kubernetes_version"] == default


@pytest.mark.parametrize("version,day,phase,until", [
    ("1.31", dt.date(2025, 11, 26), STANDARD, dt.date(2025, 11, 26)),  # its last day of standard support
    ("1.31", dt.date(2025, 11, 27), EXTENDED, dt.date(2026, 11, 26)),
    ("1.31", dt.date(2026, 11, 26), EXTENDED, dt.date(2026, 11, 26)),
    ("1.31", dt.date(2026, 11, 27), ENDED, dt.date(2026, 11, 26)),
    ("1.27", dt.date(2026, 11, 27), ENDED, None),  # older than the calendar: long gone
    ("1.40", dt.date(2026, 11, 27), UNKNOWN, None),  # newer than the calendar: not judged
    ("1.32-eks-beta", dt.date(2026, 11, 27), UNKNOWN, None),  # not a version number (e.g. from an API): not judged
])
def test_support_phase_by_day(version, day, phase, until):
    found = support(version, day)
    assert (found.phase, found.until) == (phase, until)


def test_the_messages_name_the_fix():
    day = dt.date(2026, 11, 27)
    assert support("1.32", day).describe() == (
        "Kubernetes 1.32 is in EKS extended support until 2027-03-23: the control plane costs 0.60 USD/h instead "
        'of 0.10 (aws.kubernetes_version: "1.35" is in standard support)')
    assert support("1.31", day).describe() == (
        "EKS no longer runs Kubernetes 1.31: its extended support ended on 2026-11-26, so EKS creates no cluster of it")
    assert support("1.35", day).describe() == "Kubernetes 1.35 (EKS standard support until 2027-03-27)"
    assert "not judged" in support("1.40", day).describe()


def _aws_config(version: str):
    data = yaml.safe_load(config_text("aws", "lab-seq"))
    data["aws"]["kubernetes_version"] = version
    return parse_config(data)


def test_estimate_charges_the_extended_fee_and_warns():
    prices = est.PriceTable.load()
    day = dt.date(2026, 11, 27)
    extended = est.estimate(_aws_config("1.32"), "fastqc-to-bwa", prices=prices, today=day)
    fee = prices.data["aws"]["control_plane"]["extended_support_usd_per_hour"]
    assert extended.control_plane.usd == pytest.approx(extended.makespan_hours * fee)
    assert "extended support" in extended.control_plane.note
    assert any("EKS extended support until 2027-03-23" in w for w in extended.warnings)
    current = est.estimate(_aws_config("1.35"), "fastqc-to-bwa", prices=prices, today=day)
    assert current.control_plane.usd == pytest.approx(current.makespan_hours * 0.10)
    ended = est.estimate(_aws_config("1.31"), "fastqc-to-bwa", prices=prices, today=day)
    assert any("`up aws` will refuse it" in w for w in ended.warnings)


def test_plan_and_up_refuse_a_version_eks_no_longer_runs_before_anything(cli, tmp_path):
    """1.29 left extended support on 2026-03-23: refused by the config check (exit 3), before any cloud
    call (no credentials are set) and before anything is rendered."""
    (tmp_path / "bioinfra.yaml").write_text(
        'name: lab-seq\ntarget: aws\nregion: eu-west-2\naws:\n  kubernetes_version: "1.29"\n')
    for args in (["plan", "aws"], ["up", "aws", "--yes"]):
        proc = cli(*args)
        assert proc.returncode == ExitCode.CONFIG_INVALID, proc.stderr
        assert "aws.kubernetes_version: EKS no longer runs Kubernetes 1.29" in proc.stderr
        assert f'set aws.kubernetes_version: "{support("1.29").recommended}"' in proc.stderr
        assert not (tmp_path / ".bioinfra").exists()
