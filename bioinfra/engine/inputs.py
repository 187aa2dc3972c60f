"""The input types of pipeline.yaml: how a value of each is checked, recorded and staged.

One checker per type, reused by every pipeline (the FASTQ/FASTA readers of bioinfra.core.inputs,
the sample-sheet reader, the LoadData check). A checked input says:
- the value its Workflow parameter gets (a workspace-relative path for files, the text otherwise);
- what to stage: files linked (locally) or uploaded (cluster) into the content-addressed workspace,
  or read in place by the cluster's stage-in step (s3:// on aws, gs:// on gcp);
- its manifest record and the fingerprint `--resume` compares.

Workspace names are chosen here, never the user's file names (which may hold anything).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Optional, Union

from bioinfra.core import inputs as facts_mod
from bioinfra.engine.spec import FILE_TYPES, FOLDER_TYPES, InputSpec, ModeSpec, PipelineSpec
from bioinfra.errors import InputError
from bioinfra.files import sha256_file

Progress = facts_mod.Progress
_FASTQ_SUFFIX_RE = re.compile(r"(_R?[12](_001)?)?\.(fastq|fq)(\.gz)?$", re.IGNORECASE)
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
# Characters refused in an object URL: it becomes an rclone path in the stage-in step's input.
_KEY_REFUSED_RE = re.compile(r"[\x00-\x20\x7f'\"`$\\{}]")

def remote_schemes() -> dict[str, str]:
    """URL scheme -> the target whose pods read such objects in place (target.remote_schemes)."""
    from bioinfra.targets import TARGETS

    return {scheme: name for name, target in TARGETS.items() for scheme in target.remote_schemes}
DEFAULT_STRING_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class RemoteInput:
    url: str
    bucket: str
    key: str

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    def rclone(self) -> str:
        """rclone's on-the-fly remote: credentials from the pod (IRSA / Workload Identity)."""
        if self.scheme == "s3":
            return f":s3,provider=AWS,env_auth=true:{self.bucket}/{self.key}"
        return f":gcs,env_auth=true,bucket_policy_only=true:{self.bucket}/{self.key}"


def parse_remote(value: str, flag: str, target: str) -> Optional[RemoteInput]:
    """An s3:// or gs:// URL read in place (None: a local path)."""
    match = re.fullmatch(r"([a-z0-9]+)://([^/]+)/(.+)", value, flags=re.DOTALL)
    if not match:
        if "://" in value:
            raise InputError(f"{flag} {value!r}: only s3://BUCKET/KEY (aws) and gs://BUCKET/KEY (gcp) are read in place")
        return None
    scheme, bucket, key = match.groups()
    if _KEY_REFUSED_RE.search(value) or any(part in (".", "..") for part in key.split("/")):
        raise InputError(f"{flag} {value!r}: object URLs with spaces, control characters, quotes, backslashes, "
                         "$, backticks, braces or '.'/'..' path parts are not supported",
                         hint="copy or rename the object, or download it and give the local file")
    if not _BUCKET_RE.fullmatch(bucket):
        raise InputError(f"{flag} {value!r}: {bucket!r} is not a bucket name (lower-case letters, digits, '.', '-', '_')")
    readers = remote_schemes()
    if readers.get(scheme) != target:
        raise InputError(
            f"{flag} {value}: {scheme}:// inputs are read in place only on target "
            f"{readers.get(scheme, 'none')}, not {target}",
            hint="give a local file instead: bioinfra uploads it into the cluster's workspace",
        )
    return RemoteInput(value, bucket, key)


@dataclass
class StagedFile:
    """One file (or folder) a run needs in the workspace."""

    role: str
    workspace_path: str  # workspace-relative
    source: Optional[Path] = None  # a local file or folder
    sha256: Optional[str] = None
    bytes: Optional[int] = None
    remote: Optional[RemoteInput] = None  # read in place by the cluster's stage-in step
    copy: bool = False  # locally: a real copy (a reference is indexed beside it), else a link
    in_run: bool = False  # workspace_path is relative to the run folder (written per run)
    text: Optional[str] = None  # generated content (e.g. the normalised sample sheet)

    def as_record(self) -> dict[str, Any]:
        return {"role": self.role, "source": str(self.remote.url if self.remote else self.source or ""),
                "workspace_path": self.workspace_path, "sha256": self.sha256, "bytes": self.bytes,
                "remote": self.remote.url if self.remote else None}


@dataclass
class CheckedInput:
    spec: InputSpec
    value: Any  # str | int | bool | Path | RemoteInput | None
    parameter: str = ""  # the Workflow parameter's value ("{run_dir}" is filled at render)
    staged: list[StagedFile] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)
    summary: str = ""  # "R1 a_R1.fq.gz (6,000 reads)"
    items: Optional[int] = None  # how many samples / image sets it holds (fan-out width)
    reads: int = 0  # read pairs (estimate)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> Any:
        """What --resume compares: the content digest, or for a FASTQ checked in bounded time its
        quick fingerprint (the full digest is compared during the run: verify_inputs)."""
        if self.record.get("quick_fingerprint"):  # kept once the run has added the SHA-256
            return "quick:" + self.record["quick_fingerprint"]
        return self.record.get("sha256", self.record.get("value"))

    @property
    def unverified(self) -> list[Union[facts_mod.FastqFacts, facts_mod.FastaFacts]]:
        """FASTQs and references checked in bounded time only, to be read whole during the run."""
        if "facts" in self.extra:
            facts = self.extra["facts"]
            return [facts] if isinstance(facts, (facts_mod.FastqFacts, facts_mod.FastaFacts)) and \
                not facts.complete else []
        return [f for s in self.extra.get("samples", []) for f in (s.r1, s.r2) if not f.complete]


# -- values ---------------------------------------------------------------------------------------

Given = dict[str, Any]  # input name -> the raw value from the command line (str/int/bool)


def sample_name_from(name: str) -> str:
    stem = _FASTQ_SUFFIX_RE.sub("", name)
    return stem or "sample"


def resolve_values(spec: PipelineSpec, mode: ModeSpec, given: Given) -> dict[str, Any]:
    """Every input of the mode with its value: given, else its default. Inputs whose default is the
    bundled sample form one group: all bundled when none of them is given; else the group's inputs
    other than plain files (e.g. a truth set) must all be given (a user's R1 is never paired with
    the bundled R2)."""
    from bioinfra.sampledata import bundled

    inputs = {n: spec.input(n) for n in mode.inputs}
    for n, v in given.items():
        if n not in inputs and v is not None:
            raise InputError(f"{spec.input(n).option}: not with this run's inputs "
                             f"({', '.join(i.option for i in inputs.values())})")
    group = [n for n, i in inputs.items() if isinstance(i.default, str) and i.default.startswith("bundled:")]
    use_bundled = not any(given.get(n) is not None for n in group)
    values: dict[str, Any] = {}
    missing = []
    for n, i in inputs.items():
        v = given.get(n)
        if v is None and n in group:
            v = _bundled(str(i.default)[len("bundled:"):], bundled()) if use_bundled else None
            if v is None and i.type != "file":
                missing.append(i.option)
        elif v is None:
            v = i.default
            if v is not None and i.is_path:  # example data beside pipeline.yaml
                v = spec.folder / str(v)
            if v is None and i.required:
                missing.append(i.option)
        values[n] = v
    if missing:
        together = [inputs[n].option for n in group if inputs[n].type != "file"]
        why = (f": give {', '.join(together)} together, or none of them for the bundled sample"
               if together and set(missing) <= set(together) else "")
        raise InputError(f"missing {', '.join(missing)}{why}", hint=f"`bioinfra run {spec.name} --help` lists its inputs")
    for n, i in inputs.items():  # derived strings: a sample name from its R1, a title from a file's name
        if not i.derive or given.get(n) is not None:
            continue
        kind, _, of = i.derive.partition(":")
        source = given.get(of)
        if source is None:
            if values[n] is None and values.get(of) is not None:  # the bundled sample's own name
                source = values[of]
            else:
                continue  # the input's default (e.g. the bundled sample's title)
        text = source.key if isinstance(source, RemoteInput) else str(source)
        name = Path(text.split("://", 1)[-1].rstrip("/")).name
        if kind == "sample_name":
            values[n] = sample_name_from(name)
        else:
            from bioinfra.pipelines import default_title

            values[n] = default_title(Path(name).stem, str(i.default or spec.name))
    return values


def _bundled(key: str, data: Any) -> Any:
    from bioinfra.sampledata import DATA_DIR

    screen = DATA_DIR / "cellprofiler"
    return {
        "r1": data.r1, "r2": data.r2, "reference": data.reference, "planted_snps": data.planted_snps,
        "sample": data.sample, "cellprofiler_images": screen / "images",
        "cellprofiler_data_file": screen / "images" / "images.csv", "cellprofiler_illum": screen / "illum.cppipe",
        "cellprofiler_analysis": screen / "analysis.cppipe",
    }[key]


# -- checks ---------------------------------------------------------------------------------------


def _path_or_remote(i: InputSpec, value: Any, target: str) -> Union[Path, RemoteInput]:
    if isinstance(value, Path):
        return value
    remote = parse_remote(str(value), i.option, target)
    return remote if remote is not None else Path(str(value)).expanduser()


def check_scalar(i: InputSpec, value: Any, *, verbatim: bool = False) -> CheckedInput:
    """`verbatim`: a string is taken as given (a plain Workflow file's parameter, as `argo submit -p`
    takes it: it reaches the Workflow only as the parameter's value)."""
    if value is None:
        return CheckedInput(i, None, "", record={"value": None})
    if i.type == "bool":
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise InputError(f"{i.option} {facts_mod.shown(value)}: not true or false")
            value = value.lower() in ("true", "1", "yes")
        return CheckedInput(i, bool(value), "true" if value else "false", record={"value": bool(value)})
    if i.type == "int":
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise InputError(f"{i.option} {facts_mod.shown(str(value))}: not a whole number") from None
        if (i.min is not None and number < i.min) or (i.max is not None and number > i.max):
            bounds = f"at least {i.min}" if i.max is None else (
                f"at most {i.max}" if i.min is None else f"between {i.min} and {i.max}")
            raise InputError(f"{i.option} must be {bounds} (got {number})")
        return CheckedInput(i, number, str(number), record={"value": number})
    text = str(value)
    if verbatim:
        return CheckedInput(i, text, text, record={"value": text})
    pattern = re.compile(i.pattern) if i.pattern else DEFAULT_STRING_RE
    if not pattern.fullmatch(text):
        rule = f"it must match {i.pattern}" if i.pattern else \
            "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        what = "sample name" if (i.derive or "").startswith("sample_name:") else i.option
        raise InputError(f"{what} {facts_mod.shown(text)} is not allowed: {rule}",
                         hint=f"{i.option}: {i.help}")
    return CheckedInput(i, text, text, record={"value": text})


def _mate_label(spec: PipelineSpec, i: InputSpec) -> str:
    """R1 or R2: of two mates, the one declared first is read 1 (either may name the other)."""
    names = [o.name for o in spec.inputs]
    partner = i.mate or next((o.name for o in spec.inputs if o.mate == i.name), None)
    if partner is None:
        return i.name
    return "R1" if names.index(i.name) < names.index(partner) else "R2"


def _stem_for(spec: PipelineSpec, i: InputSpec, values: dict[str, Any]) -> Optional[str]:
    """The sample name a FASTQ is staged under: the string input derived from it (or its mate)."""
    related = {i.name, i.mate or ""} | {o.name for o in spec.inputs if o.mate == i.name}
    for o in spec.inputs:
        if o.derive and o.derive.split(":", 1)[1] in related and isinstance(values.get(o.name), str):
            return values[o.name]
    return None


def _fastq(spec: PipelineSpec, i: InputSpec, ref: Union[Path, RemoteInput], values: dict[str, Any],
           progress: Progress, role: Optional[str] = None) -> CheckedInput:
    mate = _mate_label(spec, i)
    stem = _stem_for(spec, i, values)
    label = role or (f"{mate} file" if mate in ("R1", "R2") else i.option)
    if isinstance(ref, RemoteInput):
        gz = ".gz" if ref.key.endswith(".gz") else ""
        name = f"{stem or sample_name_from(Path(ref.key).name)}_{mate}.fastq{gz}"
        path = f"inputs/remote-{_remote_id(ref.url)}/{name}"
        return CheckedInput(i, ref, path, [StagedFile(i.name, path, remote=ref)], {"url": ref.url},
                            f"{mate} {ref.url} (read in place)")
    facts = facts_mod.check_fastq(ref, label, progress)
    name = f"{stem or sample_name_from(ref.name)}_{mate}.fastq" + (".gz" if facts.gzipped else "")
    path = f"inputs/{facts.key}/{name}"
    counted = f"{facts.reads:,} reads" if facts.reads is not None else f"{facts.bytes:,} bytes; read whole during the run"
    return CheckedInput(i, ref, path, [StagedFile(i.name, path, ref, facts.sha256, facts.bytes)],
                        {"path": str(ref.resolve()), **fastq_record(facts)},
                        f"{mate} {ref} ({counted})", reads=facts.reads or 0, extra={"facts": facts})


def fastq_record(facts: facts_mod.FastqFacts) -> dict[str, Any]:
    """A FASTQ's manifest record, saying which kind of digest it holds: "sha256" (read whole), or
    "quick" (quick_fingerprint, before the run; replaced by the SHA-256 once the run has read it)."""
    if facts.complete:
        return {"digest": "sha256", "sha256": facts.sha256, "bytes": facts.bytes, "reads": facts.reads}
    return {"digest": "quick", "quick_fingerprint": facts.fingerprint, "sha256": None, "bytes": facts.bytes,
            "reads": None}


def _fasta(i: InputSpec, ref: Union[Path, RemoteInput], progress: Progress) -> CheckedInput:
    if isinstance(ref, RemoteInput):
        gz = ".gz" if ref.key.endswith(".gz") else ""
        path = f"references/remote-{_remote_id(ref.url)}/reference.fa{gz}"
        return CheckedInput(i, ref, path, [StagedFile(i.name, path, remote=ref)], {"url": ref.url},
                            f"{i.name} {ref.url} (read in place)")
    facts = facts_mod.check_fasta(ref, i.name if i.name == "reference" else i.option, progress)
    path = f"references/{facts.key}/reference.fa" + (".gz" if facts.gzipped else "")
    size = f"{facts.length:,} bp" if facts.complete else f"{facts.bytes / 1e6:,.0f} MB, read whole during the run"
    return CheckedInput(i, ref, path, [StagedFile(i.name, path, ref, facts.sha256, facts.bytes, copy=True)],
                        {"path": str(ref.resolve()), **fasta_record(facts)},
                        f"{i.name} {ref} ({size})", extra={"facts": facts})


def fasta_record(facts: facts_mod.FastaFacts) -> dict[str, Any]:
    """A reference's manifest record, as fastq_record: "sha256" (read whole) or "quick"."""
    if facts.complete:
        return {"sha256": facts.sha256, "bytes": facts.bytes, "length": facts.length}
    return {"digest": "quick", "quick_fingerprint": facts.fingerprint, "sha256": None, "bytes": facts.bytes,
            "length": None}


def _remote_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _must_be_file(i: InputSpec, path: Path) -> None:
    if not path.exists():
        raise InputError(f"{i.option} {path}: no such file")
    if not path.is_file():
        raise InputError(f"{i.option} {path}: not a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{i.option} {path}: not readable (permissions)")


def _file(i: InputSpec, ref: Union[Path, RemoteInput]) -> CheckedInput:
    suffix = "".join(Path(ref.key if isinstance(ref, RemoteInput) else ref.name).suffixes[-2:])
    suffix = suffix if re.fullmatch(r"(\.[A-Za-z0-9]{1,10}){0,2}", suffix) else ""
    name = i.stage_as or f"{i.name}{suffix}"
    if isinstance(ref, RemoteInput):
        path = f"inputs/remote-{_remote_id(ref.url)}/{name}"
        return CheckedInput(i, ref, path, [StagedFile(i.name, path, remote=ref)], {"url": ref.url},
                            f"{i.name} {ref.url} (read in place)")
    _must_be_file(i, ref)
    if i.header is not None:
        with open(ref, encoding="utf-8", errors="replace") as fh:
            first = fh.read(len(i.header))
        if first != i.header:
            raise InputError(f"{i.option} {ref}: expected a file starting with {i.header!r}", hint=i.help)
    digest = sha256_file(ref)
    size = ref.stat().st_size
    path = f"inputs/{digest[:16]}/{name}"
    return CheckedInput(i, ref, path, [StagedFile(i.name, path, ref, digest, size, copy=True)],
                        {"path": str(ref.resolve()), "sha256": digest, "bytes": size},
                        f"{i.name} {ref} ({size:,} bytes)")


def folder_digest(folder: Path, names: Optional[list[str]] = None) -> tuple[str, list[str], int]:
    """A folder's identity: SHA-256 over its files' relative names and contents (only `names` when
    given). Returns (digest, names, bytes)."""
    if names is None:
        names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    size = 0
    for name in names:
        path = folder / name
        digest.update(name.encode() + b"\0" + sha256_file(path).encode() + b"\n")
        size += path.stat().st_size
    return digest.hexdigest(), names, size


def _folder(i: InputSpec, ref: Union[Path, RemoteInput], names: Optional[list[str]] = None) -> CheckedInput:
    leaf = "images" if i.type == "image_folder" else i.name
    if isinstance(ref, RemoteInput):
        if not ref.url.endswith("/"):
            raise InputError(f"{i.option} {ref.url}: a folder is a prefix ending in /", hint=f"use {ref.url}/")
        path = f"inputs/remote-{_remote_id(ref.url)}/{leaf}"
        return CheckedInput(i, ref, path, [StagedFile(i.name, path, remote=ref)], {"url": ref.url},
                            f"{i.name} {ref.url} (read in place)")
    if not ref.is_dir():
        raise InputError(f"{i.option} {ref}: no such folder")
    digest, names, size = folder_digest(ref, names)
    path = f"inputs/{digest[:16]}/{leaf}"
    return CheckedInput(i, ref, path, [StagedFile(i.name, path, ref, digest, size)],
                        {"path": str(ref.resolve()), "sha256": digest, "files": len(names), "bytes": size},
                        f"{i.name} {ref} ({len(names):,} files)", extra={"names": names})


# -- sample sheets and LoadData files ---------------------------------------------------------------


def _sheet(i: InputSpec, ref: Union[Path, RemoteInput], progress: Progress, check_files: bool = True
           ) -> CheckedInput:
    from bioinfra.engine.sheets import check_samples, normalised_sheet, read_sheet

    if isinstance(ref, RemoteInput):
        raise InputError(f"{i.option} {ref.url}: a sample sheet is a local file (its FASTQs may be anywhere local)")
    sheet = read_sheet(ref, i.option)
    if not check_files:  # `render`: the sheet's shape only; the Workflow names the sheet, not its rows
        return CheckedInput(i, ref, "{run_dir}/sheet.tsv", [], {"path": str(sheet.path.resolve()),
                                                               "sha256": sheet.sha256, "samples": len(sheet.rows)},
                            f"{len(sheet.rows)} samples (sheet {ref}; FASTQs not read)", items=len(sheet.rows),
                            extra={"sheet": sheet})
    samples = check_samples(sheet, progress)
    staged = []
    for s in samples:
        for mate, facts in (("R1", s.r1), ("R2", s.r2)):
            staged.append(StagedFile(f"{s.row.sample} {mate.lower()}", s.workspace_fastq(mate), facts.path,
                                     facts.sha256, facts.bytes))
    text = normalised_sheet(samples)
    staged.append(StagedFile(i.name, "sheet.tsv", text=text, in_run=True,
                             sha256=hashlib.sha256(text.encode()).hexdigest(), bytes=len(text.encode())))
    reads = sum(s.r1.reads or 0 for s in samples)
    later = sum(1 for s in samples if not s.r1.complete)
    record = {"path": str(sheet.path.resolve()), "sha256": sheet.sha256, "samples": len(samples),
              "inputs": {s.row.sample: {"r1": {"path": str(s.r1.path.resolve()), **fastq_record(s.r1)},
                                        "r2": {"path": str(s.r2.path.resolve()), **fastq_record(s.r2)}}
                         for s in samples}}
    pairs = f"{reads:,} read pairs" + (f" (and {later} large sample(s) counted during the run)" if later else "")
    return CheckedInput(i, ref, "{run_dir}/sheet.tsv", staged, record,
                        f"{len(samples)} samples, {pairs} (sheet {ref})", items=len(samples), reads=reads,
                        extra={"sheet": sheet, "samples": samples})


@cache
def loaddata_module() -> ModuleType:
    """The LoadData reader of the cellprofiler pipeline's own plan step, imported so that a data
    file is checked here exactly as that step will read it."""
    from bioinfra.engine.spec import builtin_root

    path = builtin_root() / "cellprofiler" / "plan_batches.py"
    loader_spec = importlib.util.spec_from_file_location("bioinfra_plan_batches", path)
    assert loader_spec and loader_spec.loader
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    return module


def _data_file(spec: PipelineSpec, i: InputSpec, ref: Union[Path, RemoteInput], values: dict[str, Any],
               target: str) -> tuple[CheckedInput, Optional[list[str]]]:
    """A LoadData CSV: read as the plan step reads it; every image it names must be in the image
    folder input (checked here for a local folder, the first one for a remote one)."""
    if isinstance(ref, RemoteInput):
        raise InputError(f"{i.option} {ref.url}: the data file is a local file (the images may be remote)")
    _must_be_file(i, ref)
    plan = loaddata_module()
    try:
        header, rows = plan.read_data_file(str(ref))
    except plan.PlanError as exc:
        raise InputError(f"{i.option} {exc}") from None
    images_value = values.get(i.images or "")
    images = _path_or_remote(spec.input(i.images or ""), images_value, target) if images_value is not None else None
    names = sorted({row[c] for row in rows for c in header if c.startswith("FileName_") and row[c]})
    if isinstance(images, Path):
        if not images.is_dir():
            raise InputError(f"{spec.input(i.images or '').option} {images}: no such folder")
        missing = plan.missing_images(rows, str(images))
        if missing:
            shown = ", ".join(f"line {line}: {name}" for line, name in missing[:5])
            raise InputError(f"{i.option} {ref}: {len(missing)} image(s) not in {images} ({shown})",
                             hint=f"FileName_* columns name files relative to {spec.input(i.images or '').option}")
    checked = _file(i.model_copy(update={"stage_as": i.stage_as or "data-file.csv"}), ref)
    checked.items = len(rows)
    plates = sorted({row.get("Metadata_Plate", "") for row in rows} - {""})
    checked.summary = f"{ref}: {len(rows):,} image sets" + (f" on {len(plates)} plate(s) ({', '.join(plates[:10])})"
                                                              if plates else "")
    checked.record.update(image_sets=len(rows), plates=plates)
    checked.extra.update(rows=rows, header=header, first_image=names[0] if names else None)
    return checked, names


# -- all of a run's inputs ------------------------------------------------------------------------


def check_inputs(spec: PipelineSpec, mode: ModeSpec, values: dict[str, Any], target: str,
                 progress: Progress = None, check_remote: Optional[Callable[[RemoteInput, str], None]] = None,
                 *, check_files: bool = True) -> dict[str, CheckedInput]:
    """Check every input of the mode; files are read in parallel (zlib and hashlib release the GIL).
    Problems are reported in the inputs' order, so the first one does not depend on timing.
    `check_files=False`: a sample sheet's FASTQs are not read (`render`)."""
    names = mode.inputs
    checked: dict[str, CheckedInput] = {}
    refs: dict[str, Union[Path, RemoteInput]] = {}
    for n in names:
        i = spec.input(n)
        if i.type not in FILE_TYPES + FOLDER_TYPES:
            checked[n] = check_scalar(i, values.get(n), verbatim=spec.plain)
        elif values.get(n) is not None:
            refs[n] = _path_or_remote(i, values[n], target)
    for n in names:
        i = spec.input(n)
        if i.mate and isinstance(refs.get(n), Path) and isinstance(refs.get(i.mate), Path):
            facts_mod.check_distinct(refs[n], refs[i.mate])  # type: ignore[arg-type]
    # The data file names the images to stage (and checks them): first.
    image_names: dict[str, Optional[list[str]]] = {}
    for n in names:
        i = spec.input(n)
        if i.type == "data_file" and n in refs:
            checked[n], image_names[i.images or ""] = _data_file(spec, i, refs[n], values, target)

    def one(n: str) -> CheckedInput:
        i = spec.input(n)
        ref = refs[n]
        if i.type == "fastq":
            return _fastq(spec, i, ref, values, progress)
        if i.type == "fasta":
            return _fasta(i, ref, progress)
        if i.type == "sample_sheet":
            return _sheet(i, ref, progress, check_files)
        if i.type in FOLDER_TYPES:
            return _folder(i, ref, image_names.get(n))
        return _file(i, ref)

    todo = [n for n in names if n in refs and n not in checked]
    with ThreadPoolExecutor(max_workers=max(1, min(4, len(todo))), thread_name_prefix="bioinfra-check") as pool:
        jobs = [(n, pool.submit(one, n)) for n in todo]
        for n, job in jobs:
            checked[n] = job.result()
    for n in names:
        if n not in checked:
            checked[n] = CheckedInput(spec.input(n), None, "", record={"value": None})
    for n in names:  # R1/R2 pairing, once both are read
        i = spec.input(n)
        if i.mate and "facts" in checked[n].extra and "facts" in checked.get(i.mate, CheckedInput(i, None)).extra:
            facts_mod.check_pair(checked[n].extra["facts"], checked[i.mate].extra["facts"])
    if check_remote is not None:
        for n in names:
            c = checked[n]
            if isinstance(c.value, RemoteInput):
                if c.spec.type in FOLDER_TYPES:
                    first = next((d.extra.get("first_image") for d in checked.values()
                                  if d.spec.images == n and d.extra.get("first_image")), None)
                    if first:
                        check_remote(RemoteInput(c.value.url + first, c.value.bucket, c.value.key + first), n)
                else:
                    check_remote(c.value, n)
    # A folder of images is staged file by file on a cluster (uploaded by content); locally linked whole.
    for n in names:
        c = checked[n]
        if c.spec.type == "image_folder" and isinstance(c.value, Path):
            c.extra["files"] = [StagedFile("image", f"{c.parameter}/{name}", c.value / name) for name in
                                c.extra.get("names", [])]
    return checked


def verify_inputs(checked: dict[str, CheckedInput], before: Optional[dict[str, Any]] = None
                  ) -> dict[str, dict[str, Any]]:
    """The whole read of the FASTQs checked in bounded time before the run (run beside the first
    steps): every gzip member, the record count, R1 and R2 holding as many reads, the SHA-256. The
    records of `checked` get the digest and read count; returns them by input name. `before`: the
    records of the run being resumed; a file whose full digest differs from the one recorded there
    (e.g. a byte changed inside it, size and mtime kept) is refused. Raises InputError."""
    todo = [f for c in checked.values() for f in c.unverified]
    if not todo:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(4, len(todo))), thread_name_prefix="bioinfra-verify") as pool:
        jobs = {f.path: pool.submit(_whole, f) for f in todo}
        full: dict[Path, facts_mod.FastqFacts] = {p: job.result() for p, job in jobs.items()}
    problems = []
    updated: dict[str, dict[str, Any]] = {}
    for n, c in checked.items():
        if not c.unverified:
            continue
        for f in c.staged:  # an upload names its object by the full digest, known now
            if f.source in full:
                f.sha256 = full[f.source].sha256
        if "facts" in c.extra:
            facts = full[c.extra["facts"].path]
            c.extra["facts"] = facts
            c.record.update(_verified(facts))
            c.reads = getattr(facts, "reads", None) or 0
            _same_as_before(problems, c.spec.option, facts, (before or {}).get(n, {}))
        else:
            samples = []
            for s in c.extra["samples"]:
                r1, r2 = full.get(s.r1.path, s.r1), full.get(s.r2.path, s.r2)
                samples.append(type(s)(s.row, r1, r2))
                row = c.record["inputs"][s.row.sample]
                earlier = ((before or {}).get(n, {}).get("inputs") or {}).get(s.row.sample, {})
                for mate, facts in (("r1", r1), ("r2", r2)):
                    row[mate].update(_verified(facts))
                    _same_as_before(problems, f"sample {s.row.sample} {mate}", facts, earlier.get(mate, {}))
                try:
                    facts_mod.check_pair(r1, r2)
                except InputError as exc:
                    problems.append(f"line {s.row.line} ({s.row.sample}): {exc.message}")
            c.extra["samples"] = samples
            c.reads = sum(s.r1.reads or 0 for s in samples)
        updated[n] = c.record
    if problems:
        raise InputError("; ".join(problems[:20]), hint="fix the input, then start a new run")
    for n, c in checked.items():  # R1/R2 pairing, now with both read counts
        i = c.spec
        mate = checked.get(i.mate or "")
        if (n in updated or i.mate in updated) and mate is not None and \
                isinstance(mate.extra.get("facts"), facts_mod.FastqFacts):
            facts_mod.check_pair(c.extra["facts"], mate.extra["facts"])
    return updated


def _whole(quick: Union[facts_mod.FastqFacts, facts_mod.FastaFacts]) -> Union[facts_mod.FastqFacts,
                                                                               facts_mod.FastaFacts]:
    if isinstance(quick, facts_mod.FastaFacts):
        return facts_mod.inspect_fasta(quick.path, quick.role or "reference")
    return facts_mod.inspect_fastq(quick.path, quick.role or "FASTQ")


def _verified(facts: Union[facts_mod.FastqFacts, facts_mod.FastaFacts]) -> dict[str, Any]:
    counted = {"length": facts.length} if isinstance(facts, facts_mod.FastaFacts) else {"reads": facts.reads}
    return {"digest": "sha256", "digest_when": "during the run (the file was checked in bounded time before it)",
            "sha256": facts.sha256, **counted}


def _same_as_before(problems: list[str], what: str, facts: facts_mod.FastqFacts, before: dict[str, Any]) -> None:
    if before.get("sha256") and before["sha256"] != facts.sha256:
        problems.append(f"{what} {facts.path} changed since the run started: its SHA-256 is {facts.sha256[:16]}..., "
                        f"the run recorded {before['sha256'][:16]}... (same size and modification time)")


def staged_files(checked: dict[str, CheckedInput]) -> list[StagedFile]:
    return [f for c in checked.values() for f in c.staged]


def fingerprints(checked: dict[str, CheckedInput]) -> dict[str, Any]:
    """What `--resume` compares: each input's content digest (files) or value (the rest)."""
    return {n: c.fingerprint for n, c in checked.items()}
