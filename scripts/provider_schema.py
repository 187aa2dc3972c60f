#!/usr/bin/env python3
"""Regenerate a trimmed Terraform provider schema from a prebuilt cdktf provider package.

The Terraform provider itself cannot be installed here, so `terraform validate` / `terraform providers
schema -json` are not available.  The npm packages `@cdktf/provider-<name>` are generated from exactly
that schema (for one pinned provider version) and ship it as jsii type information in their `.jsii`
assembly.  This script reads the assembly and writes the part of the schema our Terraform uses:

    .venv/bin/python scripts/provider_schema.py --package @cdktf/provider-google@16.12.1 --provider google \
        --scan terraform/gcp --scan tests/golden/terraform/gcp \
        --out tests/schemas/terraform/google-6.50.0.json

How the jsii maps back to the Terraform schema (see cdktf's provider-generator, resource-parser.ts):

* Each resource / data source is a class extending cdktf.TerraformResource / cdktf.TerraformDataSource
  whose docs say "Represents a {@link <registry url> <terraform type>}"; the provider is the class
  extending cdktf.TerraformProvider.  Their constructor takes a `*Config` struct.
* A struct property is one argument.  Its Terraform (snake_case) name is the anchor of the
  "Docs at Terraform Registry: {@link ...#<name> Class#<name>}" link (camelCase cannot be reversed
  reliably: enableK8SBetaApis is enable_k8s_beta_apis, reserved words get renamed: buildAttribute).
  The name is cross-checked against the compiled JavaScript shipped in the package, which still
  holds every snake_case name as a string.
* Nested blocks are properties whose summary is "<name> block." (cdktf writes that description for
  every block type and never for attributes) and whose type is another struct: a single struct for
  a block with max_items = 1 (or nesting mode "single"), an array of structs otherwise.
  A property that is not optional is required (for blocks: min_items >= 1).
* Computed-only (read-only) attributes are not in the Config struct: they are getters on the
  resource class (or on the block's `*OutputReference` class) without a matching struct property.

What cannot be recovered from the jsii (see docs/notes/provider-schema.md): "optional + computed" for
settable attributes (reported as computed = false), exact min_items > 1 / max_items > 1, the types of
attribute values, ConflictsWith / ExactlyOneOf / AtLeastOneOf and value validation.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shlex
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BASES = {
    "cdktf.TerraformResource": "resources",
    "cdktf.TerraformDataSource": "data_sources",
    "cdktf.TerraformProvider": "provider",
}
# "Represents a {@link https://registry.terraform.io/providers/hashicorp/google/6.50.0/docs/resources/x google_x}"
CLASS_LINK = re.compile(
    r"\{@link (?P<url>https://registry\.terraform\.io/providers/(?P<ns>[^/\s]+)/(?P<name>[^/\s]+)/(?P<version>[^/\s]+)"
    r"/docs(?:/(?P<kind>resources|data-sources)/[^\s}#]+)?)\s+(?P<text>[^}\s]+)\}"
)
# "Docs at Terraform Registry: {@link https://...#node_config ContainerCluster#node_config}"
PROPERTY_LINK = re.compile(r"\{@link \S+#(?P<anchor>[A-Za-z0-9_]+) [A-Za-z0-9_]+#(?P<text>[A-Za-z0-9_]+)\}")
BLOCK_SUMMARY = re.compile(r"^(?P<name>[A-Za-z0-9_]+) block\.?$")
TYPE_USE = re.compile(r'^\s*(?P<kind>resource|data)\s+"?(?P<type>[A-Za-z][A-Za-z0-9_-]*)"?\s', re.M)
META_CLASS_PROPERTIES = {"tfResourceType", "internalValue"}


def log(message: str) -> None:
    print(message, file=sys.stderr)


# --------------------------------------------------------------------------------------------------
# fetching and reading the package


def fetch_package(spec: str, workdir: Path) -> Path:
    """`npm pack` the package into workdir (never into the repository) and unpack it; return its root."""
    log(f"npm pack {spec} ...")
    out = subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(workdir)],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    filename = json.loads(out)[0]["filename"]
    # npm names scoped tarballs "scope-name-version.tgz"; older npm versions report "@scope/name-..."
    tarball = workdir / filename.replace("@", "").replace("/", "-")
    if not tarball.exists():
        tarball = next(workdir.glob("*.tgz"))
    return unpack(tarball, workdir / "unpacked")


def unpack(tarball: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # pragma: no cover - Python without PEP 706
            for member in tar.getmembers():
                if member.name.startswith("/") or ".." in Path(member.name).parts:
                    raise RuntimeError(f"unsafe path in {tarball}: {member.name}")
            tar.extractall(dest)
    roots = [p for p in dest.iterdir() if p.is_dir()]
    return roots[0] if len(roots) == 1 else dest


def read_assembly(package_dir: Path) -> dict:
    """Read the jsii assembly, following a compressed-file redirect if the package uses one."""
    path = package_dir / ".jsii"
    if not path.exists() and (package_dir / ".jsii.gz").exists():
        return json.loads(gzip.decompress((package_dir / ".jsii.gz").read_bytes()))
    data = json.loads(path.read_bytes())
    # jsii >= 1.5x may write {"schema": "jsii/file-redirect", "compression": "gzip", "filename": ".jsii.gz"}
    if data.get("schema") == "jsii/file-redirect":
        target = package_dir / data["filename"]
        raw = target.read_bytes()
        if data.get("compression") == "gzip":
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    if "types" not in data:
        raise RuntimeError(f"{path} is not a jsii assembly (no 'types')")
    return data


# --------------------------------------------------------------------------------------------------
# the compiled JavaScript: snake_case names of read-only attributes, and a cross-check of the anchors


class JsNames:
    """camelCase getter -> snake_case Terraform name, per generated class, read from the compiled JS."""

    CLASS = re.compile(r"^class (\w+) extends ", re.M)
    STORAGE = re.compile(r"this\._(\w+) = new [\w.]+\(this, \"(\w+)\"")
    GETTER_ATTR = re.compile(
        r"get (\w+)\(\) \{\s*return [^;{}]*?this\.(?:get\w+Attribute|interpolationForAttribute)\('(\w+)'\)"
    )
    GETTER_STORAGE = re.compile(r"get (\w+)\(\) \{\s*return this\._(\w+);")

    def __init__(self, package_dir: Path):
        self.package_dir = package_dir
        self._files: dict[str, dict[str, dict[str, str]]] = {}

    def for_class(self, jsii_type: dict) -> dict[str, str]:
        filename = jsii_type.get("locationInModule", {}).get("filename", "")
        if not filename.startswith("src/") or not filename.endswith(".ts"):
            return {}
        js = "lib/" + filename[len("src/") : -len(".ts")] + ".js"
        if js not in self._files:
            self._files[js] = self._parse(self.package_dir / js)
        return self._files[js].get(jsii_type["name"], {})

    def _parse(self, path: Path) -> dict[str, dict[str, str]]:
        if not path.exists():
            return {}
        text = path.read_text(encoding="utf-8", errors="replace")
        starts = list(self.CLASS.finditer(text))
        classes: dict[str, dict[str, str]] = {}
        for i, match in enumerate(starts):
            body = text[match.start() : starts[i + 1].start() if i + 1 < len(starts) else len(text)]
            storage = dict(self.STORAGE.findall(body))
            names = dict(self.GETTER_ATTR.findall(body))
            for getter, field in self.GETTER_STORAGE.findall(body):
                if field in storage and getter not in names:
                    names[getter] = storage[field]
            classes[match.group(1)] = names
        return classes


def guess_snake(camel: str) -> str:
    """Last resort only: camelCase -> snake_case as codemaker would have produced the camelCase."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", camel).lower()


# --------------------------------------------------------------------------------------------------
# jsii -> schema


class Converter:
    def __init__(self, assembly: dict, package_dir: Path):
        self.assembly = assembly
        self.types: dict[str, dict] = assembly["types"]
        self.prefix = assembly["name"] + "."
        self.js = JsNames(package_dir)
        self.warnings: list[str] = []
        self.anchor_checked = 0
        self.registry: dict[str, str] = {}

    # ---- helpers

    def struct_fqn(self, type_ref: dict) -> tuple[str | None, str]:
        """(struct fqn, 'single'|'list'|'map') if the type is a struct of this assembly (or a collection of one)."""
        if "fqn" in type_ref:
            fqn = type_ref["fqn"]
            if fqn.startswith(self.prefix) and self.types.get(fqn, {}).get("datatype"):
                return fqn, "single"
            return None, ""
        if "union" in type_ref:
            for member in type_ref["union"]["types"]:
                fqn, nesting = self.struct_fqn(member)
                if fqn:
                    return fqn, nesting
            return None, ""
        if "collection" in type_ref:
            fqn, _ = self.struct_fqn(type_ref["collection"]["elementtype"])
            if fqn:
                return fqn, "map" if type_ref["collection"]["kind"] == "map" else "list"
        return None, ""

    def struct_properties(self, fqn: str) -> list[dict]:
        """A struct's properties, including those of structs it extends within this assembly."""
        struct = self.types[fqn]
        props = list(struct.get("properties", []))
        for parent in struct.get("interfaces", []):
            if parent in self.types:
                props.extend(self.struct_properties(parent))
        return props

    @staticmethod
    def docs_text(docs: dict) -> str:
        parts = [docs.get("summary", ""), docs.get("remarks", "")]
        parts.extend(str(v) for v in (docs.get("custom") or {}).values())
        return "\n".join(parts)

    def terraform_name(self, owner: str, prop: dict, js_names: dict[str, str]) -> str:
        anchors = {(m["anchor"], m["text"]) for m in PROPERTY_LINK.finditer(self.docs_text(prop.get("docs", {})))}
        names = {a for a, t in anchors if a == t} or {a for a, _ in anchors}
        js_name = js_names.get(prop["name"])
        if len(names) == 1:
            name = names.pop()
            if js_name is not None:
                self.anchor_checked += 1
                if js_name != name:
                    self.warnings.append(f"{owner}.{prop['name']}: docs anchor '{name}' but the JS uses '{js_name}'")
            return name
        if js_name:
            return js_name
        name = guess_snake(prop["name"])
        self.warnings.append(f"{owner}.{prop['name']}: no docs anchor nor JS name, guessed '{name}'")
        return name

    # ---- blocks

    def block(self, struct: str, getters_class: str | None, stack: tuple[str, ...] = ()) -> dict:
        """Schema of a block body from its config struct and the class holding its getters."""
        attributes: dict[str, dict] = {}
        blocks: dict[str, dict] = {}
        getters = self.types.get(getters_class or "", {})
        js_names = self.js.for_class(getters) if getters else {}
        config_names = set()
        for prop in self.struct_properties(struct):
            config_names.add(prop["name"])
            name = self.terraform_name(struct, prop, js_names)
            optional = bool(prop.get("optional"))
            nested, nesting = self.struct_fqn(prop["type"])
            summary = prop.get("docs", {}).get("summary", "")
            block_summary = BLOCK_SUMMARY.match(summary.strip())
            if nested and block_summary:
                if nesting == "map":
                    self.warnings.append(f"{struct}.{prop['name']}: map-nested block, labels are not checked")
                if nested in stack:  # recursive schema (cdktf reuses the struct): do not expand again
                    body = {"attributes": {}, "blocks": {}, "recursive": True}
                else:
                    body = self.block(nested, self._output_reference(nested), (*stack, struct))
                blocks[name] = {
                    "min_items": 0 if optional else 1,
                    "max_items": 1 if nesting == "single" else None,
                    **body,
                }
            else:  # includes object-typed attributes (nested attributes of plugin-framework providers)
                attributes[name] = {"required": not optional, "optional": optional, "computed": False}
        # read-only attributes: getters without a config property
        for prop in getters.get("properties", []):
            camel = prop["name"]
            if prop.get("static") or camel in config_names or camel in META_CLASS_PROPERTIES:
                continue
            if camel.endswith("Input") and camel[: -len("Input")] in config_names:
                continue
            name = js_names.get(camel)
            if name is None:
                name = guess_snake(camel)
                self.warnings.append(f"{getters_class}.{camel}: no JS name for a computed attribute, guessed '{name}'")
            if name in attributes or name in blocks:
                continue
            attributes[name] = {"required": False, "optional": False, "computed": True}
        return {"attributes": dict(sorted(attributes.items())), "blocks": dict(sorted(blocks.items()))}

    def _output_reference(self, struct: str) -> str | None:
        candidate = struct + "OutputReference"
        return candidate if candidate in self.types else None

    # ---- entry points

    def entries(self) -> dict[str, dict[str, str]]:
        """{"resources": {tf_type: class fqn}, "data_sources": {...}, "provider": {name: fqn}} plus meta."""
        found: dict[str, dict[str, str]] = {"resources": {}, "data_sources": {}, "provider": {}}
        for fqn, jtype in sorted(self.types.items()):
            section = BASES.get(jtype.get("base", ""))
            if jtype.get("kind") != "class" or not section:
                continue
            match = CLASS_LINK.search(jtype.get("docs", {}).get("summary", ""))
            if not match:
                self.warnings.append(f"{fqn}: no registry link in the class docs, skipped")
                continue
            self.registry.setdefault("source", f"registry.terraform.io/{match['ns']}/{match['name']}")
            self.registry.setdefault("version", match["version"])
            if section == "provider":
                found["provider"][match["name"]] = fqn
            else:
                expected = "resources" if match["kind"] == "resources" else "data-sources"
                if (section == "resources") != (expected == "resources"):
                    self.warnings.append(f"{fqn}: base class and docs link disagree, following the base class")
                found[section][match["text"]] = fqn
        return found

    def config_struct(self, class_fqn: str) -> str:
        for param in self.types[class_fqn].get("initializer", {}).get("parameters", []):
            if param["name"] == "config":
                return param["type"]["fqn"]
        raise RuntimeError(f"{class_fqn}: no config parameter")

    def entry_schema(self, class_fqn: str) -> dict:
        return self.block(self.config_struct(class_fqn), class_fqn)


# --------------------------------------------------------------------------------------------------


def scan_types(dirs: list[Path], provider: str) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {"resources": set(), "data_sources": set()}
    prefix = provider + "_"
    for root in dirs:
        if not root.exists():
            log(f"warning: scan dir {root} does not exist")
            continue
        for path in sorted(root.rglob("*")):
            if not path.is_file() or not (path.name.endswith(".tf") or path.name.endswith(".tf.j2")):
                continue
            for match in TYPE_USE.finditer(path.read_text(encoding="utf-8", errors="replace")):
                if match["type"].startswith(prefix):
                    used["resources" if match["kind"] == "resource" else "data_sources"].add(match["type"])
    return used


def regenerate_command(args: argparse.Namespace) -> str:
    """The canonical command line (recorded in the JSON, so it is the same wherever it was run)."""
    parts = [".venv/bin/python", "scripts/provider_schema.py", "--package", args.package, "--provider", args.provider]
    for scan in args.scan:
        parts += ["--scan", scan]
    for spec in args.type:
        parts += ["--type", spec]
    parts += ["--out", args.out]
    return " ".join(shlex.quote(p) for p in parts)


def build(args: argparse.Namespace, package_dir: Path) -> dict:
    assembly = read_assembly(package_dir)
    conv = Converter(assembly, package_dir)
    entries = conv.entries()
    used = scan_types([Path(d) for d in args.scan], args.provider)
    for spec in args.type:
        kind, _, name = spec.rpartition(".")
        if kind in ("resource", "data"):
            used["resources" if kind == "resource" else "data_sources"].add(name)
        elif kind:
            raise SystemExit(f"--type {spec}: use NAME, resource.NAME or data.NAME")
        else:  # plain name: the resource if there is one, else the data source
            data_only = name not in entries["resources"] and name in entries["data_sources"]
            used["data_sources" if data_only else "resources"].add(name)
    out: dict = {
        "provider": conv.registry.get("source", ""),
        "version": conv.registry.get("version", ""),
        "package": f"{assembly['name']}@{assembly['version']}",
        "generated_by": regenerate_command(args),
        "resources": {},
        "data_sources": {},
    }
    missing = []
    for section in ("resources", "data_sources"):
        for name in sorted(used[section]):
            if name not in entries[section]:
                missing.append(f"{section}: {name}")
                continue
            out[section][name] = conv.entry_schema(entries[section][name])
    if args.provider in entries["provider"]:
        out["provider_config"] = conv.entry_schema(entries["provider"][args.provider])
    elif entries["provider"]:
        out["provider_config"] = conv.entry_schema(next(iter(entries["provider"].values())))
    for warning in conv.warnings:
        log(f"warning: {warning}")
    log(
        f"{len(entries['resources'])} resources and {len(entries['data_sources'])} data sources in "
        f"{out['package']} (provider {out['provider']} {out['version']}); kept {len(out['resources'])} + "
        f"{len(out['data_sources'])}; {conv.anchor_checked} docs anchors cross-checked against the JS"
    )
    if missing:
        log("NOT in the provider schema (typo, or a google-beta-only type?): " + ", ".join(missing))
        if args.strict:
            raise SystemExit(1)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", required=True, help="npm spec, e.g. @cdktf/provider-google@16.12.1")
    parser.add_argument("--provider", required=True, help="provider local name and type prefix, e.g. google")
    parser.add_argument("--scan", action="append", default=[], help="dir with .tf / .tf.j2 files (repeatable)")
    parser.add_argument(
        "--type", action="append", default=[], help="extra type to keep: NAME, resource.NAME or data.NAME (repeatable)"
    )
    parser.add_argument("--out", required=True, help="where to write the JSON")
    parser.add_argument("--package-dir", help="use an already unpacked package instead of `npm pack` (offline)")
    parser.add_argument("--strict", action="store_true", help="fail if a scanned type is not in the provider")
    args = parser.parse_args(argv)
    if args.package_dir:
        schema = build(args, Path(args.package_dir))
    else:
        with tempfile.TemporaryDirectory(prefix="provider-schema-") as tmp:
            schema = build(args, fetch_package(args.package, Path(tmp)))
    expected = args.package.rpartition("@")[2]
    if args.package.count("@") > 1 and schema["package"].rpartition("@")[2] != expected:
        raise SystemExit(f"asked for {args.package} but the assembly is {schema['package']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    log(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
