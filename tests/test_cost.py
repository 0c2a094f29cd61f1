"""The static cost model (archgraph.analysis.cost) against its oracles.

* fvcore's FlopCountAnalysis on the built module: exactly equal, per head, at several input
  sizes (odd ones included where the network accepts them);
* torch.utils.flop_counter.FlopCounterMode on the meta device: exactly 2 x the ``macs`` count;
* the published fvcore totals, exactly, and the HRNet READMEs' GFLOPs, to their published precision;
* the built module's parameter count; live activations tracked tensor by tensor, and as the allocator
  saw them (torch.profiler), with oneDNN's convolutions and the native ones.

Budget: fvcore traces on CPU (it cannot run on the meta device), so only one full-size
fvcore run (W18 classification at 224x224); the rest at width 8 or 18 and small inputs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import archgraph
from archgraph.analysis import CONVENTIONS, Cost, convention, profile
from archgraph.analysis.cost import parameters
from archgraph.analysis.measure import allocator_peak, flop_counter_counts, fvcore_counts, live_peak
from archgraph.backends.source import generate
from archgraph.backends.source.export import module_class
from archgraph.ops.base import WORK_TERMS

SPEC = "specs/hrnet.yaml"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# A small network that uses every op and every merge: conv/basic/bottleneck blocks (dilated too),
# pooling and a linear layer, identity/downsample/upsample (nearest by scale, bilinear to the target's size,
# with and without projection)/lateral/conv edges, sum, concat, ReLU on a lone identity input.
TINY = {
    "archgraph": 1, "name": "Tiny", "params": {"width": 8},
    "input": {"name": "image", "channels": 3, "size": [32, 32]},
    "nodes": [
        {"name": "stem", "stride": 2, "channels": "width", "from": "image",
         "body": [{"block": "conv", "channels": "width", "stride": 2}]},
        {"name": "c2", "stride": 4, "channels": "2*width", "from": "stem",
         "body": [{"block": "basic", "channels": "2*width", "stride": 2, "dilation": 2},
                  {"block": "bottleneck", "channels": "2*width", "dilation": 3},
                  {"block": "conv", "channels": "2*width", "dilation": 2}]},
        {"name": "c3", "stride": 8, "channels": "4*width"},
        {"name": "r", "stride": 4, "channels": "2*width", "from": "c2", "act": "relu"},
        {"name": "p2", "stride": 2, "channels": "width", "from": "stem", "act": "relu"},
        {"name": "l", "stride": 2, "channels": "width"},
        {"name": "cat", "stride": 2, "channels": "5*width", "merge": "concat", "output": True,
         "body": [{"block": "conv", "channels": "5*width", "kernel": 1, "bias": True, "bn": False,
                   "act": "none"}]},
        {"name": "cls", "stride": 8, "channels": 10, "from": "c3", "output": True,
         "body": [{"block": "global_avg_pool"}, {"block": "linear", "features": 10}]},
    ],
    "edges": [
        {"from": "c2", "to": "c3", "op": "downsample", "act_last": True},
        {"from": "c2", "to": "p2", "op": "upsample"},
        {"from": "c3", "to": "p2", "op": "upsample", "mode": "bilinear", "size": "target"},
        {"from": "stem", "to": "l", "op": "lateral"},
        {"from": "p2", "to": "l", "op": "conv"},
        {"from": "r", "to": "cat", "op": "upsample", "project": False, "mode": "bilinear", "size": "target",
         "align_corners": True},
        {"from": "p2", "to": "cat", "op": "identity"},
        {"from": "l", "to": "cat", "op": "identity"},
        {"from": "c3", "to": "cat", "op": "upsample", "project": False},
    ],
}



def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- fvcore, exactly ------------------------------------------------------------------------------

# the published fvcore totals of HRNet-W18/W32/W48-C at 1x3x224x224 (independent figures, not derived here)
PUBLISHED_FVCORE = {18: 4_317_590_308, 32: 8_967_661_888, 48: 17_338_782_688}

FVCORE_CASES = [
    # (head, width, (H, W), batch)
    ("classification", 18, (224, 224), 1),  # the one full-size run
    ("classification", 8, (64, 96), 2),
    ("classification", 8, (256, 192), 1),
    ("pose", 18, (256, 192), 1),
    ("pose", 8, (96, 64), 1),
    ("segmentation", 18, (96, 160), 1),
    ("segmentation", 8, (224, 224), 1),
    ("segmentation", 8, (70, 50), 1),  # odd sizes: bilinear resizing to the target's size
    ("segmentation", 8, (37, 61), 2),
]


@pytest.mark.parametrize(("head", "width", "size", "batch"), FVCORE_CASES)
def test_static_fvcore_count_equals_fvcore_exactly(head, width, size, batch):
    graph = archgraph.load(SPEC, width=width, head=head)
    measured = fvcore_counts(graph, size, batch)
    static = profile(graph, size, batch).total
    assert convention("fvcore").count(static) == measured["total"]
    fv = convention("fvcore")
    assert fv.weight("conv_mac") * static.work["conv_mac"] == measured["by_operator"]["conv"]
    assert 2 * static.work["bn"] == measured["by_operator"]["batch_norm"]
    # the classification head pools with aten::adaptive_avg_pool2d, which fvcore counts (1 per input element)
    assert static.work.get("global_pool", 0) == measured["by_operator"].get("adaptive_avg_pool2d", 0)
    assert ("global_pool" in static.work) == (head == "classification")
    if head == "classification" and size == (224, 224) and batch == 1 and width in PUBLISHED_FVCORE:
        assert measured["total"] == PUBLISHED_FVCORE[width]  # fvcore on archgraph's own module


def test_static_fvcore_count_in_training_mode_counts_batchnorm_as_fvcore_does():
    graph = archgraph.load(SPEC, width=8, head="pose")
    measured = fvcore_counts(graph, (64, 64), training=True)
    static = profile(graph, (64, 64)).total
    assert convention("fvcore").count(static, training=True) == measured["total"]
    assert convention("fvcore").count(static, training=True) > convention("fvcore").count(static)


def test_tiny_network_with_every_op_matches_fvcore_and_flop_counter():
    graph = archgraph.load(TINY)
    for size, batch in (((32, 32), 1), ((64, 48), 3)):
        static = profile(graph, size, batch).total
        assert convention("fvcore").count(static) == fvcore_counts(graph, size, batch)["total"]
        assert 2 * convention("macs").count(static) == flop_counter_counts(graph, size, batch)["total"]


# --- torch's FlopCounterMode (meta device), exactly -----------------------------------------------


@pytest.mark.parametrize(("head", "size"), [("classification", (224, 224)), ("pose", (256, 192)),
                                            ("segmentation", (70, 50))])
def test_macs_are_half_of_flop_counter_mode(head, size):
    graph = archgraph.load(SPEC, width=18, head=head)
    measured = flop_counter_counts(graph, size)
    static = profile(graph, size).total
    assert 2 * convention("macs").count(static) == measured["total"]
    assert 2 * static.work["conv_mac"] == measured["by_operator"]["aten.convolution"]


# --- the published figures ------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "total"), sorted(PUBLISHED_FVCORE.items()))
def test_published_fvcore_totals_exactly(width, total):
    # fvcore on the built module equals the static count (above; measured at W18), so this is what
    # fvcore reports for archgraph's own module, global pool (2048 x 7 x 7 input elements) included
    cost = profile(archgraph.load(SPEC, width=width), (224, 224)).total
    assert convention("fvcore").count(cost) == total
    assert cost.work["global_pool"] == 2048 * 7 * 7


@pytest.mark.parametrize(("width", "conv"), [(32, 8_919_085_056), (48, 17_275_948_032)])
def test_published_conv_alone_exactly(width, conv):
    assert profile(archgraph.load(SPEC, width=width), (224, 224)).total.work["conv_mac"] == conv


README = [
    # (head, width, (H, W), published GFLOPs as printed, decimals)
    ("classification", 18, (224, 224), 3.99, 2),
    ("classification", 32, (224, 224), 8.31, 2),
    ("classification", 48, (224, 224), 16.1, 1),
    ("pose", 32, (256, 192), 7.1, 1),
    ("pose", 32, (256, 192), 7.12, 2),  # also published to 2 decimals
    ("pose", 48, (256, 192), 14.6, 1),
    ("pose", 48, (256, 192), 14.61, 2),
    ("pose", 32, (384, 288), 16.0, 1),
    ("segmentation", 48, (1024, 2048), 696.2, 1),  # HRNetV2-W48, Cityscapes
]


@pytest.mark.parametrize(("head", "width", "size", "published", "decimals"), README)
def test_hrnet_readme_gflops_to_the_published_precision(head, width, size, published, decimals):
    value = convention("hrnet-readme").value(profile(archgraph.load(SPEC, width=width, head=head), size).total)
    assert round(value, decimals) == published


# --- parameters, additivity, memory -----------------------------------------------------------------


@pytest.mark.parametrize(("head", "width"), [("classification", 18), ("classification", 48), ("pose", 32),
                                             ("segmentation", 18)])
def test_parameter_total_equals_the_built_module(head, width):
    graph = archgraph.load(SPEC, width=width, head=head)
    with torch.device("meta"):
        module = archgraph.build(graph)
    prof = profile(graph)
    assert prof.total.params == _params(module) == parameters(graph)
    for node in prof.nodes:  # and node by node, edge by edge
        if node.name in module.nodes:
            assert node.cost.params == _params(module.nodes[node.name]), node.name
    for edge in prof.edges:
        built = module.edges[edge.dst][edge.src] if edge.dst in module.edges and edge.src in module.edges[edge.dst] \
            else None
        assert edge.cost.params == (_params(built) if built is not None else 0), edge.name


@pytest.mark.parametrize("spec", [TINY, *sorted(str(p) for p in Path("specs").glob("*.yaml"))])
def test_the_parameter_count_alone_equals_the_profile_s_and_the_built_module_s(spec):
    # analysis.cost.parameters (the parameter limit's count) counts each distinct op call once
    graph = archgraph.load(spec)
    with torch.device("meta"):
        module = archgraph.build(graph)
    assert parameters(graph) == profile(graph).total.params == _params(module)


@pytest.mark.parametrize("head", ["classification", "pose", "segmentation"])
def test_nodes_and_edges_add_up_to_the_total_term_by_term(head):
    prof = profile(archgraph.load(SPEC, width=18, head=head), batch=2)
    total = prof.total
    nodes = sum((n.cost for n in prof.nodes), Cost())
    edges = sum((e.cost for e in prof.edges), Cost())
    assert nodes + edges == total
    assert sum(prof.by_op().values(), Cost()) == total
    for term in WORK_TERMS:
        assert sum(n.cost.work.get(term, 0) for n in prof.nodes) + sum(
            e.cost.work.get(term, 0) for e in prof.edges) == total.work.get(term, 0)
    for conv in CONVENTIONS.values():
        assert sum(conv.count(n.cost) for n in prof.nodes) + sum(conv.count(e.cost) for e in prof.edges) == \
            conv.count(total)


def test_batch_scales_work_and_bytes_not_parameters():
    graph = archgraph.load(SPEC, width=18, head="pose")
    one, four = profile(graph), profile(graph, batch=4, dtype="float16")
    assert four.total.params == one.total.params
    assert {t: 4 * n for t, n in one.total.work.items()} == dict(four.total.work)
    assert four.total.act_bytes == 2 * one.total.act_bytes  # 4x the elements, half the bytes each
    assert four.peak_bytes == 2 * one.peak_bytes


def test_node_output_bytes_are_counted_once():
    graph = archgraph.load(SPEC, width=18, head="segmentation")
    prof = profile(graph, (96, 160))
    by_name = {n.name: n for n in prof.nodes}
    # s2_t0 is the output of its transition conv edge, passed on: the edge owns those bytes
    assert by_name["s2_t0"].cost.act_bytes == 0
    t0 = next(e for e in prof.edges if e.dst == "s2_t0")
    assert t0.cost.act_bytes == 4 * 18 * 24 * 40
    # a fusion node makes its sum: C x H x W x 4 bytes
    assert by_name["s2_m0_f0"].cost.act_bytes == 4 * 18 * 24 * 40
    assert all(e.cost.act_bytes == 0 for e in prof.edges if e.op == "identity")


@pytest.mark.parametrize(("spec", "params", "size"), [
    (SPEC, {"width": 8, "head": "classification"}, (64, 64)),
    (SPEC, {"width": 8, "head": "pose"}, (64, 96)),
    (SPEC, {"width": 8, "head": "segmentation"}, (70, 50)),
    (TINY, {}, (32, 32)),
])
def test_peak_live_activations_equal_a_tensor_by_tensor_measurement(spec, params, size):
    graph = archgraph.load(spec, **params)
    module = archgraph.build(graph).eval()
    x = torch.randn(2, 3, *size)
    assert profile(graph, size, batch=2).peak_bytes == live_peak(module, x)


@pytest.mark.parametrize(("spec", "params", "size"), [
    (SPEC, {"width": 8, "head": "classification"}, (64, 64)),
    (SPEC, {"width": 8, "head": "segmentation"}, (70, 50)),
    (TINY, {}, (32, 32)),
])
@pytest.mark.parametrize("onednn", [True, False])
@pytest.mark.filterwarnings("ignore:TF32 acceleration")  # torch's note on switching oneDNN
def test_peak_live_activations_equal_the_allocator_at_operator_boundaries(spec, params, size, onednn):
    # the allocator's own account (torch.profiler), with oneDNN's convolutions or the native ones:
    # their workspace differs (reorders, im2col) and comes on top; the activations do not
    graph = archgraph.load(spec, **params)
    module = archgraph.build(graph).eval()
    with torch.backends.mkldnn.flags(enabled=onednn):
        measured = allocator_peak(module, torch.randn(2, 3, *size))
    assert profile(graph, size, batch=2).peak_bytes == measured.activations
    assert measured.total >= measured.activations
    assert measured.total == max(op.peak for op in measured.ops)
    assert measured.activations == max(op.end for op in measured.ops)


LONE_CONCAT = """
archgraph: 1
name: LoneConcat
input: {name: image, channels: 3, size: [16, 16]}
nodes:
  - {name: a, stride: 1, channels: 4, from: image, body: [{block: conv, channels: 4}]}
  - {name: b, stride: 1, channels: 4, merge: concat, act: relu, from: a}
  - {name: c, stride: 2, channels: 4, merge: concat, from: b, body: [{block: conv, channels: 4, stride: 2}]}
  - {name: d, stride: 1, channels: 4, merge: concat, output: true}
edges:
  - {from: c, to: d, op: upsample, project: false}
"""


def test_a_concatenation_of_one_input_is_that_input(tmp_path):
    """No copy (torch.cat of one tensor would make one): as the cost model counts it, in both backends."""
    spec = tmp_path / "lone.yaml"
    spec.write_text(LONE_CONCAT)
    graph = archgraph.load(spec)
    module = archgraph.build(graph).eval()
    x = torch.randn(2, 3, 16, 16)
    assert profile(graph, (16, 16), batch=2).peak_bytes == live_peak(module, x)
    with torch.no_grad():
        every = module.forward_all(x)
        assert torch.equal(every["b"], torch.relu(every["a"])), "a lone identity input is not written into"
        generated = module_class(graph)()
        generated.load_state_dict(module.state_dict())
        assert torch.equal(generated.eval()(x), module(x))
    assert "torch.cat" not in generate(graph)


def test_peak_is_at_least_every_output_and_at_most_everything():
    prof = profile(archgraph.load(SPEC, width=18))
    assert max(n.cost.act_bytes for n in prof.nodes) <= prof.peak_bytes <= prof.total.alloc_bytes + 4 * 3 * 224 * 224
    assert prof.peak_at == "layer1"


# --- values -----------------------------------------------------------------------------------------


def test_cost_is_a_frozen_value_that_adds():
    a = Cost({"conv_mac": 3, "bn": 1}, params=2, act_bytes=4, alloc_bytes=8)
    b = Cost({"conv_mac": 1, "add": 5}, params=1, act_bytes=0, alloc_bytes=4)
    assert a + b == Cost({"conv_mac": 4, "bn": 1, "add": 5}, 3, 4, 12)
    assert a + Cost() == a and sum([a, b]) == a + b
    assert (a + b) + a == a + (b + a)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.params = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        a.work["conv_mac"] = 0  # type: ignore[index]
    assert Cost.from_data(a.to_data()) == a
    assert a.macs == 3


def test_every_convention_weighs_every_term_and_says_why():
    for conv in CONVENTIONS.values():
        assert set(conv.weights) == set(WORK_TERMS), conv.name
        assert set(conv.notes) == set(WORK_TERMS), conv.name
    assert convention("hrnet-readme").divisor == 1024**3
    with pytest.raises(archgraph.SpecError, match="did you mean 'fvcore'"):
        convention("fvcor")


def test_a_shape_mismatch_between_a_cost_rule_and_inference_is_caught():
    graph = archgraph.load(TINY)
    with pytest.raises(archgraph.SpecError, match="too small|disagree"):
        profile(graph, (4, 4))


# --- docs/profile.md's worked example ---------------------------------------------------------------


def test_the_worked_example_in_the_docs():
    """One upsample-add edge of HRNet-W32 at 224x224: s2_m0_b1 (64x28x28) -> s2_m0_f0 (32x56x56)."""
    prof = profile(archgraph.load(SPEC, width=32), (224, 224))
    edge = next(e for e in prof.edges if (e.src, e.dst) == ("s2_m0_b1", "s2_m0_f0"))
    mac = 32 * 64 * 1 * 1 * 28 * 28  # 1x1 conv 64 -> 32 on 28x28
    bn = 32 * 28 * 28
    up = 32 * 56 * 56
    assert (mac, bn, up) == (1_605_632, 25_088, 100_352)
    assert dict(edge.cost.work) == {"conv_mac": mac, "bn": bn, "upsample_nearest": up}
    assert convention("fvcore").count(edge.cost) == mac + 2 * bn + up == 1_756_160
    assert convention("macs").count(edge.cost) == 1_605_632
    assert convention("flops").count(edge.cost) == 2 * mac + 2 * bn == 3_261_440
    assert round(convention("hrnet-readme").value(edge.cost), 6) == 0.001495
    assert edge.cost.params == 32 * 64 + 2 * 32 == 2_112
    assert edge.cost.act_bytes == 4 * up == 401_408
    assert edge.cost.alloc_bytes == 4 * (2 * bn + up) == 602_112
    node = next(n for n in prof.nodes if n.name == "s2_m0_f0")  # the add (and ReLU) are the node's
    assert dict(node.cost.work) == {"add": up, "relu": up}
    assert convention("flops").count(node.cost) == 2 * up == 200_704
    # the same edge in HRNetV2-W48 segmentation (bilinear, to the target's size) at 1024x2048
    seg = profile(archgraph.load(SPEC, width=48, head="segmentation"), (1024, 2048))
    edge = next(e for e in seg.edges if (e.src, e.dst) == ("s2_m0_b1", "s2_m0_f0"))
    assert dict(edge.cost.work) == {"conv_mac": 48 * 96 * 128 * 256, "bn": 48 * 128 * 256,
                                    "upsample_bilinear": 48 * 256 * 512}
    assert convention("fvcore").count(edge.cost) == 179_306_496
    assert convention("flops").count(edge.cost) == 349_175_808
