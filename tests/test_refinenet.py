"""The RefineNet blocks (``crp``, ``rcu``), the ``refinenet_unit`` pattern and specs/refinenet.yaml.

Oracles: the paper's description of chained residual pooling and the residual conv unit (Lin et
al., CVPR 2017, section 3.2), written here with plain functional ops and independent of the op
code; ports of DrSleep's Light-Weight RefineNet and RefineNet code (tests/reference/lw_refinenet.py),
whose weights (and checkpoints written from them, through ``archgraph weights import``) are loaded
into the archgraph module by the key mappings ``lw_refinenet_official`` and ``refinenet_official``
with strict=True and must give the same outputs; the published parameter counts of Light-Weight
RefineNet (27M / 46M / 62M); fvcore and FlopCounterMode for the static cost model, a tensor-by-
tensor measurement for its activation memory; the executor for the generated source.

Budget: full-size networks are built on the meta device to count; forwards run at 64x64 or 70x50
(ResNet-50 backbones), one thread.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

import archgraph
from archgraph.analysis import convention, profile
from archgraph.analysis.measure import flop_counter_counts, fvcore_counts, live_peak
from archgraph.cli import app
from archgraph.ops import blocks, edge_ops
from archgraph.weights import checkpoint
from tests.reference import lw_refinenet as ref
from tests.test_source_backend import assert_equivalent

SPEC = "specs/refinenet.yaml"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")



def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- the blocks, against the paper ---------------------------------------------------------------


def crp_as_the_paper_says(x, convs, relu=True):
    """"x = ReLU(x); then n blocks in a chain, each maxpool 5x5 stride 1 pad 2 followed by a conv (no
    bias); every block's output is added to a running sum that starts at x"."""
    if relu:
        x = torch.relu(x)
    total, chain = x, x
    for weight in convs:
        chain = F.conv2d(F.max_pool2d(chain, kernel_size=5, stride=1, padding=2), weight,
                         padding=weight.shape[-1] // 2)
        total = total + chain
    return total


def rcu_as_the_paper_says(x, w1, b1, w2):
    """"ReLU-conv3x3-ReLU-conv3x3 + identity, no BN" (the first conv with a bias, as released)."""
    y = F.conv2d(torch.relu(x), w1, b1, padding=1)
    y = F.conv2d(torch.relu(y), w2, padding=1)
    return x + y


@pytest.mark.parametrize(("n", "kernel", "relu"), [(2, 3, True), (4, 1, False), (1, 5, True)])
def test_crp_computes_what_the_paper_describes(n, kernel, relu):
    op = blocks()["crp"](block="crp", n=n, kernel=kernel, relu=relu)
    torch.manual_seed(0)
    layer = op.build(6).eval()
    assert list(layer.state_dict()) == [f"{i}_outvar_dimred.weight" for i in range(1, n + 1)]  # DrSleep's CRPBlock
    x = torch.randn(2, 6, 11, 9)
    before = x.clone()
    with torch.no_grad():
        got = layer(x)
    convs = [layer.state_dict()[f"{i}_outvar_dimred.weight"] for i in range(1, n + 1)]
    assert all(w.shape == (6, 6, kernel, kernel) for w in convs)
    torch.testing.assert_close(got, crp_as_the_paper_says(before, convs, relu), rtol=1e-5, atol=1e-5)
    assert torch.equal(x, before), "the CRP must not modify its input (another node may read it)"


def test_rcu_computes_what_the_paper_describes():
    op = blocks()["rcu"](block="rcu")
    torch.manual_seed(0)
    layer = op.build(5).eval()
    sd = layer.state_dict()
    assert list(sd) == ["conv1.weight", "conv1.bias", "conv2.weight"]
    x = torch.randn(2, 5, 10, 7)
    before = x.clone()
    with torch.no_grad():
        got = layer(x)
    expected = rcu_as_the_paper_says(before, sd["conv1.weight"], sd["conv1.bias"], sd["conv2.weight"])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(x, before), "the RCU's identity is its input: the first ReLU must not be in place"


def test_crp_and_rcu_match_drsleeps_blocks():
    """Same keys and outputs as the reference code's CRPBlock (1x1 and 3x3) and RCUBlock (one unit)."""
    torch.manual_seed(0)
    x = torch.randn(1, 8, 9, 12)
    for kernel in (1, 3):
        theirs = ref.CRPBlock(8, 8, 4, kernel).eval()
        ours = blocks()["crp"](block="crp", n=4, kernel=kernel, relu=False).build(8).eval()
        ours.load_state_dict(theirs.state_dict(), strict=True)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)
    theirs = ref.RCUBlock(8, 8, 1, 2).eval()
    ours = blocks()["rcu"](block="rcu").build(8).eval()
    ours.load_state_dict({"conv1.weight": theirs.state_dict()["1_conv.weight"],
                          "conv1.bias": theirs.state_dict()["1_conv.bias"],
                          "conv2.weight": theirs.state_dict()["1_conv_relu_varout_dimred.weight"]}, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x.clone()), rtol=0, atol=1e-6)


def test_block_parameters_are_checked():
    with pytest.raises(ValueError, match="kernel must be odd"):
        blocks()["crp"](block="crp", kernel=2)
    with pytest.raises(ValueError):
        blocks()["crp"](block="crp", n=0)
    up = edge_ops()["upsample"](op="upsample", **{"from": "a", "to": "b"}, kernel=2)
    assert "odd kernel" in up.stride_error(8, 4)
    assert up.model_copy(update={"project": False}).stride_error(8, 4) is None


# --- small graphs with the new blocks: cost model, memory, generated source ----------------------

TINY = {
    "archgraph": 1, "name": "Tiny", "input": {"size": [24, 20]},
    "nodes": [
        {"name": "a", "stride": 2, "channels": 8, "from": "image",
         "body": [{"block": "conv", "channels": 8, "stride": 2}]},
        {"name": "b", "stride": 4, "channels": 8, "from": "a", "body": [{"block": "conv", "channels": 8, "stride": 2}]},
        # a lone identity input into the blocks: they must leave 'a' alone ('c' reads it too)
        {"name": "p", "stride": 2, "channels": 8, "from": "a", "body": [{"block": "rcu", "repeat": 2}]},
        {"name": "q", "stride": 2, "channels": 8, "from": "a", "body": [{"block": "crp", "n": 3, "relu": False}]},
        {"use": "refinenet_unit", "name": "u", "from": ["p", "q", "b"], "width": 6, "crp_blocks": 2},
        {"name": "c", "stride": 2, "channels": 8, "from": "a", "output": True},
        {"name": "out", "stride": 2, "channels": 6, "from": "u",
         "body": [{"block": "crp", "n": 4, "kernel": 1}, {"block": "rcu"}], "output": True},
    ],
}


def test_the_unit_writes_the_papers_block():
    graph = archgraph.load(TINY)
    assert [n for n in graph.nodes if n.startswith("u")] == ["u_rcu0", "u_rcu1", "u_rcu2", "u"]
    assert [(e.src, e.op.tag) for e in graph.in_edges("u")] == [("u_rcu0", "conv"), ("u_rcu1", "conv"),
                                                               ("u_rcu2", "upsample")]
    up = graph.in_edges("u")[2].op
    assert (up.kernel, up.bn, up.mode, up.size, up.align_corners) == (3, False, "bilinear", "target", True)
    conv = graph.in_edges("u")[0].op
    assert (conv.kernel, conv.bias, conv.bn, conv.act) == (3, False, False, "none")
    assert [b.tag for b in graph.nodes["u"].body] == ["crp", "rcu"]
    assert [b.tag for b in graph.nodes["u_rcu2"].body] == ["rcu", "rcu"]


def test_tiny_graph_cost_memory_and_source():
    graph = archgraph.load(TINY)
    size = (26, 22)
    static = profile(graph, size).total
    measured = fvcore_counts(graph, size)
    assert convention("fvcore").count(static) == measured["total"]
    assert "aten::max_pool2d" in measured["unsupported"]
    assert 2 * convention("macs").count(static) == flop_counter_counts(graph, size)["total"]
    module = archgraph.build(graph).eval()
    assert profile(graph, size, batch=2).peak_bytes == live_peak(module, torch.randn(2, 3, *size))
    assert_equivalent(graph, size=size)


def test_tiny_graph_scripts():
    from archgraph.backends.source import export as ex

    graph = archgraph.load(TINY)
    _, generated = ex.paired(graph)
    scripted = torch.jit.script(generated)  # ChainedResidualPool iterates over itself: scriptable
    x = ex.example_input(graph)
    with torch.no_grad():
        expected, got = generated(x), scripted(x)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0)


def test_a_unit_with_one_input_has_no_fusion_width():
    data = {"archgraph": 1, "name": "N", "nodes": [
        {"name": "a", "stride": 2, "channels": 8, "from": "image", "body": [{"block": "conv", "channels": 8, "stride": 2}]},
        {"use": "refinenet_unit", "name": "u", "from": "a", "width": 4},
        {"name": "o", "stride": 2, "channels": 8, "from": "u", "output": True}]}
    with pytest.raises(archgraph.SpecError, match=r"a unit with one input has no fusion: its width is the input's \(8\)"):
        archgraph.load(data)
    del data["nodes"][1]["width"]
    graph = archgraph.load(data)
    assert [b.tag for b in graph.nodes["u"].body] == ["rcu", "rcu", "crp", "rcu"] and "u_rcu0" not in graph.nodes


def test_crp_and_rcu_cost_rules():
    prof = profile(archgraph.load(TINY), (24, 20))
    q = next(n for n in prof.nodes if n.name == "q").cost.work  # crp n=3, 3x3, no ReLU, at 8x12x10
    hw = 12 * 10
    assert q["conv_mac"] == 3 * 8 * 8 * 9 * hw and q["max_pool"] == 3 * 8 * hw * 24
    assert q["add"] == 3 * 8 * hw and "relu" not in q
    p = next(n for n in prof.nodes if n.name == "p").cost.work  # two RCUs
    assert p["conv_mac"] == 2 * 2 * 8 * 8 * 9 * hw and p["conv_bias"] == 2 * 8 * hw
    assert p["relu"] == 2 * 2 * 8 * hw and p["add"] == 2 * 8 * hw


# --- specs/refinenet.yaml against DrSleep's code -------------------------------------------------

MAPPINGS = {"light": "lw_refinenet_official", "original": "refinenet_official"}  # the spec's weights: header


def reference(variant: str, depth: int, crp_blocks: int = 4) -> torch.nn.Module:
    return ref.rf_lw(depth) if variant == "light" else ref.rf(depth, crp_stages=crp_blocks)


def scaled_weights(model: torch.nn.Module, seed: int = 1) -> None:
    """Random weights at a scale that keeps 40 convolutions without BN finite and comparable:
    convs N(0, 1/fan_in), BN affine and statistics around the identity, biases small."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                t.zero_()
            elif t.dim() == 4:
                t.copy_(torch.randn(t.shape, generator=g) / t[0].numel() ** 0.5)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith(".weight"):  # BN scale
                t.copy_(1 + 0.1 * torch.randn(t.shape, generator=g))
            else:
                t.copy_(0.1 * torch.randn(t.shape, generator=g))


def pair(variant: str, depth: int, crp_blocks: int = 4):
    """DrSleep's model with random weights, and the spec's module with them, through the variant's key mapping."""
    with torch.device("meta"):  # no initialisation: scaled_weights fills every tensor
        theirs = reference(variant, depth, crp_blocks)
    theirs = theirs.to_empty(device="cpu")
    scaled_weights(theirs)
    theirs.eval()
    graph = archgraph.load(SPEC, variant=variant, depth=depth, crp_blocks=crp_blocks)
    ours = checkpoint.load(graph, theirs.state_dict(), MAPPINGS[variant]).eval()  # strict=True
    return ours, theirs


@pytest.mark.parametrize(("variant", "crp_blocks"), [("light", 4), ("original", 4), ("original", 2)])
def test_same_outputs_as_drsleeps_code_for_the_same_weights(variant, crp_blocks):
    torch.manual_seed(0)
    ours, theirs = pair(variant, 50, crp_blocks)
    for size in ((64, 64), (70, 50)):  # 70x50: the coarser maps are resized to the finer's size, not x2
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            got, expected = ours(x), theirs(x)
        assert got.shape == expected.shape == (2, 21, (size[0] + 3) // 4, (size[1] + 3) // 4)
        scale = expected.abs().max().item()
        assert 1e-3 < scale < 1e6
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * scale)


# published: Light-Weight RefineNet's README and paper (27M, 46M, 62M parameters, 21 classes)
PUBLISHED_PARAMS = {50: 27e6, 101: 46e6, 152: 62e6}
LIGHT_PARAMS = {50: 27_357_525, 101: 46_349_653, 152: 61_993_301}
ORIGINAL_PARAMS = {  # crp_blocks 2 (the paper) and 4 (the released model)
    (50, 2): 90_802_773, (101, 2): 109_794_901, (152, 2): 125_438_549,
    (50, 4): 99_060_309, (101, 4): 118_052_437, (152, 4): 133_696_085,
}


@pytest.mark.parametrize("depth", [50, 101, 152])
def test_parameter_counts(depth):
    with torch.device("meta"):
        light, port = archgraph.build(SPEC, depth=depth), ref.rf_lw(depth)
        assert count(light) == count(port) == LIGHT_PARAMS[depth]
        for blocks_ in (2, 4):
            original = archgraph.build(SPEC, variant="original", depth=depth, crp_blocks=blocks_)
            assert count(original) == count(ref.rf(depth, crp_stages=blocks_)) == ORIGINAL_PARAMS[depth, blocks_]
    assert round(LIGHT_PARAMS[depth] / 1e6) == PUBLISHED_PARAMS[depth] / 1e6
    assert profile(archgraph.load(SPEC, depth=depth), (64, 64)).total.params == LIGHT_PARAMS[depth]


# multiply-adds (conv; the static model's `macs`) at the published FLOPs' input, 625x468 (W x H)
LIGHT_MACS_468x625 = {50: 36_613_748_864, 101: 59_341_633_664, 152: 81_914_656_896}
PUBLISHED_GFLOPS = {50: 33, 101: 52, 152: 71}


def test_flops_at_625x468_against_the_published():
    """The README's "FLOPs, B" (measured "on 625x468 inputs"): 33 / 52 / 71.

    No counting convention of this model reproduces them at that size: conv multiply-adds / 1e9
    are 36.6 / 59.3 / 81.9 (fvcore's count, which adds BN and upsampling, 36.8 / 59.6 / 82.2;
    / 2^30: 34.1 / 55.3 / 76.3). The step from one depth to the next is the backbone's extra
    bottlenecks alone (ResNet-101 adds 17 stride-16 blocks to ResNet-50), which no convention
    weighs differently: 22.7 here, 19 published, the size of that step for a 32x32 stride-16
    map, i.e. a 512x512 input (the paper's timing size), where the totals are 32.0 / 51.4 / 70.8.
    """
    macs = convention("macs")
    got = {d: macs.count(profile(archgraph.load(SPEC, depth=d), (468, 625)).total) for d in (50, 101, 152)}
    assert got == LIGHT_MACS_468x625
    assert macs.count(profile(archgraph.load(SPEC, depth=50), (625, 468)).total) == got[50]
    steps = [round((got[b] - got[a]) / 1e9, 1) for a, b in ((50, 101), (101, 152))]
    assert steps == [22.7, 22.6]  # published: 19, 19
    at_512 = {d: macs.count(profile(archgraph.load(SPEC, depth=d), (512, 512)).total) / 1e9 for d in (50, 101, 152)}
    assert [round(v, 1) for v in at_512.values()] == [32.0, 51.4, 70.8]
    assert all(abs(at_512[d] - PUBLISHED_GFLOPS[d]) < 1.05 for d in at_512)


@pytest.mark.parametrize("variant", ["light", "original"])
def test_fvcore_equality(variant):
    graph = archgraph.load(SPEC, variant=variant, depth=50)
    size = (70, 50)
    static = profile(graph, size).total
    measured = fvcore_counts(graph, size)
    assert convention("fvcore").count(static) == measured["total"]
    assert static.work["conv_mac"] == measured["by_operator"]["conv"]
    assert static.work["upsample_bilinear"] * 4 == measured["by_operator"]["upsample_bilinear2d"]
    assert 2 * convention("macs").count(static) == flop_counter_counts(graph, size)["total"]


def test_peak_live_activations_equal_a_tensor_by_tensor_measurement():
    graph = archgraph.load(SPEC, variant="original", depth=50)
    module = archgraph.build(graph).eval()
    assert profile(graph, (70, 50)).peak_bytes == live_peak(module, torch.randn(1, 3, 70, 50))


@pytest.mark.parametrize("variant", ["light", "original"])
def test_generated_source_matches_the_executor(variant):
    assert_equivalent(archgraph.load(SPEC, variant=variant, depth=50), size=(70, 50), batch=1)


def test_spec_shapes_and_structure():
    graph = archgraph.load(SPEC)
    assert graph.outputs == ["logits"]
    from archgraph.ir import infer

    shapes = infer(graph, (468, 625))
    assert shapes["logits"].dims == (21, 117, 157)
    assert shapes["r4"].dims == (512, 15, 20) and shapes["r3"].dims == (256, 30, 40)
    assert [b.tag for b in graph.nodes["r4"].body] == ["crp"]
    original = archgraph.load(SPEC, variant="original")
    assert [b.tag for b in original.nodes["r4"].body] == ["rcu", "rcu", "crp", "rcu"]
    assert [b.n for b in original.nodes["r4"].body if b.tag == "crp"] == [2]
    assert [b.tag for b in original.nodes["logits"].body] == ["rcu", "rcu", "conv"]


# --- archgraph weights import: DrSleep's checkpoints -----------------------------------------------


def test_a_drsleep_checkpoint_imports(tmp_path):
    ours, theirs = pair("light", 50)
    # as light-weight-refinenet's training saves it (src/train.py, Saver): the DataParallel module's
    # state dict under 'segmenter', beside the epoch and the best mean IoU (a numpy float)
    snapshot = {"segmenter": {f"module.{k}": v for k, v in theirs.state_dict().items()}, "epoch_start": 300,
                "best_val": np.mean(np.array([0.75, 0.8]))}
    torch.save(snapshot, tmp_path / "checkpoint.pth.tar")
    result = CliRunner().invoke(app, ["weights", "import", SPEC, str(tmp_path / "checkpoint.pth.tar"),
                                      "-o", str(tmp_path / "o.pt")])
    assert result.exit_code == 0, result.stderr
    assert f"{LIGHT_PARAMS[50]:,} parameters" in result.stdout
    ours.load_state_dict(torch.load(tmp_path / "o.pt", weights_only=True), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        got, expected = ours(x), theirs(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


def test_a_refinenet_checkpoint_is_not_a_light_weight_one():
    with torch.device("meta"):  # keys and shapes are all a mapping reads
        state, light = ref.rf(50).state_dict(), ref.rf_lw(50).state_dict()
    with pytest.raises(archgraph.SpecErrors) as info:
        checkpoint.load(archgraph.load(SPEC, variant="original"), state, "lw_refinenet_official")
    text = str(info.value)
    assert "checkpoint key 'adapt_stage1_b.0.1_conv.weight' has no rule in lw_refinenet_official" in text
    assert "RefineNet's 'nodes.r4.0.conv1.weight' has no key in the checkpoint" in text
    with pytest.raises(archgraph.SpecErrors) as info:  # and a light-weight one does not fit the original
        checkpoint.load(archgraph.load(SPEC, variant="original"), light, "refinenet_official")
    assert "checkpoint key 'p_ims1d2_outl1_dimred.weight' has shape 512x2048x1x1, but RefineNet's " \
           "'nodes.d5.0.0.weight' has shape 512x2048x3x3" in str(info.value)
