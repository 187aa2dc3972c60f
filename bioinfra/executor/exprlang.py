"""expr-lang (github.com/expr-lang/expr v1.17.7) as Argo Workflows v3.7 evaluates it, in pure Python.

Where Argo v3.7.18 uses expr, and with which environment:
- `{{=...}}` tags, wherever tags are substituted (util/template): the flat variable map expanded on
  dots plus `asInt`, `asFloat`, `jsonpath`, `toJson` and `sprig.*` (util/expr/env/env.go
  GetFuncMap): `substitute_expressions(text, flat_or_nested_vars)`.
- `retryStrategy.expression` (operator.go): `retries` and `lastRetry.{exitCode,status,duration,
  message}`, all strings, plus the functions: `evaluate(expr, {"retries": "1", "lastRetry": {...}})`.
- `valueFrom.expression` output parameters, lifecycle hooks' `expression`, `labelsFrom` expressions:
  the scope's variables plus the functions: `evaluate(expr, vars)`.
- `depends` (dag.go evaluateDependsLogic): expr over one struct per dependency named with `-`
  turned into `_`, fields Succeeded, Failed, Errored, Skipped, Omitted, Daemoned, AnySucceeded,
  AllFailed (bools); a dict per task works the same here.
- `when` is NOT expr in v3.7.18 (steps.go shouldExecute is govaluate): its tags, `{{=...}}` included,
  are substituted first, then govaluate decides (bioinfra.executor.expressions.evaluate_when).

Go semantics kept on purpose (they decide what a Workflow does):
- `/` always gives a float, `%` only takes ints, ints wrap at 64 bits, `**`/`^` give floats;
- expr's checker knows the types of literals and top-level variables and refuses mismatches
  (`retries == 1` is an error, as `retries` is a string); nested values (`inputs.parameters.x`)
  are `any`: `==` of different types is false, `<` or `+` of different types is an error at run time;
- a missing map key reads as nil, a member of nil is an error unless `?.` is used;
- a name not in the environment is an error before anything runs ("unknown name").

Safety: nothing here calls Python's eval/exec or getattr on a value; member access reads dict keys,
list/str indexes and a short allow-list of time methods only. Source size, nesting depth, node
count, evaluation steps and the bytes an evaluation builds are bounded; regular expressions that
RE2 refuses or that could backtrack exponentially in Python are refused. A hostile expression
fails with ExprError, quickly.

Not covered: sprig's random, crypto, semver, uuid and xstrings case functions (snakecase, ...);
time methods beyond the common ones; Argo's internal placeholders (`__argo__internal__placeholder`);
expr's checker beyond top-level and literal types: element types of arrays reached by indexing,
ranges or predicates (`filter(1..3, # == 'a')` is [] here, an error in expr) and argument types of
builtins in a branch that does not run (`false ? round('') : 1`).

Refs (read from the Argo v3.7.18 and expr v1.17.7 sources; Argo pins expr v1.17.7, sprig v3.3.0,
evilmonkeyinc/jsonpath v0.8.1):
- expr: parser/lexer/state.go, parser/parser.go, parser/operator/operator.go, checker/checker.go,
  optimizer/fold.go, vm/vm.go, vm/runtime/runtime.go and helpers, builtin/builtin.go, builtin/lib.go,
  docs/language-definition.md
- Argo: util/template/expression_template.go (tag result text, missing-variable rules),
  util/template/template.go (fasttemplate `{{` ... first `}}`), util/expr/env/env.go,
  util/expand/expand.go (+ github.com/doublerebel/bellows Expand), workflow/controller/operator.go
  (buildRetryStrategyLocalScope), workflow/controller/dag.go (evaluateDependsLogic).
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import datetime as _dt
import functools
import hashlib
import json
import math
import posixpath
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from bioinfra.errors import WorkflowSpecError

__all__ = [
    "ExprError",
    "GoDuration",
    "GoTime",
    "argo_env",
    "compile_expression",
    "evaluate",
    "go_fmt_v",
    "go_json",
    "missing_variables",
    "substitute_expressions",
    "tag_text",
]

# Bounds. expr itself caps ranges/repeat at a "memory budget" of 1e6 items (vm.MemoryBudget,
# builtin repeat); the rest are ours, far above what a Workflow expression needs.
MAX_SOURCE = 20_000  # characters in one expression
MAX_DEPTH = 60  # nesting of the syntax tree
MAX_NODES = 10_000  # expr's conf.MaxNodes default
MAX_STEPS = 3_000_000  # node evaluations + predicate iterations (a few seconds at most)
MAX_ITEMS = 1_000_000  # elements of one list (ranges, concat, repeat, ...)
MAX_STRING = 10_000_000  # characters of one string
MAX_WORK = 50_000_000  # roughly bytes built over one evaluation (strings, lists, JSON text)
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


class ExprError(WorkflowSpecError):
    """An expr-lang expression that does not parse or fails to evaluate."""

    def __init__(self, source: str, what: str) -> None:
        shown = source if len(source) <= 200 else source[:200] + "..."
        super().__init__(f"expression {shown!r}: {what}")
        self.source = source
        self.what = what


class _Fail(Exception):
    """Internal: a runtime failure; turned into ExprError with the source by evaluate()."""


class _Nil:
    """Sentinel returned by optional chains that hit nil (the ChainNode short circuit)."""


class AnyKeyMap(dict):  # type: ignore[type-arg]
    """A Go map[interface {}]...: what groupBy and fromPairs give. json.Marshal refuses it."""


# ---------------------------------------------------------------------------------------------
# Go value helpers
# ---------------------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float))) and not isinstance(v, bool)


def _wrap(i: int) -> int:
    """Go int (int64) overflow wraps around."""
    if _INT_MIN <= i <= _INT_MAX:
        return i
    return ((i - _INT_MIN) % 2**64) + _INT_MIN


def _gotype(v: Any) -> str:
    """Go's %T for the values an Argo expression can see (used in error messages, as expr does)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    if isinstance(v, AnyKeyMap):
        return "map[interface {}]interface {}"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    if isinstance(v, GoTime):
        return "time.Time"
    if isinstance(v, GoDuration):
        return "time.Duration"
    if callable(v):
        return "func"
    return type(v).__name__


def _digits(f: float) -> tuple[str, int]:
    """Shortest round-trip digits of abs(f) and the decimal point position (Go's strconv -1 precision)."""
    t = Decimal(repr(abs(f))).normalize().as_tuple()
    digits = "".join(map(str, t.digits)).rstrip("0") or "0"
    exp = int(t.exponent) + (len(t.digits) - len(digits))
    return digits, len(digits) + exp


def _fmt_f(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * (-point) + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _fmt_e(digits: str, point: int, min_exp_digits: int) -> str:
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    e = point - 1
    return f"{mant}e{'-' if e < 0 else '+'}{abs(e):0{min_exp_digits}d}"


def go_float_json(f: float) -> str:
    """encoding/json's float64: 'f' unless |f| < 1e-6 or >= 1e21, exponent without a leading 0."""
    if math.isnan(f) or math.isinf(f):
        raise _Fail(f"json: unsupported value: {go_fmt_v(f)}")
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    sign = "-" if f < 0 else ""
    digits, point = _digits(f)
    if abs(f) < 1e-6 or abs(f) >= 1e21:
        return sign + _fmt_e(digits, point, 1)
    return sign + _fmt_f(digits, point)


def _go_float_v(f: float) -> str:
    """fmt's %v for float64: %g with the shortest digits, so 1234567.0 is "1.234567e+06"."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    sign = "-" if f < 0 else ""
    digits, point = _digits(f)
    if point - 1 < -4 or point - 1 >= 6:  # strconv 'g' with the shortest digits decides with precision 6
        return sign + _fmt_e(digits, point, 2)
    return sign + _fmt_f(digits, point)


def _text_size(v: Any) -> int:
    """A cheap upper estimate of the text a value prints to, stopping once it passes MAX_STRING
    (a list may hold the same long string a million times)."""
    total = 0
    stack: list[tuple[Any, int]] = [(v, 0)]
    while stack:
        x, depth = stack.pop()
        if depth > 200:
            raise _Fail("value nested too deeply to print")
        if isinstance(x, str):
            total += 2 * len(x) + 2
        elif isinstance(x, (list, tuple)):
            total += 2 + len(x)
            stack.extend((y, depth + 1) for y in x)
        elif isinstance(x, Mapping):
            total += 2 + len(x)
            for k, y in x.items():
                stack.append((k, depth + 1))
                stack.append((y, depth + 1))
        else:
            total += 32
        if total > 2 * MAX_STRING:
            raise _Fail("memory budget exceeded (the value prints to too much text)")
    return total


def go_fmt_v(v: Any) -> str:
    """fmt.Sprintf("%v", v): what expr's string() and sprig's toString give."""
    if isinstance(v, (list, tuple, Mapping)):
        _charge(_text_size(v))
    return _fmt_v(v)


def _fmt_v(v: Any) -> str:
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float_v(v)
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_fmt_v(x) for x in v) + "]"
    if isinstance(v, Mapping):
        items = sorted(v.items(), key=lambda kv: str(kv[0]))
        return "map[" + " ".join(f"{_fmt_v(k)}:{_fmt_v(x)}" for k, x in items) + "]"
    if isinstance(v, (GoTime, GoDuration)):
        return v.go_string()
    if callable(v):
        return "0x0"  # Go prints a func's address
    raise _Fail(f"cannot format a value of type {type(v).__name__}")


_JSON_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_HTML_RE = re.compile("[<>&\u2028\u2029]")


def _json_str(s: str) -> str:
    # json.dumps escapes like Go 1.22+ (\b \f \n \r \t, \u00XX for other controls); Go also escapes
    # <, >, & and U+2028/9 (HTML-safe by default).
    return _JSON_HTML_RE.sub(lambda m: _JSON_HTML[m.group(0)], json.dumps(s, ensure_ascii=False))


def go_json(v: Any, indent: str | None = None, _level: int = 0) -> str:
    """encoding/json Marshal (indent=None) or MarshalIndent(v, "", indent): sorted keys, Go floats."""
    if _level == 0 and isinstance(v, (list, tuple, Mapping)):
        _charge(_text_size(v) * (1 if indent is None else 2))
    if _level > 200:
        raise _Fail("json: value nested too deeply")
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float_json(v)
    if isinstance(v, str):
        return _json_str(v)
    if isinstance(v, GoTime):
        return _json_str(v.rfc3339nano())
    if isinstance(v, GoDuration):
        return str(v.ns)
    if isinstance(v, (list, tuple)):
        parts = [go_json(x, indent, _level + 1) for x in v]
        if not parts:
            return "[]"
        if indent is None:
            return "[" + ",".join(parts) + "]"
        pad, pad_in = "\n" + indent * _level, "\n" + indent * (_level + 1)
        return "[" + pad_in + ("," + pad_in).join(parts) + pad + "]"
    if isinstance(v, AnyKeyMap):
        raise _Fail(f"json: unsupported type: {_gotype(v)}")
    if isinstance(v, Mapping):
        items = []
        for k in sorted(v, key=lambda k: str(k)):
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise _Fail(f"json: unsupported map key type {_gotype(k)}")
            items.append((_json_str(str(k)), go_json(v[k], indent, _level + 1)))
        if not items:
            return "{}"
        if indent is None:
            return "{" + ",".join(f"{k}:{x}" for k, x in items) + "}"
        pad, pad_in = "\n" + indent * _level, "\n" + indent * (_level + 1)
        return "{" + pad_in + ("," + pad_in).join(f"{k}: {x}" for k, x in items) + pad + "}"
    raise _Fail(f"json: unsupported type: {_gotype(v)}")


def _from_json(text: Any) -> Any:
    """encoding/json Unmarshal into `any`: every number is a float64."""
    if not isinstance(text, str):
        raise _Fail(f"cannot use {_gotype(text)} as a JSON string")
    if len(text) > MAX_STRING:
        raise _Fail("JSON text too large")

    def bad_constant(name: str) -> Any:
        raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")

    try:
        return json.loads(text, parse_int=float, parse_constant=bad_constant)
    except RecursionError:
        raise _Fail("JSON nested too deeply") from None
    except ValueError as exc:
        raise _Fail(f"invalid JSON: {exc}") from None


def _to_int(v: Any) -> int:
    """runtime.ToInt, used for indexes, slices and a few builtins' count arguments."""
    if _is_int(v):
        return v
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise _Fail(f"invalid operation: int({go_fmt_v(v)})")
        return _wrap(int(v))
    raise _Fail(f"invalid operation: int({_gotype(v)})")


_ATOI_RE = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT_DEC_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_FLOAT_HEX_RE = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+\Z")
_FLOAT_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
                  "+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan, "+nan": math.nan, "-nan": math.nan}  # fmt: skip


def _underscore_ok(s: str) -> bool:
    """strconv's underscoreOK: an underscore only between digits (after an optional sign and base prefix)."""
    body = s.lstrip("+-")
    hexa = body[:2].lower() == "0x"
    if body[:2].lower() in ("0x", "0b", "0o"):
        body = body[2:]
    saw = "^"
    for c in body:
        if c.isdigit() or (hexa and c.lower() in "abcdef"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
    return saw != "_"


def _go_parse_float(s: str) -> float | None:
    """strconv.ParseFloat(s, 64), or None where it fails (syntax or range)."""
    special = _FLOAT_SPECIAL.get(s.lower())
    if special is not None:
        return special
    if "_" in s:
        if not _underscore_ok(s):
            return None
        s = s.replace("_", "")
    try:
        if _FLOAT_DEC_RE.match(s):
            f = float(s)
        elif _FLOAT_HEX_RE.match(s):
            f = float.fromhex(s)
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return None if math.isinf(f) else f


def builtin_int(v: Any) -> int:
    """expr's int() (Argo's asInt): ints as is, floats truncated, strings by strconv.Atoi."""
    if isinstance(v, str):
        if not _ATOI_RE.match(v) or not _INT_MIN <= int(v) <= _INT_MAX:
            raise _Fail(f"invalid operation: int({v})")
        return int(v)
    if _is_num(v):
        return _to_int(v)
    raise _Fail(f"invalid operation: int({_gotype(v)})")


def builtin_float(v: Any) -> float:
    """expr's float() (Argo's asFloat): numbers, or strings by strconv.ParseFloat."""
    if isinstance(v, str):
        f = _go_parse_float(v)
        if f is None:
            raise _Fail(f"invalid operation: float({v})")
        return f
    if _is_num(v):
        return float(v)
    raise _Fail(f"invalid operation: float({_gotype(v)})")


# ---------------------------------------------------------------------------------------------
# Time (now(), duration(), date(): Argo's cron `when` uses `now() - x` and `.Seconds()`)
# ---------------------------------------------------------------------------------------------


class GoDuration:
    """time.Duration: integer nanoseconds."""

    __slots__ = ("ns",)

    def __init__(self, ns: int) -> None:
        self.ns = _wrap(ns)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoDuration) and other.ns == self.ns

    def __hash__(self) -> int:
        return hash(self.ns)

    def go_string(self) -> str:
        ns = self.ns
        if ns == 0:
            return "0s"
        sign = "-" if ns < 0 else ""
        ns = abs(ns)
        if ns < 1_000_000_000:
            for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
                if ns >= size:
                    return sign + _trim_float(ns / size) + unit
        h, rem = divmod(ns, 3_600_000_000_000)
        m, rem = divmod(rem, 60_000_000_000)
        s = _trim_float(rem / 1e9) + "s"
        out = (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + s
        return sign + out

    def method(self, name: str) -> Callable[..., Any]:
        methods: dict[str, Callable[[], Any]] = {
            "Seconds": lambda: self.ns / 1e9,
            "Minutes": lambda: self.ns / 6e10,
            "Hours": lambda: self.ns / 3.6e12,
            "Milliseconds": lambda: int(self.ns / 1_000_000),
            "Microseconds": lambda: int(self.ns / 1_000),
            "Nanoseconds": lambda: self.ns,
            "String": self.go_string,
        }
        if name not in methods:
            raise _Fail(f"type time.Duration has no method {name}")
        return methods[name]


def _trim_float(f: float) -> str:
    text = f"{f:.9f}".rstrip("0").rstrip(".")
    return text or "0"


class GoTime:
    """time.Time: an aware datetime."""

    __slots__ = ("dt",)

    def __init__(self, dt: _dt.datetime) -> None:
        self.dt = dt if dt.tzinfo else dt.replace(tzinfo=_dt.timezone.utc)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoTime) and other.dt == self.dt

    def __hash__(self) -> int:
        return hash(self.dt)

    def rfc3339nano(self) -> str:
        """time.RFC3339Nano, what json.Marshal gives for a time.Time."""
        d = self.dt
        frac = f".{d.microsecond:06d}".rstrip("0") if d.microsecond else ""
        off = d.utcoffset() or _dt.timedelta()
        if not off:
            zone = "Z"
        else:
            mins = int(off.total_seconds() // 60)
            zone = f"{'-' if mins < 0 else '+'}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"
        return d.strftime("%Y-%m-%dT%H:%M:%S") + frac + zone

    def go_string(self) -> str:
        off = self.dt.strftime("%z") or "+0000"
        name = self.dt.tzname() or ""
        if name in ("UTC", "UTC+00:00"):
            name = "UTC"
        frac = f".{self.dt.microsecond:06d}".rstrip("0") if self.dt.microsecond else ""
        return self.dt.strftime("%Y-%m-%d %H:%M:%S") + frac + f" {off} {name}".rstrip()

    def method(self, name: str) -> Callable[..., Any]:
        d = self.dt
        methods: dict[str, Callable[..., Any]] = {
            "Year": lambda: d.year,
            "Month": lambda: d.month,
            "Day": lambda: d.day,
            "Hour": lambda: d.hour,
            "Minute": lambda: d.minute,
            "Second": lambda: d.second,
            "Nanosecond": lambda: d.microsecond * 1000,
            "YearDay": lambda: d.timetuple().tm_yday,
            "Weekday": lambda: (d.weekday() + 1) % 7,
            "Unix": lambda: int(d.timestamp()),
            "UnixMilli": lambda: int(d.timestamp() * 1000),
            "UTC": lambda: GoTime(d.astimezone(_dt.timezone.utc)),
            "Format": lambda layout: _go_time_format(d, _need_str(layout, "Format")),
            "Add": lambda dur: GoTime(d + _dt.timedelta(microseconds=_need_dur(dur).ns // 1000)),
            "Sub": lambda t: GoDuration(_time_sub(d, _need_time(t).dt)),
            "Before": lambda t: d < _need_time(t).dt,
            "After": lambda t: d > _need_time(t).dt,
            "Equal": lambda t: d == _need_time(t).dt,
            "String": self.go_string,
        }
        if name not in methods:
            raise _Fail(f"type time.Time has no method {name}")
        return methods[name]


def _time_sub(a: _dt.datetime, b: _dt.datetime) -> int:
    delta = a - b
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _need_str(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise _Fail(f"{what}: cannot use {_gotype(v)} as string")
    return v


def _need_time(v: Any) -> GoTime:
    if not isinstance(v, GoTime):
        raise _Fail(f"cannot use {_gotype(v)} as time.Time")
    return v


def _need_dur(v: Any) -> GoDuration:
    if not isinstance(v, GoDuration):
        raise _Fail(f"cannot use {_gotype(v)} as time.Duration")
    return v


_GO_LAYOUT = [
    ("2006", "%Y"), ("January", "%B"), ("Jan", "%b"), ("Monday", "%A"), ("Mon", "%a"), ("MST", "%Z"),
    ("Z07:00", "Z07:00"), ("-07:00", "-07:00"), ("-0700", "%z"), ("01", "%m"), ("02", "%d"),
    ("_2", "_2"), ("15", "%H"), ("03", "%I"), ("04", "%M"), ("05", "%S"), ("06", "%y"), ("PM", "%p"),
    (".000000", ".%f"), (".000", ".000"), ("1", "1"), ("2", "2"), ("3", "3"),
]  # fmt: skip


def _go_time_format(d: _dt.datetime, layout: str) -> str:
    """time.Format for the common layout elements (Go's reference time Mon Jan 2 15:04:05 MST 2006)."""
    out: list[str] = []
    i = 0
    while i < len(layout):
        for token, code in _GO_LAYOUT:
            if layout.startswith(token, i):
                if code == "Z07:00" or code == "-07:00":
                    off = d.utcoffset() or _dt.timedelta()
                    if code == "Z07:00" and not off:
                        out.append("Z")
                    else:
                        mins = int(off.total_seconds() // 60)
                        out.append(f"{'-' if mins < 0 else '+'}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}")
                elif code == "_2":
                    out.append(f"{d.day:2d}")
                elif code == ".000":
                    out.append(f".{d.microsecond // 1000:03d}")
                elif code in ("1", "2", "3"):
                    out.append(str({"1": d.month, "2": d.day, "3": (d.hour % 12) or 12}[code]))
                else:
                    out.append(d.strftime(code))
                i += len(token)
                break
        else:
            out.append(layout[i])
            i += 1
    return "".join(out)


_DUR_RE = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_DUR_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
              "h": 3600 * 10**9}  # fmt: skip


def _parse_duration(s: Any) -> GoDuration:
    text = _need_str(s, "duration")
    body = text.lstrip("+-")
    sign = -1 if text.startswith("-") else 1
    if body == "0":
        return GoDuration(0)
    pos, total = 0, 0.0
    while pos < len(body):
        m = _DUR_RE.match(body, pos)
        if not m:
            raise _Fail(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    if not body:
        raise _Fail(f'time: invalid duration "{text}"')
    return GoDuration(sign * int(total))


def _parse_date(s: Any, *args: Any) -> GoTime:
    text = _need_str(s, "date")
    if args:
        layout = _need_str(args[0], "date")
        fmt = _go_time_format_to_strptime(layout)
        try:
            d = _dt.datetime.strptime(text, fmt)
        except ValueError as exc:
            raise _Fail(f"parsing time {text!r}: {exc}") from None
        if len(args) > 1 and d.tzinfo is None:
            zone = _zone(args[1])
            d = d.replace(tzinfo=zone) if zone is not None else d.astimezone()
        return GoTime(d)
    for fmt in ("%Y-%m-%d", "%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return GoTime(_dt.datetime.strptime(text, fmt))
        except ValueError:
            pass
    try:
        return GoTime(_dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise _Fail(f"cannot parse {text!r} as a date") from None


def _go_time_format_to_strptime(layout: str) -> str:
    out, i = [], 0
    while i < len(layout):
        for token, code in _GO_LAYOUT:
            if layout.startswith(token, i) and code.startswith("%"):
                out.append(code)
                i += len(token)
                break
        else:
            out.append("%%" if layout[i] == "%" else layout[i])
            i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Lexer (parser/lexer/state.go)
# ---------------------------------------------------------------------------------------------

_OPERATOR_WORDS = {"in", "or", "and", "matches", "contains", "startsWith", "endsWith", "let", "if", "else"}
_NOT_SUFFIX = {"in", "matches", "contains", "startsWith", "endsWith"}


def _is_alpha(c: str) -> bool:
    return c == "_" or c == "$" or c.isalpha()


def _is_alnum(c: str) -> bool:
    return _is_alpha(c) or c.isdigit()


class _Tok:
    __slots__ = ("kind", "value", "pos")

    def __init__(self, kind: str, value: Any, pos: int) -> None:
        self.kind = kind  # "op", "br", "id", "num", "str", "eof"
        self.value = value
        self.pos = pos

    def is_(self, kind: str, *values: Any) -> bool:
        return self.kind == kind and (not values or self.value in values)

    def __repr__(self) -> str:
        names = {"op": "Operator", "br": "Bracket", "id": "Identifier", "num": "Number", "str": "String", "eof": "EOF"}
        return f"{names[self.kind]}({self.value!r})"


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", "'": "'",
            '"': '"', "`": "`", "?": "?"}  # fmt: skip


def _unescape(body: str, quote: str, pos: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(body):
            raise _ParseError("unable to unescape string, found '\\' as last character", pos)
        e = body[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            hexdigits = body[i + 2 : i + 2 + n]
            if len(hexdigits) != n or not all(h in "0123456789abcdefABCDEF" for h in hexdigits):
                raise _ParseError("unable to unescape string", pos)
            code = int(hexdigits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise _ParseError("unable to unescape string", pos)
            out.append(chr(code))
            i += 2 + n
        elif e in "01234567":
            octal = body[i + 1 : i + 4]
            if len(octal) != 3 or not all(o in "01234567" for o in octal) or int(octal, 8) > 255:
                raise _ParseError("unable to unescape string", pos)
            out.append(chr(int(octal, 8)))
            i += 4
        else:
            raise _ParseError("unable to unescape string", pos)
    return "".join(out)


class _ParseError(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _lex(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(src)
    while True:
        if i >= n:
            toks.append(_Tok("eof", "", i))
            return toks
        c = src[i]
        start = i
        if c.isspace():
            i += 1
        elif c in "'\"":
            j = i + 1
            while j < n and src[j] != c:
                if src[j] == "\n":
                    raise _ParseError("literal not terminated", start)
                j += 2 if src[j] == "\\" else 1
            if j >= n:
                raise _ParseError("literal not terminated", start)
            body = src[i + 1 : j].replace("\r\n", "\n").replace("\r", "\n")
            toks.append(_Tok("str", _unescape(body, c, start), start))
            i = j + 1
        elif c == "`":
            j = src.find("`", i + 1)
            if j < 0:
                raise _ParseError("literal not terminated", start)
            toks.append(_Tok("str", src[i + 1 : j], start))
            i = j + 1
        elif c.isdigit() or (c == "." and i + 1 < n and src[i + 1].isdigit()):
            i = _lex_number(src, i, toks)
        elif c == "?":
            i += 2 if i + 1 < n and src[i + 1] in ".?" else 1
            toks.append(_Tok("op", src[start:i], start))
        elif c == "/":
            if src.startswith("//", i):
                j = src.find("\n", i)
                i = n if j < 0 else j + 1
            elif src.startswith("/*", i):
                j = src.find("*/", i + 2)
                if j < 0:
                    raise _ParseError("unclosed comment", start)
                i = j + 2
            else:
                toks.append(_Tok("op", "/", start))
                i += 1
        elif c == "#":
            toks.append(_Tok("op", "#", start))
            i += 1
            j = i
            while j < n and _is_alnum(src[j]):
                j += 1
            if j > i:
                toks.append(_Tok("id", src[i:j], i))
                i = j
        elif c in "|:":
            i += 2 if i + 1 < n and src[i + 1] == c else 1
            toks.append(_Tok("op", src[start:i], start))
        elif c in "([{)]}":
            toks.append(_Tok("br", c, start))
            i += 1
        elif c in ",;%+-^":
            toks.append(_Tok("op", c, start))
            i += 1
        elif c in "&!=*<>":
            i += 2 if i + 1 < n and src[i + 1] in "&=*" else 1
            toks.append(_Tok("op", src[start:i], start))
        elif c == ".":
            i += 2 if i + 1 < n and src[i + 1] == "." else 1
            toks.append(_Tok("op", src[start:i], start))
        elif _is_alnum(c):
            j = i
            while j < n and _is_alnum(src[j]):
                j += 1
            word = src[i:j]
            i = j
            if word == "not":
                toks.append(_Tok("op", "not", start))
                k = i
                while k < n and src[k].isspace():
                    k += 1
                m = k
                while m < n and _is_alnum(src[m]):
                    m += 1
                if src[k:m] in _NOT_SUFFIX:
                    toks.append(_Tok("op", src[k:m], k))
                    i = m
            elif word in _OPERATOR_WORDS:
                toks.append(_Tok("op", word, start))
            else:
                toks.append(_Tok("id", word, start))
        else:
            raise _ParseError(f"unrecognized character: {c!r}", start)


def _lex_number(src: str, i: int, toks: list[_Tok]) -> int:
    n, start = len(src), i
    digits = "0123456789_"
    if src[i] == "0" and i + 1 < n and src[i + 1] in "xXoObB":
        digits = {"x": "0123456789abcdefABCDEF_", "o": "01234567_", "b": "01_"}[src[i + 1].lower()]
        i += 2
    while i < n and src[i] in digits:
        i += 1
    if i < n and src[i] == ".":
        if i + 1 < n and src[i + 1] == ".":  # 1..3 is a range
            toks.append(_Tok("num", src[start:i], start))
            return i
        i += 1
        while i < n and src[i] in digits:
            i += 1
    if i < n and src[i] in "eE":
        i += 1
        if i < n and src[i] in "+-":
            i += 1
        while i < n and src[i] in digits:
            i += 1
    if i < n and _is_alnum(src[i]):
        raise _ParseError(f"bad number syntax: {src[start : i + 1]!r}", start)
    toks.append(_Tok("num", src[start:i], start))
    return i


# ---------------------------------------------------------------------------------------------
# Parser (parser/parser.go). Nodes are tuples: (kind, ...).
# ---------------------------------------------------------------------------------------------

_UNARY = {"not": 50, "!": 50, "-": 90, "+": 90}
_BINARY: dict[str, tuple[int, bool]] = {  # precedence, right-associative
    "|": (0, False), "or": (10, False), "||": (10, False), "and": (15, False), "&&": (15, False),
    "==": (20, False), "!=": (20, False), "<": (20, False), ">": (20, False), ">=": (20, False),
    "<=": (20, False), "in": (20, False), "matches": (20, False), "contains": (20, False),
    "startsWith": (20, False), "endsWith": (20, False), "..": (25, False), "+": (30, False),
    "-": (30, False), "*": (60, False), "/": (60, False), "%": (60, False), "**": (100, True),
    "^": (100, True), "??": (500, False),
}  # fmt: skip
_COMPARISON = {"<", ">", ">=", "<="}

# predicate builtins: 0 = (array, predicate), 1 = the predicate is optional, 2 = an optional expression follows it
_PREDICATES = {
    "all": 0, "none": 0, "any": 0, "one": 0, "filter": 0, "map": 0, "count": 1, "sum": 1, "find": 0,
    "findIndex": 0, "findLast": 0, "findLastIndex": 0, "groupBy": 0, "sortBy": 2, "reduce": 2,
}  # fmt: skip


class _Parser:
    def __init__(self, src: str) -> None:
        self.toks = _lex(src)
        self.i = 0
        self.depth = 0  # inside predicates
        self.nodes = 0
        self.nesting = 0

    @property
    def cur(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> None:
        if self.i < len(self.toks) - 1:
            self.i += 1

    def error(self, message: str, tok: _Tok | None = None) -> _ParseError:
        return _ParseError(message, (tok or self.cur).pos)

    def expect(self, kind: str, *values: str) -> None:
        if self.cur.is_(kind, *values):
            self.next()
            return
        if self.cur.kind == "eof":
            raise self.error("unexpected end of expression")
        raise self.error(f"unexpected token {self.cur!r}")

    def node(self, *parts: Any) -> tuple[Any, ...]:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.error(f"compilation failed: expression exceeds maximum allowed nodes ({MAX_NODES})")
        return parts

    def enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self.error(f"expression nested too deeply (more than {MAX_DEPTH} levels)")

    def parse(self) -> tuple[Any, ...]:
        node = self.sequence()
        if self.cur.kind != "eof":
            raise self.error(f"unexpected token {self.cur!r}")
        return node

    def sequence(self) -> tuple[Any, ...]:
        nodes = [self.expression(0)]
        while self.cur.is_("op", ";"):
            self.next()
            if self.cur.kind == "eof":
                break
            nodes.append(self.expression(0))
        return nodes[0] if len(nodes) == 1 else self.node("seq", nodes)

    def expression(self, precedence: int) -> tuple[Any, ...]:
        self.enter()
        try:
            return self._expression(precedence)
        finally:
            self.nesting -= 1

    def _expression(self, precedence: int) -> tuple[Any, ...]:
        if precedence == 0 and self.cur.is_("op", "let"):
            return self.let()
        if precedence == 0 and self.cur.is_("op", "if"):
            return self.conditional_if()
        left = self.primary()
        prev = ""
        op_tok = self.cur
        while op_tok.kind == "op":
            negate = op_tok.value == "not"
            if negate:
                backup = self.i
                self.next()
                if self.cur.value in _NOT_SUFFIX and self.cur.kind == "op":
                    if _BINARY[self.cur.value][0] >= precedence:
                        op_tok = self.cur
                    else:
                        self.i = backup
                        break
                else:
                    raise self.error(f"unexpected token {self.cur!r}")
            op = _BINARY.get(op_tok.value)
            if op is None or op[0] < precedence:
                break
            self.next()
            if op_tok.value == "|":
                ident = self.cur
                self.expect("id")
                left = self.call(ident, [left])
            else:
                if prev == "??" and op_tok.value != "??":
                    raise self.error(
                        f"Operator ({op_tok.value}) and coalesce expressions (??) cannot be mixed. "
                        "Wrap either by parentheses.",
                        op_tok,
                    )
                if op_tok.value in _COMPARISON:
                    left = self.comparison(left, op_tok, op[0])
                else:
                    right = self.expression(op[0] if op[1] else op[0] + 1)
                    left = self.node("binary", op_tok.value, left, right)
                    if negate:
                        left = self.node("unary", "not", left)
            prev = op_tok.value
            op_tok = self.cur
        if precedence == 0:
            left = self.ternary(left)
        return left

    def comparison(self, left: tuple[Any, ...], tok: _Tok, precedence: int) -> tuple[Any, ...]:
        root = None
        while True:
            right = self.expression(precedence + 1)
            cmp = self.node("binary", tok.value, left, right)
            root = cmp if root is None else self.node("binary", "&&", root, cmp)
            left = right
            tok = self.cur
            if not (tok.kind == "op" and tok.value in _COMPARISON):
                break
            self.next()
        return root

    def let(self) -> tuple[Any, ...]:
        self.expect("op", "let")
        name = self.cur
        self.expect("id")
        self.expect("op", "=")
        value = self.expression(0)
        self.expect("op", ";")
        body = self.sequence()
        return self.node("let", name.value, value, body)

    def conditional_if(self) -> tuple[Any, ...]:
        self.next()
        cond = self.expression(0)
        self.expect("br", "{")
        then = self.sequence()
        self.expect("br", "}")
        self.expect("op", "else")
        if self.cur.is_("op", "if"):
            other = self.conditional_if()
        else:
            self.expect("br", "{")
            other = self.sequence()
            self.expect("br", "}")
        return self.node("cond", cond, then, other)

    def ternary(self, node: tuple[Any, ...]) -> tuple[Any, ...]:
        while self.cur.is_("op", "?"):
            self.next()
            if not self.cur.is_("op", ":"):
                a = self.expression(0)
                self.expect("op", ":")
                b = self.expression(0)
            else:
                self.next()
                a = node
                b = self.expression(0)
            node = self.node("cond", node, a, b)
        return node

    def primary(self) -> tuple[Any, ...]:
        tok = self.cur
        if tok.kind == "op" and tok.value in _UNARY:
            self.next()
            operand = self.expression(_UNARY[tok.value])
            return self.postfix(self.node("unary", tok.value, operand))
        if tok.is_("br", "("):
            self.next()
            self.enter()
            inner = self.sequence()
            self.nesting -= 1
            self.expect("br", ")")
            return self.postfix(inner)
        if self.depth > 0 and tok.kind == "op" and tok.value in ("#", "."):
            name = ""
            if tok.value == "#":
                self.next()
                if self.cur.kind == "id":
                    name = self.cur.value
                    self.next()
            return self.postfix(self.node("ptr", name))
        if tok.is_("op", "::"):
            self.next()
            tok = self.cur
            self.expect("id")
            return self.postfix(self.call(tok, []))
        return self.secondary()

    def secondary(self) -> tuple[Any, ...]:
        tok = self.cur
        if tok.kind == "id":
            self.next()
            if tok.value == "true":
                return self.node("lit", True)
            if tok.value == "false":
                return self.node("lit", False)
            if tok.value == "nil":
                return self.node("lit", None)
            if self.cur.is_("br", "("):
                node = self.call(tok, [])
            else:
                node = self.node("ident", tok.value)
        elif tok.kind == "num":
            self.next()
            return self.node("lit", self.number(tok))
        elif tok.kind == "str":
            self.next()
            node = self.node("lit", tok.value)
        elif tok.is_("br", "["):
            node = self.array()
        elif tok.is_("br", "{"):
            node = self.map()
        elif tok.kind == "eof":
            raise self.error("unexpected end of expression")
        else:
            raise self.error(f"unexpected token {tok!r}")
        return self.postfix(node)

    def number(self, tok: _Tok) -> int | float:
        text = tok.value.replace("_", "")
        low = text.lower()
        try:
            if low.startswith(("0x", "0b", "0o")):
                value = int(text, 0)
            elif "." in low or "e" in low:
                f = float(text)
                if math.isinf(f):
                    raise ValueError("value out of range")
                return f
            else:
                value = int(text, 10)
        except ValueError as exc:
            raise self.error(f"invalid number literal: {exc}", tok) from None
        if value > _INT_MAX:
            raise self.error("integer literal is too large", tok)
        return value

    def call(self, tok: _Tok, args: list[Any]) -> tuple[Any, ...]:
        name = tok.value
        if name in _PREDICATES:
            kind = _PREDICATES[name]
            self.expect("br", "(")
            specs = (["expr", "pred"], ["expr", "pred?"], ["expr", "pred", "expr?"])[kind][len(args) :]
            for i, spec in enumerate(specs):
                if spec.endswith("?"):
                    if self.cur.is_("br", ")"):
                        break
                elif self.cur.is_("br", ")"):
                    raise self.error(f"expected at least {len(specs)} arguments")
                if i > 0:
                    self.expect("op", ",")
                args.append(self.predicate() if spec.startswith("pred") else self.expression(0))
            if self.cur.is_("op", ","):
                self.next()
            self.expect("br", ")")
            return self.node("builtin", name, args)
        if name in _BUILTINS:
            return self.node("builtin", name, self.arguments(args))
        return self.node("call", self.node("ident", name), self.arguments(args))

    def arguments(self, args: list[Any]) -> list[Any]:
        offset = len(args)
        self.expect("br", "(")
        while not self.cur.is_("br", ")"):
            if len(args) > offset:
                self.expect("op", ",")
            if self.cur.is_("br", ")"):
                break
            if self.cur.kind == "eof":
                raise self.error("unexpected end of expression")
            args.append(self.expression(0))
        self.expect("br", ")")
        return args

    def predicate(self) -> tuple[Any, ...]:
        braces = self.cur.is_("br", "{")
        if braces:
            self.next()
        self.depth += 1
        if braces:
            body = self.sequence()
        else:
            body = self.expression(0)
            if self.cur.is_("op", ";"):
                raise self.error("wrap predicate with brackets { and }")
        self.depth -= 1
        if braces:
            self.expect("br", "}")
        return self.node("pred", body)

    def array(self) -> tuple[Any, ...]:
        items: list[Any] = []
        self.expect("br", "[")
        while not self.cur.is_("br", "]"):
            if items:
                self.expect("op", ",")
                if self.cur.is_("br", "]"):
                    break
            if self.cur.kind == "eof":
                raise self.error("unexpected end of expression")
            items.append(self.expression(0))
        self.expect("br", "]")
        return self.node("array", items)

    def map(self) -> tuple[Any, ...]:
        pairs: list[Any] = []
        self.expect("br", "{")
        while not self.cur.is_("br", "}"):
            if pairs:
                self.expect("op", ",")
                if self.cur.is_("br", "}"):
                    break
            tok = self.cur
            if tok.kind in ("num", "str", "id"):
                key = self.node("lit", str(tok.value))
                self.next()
            elif tok.is_("br", "("):
                key = self.expression(0)
            else:
                raise self.error(
                    "a map key must be a quoted string, a number, a identifier, or an expression enclosed "
                    f"in parentheses (unexpected token {tok!r})"
                )
            self.expect("op", ":")
            pairs.append((key, self.expression(0)))
        self.expect("br", "}")
        return self.node("map", pairs)

    def postfix(self, node: tuple[Any, ...]) -> tuple[Any, ...]:
        while True:
            tok = self.cur
            if tok.kind not in ("op", "br"):
                return node
            optional = tok.value == "?."
            if optional:
                self.next()
                if self.cur.is_("br", "["):
                    tok = self.cur
                else:
                    tok = _Tok("op", ".", tok.pos)
                    self.i -= 1
            if tok.value == ".":
                self.next()
                prop = self.cur
                self.next()
                if not (prop.kind == "id" or (prop.kind == "op" and re.fullmatch(r"[A-Za-z_]\w*", str(prop.value)))):
                    raise self.error("expected name", prop)
                chained = node[0] == "chain"
                base = node[1] if chained else node
                member = self.node("member", base, self.node("lit", prop.value), optional)
                if self.cur.is_("br", "("):
                    node = self.node("call", member, self.arguments([]))
                else:
                    node = member
                if chained or optional:
                    node = self.node("chain", node)
            elif tok.value == "[":
                self.next()
                if self.cur.is_("op", ":"):
                    self.next()
                    to = None if self.cur.is_("br", "]") else self.expression(0)
                    node = self.node("slice", node, None, to)
                    self.expect("br", "]")
                else:
                    frm = self.expression(0)
                    if self.cur.is_("op", ":"):
                        self.next()
                        to = None if self.cur.is_("br", "]") else self.expression(0)
                        node = self.node("slice", node, frm, to)
                    else:
                        node = self.node("member", node, frm, optional)
                        if optional:
                            node = self.node("chain", node)
                    self.expect("br", "]")
            else:
                return node


def _parse(src: str) -> tuple[Any, ...]:
    if not isinstance(src, str):
        raise ExprError(str(src), "an expression must be a string")
    if len(src) > MAX_SOURCE:
        raise ExprError(src, f"expression longer than {MAX_SOURCE} characters")
    try:
        return _Parser(src).parse()
    except _ParseError as exc:
        line = src.count("\n", 0, exc.pos) + 1
        col = exc.pos - (src.rfind("\n", 0, exc.pos) + 1) + 1
        raise ExprError(src, f"{exc.message} (line {line}, column {col})") from None
    except RecursionError:
        raise ExprError(src, "expression nested too deeply") from None


# ---------------------------------------------------------------------------------------------
# Operators (vm/runtime helpers)
# ---------------------------------------------------------------------------------------------


def _mismatch(op: str, a: Any, b: Any) -> _Fail:
    # The runtime's wording (vm/runtime/helpers[generated].go): Argo's variables are `any`, so a
    # type clash shows up at run time, not in expr's checker.
    return _Fail(f"invalid operation: {_gotype(a)} {op} {_gotype(b)}")


class _Budget:
    """What one evaluation may spend: node evaluations (time) and bytes built (memory)."""

    __slots__ = ("steps", "work")

    def __init__(self) -> None:
        self.steps = 0
        self.work = 0


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("exprlang_budget", default=None)


def _charge(n: int) -> None:
    """Count `n` bytes about to be built (charged before building, so a hostile size never allocates)."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.work += n
        if budget.work > MAX_WORK:
            raise _Fail("memory budget exceeded (the expression builds too much data)")


def _cost(v: Any) -> int:
    if isinstance(v, str):
        return len(v)
    if isinstance(v, (list, tuple, Mapping)):
        return 8 * len(v)
    return 0


def _check_str(s: str) -> str:
    if len(s) > MAX_STRING:
        raise _Fail(f"string longer than {MAX_STRING} characters (memory budget exceeded)")
    return s


def _check_list(v: list[Any]) -> list[Any]:
    if len(v) > MAX_ITEMS:
        raise _Fail("memory budget exceeded")
    return v


def go_equal(a: Any, b: Any) -> bool:
    """runtime.Equal: numbers by value across int/float, otherwise same type and deep equality."""
    if _is_num(a) and _is_num(b):
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(go_equal(x, y) for x, y in zip(a, b, strict=True))
    return _deep_equal(a, b)


def _deep_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_num(a) and _is_num(b):
        return type(a) is type(b) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, (GoTime, GoDuration)) or isinstance(b, (GoTime, GoDuration)):
        return a == b
    return a is b


def _less(op: str, a: Any, b: Any) -> bool:
    if (_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str)):
        pass
    elif isinstance(a, GoTime) and isinstance(b, GoTime):
        a, b = a.dt, b.dt
    elif isinstance(a, GoDuration) and isinstance(b, GoDuration):
        a, b = a.ns, b.ns
    else:
        raise _mismatch(op, a, b)
    if op == "<":
        return a < b
    if op == ">":
        return a > b
    if op == "<=":
        return a <= b
    return a >= b


def _arith(op: str, a: Any, b: Any) -> Any:
    if _is_num(a) and _is_num(b):
        both_int = _is_int(a) and _is_int(b)
        if op == "+":
            return _wrap(a + b) if both_int else float(a) + float(b)
        if op == "-":
            return _wrap(a - b) if both_int else float(a) - float(b)
        if op == "*":
            return _wrap(a * b) if both_int else float(a) * float(b)
        if op == "/":
            x, y = float(a), float(b)
            if y == 0:
                if x == 0 or math.isnan(x):
                    return math.nan
                return math.copysign(math.inf, x) * math.copysign(1, y)
            return x / y
        if op == "%":
            if not both_int:
                raise _mismatch(op, a, b)
            if b == 0:
                raise _Fail("runtime error: integer divide by zero")
            r = abs(a) % abs(b)
            return -r if a < 0 else r  # Go truncates toward zero
        if op in ("**", "^"):
            try:
                return math.pow(float(a), float(b))
            except OverflowError:
                return math.inf
            except ValueError:  # 0 ** -1 and friends: Go's math.Pow gives Inf or NaN
                if float(a) == 0:
                    return math.inf
                return math.nan
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return _check_str(a + b)
    if isinstance(a, GoTime) and isinstance(b, GoDuration) and op in "+-":
        delta = _dt.timedelta(microseconds=b.ns // 1000)
        return GoTime(a.dt + delta if op == "+" else a.dt - delta)
    if op == "-" and isinstance(a, GoTime) and isinstance(b, GoTime):
        return GoDuration(_time_sub(a.dt, b.dt))
    if op == "+" and isinstance(a, GoDuration) and isinstance(b, GoTime):
        return GoTime(b.dt + _dt.timedelta(microseconds=a.ns // 1000))
    if op == "*" and isinstance(a, GoDuration) and (_is_int(b) or isinstance(b, GoDuration)):
        return GoDuration(a.ns * (b if _is_int(b) else b.ns))
    if op == "*" and _is_int(a) and isinstance(b, GoDuration):
        return GoDuration(a * b.ns)
    if isinstance(a, GoDuration) and isinstance(b, GoDuration) and op in "+-":
        return GoDuration(a.ns + b.ns if op == "+" else a.ns - b.ns)
    raise _mismatch(op, a, b)


def _in(needle: Any, container: Any) -> bool:
    if container is None:
        return False
    if isinstance(container, (list, tuple)):
        return any(go_equal(x, needle) for x in container)
    if isinstance(container, Mapping):
        if needle is None:
            needle = ""
        if not isinstance(needle, str):
            raise _Fail(f"reflect.Value.MapIndex: value of type {_gotype(needle)} is not assignable to type string")
        return needle in container
    raise _Fail(f'operator "in" not defined on {_gotype(container)}')


class _RegexSyntax(_Fail):
    """A pattern RE2 would refuse too (sprig's non-must regex functions then give a zero value)."""


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}
_NESTED_QUANT = re.compile(r"\((?:[^()\\]|\\.)*(?:[*+}?]|\|)(?:[^()\\]|\\.)*\)[*+{]")


def _go_regex(pattern: Any) -> re.Pattern[str]:
    """Compile a Go RE2 pattern with Python's re, refusing what RE2 refuses or what could backtrack forever.

    RE2 matches in linear time; Python's re backtracks. A quantified group that itself holds a
    quantifier or an alternation ((a+)+, (a|aa)*) can take exponential time, so it is refused.
    """
    if not isinstance(pattern, str):
        raise _Fail(f"cannot use {_gotype(pattern)} as a regular expression")
    cached = _REGEX_CACHE.get(pattern)
    if cached is not None:
        return cached
    if len(pattern) > 1000:
        raise _Fail("regular expression longer than 1000 characters")
    if re.search(r"\(\?<?[=!]|\\[1-9]|\(\?P=", pattern):
        raise _RegexSyntax(f"error parsing regexp: invalid or unsupported Perl syntax in {pattern!r}")
    if _NESTED_QUANT.search(pattern):
        raise _Fail(
            f"regular expression {pattern!r} repeats a group that holds a repetition or alternation; "
            "bioinfra refuses it (Python's backtracking matcher could take exponential time)"
        )
    py = pattern.replace("\\z", "\\Z")
    try:
        compiled = re.compile(py)
    except re.error as exc:
        raise _RegexSyntax(f"error parsing regexp: {exc}") from None
    if len(_REGEX_CACHE) < 256:
        _REGEX_CACHE[pattern] = compiled
    return compiled


def _matches(s: Any, pattern: Any) -> bool:
    if not isinstance(s, str) or not isinstance(pattern, str):
        raise _mismatch("matches", s, pattern)
    return _go_regex(pattern).search(s) is not None


def _fetch(obj: Any, key: Any) -> Any:
    """runtime.Fetch: a map's missing key is nil, an index out of range or a member of nil is an error."""
    if isinstance(obj, AnyKeyMap):
        return obj.get(key) if not isinstance(key, (list, dict)) else None
    if isinstance(obj, Mapping):
        if key is None:
            key = ""
        if not isinstance(key, str):
            raise _Fail(f"cannot fetch {go_fmt_v(key)} from {_gotype(obj)} (map keys are strings)")
        return obj.get(key)
    if isinstance(obj, (list, tuple, str)):
        if not _is_num(key):
            raise _Fail(f"cannot fetch {go_fmt_v(key)} from {_gotype(obj)}")
        index = _to_int(key)
        seq: Any = obj.encode() if isinstance(obj, str) else obj  # Go indexes a string's bytes
        n = len(seq)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise _Fail(f"index out of range: {index} (array length is {n})")
        return seq[index]
    if isinstance(obj, (GoTime, GoDuration)) and isinstance(key, str):
        return obj.method(key)
    raise _Fail(f"cannot fetch {go_fmt_v(key)} from {_gotype(obj)}")


def _slice(obj: Any, frm: Any, to: Any) -> Any:
    if not isinstance(obj, (list, tuple, str)):
        raise _Fail(f"cannot slice {_gotype(obj)}")
    data: Any = obj.encode() if isinstance(obj, str) else obj  # Go slices a string's bytes
    n = len(data)
    a = 0 if frm is None else _to_int(frm)
    b = n if to is None else _to_int(to)
    if a < 0:
        a = max(n + a, 0)
    if b < 0:
        b = max(n + b, 0)
    b = min(b, n)
    a = min(a, b)
    return data[a:b].decode("utf-8", "replace") if isinstance(obj, str) else list(data[a:b])


def _truth(v: Any, what: str) -> bool:
    if isinstance(v, bool):
        return v
    # the VM's v.(bool) assertion
    raise _Fail(f"interface conversion: interface {{}} is {'nil' if v is None else _gotype(v)}, not bool ({what})")


def _const_bool(node: tuple[Any, ...]) -> bool | None:
    """The bool a node folds to in expr's optimizer (literals, !literal, and/or of those), else None."""
    kind = node[0]
    if kind == "lit" and isinstance(node[1], bool):
        return node[1]
    if kind == "unary" and node[1] in ("!", "not"):
        inner = _const_bool(node[2])
        return None if inner is None else not inner
    if kind == "binary" and node[1] in ("and", "&&", "or", "||"):
        is_and = node[1] in ("and", "&&")
        a, b = _const_bool(node[2]), _const_bool(node[3])
        if a is is_and:
            return b
        if b is is_and:
            return a
        if a is (not is_and) or b is (not is_and):
            return not is_and
    return None


# ---------------------------------------------------------------------------------------------
# Evaluator
# ---------------------------------------------------------------------------------------------


class _Frame:
    __slots__ = ("elem", "index", "acc")

    def __init__(self) -> None:
        self.elem: Any = None
        self.index = 0
        self.acc: Any = None


class _Eval:
    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = env
        self.budget = _Budget()
        self.frames: list[_Frame] = []
        self.vars: dict[str, Any] = {}

    def tick(self, n: int = 1) -> None:
        self.budget.steps += n
        if self.budget.steps > MAX_STEPS:
            raise _Fail(f"evaluation took more than {MAX_STEPS} steps")

    def run(self, node: tuple[Any, ...]) -> Any:
        token = _BUDGET.set(self.budget)
        try:
            value = self.ev(node)
        finally:
            _BUDGET.reset(token)
        return None if value is _Nil else value

    def ev(self, node: tuple[Any, ...]) -> Any:
        self.tick()
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "ident":
            return self.ident(node[1])
        if kind == "member":
            obj = self.ev(node[1])
            if obj is _Nil:
                return _Nil
            if obj is None and node[3]:
                return _Nil  # ?. on nil ends the whole chain with nil
            key = self.ev(node[2])
            return _fetch(obj, key)
        if kind == "chain":
            value = self.ev(node[1])
            return None if value is _Nil else value
        if kind == "binary":
            return self.binary(node[1], node[2], node[3])
        if kind == "unary":
            return self.unary(node[1], self.val(node[2]))
        if kind == "cond":
            if _truth(self.val(node[1]), "condition"):
                return self.ev(node[2])
            return self.ev(node[3])
        if kind == "array":
            return _check_list([self.val(x) for x in node[1]])
        if kind == "map":
            out: dict[str, Any] = {}
            for k, v in node[1]:
                key = self.val(k)
                if not isinstance(key, str):
                    raise _Fail(f"a map key must be a string, got {_gotype(key)}")
                value = self.val(v)
                out.setdefault(key, value)  # {a: 1, a: 2} keeps the first, as expr does
            return out
        if kind == "slice":
            obj = self.val(node[1])
            _charge(_cost(obj))
            frm = None if node[2] is None else self.val(node[2])
            to = None if node[3] is None else self.val(node[3])
            return _slice(obj, frm, to)
        if kind == "ptr":
            return self.pointer(node[1])
        if kind == "builtin":
            return self.builtin(node[1], node[2])
        if kind == "call":
            return self.call(node[1], node[2])
        if kind == "let":
            saved = self.vars.get(node[1], _Nil)
            self.vars[node[1]] = self.val(node[2])
            try:
                return self.ev(node[3])
            finally:
                if saved is _Nil:
                    del self.vars[node[1]]
                else:
                    self.vars[node[1]] = saved
        if kind == "seq":
            value = None
            for x in node[1]:
                value = self.val(x)
            return value
        if kind == "pred":
            return self.ev(node[1])
        raise _Fail(f"unknown node {kind}")

    def val(self, node: tuple[Any, ...]) -> Any:
        value = self.ev(node)
        return None if value is _Nil else value

    def ident(self, name: str) -> Any:
        if name in self.vars:
            return self.vars[name]
        if name in self.env:
            return self.env[name]
        if name == "$env":
            return dict(self.env)
        raise _Fail(f"unknown name {name}")

    def pointer(self, name: str) -> Any:
        if not self.frames:
            raise _Fail("# is only defined inside a predicate")
        frame = self.frames[-1]
        if name == "":
            return frame.elem
        if name == "index":
            return frame.index
        if name == "acc":
            return frame.acc
        raise _Fail(f"unknown pointer #{name}")

    def binary(self, op: str, ln: tuple[Any, ...], rn: tuple[Any, ...]) -> Any:
        # expr's optimizer (optimizer/fold.go) first drops a literal true/false operand: `x && true`
        # is x and `x || true` is true whatever x is; otherwise both sides must be bools at run time.
        if op in ("and", "&&", "or", "||"):
            is_and = op in ("and", "&&")
            lc, rc = _const_bool(ln), _const_bool(rn)
            if lc is is_and:
                return self.ev(rn)
            if rc is is_and:
                return self.ev(ln)
            if lc is (not is_and) or rc is (not is_and):
                return not is_and
            left = _truth(self.val(ln), op)
            if left is not is_and:
                return left
            return _truth(self.val(rn), op)
        if op == "??":
            left = self.val(ln)
            return left if left is not None else self.val(rn)
        a, b = self.val(ln), self.val(rn)
        if isinstance(a, (list, tuple, str)) or isinstance(b, (list, tuple, str)):
            _charge(_cost(a) + _cost(b))  # comparing, searching and concatenating walk both sides
        if op == "==":
            return go_equal(a, b)
        if op == "!=":
            return not go_equal(a, b)
        if op in _COMPARISON:
            return _less(op, a, b)
        if op == "in":
            return _in(a, b)
        if op in ("contains", "startsWith", "endsWith", "matches") and (a is None or b is None):
            return False  # a nil operand of unknown type: the runtime gives false
        if op in ("contains", "startsWith", "endsWith"):
            if not isinstance(a, str) or not isinstance(b, str):
                raise _mismatch(op, a, b)
            return b in a if op == "contains" else a.startswith(b) if op == "startsWith" else a.endswith(b)
        if op == "matches":
            return _matches(a, b)
        if op == "..":
            if not _is_int(a) or not _is_int(b):
                raise _mismatch("..", a, b)
            if b - a + 1 > MAX_ITEMS:
                raise _Fail("memory budget exceeded")
            _charge(8 * max(b - a + 1, 0))
            return list(range(a, b + 1))
        return _arith(op, a, b)

    def unary(self, op: str, v: Any) -> Any:
        if op in ("not", "!"):
            if not isinstance(v, bool):
                raise _Fail(f"invalid operation: {op} {_gotype(v)}")
            return not v
        if not _is_num(v):
            if op == "-" and isinstance(v, GoDuration):
                return GoDuration(-v.ns)
            raise _Fail(f"invalid operation: {op} {_gotype(v)}")
        if op == "-":
            return _wrap(-v) if _is_int(v) else -v
        return v

    def call(self, callee: tuple[Any, ...], arg_nodes: list[Any]) -> Any:
        fn = self.ev(callee)
        if fn is _Nil:
            return _Nil  # a?.method() with a nil
        if not callable(fn) or isinstance(fn, type):
            what = callee[1] if callee[0] == "ident" else "value"
            raise _Fail(f"{what} is not a function (it is {_gotype(fn)})")
        args = [self.val(a) for a in arg_nodes]
        _charge(sum(_cost(a) for a in args))
        try:
            result = fn(*args)
            _charge(_cost(result))
            return result
        except _Fail:
            raise
        except TypeError as exc:
            raise _Fail(f"bad arguments: {exc}") from None
        except (ValueError, ArithmeticError, LookupError, re.error) as exc:
            raise _Fail(str(exc)) from None

    # -- builtins -----------------------------------------------------------------------------

    def items_of(self, value: Any, name: str) -> list[Any]:
        if isinstance(value, (list, tuple)):
            _charge(_cost(value))
            return list(value)
        if isinstance(value, str):  # a string of unknown type: the VM walks its bytes
            _charge(8 * len(value))
            return list(value.encode())
        raise _Fail(f"builtin {name} takes only array (got {_gotype(value)})")

    def predicate_loop(self, pred: tuple[Any, ...], items: list[Any]) -> Any:
        frame = _Frame()
        self.frames.append(frame)
        try:
            for i, item in enumerate(items):
                self.tick()
                frame.elem, frame.index = item, i
                yield i, item, self.val(pred)
        finally:
            self.frames.pop()

    def builtin(self, name: str, arg_nodes: list[Any]) -> Any:
        if name in _PREDICATES:
            return self.predicate_builtin(name, arg_nodes)
        fn, lo, hi = _BUILTINS[name]
        if not lo <= len(arg_nodes) <= hi:
            raise _Fail(f"invalid number of arguments for {name} (expected {lo}..{hi}, got {len(arg_nodes)})")
        args = [self.val(a) for a in arg_nodes]
        _charge(sum(_cost(a) for a in args))
        result = fn(*args)
        _charge(_cost(result))
        return result

    def predicate_builtin(self, name: str, nodes: list[Any]) -> Any:
        items = self.items_of(self.val(nodes[0]), name)
        pred = nodes[1] if len(nodes) > 1 else None
        if name in ("count", "sum") and pred is None:
            if name == "count":
                return sum(1 for x in items if _truth(x, "count"))
            return _sum(items)
        if name == "reduce":
            return self.reduce(items, pred, nodes[2] if len(nodes) > 2 else None)
        if name == "sortBy":
            order = self.val(nodes[2]) if len(nodes) > 2 else "asc"
            keys = [v for _, _, v in self.predicate_loop(pred, items)]
            return _sort_by(items, keys, order)
        results = self.predicate_loop(pred, items)
        if name == "filter":
            return [x for _, x, v in results if _truth(v, name)]
        if name == "map":
            return [v for _, _, v in results]
        if name == "all":
            return all(_truth(v, name) for _, _, v in results)
        if name == "any":
            return any(_truth(v, name) for _, _, v in results)
        if name == "none":
            return not any(_truth(v, name) for _, _, v in results)
        if name == "one":
            return sum(1 for _, _, v in results if _truth(v, name)) == 1
        if name == "count":
            return sum(1 for _, _, v in results if _truth(v, name))
        if name == "sum":
            return _sum([v for _, _, v in results])
        if name in ("find", "findIndex"):
            for i, x, v in results:
                if _truth(v, name):
                    results.close()
                    return x if name == "find" else i
            return None  # findIndex too: expr gives nil, not -1, when nothing matches
        if name in ("findLast", "findLastIndex"):
            found: Any = (None, None)
            for i, x, v in results:
                if _truth(v, name):
                    found = (x, i)
            return found[0] if name == "findLast" else found[1]
        if name == "groupBy":
            groups: AnyKeyMap = AnyKeyMap()
            for _, x, v in results:
                if isinstance(v, (list, dict)):
                    raise _Fail(f"cannot group by {_gotype(v)}")
                groups.setdefault(v, []).append(x)
            return groups
        raise _Fail(f"unknown builtin {name}")

    def reduce(self, items: list[Any], pred: tuple[Any, ...], init_node: tuple[Any, ...] | None) -> Any:
        if init_node is not None:
            acc = self.val(init_node)
            start = 0
        else:
            if not items:
                raise _Fail("reduce of empty array with no initial value")
            acc, start = items[0], 1
        frame = _Frame()
        self.frames.append(frame)
        try:
            for i in range(start, len(items)):
                self.tick()
                frame.elem, frame.index, frame.acc = items[i], i, acc
                acc = self.val(pred)
        finally:
            self.frames.pop()
        return acc


def _sum(values: list[Any]) -> Any:
    total: Any = 0
    for v in values:
        if not _is_num(v):
            raise _Fail(f"invalid argument for sum (type {_gotype(v)})")
        total = _arith("+", total, v)
    return total


def _sort_key(values: list[Any], what: str) -> Callable[[Any], Any]:
    if all(_is_num(v) for v in values) or all(isinstance(v, str) for v in values):
        return lambda v: v
    raise _Fail(f"{what}: cannot sort values of mixed or unsortable types")


def _sort_by(items: list[Any], keys: list[Any], order: Any) -> list[Any]:
    if order not in ("asc", "desc"):
        raise _Fail(f'unknown order {go_fmt_v(order)}, use "asc" or "desc"')
    _sort_key(keys, "sortBy")
    pairs = sorted(zip(keys, range(len(items)), strict=True), key=lambda p: p[0], reverse=order == "desc")
    return [items[i] for _, i in pairs]


# ---------------------------------------------------------------------------------------------
# expr builtins (builtin/builtin.go)
# ---------------------------------------------------------------------------------------------


def _s(v: Any, fn: str) -> str:
    if not isinstance(v, str):
        raise _Fail(f"invalid argument for {fn} (type {_gotype(v)})")
    return v


def _arr(v: Any, fn: str) -> list[Any]:
    if isinstance(v, (list, tuple)):
        return list(v)
    raise _Fail(f"invalid argument for {fn} (type {_gotype(v)})")


def _len(v: Any) -> int:
    if isinstance(v, (str, list, tuple, Mapping)):
        return len(v)
    raise _Fail(f"invalid argument for len (type {_gotype(v)})")


def _type(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "array"
    if isinstance(v, Mapping):
        return "map"
    if isinstance(v, GoTime):
        return "time.Time"
    if isinstance(v, GoDuration):
        return "time.Duration"
    if callable(v):
        return "func"
    return "unknown"


def _num_fn(name: str, f: Callable[[float], float]) -> Callable[[Any], Any]:
    def fn(v: Any) -> Any:
        if name == "abs" and _is_num(v):
            return _wrap(abs(v)) if _is_int(v) else abs(v)
        if not _is_num(v):
            raise _Fail(f"invalid argument for {name} (type {_gotype(v)})")
        return f(float(v))

    return fn


def _go_round(x: float) -> float:
    if math.isinf(x) or math.isnan(x):
        return x
    return float(math.copysign(math.floor(abs(x) + 0.5), x))


def _min_max(name: str, pick_b: Callable[[Any, Any], bool]) -> Callable[..., Any]:
    def fn(*args: Any) -> Any:
        best: Any = None

        def visit(v: Any, depth: int) -> None:
            nonlocal best
            if depth > 100:
                raise _Fail("recursion depth exceeded")
            if isinstance(v, (list, tuple)):
                for x in v:
                    if isinstance(x, (list, tuple)):
                        visit(x, depth + 1)
                    elif _is_num(x):
                        if best is None or pick_b(best, x):
                            best = x
                    else:
                        raise _Fail(f"invalid argument for {name} (type {_gotype(x)})")
            elif _is_num(v):
                if best is None or pick_b(best, v):
                    best = v
            else:
                raise _Fail(f"invalid argument for {name} (type {_gotype(v)})")

        if len(args) == 1 and not _is_num(args[0]) and not isinstance(args[0], (list, tuple)):
            return args[0]  # minMax's default case (the checker refuses it when the type is known)
        for a in args:
            visit(a, 0)
        return best

    return fn


def _numbers(args: tuple[Any, ...], name: str) -> list[float]:
    out: list[float] = []

    def visit(v: Any, depth: int) -> None:
        if depth > 100:
            raise _Fail("recursion depth exceeded")
        if isinstance(v, (list, tuple)):
            for x in v:
                visit(x, depth + 1)
        elif _is_num(v):
            out.append(float(v))
        else:
            raise _Fail(f"invalid argument for {name} (type {_gotype(v)})")

    for a in args:
        visit(a, 0)
    return out


def _mean(*args: Any) -> float:
    nums = _numbers(args, "mean")
    return sum(nums) / len(nums) if nums else 0.0


def _median(*args: Any) -> float:
    nums = sorted(_numbers(args, "median"))
    if not nums:
        return 0.0
    mid = len(nums) // 2
    return nums[mid] if len(nums) % 2 else (nums[mid - 1] + nums[mid]) / 2


def _split(s: Any, sep: Any, n: Any = -1) -> list[str] | None:
    s, sep, n = _s(s, "split"), _s(sep, "split"), _to_int(n)
    if n == 0:
        return None
    if sep == "":
        if len(s) > MAX_ITEMS:
            raise _Fail("memory budget exceeded")
        _charge(8 * len(s))
        parts = list(s)
        if n > 0 and len(parts) > n:
            parts = parts[: n - 1] + ["".join(parts[n - 1 :])]
        return parts
    return s.split(sep, n - 1 if n > 0 else -1)


def _split_after(s: Any, sep: Any, n: Any = -1) -> list[str] | None:
    parts = _split(s, sep, n)
    if parts is None:
        return None
    return [p + sep for p in parts[:-1]] + parts[-1:]


def _repeat(s: Any, n: Any) -> str:
    s, n = _s(s, "repeat"), _to_int(n)
    if n < 0:
        raise _Fail(f"invalid argument for repeat (expected positive integer, got {n})")
    if n > 1e6 or len(s) * n > MAX_STRING:
        raise _Fail("memory budget exceeded")
    _charge(len(s) * n)
    return s * n


def _byte_index(s: Any, sub: Any, last: bool = False) -> int:
    b, sb = _s(s, "indexOf").encode(), _s(sub, "indexOf").encode()
    return b.rfind(sb) if last else b.find(sb)  # Go counts bytes


def _join(v: Any, glue: Any = "") -> str:
    items = _arr(v, "join")
    glue = _s(glue, "join")
    for x in items:
        if not isinstance(x, str):
            raise _Fail(f"interface conversion: interface {{}} is {_gotype(x)}, not string")
    return _join_str(items, glue)


def _join_str(items: list[str], glue: str) -> str:
    size = sum(len(x) for x in items) + len(glue) * max(len(items) - 1, 0)
    if size > MAX_STRING:
        raise _Fail("memory budget exceeded")
    _charge(size)
    return glue.join(items)


def _replace(s: str, old: str, new: str) -> str:
    count = s.count(old) if old else len(s) + 1
    size = len(s) + count * (len(new) - len(old))
    if size > MAX_STRING:
        raise _Fail("memory budget exceeded")
    _charge(size)
    return s.replace(old, new)


def _indent(n: int, s: str) -> str:
    size = len(s) + max(n, 0) * (s.count("\n") + 1)
    if size > MAX_STRING:
        raise _Fail("memory budget exceeded")
    _charge(size)
    pad = " " * n
    return pad + s.replace("\n", "\n" + pad)


def _unique(items: list[Any], same: Callable[[Any, Any], bool], numbers_alike: bool) -> list[Any]:
    """Keep the first of equal items; scalars by hashing (so 1..100000 is not quadratic)."""
    out: list[Any] = []
    seen: set[Any] = set()
    others: list[Any] = []
    for x in items:
        if x is None or isinstance(x, (bool, int, float, str)):
            tag = "num" if numbers_alike and _is_num(x) else type(x).__name__
            key = (tag, x)
            if key in seen:
                continue
            seen.add(key)
        else:
            _charge(8 * len(others))
            if any(same(x, y) for y in others):
                continue
            others.append(x)
        out.append(x)
    return out


def _first(v: Any) -> Any:
    """first(): runtime.Fetch(v, 0) with any failure recovered as nil (the checker refuses known non-arrays)."""
    try:
        return _fetch(v, 0) if isinstance(v, (list, tuple, str)) else None
    except _Fail:
        return None


def _last(v: Any) -> Any:
    try:
        return _fetch(v, -1) if isinstance(v, (list, tuple, str)) else None
    except _Fail:
        return None


def _take(v: Any, n: Any) -> list[Any]:
    items = _arr(v, "take")
    if not _is_int(n):
        raise _Fail(f"cannot take {_gotype(n)} elements")
    if n < 0:
        raise _Fail("reflect.Value.Slice: slice index out of bounds")
    return items[:n]


def _sort(v: Any, order: Any = "asc") -> list[Any] | None:
    if v is None:
        return None  # a nil slice sorts to nil
    items = _arr(v, "sort")
    if order not in ("asc", "desc"):
        raise _Fail(f'unknown order {go_fmt_v(order)}, use "asc" or "desc"')
    _sort_key(items, "sort")
    return sorted(items, reverse=order == "desc")


def _uniq(v: Any) -> list[Any]:
    return _unique(_arr(v, "uniq"), go_equal, numbers_alike=True)


def _flatten(v: Any) -> list[Any]:
    out: list[Any] = []

    def visit(x: Any, depth: int) -> None:
        if depth > 100:
            raise _Fail("recursion depth exceeded")
        for y in x:
            if isinstance(y, (list, tuple)):
                visit(y, depth + 1)
            else:
                out.append(y)

    visit(_arr(v, "flatten"), 0)
    return _check_list(out)


def _concat(*arrays: Any) -> list[Any]:
    if not arrays:
        raise _Fail("invalid number of arguments (expected at least 1, got 0)")
    out: list[Any] = []
    for a in arrays:
        if not isinstance(a, (list, tuple)):
            raise _Fail(f"cannot concat {_gotype(a)}")
        out.extend(a)
        _check_list(out)
    return out


def _keys(v: Any) -> list[Any]:
    if not isinstance(v, Mapping):
        raise _Fail(f"cannot get keys from {_gotype(v)}")
    return list(v.keys())  # Go's map order is random; ours is insertion order


def _values(v: Any) -> list[Any]:
    if not isinstance(v, Mapping):
        raise _Fail(f"cannot get values from {_gotype(v)}")
    return list(v.values())


def _to_pairs(v: Any) -> list[Any]:
    if not isinstance(v, Mapping):
        raise _Fail(f"cannot transform {_gotype(v)} to pairs")
    return [[k, x] for k, x in v.items()]


def _from_pairs(v: Any) -> AnyKeyMap:
    out = AnyKeyMap()
    for pair in _arr(v, "fromPairs"):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise _Fail("invalid pair")
        out[pair[0]] = pair[1]
    return out


def _get(v: Any, key: Any) -> Any:
    """builtin get: like a member access but nil (no error) for a missing key or index."""
    if v is None:
        return None
    if isinstance(v, Mapping):
        return v.get(key) if isinstance(key, str) else None
    if isinstance(v, (list, tuple, str)) and _is_num(key):
        try:
            return _fetch(v, key)
        except _Fail:
            return None
    return None


def _from_base64(v: Any) -> str:
    try:
        text = _s(v, "fromBase64").replace("\r", "").replace("\n", "")  # Go's decoder skips them
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError) as exc:
        raise _Fail(f"illegal base64 data: {exc}") from None


def _bits(name: str, f: Callable[..., int]) -> Callable[..., int]:
    def fn(*args: Any) -> int:
        for a in args:
            if not _is_int(a):
                raise _Fail(f"invalid argument for {name} (type {_gotype(a)})")
        return _wrap(f(*args))

    return fn


def _shift(a: int, b: int, left: bool) -> int:
    if b < 0:
        raise _Fail("invalid operation: negative shift count")
    if left:
        return a << min(b, 64)
    return a >> min(b, 64)


def _now() -> GoTime:
    return GoTime(_dt.datetime.now(_dt.timezone.utc).astimezone())


_BUILTINS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "len": (_len, 1, 1),
    "type": (_type, 1, 1),
    "abs": (_num_fn("abs", abs), 1, 1),
    "ceil": (_num_fn("ceil", lambda x: float(math.ceil(x)) if math.isfinite(x) else x), 1, 1),
    "floor": (_num_fn("floor", lambda x: float(math.floor(x)) if math.isfinite(x) else x), 1, 1),
    "round": (_num_fn("round", _go_round), 1, 1),
    "int": (builtin_int, 1, 1),
    "float": (builtin_float, 1, 1),
    "string": (go_fmt_v, 1, 1),
    "trim": (lambda s, chars=None: _s(s, "trim").strip() if chars is None else s.strip(_s(chars, "trim")), 1, 2),
    "trimPrefix": (lambda s, p=" ": _s(s, "trimPrefix").removeprefix(_s(p, "trimPrefix")), 1, 2),
    "trimSuffix": (lambda s, p=" ": _s(s, "trimSuffix").removesuffix(_s(p, "trimSuffix")), 1, 2),
    "upper": (lambda s: _s(s, "upper").upper(), 1, 1),
    "lower": (lambda s: _s(s, "lower").lower(), 1, 1),
    "split": (_split, 2, 3),
    "splitAfter": (_split_after, 2, 3),
    "replace": (lambda s, a, b: _replace(_s(s, "replace"), _s(a, "replace"), _s(b, "replace")), 3, 3),
    "repeat": (_repeat, 2, 2),
    "indexOf": (_byte_index, 2, 2),
    "lastIndexOf": (lambda s, sub: _byte_index(s, sub, last=True), 2, 2),
    "hasPrefix": (lambda s, p: _s(s, "hasPrefix").startswith(_s(p, "hasPrefix")), 2, 2),
    "hasSuffix": (lambda s, p: _s(s, "hasSuffix").endswith(_s(p, "hasSuffix")), 2, 2),
    "max": (_min_max("max", lambda best, x: x > best), 1, 1_000),
    "min": (_min_max("min", lambda best, x: x < best), 1, 1_000),
    "mean": (_mean, 1, 1_000),
    "median": (_median, 1, 1_000),
    "concat": (_concat, 1, 1_000),
    "flatten": (_flatten, 1, 1),
    "uniq": (_uniq, 1, 1),
    "join": (_join, 1, 2),
    "first": (_first, 1, 1),
    "last": (_last, 1, 1),
    "take": (_take, 2, 2),
    "reverse": (lambda v: _arr(v, "reverse")[::-1], 1, 1),
    "sort": (_sort, 1, 2),
    "keys": (_keys, 1, 1),
    "values": (_values, 1, 1),
    "toPairs": (_to_pairs, 1, 1),
    "fromPairs": (_from_pairs, 1, 1),
    "get": (_get, 2, 2),
    "toJSON": (lambda v: go_json(v, "  "), 1, 1),
    "fromJSON": (_from_json, 1, 1),
    "toBase64": (lambda v: base64.b64encode(_s(v, "toBase64").encode()).decode(), 1, 1),
    "fromBase64": (_from_base64, 1, 1),
    "bitand": (_bits("bitand", lambda a, b: a & b), 2, 2),
    "bitor": (_bits("bitor", lambda a, b: a | b), 2, 2),
    "bitxor": (_bits("bitxor", lambda a, b: a ^ b), 2, 2),
    "bitnand": (_bits("bitnand", lambda a, b: a & ~b), 2, 2),
    "bitnot": (_bits("bitnot", lambda a: ~a), 1, 1),
    "bitshl": (_bits("bitshl", lambda a, b: _shift(a, b, True)), 2, 2),
    "bitshr": (_bits("bitshr", lambda a, b: _shift(a, b, False)), 2, 2),
    "bitushr": (_bits("bitushr", lambda a, b: (a % 2**64) >> min(_shift(0, b, False) or b, 64)), 2, 2),
    "now": (_now, 0, 0),
    "duration": (_parse_duration, 1, 1),
    "date": (_parse_date, 1, 3),
}


# ---------------------------------------------------------------------------------------------
# Argo's additions (util/expr/env/env.go): asInt, asFloat, jsonpath, toJson, sprig
# ---------------------------------------------------------------------------------------------


def _argo_to_json(v: Any) -> str:
    return go_json(v)


# -- jsonpath(json, path): github.com/evilmonkeyinc/jsonpath v0.8.1, as far as Workflows use it --------
# $ root, .key ['key'] ["key"], [n] (negative from the end), [*] .*, [a,b] unions, [start:end:step],
# ..key recursive descent, [?(filter)] with @/$ paths, literals, == != < <= > >= =~ && || ! and
# + - * / %. A missing key is an error, as in the library; after a wildcard, range or filter the
# rest of the path is applied to each element and the elements it fails on are dropped.


class _JPError(Exception):
    pass


def _jp_tokens(path: str) -> list[tuple[str, Any]]:
    if not path.startswith("$"):
        raise _JPError(f"invalid JSONPath {path!r}: it must start with $")
    toks: list[tuple[str, Any]] = []
    i, n = 1, len(path)
    while i < n:
        c = path[i]
        if path.startswith("..", i):
            i += 2
            if i < n and path[i] == "*":
                toks.append(("recursive", None))
                toks.append(("wildcard", None))
                i += 1
            elif i < n and path[i] == "[":
                toks.append(("recursive", None))
            else:
                m = re.compile(r"[^.\[\]\s]+").match(path, i)
                if not m:
                    raise _JPError(f"invalid JSONPath {path!r} at {i}")
                toks.append(("recursive", None))
                toks.append(("key", m.group(0)))
                i = m.end()
        elif c == ".":
            i += 1
            if i < n and path[i] == "*":
                toks.append(("wildcard", None))
                i += 1
            else:
                m = re.compile(r"[^.\[\]\s]+").match(path, i)
                if not m:
                    raise _JPError(f"invalid JSONPath {path!r} at {i}")
                toks.append(("length", None) if m.group(0) == "length" else ("key", m.group(0)))
                i = m.end()
        elif c == "[":
            end = _jp_bracket_end(path, i)
            toks.append(_jp_subscript(path[i + 1 : end].strip(), path))
            i = end + 1
        else:
            raise _JPError(f"invalid JSONPath {path!r} at {i}")
    return toks


def _jp_bracket_end(path: str, i: int) -> int:
    depth, quote = 0, ""
    j = i
    while j < len(path):
        c = path[j]
        if quote:
            if c == "\\":
                j += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "[(":
            depth += 1
        elif c in "])":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise _JPError(f"invalid JSONPath {path!r}: unclosed [")


def _jp_subscript(body: str, path: str) -> tuple[str, Any]:
    if body == "*":
        return ("wildcard", None)
    if body.startswith("?(") and body.endswith(")"):
        return ("filter", _JPFilter(body[2:-1]).parse())
    if body.startswith("(") and body.endswith(")"):
        return ("script", _JPFilter(body[1:-1]).parse())
    if re.fullmatch(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", body):
        return ("key", re.sub(r"\\(.)", r"\1", body[1:-1]))
    if re.fullmatch(r"-?\d+", body):
        return ("index", int(body))
    m = re.fullmatch(r"(-?\d*)\s*:\s*(-?\d*)(?:\s*:\s*(-?\d*))?", body)
    if m:
        a, b, step = (int(x) if x else None for x in m.groups())
        return ("range", (a, b, step))
    if "," in body:
        parts = [p.strip() for p in body.split(",")]
        keys: list[Any] = []
        for p in parts:
            if re.fullmatch(r"-?\d+", p):
                keys.append(int(p))
            elif re.fullmatch(r"'[^']*'|\"[^\"]*\"", p):
                keys.append(p[1:-1])
            else:
                raise _JPError(f"invalid union {body!r} in JSONPath {path!r}")
        return ("union", keys)
    raise _JPError(f"unsupported subscript [{body}] in JSONPath {path!r}")


def _jp_apply(root: Any, cur: Any, toks: list[tuple[str, Any]], depth: int = 0) -> Any:
    if depth > 200:
        raise _JPError("JSONPath nested too deeply")
    if not toks:
        return cur
    kind, arg = toks[0]
    rest = toks[1:]
    if kind == "key":
        if not isinstance(cur, Mapping):
            raise _JPError(f"key: invalid token target. expected [map] got [{_gotype(cur)}]")
        if arg not in cur:
            raise _JPError(f"key: invalid token key '{arg}' not found")
        return _jp_apply(root, cur[arg], rest, depth + 1)
    if kind == "length":
        if isinstance(cur, Mapping) and "length" in cur:
            return _jp_apply(root, cur["length"], rest, depth + 1)
        if isinstance(cur, (list, str, Mapping)):
            return _jp_apply(root, len(cur), rest, depth + 1)
        raise _JPError(f"length: invalid token target {_gotype(cur)}")
    if kind == "index":
        if not isinstance(cur, list):
            raise _JPError(f"index: invalid token target. expected [array slice] got [{_gotype(cur)}]")
        i = arg + len(cur) if arg < 0 else arg
        if not 0 <= i < len(cur):
            raise _JPError("index: invalid token out of range")
        return _jp_apply(root, cur[i], rest, depth + 1)
    if kind == "script":  # [(@.length-1)]: an index or key computed from the current value
        key = _jp_eval(arg, root, cur, 0)
        if _is_num(key) and float(key).is_integer():
            return _jp_apply(root, cur, [("index", int(key)), *rest], depth + 1)
        if isinstance(key, str):
            return _jp_apply(root, cur, [("key", key), *rest], depth + 1)
        raise _JPError(f"script: unexpected result {go_fmt_v(key)}")
    if kind == "union":
        items = []
        for k in arg:
            try:
                items.append(_jp_apply(root, cur, [("index" if isinstance(k, int) else "key", k)], depth + 1))
            except _JPError:
                continue
        return _jp_each(root, items, rest, depth)
    if kind == "wildcard":
        if isinstance(cur, Mapping):
            items = [cur[k] for k in sorted(cur)]
        elif isinstance(cur, list):
            items = list(cur)
        else:
            raise _JPError(f"wildcard: invalid token target {_gotype(cur)}")
        return _jp_each(root, items, rest, depth)
    if kind == "range":
        if not isinstance(cur, list):
            raise _JPError(f"range: invalid token target {_gotype(cur)}")
        a, b, step = arg
        if step == 0:
            raise _JPError("range: invalid step 0")
        items = cur[slice(a, b)]
        if step is not None:
            items = items[:: abs(step)]
            if step < 0:
                items = items[::-1]
        return _jp_each(root, items, rest, depth)
    if kind == "filter":
        if isinstance(cur, Mapping):
            elements = [cur[k] for k in sorted(cur)]
        elif isinstance(cur, list):
            elements = list(cur)
        else:
            raise _JPError(f"filter: invalid token target {_gotype(cur)}")
        kept = [e for e in elements if _jp_truthy(_jp_eval_safe(arg, root, e))]
        if rest and rest[0][0] == "index":
            return _jp_apply(root, kept, rest, depth + 1)
        return _jp_each(root, kept, rest, depth)
    if kind == "recursive":
        found: list[Any] = []
        budget = [0]

        def walk(node: Any, d: int) -> None:
            budget[0] += 1
            if d > 100 or budget[0] > 100_000:
                raise _JPError("JSONPath recursive descent too large")
            try:
                value = _jp_apply(root, node, rest, depth + 1)
            except _JPError:
                value = None
            if value is not None and not (isinstance(value, list) and not value and rest and rest[0][0] != "key"):
                if rest and rest[0][0] in ("wildcard", "range", "filter") and isinstance(value, list):
                    found.extend(value)
                else:
                    found.append(value)
            children = [node[k] for k in sorted(node)] if isinstance(node, Mapping) else node
            if isinstance(node, (Mapping, list)):
                for child in children:
                    if isinstance(child, (Mapping, list)):
                        walk(child, d + 1)

        walk(cur, 0)
        return found
    raise _JPError(f"unsupported JSONPath token {kind}")


def _jp_each(root: Any, items: list[Any], rest: list[tuple[str, Any]], depth: int) -> list[Any]:
    if not rest:
        return items
    out = []
    for item in items:
        try:
            value = _jp_apply(root, item, rest, depth + 1)
        except _JPError:
            continue
        if value is not None:
            out.append(value)
    return out


def _jp_truthy(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (list, Mapping)):
        return len(v) > 0
    if isinstance(v, str):
        if len(v) > 1 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]
        return v != ""
    return v != 0


def _jp_eval_safe(node: Any, root: Any, cur: Any) -> Any:
    try:
        return _jp_eval(node, root, cur, 0)
    except (_JPError, _Fail, TypeError, ValueError, ArithmeticError):
        return None


def _jp_eval(node: Any, root: Any, cur: Any, depth: int) -> Any:
    if depth > 100:
        raise _JPError("filter nested too deeply")
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "path":
        base = root if node[1] == "$" else cur
        return _jp_apply(root, base, node[2])
    if kind == "not":
        return not _jp_truthy(_jp_eval(node[1], root, cur, depth + 1))
    op, a_node, b_node = node[1], node[2], node[3]
    if op == "&&":
        return _jp_truthy(_jp_eval(a_node, root, cur, depth + 1)) and _jp_truthy(_jp_eval(b_node, root, cur, depth + 1))
    if op == "||":
        return _jp_truthy(_jp_eval(a_node, root, cur, depth + 1)) or _jp_truthy(_jp_eval(b_node, root, cur, depth + 1))
    a = _jp_eval(a_node, root, cur, depth + 1)
    b = _jp_eval(b_node, root, cur, depth + 1)
    if op in ("==", "!="):
        same = float(a) == float(b) if _is_num(a) and _is_num(b) else a == b
        return same if op == "==" else not same
    if op == "=~":
        return isinstance(a, str) and isinstance(b, str) and _go_regex(b).search(a) is not None
    if op in ("in", "not in"):
        coll = list(b.values()) if isinstance(b, Mapping) else b
        if not isinstance(coll, list):
            raise _JPError("in: the right side must be a collection")
        hit = any((_is_num(a) and _is_num(x) and float(a) == float(x)) or a == x for x in coll)
        return hit if op == "in" else not hit
    if not (_is_num(a) and _is_num(b)):
        raise _JPError(f"{op}: expected numbers")
    x, y = float(a), float(b)
    if op == "<":
        return x < y
    if op == "<=":
        return x <= y
    if op == ">":
        return x > y
    if op == ">=":
        return x >= y
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "/":
        return x / y
    if op == "%":
        return float(int(x) % int(y))
    if op == "**":
        return math.pow(x, y)
    raise _JPError(f"unsupported operator {op}")


class _JPFilter:
    """The filter expressions of evilmonkeyinc/jsonpath's standard script engine (a small subset)."""

    _TOKEN = re.compile(
        r"\s*(?:(?P<path>[@$](?:\.\.?[^\s.\[\]()!=<>&|+*/%-]+|\.\*|\[[^\]]*\])*)"
        r"|(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
        r"|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
        r"|(?P<op>&&|\|\||==|!=|<=|>=|=~|\*\*|not\s+in\b|in\b|[<>!+\-*/%()])"
        r"|(?P<word>true|false|nil|null)\b)"
    )
    _PREC = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "=~": 3, "in": 3, "not in": 3,
             "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "**": 6}  # fmt: skip

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks: list[tuple[str, Any]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = self._TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise _JPError(f"invalid filter expression {text!r} at {pos}")
            pos = m.end()
            kind = m.lastgroup
            value: Any = m.group(kind)
            if kind == "path":
                value = (value[0], _jp_tokens("$" + value[1:]))
            elif kind == "num":
                value = float(value)
            elif kind == "str":
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            elif kind == "word":
                kind, value = "lit", {"true": True, "false": False}.get(value)
            elif kind == "op" and value.startswith("not"):
                value = "not in"
            self.toks.append((kind, value))
        self.i = 0

    def parse(self) -> Any:
        node = self.expr(0, 0)
        if self.i != len(self.toks):
            raise _JPError(f"invalid filter expression {self.text!r}")
        return node

    def peek(self) -> tuple[str, Any] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def expr(self, min_prec: int, depth: int) -> Any:
        if depth > 50:
            raise _JPError("filter nested too deeply")
        left = self.unary(depth)
        while True:
            tok = self.peek()
            if not tok or tok[0] != "op" or tok[1] not in self._PREC or self._PREC[tok[1]] < min_prec:
                return left
            self.i += 1
            prec = self._PREC[tok[1]]
            right = self.expr(prec + 1, depth + 1)
            left = ("bin", tok[1], left, right)

    def unary(self, depth: int) -> Any:
        tok = self.peek()
        if tok is None:
            raise _JPError(f"invalid filter expression {self.text!r}")
        self.i += 1
        kind, value = tok
        if kind == "op" and value == "!":
            return ("not", self.unary(depth + 1))
        if kind == "op" and value == "-":
            return ("bin", "-", ("lit", 0.0), self.unary(depth + 1))
        if kind == "op" and value == "(":
            node = self.expr(0, depth + 1)
            if self.peek() != ("op", ")"):
                raise _JPError(f"invalid filter expression {self.text!r}: unclosed (")
            self.i += 1
            return node
        if kind == "path":
            return ("path", value[0], value[1])
        if kind in ("num", "str", "lit"):
            return ("lit", value)
        raise _JPError(f"invalid filter expression {self.text!r}")


def _jsonpath_query(text: Any, path: Any) -> Any:
    """Argo's jsonpath(json, path): unmarshal the JSON text (numbers as float64) and query it."""
    if not isinstance(text, str) or not isinstance(path, str):
        raise _Fail(f"jsonpath: cannot use {_gotype(text)}, {_gotype(path)} as (string, string)")
    data = _from_json(text)
    try:
        return _jp_apply(data, data, _jp_tokens(path.strip()))
    except _JPError as exc:
        raise _Fail(f"jsonpath {path!r}: {exc}") from None


_SPRIG: dict[str, Callable[..., Any]] = {}


# -- sprig (github.com/Masterminds/sprig/v3 v3.3.0, GenericFuncMap minus env/expandenv) -------------
# Sprig functions take the piped value last: sprig.trunc(5, s), sprig.replace(old, new, s).
# Numbers go through spf13/cast (a string that does not parse is 0); typed Go parameters
# (int, string) refuse other types, as reflect.Call does.


def _go_parse_int0(s: str) -> int | None:
    """strconv.ParseInt(s, 0, 64): 0x/0o/0b prefixes, a leading 0 is octal, _ only after a prefix."""
    m = re.fullmatch(r"([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9]*)", s)
    if not m:
        return None
    sign, body = m.groups()
    try:
        if len(body) > 1 and body[0] == "0" and body[1] not in "xXoObB":
            value = int(body[1:].replace("_", "") or "0", 8)
        else:
            value = int(body, 0)
    except ValueError:
        return None
    value = -value if sign == "-" else value
    return value if _INT_MIN <= value <= _INT_MAX else None


def _cast_int(v: Any) -> int:
    """cast.ToInt64 as sprig uses it: errors become 0."""
    if v is None:
        return 0
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return 0 if math.isnan(v) or math.isinf(v) else _wrap(int(v))
    if isinstance(v, str):
        text = re.sub(r"^([+-]?\d+)\.0*$", r"\1", v)  # cast's trimZeroDecimal
        parsed = _go_parse_int0(text)
        return 0 if parsed is None else parsed
    return 0


def _cast_float(v: Any) -> float:
    if v is None:
        return 0.0
    if isinstance(v, bool):
        return float(v)
    if _is_num(v):
        return float(v)
    if isinstance(v, str):
        try:
            return builtin_float(v)
        except _Fail:
            return 0.0
    return 0.0


def _p_int(v: Any, fn: str) -> int:
    if v is None:
        return 0
    if not _is_int(v):
        raise _Fail(f"sprig.{fn}: cannot use {_gotype(v)} as type int")
    return v


def _p_str(v: Any, fn: str) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise _Fail(f"sprig.{fn}: cannot use {_gotype(v)} as type string")
    return v


def _strval(v: Any) -> str:
    return v if isinstance(v, str) else go_fmt_v(v)


def _strslice(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [_strval(x) for x in v if x is not None]
    return [_strval(v)]


def _empty(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, bool):
        return not v
    if isinstance(v, (int, float)):
        return v == 0
    if isinstance(v, (str, list, tuple, Mapping)):
        return len(v) == 0
    return False


def _go_quote(s: str) -> str:
    """strconv.Quote."""
    out = ['"']
    for c in s:
        code = ord(c)
        if c in '"\\':
            out.append("\\" + c)
        elif c in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(c)])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not c.isprintable():
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _list_arg(v: Any, fn: str) -> list[Any]:
    if isinstance(v, (list, tuple)):
        return list(v)
    raise _Fail(f"sprig.{fn}: cannot find {fn} on type {_gotype(v)}")


def _dict_arg(v: Any, fn: str) -> Mapping[str, Any]:
    if isinstance(v, Mapping):
        return v
    raise _Fail(f"sprig.{fn}: cannot use {_gotype(v)} as type map[string]interface {{}}")


def _until_step(start: int, stop: int, step: int) -> list[int]:
    if step == 0 or (stop < start and step >= 0) or (stop > start and step <= 0):
        return []
    if abs(stop - start) // abs(step) > MAX_ITEMS:
        raise _Fail("memory budget exceeded")
    return list(range(start, stop, step))


def _seq(*params: Any) -> str:
    p = [_p_int(x, "seq") for x in params]
    if len(p) == 1:
        inc = -1 if p[0] < 1 else 1
        nums = _until_step(1, p[0] + inc, inc)
    elif len(p) == 2:
        step = -1 if p[1] < p[0] else 1
        nums = _until_step(p[0], p[1] + step, step)
    elif len(p) == 3:
        start, step, end = p
        inc = 1
        if end < start:
            inc = -1
            if step > 0:
                return ""
        nums = _until_step(start, end + inc, step)
    else:
        return ""
    return " ".join(map(str, nums))


def _sprig_round(a: Any, p: Any, *r_opt: Any) -> float:
    round_on = _cast_float(r_opt[0]) if r_opt else 0.5
    val, places = _cast_float(a), _cast_float(p)
    pow_ = math.pow(10, places)
    digit = pow_ * val
    frac = math.modf(digit)[0]
    return (math.ceil(digit) if frac >= round_on else math.floor(digit)) / pow_


def _dec(v: Any) -> Decimal:
    f = _cast_float(v)
    if math.isnan(f) or math.isinf(f):
        raise _Fail("cannot use a non-finite number in a decimal operation")
    return Decimal(repr(f))


def _decimal_op(op: Callable[[Decimal, Decimal], Decimal], first: Any, rest: tuple[Any, ...]) -> float:
    acc = _dec(first)
    for x in rest:
        acc = op(acc, _dec(x))
    return float(acc)


def _int_div(a: int, b: int) -> int:
    if b == 0:
        raise _Fail("runtime error: integer divide by zero")
    q = abs(a) // abs(b)
    return _wrap(q if (a < 0) == (b < 0) else -q)


def _int_mod(a: int, b: int) -> int:
    if b == 0:
        raise _Fail("runtime error: integer divide by zero")
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _sprig_title(s: str) -> str:
    out, prev_sep = [], True
    for c in s:
        out.append(c.upper() if prev_sep and c.isalpha() else c)
        prev_sep = not (c.isalnum() or c == "_") if ord(c) < 0x80 else c.isspace()
    return "".join(out)


def _sprig_untitle(s: str) -> str:
    out, prev_sep = [], True
    for c in s:
        out.append(c.lower() if prev_sep and c.isalpha() else c)
        prev_sep = not (c.isalnum() or c == "_") if ord(c) < 0x80 else c.isspace()
    return "".join(out)


def _substr(start: Any, end: Any, s: Any) -> str:
    # Go slices bytes
    a, b, data = _p_int(start, "substr"), _p_int(end, "substr"), _p_str(s, "substr").encode()
    return _substr_bytes(a, b, data).decode("utf-8", "replace")


def _substr_bytes(a: int, b: int, text: bytes) -> bytes:
    if a < 0:
        if b > len(text):
            raise _Fail(f"runtime error: slice bounds out of range [:{b}] with length {len(text)}")
        return text[:b]
    if b < 0 or b > len(text):
        if a > len(text):
            raise _Fail(f"runtime error: slice bounds out of range [{a}:{len(text)}]")
        return text[a:]
    if a > b:
        raise _Fail(f"runtime error: slice bounds out of range [{a}:{b}]")
    return text[a:b]


def _trunc(c: Any, s: Any) -> str:
    n, text = _p_int(c, "trunc"), _p_str(s, "trunc")
    data = text.encode()  # Go counts and slices bytes
    if n < 0 and len(data) + n > 0:
        return data[len(data) + n :].decode("utf-8", "replace")
    if n >= 0 and len(data) > n:
        return data[:n].decode("utf-8", "replace")
    return text


def _abbrev(width: Any, s: Any) -> str:
    w, text = _p_int(width, "abbrev"), _p_str(s, "abbrev")
    if w < 4 or len(text) <= w:
        return text
    return text[: w - 3] + "..."


def _go_repl_template(repl: str) -> str:
    """Go's Regexp.Expand template ($1, ${1}, $name, ${name}, $$) for Python's re.sub."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(2)
        return f"\\g<{name}>"

    escaped = repl.replace("\\", "\\\\")
    return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)", sub, escaped)


def _regex_replace_all(regex: Any, s: Any, repl: Any) -> str:
    pattern = _go_regex(_p_str(regex, "regexReplaceAll"))
    text, template = _p_str(s, "regexReplaceAll"), _go_repl_template(_p_str(repl, "regexReplaceAll"))

    def expand(m: re.Match[str]) -> str:
        try:
            return m.expand(template)
        except (IndexError, re.error):
            return ""  # Go expands an unknown group to ""

    return _check_str(pattern.sub(expand, text))


def _regex_split(regex: Any, s: Any, n: Any) -> list[str]:
    pattern, text, count = _go_regex(_p_str(regex, "regexSplit")), _p_str(s, "regexSplit"), _p_int(n, "regexSplit")
    if count == 0:
        return []
    if pattern.pattern and text == "":
        return [""]
    parts = pattern.split(text, maxsplit=count - 1 if count > 0 else 0)
    return [p for p in parts if isinstance(p, str)][: count if count > 0 else None]


def _regex_find_all(regex: Any, s: Any, n: Any) -> list[str] | None:
    pattern, text, count = (
        _go_regex(_p_str(regex, "regexFindAll")),
        _p_str(s, "regexFindAll"),
        _p_int(n, "regexFindAll"),
    )
    if count == 0:
        return None  # Go's FindAllString(s, 0) is nil
    found = [m.group(0) for m in pattern.finditer(text)]
    return (found if count < 0 else found[:count]) or None


def _regex_match(regex: Any, s: Any) -> bool:
    return _go_regex(_p_str(regex, "regexMatch")).search(_p_str(s, "regexMatch")) is not None


def _regex_find(regex: Any, s: Any) -> str:
    m = _go_regex(_p_str(regex, "regexFind")).search(_p_str(s, "regexFind"))
    return m.group(0) if m else ""


def _regex_replace_literal(regex: Any, s: Any, repl: Any) -> str:
    pattern = _go_regex(_p_str(regex, "regexReplaceAllLiteral"))
    literal = _p_str(repl, "regexReplaceAllLiteral")
    return _check_str(pattern.sub(lambda m: literal, _p_str(s, "regexReplaceAllLiteral")))


def _lenient(fn: Callable[..., Any], zero: Any) -> Callable[..., Any]:
    """sprig's regexMatch: a pattern that does not compile gives false (it drops MatchString's
    error). A pattern bioinfra refuses for safety still fails."""

    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except _RegexSyntax:
            return zero

    return call


def _go_path_clean(p: str) -> str:
    if not p:
        return "."
    out = posixpath.normpath(p)
    return "/" + out.lstrip("/") if out.startswith("//") else out


def _go_path_base(p: str) -> str:
    if not p:
        return "."
    p = p.rstrip("/")
    return p[p.rfind("/") + 1 :] if p else "/"


def _go_path_dir(p: str) -> str:
    return _go_path_clean(p[: p.rfind("/") + 1])


def _go_path_ext(p: str) -> str:
    for i in range(len(p) - 1, -1, -1):
        if p[i] == "/":
            break
        if p[i] == ".":
            return p[i:]
    return ""


def _chunk(size: Any, v: Any) -> list[list[Any]]:
    n, items = _p_int(size, "chunk"), _list_arg(v, "chunk")
    if n <= 0:
        raise _Fail("runtime error: integer divide by zero")
    return [items[i : i + n] for i in range(0, len(items), n)]


def _deep_copy(v: Any, depth: int = 0) -> Any:
    if depth > 100:
        raise _Fail("deepCopy: value nested too deeply")
    if isinstance(v, Mapping):
        return {k: _deep_copy(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_deep_copy(x, depth + 1) for x in v]
    return v


def _merge_dicts(dst: Any, *srcs: Any, override: bool = False) -> Any:
    target = _dict_arg(dst, "merge")
    if not isinstance(target, dict):
        raise _Fail("sprig.merge: the map is read-only")

    def into(a: dict[str, Any], b: Mapping[str, Any], depth: int) -> None:
        if depth > 100:
            raise _Fail("merge: value nested too deeply")
        for k, v in b.items():
            if isinstance(v, Mapping) and isinstance(a.get(k), dict):
                into(a[k], v, depth + 1)
            elif k not in a or override or _empty(a[k]):
                a[k] = v

    for src in srcs:
        into(target, _dict_arg(src, "merge"), 0)
    return target


def _abbrevboth(left: Any, right: Any, s: Any) -> str:
    lo, hi, text = _p_int(left, "abbrevboth"), _p_int(right, "abbrevboth"), _p_str(s, "abbrevboth")
    if hi < 4 or (lo > 0 and hi < 7):
        return text
    if len(text) <= hi:
        return text
    lo = min(lo, len(text))
    if len(text) - lo < hi - 3:
        lo = len(text) - (hi - 3)
    if lo <= 4:
        return text[: hi - 3] + "..."
    if hi < 7:
        return text
    if lo + hi - 3 < len(text):
        return "..." + _abbrev(hi - 3, text[lo:])
    return "..." + text[len(text) - (hi - 3) :]


def _b64dec(s: Any) -> str:
    try:
        text = _p_str(s, "b64dec").replace("\r", "").replace("\n", "")  # Go's decoder skips them
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError) as exc:
        return f"illegal base64 data: {exc}"  # sprig returns the error text


def _b32dec(s: Any) -> str:
    try:
        return base64.b32decode(_p_str(s, "b32dec")).decode("utf-8", "replace")
    except (binascii.Error, ValueError) as exc:
        return f"illegal base32 data: {exc}"


def _adler32(s: Any) -> str:
    import zlib  # noqa: PLC0415

    return str(zlib.adler32(_p_str(s, "adler32sum").encode()))


def _split_map(sep: Any, s: Any, n: int = -1) -> dict[str, str]:
    parts = _split(_p_str(s, "split"), _p_str(sep, "split"), n) or []
    return {f"_{i}": p for i, p in enumerate(parts)}


def _sprig_dict(*kv: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(0, len(kv), 2):
        out[_strval(kv[i])] = kv[i + 1] if i + 1 < len(kv) else ""
    return out


def _dig(*ps: Any) -> Any:
    if len(ps) < 3:
        raise _Fail("dig needs at least three arguments")
    cur, default = ps[-1], ps[-2]
    for key in ps[:-2]:
        if not isinstance(key, str):
            raise _Fail(f"dig: keys must be strings, got {_gotype(key)}")
        if not isinstance(cur, Mapping):
            raise _Fail(f"dig: cannot use {_gotype(cur)} as map[string]interface {{}}")
        if key not in cur:
            return default
        cur = cur[key]
    return cur


def _without(v: Any, *omit: Any) -> list[Any]:
    return [x for x in _list_arg(v, "without") if not any(_deep_equal(x, o) for o in omit)]


def _has(needle: Any, haystack: Any) -> bool:
    if haystack is None:
        return False
    return any(_deep_equal(x, needle) for x in _list_arg(haystack, "has"))


def _sprig_uniq(v: Any) -> list[Any]:
    return _unique(_list_arg(v, "uniq"), _deep_equal, numbers_alike=False)


def _sprig_slice(v: Any, *idx: Any) -> list[Any]:
    items = _list_arg(v, "slice")
    bounds = [_cast_int(i) for i in idx]
    a = bounds[0] if bounds else 0
    b = bounds[1] if len(bounds) > 1 else len(items)
    if not 0 <= a <= b <= len(items):
        raise _Fail(f"runtime error: slice bounds out of range [{a}:{b}]")
    return items[a:b]


def _sprig_first(v: Any) -> Any:
    items = _list_arg(v, "first")
    return items[0] if items else None


def _sprig_last(v: Any) -> Any:
    items = _list_arg(v, "last")
    return items[-1] if items else None


def _kind_of(v: Any) -> str:
    kinds = {"<nil>": "invalid", "[]interface {}": "slice", "map[string]interface {}": "map", "func": "func"}
    t = _gotype(v)
    return kinds.get(t, "struct" if t.startswith("time.") else t)


def _date_value(date: Any) -> _dt.datetime:
    if isinstance(date, GoTime):
        return date.dt
    if _is_int(date):
        return _dt.datetime.fromtimestamp(date, _dt.timezone.utc)
    return _dt.datetime.now(_dt.timezone.utc)  # sprig formats "now" for anything else, strings too


def _zone(name: Any) -> _dt.tzinfo | None:
    zone = _p_str(name, "dateInZone")
    if zone in ("UTC", ""):
        return _dt.timezone.utc
    if zone == "Local":
        return None
    try:
        from zoneinfo import ZoneInfo  # noqa: PLC0415

        return ZoneInfo(zone)
    except (ImportError, KeyError, ValueError):
        return _dt.timezone.utc  # sprig falls back to UTC when the zone does not load


def _date_in_zone(fmt: Any, date: Any, zone: Any) -> str:
    d = _date_value(date)
    tz = _zone(zone)
    d = d.astimezone(tz) if tz is not None else d.astimezone()
    return _go_time_format(d, _p_str(fmt, "date"))


def _to_date(fmt: Any, s: Any) -> GoTime:
    layout = _go_time_format_to_strptime(_p_str(fmt, "toDate"))
    try:
        d = _dt.datetime.strptime(_p_str(s, "toDate"), layout)
    except ValueError:
        return GoTime(_dt.datetime(1, 1, 1, tzinfo=_dt.timezone.utc))  # sprig ignores the error: zero time
    return GoTime(d.astimezone() if d.tzinfo is None else d)


def _sprig_duration(sec: Any) -> str:
    # sprig switches on string and int64 only; an expr integer is a Go int, so it counts as 0
    n = 0
    if isinstance(sec, str) and _ATOI_RE.match(sec) and _INT_MIN <= int(sec) <= _INT_MAX:
        n = int(sec)
    return GoDuration(n * 1_000_000_000).go_string()


def _sprig_set(d: Any, key: Any, value: Any) -> Any:
    target = _dict_arg(d, "set")
    if not isinstance(target, dict):
        raise _Fail("sprig.set: the map is read-only")
    target[_p_str(key, "set")] = value
    return target


def _sprig_unset(d: Any, key: Any) -> Any:
    target = _dict_arg(d, "unset")
    if not isinstance(target, dict):
        raise _Fail("sprig.unset: the map is read-only")
    target.pop(_p_str(key, "unset"), None)
    return target


def _fail(msg: Any) -> Any:
    raise _Fail(_strval(msg))


def _required(msg: Any, v: Any) -> Any:
    if v is None or (isinstance(v, str) and v == ""):
        raise _Fail(_strval(msg))
    return v


def _sprig_concat(*lists: Any) -> list[Any]:
    out: list[Any] = []
    for v in lists:
        out.extend(_list_arg(v, "concat"))
        _check_list(out)
    return out


def _sprig_from_json(s: Any) -> Any:
    try:
        return _from_json(_p_str(s, "fromJson"))
    except _Fail:
        return None


def _safe_json(v: Any, indent: str | None = None) -> str:
    try:
        return go_json(v, indent)
    except _Fail:
        return ""  # sprig ignores the marshalling error


def _raw_json(v: Any) -> str:
    text = _safe_json(v)
    for raw, esc in _JSON_HTML.items():
        text = text.replace(esc, raw)
    return text


_SPRIG.update(
    {
        # strings
        "upper": lambda s: _p_str(s, "upper").upper(),
        "lower": lambda s: _p_str(s, "lower").lower(),
        "title": lambda s: _sprig_title(_p_str(s, "title")),
        "untitle": lambda s: _sprig_untitle(_p_str(s, "untitle")),
        "trim": lambda s: _p_str(s, "trim").strip(),
        "trimAll": lambda cut, s: _p_str(s, "trimAll").strip(_p_str(cut, "trimAll")),
        "trimPrefix": lambda p, s: _p_str(s, "trimPrefix").removeprefix(_p_str(p, "trimPrefix")),
        "trimSuffix": lambda p, s: _p_str(s, "trimSuffix").removesuffix(_p_str(p, "trimSuffix")),
        "trunc": _trunc,
        "abbrev": _abbrev,
        "substr": _substr,
        "repeat": lambda n, s: _repeat(_p_str(s, "repeat"), _p_int(n, "repeat")),
        "contains": lambda sub, s: _p_str(sub, "contains") in _p_str(s, "contains"),
        "hasPrefix": lambda p, s: _p_str(s, "hasPrefix").startswith(_p_str(p, "hasPrefix")),
        "hasSuffix": lambda p, s: _p_str(s, "hasSuffix").endswith(_p_str(p, "hasSuffix")),
        "quote": lambda *v: " ".join(_go_quote(_strval(x)) for x in v if x is not None),
        "squote": lambda *v: " ".join(f"'{_strval(x)}'" for x in v if x is not None),
        "cat": lambda *v: " ".join(go_fmt_v(x) for x in v if x is not None),
        "replace": lambda old, new, s: _replace(_p_str(s, "replace"), _p_str(old, "replace"), _p_str(new, "replace")),
        "nospace": lambda s: "".join(c for c in _p_str(s, "nospace") if not c.isspace()),
        "initials": lambda s: "".join(w[0] for w in _p_str(s, "initials").split()),
        "indent": lambda n, s: _indent(_p_int(n, "indent"), _p_str(s, "indent")),
        "nindent": lambda n, s: "\n" + _indent(_p_int(n, "nindent"), _p_str(s, "nindent")),
        "plural": lambda one, many, n: _p_str(one, "plural") if _p_int(n, "plural") == 1 else _p_str(many, "plural"),
        "toString": _strval,
        "toStrings": _strslice,
        "split": lambda sep, s: _split_map(sep, s),
        "splitn": lambda sep, n, s: _split_map(sep, s, _p_int(n, "splitn")),
        "splitList": lambda sep, s: _split(_p_str(s, "splitList"), _p_str(sep, "splitList")) or [],
        "join": lambda sep, v: _join_str(_strslice(v), _p_str(sep, "join")),
        "sortAlpha": lambda v: sorted(_strslice(v)),
        "mustRegexMatch": _regex_match,
        "regexMatch": _lenient(_regex_match, False),
        # the others compile with regexp.MustCompile: a bad pattern fails in both forms
        "mustRegexFind": _regex_find,
        "regexFind": _regex_find,
        "mustRegexFindAll": _regex_find_all,
        "regexFindAll": _regex_find_all,
        "mustRegexReplaceAll": _regex_replace_all,
        "regexReplaceAll": _regex_replace_all,
        "mustRegexReplaceAllLiteral": _regex_replace_literal,
        "regexReplaceAllLiteral": _regex_replace_literal,
        "mustRegexSplit": _regex_split,
        "regexSplit": _regex_split,
        "regexQuoteMeta": lambda s: re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", _p_str(s, "regexQuoteMeta")),
        "b64enc": lambda s: base64.b64encode(_strval(s).encode()).decode(),
        "b64dec": _b64dec,
        "b32enc": lambda s: base64.b32encode(_strval(s).encode()).decode(),
        "b32dec": _b32dec,
        "sha1sum": lambda s: hashlib.sha1(_p_str(s, "sha1sum").encode()).hexdigest(),  # noqa: S324
        "sha256sum": lambda s: hashlib.sha256(_p_str(s, "sha256sum").encode()).hexdigest(),
        "sha512sum": lambda s: hashlib.sha512(_p_str(s, "sha512sum").encode()).hexdigest(),
        "adler32sum": _adler32,
        # defaults and logic
        "default": lambda d, *given: d if not given or _empty(given[0]) else given[0],
        "empty": _empty,
        "coalesce": lambda *v: next((x for x in v if not _empty(x)), None),
        "ternary": lambda vt, vf, cond: vt if _truth(cond, "sprig.ternary") else vf,
        "all": lambda *v: all(not _empty(x) for x in v),
        "any": lambda *v: any(not _empty(x) for x in v),
        "fail": _fail,
        "required": _required,
        # integer math (int64 through cast.ToInt64)
        "add": lambda *v: _wrap(sum(_cast_int(x) for x in v)),
        "add1": lambda v: _wrap(_cast_int(v) + 1),
        "sub": lambda a, b: _wrap(_cast_int(a) - _cast_int(b)),
        "mul": lambda a, *v: _wrap(math.prod([_cast_int(a)] + [_cast_int(x) for x in v])),
        "div": lambda a, b: _int_div(_cast_int(a), _cast_int(b)),
        "mod": lambda a, b: _int_mod(_cast_int(a), _cast_int(b)),
        "max": lambda a, *v: max([_cast_int(a)] + [_cast_int(x) for x in v]),
        "biggest": lambda a, *v: max([_cast_int(a)] + [_cast_int(x) for x in v]),
        "min": lambda a, *v: min([_cast_int(a)] + [_cast_int(x) for x in v]),
        "floor": lambda v: float(math.floor(_cast_float(v))),
        "ceil": lambda v: float(math.ceil(_cast_float(v))),
        "round": _sprig_round,
        "int": _cast_int,
        "int64": _cast_int,
        "float64": _cast_float,
        "atoi": lambda s: builtin_int(s) if isinstance(s, str) and _ATOI_RE.match(s) and abs(int(s)) < 2**63 else 0,
        # float math (shopspring/decimal)
        "addf": lambda *v: _decimal_op(lambda a, b: a + b, 0.0, v),
        "add1f": lambda v: _decimal_op(lambda a, b: a + b, v, (1.0,)),
        "subf": lambda a, *v: _decimal_op(lambda x, y: x - y, a, v),
        "mulf": lambda a, *v: _decimal_op(lambda x, y: x * y, a, v),
        "divf": lambda a, *v: _decimal_op(lambda x, y: x / y if y else _fail("decimal division by 0"), a, v),
        "maxf": lambda a, *v: max([_cast_float(a)] + [_cast_float(x) for x in v]),
        "minf": lambda a, *v: min([_cast_float(a)] + [_cast_float(x) for x in v]),
        "until": lambda n: _until_step(0, _p_int(n, "until"), -1 if _p_int(n, "until") < 0 else 1),
        "untilStep": lambda a, b, c: _until_step(
            _p_int(a, "untilStep"), _p_int(b, "untilStep"), _p_int(c, "untilStep")
        ),
        "seq": _seq,
        # lists
        "list": lambda *v: list(v),
        "first": _sprig_first,
        "last": _sprig_last,
        "rest": lambda v: _list_arg(v, "rest")[1:],
        "initial": lambda v: _list_arg(v, "initial")[:-1],
        "append": lambda v, x: _check_list(_list_arg(v, "append") + [x]),
        "push": lambda v, x: _check_list(_list_arg(v, "push") + [x]),
        "prepend": lambda v, x: _check_list([x] + _list_arg(v, "prepend")),
        "concat": _sprig_concat,
        "reverse": lambda v: _list_arg(v, "reverse")[::-1],
        "uniq": _sprig_uniq,
        "without": _without,
        "has": _has,
        "compact": lambda v: [x for x in _list_arg(v, "compact") if not _empty(x)],
        "slice": _sprig_slice,
        # dicts
        "dict": _sprig_dict,
        "get": lambda d, k: _dict_arg(d, "get").get(_p_str(k, "get"), ""),
        "set": _sprig_set,
        "unset": _sprig_unset,
        "hasKey": lambda d, k: _p_str(k, "hasKey") in _dict_arg(d, "hasKey"),
        "keys": lambda *ds: [k for d in ds for k in _dict_arg(d, "keys")],
        "values": lambda d: list(_dict_arg(d, "values").values()),
        "pluck": lambda name, *ds: [d[name] for d in ds if isinstance(d, Mapping) and name in d],
        "pick": lambda d, *ks: {k: v for k, v in _dict_arg(d, "pick").items() if k in ks},
        "omit": lambda d, *ks: {k: v for k, v in _dict_arg(d, "omit").items() if k not in ks},
        "dig": _dig,
        # encoding and types
        "toJson": _safe_json,
        "toPrettyJson": lambda v: _safe_json(v, "  "),
        "toRawJson": _raw_json,
        "fromJson": _sprig_from_json,
        "typeOf": _gotype,
        "kindOf": _kind_of,
        "typeIs": lambda t, v: _p_str(t, "typeIs") == _gotype(v),
        "kindIs": lambda t, v: _p_str(t, "kindIs") == _kind_of(v),
        "deepEqual": _deep_equal,
        "deepCopy": _deep_copy,
        "mustDeepCopy": _deep_copy,
        "typeIsLike": lambda t, v: _p_str(t, "typeIsLike") in (_gotype(v), "*" + _gotype(v)),
        "hello": lambda: "Hello!",
        "trimall": lambda cut, s: _p_str(s, "trimall").strip(_p_str(cut, "trimall")),
        "abbrevboth": _abbrevboth,
        "swapcase": lambda s: _p_str(s, "swapcase").swapcase(),
        "toDecimal": lambda v: _cast_int("0o" + _strval(v)) if re.fullmatch(r"[0-7]+", _strval(v)) else 0,
        "tuple": lambda *v: list(v),
        "chunk": _chunk,
        "mustChunk": _chunk,
        "merge": _merge_dicts,
        "mustMerge": _merge_dicts,
        "mergeOverwrite": lambda d, *srcs: _merge_dicts(d, *srcs, override=True),
        "mustMergeOverwrite": lambda d, *srcs: _merge_dicts(d, *srcs, override=True),
        "base": lambda p: _go_path_base(_p_str(p, "base")),
        "dir": lambda p: _go_path_dir(_p_str(p, "dir")),
        "clean": lambda p: _go_path_clean(_p_str(p, "clean")),
        "ext": lambda p: _go_path_ext(_p_str(p, "ext")),
        "isAbs": lambda p: _p_str(p, "isAbs").startswith("/"),
        "mustToJson": lambda v: go_json(v),
        "mustToPrettyJson": lambda v: go_json(v, "  "),
        "mustToRawJson": lambda v: _raw_json(v) if _safe_json(v) else go_json(v),
        "mustFromJson": lambda s: _from_json(_p_str(s, "mustFromJson")),
        "mustFirst": _sprig_first,
        "mustLast": _sprig_last,
        "mustRest": lambda v: _list_arg(v, "rest")[1:],
        "mustInitial": lambda v: _list_arg(v, "initial")[:-1],
        "mustAppend": lambda v, x: _check_list(_list_arg(v, "append") + [x]),
        "mustPush": lambda v, x: _check_list(_list_arg(v, "push") + [x]),
        "mustPrepend": lambda v, x: _check_list([x] + _list_arg(v, "prepend")),
        "mustReverse": lambda v: _list_arg(v, "reverse")[::-1],
        "mustUniq": _sprig_uniq,
        "mustWithout": _without,
        "mustHas": _has,
        "mustSlice": _sprig_slice,
        "mustCompact": lambda v: [x for x in _list_arg(v, "compact") if not _empty(x)],
        "htmlDateInZone": lambda d, zone: _date_in_zone("2006-01-02", d, zone),
        # dates (sprig formats in the local zone; a value it cannot read as a time is "now")
        "now": lambda: GoTime(_dt.datetime.now().astimezone()),
        "date": lambda fmt, d: _date_in_zone(fmt, d, "Local"),
        "dateInZone": _date_in_zone,
        "date_in_zone": _date_in_zone,
        "htmlDate": lambda d: _date_in_zone("2006-01-02", d, "Local"),
        "unixEpoch": lambda d: str(int(_need_time(d).dt.timestamp())),
        "toDate": _to_date,
        "duration": _sprig_duration,
    }
)


def argo_functions() -> dict[str, Any]:
    """The names GetFuncMap adds on top of the variables (they win over a variable of the same name)."""
    return {"asInt": builtin_int, "asFloat": builtin_float, "jsonpath": _jsonpath_query, "toJson": _argo_to_json,
            "sprig": _SPRIG}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Environment (util/expand/expand.go + bellows.Expand)
# ---------------------------------------------------------------------------------------------


def argo_env(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Expand Argo's flat variable map on dots, as util/expand.Expand (bellows.Expand) does.

    `{"inputs.parameters.x": "3"}` becomes `{"inputs": {"parameters": {"x": "3"}}}`. When a key is
    both a leaf and a prefix of another key (`{"inputs.parameters": "[...]", "inputs.parameters.x":
    "3"}`), Argo drops the less specific one (expand.removeConflicts), so `inputs.parameters` is
    `{"x": "3"}`. (Argo spots the conflict only between keys adjacent in sorted order, so with a key
    like `a-x` sorting in between, its answer depends on Go's map order; we always drop the leaf.)

    Beyond Argo (its map holds only strings): a dict value is merged with the dotted keys under
    it instead of being dropped, so nested and flat variables can be mixed. The input is not changed.
    """
    out: dict[str, Any] = {}
    keys = sorted(flat)
    prefixes = {k[:i] for k in keys for i, c in enumerate(k) if c == "."}
    for key in keys:
        value = flat[key]
        if key in prefixes and not isinstance(value, Mapping):
            continue  # a parent that has a child: removed, as removeConflicts does
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = node[part] = {}  # the more specific key wins over a leaf in its way
            node = nxt
        last = parts[-1]
        if isinstance(value, Mapping):
            existing = node.get(last)
            node[last] = _copy_tree(existing if isinstance(existing, dict) else {}, value, 0)
        else:
            node[last] = value
    return out


def _copy_tree(into: dict[str, Any], more: Mapping[str, Any], depth: int) -> dict[str, Any]:
    """Copy the dicts of `more` into `into` (so filling in dotted keys never changes the caller's dicts)."""
    for k, v in more.items():
        if isinstance(v, Mapping) and depth < 100:
            existing = into.get(k)
            into[k] = _copy_tree(existing if isinstance(existing, dict) else {}, v, depth + 1)
        else:
            into[k] = v
    return into


def _full_env(env: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(env, Mapping):
        raise TypeError("env must be a mapping")
    full = argo_env(env) if any("." in k for k in env) else dict(env)
    full.update(argo_functions())
    return full


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


_KIND_GO = {"int": "int", "float": "float64", "string": "string", "bool": "bool", "nil": "nil",
            "array": "[]interface {}", "map": "map[string]interface {}", "time": "time.Time",
            "duration": "time.Duration", "func": "func"}  # fmt: skip
_NUM = ("int", "float")
_BUILTIN_KIND = {
    "len": "int", "count": "int", "string": "string", "type": "string", "trim": "string", "trimPrefix": "string",
    "trimSuffix": "string", "upper": "string", "lower": "string", "replace": "string", "repeat": "string",
    "join": "string", "toJSON": "string", "toBase64": "string", "fromBase64": "string", "int": "int",
    "float": "float", "ceil": "float", "floor": "float", "round": "float", "mean": "float", "median": "float",
    "indexOf": "int", "lastIndexOf": "int", "hasPrefix": "bool", "hasSuffix": "bool", "all": "bool",
    "any": "bool", "none": "bool", "one": "bool", "filter": "array", "map": "array", "sortBy": "array",
    "split": "array", "splitAfter": "array", "keys": "array", "values": "array", "concat": "array",
    "flatten": "array", "uniq": "array", "reverse": "array", "sort": "array", "take": "array",
    "toPairs": "array", "now": "time", "date": "time", "duration": "duration",
}  # fmt: skip


def _kind(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "array"
    if isinstance(v, Mapping):
        return "map"
    if isinstance(v, GoTime):
        return "time"
    if isinstance(v, GoDuration):
        return "duration"
    return "unknown"


class _Checker:
    """The part of expr's checker (checker/checker.go) that refuses what the runtime would accept.

    expr type-checks before it runs: names must exist, `let` may not shadow, `#acc` lives only in
    reduce, and where both sides' types are known (literals, top-level variables: with a map env
    expr sees each top-level value's type; nested values are `any`) mismatched operands are errors,
    so `retries == 1` fails in Argo (retries is a string) while `inputs.parameters.x == 1` is false.
    """

    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = env
        self.vars: dict[str, str] = {}
        self.preds: list[str] = []

    def mismatch(self, op: str, a: str, b: str) -> _Fail:
        return _Fail(f"invalid operation: {op} (mismatched types {_KIND_GO.get(a, a)} and {_KIND_GO.get(b, b)})")

    def check(self, node: tuple[Any, ...]) -> str:  # noqa: C901, PLR0911, PLR0912 (one case per node kind)
        kind = node[0]
        if kind == "lit":
            return _kind(node[1])
        if kind == "ident":
            name = node[1]
            if name in self.vars:
                return self.vars[name]
            if name == "$env":
                return "map"
            if name not in self.env:
                raise _Fail(f"unknown name {name}")
            return _kind(self.env[name])
        if kind == "ptr":
            name = node[1]
            innermost = self.preds[-1] if self.preds else ""
            if name == "index" and innermost in ("map", "reduce"):
                return "int"
            if name == "" or (name == "acc" and innermost == "reduce"):
                return "unknown"
            raise _Fail(f"unknown pointer #{name}")  # #index lives in map and reduce, #acc in reduce
        if kind == "member":
            base, key = self.check(node[1]), self.check(node[2])
            prop = node[2][1] if node[2][0] == "lit" else None
            if node[1] == ("ident", "$env") and isinstance(prop, str):
                if prop not in self.env and prop not in self.vars:
                    raise _Fail(f"unknown name {prop}")
                return _kind(self.env.get(prop))
            if base == "nil":
                raise _Fail(f"type nil has no field {go_fmt_v(prop)}")
            if base == "string":
                raise _Fail(f"type string[{_KIND_GO.get(key, 'interface {}')}] is undefined")
            if base == "array" and key == "float":
                raise _Fail("array elements can only be selected using an integer (got float64)")
            return "unknown"
        if kind == "slice":
            base = self.check(node[1])
            for bound in node[2:]:
                if bound is not None and self.check(bound) == "float":
                    raise _Fail("non-integer slice index float64")
            return base if base in ("array", "string") else "unknown"
        if kind == "chain":
            self.check(node[1])
            return "unknown"
        if kind == "unary":
            operand = self.check(node[2])
            if node[1] in ("not", "!"):
                if operand not in ("bool", "unknown"):
                    raise _Fail(f"invalid operation: {node[1]} (mismatched type {_KIND_GO[operand]})")
                return "bool"
            if operand not in (*_NUM, "unknown", "duration"):
                raise _Fail(f"invalid operation: {node[1]} (mismatched type {_KIND_GO[operand]})")
            return operand
        if kind == "binary":
            left, right = self.check(node[2]), self.check(node[3])
            if node[1] == "in" and node[3][0] == "array" and node[3][1] and left not in ("unknown", "nil"):
                # an array literal whose elements share a type is typed ([]int): `'2' in [1, 2]` fails
                kinds = {self.check(x) for x in node[3][1]}
                elem = kinds.pop() if len(kinds) == 1 else "unknown"
                if elem not in ("unknown", "nil", left) and not (left in _NUM and elem in _NUM):
                    raise _Fail(f"cannot use {_KIND_GO[left]} as type {_KIND_GO[elem]} in array")
            return self.binary(node[1], left, right)
        if kind == "cond":
            cond = self.check(node[1])
            if cond not in ("bool", "unknown"):
                raise _Fail(f"non-bool expression (type {_KIND_GO[cond]}) used as condition")
            a, b = self.check(node[2]), self.check(node[3])
            return a if a == b else "unknown"
        if kind == "array":
            for x in node[1]:
                self.check(x)
            return "array"
        if kind == "map":
            for k, v in node[1]:
                self.check(k)
                self.check(v)
            return "map"
        if kind == "builtin":
            return self.builtin(node[1], node[2])
        if kind == "call":
            self.check(node[1])
            for a in node[2]:
                self.check(a)
            if node[1][0] == "ident":
                return {"asInt": "int", "asFloat": "float", "toJson": "string"}.get(node[1][1], "unknown")
            return "unknown"
        if kind == "let":
            name = node[1]
            if name in self.vars:
                raise _Fail(f"cannot redeclare variable {name}")
            if name in self.env or name in _BUILTINS or name in _PREDICATES:
                raise _Fail(f"cannot redeclare {name}")
            self.vars[name] = self.check(node[2])
            try:
                return self.check(node[3])
            finally:
                del self.vars[name]
        if kind == "seq":
            last = "unknown"
            for x in node[1]:
                last = self.check(x)
            return last
        if kind == "pred":
            return self.check(node[1])
        return "unknown"

    def builtin(self, name: str, args: list[Any]) -> str:
        if name in _PREDICATES:
            first = self.check(args[0])
            if first not in ("array", "unknown"):
                raise _Fail(f"builtin {name} takes only array (got {_KIND_GO[first]})")
            self.preds.append(name)
            try:
                for a in args[1:2]:
                    self.check(a)
            finally:
                self.preds.pop()
            for a in args[2:]:
                self.check(a)
        else:
            for a in args:
                self.check(a)
        if name in ("first", "last") and len(args) == 1:
            only = self.check(args[0])
            if only not in ("array", "unknown"):
                shown = "%!s(<nil>)" if only == "nil" else _KIND_GO[only]
                raise _Fail(f"cannot get {name} element from {shown}")
        if name in ("max", "min") and len(args) == 1:
            only = self.check(args[0])
            if only not in (*_NUM, "array", "unknown"):
                raise _Fail(f"invalid argument for {name} (type {_KIND_GO[only]})")
        if name == "abs" and len(args) == 1:
            return self.check(args[0])
        return _BUILTIN_KIND.get(name, "unknown")

    def binary(self, op: str, a: str, b: str) -> str:  # noqa: C901, PLR0911, PLR0912
        known = a != "unknown" and b != "unknown"
        if op in ("==", "!="):
            if known and a != "nil" and b != "nil" and a != b and not (a in _NUM and b in _NUM):
                raise self.mismatch(op, a, b)
            return "bool"
        if op in ("&&", "||", "and", "or"):
            if a not in ("bool", "unknown") or b not in ("bool", "unknown"):
                raise self.mismatch(op, a, b)
            return "bool"
        if op in _COMPARISON:
            if known and not ((a in _NUM and b in _NUM) or a == b in ("string", "time", "duration")):
                raise self.mismatch(op, a, b)
            return "bool"
        if op in ("contains", "startsWith", "endsWith", "matches"):
            if a not in ("string", "unknown") or b not in ("string", "unknown"):
                raise self.mismatch(op, a, b)
            return "bool"
        if op == "in":
            if b not in ("array", "map", "unknown") or (a == "nil" and b == "map"):
                raise self.mismatch(op, a, b)
            return "bool"
        if op == "..":
            if a not in ("int", "unknown") or b not in ("int", "unknown"):
                raise self.mismatch(op, a, b)
            return "array"
        if op == "??":
            return a if a == b else "unknown"
        if not known:
            return "float" if op in ("/", "**", "^") else "unknown"
        if a in _NUM and b in _NUM:
            if op in ("/", "**", "^"):
                return "float"
            if op == "%":
                if a != "int" or b != "int":
                    raise self.mismatch(op, a, b)
                return "int"
            return "int" if a == b == "int" else "float"
        allowed = {
            "+": {("string", "string"): "string", ("time", "duration"): "time", ("duration", "time"): "time",
                  ("duration", "duration"): "duration"},
            "-": {("time", "time"): "duration", ("time", "duration"): "time", ("duration", "duration"): "duration"},
            "*": {("duration", "int"): "duration", ("int", "duration"): "duration",
                  ("duration", "duration"): "duration"},
        }  # fmt: skip
        result = allowed.get(op, {}).get((a, b))
        if result is None:
            raise self.mismatch(op, a, b)
        return result


def _tree_depth(tree: tuple[Any, ...]) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, tuple):
            children = node[1:] if node and isinstance(node[0], str) else node
            for part in children:
                if isinstance(part, (tuple, list)):
                    stack.append((part, depth + (1 if isinstance(part, tuple) else 0)))
        elif isinstance(node, list):
            for x in node:
                stack.append((x, depth))
    return deepest


@functools.lru_cache(maxsize=512)
def compile_expression(source: str) -> tuple[Any, ...]:
    """Parse `source` into a syntax tree (raises ExprError). Cached: trees are never changed."""
    tree = _parse(source)
    if _tree_depth(tree) > 3 * MAX_DEPTH:
        raise ExprError(source, f"expression nested too deeply (more than {MAX_DEPTH} levels)")
    return tree


def evaluate(source: str, env: Mapping[str, Any]) -> Any:
    """Parse and evaluate one expr-lang expression over `env` with Argo's functions added.

    `env` holds the variables, nested (`{"inputs": {"parameters": {"x": "3"}}}`); flat dotted
    keys (`{"inputs.parameters.x": "3"}`) are expanded as Argo expands them (argo_env).
    Results are Python values: None (nil), bool, int, float, str, list, dict; time values from
    now()/date()/duration() are GoTime/GoDuration.
    """
    tree = compile_expression(source)
    full = _full_env(env)
    try:
        _Checker(full).check(tree)
        return _Eval(full).run(tree)
    except _Fail as exc:
        raise ExprError(source, str(exc)) from None
    except RecursionError:
        raise ExprError(source, "expression nested too deeply") from None
    except ExprError:
        raise
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise ExprError(source, f"evaluation failed: {exc}") from None


def tag_text(value: Any) -> str:
    """The text Argo puts in place of a `{{=...}}` tag whose expression gave `value`.

    expression_template.go json.Marshals the result and, for a JSON string, drops the quotes (the
    tag sits inside a JSON string, so the string comes out as is). Anything else is its JSON text:
    `{"a":1}`, `[1,2]`, `true`, `2.5`. nil is an error ("failed to evaluate expression").
    """
    if value is None:
        raise ExprError("", "the expression gave nil (Argo refuses to substitute nil)")
    if isinstance(value, str):
        return value
    if isinstance(value, GoTime):
        return value.rfc3339nano()
    try:
        return go_json(value)
    except _Fail as exc:
        raise ExprError("", f"failed to marshal evaluated expression: {exc}") from None


# Argo's late-binding variables: an expression naming one that is absent is left for later
# (expression_template.go variablesToCheck).
LATE_BINDING = ("item", "retries", "lastRetry.exitCode", "lastRetry.status", "lastRetry.duration",
                "lastRetry.message", "workflow.status", "workflow.failures")  # fmt: skip


def _identifiers(tree: tuple[Any, ...]) -> list[str]:
    """expression_template.go getIdentifiers: bare names and plain member paths (a.b.c), minus
    the member paths guarded by `??` (left side) or `?.` (the receiver)."""
    guarded: set[int] = set()

    def mark_guards(node: Any) -> None:
        if isinstance(node, list):
            for x in node:
                mark_guards(x)
            return
        if not (isinstance(node, tuple) and node and isinstance(node[0], str)):
            if isinstance(node, tuple):
                for x in node:
                    mark_guards(x)
            return
        if node[0] == "binary" and node[1] == "??":
            mark_members(node[2])
        if node[0] == "member" and node[3] and node[1][0] == "member":
            guarded.add(id(node[1]))
        for x in node[1:]:
            mark_guards(x)

    def mark_members(node: Any) -> None:
        if isinstance(node, list):
            for x in node:
                mark_members(x)
            return
        if isinstance(node, tuple):
            if node and node[0] == "member":
                guarded.add(id(node))
            for x in node[1:] if node and isinstance(node[0], str) else node:
                mark_members(x)

    found: list[str] = []

    def path(node: tuple[Any, ...]) -> str | None:
        parts: list[str] = []
        cur = node
        while True:
            if cur[3]:
                return None
            prop = cur[2]
            if prop[0] != "lit" or not isinstance(prop[1], str):
                return None
            parts.insert(0, prop[1])
            base = cur[1]
            if base[0] == "ident":
                parts.insert(0, base[1])
                return ".".join(parts)
            if base[0] != "member":
                return None
            cur = base

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for x in node:
                visit(x)
            return
        if not isinstance(node, tuple):
            return
        if not (node and isinstance(node[0], str)):
            for x in node:
                visit(x)
            return
        for x in node[1:]:  # ast.Walk visits children first, guarded or not
            visit(x)
        if id(node) in guarded:
            return
        if node[0] == "ident" and node[1] not in found:
            found.append(node[1])
        if node[0] == "member":
            p = path(node)
            if p is not None and p not in found:
                found.append(p)

    mark_guards(tree)
    visit(tree)
    return found


def _has_var(env: Mapping[str, Any], name: str) -> bool:
    """expression_template.go hasVarInEnv: present (a nil leaf counts) in the expanded env."""
    if name in env:
        return True
    cur: Any = env
    for part in name.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return False
        cur = cur[part]
    return True


def missing_variables(source: str, env: Mapping[str, Any]) -> list[str]:
    """The names and member paths `source` reads that `env` lacks, as Argo's missingVarsInEnv finds them."""
    tree = compile_expression(source)
    full = _full_env(env)
    return [name for name in _identifiers(tree) if not _has_var(full, name)]


_TAG_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def substitute_expressions(
    text: str,
    env: Mapping[str, Any],
    *,
    allow_unresolved: bool = False,
    strict_prefixes: tuple[str, ...] | None = None,
    simple_tag: Callable[[str], str] | None = None,
) -> str:
    """Replace every `{{=...}}` tag in `text`; simple `{{...}}` tags are left for the caller.

    A tag runs from `{{` to the first `}}` (fasttemplate), so an expression cannot contain `}}`
    (write `} }`). The result text is tag_text(value).

    Missing variables, as Argo's Replace/ReplaceStrict decide (expression_template.go):
    - default (Replace with allowUnresolved=false): a name or path the expression reads that env
      lacks is an error "<name> is missing"; any other failure, or a nil result, is an error.
    - allow_unresolved=True (Replace with allowUnresolved=true): such a tag is left as it is, and so
      is one whose evaluation fails or gives nil.
    - strict_prefixes=("tasks", "steps") (ReplaceStrict): missing names under those prefixes are
      errors; other missing names leave the tag as it is; with nothing missing, failures are errors.

    simple_tag, when given, replaces each simple tag (called with the text between the braces) in
    the same pass, as Argo's single fasttemplate pass does: text a tag puts in is never scanned
    again, so a value holding `{{=...}}` stays data.
    """
    out: list[str] = []
    pos = 0
    for m in _TAG_RE.finditer(text):
        body = m.group(1)
        if not body.startswith("="):
            if simple_tag is not None:
                out.append(text[pos : m.start()])
                pos = m.end()
                out.append(simple_tag(body))
            continue
        out.append(text[pos : m.start()])
        pos = m.end()
        out.append(_replace_one(m.group(0), body[1:], env, allow_unresolved, strict_prefixes))
    # fasttemplate refuses a start tag with no end tag after it (Argo then fails the template)
    last = text.rfind("{{")
    if last >= 0 and "}}" not in text[last + 2 :] and _TAG_RE.search(text, last) is None:
        unclosed = text[last:]
        if unclosed.startswith("{{=") or simple_tag is not None:
            raise ExprError(unclosed[:60], 'cannot find end tag "}}"')
    out.append(text[pos:])
    return "".join(out)


def _replace_one(
    tag: str, source: str, env: Mapping[str, Any], allow_unresolved: bool, strict_prefixes: tuple[str, ...] | None
) -> str:
    if strict_prefixes is not None:
        strict = re.compile(r"^(" + "|".join(re.escape(p) for p in strict_prefixes) + r")(\.|$)")
    elif allow_unresolved:
        strict = None
    else:
        strict = re.compile("")
    try:
        missing = missing_variables(source, env)
    except ExprError:
        if allow_unresolved and strict is None:
            return tag
        raise
    for name in missing:
        if strict is not None and strict.match(name):
            raise ExprError(source, f"failed to evaluate expression: {name} is missing")
    lenient = bool(missing) or strict is None
    if lenient and any(name in LATE_BINDING for name in missing):
        return tag
    try:
        value = evaluate(source, env)
        if value is None:
            raise ExprError(source, "failed to evaluate expression: the result is nil")
        return tag_text(value)
    except ExprError:
        if lenient:
            return tag
        raise
