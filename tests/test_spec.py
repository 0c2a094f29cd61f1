"""The spec language: parameters, expressions, conditions, pattern references, expansion, JSON Schema.

Oracles: hand-computed graphs for small specs; for specs/hrnet.yaml, the written spec
itself (its plain expansion must describe the same network) and the architecture's
published structure (widths C, 2C, 4C, 8C; module counts 1, 4, 3).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import archgraph
from archgraph.api import plain
from archgraph.errors import Loc, SpecError, SpecErrors
from archgraph.lang.source import load as load_source
from archgraph.ops import blocks, edge_ops
from archgraph.patterns import patterns
from archgraph.spec.model import models
from archgraph.spec.params import parse_override

HRNET = str(Path(__file__).resolve().parent.parent / "specs" / "hrnet.yaml")


def spec(nodes, edges=(), params=None, **top):
    data = {"archgraph": 1, "name": "t", "nodes": list(nodes), "edges": list(edges), **top}
    if params is not None:
        data["params"] = params
    return data


def errors_of(fn, *args, **kwargs) -> list[SpecError]:
    with pytest.raises(SpecError) as info:
        fn(*args, **kwargs)
    return list(info.value) if isinstance(info.value, SpecErrors) else [info.value]


def edge_set(graph):
    return [(e.src, e.dst, e.op.tag, e.op.params()) for e in graph.edges]


def node_set(graph):
    return [(n.name, n.stride, n.channels, n.merge, n.act, n.output, tuple(b.model_dump() for b in n.body))
            for n in graph.nodes.values()]


# --- parameters ------------------------------------------------------------------------------


def test_parameter_defaults():
    graph = archgraph.load(HRNET)
    assert graph.params == {"width": 32, "variant": "standard", "head": "classification", "classes": 1000, "joints": 17,
                            "seg_classes": 19}
    # the stride-4 branch has width C, the stride-32 branch 8C
    assert graph.nodes["s4_m2_b0"].channels == 32
    assert graph.nodes["s4_m2_b3"].channels == 256
    assert graph.outputs == ["classifier"]


@pytest.mark.parametrize(("text", "expected"), [
    ("width=48", ("width", 48)),
    ("head=pose", ("head", "pose")),
    ("flag=true", ("flag", True)),
    ("flag=false", ("flag", False)),
    ("ratio=0.25", ("ratio", 0.25)),
    ("offset=-3", ("offset", -3)),
    (" width = 48 ", ("width", 48)),
    ("name='48'", ("name", "48")),          # quoting keeps a number a string
    ('name="a b"', ("name", "a b")),
    ("empty=", ("empty", "")),
    ("expr=a=b", ("expr", "a=b")),          # only the first '=' separates
    ("items=[1, 2]", ("items", "[1, 2]")),  # not a scalar: kept as the text written
    ("broken=[1,", ("broken", "[1,")),      # not YAML at all: kept as the text written
    ("width=010", ("width", 10)),           # YAML 1.2: a leading 0 is decimal, not octal
    ("ratio=1e-3", ("ratio", 0.001)),       # YAML 1.2: a float without a dot
    ("flag=yes", ("flag", "yes")),          # YAML 1.2: not a boolean
    ("flag=off", ("flag", "off")),
    ("time=1:30", ("time", "1:30")),        # YAML 1.2: no base 60
    ("width=1_000", ("width", "1_000")),    # YAML 1.2: no underscores in numbers
    ("width=0x10", ("width", 16)),
    ("nothing=null", ("nothing", "null")),  # null is no parameter's type: kept as the text written
    ("tagged=!!str 12", ("tagged", "12")),
    ("tagged=!!python/name:os.system", ("tagged", "!!python/name:os.system")),  # refused: kept as written
])
def test_parse_override(text, expected):
    name, value = parse_override(text)
    assert (name, value) == expected
    assert type(value) is type(expected[1])


@pytest.mark.parametrize("text", ["width", "=48", "", " =1"])
def test_parse_override_needs_name_and_equals(text):
    [error] = errors_of(parse_override, text)
    assert error.loc == Loc("<command line>")
    assert "NAME=VALUE" in error.message and "--set width=48" in error.hint


@pytest.mark.parametrize(("width", "head", "outputs"), [
    (48, "classification", ["classifier"]),
    (18, "pose", ["heatmaps"]),
    (40, "segmentation", ["segmentation"]),
])
def test_api_overrides(width, head, outputs):
    graph = archgraph.load(HRNET, width=width, head=head)
    assert graph.params["width"] == width and graph.params["head"] == head
    assert [graph.nodes[f"s4_m2_b{i}"].channels for i in range(4)] == [width, 2 * width, 4 * width, 8 * width]
    assert graph.outputs == outputs


@pytest.mark.parametrize(("override", "words"), [
    ({"width": "48"}, "parameter 'width' takes an integer, got '48'"),
    ({"width": 48.0}, "parameter 'width' takes an integer, got 48.0"),
    ({"width": True}, "parameter 'width' takes an integer, got True"),  # a bool is not an int here
    ({"head": 3}, "parameter 'head' takes a string, got 3"),
    ({"classes": None}, "parameter 'classes' takes an integer, got None"),
])
def test_override_of_the_wrong_type(override, words):
    [error] = errors_of(archgraph.load, HRNET, **override)
    assert error.message == words
    assert error.loc == Loc("<parameters>")  # not the command line: these came through the API


def test_float_parameter_accepts_an_int_and_bool_rejects_an_int():
    data = spec([{"name": "a", "stride": 1, "channels": 3, "from": "image", "output": True}],
                params={"ratio": 0.5, "flag": False})
    assert archgraph.load(data, ratio=2).params["ratio"] == 2
    [error] = errors_of(archgraph.load, data, flag=1)
    assert error.message == "parameter 'flag' takes a boolean, got 1"
    [error] = errors_of(archgraph.load, data, ratio="0.5")
    assert error.message == "parameter 'ratio' takes a number, got '0.5'"


def test_unknown_parameter_with_did_you_mean():
    [error] = errors_of(archgraph.load, HRNET, widht=48)
    assert "unknown parameter 'widht'" in error.message
    assert error.hint == "did you mean 'width'?"
    [error] = errors_of(archgraph.load, HRNET, zzz=1)
    assert error.hint == "parameters: width, variant, head, classes, joints, seg_classes"
    no_params = spec([{"name": "a", "stride": 1, "channels": 3, "from": "image", "output": True}])
    [error] = errors_of(archgraph.load, no_params, width=1)
    assert error.hint == "it has none"


def test_choices():
    [error] = errors_of(archgraph.load, HRNET, head="posse")
    assert error.message == "parameter 'head' cannot be 'posse'"
    assert error.hint == "did you mean 'pose'?"
    [error] = errors_of(archgraph.load, HRNET, head="detection")
    assert error.hint == "choices: ['classification', 'pose', 'segmentation']"


def test_every_bad_override_is_reported_in_one_run():
    errors = errors_of(archgraph.load, HRNET, widht=48, head="posse", classes="many")
    assert len(errors) == 3
    assert {e.message.split("'")[1] for e in errors} == {"widht", "head", "classes"}


def test_parameter_default_must_be_among_choices():
    data = spec([{"name": "a", "stride": 1, "channels": 3, "from": "image", "output": True}],
                params={"mode": {"default": "x", "choices": ["y", "z"]}})
    [error] = errors_of(archgraph.load, data)  # even without any override
    assert "default 'x' of 'mode' is not among its choices" in error.message


# --- expressions, conditions, repeat, from: --------------------------------------------------

PARAMS = {"width": 8, "deep": False, "depth": 2, "link": True,
          "mode": {"default": "nearest", "choices": ["nearest", "bilinear"]}}
NODES = [
    {"name": "stem", "stride": 4, "channels": "2*width", "from": "image",
     "body": [{"block": "conv", "channels": "2*width", "stride": "2+2"}]},
    {"use": "multires_stage", "name": "s2", "from": "stem", "widths": "[2*width, 4*width]", "blocks": "depth",
     "block": "'bottleneck' if deep else 'basic'", "upsample": "mode"},
    {"name": "extra", "stride": 4, "channels": "2*width", "from": "s2_m0_f0", "when": "deep", "output": "not link"},
    {"name": "out", "stride": 8, "channels": "4*width", "from": "s2_m0_f1", "output": True,
     "body": [{"block": "basic", "channels": "4*width", "repeat": "depth + 1"}]},
]
EDGES = [{"from": "s2_m0_f0", "to": "out", "op": "downsample"},
         {"from": "extra", "to": "out", "op": "downsample", "when": "deep and link"}]
SMALL = spec(NODES, EDGES, params=PARAMS, input={"size": "[width*8, width*4]"})


def test_expressions_in_numeric_fields_lists_and_choices():
    graph = archgraph.load(SMALL)
    assert graph.input.size == (64, 32)
    assert graph.nodes["stem"].channels == 16
    assert graph.nodes["stem"].body[0].stride == 4
    assert [graph.nodes[f"s2_m0_b{i}"].channels for i in (0, 1)] == [16, 32]
    assert [b.tag for b in graph.nodes["s2_m0_b0"].body] == ["basic", "basic"]
    up = next(e for e in graph.edges if e.src == "s2_m0_b1" and e.dst == "s2_m0_f0")
    assert (up.op.tag, up.op.mode, up.op.size) == ("upsample", "nearest", "scale")

    graph = archgraph.load(SMALL, width=4, deep=True, mode="bilinear", depth=1)
    assert graph.input.size == (32, 16)
    assert [graph.nodes[f"s2_m0_b{i}"].channels for i in (0, 1)] == [8, 16]
    assert [(b.tag, b.channels) for b in graph.nodes["s2_m0_b1"].body] == [("bottleneck", 16)]
    up = next(e for e in graph.edges if e.src == "s2_m0_b1" and e.dst == "s2_m0_f0")
    assert (up.op.mode, up.op.size) == ("bilinear", "target")  # the pattern's bilinear fusion resizes


def test_list_items_may_be_expressions_one_by_one():
    nodes = [dict(NODES[1], widths=["2*width", "width * 4"]) if i == 1 else n for i, n in enumerate(NODES)]
    graph = archgraph.load(spec(nodes, EDGES, params=PARAMS))
    assert [graph.nodes[f"s2_m0_b{i}"].channels for i in (0, 1)] == [16, 32]


def test_choice_expression_must_give_an_option():
    nodes = [dict(NODES[1], block="'wide' if deep else 'basic'") if i == 1 else n for i, n in enumerate(NODES)]
    [error] = errors_of(archgraph.load, spec(nodes, EDGES, params=PARAMS), deep=True)
    assert error.message == "'block' must be 'basic' or 'bottleneck', got 'wide'"


def test_node_merge_and_act_may_be_expressions():
    data = spec([{"name": "a", "stride": 1, "channels": 4, "from": "image", "body": [{"block": "conv", "channels": 4}]},
                 {"name": "b", "stride": 1, "channels": "7 if cat else 3", "from": ["a", "image"],
                  "merge": "'concat' if cat else 'sum'", "act": "'relu' if cat else 'none'", "output": True}],
                params={"cat": True})
    graph = archgraph.load(data)
    assert (graph.nodes["b"].merge, graph.nodes["b"].act, graph.types["b"].merge_channels) == ("concat", "relu", 7)
    [error] = errors_of(archgraph.load, data, cat=False)  # a sum of 4 and 3 channels
    assert error.message == "channel mismatch at sum node 'b': 'a' gives 4, 'image' gives 3"


def test_when_on_nodes_patterns_and_edges():
    graph = archgraph.load(SMALL)
    assert "extra" not in graph.nodes
    assert ("extra", "out") not in {(e.src, e.dst) for e in graph.edges}
    graph = archgraph.load(SMALL, deep=True)
    assert "extra" in graph.nodes and ("extra", "out") in {(e.src, e.dst) for e in graph.edges}
    graph = archgraph.load(SMALL, deep=True, link=False)  # the edge's own condition is false
    assert "extra" in graph.nodes and ("extra", "out") not in {(e.src, e.dst) for e in graph.edges}
    assert graph.outputs == ["extra", "out"]
    # a pattern's when: removes everything it would write
    data = spec([NODES[0], dict(NODES[1], when="deep"),
                 {"name": "out", "stride": 4, "channels": 16, "from": "stem", "output": True}], params=PARAMS)
    assert list(archgraph.load(data).nodes) == ["stem", "out"]
    assert [n.name for n, _ in plain(data, deep=True).nodes] == [
        "stem", "s2_t1", "s2_m0_b0", "s2_m0_b1", "s2_m0_f0", "s2_m0_f1", "out"]


def test_hrnet_heads_follow_when():
    for head, present in [("classification", "classifier"), ("pose", "heatmaps"), ("segmentation", "segmentation")]:
        graph = archgraph.load(HRNET, width=18, head=head)
        names = set(graph.nodes)
        assert present in names
        assert not names & ({"classifier", "heatmaps", "segmentation"} - {present})
    # the pose network's last module fuses only into the stride-4 branch (multi_scale_output: head != 'pose')
    assert [n for n in archgraph.load(HRNET, head="pose").nodes if n.startswith("s4_m2_f")] == ["s4_m2_f0"]


def test_from_a_pattern_name_means_its_outputs():
    data = spec([NODES[0], dict(NODES[1], block="basic", upsample="nearest", blocks=1),
                 {"name": "fused", "stride": 4, "channels": 16, "merge": "concat", "from": "s2", "output": True}],
                params={"width": 8})
    edges = [(e.src, e.dst, e.tag) for e, _ in plain(data).edges if e.dst == "fused"]
    assert edges == [("s2_m0_f0", "fused", "identity"), ("s2_m0_f1", "fused", "identity")]
    # with a single-output pattern the same spec loads
    data["nodes"][1] = dict(NODES[1], widths=[16], blocks=1, block="basic", upsample="nearest")
    graph = archgraph.load(data, width=8)
    assert [(e.src, e.op.tag) for e in graph.in_edges("fused")] == [("s2_m0_b0", "identity")]
    assert graph.types["fused"].merge_channels == 16


def test_repeat_unrolls_in_the_graph_but_not_in_the_plain_spec():
    graph = archgraph.load(SMALL)
    assert [(b.tag, b.repeat) for b in graph.nodes["out"].body] == [("basic", 1)] * 3
    out = next(n for n in plain(SMALL).to_data()["nodes"] if n["name"] == "out")
    assert out["body"] == [{"block": "basic", "channels": 32, "repeat": 3}]
    with torch.device("meta"):
        module = archgraph.build(SMALL)
    assert len(module.nodes["out"]) == 3


def test_repeat_of_a_strided_block_strides_once():
    data = spec([{"name": "a", "stride": 4, "channels": 16, "from": "image", "output": True,
                  "body": [{"block": "conv", "channels": 8, "stride": 2},
                           {"block": "bottleneck", "channels": 16, "stride": 2, "repeat": 3}]}])
    graph = archgraph.load(data)
    assert [(b.tag, b.stride) for b in graph.nodes["a"].body] == [("conv", 2), ("bottleneck", 2),
                                                                  ("bottleneck", 1), ("bottleneck", 1)]
    assert graph.types["a"].arrival_stride == 1
    assert plain(data).to_data()["nodes"][0]["body"][1] == {"block": "bottleneck", "channels": 16, "stride": 2,
                                                            "repeat": 3}
    [error] = errors_of(archgraph.load, spec([dict(data["nodes"][0], stride=6)]))
    assert error.message == "node 'a' has stride 6, which its body's stride 4 does not divide"


def test_default_edge_op_is_identity():
    data = spec([{"name": "a", "stride": 1, "channels": 3, "from": "image"},
                 {"name": "b", "stride": 1, "channels": 3, "output": True}],
                [{"from": "a", "to": "b"}])
    graph = archgraph.load(data)
    assert [(e.src, e.dst, e.op.tag) for e in graph.edges] == [("image", "a", "identity"), ("a", "b", "identity")]
    assert plain(data).to_data()["edges"][1] == {"from": "a", "to": "b", "op": "identity"}


# --- expansion -------------------------------------------------------------------------------

CONFIGS = [(18, "classification"), (32, "pose"), (18, "segmentation"), (48, "pose")]


@pytest.mark.parametrize(("width", "head"), CONFIGS)
def test_expand_round_trip(width, head):
    written = archgraph.load(HRNET, width=width, head=head)
    data = plain(HRNET, width=width, head=head).to_data()
    json.dumps(data)  # plain data only
    assert "params" not in data and all("use" not in n for n in data["nodes"])
    again = archgraph.load(data)
    assert node_set(again) == node_set(written)
    assert edge_set(again) == edge_set(written)
    assert again.order == written.order
    with torch.device("meta"):
        counts = [sum(p.numel() for p in archgraph.build(g).parameters()) for g in (written, again)]
    assert counts[0] == counts[1]
    assert plain(data).to_data() == data  # a fixed point


def test_yaml_and_json_give_the_same_graph(tmp_path):
    as_json = tmp_path / "hrnet.json"
    as_json.write_text(json.dumps(load_source(HRNET).data, indent=1))
    for head in ("classification", "segmentation"):
        a, b = archgraph.load(HRNET, head=head, width=18), archgraph.load(as_json, head=head, width=18)
        assert node_set(a) == node_set(b) and edge_set(a) == edge_set(b)
        assert b.nodes["stem"].origin.loc("name").file == str(as_json)
        assert b.nodes["stem"].origin.loc("name").line > 0  # JSON keeps positions too


# --- JSON Schema -----------------------------------------------------------------------------


def _schema() -> dict:
    return models().Spec.model_json_schema(by_alias=True)


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        assert schema["$ref"].startswith("#/$defs/")
        schema = root["$defs"][schema["$ref"][len("#/$defs/"):]]
    return schema


_ANNOTATIONS = {"title", "description", "default", "examples", "$defs", "$schema"}


def _valid(schema: dict, value, root: dict) -> bool:
    """A small JSON Schema (2020-12) checker for the keywords pydantic emits; unknown keywords fail loudly."""
    schema = _resolve(schema, root)
    for key, arg in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "type":
            kinds = {"string": str, "array": list, "object": dict, "boolean": bool, "null": type(None)}
            if arg == "integer":
                ok = type(value) is int or (type(value) is float and value.is_integer())
            elif arg == "number":
                ok = type(value) in (int, float)
            else:
                ok = type(value) is kinds[arg]
        elif key == "const":
            ok = value == arg and type(value) is type(arg)
        elif key == "enum":
            ok = any(value == a and type(value) is type(a) for a in arg)
        elif key == "anyOf":
            ok = any(_valid(s, value, root) for s in arg)
        elif key == "oneOf":
            ok = sum(_valid(s, value, root) for s in arg) == 1
        elif key == "allOf":
            ok = all(_valid(s, value, root) for s in arg)
        elif key == "minimum":
            ok = not isinstance(value, (int, float)) or isinstance(value, bool) or value >= arg
        elif key == "maximum":
            ok = not isinstance(value, (int, float)) or isinstance(value, bool) or value <= arg
        elif key == "maxLength":
            ok = not isinstance(value, str) or len(value) <= arg
        elif key == "pattern":
            ok = not isinstance(value, str) or re.search(arg, value) is not None
        elif key in ("minItems", "maxItems"):
            ok = not isinstance(value, list) or (len(value) >= arg if key == "minItems" else len(value) <= arg)
        elif key == "prefixItems":
            ok = not isinstance(value, list) or all(_valid(s, v, root) for s, v in zip(arg, value))
        elif key == "items":
            skip = len(schema.get("prefixItems", []))
            ok = not isinstance(value, list) or all(_valid(arg, v, root) for v in value[skip:])
        elif key == "required":
            ok = not isinstance(value, dict) or all(k in value for k in arg)
        elif key == "properties":
            ok = not isinstance(value, dict) or all(_valid(arg[k], v, root) for k, v in value.items() if k in arg)
        elif key == "patternProperties":
            ok = not isinstance(value, dict) or all(
                _valid(s, v, root) for k, v in value.items() for p, s in arg.items() if re.search(p, k))
        elif key == "propertyNames":
            ok = not isinstance(value, dict) or all(_valid(arg, k, root) for k in value)
        elif key == "additionalProperties":
            if not isinstance(value, dict):
                ok = True
            else:
                known = set(schema.get("properties", {}))
                extra = [k for k in value if k not in known
                         and not any(re.search(p, k) for p in schema.get("patternProperties", {}))]
                ok = not extra if arg is False else all(_valid(arg, value[k], root) for k in extra)
        else:
            raise AssertionError(f"schema keyword {key!r} is not understood by this test's checker")
        if not ok:
            return False
    return True


def schema_accepts(data) -> bool:
    root = _schema()
    return _valid(root, data, root)


MINIMAL = spec([{"name": "a", "stride": 1, "channels": 3, "from": ["image"], "output": True}])


def test_the_schema_checker_can_say_no():
    assert schema_accepts(MINIMAL)
    assert not schema_accepts(spec([{"name": "a", "stride": 1, "chanels": 3, "from": ["image"]}]))
    assert not schema_accepts(spec([{"name": "a", "stride": 0, "channels": 3}]))
    assert not schema_accepts(spec([{"name": "2a", "stride": 1, "channels": 3}]))
    assert not schema_accepts({"name": "t", "nodes": []})
    assert not schema_accepts(spec([], [{"from": "a", "to": "b", "op": "upsampel"}]))
    assert not schema_accepts(spec([{"name": "a", "stride": 1, "channels": 3,
                                     "body": [{"block": "conv", "channels": 3, "strid": 2}]}]))


@pytest.mark.parametrize("head", ["classification", "pose", "segmentation"])
def test_schema_accepts_expanded_hrnet(head):
    assert schema_accepts(plain(HRNET, width=18, head=head).to_data())


def test_schema_accepts_expressions_where_the_loader_does():
    assert schema_accepts(spec([{"name": "a", "stride": "1", "channels": "2*width", "from": ["image"],
                                 "body": [{"block": "conv", "channels": "2*width", "repeat": "depth"}],
                                 "when": "deep", "output": True},
                                {"use": "multires_stage", "name": "s", "from": ["a"], "widths": "[w, 2*w]",
                                 "block": "'basic'", "upsample": "mode"}],
                               [{"from": "a", "to": "b", "op": "upsample", "project": "not deep"}],
                               params={"width": 8, "deep": {"default": True, "choices": [True, False]}}))


def test_schema_accepts_a_single_name_in_from():
    data = spec([{"name": "a", "stride": 1, "channels": 3, "from": "image", "output": True}])
    archgraph.load(data)
    assert schema_accepts(data)


def test_schema_accepts_an_expression_for_input_size():
    data = spec([{"name": "a", "stride": 1, "channels": 3, "from": ["image"], "output": True}],
                params={"s": 32}, input={"size": "[s, s]"})
    archgraph.load(data)
    assert schema_accepts(data)


def test_schema_accepts_an_edge_without_op():
    data = spec([{"name": "a", "stride": 1, "channels": 3, "from": ["image"]},
                 {"name": "b", "stride": 1, "channels": 3, "output": True}], [{"from": "a", "to": "b"}])
    archgraph.load(data)
    assert schema_accepts(data)


def test_schema_validates_with_jsonschema_if_installed():
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed in this environment")
    document = _schema()
    for head in ("classification", "pose", "segmentation"):
        jsonschema.validate(plain(HRNET, width=18, head=head).to_data(), document)


def _members(union: dict, root: dict) -> list[dict]:
    return [_resolve(member, root) for member in union["oneOf"]]


def _tags(members: list[dict], key: str) -> set[str]:
    return {m["properties"][key]["const"] for m in members if key in m.get("properties", {})}


def test_schema_unions_cover_every_registered_op_block_and_pattern():
    root = _schema()
    defs = root["$defs"]
    assert set(root["required"]) == {"archgraph", "name", "nodes"}
    assert root["additionalProperties"] is False
    edges = _members(root["properties"]["edges"]["items"], root)
    assert _tags(edges, "op") == set(edge_ops()) and len(edges) == len(edge_ops())
    items = _members(root["properties"]["nodes"]["items"], root)
    assert _tags(items, "use") == set(patterns()) and len(items) == len(patterns()) + 1
    node = defs["Node"]
    assert node in items and "use" not in node["properties"]
    body = _members(node["properties"]["body"]["items"], root)
    assert _tags(body, "block") == set(blocks()) and len(body) == len(blocks())
    for member in [node, *edges, *body, *items, defs["InputSpec"], defs["ParamDecl"]]:
        assert member["additionalProperties"] is False, member["title"]
    assert set(node["required"]) == {"name", "stride", "channels"}
    assert set(node["properties"]) == {"name", "stride", "channels", "from", "merge", "act", "output", "when",
                                       "doc", "body"}
    # numeric fields take an integer from 1 to 65536 or an expression
    assert {"minimum": 1, "maximum": 65536, "type": "integer"} in node["properties"]["channels"]["anyOf"]
    assert any(s.get("type") == "string" for s in node["properties"]["channels"]["anyOf"])
    # every edge op has its endpoints
    assert all({"from", "to"} <= set(m["required"]) for m in edges)


def test_schema_command_matches_the_model(tmp_path):
    from typer.testing import CliRunner

    from archgraph.cli import app

    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$defs"] == _schema()["$defs"]
