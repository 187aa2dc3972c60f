"""A cloud owns its quirks (issue #18, refactor): core code asks the target interface
(bioinfra/targets/__init__.py: Target, CloudTarget) and never compares a target's name.

Model: SkyPilot's sky/clouds/cloud.py (one class per cloud holding its credential check, features,
kubeconfig): https://github.com/skypilot-org/skypilot/blob/master/sky/clouds/cloud.py
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any, Optional, get_type_hints

import pytest

import bioinfra
from bioinfra.config import parse_config
from bioinfra.core import cluster, doctor
from bioinfra.errors import UnsupportedError
from bioinfra.targets import TARGETS, CloudTarget, Target, get_target
from bioinfra.targets.base import Check, ClusterKubeconfig, ClusterStatus, PoolStatus, passed

PACKAGE = Path(bioinfra.__file__).parent
NAMES = "|".join(sorted(TARGETS))  # local|onprem|gcp|aws, as registered
LITERAL = rf"""["'](?:{NAMES})["']"""
# A target name on either side of ==/!=, or `in` a tuple/list/set of target-name literals:
# `target == "aws"`, `"gcp" != config.target`, `cloud in ("aws", "gcp")`.
COMPARISON = re.compile(
    rf"""(?:(?:==|!=)\s*{LITERAL})|(?:{LITERAL}\s*(?:==|!=))|(?:\bin\s*[(\[{{]\s*{LITERAL}(?:\s*,\s*{LITERAL})*\s*,?\s*[)\]}}])"""
)
# A left-hand side that is about a target (not, e.g., the Terraform state backend "local").
ABOUT_A_TARGET = re.compile(r"(?:target|cloud|\bname\b|\.get\(\"target\")", re.IGNORECASE)
OWNED = ("targets", "adaptors")  # where a cloud's own code lives: it may know its own name


def name_comparisons(root: Path) -> list[str]:
    """file:line of each comparison of a target name with a string literal outside targets/ and adaptors/."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in OWNED:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for match in COMPARISON.finditer(code):
                before = code[:match.start()][-40:] if not match.group(0).lstrip().startswith(("'", '"')) \
                    else code[match.end():][:40]
                if ABOUT_A_TARGET.search(before) or ABOUT_A_TARGET.search(code):
                    found.append(f"bioinfra/{relative}:{number}: {line.strip()}")
                    break
    return found


def test_no_core_code_compares_a_target_name_with_a_literal():
    found = name_comparisons(PACKAGE)
    assert not found, ("cloud specifics outside targets/ (ask the target interface instead):\n"
                       + "\n".join(found))


def test_the_scan_finds_what_it_is_for(tmp_path):
    """The scan itself: it names file:line of the shapes the refactor removed, and passes others."""
    core = tmp_path / "core"
    core.mkdir()
    (core / "x.py").write_text('if config.target == "aws":\n    pass\n'
                               'ok = d.target in ("aws", "gcp")\n'
                               'if record.get("target", "local") != "local":\n    pass\n'
                               'if config.state.backend == "local":\n    pass\n', encoding="utf-8")
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "aws.py").write_text('if target == "aws":\n    pass\n', encoding="utf-8")
    assert name_comparisons(tmp_path) == [
        'bioinfra/core/x.py:1: if config.target == "aws":',
        'bioinfra/core/x.py:3: ok = d.target in ("aws", "gcp")',
        'bioinfra/core/x.py:4: if record.get("target", "local") != "local":',
    ]


def _members(protocol: type) -> dict[str, Any]:
    """The Protocol's members: annotated attributes and methods, its bases' included."""
    members: dict[str, Any] = {}
    for klass in reversed(protocol.__mro__):
        if klass in (object,) or klass.__name__ in ("Protocol", "Generic"):
            continue
        members.update({name: None for name in getattr(klass, "__annotations__", {})})
        members.update({name: value for name, value in vars(klass).items()
                        if callable(value) and not name.startswith("_")})
    return members


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_registered_target_has_every_member_of_the_interface(name):
    target = TARGETS[name]
    wanted = _members(CloudTarget if target.is_cloud or not target.runs_locally else Target)
    missing = [member for member in wanted if not hasattr(target, member)]
    assert not missing, f"target {name} lacks {missing}"
    for member, declared in wanted.items():
        if declared is None:
            continue
        have = inspect.signature(getattr(target, member)).parameters.values()
        want = [p for p in inspect.signature(declared).parameters.values() if p.name != "self"]
        # The same number of positional parameters (a target may name them its way: `aws` for the
        # session) and the same keyword-only ones.
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        assert len([p for p in have if p.kind in positional]) == len([p for p in want if p.kind in positional]), \
            (name, member)
        assert {p.name for p in have if p.kind == p.KEYWORD_ONLY} == {p.name for p in want if p.kind == p.KEYWORD_ONLY}, \
            (name, member)


def test_every_interface_member_says_what_it_answers():
    for protocol in (Target, CloudTarget):
        for name, value in vars(protocol).items():
            if callable(value) and not name.startswith("_"):
                assert (value.__doc__ or "").strip(), f"{protocol.__name__}.{name} has no docstring"
    assert get_type_hints(Target, include_extras=False)  # the attributes are typed


# -- a new cloud, registered only in TARGETS ------------------------------------------------------

class FakeCloud:
    """A test double of a cloud: every answer canned, nothing of it anywhere but here and TARGETS."""

    name = "fakecloud"
    runs_locally = False
    is_cloud = True
    cluster_elsewhere = ""
    remote_schemes = ("fake",)
    pool_preferred = False
    workload_identity_annotation: Optional[str] = "fake.example/identity"

    def open_session(self, config: Any) -> Any:
        return "fake-session"

    def cluster_kubeconfig(self, config: Any, session: Any, auth: str) -> ClusterKubeconfig:
        assert session == "fake-session"
        entries = {"apiVersion": "v1", "kind": "Config", "current-context": "fake",
                   "clusters": [{"name": "fake", "cluster": {"server": "https://fake.example"}}],
                   "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                   "users": [{"name": "fake", "user": {"token": "t"}}]}
        return ClusterKubeconfig(entries, "fake", "token", lifetime="for ever")

    def status(self, config: Any) -> ClusterStatus:
        return ClusterStatus(self.name, config.name, "moon-1", "acct", "UP", "fake.example", "1.33",
                             [PoolStatus("general", "UP", "tiny", False, 1, 2, 1)])

    def doctor_checks(self) -> list[tuple[str, Any, tuple[str, ...]]]:
        def credentials(d: Any) -> Check:
            d.session = self.open_session(d.config)
            return passed("fake credentials")

        def quota(d: Any) -> Check:
            return passed("fake quota")

        return [("credentials", credentials, ()), ("quota", quota, ("credentials",)),
                ("cluster", lambda d: passed("fake cluster"), ("credentials",))]


@pytest.fixture
def fake_cloud(monkeypatch):
    target = FakeCloud()
    monkeypatch.setitem(TARGETS, target.name, target)
    # The config's target is validated against the registry; the fake is one entry more there.
    config = parse_config({"name": "demo", "target": "gcp", "project": "p-123456", "region": "europe-west2"},
                          source="test").model_copy(update={"target": target.name})
    return target, config


def test_a_new_cloud_is_reached_by_kubeconfig_status_and_doctor(fake_cloud, tmp_path):
    target, config = fake_cloud
    cluster.check_supported("kubeconfig", target.name)
    cluster.check_supported("status", target.name)

    written = cluster.kubeconfig(config, None, tmp_path / "kc", "auto")
    assert (written.path, written.context, written.lifetime) == (tmp_path / "kc", "fake", "for ever")
    assert "https://fake.example" in (tmp_path / "kc").read_text()
    assert cluster.status(config).location == "moon-1"

    steps = [name for name, _, _ in doctor.steps_for(config)]
    assert steps[:5] == ["credentials", "terraform", "cluster", "kubeconfig", "api server"]
    assert "quota" in steps and "tool images" == steps[-1]  # its own check, after the cluster's
    assert dict((n, needs) for n, _, needs in doctor.steps_for(config))["kubeconfig"] == ("cluster",)
    assert get_target(target.name) is target


@pytest.mark.parametrize("name", ["local", "onprem"])
def test_kubeconfig_and_status_say_what_to_use_where_bioinfra_made_no_cluster(name):
    with pytest.raises(UnsupportedError) as raised:
        cluster.check_supported("kubeconfig", name)
    assert "aws, gcp" in raised.value.message
    assert raised.value.hint == TARGETS[name].cluster_elsewhere


def test_importing_the_targets_loads_no_core_engine_or_config_module():
    """core imports targets, never the other way round at import time (the cycle is broken)."""
    import subprocess
    import sys

    code = ("import sys, bioinfra.targets; print(sorted(m for m in sys.modules "
            "if m.split('.')[:2] in (['bioinfra', 'core'], ['bioinfra', 'engine'], ['bioinfra', 'config'])))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
