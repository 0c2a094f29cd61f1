"""Verification of graphs built from small dict specs: every problem at once, order, inferred types.

Oracles: the specs are small enough that every expected order, width and stride
below was worked out by hand from the rules in archgraph/ir/verify.py's docstring.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archgraph
from archgraph.errors import SpecError, SpecErrors
from archgraph.ir import NodeType

HRNET = str(Path(__file__).resolve().parent.parent / "specs" / "hrnet.yaml")


def spec(nodes, edges=()):
    return {"archgraph": 1, "name": "t", "nodes": list(nodes), "edges": list(edges)}


def node(name, stride, channels, **more):
    return {"name": name, "stride": stride, "channels": channels, **more}


def conv(channels, stride=1, **more):
    return {"block": "conv", "channels": channels, "stride": stride, **more}


def errors_of(data) -> list[SpecError]:
    with pytest.raises(SpecError) as info:
        archgraph.load(data)
    return list(info.value) if isinstance(info.value, SpecErrors) else [info.value]


# --- all problems in one run -----------------------------------------------------------------

STEM = node("stem", 2, 8, **{"from": "image", "body": [conv(8, 2)]})


def test_three_independent_faults_give_three_errors():
    data = spec([
        STEM,
        node("up", 4, 8),                                     # fault 1: upsample from fine to coarse
        node("wide", 2, 16, **{"from": "stem", "body": [conv(12)]}),  # fault 2: body gives 12, declares 16
        node("down", 8, 8),                                   # fault 3: 2 -> 8 takes 2 links, not 1
        node("out", 8, 8, output=True),
    ], [
        {"from": "stem", "to": "up", "op": "upsample"},
        {"from": "stem", "to": "down", "op": "downsample", "links": 1},
        {"from": "up", "to": "out", "op": "downsample"},
        {"from": "wide", "to": "out", "op": "downsample"},
        {"from": "down", "to": "out"},
    ])
    errors = errors_of(data)
    assert len(errors) == 3
    messages = sorted(e.message for e in errors)  # without positions (dict spec), ordered by message
    assert messages[0].startswith("edge stem -> down (downsample): stride 2 to 8 takes 2 stride-2 link(s), "
                                  "but links is 1")
    assert messages[1].startswith("edge stem -> up (upsample): upsample must go from a coarser to a finer stride")
    assert messages[2] == "node 'wide' declares 16 channels but its body gives 12"
    assert [e.loc.file for e in errors] == ["<data>"] * 3


def test_a_channel_mismatch_does_not_hide_an_independent_fault():
    data = spec([
        node("a", 1, 4, **{"from": "image", "body": [conv(4)]}),
        node("m", 1, 4, **{"from": ["a", "image"], "output": True}),  # 4 + 3 channels at a sum
        node("z", 1, 5, **{"from": "image", "body": [conv(6)], "output": True}),  # independent of m
    ])
    errors = errors_of(data)
    assert len(errors) == 2
    assert "channel mismatch at sum node 'm'" in errors[0].message
    assert "node 'z' declares 5 channels but its body gives 6" in errors[1].message


def test_structural_problems_are_reported_together():
    data = spec([
        node("a", 1, 3, **{"from": "image"}),
        node("a", 1, 3, **{"from": "image"}),
        node("b", 1, 3, output=True),
    ], [{"from": "a", "to": "bb"}, {"from": "aa", "to": "b"}, {"from": "b", "to": "b"}])
    messages = [e.message for e in errors_of(data)]
    assert len(messages) == 4
    assert "duplicate node name 'a'" in messages
    assert "edge a -> bb (identity): unknown node 'bb'" in messages
    assert "edge aa -> b (identity): unknown node 'aa'" in messages
    assert "edge b -> b (identity) is a self-loop" in messages


def test_errors_are_sorted_by_location(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "archgraph: 1\nname: t\nnodes:\n"
        "  - {name: a, stride: 1, channels: 3, from: image}\n"
        "  - {name: b, stride: 1, channels: 3, from: a, output: true}\n"
        "edges:\n"
        "  - {from: a, to: zz}\n"
        "  - {from: yy, to: b}\n"
    )
    with pytest.raises(SpecErrors) as info:
        archgraph.load(path)
    assert [(e.loc.line, e.loc.col) for e in info.value] == [(7, 19), (8, 12)]
    assert str(info.value).splitlines() == [
        f"{path}:7:19: error: edge a -> zz (identity): unknown node 'zz'",
        f"{path}:8:12: error: edge yy -> b (identity): unknown node 'yy'",
    ]


# --- order -----------------------------------------------------------------------------------


def test_order_is_topological_with_declaration_order_where_free():
    data = spec([
        node("x", 1, 3, **{"from": "image"}),
        node("late", 1, 3, **{"from": "y"}),  # declared before its input
        node("y", 1, 3, **{"from": "image"}),
        node("z", 1, 3, **{"from": "x"}),
        node("out", 1, 3, **{"from": ["late", "z"], "output": True}),
    ])
    graph = archgraph.load(data)
    # ready at first: x, y; x is declared first. Then y (index 2) before z (3); late (1) as soon as y is done.
    assert graph.order == ["x", "y", "late", "z", "out"]
    assert archgraph.load(data).order == graph.order
    # edges in declaration order: the sum order is the order written in from:
    assert [e.src for e in graph.in_edges("out")] == ["late", "z"]


@pytest.mark.parametrize("head", ["classification", "pose", "segmentation"])
def test_hrnet_order_is_its_declaration_order(head):
    graph = archgraph.load(HRNET, width=18, head=head)
    assert graph.order == list(graph.nodes)  # the spec and its patterns write every node after its inputs
    position = {name: i for i, name in enumerate(graph.order)}
    position[graph.input.name] = -1
    assert all(position[e.src] < position[e.dst] for e in graph.edges)


# --- types -----------------------------------------------------------------------------------


def test_types_of_sum_concat_and_projecting_edges():
    data = spec([
        STEM,                                                           # 3 -> conv s2 -> 8 at stride 2
        node("coarse", 4, 16, **{"from": "stem", "body": [conv(16, 2)]}),  # arrives at 2, leaves at 4
        # sum of identity (8) and a projecting upsample: the identity fixes the merged width at 8
        node("mixed", 2, 12, body=[conv(12)]),
        # sum of projecting edges only: they project to the node's declared width
        node("projected", 4, 6),
        # concat of identity (8) and non-projecting upsample (16)
        node("cat", 2, 24, merge="concat"),
        node("pooled", 4, 5, **{"from": "projected", "body": [{"block": "global_avg_pool"},
                                                              {"block": "linear", "features": 5}],
                                "output": True}),
        node("out", 2, 24, **{"from": "cat", "output": True}),
        node("out2", 2, 12, **{"from": "mixed", "output": True}),
    ], [
        {"from": "stem", "to": "mixed"},
        {"from": "coarse", "to": "mixed", "op": "upsample"},
        {"from": "stem", "to": "projected", "op": "downsample"},
        {"from": "coarse", "to": "projected", "op": "lateral"},
        {"from": "stem", "to": "cat"},
        {"from": "coarse", "to": "cat", "op": "upsample", "project": False, "mode": "bilinear", "size": "target"},
    ])
    graph = archgraph.load(data)
    t = graph.types
    assert t["image"] == NodeType(1, 3)
    assert t["stem"] == NodeType(1, 3)
    assert t["coarse"] == NodeType(2, 8)
    assert t["mixed"] == NodeType(2, 8)
    assert t["projected"] == NodeType(4, 6)
    assert t["cat"] == NodeType(2, 24)
    assert t["pooled"] == NodeType(4, 6, vector=True)
    assert t["out"] == NodeType(2, 24)
    channels = {(e.src, e.dst): graph.edge_channels(e) for e in graph.edges}
    assert channels[("coarse", "mixed")] == (16, 8)       # projects to the merged width, not the node's 12
    assert channels[("stem", "projected")] == (8, 6)
    assert channels[("coarse", "projected")] == (16, 6)
    assert channels[("coarse", "cat")] == (16, 16)        # keeps its width
    assert graph.body_channels("mixed") == [8]
    assert graph.body_channels("pooled") == [6, 6]


@pytest.mark.parametrize("width", [18, 32])
def test_hrnet_head_types(width):
    seg = archgraph.load(HRNET, width=width, head="segmentation")
    assert seg.types["segmentation"] == NodeType(4, width * (1 + 2 + 4 + 8))  # concat of the four branches
    cls = archgraph.load(HRNET, width=width, head="classification")
    assert cls.types["classifier"] == NodeType(32, 1024, vector=True)
    assert cls.types["classifier_y3"] == NodeType(32, 1024)
    # a fusion node sums projections to its own branch width
    assert cls.types["s4_m0_f1"] == NodeType(8, 2 * width)
    assert cls.types["s2_t1"] == NodeType(8, 2 * width)  # the new branch is made by a projecting downsample
