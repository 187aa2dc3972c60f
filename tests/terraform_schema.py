"""Check Terraform files against a provider schema without the provider (no `terraform validate`).

The schema is the JSON that scripts/provider_schema.py writes from the cdktf provider package (see
docs/notes/provider-schema.md). We check the *structure* Terraform itself checks before it talks to the
provider: that each resource / data source type exists, every argument and nested block is known,
required arguments and blocks are present, single blocks appear at most once, and read-only (computed)
attributes are not set. Values are not evaluated: any expression satisfies a required argument.

    problems = check_files(sorted(Path("terraform/gcp/modules").rglob("*.tf")), load_schema(path))
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hcl2

# Meta-arguments Terraform handles itself (https://developer.hashicorp.com/terraform/language/meta-arguments)
RESOURCE_META_ATTRIBUTES = {"count", "for_each", "depends_on", "provider"}
RESOURCE_META_BLOCKS = {"lifecycle", "provisioner", "connection"}
DATA_META_ATTRIBUTES = {"count", "for_each", "depends_on", "provider"}
DATA_META_BLOCKS = {"lifecycle"}
LIFECYCLE_ARGS = {
    "resource": {
        "create_before_destroy",
        "prevent_destroy",
        "ignore_changes",
        "replace_triggered_by",
        "precondition",
        "postcondition",
    },
    "data": {"precondition", "postcondition"},
}
DYNAMIC_ARGS = {"for_each", "iterator", "labels", "content"}
PROVIDER_META = {"alias", "version"}

# Arguments of the "gcs" state backend, written by hand (Terraform's backends are not in any provider
# schema). Source: https://developer.hashicorp.com/terraform/language/backend/gcs
# `bucket` is required by the backend but may come from `-backend-config` (partial configuration),
# so only unknown arguments are reported.
GCS_BACKEND_ARGS = {
    "bucket",
    "prefix",
    "credentials",
    "impersonate_service_account",
    "impersonate_service_account_delegates",
    "access_token",
    "encryption_key",
    "kms_encryption_key",
    "storage_custom_endpoint",
}
BACKEND_ARGS = {"gcs": GCS_BACKEND_ARGS}

_OPTIONS = hcl2.SerializationOptions(with_comments=False)


def load_schema(path: Path | str) -> dict:
    return json.loads(Path(path).read_text())


def provider_name(schema: dict) -> str:
    """The provider's local name, e.g. "google" for registry.terraform.io/hashicorp/google."""
    return schema["provider"].rsplit("/", 1)[-1]


def check_files(paths: Iterable[Path], schema: dict, root: Path | None = None) -> list[str]:
    """Problems in the given .tf files, each as "<file>: <address>: <problem>"."""
    problems: list[str] = []
    for path in paths:
        path = Path(path)
        shown = str(path)
        if root is not None:
            try:
                shown = str(path.resolve().relative_to(Path(root).resolve()))
            except ValueError:
                pass
        problems.extend(check_text(path.read_text(encoding="utf-8"), schema, shown))
    return problems


def check_text(text: str, schema: dict, filename: str = "main.tf") -> list[str]:
    """Problems in one file's HCL text (filename is only used in the messages)."""
    try:
        doc = hcl2.loads(text, serialization_options=_OPTIONS)
    except Exception as exc:  # python-hcl2 raises lark errors of several kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [f"{filename}: cannot parse as HCL: {first}"]
    return _Checker(schema, filename).document(doc)


def used_types(paths: Iterable[Path], prefix: str) -> dict[str, set[str]]:
    """{"resources": {...}, "data_sources": {...}}: the types starting with prefix used in .tf files."""
    used: dict[str, set[str]] = {"resources": set(), "data_sources": set()}
    for path in paths:
        doc = hcl2.loads(Path(path).read_text(encoding="utf-8"), serialization_options=_OPTIONS)
        for kind, section in (("resource", "resources"), ("data", "data_sources")):
            for type_name, _name, _body in _labelled2(doc.get(kind, [])):
                if type_name.startswith(prefix):
                    used[section].add(type_name)
    return used


# Text scans that also work on Jinja templates (.tf.j2), which are not HCL until rendered.
TYPE_USE = re.compile(r'^\s*(?P<kind>resource|data)\s+"?(?P<type>[A-Za-z][A-Za-z0-9_-]*)"?\s', re.M)
REQUIRED_PROVIDERS = re.compile(r"\brequired_providers\s*\{")
PROVIDER_REQUIREMENT = re.compile(r'(?P<name>[A-Za-z0-9_-]+|"[^"]+")\s*=\s*\{(?P<body>[^{}]*)\}')
STRING_ARG = r'\b{}\s*=\s*"(?P<value>[^"]*)"'


def scan_type_names(paths: Iterable[Path], prefix: str) -> dict[str, set[str]]:
    """Like used_types, but by regex, so that it works on .tf.j2 templates too."""
    used: dict[str, set[str]] = {"resources": set(), "data_sources": set()}
    for path in paths:
        for match in TYPE_USE.finditer(Path(path).read_text(encoding="utf-8")):
            if match["type"].startswith(prefix):
                used["resources" if match["kind"] == "resource" else "data_sources"].add(match["type"])
    return used


def required_provider_versions(text: str) -> list[tuple[str, str | None, str | None]]:
    """(local name, source, version) of each entry of each `required_providers {}` block in the text."""
    found = []
    for start in REQUIRED_PROVIDERS.finditer(text):
        depth, i = 1, start.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        for entry in PROVIDER_REQUIREMENT.finditer(text[start.end() : i - 1]):
            source = re.search(STRING_ARG.format("source"), entry["body"])
            version = re.search(STRING_ARG.format("version"), entry["body"])
            found.append(
                (
                    _unquote(entry["name"]),
                    source["value"] if source else None,
                    version["value"] if version else None,
                )
            )
    return found


# --------------------------------------------------------------------------------------------------
# python-hcl2 (v8) output shape, with explicit_blocks (the default):
#   a block is a dict with "__is_block__": True; repeated blocks of one type are a list of them;
#   labels are nested dict keys that keep their quotes:  resource: [{'"t"': {'"n"': {..., __is_block__}}}]
#   an attribute holding a map/object is a plain dict (no marker); a list of objects is a list of plain dicts.


def _unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def _is_block(value: Any) -> bool:
    return isinstance(value, dict) and value.get("__is_block__") is True


def _is_labelled_block(value: Any) -> bool:
    """{'"label"': {...block...}} (one label level, as for dynamic/provisioner/backend)."""
    return (
        isinstance(value, dict)
        and not _is_block(value)
        and len(value) >= 1
        and all(_is_block(v) or _is_labelled_block(v) for v in value.values())
    )


def _is_block_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_block(v) or _is_labelled_block(v) for v in value)


def _labelled1(items: list) -> Iterable[tuple[str, dict]]:
    for item in items:
        if isinstance(item, dict):
            for label, body in item.items():
                if _is_block(body):
                    yield _unquote(label), body


def _labelled2(items: list) -> Iterable[tuple[str, str, dict]]:
    for item in items:
        if isinstance(item, dict):
            for first, inner in item.items():
                if isinstance(inner, dict):
                    for second, body in inner.items():
                        if _is_block(body):
                            yield _unquote(first), _unquote(second), body


def _keys(body: dict) -> Iterable[tuple[str, Any]]:
    for key, value in body.items():
        if not (key.startswith("__") and key.endswith("__")):
            yield key, value


def _is_null(value: Any) -> bool:
    return value is None or value in ("null", "${null}")


def _suggest(name: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


class _Checker:
    def __init__(self, schema: dict, filename: str):
        self.schema = schema
        self.filename = filename
        self.name = provider_name(schema)
        self.prefix = self.name + "_"
        self.problems: list[str] = []

    def report(self, where: str, message: str) -> None:
        self.problems.append(f"{self.filename}: {where}: {message}")

    def document(self, doc: dict) -> list[str]:
        for kind, section, label in (
            ("resource", "resources", "resource type"),
            ("data", "data_sources", "data source type"),
        ):
            for type_name, name, body in _labelled2(doc.get(kind, [])):
                address = f"{type_name}.{name}" if kind == "resource" else f"data.{type_name}.{name}"
                if not type_name.startswith(self.prefix):
                    continue  # another provider's type: not ours to check
                known = self.schema.get(section, {})
                if type_name not in known:
                    self.report(address, f"unknown {label} '{type_name}'{_suggest(type_name, known)}")
                    continue
                self.body(body, known[type_name], address, "", top=kind)
        for local_name, body in _labelled1(doc.get("provider", [])):
            if local_name in (self.name, f"{self.name}-beta") and "provider_config" in self.schema:
                self.body(body, self.schema["provider_config"], f'provider "{local_name}"', "", top="provider")
        for terraform in doc.get("terraform", []):
            if not _is_block(terraform):
                continue
            for backend, body in _labelled1(terraform.get("backend", [])):
                allowed = BACKEND_ARGS.get(backend)
                if allowed is None:
                    continue  # a backend we keep no list for (local, s3, ...)
                for key, _value in _keys(body):
                    if key not in allowed:
                        self.report(f'backend "{backend}"', f"unknown argument '{key}'{_suggest(key, allowed)}")
        return self.problems

    def body(self, body: dict, block: dict, address: str, path: str, top: str | None = None) -> None:
        """Check one block body against its schema; path is the nested block path ('' at the top)."""
        where = f"{address}: {path}" if path else address
        attributes: dict = block.get("attributes", {})
        blocks: dict = block.get("blocks", {})
        if block.get("recursive"):
            return  # a recursive schema that the generator did not expand again
        meta_attributes: set[str] = set()
        meta_blocks: set[str] = set()
        if top == "resource":
            meta_attributes, meta_blocks = RESOURCE_META_ATTRIBUTES, RESOURCE_META_BLOCKS
        elif top == "data":
            meta_attributes, meta_blocks = DATA_META_ATTRIBUTES, DATA_META_BLOCKS
        elif top == "provider":
            meta_attributes = PROVIDER_META
        counts: dict[str, int] = {}
        dynamic: set[str] = set()
        candidates = set(attributes) | set(blocks)
        for key, value in _keys(body):
            if _is_block_list(value):
                if key in meta_blocks:
                    if key == "lifecycle":
                        self.lifecycle(value, where, top or "resource")
                    continue
                if key == "dynamic" and "dynamic" not in blocks:
                    for label, dyn in _labelled1(value):
                        self.dynamic(label, dyn, blocks, address, path)
                        dynamic.add(label)
                    continue
                if key in blocks:
                    items = [v for v in value if _is_block(v)]
                    counts[key] = counts.get(key, 0) + len(items)
                    for item in items:
                        self.body(item, blocks[key], address, f"{path}.{key}" if path else key)
                elif key in attributes:
                    self.report(where, f"'{key}' is an attribute, not a block: write {key} = ...")
                else:
                    self.report(where, f"unknown block '{key}'{_suggest(key, candidates)}")
                continue
            if key in meta_attributes:
                continue
            if key in attributes:
                spec = attributes[key]
                if spec.get("computed") and not spec.get("optional") and not spec.get("required"):
                    self.report(where, f"'{key}' is computed, it cannot be set")
            elif key in blocks:
                self.report(where, f"'{key}' is a block, not an attribute: write {key} {{ ... }}")
            else:
                self.report(where, f"unknown attribute '{key}'{_suggest(key, candidates)}")
        for name, spec in sorted(attributes.items()):
            if spec.get("required") and (name not in body or _is_null(body[name])):
                self.report(where, f"missing required attribute '{name}'")
        for name, spec in sorted(blocks.items()):
            if name in dynamic:
                continue  # a dynamic block may produce any number of blocks
            n = counts.get(name, 0)
            low, high = spec.get("min_items", 0) or 0, spec.get("max_items")
            if n < low:
                if n == 0:
                    self.report(where, f"missing required block '{name}'")
                else:
                    self.report(where, f"block '{name}' appears {n} times, at least {low} required")
            if high is not None and n > high:
                self.report(where, f"block '{name}' appears {n} times, at most {high} allowed")

    def dynamic(self, label: str, dyn: dict, blocks: dict, address: str, path: str) -> None:
        where = f"{address}: {path}" if path else address
        if label not in blocks:
            self.report(where, f"dynamic block for unknown block '{label}'{_suggest(label, blocks)}")
            return
        for key, _value in _keys(dyn):
            if key not in DYNAMIC_ARGS:
                self.report(where, f"dynamic \"{label}\": unknown argument '{key}'{_suggest(key, DYNAMIC_ARGS)}")
        if "for_each" not in dyn:
            self.report(where, f"dynamic \"{label}\": missing required attribute 'for_each'")
        contents = [c for c in dyn.get("content", []) if _is_block(c)] if isinstance(dyn.get("content"), list) else []
        if len(contents) != 1:
            self.report(where, f'dynamic "{label}": needs exactly one content block, found {len(contents)}')
        for content in contents:
            self.body(content, blocks[label], address, f"{path}.{label}" if path else label)

    def lifecycle(self, value: list, where: str, kind: str) -> None:
        allowed = LIFECYCLE_ARGS.get(kind, LIFECYCLE_ARGS["resource"])
        for item in value:
            if not _is_block(item):
                continue
            for key, _v in _keys(item):
                if key not in allowed:
                    self.report(where, f"lifecycle: unknown argument '{key}'{_suggest(key, allowed)}")
