"""Hostile values in every string field of bioinfra.yaml (issue #15): each is refused naming its field
(exit 3 through the CLI), or it reaches Terraform only as data (the tfvars JSON), never as HCL text.

The fields are enumerated from the pydantic model (string_fields), so a field added later is covered
without touching this file. A second wall is tested too: with validation bypassed (model_copy does not
validate), the rendered roots still hold none of the values, and every value Terraform gets is in
bioinfra.auto.tfvars.json verbatim. `terraform console` with the real Terraform and AWS provider
shows a `${file(...)}` in that JSON is text to Terraform, not an expression.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import typing
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from pydantic import BaseModel

from bioinfra.config import ENV_OVERRIDES, Config, parse_config
from bioinfra.core.provision import render_environment
from bioinfra.errors import ConfigError, ExitCode

HOSTILE = {
    "interpolation": '${file("/etc/hostname")}',
    "directive": "%{ for x in y }",
    "quote": 'a"b',
    "newline": "a\nb",
    "subshell": "$(touch X)",
    "backtick": "`touch X`",
}

GPU = {"machine_type": "g5.xlarge", "max": 2, "gpu": {"count": 1}}
BASES: dict[str, dict[str, Any]] = {
    "aws": {"name": "demo", "target": "aws", "region": "eu-west-2", "node_pools": {"gpu": GPU},
            "state": {"backend": "s3", "bucket": "demo-tfstate", "lock_table": "demo-tflocks"}},
    "gcp": {"name": "demo", "target": "gcp", "project": "my-project-123", "region": "europe-west2",
            "node_pools": {"gpu": {"machine_type": "n1-standard-8", "gpu": {"type": "nvidia-tesla-t4", "count": 1}}},
            "gcp": {"zones": ["europe-west2-a"], "filestore": True},
            "state": {"backend": "gcs", "bucket": "demo-tfstate"}},
    "onprem": {"name": "demo", "target": "onprem", "node_pools": {"gpu": {"machine_type": "gpu-node", "gpu": {"count": 1}}},
               "onprem": {"nfs_server": "10.0.0.5", "nfs_path": "/srv/bioinfra", "context": "lab"}},
}
TARGETS = sorted(BASES)


def _unwrap(annotation: Any) -> list[Any]:
    """The types inside Optional[...] / Union[...] / list[...]."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return [a for arg in args if arg is not type(None) for a in _unwrap(arg)]
    return [annotation]


def string_fields(model: type[BaseModel] = Config, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted path, kind) of every field holding text: kind "str", "path", "list" (of str) or
    "literal". Nested models are walked; Optional models (node_pools.gpu, its gpu) too."""
    found = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        for typ in _unwrap(field.annotation):
            origin = typing.get_origin(typ)
            if isinstance(typ, type) and issubclass(typ, BaseModel):
                found += string_fields(typ, f"{path}.")
            elif typ is str:
                found.append((path, "str"))
            elif typ is Path:
                found.append((path, "path"))
            elif origin is list and typing.get_args(typ) == (str,):
                found.append((path, "list"))
            elif origin is typing.Literal and any(isinstance(a, str) for a in typing.get_args(typ)):
                found.append((path, "literal"))
    return found


FIELDS = string_fields()


def test_the_enumeration_finds_the_fields_we_know():
    paths = {path for path, _ in FIELDS}
    assert {"name", "region", "project", "aws.profile", "aws.endpoint_url", "state.bucket", "state.lock_table",
            "gcp.endpoint_url", "node_pools.gpu.gpu.type", "onprem.context", "onprem.nfs_server", "onprem.nfs_path",
            "onprem.kubeconfig", "onprem.storage_class", "buckets.results", "registry.url", "gcp.zones",
            "aws.public_access_cidrs", "node_pools.highcpu.alternatives", "local.workspace"} <= paths
    assert len(FIELDS) > 40


def with_value(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(data))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {}) if isinstance(node.get(part), dict) or part not in node else node[part]
    node[last] = value
    return data


def hostile_value(kind: str, text: str) -> Any:
    return [text] if kind == "list" else text


def rendered_roots(root: Path) -> str:
    """Every rendered .tf text of an environment: the stack roots (the static modules are copied files)."""
    return "\n".join(p.read_text() for p in sorted(root.glob("*/*.tf")))


def tfvars(root: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(root.glob("*/*.json")))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("label", sorted(HOSTILE))
def test_every_string_field_refuses_or_carries_a_hostile_value_as_data(tmp_path, target, label):
    text = HOSTILE[label]
    refused, inert = [], []
    for path, kind in FIELDS:
        data = with_value(BASES[target], path, hostile_value(kind, text))
        try:
            config = parse_config(data)
        except ConfigError as exc:
            named = [p for p in exc.problems if p.startswith(f"{path}:") or p.startswith(f"{path}.")]
            assert named, f"{path} = {text!r} refused without naming the field: {exc.problems}"
            # never the raw value in the message: at most a short, escaped form
            assert all("\n" not in p for p in exc.problems), exc.problems
            refused.append(path)
            continue
        folder = tmp_path / path
        render_environment(config, folder)
        assert text not in rendered_roots(folder), f"{path} = {text!r} reached the HCL of {target}"
        inert.append(path)
    assert refused, "nothing refused: is the enumeration empty?"
    assert not inert, f"accepted (they never reach HCL, but nothing here should accept them): {inert}"


def test_a_bad_value_exits_3_naming_every_field_and_renders_nothing(cli, tmp_path):
    """Through the CLI, all string fields hostile at once: `config validate` and `plan TARGET` exit 3,
    every field is named, and nothing is rendered (plan stops before its preflight)."""
    for target in TARGETS:
        data = dict(BASES[target])
        paths = [p for p, kind in FIELDS if kind != "literal" and p not in ("version",)]
        for path in paths:
            kind = dict(FIELDS)[path]
            data = with_value(data, path, hostile_value(kind, HOSTILE["interpolation"]))
        (tmp_path / "bioinfra.yaml").write_text(yaml.safe_dump(data))
        for command in (["config", "validate"], ["plan", target]):
            proc = cli(*command, timeout=120)
            assert proc.returncode == ExitCode.CONFIG_INVALID == 3, (command, proc.stderr)
            missing = [p for p in paths if not re.search(rf"(^|\s){re.escape(p)}[:.]", proc.stderr, re.M)]
            assert not missing, f"{target} {command}: not named: {missing}\n{proc.stderr}"
            # each value shown short and escaped, if at all: no line carries a raw newline's second half
            assert all(len(line) < 400 for line in proc.stderr.splitlines()), proc.stderr
        assert not (tmp_path / ".bioinfra").exists()


@pytest.mark.parametrize("var", sorted(ENV_OVERRIDES))
def test_environment_overrides_are_checked_like_the_file(cli, tmp_path, var):
    target = "aws" if "AWS" in var else "gcp"
    (tmp_path / "bioinfra.yaml").write_text(yaml.safe_dump(BASES[target]))
    for bad in ('http://x/"${file("/etc/hostname")}', "ftp://x", "http://x y", "http:///nohost"):
        for command in (["config", "validate"], ["plan", target]):
            proc = cli(*command, extra_env={var: bad}, timeout=120)
            assert proc.returncode == 3, (bad, command, proc.stderr)
            assert f"{var}: not an http(s) URL" in proc.stderr, proc.stderr
    assert not (tmp_path / ".bioinfra").exists()
    good = cli("config", "validate", extra_env={var: "http://127.0.0.1:4566/"})
    assert good.returncode == 0, good.stderr


def test_an_aws_endpoint_from_the_environment_is_checked_where_it_is_read(monkeypatch):
    from bioinfra.targets.aws import endpoint_url

    config = parse_config(BASES["aws"])
    monkeypatch.setenv("BIOINFRA_AWS_ENDPOINT_URL", 'http://x"${file("/etc/hostname")}')
    with pytest.raises(ConfigError) as info:
        endpoint_url(config)
    assert info.value.problems[0].startswith("BIOINFRA_AWS_ENDPOINT_URL: not an http(s) URL")
    monkeypatch.setenv("BIOINFRA_AWS_ENDPOINT_URL", "http://127.0.0.1:4566/")
    assert endpoint_url(config) == "http://127.0.0.1:4566"


# -- the second wall: with validation bypassed, values are still only data -------------------------


def forced(config: Config, path: str, value: Any) -> Config:
    """config with `path` set to value, unvalidated (model_copy does not validate)."""
    head, _, rest = path.partition(".")
    if not rest:
        return config.model_copy(update={head: value})
    child = getattr(config, head)
    if child is None:
        return config
    return config.model_copy(update={head: forced(child, rest, value)})


@pytest.mark.parametrize("target", TARGETS)
def test_with_validation_bypassed_no_value_reaches_the_hcl(tmp_path, target):
    base = parse_config(BASES[target])
    text = HOSTILE["interpolation"] + HOSTILE["quote"] + HOSTILE["newline"] + HOSTILE["directive"]
    reached = []
    for path, kind in FIELDS:
        if kind == "literal" or path in ("onprem.kubeconfig", "local.workspace"):
            continue  # a choice among code's own strings; paths: another type (checked below)
        config = forced(base, path, hostile_value(kind, f"{path}:{text}"))
        if path in ("name", "project") and not config.buckets.results:
            # The default bucket name is derived from `name` (and the project), and a derived name that is no bucket name
            # is refused (config.results_bucket); name the bucket so the rest of the render is checked.
            config = forced(config, "buckets.results", "zq-results-bucket")
        folder = tmp_path / path
        render_environment(config, folder)
        assert text not in rendered_roots(folder), f"{path} reached the HCL of {target}"
        data = tfvars(folder)
        if json.dumps(f"{path}:{text}") in data:
            reached.append(path)
    kubeconfig = forced(base, "onprem.kubeconfig", Path(f"/k/{text}"))
    render_environment(kubeconfig, tmp_path / "kubeconfig")
    assert text not in rendered_roots(tmp_path / "kubeconfig")
    # the values Terraform needs did reach it, verbatim, as JSON strings
    expected = {"aws": {"name", "region", "aws.profile", "aws.endpoint_url", "state.bucket", "state.lock_table",
                        "buckets.results", "aws.kubernetes_version", "aws.vpc_cidr", "node_pools.general.machine_type"},
                "gcp": {"name", "region", "project", "state.bucket", "gcp.zones", "gcp.master_cidr",
                        "node_pools.gpu.gpu.type", "buckets.results"},
                "onprem": {"name", "onprem.context", "onprem.nfs_server", "onprem.nfs_path"}}[target]
    assert expected <= set(reached), sorted(expected - set(reached))


# -- every config value, and only variables, in the rendered roots ---------------------------------

DISTINCT: dict[str, dict[str, Any]] = {
    "aws": {"name": "zqlab", "target": "aws", "region": "ap-southeast-2",
            "buckets": {"results": "zq-results-bucket"}, "registry": {"url": "zq.registry.example/zq"},
            "node_pools": {"general": {"machine_type": "m7i.2xlarge"},
                           "highcpu": {"machine_type": "c7a.8xlarge", "alternatives": ["c6a.8xlarge"], "spot": True},
                           "gpu": {"machine_type": "g6.2xlarge", "gpu": {"count": 1}}},
            "state": {"backend": "s3", "bucket": "zq-state-bucket", "lock_table": "zq-lock-table"},
            "aws": {"profile": "zq-profile", "endpoint_url": "http://zq-endpoint.example:4566",
                    "kubernetes_version": "1.34", "vpc_cidr": "10.42.0.0/16",
                    "public_access_cidrs": ["198.51.100.0/24"]}},
    "gcp": {"name": "zqlab", "target": "gcp", "project": "zq-project-42", "region": "asia-east1",
            "buckets": {"results": "zq-results-bucket"},
            "node_pools": {"gpu": {"machine_type": "g2-standard-8", "gpu": {"type": "nvidia-l4", "count": 1}}},
            "gcp": {"zones": ["asia-east1-c"], "filestore": True, "subnet_cidr": "10.77.0.0/20",
                    "master_authorized_networks": ["203.0.113.0/24"], "master_cidr": "172.16.9.0/28"},
            "state": {"backend": "gcs", "bucket": "zq-state-bucket"}},
    "onprem": {"name": "zqlab", "target": "onprem",
               "onprem": {"nfs_server": "zq-nfs.lab.example", "nfs_path": "/zq/export", "context": "zq-context",
                          "kubeconfig": "/zq/kubeconfig"}},
}
TOKEN = r"(?<![A-Za-z0-9_.\-/]){}(?![A-Za-z0-9_.\-/])"


def leaves(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in leaves(v, f"{path}{k}.")]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaves(v, path)]
    return [(path.rstrip("."), str(value))] if isinstance(value, (str, Path)) else []


@pytest.mark.parametrize("target", TARGETS)
def test_no_config_string_is_in_the_rendered_roots(tmp_path, target):
    config = parse_config(DISTINCT[target])
    render_environment(config, tmp_path)
    roots = rendered_roots(tmp_path)
    literal_fields = {p for p, kind in FIELDS if kind == "literal"}  # choices among code's own strings
    found = [(path, value) for path, value in leaves(config.model_dump(mode="json"))
             if path not in literal_fields and re.search(TOKEN.format(re.escape(value)), roots)]
    assert not found, f"config values written into HCL: {found}"
    data = tfvars(tmp_path)
    # what Terraform needs is there (the registry is not Terraform's: images are pushed by bioinfra)
    for value in ("zqlab", *(v for p, v in leaves(DISTINCT[target]) if v.startswith("zq") and p != "registry.url")):
        assert json.dumps(value) in data, f"{value} is not in the tfvars / backend JSON"


@pytest.mark.parametrize("target", TARGETS)
def test_every_variable_is_typed_described_and_set(tmp_path, target):
    render_environment(parse_config(DISTINCT[target]), tmp_path)
    for main in sorted(tmp_path.glob("*/main.tf")):
        doc = hcl2.loads(main.read_text())
        declared = {}
        for block in doc.get("variable", []):
            for name, body in block.items():
                declared[name.strip('"')] = body
        untyped = [n for n, b in declared.items() if "type" not in b or not b.get("description")]
        assert not untyped, f"{main}: variables without type or description: {untyped}"
        values = json.loads((main.parent / "bioinfra.auto.tfvars.json").read_text())
        assert set(values) <= set(declared), f"{main}: tfvars for undeclared variables {set(values) - set(declared)}"
        upstream = {"network", "cluster", "storage"}
        unset = [n for n, b in declared.items() if "default" not in b and n not in values and n not in upstream]
        assert not unset, f"{main}: variables nothing sets: {unset}"
        assert (main.parent / "bioinfra.auto.tfvars.json").stat().st_mode & 0o777 == 0o600


# -- Terraform itself: a tfvars JSON string is data ------------------------------------------------

PLUGIN_MIRROR = Path("/opt/tf-plugins")


@pytest.fixture
def tf_env(tmp_path) -> dict[str, str]:
    if shutil.which("terraform") is None or not (PLUGIN_MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.skip("terraform and the AWS provider mirror (/opt/tf-plugins) are needed")
    rc = tmp_path / "terraform.rc"
    cache = Path(os.environ.get("TF_PLUGIN_CACHE_DIR") or tmp_path / "plugins")
    cache.mkdir(parents=True, exist_ok=True)
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{PLUGIN_MIRROR}"\n  }}\n}}\n'
                  f'plugin_cache_dir = "{cache}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(TF_CLI_CONFIG_FILE=str(rc), TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
    return env


def test_terraform_reads_an_interpolation_in_the_tfvars_as_text(tmp_path, tf_env):
    """The rendered AWS network root, its tfvars' name replaced by `${file("/etc/hostname")}` (as if
    validation had let it through): Terraform's own console shows the literal text, not the file."""
    render_environment(parse_config({"name": "demo", "target": "aws", "region": "eu-west-2"}), tmp_path)
    stack = tmp_path / "network"
    values = json.loads((stack / "bioinfra.auto.tfvars.json").read_text())
    values["name"] = HOSTILE["interpolation"]
    values["profile"] = HOSTILE["directive"]
    (stack / "bioinfra.auto.tfvars.json").write_text(json.dumps(values))
    init = subprocess.run(["terraform", "init", "-input=false", "-no-color"], cwd=stack, env=tf_env,
                          capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stdout + init.stderr
    console = subprocess.run(["terraform", "console", "-no-color"], cwd=stack, env=tf_env, capture_output=True,
                             text=True, timeout=300, input="jsonencode([var.name, var.profile])\n")
    assert console.returncode == 0, console.stderr
    assert json.loads(json.loads(console.stdout)) == [HOSTILE["interpolation"], HOSTILE["directive"]]
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else None
    if hostname:
        assert hostname not in console.stdout


def test_the_hcl_filter_writes_strings_terraform_reads_back_verbatim(tmp_path, tf_env):
    """For code's own values the hcl filter is still used: its strings must be literal to Terraform too."""
    from bioinfra.render import hcl

    texts = [*HOSTILE.values(), "$${already} %%{escaped}", "tab\there \\ back\\slash \x08"]
    (tmp_path / "main.tf").write_text("locals {\n  all = [" + ", ".join(hcl(t) for t in texts) + "]\n}\n")
    init = subprocess.run(["terraform", "init", "-input=false", "-no-color"], cwd=tmp_path, env=tf_env,
                          capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stderr
    console = subprocess.run(["terraform", "console", "-no-color"], cwd=tmp_path, env=tf_env, capture_output=True,
                             text=True, timeout=300, input="jsonencode(local.all)\n")
    assert console.returncode == 0, console.stderr
    assert json.loads(json.loads(console.stdout)) == texts
