"""specs/resnet.yaml and specs/fpn.yaml: torchvision's ResNet and FPN, and FroyoZzz's FPN code.

Oracles: torchvision's published parameter counts; ports of torchvision's ResNet and
FeaturePyramidNetwork and of FroyoZzz's FPN code (tests/reference/resnet_fpn.py), whose weights
are loaded into the archgraph module with strict=True and must give the same outputs; fvcore and
FlopCounterMode for the static cost model (the new ``maxpool`` block included); the executor
for the generated source.

Budget: full-size networks are built on the meta device to count parameters; forwards run at
64x64 (and one odd size) with batch 2; fvcore traces ResNet-18/50 and FPN-50 at 64x64 once each.
"""

from __future__ import annotations

import re

import pytest
import torch

import archgraph
from archgraph.analysis import convention, profile
from archgraph.analysis.measure import flop_counter_counts, fvcore_counts, live_peak
from archgraph.backends.source.export import randomize
from archgraph.ir import infer
from tests.reference import resnet_fpn as ref
from tests.test_source_backend import assert_equivalent

RESNET = "specs/resnet.yaml"
FPN = "specs/fpn.yaml"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# torchvision.models.resnetNN(): parameters with the 1000-class fc (torchvision's model docs)
TORCHVISION = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
EXPANSION = {18: 1, 34: 1, 50: 4, 101: 4, 152: 4}



def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def fc(depth: int, classes: int = 1000) -> int:
    return 512 * EXPANSION[depth] * classes + classes


# --- torchvision's keys -> archgraph's ----------------------------------------------------------

_RESNET_RULES = [
    (r"^conv1\.(.*)", r"nodes.resnet_stem.0.0.\1"),
    (r"^bn1\.(.*)", r"nodes.resnet_stem.0.1.\1"),
    (r"^layer(\d)\.(.*)", lambda m: f"nodes.resnet_c{int(m[1]) + 1}.{m[2]}"),
    (r"^fc\.(.*)", r"nodes.classifier.1.\1"),
]
_FPN_RULES = [  # torchvision's BackboneWithFPN: body = the ResNet's layers, fpn = FeaturePyramidNetwork
    (r"^fpn\.inner_blocks\.(\d)\.(.*)", lambda m: f"edges.m{int(m[1]) + 2}.resnet_c{int(m[1]) + 2}.0.{m[2]}"),
    (r"^fpn\.layer_blocks\.(\d)\.(.*)", lambda m: f"nodes.p{int(m[1]) + 2}.0.0.{m[2]}"),
]
_FROYO_RULES = [  # FroyoZzz's FPN: toplayer (C5) and laterallayer1..3 (C4..C2), finalconv1..3 (P4..P2)
    (r"^toplayer\.(.*)", r"edges.m5.resnet_c5.0.\1"),
    (r"^laterallayer(\d)\.(.*)", lambda m: f"edges.m{5 - int(m[1])}.resnet_c{5 - int(m[1])}.0.{m[2]}"),
    (r"^finalconv(\d)\.(.*)", lambda m: f"nodes.p{5 - int(m[1])}.0.0.{m[2]}"),
]


def to_archgraph(key: str, rules=()) -> str:
    """torchvision's (or FroyoZzz's) state-dict key -> archgraph's, for specs/resnet.yaml and specs/fpn.yaml."""
    key = re.sub(r"^body\.", "", key)
    for pattern, replacement in [*rules, *_RESNET_RULES]:
        new, n = re.subn(pattern, replacement, key)
        if n:
            return new
    raise KeyError(f"no rule for {key!r}")


def moved(theirs: torch.nn.Module, rules=()) -> dict[str, torch.Tensor]:
    return {to_archgraph(k, rules): v for k, v in theirs.state_dict().items()}


def pair(theirs: torch.nn.Module, spec: str, rules=(), **params) -> torch.nn.Module:
    """The archgraph module of ``spec`` with ``theirs``'s random weights (strict load), both in eval."""
    randomize(theirs, seed=1)
    theirs.eval()
    with torch.device("meta"):
        ours = archgraph.build(spec, **params)
    ours = ours.to_empty(device="cpu").eval()
    ours.load_state_dict(moved(theirs, rules), strict=True)
    return ours


def same(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


# --- ResNet -------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", list(TORCHVISION))
def test_resnet_parameter_counts_are_torchvision_s(depth):
    with torch.device("meta"):
        classifier = archgraph.build(RESNET, depth=depth)
        backbone = archgraph.build(RESNET, depth=depth, head="features")
        port = ref.resnet(depth)
    assert count(port) == count(classifier) == TORCHVISION[depth]
    assert count(backbone) == TORCHVISION[depth] - fc(depth)


def test_resnet_backbone_counts_as_the_brief_states_them():
    with torch.device("meta"):
        counts = {d: count(archgraph.build(RESNET, depth=d, head="features")) for d in (18, 50, 101)}
    assert counts == {18: 11_176_512, 50: 23_508_032, 101: 44_549_160 - 2_049_000}


def test_resnet_writes_c2_to_c5_at_strides_4_to_32():
    graph = archgraph.load(RESNET, depth=50, head="features")
    assert graph.outputs == ["resnet_c2", "resnet_c3", "resnet_c4", "resnet_c5"]
    shapes = infer(graph, (224, 224))
    assert [graph.nodes[n].stride for n in graph.outputs] == [4, 8, 16, 32]
    assert [shapes[n].dims for n in graph.outputs] == [(256, 56, 56), (512, 28, 28), (1024, 14, 14),
                                                       (2048, 7, 7)]
    assert shapes["resnet_stem"].dims == (64, 56, 56)  # 7x7/2 conv 224 -> 112, 3x3/2 max-pool -> 56
    # torchvision's rule: the stride is on the first block of layers 2-4, one block per unrolled copy
    body = graph.nodes["resnet_c4"].body
    assert len(body) == 6 and [b.stride for b in body] == [2, 1, 1, 1, 1, 1]
    assert [b.tag for b in graph.nodes["resnet_stem"].body] == ["conv", "maxpool"]


@pytest.mark.parametrize(("depth", "size"), [(18, (64, 64)), (50, (64, 64)), (34, (70, 50))])
def test_resnet_same_outputs_as_torchvision_for_the_same_weights(depth, size):
    torch.manual_seed(0)
    theirs = ref.resnet(depth)
    ours = pair(theirs, RESNET, depth=depth)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        same(ours(x), theirs(x))
        features = archgraph.build(RESNET, depth=depth, head="features").eval()
        features.load_state_dict({k: v for k, v in ours.state_dict().items() if "classifier" not in k})
        got = features(x)
        getter = ref.IntermediateLayerGetter(theirs, {f"layer{k}": f"resnet_c{k + 1}" for k in range(1, 5)})
        expected = getter(x)
    assert list(got) == list(expected)
    for name in got:
        same(got[name], expected[name])


def test_resnet_depth_must_be_a_torchvision_depth():
    spec = {"archgraph": 1, "name": "R", "nodes": [{"use": "resnet", "name": "r", "from": "image", "depth": 42,
                                                    "output": True}]}
    with pytest.raises(archgraph.SpecError, match="depth must be one of 18, 34, 50, 101, 152, got 42"):
        archgraph.load(spec)


# --- FPN ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [50, 101])
def test_fpn_parameter_counts_equal_the_references(depth):
    with torch.device("meta"):
        ours = archgraph.build(FPN, depth=depth)
        froyo = archgraph.build(FPN, depth=depth, bias=False, smooth_p5=False)
        tv, sd = ref.resnet_fpn(depth), ref.froyo_fpn(depth)
    laterals = (256 + 512 + 1024 + 2048) * 256
    smooth = 256 * 256 * 9
    backbone = TORCHVISION[depth] - fc(depth)
    assert count(ours) == count(tv) == backbone + laterals + 4 * 256 + 4 * (smooth + 256)
    assert count(froyo) == count(sd) == backbone + laterals + 3 * smooth
    assert (count(ours), count(froyo)) == {50: (26_852_416, 26_260_544), 101: (45_844_544, 45_252_672)}[depth]


def test_fpn_same_outputs_as_torchvision_for_the_same_weights():
    torch.manual_seed(0)
    theirs = ref.resnet_fpn(50)
    ours = pair(theirs, FPN, _FPN_RULES, depth=50)
    for size in ((64, 64), (70, 50)):  # 70x50: the top-down path resizes to C_i's size, not by 2
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            got, expected = ours(x), theirs(x)
        assert list(got) == ["p2", "p3", "p4", "p5"] and list(expected) == ["0", "1", "2", "3"]
        for name, tensor in zip(got, expected.values()):
            same(got[name], tensor)


def test_fpn_same_outputs_as_froyozzz_code_for_the_same_weights():
    torch.manual_seed(0)
    theirs = ref.froyo_fpn(50)
    ours = pair(theirs, FPN, _FROYO_RULES, depth=50, bias=False, smooth_p5=False)
    for size in ((64, 64), (70, 50)):
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            got, expected = ours(x), theirs(x)
        assert len(got) == len(expected) == 4
        for name, tensor in zip(["p2", "p3", "p4", "p5"], expected):
            same(got[name], tensor)


def test_fpn_every_node_has_the_shape_inference_predicts():
    graph = archgraph.load(FPN, depth=18, d=32)
    model = archgraph.build(graph).eval()
    size = (70, 50)
    shapes = infer(graph, size)
    with torch.no_grad():
        tensors = model.forward_all(torch.randn(1, 3, *size))
    assert set(tensors) == set(shapes.nodes)
    for name, tensor in tensors.items():
        assert tuple(tensor.shape) == (1, *shapes[name].dims), name


# --- the static cost model, the generated source ------------------------------------------------


@pytest.mark.parametrize(("spec", "params", "size"), [
    (RESNET, {"depth": 18}, (64, 64)),
    (RESNET, {"depth": 50, "head": "features"}, (70, 50)),
    (FPN, {"depth": 50}, (64, 64)),
    (FPN, {"depth": 18, "d": 32, "bias": False, "smooth_p5": False}, (70, 50)),
])
def test_fvcore_equality(spec, params, size):
    graph = archgraph.load(spec, **params)
    static = profile(graph, size).total
    measured = fvcore_counts(graph, size)
    assert convention("fvcore").count(static) == measured["total"]
    assert static.work["conv_mac"] == measured["by_operator"]["conv"]
    assert "aten::max_pool2d" in measured["unsupported"]  # fvcore skips the stem's max-pool: 0
    assert 2 * convention("macs").count(static) == flop_counter_counts(graph, size)["total"]


def test_max_pool_work_is_kernel_area_minus_one_comparisons_per_output():
    prof = profile(archgraph.load(RESNET, depth=18), (224, 224))
    stem = next(n for n in prof.nodes if n.name == "resnet_stem")
    assert stem.cost.work["max_pool"] == 64 * 56 * 56 * 8
    assert convention("flops").weight("max_pool") == 1 and convention("fvcore").weight("max_pool") == 0


@pytest.mark.parametrize(("spec", "params", "size"), [
    (RESNET, {"depth": 18}, (64, 64)),
    (FPN, {"depth": 18, "d": 32}, (70, 50)),
])
def test_peak_live_activations_equal_a_tensor_by_tensor_measurement(spec, params, size):
    graph = archgraph.load(spec, **params)
    module = archgraph.build(graph).eval()
    assert profile(graph, size, batch=2).peak_bytes == live_peak(module, torch.randn(2, 3, *size))


@pytest.mark.parametrize(("spec", "params", "size"), [
    (RESNET, {"depth": 18}, (64, 64)),
    (FPN, {"depth": 18, "d": 32}, (70, 50)),
    (FPN, {"depth": 50, "bias": False, "smooth_p5": False}, (64, 64)),
])
def test_generated_source_matches_the_executor(spec, params, size):
    assert_equivalent(archgraph.load(spec, **params), size=size)
