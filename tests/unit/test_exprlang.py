"""expr-lang as Argo v3.7 evaluates it (bioinfra/executor/exprlang.py).

Expected values come from the expr-lang v1.17.7 docs (docs/language-definition.md) and runtime
(vm/runtime/runtime.go, builtin/), from Argo v3.7.18's tests (util/template/template_test.go,
replace_test.go, expression_template_test.go, util/expr/argoexpr/eval_test.go) and from the
expressions in Argo's examples/, test/e2e/ and docs/ (cited per case). The cases are restated
here, not copied.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
import re
import time
from pathlib import Path

import pytest
import yaml

from bioinfra.errors import WorkflowSpecError
from bioinfra.executor.exprlang import (
    ExprError,
    GoTime,
    argo_env,
    compile_expression,
    evaluate,
    go_fmt_v,
    missing_variables,
    substitute_expressions,
    tag_text,
)

REPO = Path(__file__).resolve().parents[2]
ARGO_REF = Path(os.environ.get("BIOINFRA_ARGO_REFERENCE", REPO.parent / "shared" / "argo-v3.7.18"))

EMPLOYEES = (
    '{"employees": [{"name": "Baris", "age":43, "friends": ["Mo", "Jai"]}, '
    '{"name": "Mo", "age": 42, "friends": ["Baris", "Jai"]}, {"name": "Jai", "age" :44, "friends": ["Baris", "Mo"]}]}'
)


def text(source: str, env: dict | None = None) -> str:
    return tag_text(evaluate(source, env or {}))


# ---------------------------------------------------------------------------------------------
# The language (expr docs/language-definition.md and the runtime helpers)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, expected",
    [
        # literals
        ("42", 42),
        ("0x2A", 42),
        ("0o52", 42),
        ("0b101010", 42),
        ("1_000", 1000),
        ("0.5", 0.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("'bar'", "bar"),
        ('"foo"', "foo"),
        (r'"a\tb\u00e9\x41"', "a\tbéA"),
        ("`raw\\n`", "raw\\n"),
        ("true", True),
        ("nil", None),
        ("[1, 'a', nil]", [1, "a", None]),
        ("[1, 2,]", [1, 2]),
        ("{a: 1, 'b c': 2, 3: 4}", {"a": 1, "b c": 2, "3": 4}),
        ("1 /* comment */ + 1 // trailing", 2),
        # arithmetic, with Go's types: / is always float, ints stay ints
        ("1 + 2 * 3", 7),
        ("7 / 2", 3.5),
        ("6 / 3", 2.0),
        ("7 % 3", 1),
        ("-7 % 3", -1),  # Go truncates toward zero
        ("2 ** 3", 8.0),
        ("2 ^ 3 ^ 2", 512.0),  # right-associative
        ("-2 ** 2", -4.0),
        ("1 + 2.5", 3.5),
        ("9223372036854775807 + 1", -9223372036854775808),  # int64 wraps
        ("'a' + 'b'", "ab"),
        # comparison and logic
        ("1 == 1.0", True),
        ("nil == nil", True),
        ("[1, 2] == [1, 2]", True),
        ("1 < 2 < 3", True),  # chained comparison: 1 < 2 && 2 < 3
        ("3 > 2 > 2", False),
        ("'abc' < 'abd'", True),
        ("true && !false", True),
        ("not true or true and false", False),
        ("false and [1][5] == 1", False),  # short circuit: the index is never read
        ("true or [1][5] == 1", True),
        # membership and strings
        ("2 in [1, 2]", True),
        ("'name' in {name: 1}", True),
        ("'x' not in {name: 1}", True),
        ("'John' in ['John', 'Jane']", True),
        ("'foobar' contains 'oba'", True),
        ("'foobar' not contains 'x'", True),
        ("'foobar' startsWith 'foo' and 'foobar' endsWith 'bar'", True),
        ("'imminent node shutdown' matches 'imminent node shutdown|pod deleted'", True),
        ("'abc' not matches '^b'", True),
        # conditionals
        ("true ? 'y' : 'n'", "y"),
        ("1 == 2 ? 'a' : 2 == 2 ? 'b' : 'c'", "b"),
        ("nil ?? 'fallback'", "fallback"),
        ("'' ?? 'fallback'", ""),
        ("(1 > 0) ?: false", True),
        ("if 1 > 2 { 'a' } else { 'b' }", "b"),
        ("let x = 42; x * 2", 84),
        ("let x = 1; let y = 2; x + y", 3),
        # ranges, slices, indexes
        ("1..3", [1, 2, 3]),
        ("3..1", []),
        ("[1, 2, 3, 4, 5][1:4]", [2, 3, 4]),
        ("[1, 2, 3, 4, 5][1:-1]", [2, 3, 4]),
        ("[1, 2, 3, 4, 5][:3]", [1, 2, 3]),
        ("[1, 2, 3, 4, 5][3:]", [4, 5]),
        ("[1, 2, 3][-1]", 3),
        ("'hello'[1:3]", "el"),
        # pipes and predicates
        ("'A B' | lower() | split(' ')", ["a", "b"]),
        ("filter(0..9, {# % 2 == 0})", [0, 2, 4, 6, 8]),
        ("map([1, 2], { # * 2 })", [2, 4]),
        ("filter([1, 2], { # > 1})", [2]),
        ("all([1, 2], # > 0)", True),
        ("any([1, 2], # > 1)", True),
        ("none([1, 2], # > 2)", True),
        ("one([1, 2], # > 1)", True),
        ("count([1, 2, 3], # > 1)", 2),
        ("count([true, false, true])", 2),
        ("sum([1, 2, 3])", 6),
        ("sum([{v: 1}, {v: 2.5}], .v)", 3.5),
        ("find([1, 2, 3, 4], # > 2)", 3),
        ("findIndex([1, 2, 3, 4], # > 2)", 2),
        ("findIndex([1], # > 2)", None),  # nil, not -1
        ("findLast([1, 2, 3, 4], # > 2)", 4),
        ("findLastIndex([1, 2, 3, 4], # > 2)", 3),
        ("find([1], # > 5)", None),
        ("reduce(1..9, #acc + #)", 45),
        ("reduce(1..3, #acc + #, 10)", 16),
        ("map(['a', 'b'], #index)", [0, 1]),
        ("groupBy([1, 2, 3, 4], # % 2)", {1: [1, 3], 0: [2, 4]}),
        ("groupBy([1, 2, 3, 4], # % 2)[0]", [2, 4]),
        ("[1] == [1.0]", True),  # arrays compare element by element
        ("sortBy([{n: 2}, {n: 1}], .n)", [{"n": 1}, {"n": 2}]),
        ("sortBy([{n: 2}, {n: 1}, {n: 3}], .n, 'desc')", [{"n": 3}, {"n": 2}, {"n": 1}]),
        ("filter([{c: 'abc'}, {c: 'x'}], len(.c) > 2)", [{"c": "abc"}]),
        ("map([[1, 2], [3]], { let outer = #; map(outer, # + len(outer)) })", [[3, 4], [4]]),
    ],
)
def test_language(source, expected):
    assert evaluate(source, {}) == expected


def test_int_and_float_types_are_kept():
    assert type(evaluate("6 / 3", {})) is float
    assert type(evaluate("2 * 3", {})) is int
    assert type(evaluate("ceil(1.5)", {})) is float


@pytest.mark.parametrize(
    "source, expected",
    [
        ("len([1, 2, 3])", 3),
        ("len({name: 'John', age: 30})", 2),
        ("len('héllo')", 5),  # runes
        ("abs(-5)", 5),
        ("ceil(1.5)", 2.0),
        ("floor(1.5)", 1.0),
        ("round(2.5)", 3.0),  # half away from zero
        ("round(-2.5)", -3.0),
        ("int('123')", 123),
        ("int(3.9)", 3),
        ("float('123.45')", 123.45),
        ("string(123)", "123"),
        ("string(1.5)", "1.5"),
        ("string(2.0)", "2"),  # Go's %v
        ("string([1, 'a'])", "[1 a]"),
        ("string({b: 1, a: 'x'})", "map[a:x b:1]"),
        ("string(nil)", "<nil>"),
        ("trim('  Hello  ')", "Hello"),
        ("trim('__Hello__', '_')", "Hello"),
        ("trimPrefix('HelloWorld', 'Hello')", "World"),
        ("trimSuffix('HelloWorld', 'World')", "Hello"),
        ("upper('hello')", "HELLO"),
        ("split('apple,orange,grape', ',', 2)", ["apple", "orange,grape"]),
        ("splitAfter('apple,orange,grape', ',')", ["apple,", "orange,", "grape"]),
        ("replace('Hello World', 'World', 'Universe')", "Hello Universe"),
        ("repeat('Hi', 3)", "HiHiHi"),
        ("indexOf('apple pie', 'pie')", 6),
        ("lastIndexOf('apple pie apple', 'apple')", 10),
        ("hasPrefix('HelloWorld', 'Hello')", True),
        ("max(5, 7)", 7),
        ("min([5, 7], 2.5)", 2.5),
        ("mean([1, 2, 3])", 2.0),
        ("median([1, 2, 3, 4])", 2.5),
        ("concat([1, 2], [3, 4])", [1, 2, 3, 4]),
        ("flatten([1, 2, [3, 4]])", [1, 2, 3, 4]),
        ("uniq([1, 2, 3, 2, 1])", [1, 2, 3]),
        ("join(['apple', 'orange', 'grape'], ',')", "apple,orange,grape"),
        ("join(['a', 'b'])", "ab"),
        ("first([1, 2, 3])", 1),
        ("last([])", None),
        ("take([1, 2, 3, 4], 2)", [1, 2]),
        ("reverse([3, 1, 4])", [4, 1, 3]),
        ("sort([3, 1, 4], 'desc')", [4, 3, 1]),
        ("keys({name: 'John'})", ["name"]),
        ("values({name: 'John'})", ["John"]),
        ("toPairs({name: 'John'})", [["name", "John"]]),
        ("fromPairs([['name', 'John']])", {"name": "John"}),
        ("get([1, 2, 3], 1)", 2),
        ("get([1, 2, 3], 9)", None),
        ("get({name: 'John'}, 'age')", None),
        ("type(42) + type('a') + type(1.5) + type([]) + type({}) + type(nil)", "intstringfloatarraymapnil"),
        ("toBase64('Hello World')", "SGVsbG8gV29ybGQ="),
        ("fromBase64('SGVsbG8gV29ybGQ=')", "Hello World"),
        ("fromJSON('{\"name\": \"John\", \"age\": 30}')", {"name": "John", "age": 30.0}),
        ("bitand(0b1010, 0b1100)", 0b1000),
        ("bitnot(0b1010)", -0b1011),
        ("bitshl(0b101101, 2)", 0b10110100),
        ("duration('1h').Seconds()", 3600.0),
        ("date('2023-08-14').Year()", 2023),
        ("date('2023-08-14 10:11:12', '2006-01-02 15:04:05').Minute()", 11),
    ],
)
def test_builtins(source, expected):
    assert evaluate(source, {}) == expected


def test_to_json_builtin_indents_and_argo_to_json_does_not():
    # expr's toJSON is json.MarshalIndent(v, "", "  "); Argo's toJson is json.Marshal (docs/variables.md).
    assert evaluate("toJSON({a: [1], b: 'x'})", {}) == '{\n  "a": [\n    1\n  ],\n  "b": "x"\n}'
    assert evaluate("toJson({b: 'x', a: [1]})", {}) == '{"a":[1],"b":"x"}'
    assert evaluate("toJson('<&>')", {}) == '"\\u003c\\u0026\\u003e"'  # Go escapes HTML characters


def test_member_access_and_nil_rules():
    env = {"a": {"b": {"c": 1}, "n": None, "list": [10, 20]}, "s": "str"}
    assert evaluate("a.b.c", env) == 1
    assert evaluate("a['b']['c']", env) == 1
    assert evaluate("a.missing", env) is None  # a map's missing key is nil
    assert evaluate("a.n?.x", env) is None
    assert evaluate("a.n?.x.y.z", env) is None  # ?. ends the whole chain
    assert evaluate("a?.['b']?.c", env) == 1
    assert evaluate("a.list[1]", env) == 20
    assert evaluate("a.n?.x ?? 'd'", env) == "d"
    with pytest.raises(ExprError, match="cannot fetch x from <nil>"):
        evaluate("a.n.x", env)
    with pytest.raises(ExprError, match="index out of range"):
        evaluate("a.list[5]", env)
    with pytest.raises(ExprError, match="cannot fetch length from string"):
        evaluate("a.list.length", {"a": {"list": "str"}})


@pytest.mark.parametrize(
    "source, message",
    [
        # expr's checker refuses mismatched operands whose types it knows (literals, top-level values)
        ("'1' == 1", r"invalid operation: == \(mismatched types string and int\)"),
        ("'a' < 1", r"invalid operation: < \(mismatched types string and int\)"),
        ("'a' + 1", r"invalid operation: \+ \(mismatched types string and int\)"),
        ("1.5 % 1", r"invalid operation: % \(mismatched types float64 and int\)"),
        ("1 && true", r"invalid operation: && \(mismatched types int and bool\)"),
        ("'x' ?: 'y'", r"non-bool expression \(type string\) used as condition"),
        ("'abc'[0]", r"type string\[int\] is undefined"),
        ("[1, 2][1.5]", "array elements can only be selected using an integer"),
        ("filter({a: 1}, # > 0)", "builtin filter takes only array"),
        ("map([1], #acc)", "unknown pointer #acc"),
        ("filter([1], #index > 0)", "unknown pointer #index"),  # #index lives in map and reduce only
        ("false in [1, 2]", "cannot use bool as type int in array"),
        ("first('abc')", "cannot get first element from string"),
        ("let x = 1; let x = 2; x", "cannot redeclare variable x"),
        ("1 % 0", "integer divide by zero"),
        ("!'x'", "invalid operation"),
        ("int('3.5')", r"invalid operation: int\(3.5\)"),
        ("int(' 3')", "invalid operation"),
        ("float('1__0')", "invalid operation"),
        ("float('abc')", "invalid operation"),
        ("len(1)", "invalid argument for len"),
        ("repeat('x', -1)", "positive integer"),
        ("join([1])", "not string"),
        ("undefinedName", "unknown name undefinedName"),
        ("true || undefinedName", "unknown name undefinedName"),  # a compile-time check in expr
        ("null", "unknown name null"),  # util/expr/argoexpr/eval_test.go "test null expression"
        ("foo(", "unexpected end of expression"),
        ("1 +", "unexpected end of expression"),
        ("!", "unexpected end of expression"),  # replace_test.go "{{=!}}" is an error
        ("invalid expression", "unexpected token"),  # eval_test.go "test parse expression error"
        ("'unterminated", "literal not terminated"),
        ("1 ?? 2 + 3", "cannot be mixed"),
        ("# > 1", "unexpected token"),  # # is only defined in a predicate
        ("fromJSON('{bad')", "invalid JSON"),
        ("99999999999999999999", "too large"),
        ("@", "unrecognized character"),
    ],
)
def test_errors(source, message):
    with pytest.raises(ExprError, match=message) as info:
        evaluate(source, {})
    assert isinstance(info.value, WorkflowSpecError)
    assert source[:20] in str(info.value)  # the message names the expression


def test_run_time_types_of_nested_values():
    # Argo's variables sit in nested maps, so expr only learns their types at run time
    # (vm/runtime/helpers[generated].go): == of different types is false, ordering them is an error.
    env = {"inputs": {"parameters": {"x": "3", "n": 3}}}
    assert evaluate("inputs.parameters.x == 3", env) is False
    assert evaluate("inputs.parameters.x == '3'", env) is True
    assert evaluate("inputs.parameters.n == 3.0", env) is True
    with pytest.raises(ExprError, match="invalid operation: string > int"):
        evaluate("inputs.parameters.x > 2", env)
    with pytest.raises(ExprError, match=r"invalid operation: string \+ int"):
        evaluate("inputs.parameters.x + 1", env)
    with pytest.raises(ExprError, match="not bool"):
        evaluate("inputs.parameters.x ? 1 : 2", env)
    assert evaluate("asInt(inputs.parameters.x) > 2", env) is True
    # the optimizer drops a literal operand of && / || before anything runs (optimizer/fold.go)
    assert evaluate("inputs.parameters.x && true", env) == "3"
    assert evaluate("inputs.parameters.x || true", env) is True
    with pytest.raises(ExprError, match="not bool"):
        evaluate("inputs.parameters.x && inputs.parameters.x", env)
    # top-level values have known types, so the checker refuses what the runtime would allow:
    # `retries` is a string in a retryStrategy expression (operator.go buildRetryStrategyLocalScope)
    with pytest.raises(ExprError, match="mismatched types string and int"):
        evaluate("retries == 1", {"retries": "1"})
    assert evaluate("asInt(retries) == 1", {"retries": "1"}) is True
    # nil of unknown type: string operators give false, first/last give nil
    assert evaluate("v.missing startsWith 'x'", {"v": {}}) is False
    assert evaluate("first(v.n)", {"v": {"n": 5}}) is None
    # a string's bytes: Go indexes and slices bytes, len counts runes, predicates walk bytes
    assert evaluate("v.s[1:3]", {"v": {"s": "héllo"}}) == "é"
    assert evaluate("v.s[0]", {"v": {"s": "x"}}) == 120
    assert evaluate("map(v.s, #)", {"v": {"s": "ab"}}) == [97, 98]


def test_env_names_shadow_builtins_only_as_variables():
    # util/expr/argoexpr/eval_test.go "test override builtins": a variable may be called split/join.
    assert evaluate("split == 1", {"split": 1}) is True
    assert evaluate("join == 1", {"join": 1}) is True
    assert evaluate("FOO == 1", {"FOO": 2}) is False
    assert evaluate(" FOO == 1 ", {"FOO": 1}) is True


# ---------------------------------------------------------------------------------------------
# Argo's environment (util/expr/env/env.go, util/expand/expand.go)
# ---------------------------------------------------------------------------------------------


def test_argo_env_expands_dotted_keys_and_drops_a_leaf_that_is_also_a_prefix():
    flat = {
        "inputs.parameters.x": "3",
        "inputs.parameters": '[{"name":"x","value":"3"}]',  # also a leaf: the less specific key goes
        "tasks.a.outputs.result": "out",
        "workflow.name": "wf",
    }
    assert argo_env(flat) == {
        "inputs": {"parameters": {"x": "3"}},
        "tasks": {"a": {"outputs": {"result": "out"}}},
        "workflow": {"name": "wf"},
    }


def test_flat_and_nested_envs_give_the_same_answers():
    flat = {"inputs.parameters.x": "3", "lastRetry.exitCode": "2"}
    nested = {"inputs": {"parameters": {"x": "3"}}, "lastRetry": {"exitCode": "2"}}
    for env in (flat, nested):
        assert evaluate("asInt(inputs.parameters.x) + asInt(lastRetry.exitCode)", env) == 5


def test_argo_functions_are_present_and_win_over_variables():
    # GetFuncMap sets asInt, asFloat, jsonpath, toJson and sprig after expanding the variables.
    assert evaluate("asInt('3') + asFloat('1.5')", {"asInt": "shadowed?"}) == 4.5


# ---------------------------------------------------------------------------------------------
# Argo's own tests and documents
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag, expected",
    [
        # util/template/template_test.go (expression cases)
        ("{{='test'}}", "test"),
        ('{{="test"}}', "test"),
        ("{{='some\\\\path\\\\with\\\\backslashes'}}", "some\\path\\with\\backslashes"),
        ("{{='some\\nstring\\nwith\\nescaped\\nnewlines'}}", "some\nstring\nwith\nescaped\nnewlines"),
        ("{{=1 + \n1}}", "2"),
        ("{{=toJson('test')}}", '"test"'),
        ("{{=toJson({test: 1})}}", '{"test":1}'),
        ("{{=toJson([1, '2', {an: 'object'}])}}", '[1,"2",{"an":"object"}]'),
        ("{{=\"'\"}}", "'"),
        ("{{='\"'}}", '"'),
        ("{{=true == false}}", "false"),
        (f"{{{{=jsonpath('{EMPLOYEES}', '$.employees[*].name')}}}}", '["Baris","Mo","Jai"]'),
        (f"{{{{=jsonpath('{EMPLOYEES}', '$.employees[0].friends')}}}}", '["Mo","Jai"]'),
        (f"{{{{=jsonpath('{EMPLOYEES}', '$.employees[0]')}}}}", '{"age":43,"friends":["Mo","Jai"],"name":"Baris"}'),
        # replace_test.go TestReplaceStringWithExpression
        ("test {{= sprig.trunc(5, inputs.parameters.message) }}", "test hello"),
        ("test {{= sprig.trunc(-5, inputs.parameters.message) }}", "test world"),
    ],
)
def test_argo_template_cases(tag, expected):
    env = {"inputs.parameters.message": "hello world"}
    assert substitute_expressions(tag, env) == expected


def test_argo_replace_cases():
    # util/template/replace_test.go TestReplace/Expression
    assert substitute_expressions("{{=foo}}", {"foo": "bar"}) == "bar"
    assert substitute_expressions("{{=sprig.dig('status', nil, workflow)}}", {"workflow.status": "Succeeded"}) == "Succeeded"
    tag = '{{=workflow.status == "Succeeded" ? "SUCCESSFUL" : "FAILED"}}'
    assert substitute_expressions(tag, {"workflow.status": "Succeeded"}) == "SUCCESSFUL"
    assert substitute_expressions(tag, {"workflow.status": "Failed"}) == "FAILED"
    failures = '{{=workflow.failures == "{\\"foo\\":\\"bar\\"}" ? "SUCCESSFUL" : "FAILED"}}'
    assert substitute_expressions(failures, {"workflow.failures": '{"foo":"bar"}'}) == "SUCCESSFUL"
    assert substitute_expressions(failures, {"workflow.failures": '{"foo":"barr"}'}) == "FAILED"


def test_missing_variables_error_or_stay_as_argo_decides():
    # replace_test.go "Unresolved": with allowUnresolved a tag naming a missing (late-binding)
    # variable stays for later; without it, "<name> is missing".
    assert substitute_expressions("{{=sprig.int(retries)}}", {}, allow_unresolved=True) == "{{=sprig.int(retries)}}"
    tag = '{{=workflow.status == "Succeeded" ? "SUCCESSFUL" : "FAILED"}}'
    assert substitute_expressions(tag, {}, allow_unresolved=True) == tag
    assert substitute_expressions("{{=foo}}", {}, allow_unresolved=True) == "{{=foo}}"
    with pytest.raises(ExprError, match="failed to evaluate expression: foo is missing"):
        substitute_expressions("{{=foo}}", {})
    with pytest.raises(ExprError, match="failed to evaluate expression"):
        substitute_expressions(tag, {})
    with pytest.raises(ExprError, match="unexpected end"):
        substitute_expressions("{{=!}}", {})


def test_strict_prefixes_and_absent_outputs():
    # replace_test.go TestReplaceStrictAnyNilValues and Test_ReplaceStrict_NilCoalescing;
    # docs/variables.md "Outputs of Skipped and Omitted Nodes".
    env = {"tasks.producer.outputs.parameters.msg": None, "tasks.other.outputs.parameters.msg": "real"}
    strict = ("tasks", "steps")
    fallback = "{{= tasks.producer.outputs.parameters.msg ?? 'fallback'}}"
    assert substitute_expressions(fallback, env, strict_prefixes=strict) == "fallback"
    empty = {"tasks.producer.outputs.parameters.msg": ""}
    assert substitute_expressions(fallback, empty, strict_prefixes=strict) == ""
    other = "{{= tasks.other.outputs.parameters.msg ?? 'fallback'}}"
    assert substitute_expressions(other, env, strict_prefixes=strict) == "real"
    with pytest.raises(ExprError):
        substitute_expressions("{{= tasks.producer.outputs.parameters.msg}}", env, strict_prefixes=strict)
    with pytest.raises(ExprError):
        substitute_expressions("{{= tasks.unknown.outputs.parameters.msg}}", env, strict_prefixes=strict)
    with pytest.raises(ExprError):
        substitute_expressions("{{= tasks.producer.outputs.parameters.msg + '-suffix'}}", env, strict_prefixes=strict)
    assert evaluate("tasks.producer.outputs.parameters.msg == ''", env) is False  # nil is not ''
    for source in ("item.optionalKey ?? 'fallback'", "item['optionalKey'] ?? 'fallback'", "item?.optionalKey ?? 'fallback'"):
        tag = "{{= " + source + " }}"
        present = {"item": {"name": "a", "optionalKey": "value"}}
        assert substitute_expressions(tag, present, strict_prefixes=("item",)) == "value"
        assert substitute_expressions(tag, {"item": {"name": "b"}}, strict_prefixes=("item",)) == "fallback"
    with pytest.raises(ExprError, match="item is missing"):
        substitute_expressions("{{= item.optionalKey ?? 'fallback' }}", {}, strict_prefixes=("item",))


def test_missing_variables_follow_getIdentifiers():
    # expression_template_test.go Test_getIdentifiers / Test_missingVarsInEnv
    assert missing_variables("item.requiredKey", {}) == ["item", "item.requiredKey"]
    assert missing_variables("item.optionalKey ?? 'fallback'", {}) == ["item"]
    assert missing_variables("item.a?.b", {}) == ["item"]
    assert missing_variables("item.requiredKey + (item.optionalKey ?? 'x')", {}) == ["item", "item.requiredKey"]
    assert missing_variables("foo + bar", {"foo": "1"}) == ["bar"]
    assert missing_variables("tasks.a.out ?? 'x'", {"tasks": {"a": {"out": None}}}) == []
    assert missing_variables('"workflow.status" == "x"', {}) == []
    assert missing_variables("sprig.upper(item)", {}) == ["item"]


def test_maps_with_any_keys_do_not_marshal():
    # groupBy and fromPairs give Go map[interface {}]...: json.Marshal refuses them, so such a
    # result cannot fill a tag; reading from it works.
    assert evaluate("groupBy(['a', 'bb', 'c'], len(#))[1]", {}) == ["a", "c"]
    with pytest.raises(ExprError, match="unsupported type"):
        substitute_expressions("{{=groupBy([1, 2], # % 2)}}", {})
    with pytest.raises(ExprError, match="unsupported type"):
        evaluate("toJson(fromPairs([['a', 1]]))", {})


def test_env_variable_and_let():
    env = {"n": 3, "s": "x"}
    assert evaluate("$env.n + $env['n']", env) == 6
    assert evaluate("'n' in $env", env) is True
    with pytest.raises(ExprError, match="unknown name missing"):
        evaluate("$env['missing']", env)
    with pytest.raises(ExprError, match="cannot redeclare n"):
        evaluate("let n = 1; n", env)
    assert evaluate("{a: 1, a: 2}.a", {}) == 1  # the first key wins
    assert evaluate("m.x?.f()", {"m": {"x": None}}) is None
    # Argo's missing-variable check counts a let name as a variable it cannot find
    # (getIdentifiers walks every IdentifierNode), so a tag with `let` fails in Argo's strict mode.
    with pytest.raises(ExprError, match="x is missing"):
        substitute_expressions("{{=let x = 1; x}}", {})
    assert substitute_expressions("{{=let x = 1; x}}", {}, strict_prefixes=("tasks",)) == "1"


def test_tag_text_is_go_json_without_the_quotes_of_a_string():
    assert tag_text("plain") == "plain"
    assert tag_text(3) == "3"
    assert tag_text(3.0) == "3"
    assert tag_text(35.8) == "35.8"
    assert tag_text(1e21) == "1e+21"
    assert tag_text(1e-7) == "1e-7"
    assert tag_text(0.000001) == "0.000001"
    assert tag_text(True) == "true"
    assert tag_text([1, "a", None]) == '[1,"a",null]'
    assert tag_text({"b": 1, "a": {"c": "<"}}) == '{"a":{"c":"\\u003c"},"b":1}'
    with pytest.raises(ExprError, match="nil"):
        tag_text(None)
    with pytest.raises(ExprError, match="unsupported value"):
        tag_text(math.inf)


def test_a_tag_ends_at_the_first_closing_braces_and_values_are_not_rescanned():
    # fasttemplate (util/template/template.go): a tag runs from {{ to the first }}.
    with pytest.raises(ExprError):
        substitute_expressions("{{={a: 1}}}", {})
    assert substitute_expressions("{{={a: 1} }}", {}) == '{"a":1}'
    out = substitute_expressions(
        "{{inputs.parameters.x}} {{=asInt(inputs.parameters.n) + 1}}",
        {"inputs.parameters.n": "1"},
        simple_tag=lambda name: "{{=1+1}}",
    )
    assert out == "{{=1+1}} 2"
    assert substitute_expressions("no tags {{simple}}", {}) == "no tags {{simple}}"
    with pytest.raises(ExprError, match="cannot find end tag"):
        substitute_expressions("a {{=1 + 1", {})


# Every `{{=...}}`, retryStrategy.expression and valueFrom.expression in Argo v3.7.18's examples/,
# test/e2e/ and docs/ (and the hook expressions there), with inputs built from the same files.
WEATHER = '{"weekWeather": "eyJ0ZW1wcyI6IFszNCwgMjcsIDE1LCA1NywgNDZdfQo="}'
VERBOSE = """
                map([
                    jsonpath(sprig.b64dec(jsonpath(workflow.parameters.weather, '$.weekWeather')), '$.temps')
                  ], {
                    toJson({
                      avg: sprig.add(#[0], #[1], #[2], #[3], #[4]) / 5,
                      min: sprig.min(#[0], #[1], #[2], #[3], #[4]),
                      max: sprig.max(#[0], #[1], #[2], #[3], #[4])
                    })
                })[0]
              """
CONFIG = '{"employees": [{"name": "Baris", "age":43},{"name": "Mo", "age": 42}, {"name": "Jai", "age" :44}]}'
STEPS_HELPER = {"steps": {"fibonacci-helper": {"outputs": {"parameters": {"result": "5"}}}}}


@pytest.mark.parametrize(
    "source, env, expected",
    [
        # examples/conditionals.yaml
        ("inputs.parameters[\"should-print\"] == 'true'", {"inputs.parameters.should-print": "true"}, "true"),
        ("jsonpath(workflow.parameters.json, '$[0].value') == 'true'", {"workflow.parameters.json": '[{"value": "true"}]'}, "true"),
        # examples/expression-destructure-json.yaml (config {"a": "1", "b": "2", "c": "3"})
        ("jsonpath(workflow.parameters.config, '$.a')", {"workflow.parameters.config": '{"a": "1", "b": "2", "c": "3"}'}, "1"),
        # examples/expression-destructure-json-complex.yaml
        ("jsonpath(workflow.parameters.config, '$.employees[?(@.name==\"Baris\")].age')", {"workflow.parameters.config": CONFIG}, "[43]"),
        ("jsonpath(workflow.parameters.config, '$.employees[?(@.age>42 && @.age<44)].age')", {"workflow.parameters.config": CONFIG}, "[43]"),
        ("jsonpath(workflow.parameters.config, '$.employees[0:1]')", {"workflow.parameters.config": CONFIG}, '[{"age":43,"name":"Baris"}]'),
        ("jsonpath(workflow.parameters.config, '$.employees[*].name')", {"workflow.parameters.config": CONFIG}, '["Baris","Mo","Jai"]'),
        # examples/expression-reusing-verbose-snippets.yaml: temps 34 27 15 57 46
        (VERBOSE, {"workflow.parameters.weather": WEATHER}, '{"avg":35.8,"max":57,"min":15}'),
        ("jsonpath(inputs.parameters['week-temps'], '$.avg')", {"inputs.parameters.week-temps": '{"avg":35.8,"max":57,"min":15}'}, "35.8"),
        ("jsonpath(inputs.parameters['week-temps'], '$.min')", {"inputs.parameters.week-temps": '{"avg":35.8,"max":57,"min":15}'}, "15"),
        # examples/expression-tag-template-workflow.yaml
        ("item", {"item": "3"}, "3"),
        ("toJson(filter([1, 3], {# > 1}))", {}, "[3]"),
        ("asInt(inputs.parameters.foo) * 10", {"inputs.parameters.foo": "3"}, "30"),
        # examples/conditional-parameters.yaml, dag-conditional-parameters.yaml (valueFrom.expression)
        ("steps['flip-coin'].outputs.result == 'heads' ? steps.heads.outputs.result : steps.tails.outputs.result",
         {"steps.flip-coin.outputs.result": "tails", "steps.heads.outputs.result": "H", "steps.tails.outputs.result": "T"}, "T"),
        ("tasks['flip-coin'].outputs.result == 'heads' ? tasks.heads.outputs.result : tasks.tails.outputs.result",
         {"tasks.flip-coin.outputs.result": "heads", "tasks.heads.outputs.result": "H", "tasks.tails.outputs.result": "T"}, "H"),
        # examples/data-transformations.yaml, test/e2e/testdata/data-transformation.yaml
        ('filter(data, {# endsWith "main.log"})', {"data": ["a/main.log", "b/other.txt"]}, '["a/main.log"]'),
        ('filter(data, {# endsWith ".py"})', {"data": ["x.py", "y.go"]}, '["x.py"]'),
        # examples/fibonacci-seq-conditional-param.yaml
        ("asInt(inputs.parameters.num) == 1? 1: asInt(inputs.parameters.num) == 2? 1: steps['fibonacci-helper'].outputs.parameters.result",
         {"inputs": {"parameters": {"num": "1"}}, **STEPS_HELPER}, "1"),
        ("asInt(inputs.parameters.num) == 1? 1: asInt(inputs.parameters.num) == 2? 1: steps['fibonacci-helper'].outputs.parameters.result",
         {"inputs": {"parameters": {"num": "5"}}, **STEPS_HELPER}, "5"),
        # examples/label-value-from-workflow.yaml, life-cycle-hooks-*.yaml, e2e success-hook.yaml
        ("workflow.parameters.foo", {"workflow.parameters.foo": "bar"}, "bar"),
        ('steps["step-1"].status == "Running"', {"steps.step-1.status": "Running"}, "true"),
        ('steps.step2.status == "Succeeded"', {"steps.step2.status": "Running"}, "false"),
        ('workflow.status == "Running"', {"workflow.status": "Running"}, "true"),
        # examples/retry-conditional.yaml, after Argo substitutes {{inputs.parameters.safe-to-retry}}
        ('asInt(lastRetry.exitCode) > 1 &&\nlastRetry.status != "Error" &&\nasInt(lastRetry.duration) < 120 &&\n'
         "(true == true || lastRetry.message matches 'imminent node shutdown|pod deleted')",
         {"lastRetry": {"exitCode": "2", "status": "Failed", "duration": "3", "message": ""}}, "true"),
        # docs/retries.md
        ("asInt(lastRetry.exitCode) > 1", {"lastRetry.exitCode": "1"}, "false"),
        ('lastRetry.status != "Error"', {"lastRetry.status": "Failed"}, "true"),
        ("asInt(lastRetry.duration) < 60", {"lastRetry.duration": "75"}, "false"),
        ("lastRetry.message matches 'imminent node shutdown|pod deleted'", {"lastRetry.message": "pod deleted"}, "true"),
        # docs/variables.md
        ("asInt(lastRetry.exitCode) >= 2", {"lastRetry.exitCode": "2"}, "true"),
        ("lastRetry.exitCode != '2'", {"lastRetry.exitCode": "2"}, "false"),
        ("workflow.name", {"workflow.name": "wf-1"}, "wf-1"),
        ("steps.producer.outputs.parameters.msg ?? 'fallback'", {"steps.producer.outputs.parameters.msg": None}, "fallback"),
        ("asInt(inputs.parameters['my-int-param'])", {"inputs.parameters.my-int-param": "7"}, "7"),
        ("asFloat(inputs.parameters['my-float-param'])", {"inputs.parameters.my-float-param": "0.5"}, "0.5"),
        ("string(1)", {}, "1"),
        ("toJson([1, 2])", {}, "[1,2]"),
        ("sprig.trim(inputs.parameters['my-string-param'])", {"inputs.parameters.my-string-param": "  x "}, "x"),
        # test/e2e/functional/dag-when-expr-skip.yaml
        ("workflow.parameters.data != ''", {"workflow.parameters.data": ""}, "false"),
        ("jsonpath(workflow.parameters.data, '$.id')", {"workflow.parameters.data": '{"id": "abc"}'}, "abc"),
        # test/e2e/functional/steps-when-expr-filter.yaml
        ("concat(['always'], inputs.parameters.test == 'true' ? ['test'] : []) | toJSON()",
         {"inputs.parameters.test": "true"}, '[\n  "always",\n  "test"\n]'),
        ("get(item, 'type') ?? 'always'", {"item": {"name": "fourth"}}, "always"),
        ("get(item, 'type') ?? 'always'", {"item": {"name": "first", "type": ""}}, ""),
        ("inputs.parameters.list | fromJSON() | join('\",\"')", {"inputs.parameters.list": '[\n  "always",\n  "test"\n]'}, 'always","test'),
        # test/e2e/testdata/workflow-hook-parameter.yaml
        ('workflow.status == "Succeeded" ? "Succeeded" : "Failed"', {"workflow.status": "Failed"}, "Failed"),
        # test/e2e/testdata/workflow-template-with-resource-expr.yaml
        ('sprig.replace("bar", "baz", inputs.parameters.strParam)', {"inputs.parameters.strParam": "foobar"}, "foobaz"),
        ("asInt(inputs.parameters.intParam)", {"inputs.parameters.intParam": "8080"}, "8080"),
        # test/e2e/testdata/json-variables.yaml
        ("jsonpath(workflow.labels.json, '$.myLabel')", {"workflow.labels.json": '{"myLabel":"myLabelValue"}'}, "myLabelValue"),
        ("jsonpath(workflow.parameters.json, '$[0].value')",
         {"workflow.parameters.json": '[{"name":"myParam","value":"myParamValue"}]'}, "myParamValue"),
    ],
)
def test_argo_examples_docs_and_e2e(source, env, expected):
    assert text(source, env) == expected


def _reference_expressions() -> list[tuple[str, str]]:
    """Every `{{=...}}` and every `expression:` (retryStrategy, valueFrom, hooks, labelsFrom) in the
    Argo v3.7.18 reference copy: examples/*.yaml, test/e2e/**/*.yaml, docs/*.md. A simple tag inside
    an `expression:` is what Argo substitutes first; `true` stands in for it."""
    tag, simple = re.compile(r"\{\{=(.*?)\}\}", re.S), re.compile(r"\{\{[^=][^{}]*\}\}")
    found: list[tuple[str, str]] = []

    def walk(value, where, key=None):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, where, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, where, key)
        elif isinstance(value, str):
            found.extend((where, m.group(1)) for m in tag.finditer(value))
            if key == "expression" and "{{=" not in value:
                found.append((where, simple.sub("true", value)))

    for path in sorted(ARGO_REF.glob("examples/*.yaml")) + sorted(ARGO_REF.glob("test/e2e/**/*.yaml")):
        where = str(path.relative_to(ARGO_REF))
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError:
            found.extend((where, m.group(1)) for m in tag.finditer(path.read_text()))
            continue
        for doc in docs:
            walk(doc, where)
    for path in sorted(ARGO_REF.glob("docs/*.md")):
        text = path.read_text()
        found.extend((path.name, m.group(1)) for m in tag.finditer(text))
        found.extend((path.name, m.group(1)) for m in re.finditer(r"^\s*expression: (?!\")(.+?)(?:\s+#.*)?$", text, re.M))
    return found


@pytest.mark.skipif(not (ARGO_REF / "examples").is_dir(), reason="no Argo v3.7.18 reference copy beside the repo")
def test_every_expression_in_argos_examples_e2e_and_docs_parses():
    found = _reference_expressions()
    assert len(found) >= 50  # 54 in v3.7.18
    failures = []
    for where, source in found:
        try:
            compile_expression(source)
        except ExprError as exc:
            failures.append(f"{where}: {exc}")
    assert failures == []


def test_last_retry_duration_is_go_formatted_seconds():
    # operator.go: lastRetry.duration = fmt.Sprint(node duration in float seconds); asInt of a
    # fractional value fails in Argo too (strconv.Atoi), so docs/retries.md's asInt(lastRetry.duration)
    # works only for whole seconds.
    assert go_fmt_v(3.0) == "3"
    assert go_fmt_v(61.5) == "61.5"
    assert go_fmt_v(1234567.0) == "1.234567e+06"
    assert evaluate("asInt(lastRetry.duration) < 60", {"lastRetry": {"duration": go_fmt_v(3.0)}}) is True
    with pytest.raises(ExprError, match=r"invalid operation: int\(61.5\)"):
        evaluate("asInt(lastRetry.duration) < 60", {"lastRetry": {"duration": go_fmt_v(61.5)}})
    assert evaluate("asFloat(lastRetry.duration) < 60", {"lastRetry": {"duration": "61.5"}}) is False


def test_cron_when_example_with_time_values():
    # examples/cron-when.yaml
    source = "cronworkflow.lastScheduledTime == nil || (now() - cronworkflow.lastScheduledTime).Seconds() > 360"
    assert evaluate(source, {"cronworkflow.lastScheduledTime": None}) is True
    recent = GoTime(dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=60))
    old = GoTime(dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    assert evaluate(source, {"cronworkflow": {"lastScheduledTime": recent}}) is False
    assert evaluate(source, {"cronworkflow": {"lastScheduledTime": old}}) is True


def test_sprig_date_formats_now_for_a_string_as_sprig_does():
    # examples/expression-tag-template-workflow.yaml: workflow.creationTimestamp is a string, and
    # sprig's date() formats time.Now() for anything that is not a time or a Unix number.
    year = substitute_expressions(
        "{{=sprig.date('2006', workflow.creationTimestamp)}}", {"workflow.creationTimestamp": "2020-01-01T00:00:00Z"}
    )
    assert year in {str(time.localtime().tm_year), str(time.localtime().tm_year + 1)}
    assert evaluate("sprig.date('2006-01-02', 0)", {}) in {"1970-01-01", "1969-12-31"}
    assert evaluate("sprig.dateInZone('2006-01-02 15:04', 86400, 'UTC')", {}) == "1970-01-02 00:00"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("sprig.upper('a') + sprig.lower('B') + sprig.title('hello world')", "AbHello World"),
        ("sprig.trimAll('$', '$5.00$')", "5.00"),
        ("sprig.trimPrefix('-', '-x')", "x"),
        ("sprig.substr(0, 5, 'hello world')", "hello"),
        ("sprig.substr(-1, 3, 'abcdef') + sprig.substr(2, 99, 'abcdef')", "abccdef"),
        ("sprig.trunc(3, 'héllo')", "hé"),  # Go counts bytes: é is two
        ("sprig.abbrev(5, 'hello world')", "he..."),
        ("sprig.repeat(3, 'ab')", "ababab"),
        ("sprig.contains('cat', 'catch')", True),
        ("sprig.hasPrefix('cat', 'catch')", True),
        ("sprig.quote('a\"b') + sprig.squote('c')", "\"a\\\"b\"'c'"),
        ("sprig.cat('hello', 'beautiful', 'world')", "hello beautiful world"),
        ("sprig.nospace('hello w o r l d')", "helloworld"),
        ("sprig.indent(2, 'a\\nb')", "  a\n  b"),
        ("sprig.plural('one anchovy', 'many anchovies', 1)", "one anchovy"),
        ("sprig.split('$', 'foo$bar$baz')", {"_0": "foo", "_1": "bar", "_2": "baz"}),
        ("sprig.splitList('$', 'foo$bar$baz')", ["foo", "bar", "baz"]),
        ("sprig.join('-', ['a', 1, nil])", "a-1"),
        ("sprig.regexMatch('^[a-z]+$', 'abc')", True),
        ("sprig.regexFindAll('[2,4,6,8]', '123456789', -1)", ["2", "4", "6", "8"]),
        ("sprig.regexReplaceAll('a(x*)b', '-ab-axxb-', '${1}W')", "-W-xxW-"),
        ("sprig.b64enc('hi') + sprig.b64dec('aGk=')", "aGk=hi"),
        ("sprig.sha256sum('Hello world!')", "c0535e4be2b79ffd93291305436bf889314e4a3faec05ecffcbb7df31ad9e51a"),
        ("sprig.default('foo', '')", "foo"),
        ("sprig.default('foo', 'bar')", "bar"),
        ("sprig.default('foo', nil)", "foo"),
        ("sprig.empty(0) && sprig.empty('') && !sprig.empty('x')", True),
        ("sprig.coalesce('', nil, 'x')", "x"),
        ("sprig.ternary('yes', 'no', 1 > 2)", "no"),
        ("sprig.add(1, '2', 3.7)", 6),  # cast.ToInt64: '2' -> 2, 3.7 -> 3
        ("sprig.add1(1) + sprig.sub(5, 2) + sprig.mul(2, 3)", 11),
        ("sprig.div(7, 2)", 3),
        ("sprig.mod(7, 2)", 1),
        ("sprig.max(1, 9, 3) + sprig.min(4, 2)", 11),
        ("sprig.int('abc')", 0),  # docs/variables.md: sprig's int of an invalid value is 0
        ("sprig.int('42')", 42),
        ("sprig.atoi('42')", 42),
        ("sprig.float64('1.5')", 1.5),
        ("sprig.round(123.555555, 3)", 123.556),
        ("sprig.floor(1.7) + sprig.ceil(1.2)", 3.0),
        ("sprig.addf(1.5, 2)", 3.5),
        ("sprig.until(3)", [0, 1, 2]),
        ("sprig.untilStep(3, 6, 2)", [3, 5]),
        ("sprig.seq(3)", "1 2 3"),
        ("sprig.list(1, 'a')", [1, "a"]),
        ("sprig.first([1, 2]) + sprig.last([1, 2])", 3),
        ("sprig.rest([1, 2, 3])", [2, 3]),
        ("sprig.append([1], 2)", [1, 2]),
        ("sprig.uniq([1, 1, 2])", [1, 2]),
        ("sprig.without([1, 2, 3], 2)", [1, 3]),
        ("sprig.has(2, [1, 2])", True),
        ("sprig.compact([1, '', nil, 2])", [1, 2]),
        ("sprig.dict('a', 1, 'b')", {"a": 1, "b": ""}),
        ("sprig.get({a: 1}, 'b')", ""),
        ("sprig.hasKey({a: 1}, 'a')", True),
        ("sprig.pick({a: 1, b: 2}, 'a')", {"a": 1}),
        ("sprig.omit({a: 1, b: 2}, 'a')", {"b": 2}),
        ("sprig.dig('a', 'b', 'dflt', {a: {b: 'v'}})", "v"),
        ("sprig.dig('a', 'x', 'dflt', {a: {b: 'v'}})", "dflt"),
        ("sprig.toJson({b: [1], a: '<'})", '{"a":"\\u003c","b":[1]}'),
        ("sprig.toString(1.5) + sprig.typeOf(1) + sprig.kindOf([])", "1.5intslice"),
        ("sprig.duration('95')", "1m35s"),
        ("sprig.duration(95)", "0s"),  # sprig reads a string or an int64; expr's integers are Go ints
        ("sprig.regexMatch('[', 'x')", False),  # regexMatch drops the compile error
        ("sprig.regexFindAll('z', 'abc', -1)", None),  # Go's nil slice
        ("sprig.base('/a/b.txt') + ' ' + sprig.dir('/a/b.txt') + ' ' + sprig.ext('b.tar.gz')", "b.txt /a .gz"),
        ("sprig.clean('a//b/../c/')", "a/c"),
        ("sprig.chunk(2, [1, 2, 3])", [[1, 2], [3]]),
        ("sprig.merge({a: 1}, {a: 2, b: 3})", {"a": 1, "b": 3}),
        ("sprig.mergeOverwrite({a: 1}, {a: 2})", {"a": 2}),
        ("sprig.toDecimal('777')", 511),
    ],
)
def test_sprig(source, expected):
    assert evaluate(source, {}) == expected


def test_sprig_typed_parameters_refuse_other_types():
    with pytest.raises(ExprError, match="cannot use string as type int"):
        evaluate("sprig.trunc('5', 'hello')", {})
    with pytest.raises(ExprError, match="integer divide by zero"):
        evaluate("sprig.div(1, 0)", {})
    with pytest.raises(ExprError, match="not a function"):
        evaluate("sprig.env('HOME')", {})  # Argo deletes env and expandenv from the sprig map


def test_sprig_must_regex_functions_fail_on_a_bad_pattern():
    # sprig's regexFind/regexReplaceAll/... use regexp.MustCompile: a bad pattern panics
    for source in ("sprig.regexFind('[', 'x')", "sprig.regexReplaceAll('[', 'x', 'y')", "sprig.mustRegexMatch('[', 'x')"):
        with pytest.raises(ExprError, match="error parsing regexp"):
            evaluate(source, {})


def test_jsonpath_errors_and_shapes():
    assert evaluate("jsonpath('{\"a\": {\"b\": [1, 2, 3]}}', '$.a.b[-1]')", {}) == 3.0
    assert evaluate("jsonpath('{\"a\": {\"b\": [1, 2, 3]}}', '$..b')", {}) == [[1.0, 2.0, 3.0]]
    assert evaluate("jsonpath('{\"a\": {\"b\": 1, \"c\": 2}}', '$.a.*')", {}) == [1.0, 2.0]
    assert evaluate("jsonpath('[1, 2, 3]', '$[0,2]')", {}) == [1.0, 3.0]
    assert evaluate("jsonpath('[1, 2, 3]', '$.length')", {}) == 3
    assert evaluate("jsonpath('[1, 2, 3]', '$[(@.length-1)]')", {}) == 3.0
    assert evaluate("jsonpath('[{\"a\": 1}, {\"b\": 2}]', '$[*].a')", {}) == [1.0]  # failing elements dropped
    with pytest.raises(ExprError, match="not found"):
        evaluate("jsonpath('{\"a\": 1}', '$.b')", {})
    with pytest.raises(ExprError, match="invalid JSON"):
        evaluate("jsonpath('not json', '$.a')", {})


# ---------------------------------------------------------------------------------------------
# Hostile input: every one fails with ExprError, quickly, and never runs Python code
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, env",
    [
        ("(" * 5000 + "1" + ")" * 5000, {}),
        ("[" * 5000, {}),
        ("-" * 5000 + "1", {}),
        ("!" * 5000 + "true", {}),
        ("1" + " + 1" * 5000, {}),
        ("a" + ".b" * 5000, {"a": {}}),
        ("1..10000000000", {}),
        ("0..2000000", {}),
        ("map(1..1000000, map(1..1000000, #))", {}),
        ("reduce(1..100, #acc + #acc, 'ab')", {}),
        ("reduce(1..40, concat(#acc, #acc), [1])", {}),
        ("repeat('x', 100000000)", {}),
        ("sprig.repeat(100000000, 'x')", {}),
        ("sprig.until(100000000)", {}),
        ("__import__('os').system('true')", {}),
        ("x.__class__", {"x": "s"}),
        ("x.__class__.__mro__", {"x": 1}),
        ("asInt.__globals__", {}),
        ("sprig.upper.__code__", {}),
        ("$env.asInt.__closure__", {}),
        ("'a' * 3", {}),
        ("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!' matches '(a+)+$'", {}),
        ("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!' matches '(a|aa)*$'", {}),
        ("'x' matches '(?=x)'", {}),  # lookahead: RE2 refuses it
        ("fromJSON('" + "[" * 100_000 + "')", {}),
        # a small expression that would build gigabytes: refused before it builds them
        ("toJSON(map(1..100000, s))", {"s": "y" * 1_000_000}),
        ("join(map(1..100000, s))", {"s": "y" * 1_000_000}),
        ("replace(s, '', s)", {"s": "y" * 100_000}),
        ("sprig.indent(1000000000, 'x')", {}),
        ("map(1..300000, repeat('x', 1000000))", {}),
        ("reduce(1..100000, sprig.append(#acc, #), [])", {}),
        ("split(repeat('ab', 5000000), '')", {}),
        ("1" * 30_000, {}),
        ("'" + "x" * 30_000 + "'", {}),
    ],
)
def test_hostile_inputs_fail_cleanly(source, env):
    start = time.monotonic()
    with pytest.raises(ExprError):
        evaluate(source, env)
    assert time.monotonic() - start < 10


def test_large_but_legitimate_work_finishes():
    start = time.monotonic()
    assert evaluate("sum(1..300000)", {}) == 45000150000
    assert evaluate("uniq(1..100000) | len()", {}) == 100000  # hashing, not pairwise comparison
    assert evaluate("filter(1..100000, # % 1000 == 0) | len()", {}) == 100
    assert time.monotonic() - start < 10


def test_a_dict_key_named_like_a_python_internal_is_just_a_missing_key():
    # A map's missing key is nil in expr; nothing reaches Python attributes.
    assert evaluate("x.__class__", {"x": {}}) is None
    assert evaluate("x.__dict__ ?? 'none'", {"x": {"a": 1}}) == "none"
    with pytest.raises(ExprError, match="not a function"):
        evaluate("x.__class__()", {"x": {}})


def test_no_python_eval_or_exec_in_the_module():
    from bioinfra.executor import exprlang

    source = open(exprlang.__file__, encoding="utf-8").read()
    assert not re.search(r"(?<![\w.])(eval|exec|compile|__import__|getattr)\(", source)


def test_results_round_trip_through_json_like_argo_inputs():
    value = evaluate("{a: [1, 2.5, 'x', true, nil]}", {})
    assert json.loads(tag_text(value)) == {"a": [1, 2.5, "x", True, None]}
    assert base64.b64decode(evaluate("toBase64('é')", {})).decode() == "é"
