"""Tests for loading spec files into plain data with source positions."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archgraph.errors import Loc, SpecError
from archgraph.lang import source
from archgraph.lang.source import Source, load, loads
from archgraph.spec.params import parse_override
from tests.conftest import examples

YAML = """\
name: hrnet
params:
  width: 32
nodes:
  - name: stem
    stride: 4
  - {name: b1, stride: 8}
"""


def error(text: str | bytes, fmt: str = "yaml") -> SpecError:
    with pytest.raises(SpecError) as info:
        loads(text, "spec.yaml", fmt)
    return info.value


def at(err: SpecError) -> tuple[int, int]:
    assert err.loc.file == "spec.yaml"
    return err.loc.line, err.loc.col


def test_yaml_data_and_positions():
    src = loads(YAML, "spec.yaml")
    assert src.data == {
        "name": "hrnet",
        "params": {"width": 32},
        "nodes": [{"name": "stem", "stride": 4}, {"name": "b1", "stride": 8}],
    }
    assert list(src.data) == ["name", "params", "nodes"]  # file order
    assert src.loc(()) == Loc("spec.yaml", 1, 1)
    assert src.loc(("params", "width")) == Loc("spec.yaml", 3, 10)
    assert src.key_loc(("params", "width")) == Loc("spec.yaml", 3, 3)
    assert src.loc(("nodes", 0)) == Loc("spec.yaml", 5, 5)
    assert src.loc(("nodes", 1, "stride")) == Loc("spec.yaml", 7, 24)
    assert src.key_loc(("nodes", 1, "stride")) == Loc("spec.yaml", 7, 16)
    assert src.key_loc(("nodes", 1)) == src.loc(("nodes", 1))  # list items have no key


def test_missing_paths_fall_back_to_longest_prefix():
    src = loads(YAML, "spec.yaml")
    assert src.loc(("params", "depth")) == src.loc(("params",))
    assert src.loc(("nodes", 5, "name")) == src.loc(("nodes",))
    assert src.loc(("name", "x")) == src.loc(("name",))
    assert src.key_loc(("params", "depth")) == src.loc(("params",))
    assert src.loc(("nodes", "0")) == src.loc(("nodes",))  # an index must be an int


def test_source_without_positions():
    src = Source("x.yaml", {"a": 1})
    assert src.loc(("a",)) == Loc("x.yaml") and src.key_loc(("a",)) == Loc("x.yaml")


NAN = float("nan")

# YAML 1.2's core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution): plain text -> value
CORE_SCHEMA = [
    *[(text, None) for text in ["null", "Null", "NULL", "~", ""]],
    *[(text, True) for text in ["true", "True", "TRUE"]],
    *[(text, False) for text in ["false", "False", "FALSE"]],
    ("0", 0), ("42", 42), ("-17", -17), ("+5", 5), ("0o17", 15), ("0o0", 0), ("0x1F", 31), ("0xff", 255),
    ("010", 10), ("007", 7), ("-010", -10), ("+00", 0),  # a leading 0 is decimal, not octal
    ("1.5", 1.5), ("-0.25", -0.25), ("+.5", 0.5), (".5", 0.5), ("1.", 1.0), ("01.5", 1.5),
    ("1e3", 1000.0), ("1E3", 1000.0), ("-1e-3", -0.001), ("2.5e+2", 250.0), (".5e1", 5.0), ("1e400", float("inf")),
    (".inf", float("inf")), (".Inf", float("inf")), (".INF", float("inf")), ("+.inf", float("inf")),
    ("-.inf", -float("inf")), ("-.Inf", -float("inf")), (".nan", NAN), (".NaN", NAN), (".NAN", NAN),
    # YAML 1.1 reads these as booleans, base-60 numbers, numbers with underscores, binary, dates or '=':
    # strings here
    *[(text, text) for text in ["yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
                                "y", "n", "1:30", "-1:30", "190:20:30.15", "1_000", "1_000.5", "0b101", "0x_1F",
                                "2024-01-01", "2001-12-14t21:59:43.10-05:00", "="]],
    # near misses of the forms above: strings
    *[(text, text) for text in ["nULL", "tRUE", "0o8", "0o", "0x", "0X1F", "0O17", "+0o7", "-0x1F", "1e", "e3",
                                "1e3.5", ".", "+", "+-1", "1.2.3", "1,000", "inf", "nan", "NaN", "Infinity",
                                ".iNF", ".nAn", "-.nan", "0x1G", "１２"]],
]


def _same(value, expected) -> bool:
    """Equal and of the same type (True is not 1); NaN is NaN."""
    if isinstance(expected, float) and expected != expected:
        return isinstance(value, float) and value != value
    return type(value) is type(expected) and value == expected


@pytest.mark.parametrize(("text", "expected"), CORE_SCHEMA, ids=[repr(text) for text, _ in CORE_SCHEMA])
def test_plain_scalars_follow_yaml_1_2_core_schema(tmp_path, text, expected):
    path = tmp_path / "spec.yaml"
    path.write_text(f"value: {text}\nlist:\n  - {text}\n")
    data = load(path).data
    assert _same(data["value"], expected) and len(data["list"]) == 1 and _same(data["list"][0], expected)
    assert _same(source.scalar(text), expected)
    assert _same(loads(f"value: '{text}'\n").data["value"], text)  # quoted: always a string
    # --set reads the same way; null is not a parameter's type, so it stays the text written
    assert _same(parse_override(f"name={text}")[1], text if expected is None else expected)


def test_json_is_read_by_json_rules():
    data = loads('{"a": "yes", "b": "010", "c": 1e3, "d": 10, "e": "1e3", "f": "null"}', fmt="json").data
    assert data == {"a": "yes", "b": "010", "c": 1000.0, "d": 10, "e": "1e3", "f": "null"}
    assert type(data["d"]) is int


def test_dates_and_equals_stay_strings():
    src = loads("a: 1\nb: 1.5\nc: true\nd: null\ne: '1'\nf: 2024-01-01\ng: =\nh: 0x10\ni: .inf\n")
    assert src.data == {
        "a": 1, "b": 1.5, "c": True, "d": None, "e": "1", "f": "2024-01-01", "g": "=", "h": 16,
        "i": float("inf"),
    }


@pytest.mark.parametrize(("text", "expected"), [
    ("!!str 12", "12"), ("!!str yes", "yes"), ("!!int '7'", 7), ("!!int 010", 10), ("!!int '0x1F'", 31),
    ("!!float 1", 1.0), ("!!float '1e3'", 1000.0), ("!!float .inf", float("inf")), ("!!bool 'true'", True),
    ("!!null ''", None), ("!!null ~", None),
])
def test_explicit_tags_take_their_own_forms(text, expected):
    assert _same(loads(f"a: {text}\n").data["a"], expected)


@pytest.mark.parametrize(("text", "message"), [
    ("!!int abc", "'abc' is not a valid int"), ("!!int 1_000", "'1_000' is not a valid int"),
    ("!!int 1.5", "'1.5' is not a valid int"), ("!!int 1:30", "'1:30' is not a valid int"),
    ("!!float 0x1F", "'0x1F' is not a valid float"), ("!!bool yes", "'yes' is not a valid bool"),
    ("!!bool 1", "'1' is not a valid bool"), ("!!null x", "'x' is not a valid null"),
])
def test_explicit_tags_refuse_other_forms(text, message):
    err = error(f"a: {text}\n")
    assert at(err) == (1, 4) and err.message == message


def test_aliases_are_expanded_and_located_at_the_alias():
    src = loads("base: &b\n  k: 1\nuse: *b\n", "spec.yaml")
    assert src.data == {"base": {"k": 1}, "use": {"k": 1}}
    assert src.data["use"] is not src.data["base"]  # copies, so callers may mutate
    assert src.loc(("use",)) == Loc("spec.yaml", 3, 6)
    assert src.loc(("use", "k")) == Loc("spec.yaml", 2, 6)  # inside: the anchored original


def test_duplicate_key_points_at_second_with_first_line_in_hint():
    err = error("model:\n  a: 1\n  a: 2\n")
    assert at(err) == (3, 3)
    assert err.message == "duplicate key 'a'"
    assert "line 2" in err.hint


def test_json_duplicate_key():
    err = error('{\n  "a": 1,\n  "a": 2\n}', "json")
    assert at(err) == (3, 3) and "line 2" in err.hint


def test_json_values_and_positions():
    text = '{\n  "name": "x",\n  "list": [1, {"b": 2.5e3}],\n  "big": 12345678901234567890\n}'
    src = loads(text, "spec.json", "json")
    assert src.data == json.loads(text)
    assert src.loc(("list", 1, "b")) == Loc("spec.json", 3, 21)
    assert src.key_loc(("list", 1, "b")) == Loc("spec.json", 3, 16)
    assert src.key_loc(("big",)) == Loc("spec.json", 4, 3)


def test_json_that_yaml_cannot_read_keeps_its_positions():
    src = loads('{"a": "x\x7f",\n"b": [1]}', "spec.json", "json")  # DEL is fine in JSON, not in YAML
    assert src.data == {"a": "x\x7f", "b": [1]}
    assert src.loc(("b", 0)) == Loc("spec.json", 2, 7)
    long_key = "k" * 1100  # YAML's simple keys stop at 1024 characters
    src = loads(f'{{"a": 1,\n  "{long_key}": [true, {{"c": null}}]}}', "spec.json", "json")
    assert src.key_loc((long_key,)) == Loc("spec.json", 2, 3)
    assert src.loc((long_key, 1, "c")) == Loc("spec.json", 2, 1120)  # the value, null
    assert src.key_loc((long_key, 1, "c")) == Loc("spec.json", 2, 1115)


def test_json_syntax_error_location():
    err = error('{\n  "a": 1,\n  "b": }', "json")
    assert at(err) == (3, 8) and err.message.startswith("invalid JSON")


@pytest.mark.parametrize(
    "text, where, words",
    [
        ("a: [1, 2\n", (2, 1), "invalid YAML"),
        ("a: b: c\n", (1, 5), "mapping values are not allowed"),
        ("a:\n\t- 1\n", (2, 1), "invalid YAML"),
        ("a: *nope\n", (1, 4), "undefined alias"),
        ("- 1\n- 2\n", (1, 1), "a spec must be a mapping at the top level, got a list"),
        ("just text\n", (1, 1), "got a string"),
        ("1: x\n", (1, 1), "mapping keys must be strings, got an integer"),
        ("a:\n  null: x\n", (2, 3), "mapping keys must be strings, got null"),
        ("? [a]\n: b\n", (1, 3), "mapping keys must be strings"),
        ("a: 1\n---\nb: 2\n", (2, 1), "single YAML document"),
        ("a: !foo 1\n", (1, 4), "unsupported YAML tag '!foo'"),
        ("a:\n  b: !!python/object:os.system x\n", (2, 6), "unsupported YAML tag '!!python/object:os.system'"),
        ("a: !!set {x}\n", (1, 4), "unsupported YAML tag '!!set'"),
        ("a: !!str [1]\n", (1, 4), "unsupported YAML tag '!!str'"),
        ("a: !!int abc\n", (1, 4), "'abc' is not a valid int"),
        ("b: &b {x: 1}\nc:\n  <<: *b\n", (3, 3), "merge keys"),
        ("a: x\x01\n", (1, 5), "U+0001 is not allowed"),
        ("a: &r [*r]\n", (1, 8), "nested too deeply"),
        ("a: " + "[" * 70 + "]" * 70, (1, 67), "nested too deeply"),  # the 64th list is level 65
    ],
)
def test_yaml_errors(text, where, words):
    err = error(text)
    assert at(err) == where and words in err.message


def test_tab_indentation_hint():
    assert "tabs" in error("a:\n\t- 1\n").hint


def test_nesting_limit_is_inclusive():
    loads("a: " + "[" * 63 + "]" * 63)  # the top-level mapping is level 1
    with pytest.raises(SpecError, match="nested too deeply"):
        loads("a: " + "[" * 64 + "]" * 64)


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "---\n", b""])
def test_empty(text):
    assert error(text).message == "spec is empty"


@pytest.mark.parametrize("text", ["", " \n\t", b""])
def test_empty_json(text):
    assert error(text, "json").message == "spec is empty"


def test_bad_utf8_position():
    err = error(b"a: 1\nbb: caf\xc3\xa9 \xff\n")
    assert at(err) == (2, 10) and "UTF-8" in err.message


def test_byte_order_mark_is_ignored():
    assert loads(b"\xef\xbb\xbfa: 1\n").data == {"a": 1}
    assert loads(b'\xef\xbb\xbf{"a": 1}', fmt="json").data == {"a": 1}


def test_alias_bomb_is_rejected_with_bounded_memory():
    # expanded in full this document has 9**9 (387 million) strings
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for prev, name in zip("abcdefgh", "bcdefghi"):
        text += f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]\n"
    tracemalloc.start()
    try:
        with pytest.raises(SpecError, match="too large"):
            loads(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20


def test_size_limit(monkeypatch, tmp_path):
    monkeypatch.setattr(source, "MAX_BYTES", 16)
    with pytest.raises(SpecError, match="too large"):
        loads("a: 1234567890123456")
    path = tmp_path / "big.yaml"
    path.write_text("a: 1234567890123456")
    with pytest.raises(SpecError, match="too large"):
        load(path)


def test_long_numbers_are_refused_before_conversion():
    with pytest.raises(SpecError, match="too long"):
        loads("a: " + "1" * 2000 + "\n")  # quadratic to convert
    assert loads("a: " + "1:" * 2000 + "1\n").data["a"].startswith("1:1:")  # no base 60: a string


def test_load_files(tmp_path):
    (tmp_path / "net.yaml").write_text("a: 1\n")
    (tmp_path / "net.json").write_text('{"a": 1, "b": "yes"}')
    assert load(tmp_path / "net.yaml").data == {"a": 1}
    assert load(str(tmp_path / "net.json")).data == {"a": 1, "b": "yes"}  # JSON semantics, not YAML's
    assert load(tmp_path / "net.yaml").file == str(tmp_path / "net.yaml")
    with pytest.raises(SpecError, match="not found") as info:
        load(tmp_path / "net.yml")
    assert info.value.hint == "did you mean 'net.yaml'?"
    with pytest.raises(SpecError, match="directory"):
        load(tmp_path)


# --- property tests ---------------------------------------------------------

YAMLISH = st.text(alphabet="ab1 :-\n[]{},&*!?|>'\"#~.\t<=%@`\\x", max_size=80)


@settings(max_examples=examples(200), deadline=None)
@given(st.one_of(st.binary(max_size=80), YAMLISH, st.text(max_size=40)), st.sampled_from(["yaml", "json"]))
def test_loads_only_raises_spec_error(text, fmt):
    try:
        src = loads(text, "f", fmt)
    except SpecError as err:
        assert isinstance(err.loc, Loc)
        return
    assert isinstance(src.data, dict)


@settings(max_examples=examples(100), deadline=None)
@given(st.dictionaries(st.text(max_size=5), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
), min_size=1, max_size=4))
def test_json_round_trip(data):
    text = json.dumps(data, indent=1)
    src = loads(text, fmt="json")
    assert src.data == data
    first = next(iter(data))
    assert src.key_loc((first,)) == Loc("<spec>", 2, 2)


def _all_positions(src: Source, data, path=()):
    yield path, src.loc(path), src.key_loc(path)
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        yield from _all_positions(src, value, path + (key,))


@settings(max_examples=examples(100), deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=15,
), st.sampled_from([None, 1, 2]), st.booleans())
def test_json_positions_are_yamls(data, indent, ascii_only):
    """JSON's own position scanner agrees with YAML's parser wherever YAML can read the JSON."""
    text = json.dumps({"root": data}, indent=indent, ensure_ascii=ascii_only)
    try:
        by_yaml = loads(text, "spec.json", "yaml")
    except SpecError:
        return  # JSON that YAML cannot read: the reason for the scanner
    by_json = loads(text, "spec.json", "json")
    if by_json.data != by_yaml.data:
        return  # YAML reads some escapes otherwise (a \\u surrogate pair as two characters)
    assert list(_all_positions(by_json, by_json.data)) == list(_all_positions(by_yaml, by_yaml.data))
