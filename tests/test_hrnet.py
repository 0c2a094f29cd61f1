"""specs/hrnet.yaml builds the official HRNet: exact parameter counts, same outputs for the same weights.

Oracles: the published (and exact, from the official code) figures, and an independent port of the
official code (tests/reference/hrnet_official.py) whose weights are loaded into the
archgraph module with strict=True.
"""

from __future__ import annotations

import pytest
import torch

import archgraph
from archgraph.backends.source.export import randomize
from archgraph.ir import infer
from archgraph.weights.hrnet import hrnet_official
from tests.reference import hrnet_official as official

SPEC = "specs/hrnet.yaml"
REFERENCE = {
    ("classification", 18): 21_299_004,
    # the small configs (cls_hrnet_w18_small_v1/v2; variant fixes C at 16 / 18): published 13.2M / 15.6M
    ("classification-small_v1", 18): 13_187_464,
    ("classification-small_v2", 18): 15_597_464,
    ("classification", 30): 37_712_220,
    ("classification", 32): 41_232_680,
    ("classification", 40): 57_557_160,
    ("classification", 44): 67_064_984,
    ("classification", 48): 77_469_864,
    ("classification", 64): 128_059_944,
    ("pose", 32): 28_536_113,
    ("pose", 48): 63_595_745,
}
# hrnet_cls's keywords for the small configs (STAGE1 blocks/planes, STAGE2-4 modules, blocks per branch)
SMALL = {
    "small_v1": dict(width=16, stage1_blocks=1, stage1_planes=32, modules=(1, 1, 1), blocks=2),
    "small_v2": dict(width=18, stage1_blocks=2, stage1_planes=64, modules=(1, 3, 2), blocks=2),
}
OFFICIAL = {"classification": official.hrnet_cls, "pose": official.hrnet_pose, "segmentation": official.hrnet_seg}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("head", "width"), list(REFERENCE))
def test_parameter_counts_match_the_published_figures(head, width):
    name, _, variant = head.partition("-")
    with torch.device("meta"):
        model = archgraph.build(SPEC, width=width, head=name, variant=variant or "standard")
    assert count(model) == REFERENCE[head, width]


@pytest.mark.parametrize("variant", list(SMALL))
def test_small_variants_match_the_official_code(variant):
    with torch.device("meta"):
        ours, theirs = archgraph.build(SPEC, variant=variant), official.hrnet_cls(**SMALL[variant])
    assert count(ours) == count(theirs) == REFERENCE[f"classification-{variant}", 18]


@pytest.mark.parametrize("width", [18, 48])
def test_segmentation_parameters_match_the_official_code(width):
    with torch.device("meta"):
        ours, theirs = archgraph.build(SPEC, width=width, head="segmentation"), official.hrnet_seg(width)
    assert count(ours) == count(theirs)


@pytest.mark.parametrize(("head", "size"), [("classification", (64, 64)), ("pose", (64, 96)),
                                            ("segmentation", (70, 50))])
def test_same_outputs_as_the_official_code_for_the_same_weights(head, size):
    torch.manual_seed(0)
    theirs = OFFICIAL[head](18).eval()
    randomize(theirs, seed=1)
    graph = archgraph.load(SPEC, width=18, head=head)
    ours = archgraph.build(graph).eval()
    mapped = {hrnet_official(k, graph): v for k, v in theirs.state_dict().items()}
    ours.load_state_dict(mapped, strict=True)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_small_v1_same_outputs_as_the_official_code_for_the_same_weights():
    torch.manual_seed(0)
    theirs = official.hrnet_cls(**SMALL["small_v1"]).eval()
    randomize(theirs, seed=2)
    graph = archgraph.load(SPEC, variant="small_v1")
    ours = archgraph.build(graph).eval()
    mapped = {hrnet_official(k, graph): v for k, v in theirs.state_dict().items()}
    ours.load_state_dict(mapped, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("head", ["classification", "pose", "segmentation"])
def test_every_node_has_the_shape_inference_predicts(head):
    graph = archgraph.load(SPEC, width=18, head=head)
    model = archgraph.build(graph).eval()
    size = (96, 64)
    shapes = infer(graph, size)
    with torch.no_grad():
        tensors = model.forward_all(torch.randn(1, 3, *size))
    assert set(tensors) == set(shapes.nodes)
    for name, tensor in tensors.items():
        assert tuple(tensor.shape) == (1, *shapes[name].dims), name
