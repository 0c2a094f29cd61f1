"""``upsample`` with ``size: input``: resized to the network input's H x W, whatever it is.

Oracles: a real forward of the built module (every node's shape, as tests/test_shapes.py checks
inference), F.interpolate to the input's size written out by hand, and the cost model's usual
ones: fvcore's FlopCountAnalysis and FlopCounterMode exactly, and the live activations measured
tensor by tensor. The generated source, its TorchScript and its exports are in
tests/test_source_backend.py; SFNet, whose logits resize so, in tests/test_sfnet.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import archgraph
from archgraph.analysis import convention, profile
from archgraph.analysis.measure import flop_counter_counts, fvcore_counts, live_peak
from archgraph.errors import SpecError
from archgraph.ir import infer
from tests.test_shapes import _check

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# ``full``: a sum at stride 1 of s4 resized to the input's size and s8 resized to that size in turn
# (``size: target`` adopts it); ``joined``: a concat at arrival stride 1, its body striding it to 2, whose
# inputs are s4 resized to the input's size and s8 adopting that size. The input's tensor goes after s2.
RESIZE_TO_INPUT = {
    "archgraph": 1, "name": "ResizeToInput",
    "input": {"name": "image", "channels": 3, "size": [70, 50]},
    "nodes": [
        {"name": "s2", "stride": 2, "channels": 8, "from": "image",
         "body": [{"block": "conv", "channels": 8, "stride": 2}]},
        {"name": "s4", "stride": 4, "channels": 8, "from": "s2",
         "body": [{"block": "basic", "channels": 8, "stride": 2}]},
        {"name": "s8", "stride": 8, "channels": 16, "from": "s4",
         "body": [{"block": "conv", "channels": 16, "stride": 2}]},
        {"name": "full", "stride": 1, "channels": 8, "act": "relu", "output": True},
        {"name": "joined", "stride": 2, "channels": 8, "merge": "concat", "output": True,
         "body": [{"block": "conv", "channels": 8, "stride": 2}]},
    ],
    "edges": [
        {"from": "s4", "to": "full", "op": "upsample", "size": "input", "mode": "bilinear", "align_corners": True},
        {"from": "s8", "to": "full", "op": "upsample", "size": "target", "mode": "bilinear"},
        {"from": "s8", "to": "joined", "op": "upsample", "project": False, "size": "target"},
        {"from": "s4", "to": "joined", "op": "upsample", "project": False, "size": "input"},
    ],
}
SIZES = [(70, 50), (64, 64), (33, 17), (17, 90)]


@pytest.mark.parametrize("size", SIZES)
def test_inference_and_torch_agree_at_any_size(size):
    graph = archgraph.load(RESIZE_TO_INPUT)
    shapes = _check(graph, archgraph.build(graph).eval(), size)
    h, w = size
    assert shapes["full"].dims == (8, h, w)
    assert shapes.edges[("s8", "full")].dims == (8, h, w)  # adopted from the edge that resizes to the input
    assert shapes.edges[("s4", "joined")].dims == (8, h, w) and shapes.edges[("s8", "joined")].dims == (16, h, w)
    assert shapes["joined"].dims == (8, (h + 1) // 2, (w + 1) // 2)


def test_a_factor_into_the_same_node_must_agree_with_the_input():
    spec = copy.deepcopy(RESIZE_TO_INPUT)
    spec["edges"][0]["size"], spec["edges"][1]["size"] = "scale", "input"  # s4 by 4: 18x13 -> 72x52 at 70x50
    graph = archgraph.load(spec)
    assert infer(graph, (64, 64))["full"].dims == (8, 64, 64)
    with pytest.raises(SpecError, match=r"inputs to 'full' disagree in size for a 70x50 input: 's4' gives 72x52, "
                                        r"'s8' gives 70x50"):
        infer(graph, (70, 50))


def projected(resize: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """An edge's projection alone (the conv and BN in front of its resize)."""
    for layer in resize:
        x = layer(x)
    return x


def test_the_output_is_the_interpolation_to_the_inputs_size():
    graph = archgraph.load(RESIZE_TO_INPUT)
    module = archgraph.build(graph).eval()
    x = torch.randn(2, 3, 33, 17)
    with torch.no_grad():
        every = module.forward_all(x)
        out = module(x)  # drops the input's tensor from its schedule after s2: the size was read first
        s4, s8 = every["s4"], every["s8"]
        edges = module.edges
        expected = torch.relu(
            F.interpolate(projected(edges.full.s4, s4), size=(33, 17), mode="bilinear", align_corners=True)
            + F.interpolate(projected(edges.full.s8, s8), size=(33, 17), mode="bilinear"))
        merged = torch.cat([F.interpolate(s8, size=(33, 17)), F.interpolate(s4, size=(33, 17))], 1)
    assert torch.equal(out["full"], every["full"]) and torch.equal(out["joined"], every["joined"])
    torch.testing.assert_close(out["full"], expected, rtol=0, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(out["joined"], module.nodes.joined(merged), rtol=0, atol=1e-6)


def test_only_into_stride_1():
    spec = copy.deepcopy(RESIZE_TO_INPUT)
    spec["nodes"][3]["stride"] = 2
    with pytest.raises(SpecError) as info:
        archgraph.load(spec)
    assert str(info.value).endswith(
        "error: edge s4 -> full (upsample): size: input resizes to the network input's HxW, at stride 1, but the "
        "edge arrives at stride 2 (hint: only a node that merges at stride 1 can take the input's size; to "
        "arrive at stride 2, use size: scale or size: target)")


@pytest.mark.parametrize("size", [(70, 50), (33, 17)])
def test_static_cost_equals_fvcore_flop_counter_and_live_tensors(size):
    graph = archgraph.load(RESIZE_TO_INPUT)
    prof = profile(graph, size, batch=2)
    static = prof.total
    assert convention("fvcore").count(static) == fvcore_counts(graph, size, batch=2)["total"]
    assert 2 * convention("macs").count(static) == flop_counter_counts(graph, size, batch=2)["total"]
    h, w = size
    edge = next(e for e in prof.edges if (e.src, e.dst) == ("s4", "full"))
    assert edge.shape == (8, h, w)
    assert edge.cost.work["upsample_bilinear"] == 2 * 8 * h * w  # two samples, 8 channels at the input's size
    module = archgraph.build(graph).eval()
    assert prof.peak_bytes == live_peak(module, torch.randn(2, 3, *size))
