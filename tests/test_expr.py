"""Tests for the safe expression evaluator used for parameter arithmetic in specs."""

from __future__ import annotations

import ast
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archgraph.errors import Loc, SpecError
from archgraph.lang.expr import evaluate, names_used
from tests.conftest import examples

NAMES = {"width": 32, "widths": [16, 32, 64], "name": "hr", "ratio": 1.5, "flag": True}
AT = Loc("net.yaml", 7, 9)


def error(text: str, names=NAMES) -> SpecError:
    with pytest.raises(SpecError) as info:
        evaluate(text, names, AT)
    assert info.value.loc == AT
    return info.value


@pytest.mark.parametrize(
    "text, value",
    [
        ("2*width + 1", 65),
        ("width / 64", 0.5),
        ("width // 5", 6),
        ("width % 5", 2),
        ("2**10", 1024),
        ("-width", -32),
        ("+ratio", 1.5),
        ("not flag", False),
        ("flag + flag", 2),
        ("1 < width <= 32 != 33", True),
        ("1 < width < 3", False),
        ("32 in widths", True),
        ("8 not in widths", True),
        ("'h' in name", True),
        ("width > 8 and width < 64", True),
        ("0 or width", 32),
        ("width if flag else 0", 32),
        ("[1, (2, 3)]", [1, [2, 3]]),
        ("(1, 2)", [1, 2]),
        ("widths[1]", 32),
        ("widths[-1]", 64),
        ("min(widths)", 16),
        ("max(1, width, 3)", 32),
        ("abs(-3)", 3),
        ("int(ratio * 3)", 4),
        ("round(ratio)", 2),
        ("round(2.345, 2)", 2.35),
        ("len(widths) + len(name)", 5),
        ("name + '-v2'", "hr-v2"),
        ("'ab' * 3", "ababab"),
        ("[0] * 3", [0, 0, 0]),
        ("widths + [128]", [16, 32, 64, 128]),
        ("None", None),
        ("  width ", 32),
        ("2**63", 2**63),
        ("-2**63", -(2**63)),
    ],
)
def test_values(text, value):
    result = evaluate(text, NAMES)
    assert result == value and type(result) is type(value)


def test_messages_quote_the_expression():
    assert error("2*width/0").message == "division by zero in '2*width/0'"
    assert error("widths * name").message == "cannot apply '*' to list and str in 'widths * name'"
    assert error("2*(width").message == "invalid expression '2*(width': '(' was never closed"
    unknown = error("2*widht")
    assert unknown.message == "unknown parameter 'widht' in '2*widht'"
    assert unknown.hint == "did you mean 'width'?"


def test_location_defaults_to_unknown():
    with pytest.raises(SpecError) as info:
        evaluate("nope", {})
    assert info.value.loc == Loc()


@pytest.mark.parametrize(
    "text, words",
    [
        ("width.real", "attribute access is not allowed"),
        ("__import__('os').system('true')", "function calls other than"),
        ("open('x')", "function calls other than min/max/abs/int/round/len are not allowed"),
        ("range(3)", "function calls other than"),
        ("widths.pop()", "function calls other than"),
        ("min(x=1)", "keyword arguments are not allowed"),
        ("min(*widths)", "starred arguments are not allowed"),
        ("lambda: 1", "lambda expressions are not allowed"),
        ("[x for x in widths]", "comprehensions are not allowed"),
        ("{1: 2}", "dict literals are not allowed"),
        ("{1}", "set literals are not allowed"),
        ("f'{width}'", "f-strings are not allowed"),
        ("(w := 1)", "assignment expressions (:=) are not allowed"),
        ("widths[0:2]", "slices are not allowed"),
        ("1 << 2", "operator '<<' is not allowed"),
        ("~1", "operator '~' is not allowed"),
        ("width is None", "operator 'is' is not allowed"),
        ("1j", "complex constants are not allowed"),
        ("b'x'", "bytes constants are not allowed"),
        ("await width", "'Await' expressions are not allowed"),
    ],
)
def test_disallowed_constructs(text, words):
    assert words in error(text).message


@pytest.mark.parametrize(
    "text, words",
    [
        ("'a' * 10**9", "result is too long (over 1000 characters)"),
        ("10**9 * 'a'", "result is too long"),
        ("[0] * 10**9", "result is too long (over 10000 items)"),
        ("[[]] * 10**9", "result is too long"),
        ("[[0] * 1000] * 1000", "result is too long"),
        ("2**65", "exponent 65 is too large"),
        ("2.0**-100", "exponent -100 is too large"),
        ("2**64", "integer is too large"),
        ("(2**63)**64", "integer is too large"),
        ("9" * 30, "integer is too large"),
        ("int(1e300)", "integer is too large"),
        ("1e308 * 10", "number too large"),
        ("round(5, -10**18)", "round() digits"),
        ("(-8) ** 0.5", "not a real number"),
        ("0 ** -1", "division by zero"),
        ("width % 0", "division by zero"),
        ("'%s' % width", "cannot apply '%' to str and int"),
        ("-name", "cannot apply '-' to str"),
        ("None + 1", "cannot apply '+' to None and int"),
        ("width < name", "cannot apply '<' to int and str"),
        ("1 in width", "'in' needs a list or string on its right, got int"),
        ("name[0]", "only lists can be indexed, not str"),
        ("widths[1.0]", "a list index must be an integer, not float"),
        ("widths[3]", "index 3 is out of range for a list of 3"),
        ("min([])", "min():"),
        ("len(width)", "len():"),
        ("x" * 1001, "expression is too long"),
        ("-" * 200 + "1", "nested too deeply"),
        ("1" + "+1" * 60, "nested too deeply"),
        ("(" * 300 + "1" + ")" * 300, "invalid expression"),
        ("", "empty expression"),
        ("a\x00b", "invalid expression"),
    ],
)
def test_bounds_and_runtime_errors(text, words):
    assert words in error(text).message


def test_short_circuit_skips_errors_like_python():
    assert evaluate("0 and 1/0", {}) == 0
    assert evaluate("1 or nope", {}) == 1
    assert evaluate("1 if 1 else 1/0", {}) == 1
    assert evaluate("2 < 1 < 1/0", {}) is False


def test_names_used():
    assert names_used("max(width, min(a, b)) + widths[c] * width") == {"width", "a", "b", "widths", "c"}
    assert names_used("3 + 4") == set()
    with pytest.raises(SpecError, match="invalid expression"):
        names_used("2*(width")
    with pytest.raises(SpecError, match="attribute access"):
        names_used("a.b")


# --- property tests ---------------------------------------------------------

@settings(max_examples=examples(150), deadline=None)
@given(st.one_of(st.text(max_size=40), st.text(alphabet="0123456789+-*/%()[]<>=!., 'wdthiflnotrmaxbs_", max_size=40)))
def test_random_text_only_raises_spec_error(text):
    try:
        evaluate(text, NAMES)
    except SpecError:
        pass


ENV = {"a": 7, "b": -2.5, "c": True}
_leaf = st.one_of(
    st.integers(-20, 20).map(str),
    st.floats(-1e3, 1e3, allow_nan=False).map(repr),
    st.sampled_from(sorted(ENV)),
)


def _extend(inner):
    binop = st.tuples(inner, st.sampled_from("+ - * / // % < == != >= and or".split()), inner)
    return st.one_of(
        binop.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, st.integers(-3, 3)).map(lambda t: f"({t[0]} ** ({t[1]}))"),
        st.tuples(st.sampled_from(["-", "+", "not "]), inner).map(lambda t: f"({t[0]}{t[1]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.tuples(st.sampled_from(["min", "max"]), st.lists(inner, min_size=1, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
        st.tuples(st.sampled_from(["abs", "int", "round"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(inner, inner, st.integers(-2, 1)).map(lambda t: f"[{t[0]}, {t[1]}][{t[2]}]"),
    )


def _python(node: ast.expr):
    """The oracle: Python's own evaluation of a generated (whitelisted) sub-expression."""
    code = compile(ast.Expression(body=node), "<oracle>", "eval")
    return eval(code, {"__builtins__": {}}, {**ENV, "min": min, "max": max, "abs": abs, "int": int, "round": round})


def _out_of_bounds(node: ast.expr) -> bool:
    try:
        value = _python(node)
    except Exception:
        return True
    if isinstance(value, list):
        return False
    return (
        isinstance(value, complex)
        or (isinstance(value, int) and abs(value) > 2**63)
        or (isinstance(value, float) and math.isinf(value))
    )


@settings(max_examples=examples(300), deadline=None)
@given(st.recursive(_leaf, _extend, max_leaves=12))
def test_arithmetic_matches_python(text):
    tree = ast.parse(text, mode="eval").body
    # Any sub-expression Python fails on, or whose value breaks a bound, may make ours fail.
    may_fail = any(_out_of_bounds(node) for node in ast.walk(tree) if isinstance(node, ast.expr))
    try:
        ours = evaluate(text, ENV)
    except SpecError:
        assert may_fail, text
        return
    expected = _python(tree)
    assert type(ours) is type(expected)
    assert ours == expected or (ours != ours and expected != expected), text
