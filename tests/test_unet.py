"""specs/unet.yaml: U-Net (Ronneberger et al., MICCAI 2015) with padded convs, and the ops it brings.

Oracles: a U-Net written here by hand from the paper (``UNet`` below: the usual PyTorch layout of
double convs, max-pool + double conv going down, transposed conv + concat + double conv coming
up), independent of archgraph; its parameter counts and its outputs for the same weights. PyTorch
itself for the shape rules of the new ``maxpool`` block and ``upconv`` edge; fvcore and
FlopCounterMode for their cost rules; the executor for the generated source.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import archgraph
from archgraph.analysis import convention, profile
from archgraph.analysis.measure import flop_counter_counts, fvcore_counts, live_peak
from archgraph.backends.source.export import randomize
from archgraph.ir import infer
from tests.test_source_backend import assert_equivalent

SPEC = "specs/unet.yaml"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")



# --- an independent U-Net -----------------------------------------------------------------------


class DoubleConv(nn.Sequential):
    """(3x3 conv, padding 1 => [BN] => ReLU) x 2; the paper's convs have a bias and no BN."""

    def __init__(self, c_in: int, c_out: int, bn: bool):
        layers: list[nn.Module] = []
        for a, b in ((c_in, c_out), (c_out, c_out)):
            layers.append(nn.Conv2d(a, b, 3, padding=1, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm2d(b))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Down(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, bn: bool):
        super().__init__(nn.MaxPool2d(2), DoubleConv(c_in, c_out, bn))


class Up(nn.Module):
    """2x2 up-convolution halving the channels, concat with the skip (skip first), double conv."""

    def __init__(self, c_in: int, c_out: int, bn: bool):
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_in // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(c_in, c_out, bn)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    def __init__(self, in_channels: int = 1, classes: int = 2, width: int = 64, bn: bool = False):
        super().__init__()
        w = width
        self.inc = DoubleConv(in_channels, w, bn)
        self.down1, self.down2 = Down(w, 2 * w, bn), Down(2 * w, 4 * w, bn)
        self.down3, self.down4 = Down(4 * w, 8 * w, bn), Down(8 * w, 16 * w, bn)
        self.up1, self.up2 = Up(16 * w, 8 * w, bn), Up(8 * w, 4 * w, bn)
        self.up3, self.up4 = Up(4 * w, 2 * w, bn), Up(2 * w, w, bn)
        self.outc = nn.Conv2d(w, classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        x = self.up1(x5, x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        x = self.up4(x, x1)
        return self.outc(x)


def to_archgraph(key: str, bn: bool) -> str:
    """This file's UNet keys -> archgraph's (specs/unet.yaml): conv k of a double conv is block k."""
    per_conv = 3 if bn else 2  # conv, [BN], ReLU in the Sequential
    m = re.match(r"^(inc|down(\d)\.1|up(\d)\.conv)\.(\d+)\.(.*)", key)
    if m:
        node = "e1" if m[1] == "inc" else f"e{int(m[2]) + 1}" if m[2] else f"d{5 - int(m[3])}"
        first = 1 if m[2] else 0  # the max-pool is block 0 of e2..e5
        k, part = divmod(int(m[4]), per_conv)
        return f"nodes.{node}.{first + k}.{part}.{m[5]}"
    m = re.match(r"^up(\d)\.up\.(.*)", key)
    if m:
        level = 5 - int(m[1])  # up1 makes u4 from e5, ..., up4 makes u1 from d2
        src = "e5" if level == 4 else f"d{level + 1}"
        return f"edges.u{level}.{src}.{m[2]}"
    m = re.match(r"^outc\.(.*)", key)
    if m:
        return f"nodes.logits.0.0.{m[1]}"
    raise KeyError(key)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- the network --------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "expected"), [
    ({}, 31_030_658),  # the paper's: 1 input channel, 2 classes, no BN
    ({"bn": True}, 31_036_546),
    ({"bn": True, "in_channels": 3}, 31_037_698),
    ({"width": 32, "classes": 5, "in_channels": 3}, None),
])
def test_parameter_counts_equal_the_hand_written_unet(params, expected):
    kwargs = {"in_channels": 1, "classes": 2, "width": 64, "bn": False, **params}
    with torch.device("meta"):
        ours, theirs = archgraph.build(SPEC, **params), UNet(**kwargs)
    assert count(ours) == count(theirs)
    if expected is not None:
        assert count(ours) == expected


@pytest.mark.parametrize("bn", [False, True])
def test_same_outputs_as_the_hand_written_unet_for_the_same_weights(bn):
    torch.manual_seed(0)
    theirs = UNet(in_channels=3, classes=3, width=8, bn=bn)
    randomize(theirs, seed=1)
    theirs.eval()
    ours = archgraph.build(SPEC, width=8, classes=3, in_channels=3, bn=bn).eval()
    ours.load_state_dict({to_archgraph(k, bn): v for k, v in theirs.state_dict().items()}, strict=True)
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        got, expected = ours(x), theirs(x)
    assert got.shape == expected.shape == (2, 3, 48, 64)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_the_skip_connections_are_concatenated_skip_first():
    graph = archgraph.load(SPEC, width=8)
    shapes = infer(graph, (32, 32))
    for level in (1, 2, 3, 4):
        node = graph.nodes[f"d{level}"]
        assert node.merge == "concat"
        assert [e.src for e in graph.in_edges(node.name)] == [f"e{level}", f"u{level}"]
        assert graph.types[node.name].merge_channels == 2 * 8 * 2 ** (level - 1)
        assert shapes[f"u{level}"].dims == shapes[f"e{level}"].dims
    assert shapes["e5"].dims == (128, 2, 2) and shapes["logits"].dims == (2, 32, 32)


def test_sizes_must_be_divisible_by_16():
    graph = archgraph.load(SPEC, width=8)
    with pytest.raises(archgraph.SpecError, match=r"inputs to 'd4' disagree in size.*divisible by 16"):
        infer(graph, (40, 40))


def test_cost_model_equals_fvcore_and_flop_counter():
    graph = archgraph.load(SPEC, width=8, bn=True)
    for size, batch in (((32, 32), 1), ((48, 64), 2)):
        static = profile(graph, size, batch).total
        measured = fvcore_counts(graph, size, batch)
        assert convention("fvcore").count(static) == measured["total"]
        assert static.work["conv_mac"] == measured["by_operator"]["conv"]  # transposed convs included
        assert 2 * convention("macs").count(static) == flop_counter_counts(graph, size, batch)["total"]


def test_fvcore_equality():
    """The paper's configuration (no BN) at full width, 64x64."""
    graph = archgraph.load(SPEC)
    static = profile(graph, (64, 64)).total
    assert convention("fvcore").count(static) == fvcore_counts(graph, (64, 64))["total"]
    assert static.params == 31_030_658


def test_peak_live_activations_equal_a_tensor_by_tensor_measurement():
    graph = archgraph.load(SPEC, width=8)
    module = archgraph.build(graph).eval()
    assert profile(graph, (32, 48), batch=2).peak_bytes == live_peak(module, torch.randn(2, 1, 32, 48))


@pytest.mark.parametrize("bn", [False, True])
def test_generated_source_matches_the_executor(bn):
    assert_equivalent(archgraph.load(SPEC, width=8, bn=bn), size=(32, 48))


# --- the new ops on their own -------------------------------------------------------------------


def _one_node(body=None, edges=(), extra_nodes=()):
    nodes = [{"name": "a", "stride": 2, "channels": 4, "from": "image",
              "body": [{"block": "conv", "channels": 4, "stride": 2}]}, *extra_nodes]
    if body is not None:
        nodes.append({"name": "out", "stride": body.pop("node_stride"), "channels": 4, "from": "a",
                      "body": [body], "output": True})
    return {"archgraph": 1, "name": "T", "input": {"channels": 3, "size": [32, 32]}, "nodes": nodes,
            "edges": list(edges)}


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(3, 2, 1), (2, None, 0), (3, 1, 1), (5, 1, 2), (3, 3, 0)])
@pytest.mark.parametrize("size", [(17, 23), (32, 32), (9, 10)])
def test_maxpool_shape_rule_is_pytorch_s(kernel, stride, padding, size):
    step = kernel if stride is None else stride
    body = {"block": "maxpool", "kernel": kernel, "padding": padding, "node_stride": 2 * step,
            **({"stride": stride} if stride else {})}
    graph = archgraph.load(_one_node(body))
    model = archgraph.build(graph).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, *size))
    assert tuple(y.shape[1:]) == infer(graph, size)["out"].dims
    static = profile(graph, size).total
    comparisons = 4 * y.shape[2] * y.shape[3] * (kernel * kernel - 1)
    assert static.work["max_pool"] == comparisons
    assert convention("fvcore").count(static) == fvcore_counts(graph, size)["total"]


def test_maxpool_padding_is_at_most_half_the_kernel():
    body = {"block": "maxpool", "kernel": 2, "padding": 2, "node_stride": 4}
    with pytest.raises(archgraph.SpecError, match=r"padding \(2\) must be at most half the kernel \(2\)"):
        archgraph.load(_one_node(body))


def test_upconv_goes_from_coarse_to_fine_by_a_power_of_two():
    spec = _one_node(extra_nodes=[{"name": "fine", "stride": 1, "channels": 6, "output": True},
                                  {"name": "coarse", "stride": 8, "channels": 6, "output": True}],
                     edges=[{"from": "a", "to": "fine", "op": "upconv", "bias": False},
                            {"from": "a", "to": "coarse", "op": "upconv"}])
    with pytest.raises(archgraph.SpecError, match=r"upconv must go from a coarser to a finer stride.*from stride "
                                                  r"2 to 8 \(from fine to coarse\)"):
        archgraph.load(spec)
    spec["nodes"].pop()
    spec["edges"].pop()
    graph = archgraph.load(spec)
    model = archgraph.build(graph)
    assert [k for k in model.state_dict() if k.startswith("edges")] == ["edges.fine.a.weight"]
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 30, 18)).shape == (1, 6, 30, 18)
    static = profile(graph, (30, 18)).total
    assert static.work["conv_mac"] - 4 * 3 * 3 * 3 * 15 * 9 == 4 * 6 * 2 * 2 * 15 * 9
    assert convention("fvcore").count(static) == fvcore_counts(graph, (30, 18))["total"]
