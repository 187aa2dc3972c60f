"""bioinfra.yaml is read safely by construction (issue #15): no anchors or aliases (an alias bomb is
refused, not expanded), duplicate keys are an error naming both lines, the file size is capped, and
no message carries more than a short, escaped piece of the input."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from bioinfra.config import MAX_CONFIG_BYTES, load_config, load_yaml_file, parse_config, shown
from bioinfra.errors import ConfigError

# "Billion laughs": nine levels of nine aliases, 9^9 (387 million) strings once anything walks it.
BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    + ["name: *i", "target: aws", ""]
)
AS_LIMIT = 300 * 1024 * 1024  # address space of the child: far below what expanding the bomb needs


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def test_an_alias_bomb_is_refused_with_bounded_memory(tmp_path):
    """The CLI in a child whose address space is capped at 300 MB: it must refuse the file naming the
    anchor's line (exit 3; an alias needs an anchor before it, so the anchor is what is named). Expanding it (or repr() of it in a message, as before) runs out of memory
    there instead, so a regression fails this test rather than hanging the machine."""
    (tmp_path / "bioinfra.yaml").write_text(BOMB)
    proc = subprocess.run([sys.executable, "-m", "bioinfra", "config", "validate"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "line 1: YAML anchors (&a) are not accepted" in proc.stderr, proc.stderr[-2000:]
    assert len(proc.stderr) < 2000


def test_anchors_are_refused_naming_the_line(tmp_path):
    path = tmp_path / "bioinfra.yaml"
    path.write_text("target: aws\nregion: &r eu-west-2\n")
    with pytest.raises(ConfigError, match=r"line 2: YAML anchors \(&r\) are not accepted"):
        load_yaml_file(path)
    path.write_text("target: aws\nnode_pools:\n  general: &g {machine_type: m6i.large}\n  highcpu: *g\n")
    with pytest.raises(ConfigError, match=r"line 3: YAML anchors \(&g\)"):
        load_yaml_file(path)


def test_duplicate_keys_name_the_key_and_both_lines(tmp_path):
    path = tmp_path / "bioinfra.yaml"
    path.write_text("name: lab\ntarget: aws\naws:\n  profile: a\n  region_x: 1\n  profile: b\n")
    with pytest.raises(ConfigError) as info:
        load_yaml_file(path)
    assert "duplicate key 'profile' at lines 4 and 6" in str(info.value)
    path.write_text("name: lab\nname: other\n")
    with pytest.raises(ConfigError, match="duplicate key 'name' at lines 1 and 2"):
        load_yaml_file(path)


def test_an_oversize_file_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "bioinfra.yaml"
    path.write_text("name: lab\n# " + "x" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        load_yaml_file(path)
    path.write_text("name: lab\n# " + "x" * (MAX_CONFIG_BYTES - 100) + "\n")
    assert load_yaml_file(path) == {"name": "lab"}


def test_a_huge_value_is_not_echoed(cli, tmp_path):
    (tmp_path / "bioinfra.yaml").write_text("target: aws\nregion: " + "A" * 500_000 + "\naws:\n  profile: "
                                            + "p\\n" * 1000 + "\n")
    proc = cli("config", "validate")
    assert proc.returncode == 3, proc.stderr[-1000:]
    assert "region:" in proc.stderr and "aws.profile:" in proc.stderr
    assert "A" * 61 not in proc.stderr and "(500000 characters)" in proc.stderr
    assert len(proc.stderr) < 3000, len(proc.stderr)


def test_messages_escape_control_characters_and_quotes():
    with pytest.raises(ConfigError) as info:
        parse_config({"target": "aws", "region": "eu-west-2\n\x1b[31mred", "aws": {"profile": "it's\r\nme"}})
    text = "\n".join(info.value.problems)
    assert "\x1b" not in text and "\r" not in text and len(info.value.problems) == text.count("\n") + 1
    assert "'eu-west-2\\n\\x1b[31mred'" in text and "'it\\'s\\r\\nme'" in text
    assert shown("x" * 100) == "'" + "x" * 60 + "'... (100 characters)"
    assert shown({"a": 1}) == "a dict" and shown(10**40) == "a very large integer"


def test_deep_nesting_and_bad_bytes_are_config_errors(tmp_path):
    path = tmp_path / "bioinfra.yaml"
    path.write_text("name: " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_yaml_file(path)
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_yaml_file(path)
    path.write_text("name: !!python/object:os.system echo\n")
    with pytest.raises(ConfigError, match="not valid YAML at line 1"):
        load_yaml_file(path)


def test_a_good_config_still_loads(tmp_path):
    path = tmp_path / "bioinfra.yaml"
    path.write_text("name: lab\ntarget: aws\nregion: eu-west-2\naws:\n  profile: lab-admin\n")
    config = load_config(Path(path))
    assert (config.name, config.region, config.aws.profile) == ("lab", "eu-west-2", "lab-admin")
