"""Argo's two small expression languages, as far as our Workflows use them.

- `{{...}}` simple tags: substituted from a flat dict of variables (`workflow.parameters.x`,
  `inputs.parameters.y`, `tasks.t.outputs.parameters.z`). An unknown tag is an error, as it is in
  Argo, rather than a silent empty string. Expression tags (`{{=...}}`) are not supported.
- `depends:` boolean logic over task results, and `when:` conditions (govaluate): `&&`, `||`, `!`,
  parentheses, `==`, `!=`, `<`, `<=`, `>`, `>=`, quoted strings, numbers, true/false.
  Ref https://argo-workflows.readthedocs.io/en/latest/enhanced-depends-logic/
  Ref https://argo-workflows.readthedocs.io/en/latest/walk-through/conditionals/
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from bioinfra.errors import WorkflowSpecError

_TAG_RE = re.compile(r"\{\{\s*(=?)([^{}]*?)\s*\}\}")

# Argo's task results. A bare task name means "Succeeded || Skipped || Daemoned".
TASK_RESULTS = ("Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed")


class _Absent(str):
    """The value of a Skipped/Omitted node's output that declares no valueFrom.default: an "absent
    optional" (workflow/controller/dag.go resolveDependencyReferences, operator.go
    getTemplateOutputsFromScope). A tag reading it cannot be substituted; an argument that is only
    that tag counts as not supplied (the template input's default applies)."""


ABSENT = _Absent("")


def is_absent_reference(text: str, variables: Mapping[str, str]) -> bool:
    """The whole text is one tag whose value is ABSENT (markAbsentOptionalArgs' "pure reference")."""
    m = _TAG_RE.fullmatch(text.strip())
    return bool(m and not m.group(1) and variables.get(m.group(2)) is ABSENT)


ITEM = "\x00item"  # a fan-out child's item (any JSON value) in its scope, for expression tags


def substitute(text: str, variables: Mapping[str, str], *, where: str) -> str:
    if "{{" not in text:
        return text
    if _EXPRESSION_RE.search(text):
        return _substitute_with_expressions(text, variables, where=where)

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            raise WorkflowSpecError(f"{where}: expression tags ({{{{={match.group(2)}}}}}) are not supported locally")
        return _tag_value(match.group(2), variables, where)

    return _TAG_RE.sub(replace, text)


def _tag_value(name: str, variables: Mapping[str, str], where: str) -> str:
    """A simple tag's value; an unknown name or an absent optional is an error (the node's Error)."""
    if name not in variables:
        raise WorkflowSpecError(f"{where}: unknown variable {{{{{name}}}}}")
    value = variables[name]
    if value is ABSENT:
        raise WorkflowSpecError(
            f"{where}: {{{{{name}}}}} is an absent optional (skipped/omitted node output with no default)"
        )
    return str(value)


_EXPRESSION_RE = re.compile(r"\{\{\s*=")


def _substitute_with_expressions(text: str, variables: Mapping[str, str], *, where: str) -> str:
    """Expression tags `{{=...}}` (expr, bioinfra.executor.exprlang) and simple tags in one pass, as
    Argo's template.Replace does (util/template/expression_template.go): the expression's variables
    are the same as the simple tags', expanded on dots; an absent optional reads as nil (so `??`
    can give a fallback: dag.go resolveDependencyReferences' nil-preserving view)."""
    from bioinfra.executor import exprlang

    env: dict[str, object] = {k: (None if v is ABSENT else v) for k, v in variables.items() if k != ITEM}
    if ITEM in variables:
        env["item"] = variables[ITEM]

    def simple(body: str) -> str:
        return _tag_value(body.strip(), variables, where)

    try:
        return exprlang.substitute_expressions(text, env, simple_tag=simple)
    except exprlang.ExprError as exc:
        raise WorkflowSpecError(f"{where}: {exc.message}") from None


def evaluate_retry_expression(expression: str, retries: int, exit_code: int | None, status: str, duration: float,
                              message: str) -> bool:
    """retryStrategy.expression over Argo's retry scope, every value a string (operator.go
    buildRetryStrategyLocalScope: retries, lastRetry.exitCode/status/duration/message)."""
    from bioinfra.executor import exprlang

    env = {"retries": str(retries), "lastRetry": {
        "exitCode": "" if exit_code is None else str(exit_code), "status": status,
        "duration": str(int(duration)), "message": message,
    }}
    try:
        value = exprlang.evaluate(expression, env)
    except exprlang.ExprError as exc:
        raise WorkflowSpecError(f"retryStrategy.expression: {exc.message}") from None
    return value is True


def references(text: str) -> list[str]:
    return [m.group(2) for m in _TAG_RE.finditer(text)]


_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<op>&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|,)
      | '(?P<sq>[^']*)'
      | "(?P<dq>[^"]*)"
      | (?P<num>-?\d+(?:\.\d+)?)(?![\w.-])
      | (?P<word>[A-Za-z_][\w.-]*)
    )""",
    re.VERBOSE,
)


def _tokenize(expr: str) -> list[tuple[str, object]]:
    tokens: list[tuple[str, object]] = []
    pos = 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if not m or m.end() == pos:
            raise WorkflowSpecError(f"cannot parse expression {expr!r} at position {pos}")
        pos = m.end()
        if m.group("op"):
            tokens.append(("op", m.group("op")))
        elif m.group("sq") is not None:
            tokens.append(("str", m.group("sq")))
        elif m.group("dq") is not None:
            tokens.append(("str", m.group("dq")))
        elif m.group("num") is not None:
            tokens.append(("num", float(m.group("num"))))
        else:
            tokens.append(("word", m.group("word")))
    return tokens


class _Parser:
    """Recursive descent: or := and ('||' and)*; and := not ('&&' not)*; not := '!' not | cmp;
    cmp := atom (op atom)?; atom := '(' or ')' | literal | word."""

    def __init__(self, expr: str, word: Callable[[str], object]):
        self.expr = expr
        self.tokens = _tokenize(expr)
        self.i = 0
        self.word = word

    def parse(self) -> object:
        value = self._or()
        if self.i != len(self.tokens):
            raise WorkflowSpecError(f"unexpected {self.tokens[self.i][1]!r} in expression {self.expr!r}")
        return value

    def _peek(self) -> tuple[str, object] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take_op(self, *ops: str) -> str | None:
        tok = self._peek()
        if tok and tok[0] == "op" and tok[1] in ops:
            self.i += 1
            return str(tok[1])
        return None

    def _or(self) -> object:
        value = self._and()
        while self._take_op("||"):
            right = self._and()
            value = _truthy(value) or _truthy(right)
        return value

    def _and(self) -> object:
        value = self._not()
        while self._take_op("&&"):
            right = self._not()
            value = _truthy(value) and _truthy(right)
        return value

    def _not(self) -> object:
        if self._take_op("!"):
            return not _truthy(self._not())
        return self._cmp()

    def _cmp(self) -> object:
        left = self._atom()
        tok = self._peek()
        if tok == ("word", "in"):  # govaluate's membership: x in (a, b, c)
            self.i += 1
            if not self._take_op("("):
                raise WorkflowSpecError(f"'in' needs a parenthesised list in expression {self.expr!r}")
            members = [self._atom()]
            while self._take_op(","):
                members.append(self._atom())
            if not self._take_op(")"):
                raise WorkflowSpecError(f"missing ')' in expression {self.expr!r}")
            return left in members
        op = self._take_op("==", "!=", "<", "<=", ">", ">=")
        if not op:
            return left
        right = self._atom()
        if op == "==":
            return left == right
        if op == "!=":
            return left != right
        try:
            return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]  # type: ignore[operator]
        except TypeError:
            raise WorkflowSpecError(f"cannot compare {left!r} {op} {right!r} in {self.expr!r}") from None

    def _atom(self) -> object:
        tok = self._peek()
        if tok is None:
            raise WorkflowSpecError(f"expression {self.expr!r} ends too early")
        self.i += 1
        kind, value = tok
        if kind == "op" and value == "(":
            inner = self._or()
            if not self._take_op(")"):
                raise WorkflowSpecError(f"missing ')' in expression {self.expr!r}")
            return inner
        if kind in ("str", "num"):
            return value
        if kind == "word":
            return self.word(str(value))
        raise WorkflowSpecError(f"unexpected {value!r} in expression {self.expr!r}")


def _truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def evaluate_when(expr: str) -> bool:
    """Evaluate a `when:` condition whose tags were already substituted."""

    def word(w: str) -> object:
        if w in ("true", "false"):
            return w == "true"
        return w  # govaluate treats a bare word as its text here (e.g. Succeeded == Succeeded)

    return _truthy(_Parser(expr, word).parse())


def depends_tasks(expr: str) -> list[str]:
    """Task names an expression refers to, in order of first appearance."""
    names: list[str] = []
    for kind, value in _tokenize(expr):
        if kind == "word":
            name = _split_result(str(value))[0]
            if name not in names:
                names.append(name)
    return names


def _split_result(word: str) -> tuple[str, str | None]:
    base, dot, result = word.rpartition(".")
    if dot and result in TASK_RESULTS:
        return base, result
    return word, None


def evaluate_depends(expr: str, phase_of: Mapping[str, str],
                     children_of: Mapping[str, Sequence[str]] | None = None) -> bool:
    """Evaluate `depends:` given each referenced task's final phase, and for a fan-out task its
    children's phases (evaluateDependsLogic in Argo's workflow/controller/dag.go: AnySucceeded and
    AllFailed are about a TaskGroup's children; for any other task both are false)."""
    children_of = children_of or {}

    def word(w: str) -> object:
        name, result = _split_result(w)
        if name not in phase_of:
            raise WorkflowSpecError(f"depends refers to unknown task '{name}'")
        phase = phase_of[name]
        if result is None:
            return phase in ("Succeeded", "Skipped", "Daemoned")
        kids = children_of.get(name) or ()
        if result == "AnySucceeded":
            return any(k == "Succeeded" for k in kids)
        if result == "AllFailed":
            return bool(kids) and all(k == "Failed" for k in kids)
        if result == "Errored":
            return phase == "Error"
        return phase == result

    return _truthy(_Parser(expr, word).parse())
