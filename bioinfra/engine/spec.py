"""A pipeline is a folder: `pipeline.yaml` (this module's model), its Argo Workflow template and
its step scripts beside them. Pipelines are data; the engine (bioinfra.engine) is the code.

    my-pipeline/
      pipeline.yaml        name, version, description, typed inputs, outputs, images, resources
      workflow.yaml.j2     the Argo Workflow (Jinja; sees config-side variables only, see render.py)
      count.sh             step scripts, pasted verbatim into their steps (`scripts["count.sh"]`)
      test_pipeline.py     optional: the pipeline's own test (`bioinfra pipelines new` writes one)

The typed inputs drive the CLI options (`bioinfra run NAME --help`), the input checks, staging, the
cost estimate and the --dry-run listing. A string or path input reaches the Workflow only as the
value of its `spec.arguments.parameters` entry, set on the parsed Workflow after rendering: no
user value is ever pasted into the template's text (steps read parameters from environment
variables). Only int and bool inputs, validated, are also visible to Jinja (`values.NAME`), so
they can shape the Workflow (e.g. a QC gate adds a condition).

Where pipelines are found: the built-ins under templates/pipelines/, then each folder of the
config's `pipelines.path` (a folder of pipeline folders, or one pipeline folder); an explicit
path (`bioinfra run ./my-pipeline/`) is read from anywhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bioinfra.errors import InputError

SPEC_FILE = "pipeline.yaml"
API_VERSION = "bioinfra.io/v1alpha1"

# Every input type and what a value of it is (bioinfra.engine.inputs checks and stages each).
INPUT_TYPES = {
    "fastq": "a FASTQ file (gzip or plain); with `mate`, one read of a pair",
    "fasta": "a reference FASTA (gzip or plain)",
    "sample_sheet": "a CSV/TSV sample sheet: sample, r1, r2 (+ read-group columns)",
    "image_folder": "a folder of microscopy images (TIFF/PNG)",
    "data_file": "a CellProfiler LoadData CSV naming images in an image_folder input",
    "file": "any file, staged by content",
    "folder": "any folder, staged by content",
    "string": "a short text value (letters, digits and ._- by default)",
    "int": "a whole number",
    "bool": "a flag (true/false)",
}
FILE_TYPES = ("fastq", "fasta", "sample_sheet", "data_file", "file")
FOLDER_TYPES = ("image_folder", "folder")
SCALAR_TYPES = ("string", "int", "bool")

NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,40}[a-z0-9]")  # a pipeline's name: a DNS label (it names runs)
_INPUT_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,40}")
_FLAG_RE = re.compile(r"--[a-z][a-z0-9-]{0,40}")
_PARAM_RE = re.compile(r"[a-zA-Z0-9_-]{1,63}")  # an Argo parameter name
_FILE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_DEFAULT_STRING_RE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
# A file or folder input's example default: relative, inside the pipeline's folder (no '..').
_EXAMPLE_RE = re.compile(r"(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}")
# Flags every run has (bioinfra.cli.run_cmd); an input may not take one.
RESERVED_FLAGS = frozenset({
    "--output", "--resume", "--max-cpus", "--runtime", "--target", "--dry-run", "--detach", "--quiet",
    "--over-budget", "--max-parallel", "--param", "--help", "--config",
})
# Step names bioinfra adds to every Workflow's run folder: an output may not be named after them.
BUNDLED_KEYS = ("r1", "r2", "reference", "planted_snps", "sample", "cellprofiler_images", "cellprofiler_data_file",
                "cellprofiler_illum", "cellprofiler_analysis")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """One typed input: what `--FLAG VALUE` means, how it is checked and what the Workflow is given."""

    name: str
    type: Literal["fastq", "fasta", "sample_sheet", "image_folder", "data_file", "file", "folder", "string", "int",
                  "bool"]
    help: str = Field(min_length=1, max_length=400)
    flag: Optional[str] = None  # default: --NAME with '_' as '-'
    short: Optional[str] = Field(None, pattern=r"-[a-zA-Z]")
    # The Workflow parameter it fills (default: NAME with '_' as '-'); None-able with `parameter: ""`
    # for inputs that only shape the run (e.g. max_parallel).
    parameter: Optional[str] = None
    # "bundled:KEY" for the bundled sample data; a file or folder input may also name example data
    # beside pipeline.yaml ("example.txt": a path relative to the pipeline's folder).
    default: Union[str, int, bool, None] = None
    required: bool = False
    # fastq: the input holding the other read (checked as a pair: names match, counts match).
    mate: Optional[str] = None
    # string: fullmatch; default letters, digits, '.', '_', '-' (1-64, starting with a letter or digit).
    pattern: Optional[str] = None
    # string: when not given, derived from another input ("sample_name:r1": the FASTQ's sample stem).
    # ("title:samples": a report title from that file's name, pipelines.default_title).
    derive: Optional[str] = Field(None, pattern=r"(sample_name|title):[a-z][a-z0-9_]*")
    # data_file: the image_folder input whose files it names.
    images: Optional[str] = None
    # int: bounds
    min: Optional[int] = None
    max: Optional[int] = None
    # Made a Kubernetes label value on the Workflow (label key), e.g. bioinfra.io/sample.
    label: Optional[str] = Field(None, pattern=r"bioinfra\.io/[a-z][a-z0-9-]{0,40}")
    # file: a check of its first line ("CellProfiler Pipeline:"), refused with the help when it differs.
    header: Optional[str] = Field(None, max_length=80)
    # The file's name in the workspace (default: NAME plus the source's suffix).
    stage_as: Optional[str] = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _INPUT_NAME_RE.fullmatch(v):
            raise ValueError("an input name is lowercase letters, digits and '_', starting with a letter")
        return v

    @field_validator("flag")
    @classmethod
    def _flag(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _FLAG_RE.fullmatch(v):
            raise ValueError("a flag is '--' then lowercase letters, digits and '-'")
        if v in RESERVED_FLAGS:
            raise ValueError(f"{v} is one of `bioinfra run`'s own options")
        return v

    @field_validator("parameter")
    @classmethod
    def _parameter(cls, v: Optional[str]) -> Optional[str]:
        if v and not _PARAM_RE.fullmatch(v):
            raise ValueError("an Argo parameter name is 1-63 letters, digits, '_' and '-'")
        return v

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            try:
                compiled = re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
            for hostile in ("'", '"', "$", "`", "\\", "\n", "{", ";"):
                if compiled.fullmatch(hostile) or compiled.fullmatch(f"a{hostile}"):
                    raise ValueError(f"admits {hostile!r}: a string input's pattern must refuse quotes, '$', '`', "
                                     "'\\', '{', ';' and newlines")
        return v

    @field_validator("stage_as")
    @classmethod
    def _stage_as(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _FILE_NAME_RE.fullmatch(v):
            raise ValueError("a file name of letters, digits, '_', '.' and '-'")
        return v

    @model_validator(mode="after")
    def _fits_type(self) -> InputSpec:
        t = self.type
        if self.mate and t != "fastq":
            raise ValueError("`mate` goes with type fastq")
        if self.images and t != "data_file":
            raise ValueError("`images` goes with type data_file")
        if t == "data_file" and not self.images:
            raise ValueError("a data_file input names its image_folder input (`images: NAME`)")
        if (self.min is not None or self.max is not None) and t != "int":
            raise ValueError("`min`/`max` go with type int")
        if (self.pattern or self.derive) and t != "string":
            raise ValueError("`pattern`/`derive` go with type string")
        if self.header and t != "file":
            raise ValueError("`header` goes with type file")
        d = self.default
        if d is not None:
            if t == "bool" and not isinstance(d, bool):
                raise ValueError("a bool input's default is true or false")
            if t == "int" and (isinstance(d, bool) or not isinstance(d, int)):
                raise ValueError("an int input's default is a whole number")
            if t in FILE_TYPES + FOLDER_TYPES and not (isinstance(d, str) and (
                    d.startswith("bundled:") or _EXAMPLE_RE.fullmatch(d))):
                raise ValueError("a file or folder input's default is bundled sample data (bundled:KEY), a path "
                                 "inside the pipeline's folder (e.g. example.txt), or none")
            if isinstance(d, str) and d.startswith("bundled:") and d[len("bundled:"):] not in BUNDLED_KEYS:
                raise ValueError(f"unknown bundled data {d!r}; known: {', '.join('bundled:' + k for k in BUNDLED_KEYS)}")
        if self.required and d is not None:
            raise ValueError("a required input has no default")
        return self

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def param(self) -> str:
        if self.parameter is not None:
            return self.parameter
        return self.name.replace("_", "-")

    @property
    def is_path(self) -> bool:
        return self.type in FILE_TYPES + FOLDER_TYPES


class ModeSpec(_Strict):
    """A variant of the pipeline with its own template, chosen when its `when` input is given
    (fastqc-to-bwa: one sample, or a sample sheet with --samples)."""

    name: str = Field(pattern=r"[a-z][a-z0-9-]{0,30}")
    workflow: str
    inputs: list[str]
    when: Optional[str] = None  # an input name; None: the default mode
    steps: list[str] = Field(default_factory=list)  # steps with a deadline each (run.step_deadlines)
    # A fan-out step's pod is given many items (a chunk of samples, a batch of image sets): its
    # deadline is per item. step -> the int input (or "chunk" / "batch") counting its items.
    items_per_pod: dict[str, str] = Field(default_factory=dict)
    outputs: Optional[OutputsSpec] = None  # this mode's, where they differ from the pipeline's


class ItemsSpec(_Strict):
    """A per-item status table a step writes (e.g. samples.tsv): the failure summary names the
    items that failed, the others are kept."""

    file: str
    noun: str = "item"
    key: str = "sample"
    status: str = "status"
    ok: str = "ok"
    reason: str = "reason"
    stage: str = "stage"


class OutputsSpec(_Strict):
    """What a finished run leaves in its output folder (relative paths)."""

    report: Optional[str] = None  # the file the run prints as `report`
    results: str = "."  # the folder printed as `results`
    # A JSON file a step writes; `summary` lines are formatted from its keys ({key} only).
    summary_file: Optional[str] = None
    summary: list[str] = Field(default_factory=list)
    # Lines of the failure summary, from the same file (a line whose keys are missing or empty is
    # left out), e.g. "the gathered tables lack image sets {missing_image_sets}".
    failure: list[str] = Field(default_factory=list)
    items: Optional[ItemsSpec] = None
    # Step output parameters recorded in the manifest under this name (e.g. aligner: align.aligner).
    record: dict[str, str] = Field(default_factory=dict)
    # Notes added to the manifest and printed when a step output parameter has a value
    # ("align.aligner=bwa": "bwa-mem2 was not installed: ...") or a step is Skipped ("align=Skipped").
    notes: dict[str, str] = Field(default_factory=dict)
    # Extra lines printed after a successful run: "label<TAB>path" (e.g. samples: samples.tsv).
    files: dict[str, str] = Field(default_factory=dict)
    # The manifest's tool_versions key for a step template's `tool-version` output (default: the
    # template's name), e.g. align: aligner.
    versions: dict[str, str] = Field(default_factory=dict)


ModeSpec.model_rebuild()


class ResourceSpec(_Strict):
    cpu: Union[float, str] = 1  # a number, or "align_threads" (from the config's pipeline section)
    memory: str = "1Gi"


# What `bioinfra estimate` measures in a run's inputs (bioinfra.core.estimate.measure_inputs):
# fastq inputs and a sample sheet's FASTQs -> reads, read_pairs, read_bases; fasta -> reference_bases;
# data_file -> image_sets; a sample sheet's rows (else 1 for FASTQ inputs) -> samples.
WORK_UNITS = ("reads", "read_pairs", "read_bases", "reference_bases", "image_sets", "samples")


class WorkSpec(_Strict):
    """Work that grows with one quantity of the inputs: `unit`s / `rate` CPU-seconds."""

    unit: Literal["reads", "read_pairs", "read_bases", "reference_bases", "image_sets", "samples"]
    # Units per second per core; or [[reference_bases, rate], ...]: the rate at each reference length,
    # a power law between two points (log-log), the first point's rate below it, the last two's law beyond.
    rate: Union[float, list[tuple[float, float]]]
    of: Optional[str] = None  # one input's quantity only (e.g. r1: that file's reads), else the run's
    per_item: bool = False  # counted once for each item its pod is given (e.g. an index loaded per sample)

    @field_validator("rate")
    @classmethod
    def _rate(cls, v: Union[float, list[tuple[float, float]]]) -> Union[float, list[tuple[float, float]]]:
        points = v if isinstance(v, list) else [(1.0, v)]
        if not points or any(x <= 0 or r <= 0 for x, r in points):
            raise ValueError("a rate is positive (units per second per core), or [[reference_bases, rate], ...]")
        if [x for x, _ in points] != sorted({x for x, _ in points}):
            raise ValueError("[[reference_bases, rate], ...]: reference lengths ascending, each once")
        return v


class ThroughputSpec(_Strict):
    """How long one pod of a step works, for `bioinfra estimate` (docs/cost.md): CPU-seconds =
    start + per_item x the items it is given (samples, image sets) + each `work` term's units / rate.
    Write where each number comes from beside it; `measured: false` says it is a guess."""

    start: float = Field(0.0, ge=0)  # seconds once per pod (start-up: a JVM, Python, an index)
    per_item: float = Field(0.0, ge=0)  # seconds per item the pod is given
    work: list[WorkSpec] = Field(default_factory=list)
    threaded: bool = False  # runs its CPU request as threads (else one core, whatever it requests)
    efficiency: float = Field(1.0, gt=0, le=1)  # of those threads, when more than one
    # The step runs the user's own program (a CellProfiler pipeline): `bioinfra estimate
    # --seconds-per-set S` replaces the fan-out step's per_item with S and scales the others' by as much.
    user_work: bool = False
    measured: bool = True  # false: the numbers are an unmeasured estimate (said in the assumptions)
    note: str = ""  # printed with the estimate's assumptions


class PipelineSpec(_Strict):
    """The model of pipeline.yaml."""

    apiVersion: Literal["bioinfra.io/v1alpha1"] = API_VERSION  # noqa: N815 - the file's key
    kind: Literal["Pipeline"] = "Pipeline"
    name: str
    version: str = Field(pattern=r"\d+(\.\d+){0,2}([-.+][0-9A-Za-z.]+)?")
    description: str = Field(min_length=1, max_length=2000)
    workflow: Optional[str] = None  # the template (when there are no modes)
    steps: list[str] = Field(default_factory=list)
    # Each step's default deadline per item (e.g. align: 48h), where bioinfra.yaml's
    # run.step_deadlines sets none; steps bioinfra knows have its defaults, others a day.
    deadlines: dict[str, str] = Field(default_factory=dict)
    items_per_pod: dict[str, str] = Field(default_factory=dict)
    modes: list[ModeSpec] = Field(default_factory=list)
    inputs: list[InputSpec] = Field(default_factory=list)
    outputs: OutputsSpec = Field(default_factory=OutputsSpec)
    # Image names (images/<name>/): the docker runtime needs them built; a cluster pulls them.
    images: list[str] = Field(default_factory=list)
    # Programs the native runtime needs on PATH: program -> Debian package ("bwa-mem2|bwa": either).
    tools: dict[str, str] = Field(default_factory=dict)
    # Step scripts beside pipeline.yaml, pasted verbatim into the template as scripts["NAME"].
    scripts: list[str] = Field(default_factory=list)
    # Per step: what one pod requests (the cost estimate reads these).
    resources: dict[str, ResourceSpec] = Field(default_factory=dict)
    # `bioinfra estimate`'s work model: step (a DAG task, else its template) -> start-up, seconds per
    # item and units of the inputs per second per core (ThroughputSpec).
    throughput: dict[str, ThroughputSpec] = Field(default_factory=dict)

    folder: Path = Field(default=Path("."), exclude=True)
    builtin: bool = Field(default=False, exclude=True)
    # A plain Argo Workflow file (`bioinfra run FILE.yaml`, bioinfra.engine.workflow_file): its
    # template is the file itself, used verbatim (its `{{...}}` are Argo's, not Jinja's); its inputs
    # are its spec.arguments.parameters, and only those given are set.
    plain: bool = Field(default=False, exclude=True)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.fullmatch(v):
            raise ValueError("a pipeline name is 2-42 lowercase letters, digits and '-' (it names runs and labels)")
        return v

    @field_validator("deadlines")
    @classmethod
    def _deadlines(cls, v: dict[str, str]) -> dict[str, str]:
        from bioinfra.config import MAX_DEADLINE, MIN_STEP_DEADLINE, duration_seconds

        for step, text in v.items():
            try:
                seconds = duration_seconds(text)
            except ValueError as exc:
                raise ValueError(f"deadlines.{step}: {exc}") from None
            if not MIN_STEP_DEADLINE <= seconds <= MAX_DEADLINE:
                raise ValueError(f"deadlines.{step}: between 1m and 30d")
        return v

    @field_validator("throughput")
    @classmethod
    def _throughput(cls, v: dict[str, ThroughputSpec], info: Any) -> dict[str, ThroughputSpec]:
        names = {i.name for i in info.data.get("inputs", [])}
        for step, entry in v.items():
            for term in entry.work:
                if term.of is not None and term.of not in names:
                    raise ValueError(f"{step}: `of: {term.of}` names no input")
        return v

    @field_validator("scripts")
    @classmethod
    def _scripts(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _FILE_NAME_RE.fullmatch(name):
                raise ValueError(f"script {name!r}: a file name beside pipeline.yaml")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> PipelineSpec:
        names = [i.name for i in self.inputs]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"inputs named twice: {', '.join(sorted(dup))}")
        flags = [i.option for i in self.inputs]
        dup = {f for f in flags if flags.count(f) > 1}
        if dup:
            raise ValueError(f"flags used twice: {', '.join(sorted(dup))}")
        by_name = {i.name: i for i in self.inputs}
        for i in self.inputs:
            if i.mate and (i.mate not in by_name or by_name[i.mate].type != "fastq"):
                raise ValueError(f"input {i.name}: mate {i.mate!r} is not a fastq input")
            if i.images and (i.images not in by_name or by_name[i.images].type != "image_folder"):
                raise ValueError(f"input {i.name}: images {i.images!r} is not an image_folder input")
            if i.derive and i.derive.split(":", 1)[1] not in by_name:
                raise ValueError(f"input {i.name}: derive names no input")
        if self.modes:
            if self.workflow:
                raise ValueError("give either `workflow` or `modes`, not both")
            defaults = [m for m in self.modes if m.when is None]
            if len(defaults) != 1:
                raise ValueError("exactly one mode has no `when` (the default)")
            for mode in self.modes:
                unknown = [n for n in mode.inputs + ([mode.when] if mode.when else []) if n not in by_name]
                if unknown:
                    raise ValueError(f"mode {mode.name}: unknown inputs {', '.join(unknown)}")
        elif not self.workflow:
            raise ValueError("`workflow` names the Argo Workflow template beside pipeline.yaml")
        return self

    def mode_for(self, given: set[str]) -> ModeSpec:
        """The mode a run takes: the first whose `when` input was given, else the default."""
        if not self.modes:
            return ModeSpec(name="default", workflow=self.workflow or "", inputs=[i.name for i in self.inputs],
                            steps=self.steps, items_per_pod=self.items_per_pod)
        for mode in self.modes:
            if mode.when and mode.when in given:
                return mode
        return next(m for m in self.modes if m.when is None)

    def input(self, name: str) -> InputSpec:
        return next(i for i in self.inputs if i.name == name)

    def outputs_of(self, mode: ModeSpec) -> OutputsSpec:
        return mode.outputs or self.outputs

    @property
    def source(self) -> str:
        if self.plain:
            return str(self.folder / (self.workflow or ""))
        return "built-in" if self.builtin else str(self.folder)


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        out.append(f"{where}: {err['msg']}")
    return out


def load_spec(folder: Path, *, builtin: bool = False) -> PipelineSpec:
    """Read and validate FOLDER/pipeline.yaml; every problem named by its field."""
    path = folder / SPEC_FILE
    try:
        # libyaml's safe loader where PyYAML has it: every `run` reads every pipeline.yaml to find one,
        # and the pure-Python loader took 0.13 of discover()'s 0.15 s.
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except FileNotFoundError:
        raise InputError(f"{folder} is not a pipeline folder: it has no {SPEC_FILE}",
                         hint="`bioinfra pipelines new PATH` writes a working one") from None
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of name, version, description, workflow, inputs...")
    try:
        spec = PipelineSpec.model_validate({**data, "folder": folder.resolve(), "builtin": builtin})
    except ValidationError as exc:
        problems = _problems(exc)
        raise InputError(f"{path} is not a valid pipeline: " + "; ".join(problems),
                         hint="see docs/pipelines/write-your-own.md for every key") from None
    for i in spec.inputs:
        if i.is_path and isinstance(i.default, str) and not i.default.startswith("bundled:") \
                and not (spec.folder / i.default).exists():
            raise InputError(f"{path}: input {i.name}'s default {i.default!r} is not in the pipeline's folder")
    for rel in [m.workflow for m in spec.modes] + ([spec.workflow] if spec.workflow else []) + spec.scripts:
        if not _FILE_NAME_RE.fullmatch(rel) or not (spec.folder / rel).is_file():
            raise InputError(f"{path}: {rel!r} is not a file beside pipeline.yaml")
    return spec


def builtin_root() -> Path:
    from bioinfra.render import templates_root

    return templates_root() / "pipelines"


def _folders_under(root: Path) -> list[Path]:
    if (root / SPEC_FILE).is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / SPEC_FILE).is_file())


def discover(search_path: list[Path] | tuple[Path, ...] = ()) -> dict[str, PipelineSpec]:
    """Every pipeline by name: built-ins first, then the search path in order. A folder on the path
    whose name is taken by an earlier one is skipped (the earlier one wins, as on a shell's PATH)."""
    found: dict[str, PipelineSpec] = {}
    for folder in _folders_under(builtin_root()):
        spec = load_spec(folder, builtin=True)
        found.setdefault(spec.name, spec)
    for root in search_path:
        for folder in _folders_under(Path(root).expanduser()):
            spec = load_spec(folder)
            found.setdefault(spec.name, spec)
    return found


def looks_like_path(ref: str) -> bool:
    return "/" in ref or ref.startswith(".") or ref.endswith((".yaml", ".yml")) or Path(ref).is_dir()


def find_pipeline(ref: str, search_path: list[Path] | tuple[Path, ...] = ()) -> PipelineSpec:
    """A pipeline by name (built-in or on the pipeline path) or by folder path."""
    if looks_like_path(ref):
        folder = Path(ref).expanduser()
        if not folder.is_dir():
            raise InputError(f"{ref}: no such pipeline folder")
        return load_spec(folder)
    known = discover(search_path)
    if ref not in known:
        raise InputError(f"unknown pipeline '{ref}'; known: {', '.join(known) or 'none'}",
                         hint="`bioinfra pipelines list` shows them; run a folder with `bioinfra run ./FOLDER/`, "
                              "a plain Argo Workflow with `bioinfra run FILE.yaml`")
    return known[ref]


def as_data(spec: PipelineSpec) -> dict[str, Any]:
    """pipeline.yaml as validated (for `pipelines show`)."""
    return spec.model_dump(mode="json", exclude_defaults=True, exclude={"folder", "builtin"})
