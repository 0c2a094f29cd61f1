"""Hostile and broken input, at random, through the whole pipeline: nothing but located SpecErrors.

Properties (oracle: the contract that every problem is a :class:`archgraph.SpecError` with a
``file:line:col``, and that whatever loads builds and runs as shape inference says):

* random bytes, random text and random YAML trees (built recursively, dumped with
  ``yaml.safe_dump``) fed to ``archgraph.load`` raise nothing but SpecError;
* random *mutations* of real specs (the plain expansion of specs/hrnet.yaml at width 18, the
  written specs in specs/, and small hand-written ones: a key deleted, a value of another type,
  a node renamed, two strides swapped, an edge dropped or reversed, a number pushed out of
  range, an op swapped for another) raise nothing but SpecError, every error located in the
  mutant's file; and a mutant that loads also profiles, expands to a spec that loads to the same
  graph, builds, and runs a forward on the meta device whose every node has the inferred shape.

Example counts are small by default; ``--hypothesis-profile=thorough`` (tests/conftest.py) runs
thousands.
"""

from __future__ import annotations

import copy
import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import archgraph
from archgraph.api import plain
from archgraph.errors import SpecError
from archgraph.ir import infer
from archgraph.lang.source import dumps, loads
from archgraph.ops import blocks, edge_ops
from archgraph.patterns import patterns
from archgraph.spec.params import parse_override
from tests.conftest import examples

ROOT = Path(__file__).resolve().parent.parent
FILE = "mutant.yaml"
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]


def _load(text: str | bytes, fmt: str = "yaml", file: str = FILE):
    """``archgraph.load`` of ``text`` as a file would be read; SpecErrors are returned, not raised."""
    try:
        return archgraph.load(loads(text, file, fmt))
    except SpecError as error:
        return error


def _located(error: SpecError, file: str = FILE) -> None:
    for e in getattr(error, "errors", [error]):
        assert e.loc.file == file and e.loc.line >= 1 and e.loc.col >= 1, str(e)
        assert "\n" not in SpecError.__str__(e), str(e)  # one line per problem


# --- random bytes, text and YAML trees --------------------------------------------------------------

KEYS = ["archgraph", "name", "doc", "params", "input", "nodes", "edges", "stride", "channels", "from", "to",
        "op", "block", "use", "body", "output", "when", "merge", "act", "size", "widths", "kernel", "repeat",
        "default", "choices", "modules", "blocks", "features", "mode", "links", "project"]
NAMES = st.sampled_from(["image", "stem", "a", "b", "s2", "items", "__class__", "class", "2x", "x" * 70, "width"])
SCALARS = (st.none() | st.booleans() | st.integers(-3, 70_000) | st.integers() | st.floats()
           | st.text(max_size=12) | NAMES | st.sampled_from(["2*width", "1/0", "width ** 99", "[8] * 99999",
                                                            "'a' * 10**6", "true", "conv", "upsample"]))
TREES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5),
                     max_leaves=25)
NODES = st.fixed_dictionaries({}, optional={k: TREES | SCALARS for k in
                                            ["name", "stride", "channels", "from", "output", "body", "use", "when",
                                             "widths", "merge", "act"]})
EDGES = st.fixed_dictionaries({}, optional={k: TREES | SCALARS | NAMES for k in ["from", "to", "op", "mode", "when"]})
DOCUMENTS = st.fixed_dictionaries({}, optional={
    "archgraph": st.just(1) | TREES, "name": NAMES | TREES, "params": st.dictionaries(NAMES, TREES, max_size=3) | TREES,
    "input": TREES, "nodes": st.lists(NODES | TREES, max_size=5) | TREES, "edges": st.lists(EDGES, max_size=4) | TREES,
})


@settings(max_examples=examples(100), deadline=None, suppress_health_check=SLOW)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)), st.sampled_from(["yaml", "json"]))
def test_random_bytes_only_raise_spec_errors(data, fmt):
    result = _load(data, fmt)
    if isinstance(result, SpecError):
        _located(result)


@settings(max_examples=examples(100), deadline=None, suppress_health_check=SLOW)
@given(st.one_of(DOCUMENTS, TREES), st.sampled_from(["yaml", "json"]))
def test_random_documents_only_raise_spec_errors(document, fmt):
    text = yaml.safe_dump(document) if fmt == "yaml" else json.dumps(document)
    result = _load(text, fmt)
    if isinstance(result, SpecError):
        _located(result)


# --- scalars: YAML 1.2's core schema -----------------------------------------------------------------

@settings(max_examples=examples(200), deadline=None)
@given(st.integers() | st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 3))
def test_numbers_read_back_as_python_writes_them(number, zeros):
    """Python's repr of an int or a float is that number in a spec and in --set (``1e-05`` too, a string in
    YAML 1.1); leading zeros of an integer change nothing (decimal, not octal as in YAML 1.1)."""
    text = repr(number)
    if isinstance(number, int):
        text = "-" * (number < 0) + "0" * zeros + str(abs(number))
    for value in (loads(f"value: {text}\n").data["value"], parse_override(f"x={text}")[1]):
        assert type(value) is type(number) and value == number, text
        assert math.copysign(1, value) == math.copysign(1, number), text  # -0.0 too


# texts near numbers and the words of YAML 1.1 and 1.2
NUMBERISH = r"[-+]?(0o|0x|\.|0)?[0-9_]{0,3}(\.[0-9]{0,2})?([eE][-+]?[0-9]{1,2})?(:[0-5][0-9])?"
LOOKALIKES = (st.from_regex(NUMBERISH, fullmatch=True)
              | st.sampled_from(["yes", "No", "ON", "off", "y", "~", "null", "True", ".inf", "-.Inf", ".NaN", "=", "<<",
                                 "2024-01-01", "0b101", "1:30", "0x1F", "0o17", "010"])
              | st.text(alphabet="0123456789.eE+-_:oxXbB~ nulTrFasyIfNA=<", max_size=8))


@settings(max_examples=examples(200), deadline=None)
@given(st.text(max_size=20) | LOOKALIKES)
def test_strings_that_expand_writes_read_back_as_strings(text):
    """What expand writes (lang.source.dumps) reads back as the same string here and with YAML 1.1 readers."""
    written = dumps({"value": text})
    assert loads(written).data == {"value": text}, written
    assert yaml.safe_load(written) == {"value": text}, written


# --- mutations of real specs ------------------------------------------------------------------------

TINY = {
    "archgraph": 1, "name": "tiny", "params": {"width": 8}, "input": {"size": [32, 32]},
    "nodes": [
        {"name": "stem", "stride": 2, "channels": "width", "from": "image",
         "body": [{"block": "conv", "channels": "width", "stride": 2}]},
        {"name": "low", "stride": 4, "channels": "2*width"},
        {"name": "out", "stride": 2, "channels": "width", "from": "stem", "output": True},
    ],
    "edges": [{"from": "stem", "to": "low", "op": "downsample"}, {"from": "low", "to": "out", "op": "upsample"}],
}
CONCAT = {
    "archgraph": 1, "name": "concat", "input": {"channels": 1, "size": [16, 16]},
    "nodes": [
        {"name": "enc", "stride": 1, "channels": 4, "from": "image", "body": [{"block": "basic", "channels": 4}]},
        {"name": "down", "stride": 2, "channels": 8, "from": "enc", "body": [{"block": "conv", "channels": 8,
                                                                               "stride": 2}]},
        {"name": "dec", "stride": 1, "channels": 12, "merge": "concat", "from": "enc", "act": "relu"},
        {"name": "head", "stride": 1, "channels": 3, "from": "dec", "output": True,
         "body": [{"block": "global_avg_pool"}, {"block": "linear", "features": 3}]},
    ],
    "edges": [{"from": "down", "to": "dec", "op": "upsample", "project": False}],
}


@lru_cache(maxsize=None)
def _bases() -> tuple[tuple[str, str], ...]:
    """(name, YAML text) of every spec that mutants start from; each loads as it is."""
    found = {"hrnet_w18_plain": plain(ROOT / "specs" / "hrnet.yaml", width=18).to_data(), "tiny": TINY,
             "concat": CONCAT}
    for path in sorted((ROOT / "specs").glob("*.yaml")):  # the written specs, patterns and expressions included
        found[path.stem] = yaml.safe_load(path.read_text())
    bases = []
    for name, data in found.items():
        text = yaml.safe_dump(data, sort_keys=False)
        if not isinstance(_load(text), SpecError):  # a spec being written may not load yet: not a base then
            bases.append((name, text))
    return tuple(bases)


def test_the_bases_load():
    names = {name for name, _ in _bases()}
    assert {"hrnet_w18_plain", "tiny", "concat", "hrnet"} <= names


def _paths(data: Any, path: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``data``."""
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, path + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths(value, path + (i,))
    return found


def _get(data: Any, path: tuple) -> Any:
    for step in path:
        data = data[step]
    return data


OTHER_VALUES = [None, True, False, 0, -1, 1, 3, 65536, 65537, 2**70, 1.5, float("inf"), "", "x", "2*", "width",
                "image", [], [1, 2], {}, {"a": 1}, "1/0", "width ** 70"]
NODE_NAMES = ["image", "stem", "out", "x", "items", "training", "__init__", "class", "2bad", "n" * 65]


@st.composite
def mutants(draw) -> tuple[str, dict]:
    name, text = draw(st.sampled_from(_bases()))
    data = yaml.safe_load(text)
    tags = sorted(edge_ops()) + sorted(blocks()) + sorted(patterns())
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        parent, key = (_get(data, path[:-1]), path[-1]) if path else (None, None)
        nodes = data.get("nodes") if isinstance(data, dict) and isinstance(data.get("nodes"), list) else []
        edges = data.get("edges") if isinstance(data, dict) and isinstance(data.get("edges"), list) else []
        named = [n for n in nodes if isinstance(n, dict) and "name" in n]
        strided = [n for n in nodes if isinstance(n, dict) and "stride" in n]
        kind = draw(st.sampled_from(["delete", "retype", "rename", "swap_strides", "drop_edge", "reverse_edge",
                                     "number", "retag", "duplicate"]))
        if kind == "delete" and parent is not None:
            del parent[key]
        elif kind == "retype" and parent is not None:
            parent[key] = copy.deepcopy(draw(st.sampled_from(OTHER_VALUES)))
        elif kind == "rename" and named:
            draw(st.sampled_from(named))["name"] = draw(st.sampled_from(NODE_NAMES + [n["name"] for n in named]))
        elif kind == "swap_strides" and len(strided) > 1:
            a, b = draw(st.permutations(strided))[:2]
            a["stride"], b["stride"] = b["stride"], a["stride"]
        elif kind == "drop_edge" and (edges or any("from" in n for n in named)):
            if edges and draw(st.booleans()):
                edges.pop(draw(st.integers(0, len(edges) - 1)))
            else:
                draw(st.sampled_from([n for n in named if "from" in n] or named)).pop("from", None)
        elif kind == "reverse_edge" and edges:
            edge = draw(st.sampled_from(edges))
            if isinstance(edge, dict):
                edge["from"], edge["to"] = edge.get("to"), edge.get("from")
        elif kind == "number" and parent is not None and isinstance(parent[key], int) and \
                not isinstance(parent[key], bool):
            value = parent[key]
            parent[key] = draw(st.sampled_from([0, -value, value + 1, value - 1, value * 2, value // 2, 65537]))
        elif kind == "retag" and parent is not None and key in ("op", "block", "use"):
            parent[key] = draw(st.sampled_from(tags))
        elif kind == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
    return name, data


def _run_everything(graph) -> None:
    """What the commands do with a graph that loads: profile it, expand it, build it, run it."""
    from archgraph.analysis.cost import profile
    from archgraph.backends.torch import GraphModule

    try:
        shapes = infer(graph)
    except SpecError as error:  # the spec's own input size does not fit the mutated network
        _located(error)
        event("loads; its input size does not fit")
        return
    event("loads, profiles, builds and runs")
    profile(graph, shapes=shapes)
    with torch.device("meta"):
        module = GraphModule(graph).eval()
    module.check_input = False
    with torch.no_grad():
        tensors = module.forward_all(torch.empty(1, *shapes.input.dims, device="meta"))
    assert {name: tuple(t.shape[1:]) for name, t in tensors.items()} == \
           {name: shape.dims for name, shape in shapes.nodes.items()}


@settings(max_examples=examples(25, 600), deadline=None, suppress_health_check=SLOW)
@given(mutants())
def test_mutated_specs_fail_cleanly_or_work(mutant):
    _, data = mutant
    text = yaml.safe_dump(data, sort_keys=False)
    result = _load(text)
    if isinstance(result, SpecError):
        _located(result)
        event("rejected")
        return
    graph = result
    # what expand prints is a spec, and it loads to the same network
    again = archgraph.load(loads(dumps(plain(loads(text, FILE)).to_data()), "plain.yaml"))
    assert list(again.nodes) == list(graph.nodes) and [e.label for e in again.edges] == [e.label for e in graph.edges]
    _run_everything(graph)


@settings(max_examples=examples(15, 300), deadline=None, suppress_health_check=SLOW)
@given(mutants())
def test_mutated_json_specs_fail_cleanly_or_work(mutant):
    _, data = mutant
    try:
        text = json.dumps(data, indent=1, allow_nan=False)
    except ValueError:  # inf: not JSON
        return
    result = _load(text, "json", "mutant.json")
    if isinstance(result, SpecError):
        _located(result, "mutant.json")


def test_the_mutants_reach_both_verdicts():
    """The properties above mean something only if mutants both load and fail, in many ways."""
    verdicts, messages = set(), set()

    @settings(max_examples=50, deadline=None, database=None, derandomize=True, suppress_health_check=SLOW)
    @given(mutants())
    def probe(mutant):
        result = _load(yaml.safe_dump(mutant[1], sort_keys=False))
        verdicts.add(isinstance(result, SpecError))
        if isinstance(result, SpecError):  # the kind of message: quoted names and numbers left out
            messages.add(re.sub(r"'[^']*'|-?[0-9]+", "_", result.message))

    probe()
    assert verdicts == {True, False}
    assert len(messages) >= 8, messages


@pytest.mark.parametrize("text", ["a: !!python/object/apply:os.system ['touch {marker}']\n",
                                  "archgraph: 1\nname: !!python/name:os.system\nnodes: []\n",
                                  "!!python/object/new:os.system [touch {marker}]\n"])
def test_python_tags_run_nothing(tmp_path, text):
    marker = tmp_path / "pwned"
    result = _load(text.format(marker=marker))
    assert isinstance(result, SpecError) and "unsupported YAML tag" in result.message
    assert not marker.exists()
