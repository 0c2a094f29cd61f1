"""specs/alignseg.yaml builds the official AlignSeg; blocks rrb and aligned_context.

Oracles:

* a port of the official code (tests/reference/alignseg_official.py, speedinghzl/AlignSeg
  ``networks/alignseg.py``), with inplace_abn's ``InPlaceABNSync`` as its kernels compute it
  (|weight| + eps scales): the same parameters, key by key through the ``alignseg_official``
  mapping, and, for a checkpoint it writes (random weights, negative BN scales among them, the
  zero-initialised offset convs made large), the same two outputs after ``archgraph weights import``;
* fvcore, FlopCountMode and a tensor-by-tensor measurement for the cost model; the executor for the
  generated source.

Budget: one ResNet-101 pair (the port and ours) runs one forward at 99x131 (a side of 4k + 3, where
the ceil-mode pool differs from the floor); the cost and source checks run ResNet-50 with d = 32 at
67x99; the full-size networks are only built on the meta device.
"""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

import archgraph
from archgraph.analysis import convention, profile
from archgraph.analysis.measure import flop_counter_counts, fvcore_counts, live_peak
from archgraph.cli import app
from archgraph.ir import infer
from archgraph.ops import blocks
from archgraph.weights.alignseg import _abn_scale, alignseg_official
from tests.reference import alignseg_official as official
from tests.test_source_backend import assert_equivalent

SPEC = "specs/alignseg.yaml"
LAYERS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
OFFICIAL = {50: 47_854_182, 101: 66_846_310, 152: 82_489_958}  # the port's count, 19 classes
SMALL = {"depth": 50, "d": 32}
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Weights that keep a 101-layer forward in range (He-scaled convs), BN scales around 0.5 with about
    one in six negative (inplace_abn uses |weight| + eps), random statistics, and offset convs large
    enough to move pixels by several pixels; eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                t.fill_(7)  # num_batches_tracked
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.dim() == 1:
                t.copy_(torch.randn(t.shape, generator=g) * 0.5 + (0.5 if name.endswith("weight") else 0.0))
            else:
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / t[0].numel()) ** 0.5)
                if "delta_gen" in name and name.endswith("2.weight"):
                    t.mul_(40.0)
    return model.eval()


# --- the blocks ----------------------------------------------------------------------------------------


def test_rrb_and_cam_are_the_official_modules():
    """Our blocks, loaded with the official modules' weights (BN scales converted as on import), compute theirs."""
    g = torch.Generator().manual_seed(3)
    for theirs, block, x in [
        (official.RRB(24, 16), {"block": "rrb", "channels": 16}, torch.randn(2, 24, 9, 13, generator=g)),
        (official.CAM(24, 16), {"block": "aligned_context", "channels": 16}, torch.randn(2, 24, 7, 10, generator=g)),
    ]:
        ours = blocks()[block["block"]](**block).build(24)
        randomize(theirs, seed=4)
        ours.load_state_dict({k: _abn_scale(k, v) for k, v in theirs.state_dict().items()}, strict=True)
        ours.eval()
        before = x.clone()
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)
        assert torch.equal(x, before), "a block must not modify its input (another node may read it)"


def test_rrb_needs_a_quarter():
    with pytest.raises(ValueError, match="at least 4"):
        blocks()["rrb"](block="rrb", channels=3)


TINY = {
    "archgraph": 1, "name": "Tiny", "input": {"channels": 3, "size": [43, 30]},
    "nodes": [
        {"name": "a", "stride": 4, "channels": 8, "from": "image",
         "body": [{"block": "conv", "channels": 8, "stride": 2, "act": "leaky_relu"},
                  {"block": "maxpool", "kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True}]},
        {"name": "b", "stride": 8, "channels": 12, "from": "a",
         "body": [{"block": "conv", "channels": 12, "stride": 2}]},
        {"name": "c", "stride": 8, "channels": 8, "from": "b",
         "body": [{"block": "aligned_context", "channels": 8, "bins": 2}, {"block": "rrb", "channels": 8}]},
        {"name": "r", "stride": 4, "channels": 8, "from": "a", "output": True,
         "body": [{"block": "rrb", "channels": 8}]},
        {"name": "out", "stride": 4, "channels": 8, "output": True},
    ],
    "edges": [{"from": "c", "to": "out", "op": "flow_warp", "variant": "alignseg", "guide": "r"}],
}


def test_tiny_graph_cost_memory_source_and_export():
    from archgraph.backends.source.export import compile_graph

    graph = archgraph.load(TINY)
    size = (43, 30)
    static = profile(graph, size).total
    assert convention("fvcore").count(static) == fvcore_counts(graph, size)["total"]
    assert 2 * convention("macs").count(static) == flop_counter_counts(graph, size)["total"]
    module = archgraph.build(graph).eval()
    assert profile(graph, size, batch=2).peak_bytes == live_peak(module, torch.randn(2, 3, *size))
    assert_equivalent(graph, size=size)
    compiled = compile_graph(graph, "torchscript", size=size, verify=True)
    assert any("max |diff|" in check for check in compiled.checks)


# --- the official network ----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", list(OFFICIAL))
def test_parameters_are_the_official_codes_key_by_key(depth):
    graph = archgraph.load(SPEC, depth=depth)
    with torch.device("meta"):
        ours, theirs = archgraph.build(graph), official.Seg_Model(19, LAYERS[depth])
    assert count(ours) == count(theirs) == OFFICIAL[depth]
    mapped = {alignseg_official(k, graph): tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert mapped == {k: tuple(v.shape) for k, v in ours.state_dict().items()}


def test_an_imported_official_checkpoint_gives_the_official_outputs(tmp_path):
    torch.manual_seed(0)
    theirs = randomize(official.Seg_Model(19), seed=1)
    assert any((theirs.state_dict()[k] < 0).any() for k in ("bn1.weight", "RRB1a.norm.weight"))
    torch.save({"state_dict": {f"module.{k}": v for k, v in theirs.state_dict().items()}}, tmp_path / "theirs.pth")
    result = CliRunner().invoke(app, ["weights", "import", SPEC, str(tmp_path / "theirs.pth"), "-o",
                                      str(tmp_path / "ours.pt")])
    assert result.exit_code == 0, result.output
    assert "66,846,310 parameters" in result.output

    graph = archgraph.load(SPEC)
    ours = archgraph.build(graph).eval()
    ours.load_state_dict(torch.load(tmp_path / "ours.pt", weights_only=True), strict=True)
    moved = []
    for name, module in ours.named_modules():
        if name.endswith(("delta_gen", "delta_gen1", "delta_gen2")):
            module.register_forward_hook(lambda m, args, out: moved.append(float(out.abs().max())))
    size = (99, 131)  # 4k + 3: the conv1 output is even, where ceil mode adds a row and a column
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert list(got) == ["logits", "dsn"]  # the official [out, dsn]
    shapes = infer(graph, size)
    for (name, tensor), reference in zip(got.items(), expected):
        assert tuple(tensor.shape) == tuple(reference.shape) == (1, *shapes[name].dims) == (1, 19, 26, 34)
        torch.testing.assert_close(tensor, reference, rtol=0, atol=1e-5)
    assert len(moved) == 9 and min(moved) > 2.0  # every offset field moves pixels (by more than 2/W of the grid)


def test_shape_inference_follows_the_ceil_mode_stem():
    graph = archgraph.load(SPEC)
    shapes = infer(graph, (1024, 2048))
    assert shapes["resnet_stem"].dims == (128, 257, 513)  # floor mode: 256x512
    assert shapes["resnet_c5"].dims == (2048, 33, 65)
    assert shapes["logits"].dims == shapes["dsn"].dims == (19, 257, 513)
    with torch.device("meta"):  # torch's own shape functions
        tensors = archgraph.build(graph).eval().forward_all(torch.empty(1, 3, 1024, 2048))
    assert {n: tuple(t.shape[1:]) for n, t in tensors.items()} == {n: s.dims for n, s in shapes.nodes.items()}
    result = CliRunner().invoke(app, ["validate", SPEC, "--input", "99x131"])
    assert result.exit_code == 0, result.output
    assert result.output == (f"{SPEC}: ok: AlignSeg, 17 nodes, 17 edges; input 3x99x131 -> logits 19x26x34, "
                             "dsn 19x26x34\n")


def test_the_deep_supervision_head_can_be_left_out():
    graph = archgraph.load(SPEC, deep_supervision=False)
    assert graph.outputs == ["logits"] and "dsn" not in graph.nodes
    with torch.device("meta"):
        assert count(archgraph.build(graph)) == OFFICIAL[101] - (256 * 256 * 9 + 256 + 2 * 256 + 19 * 256 + 19)


def test_flops_at_the_evaluation_tile():
    prof = profile(archgraph.load(SPEC))  # 769x769, the official evaluate.py's tile
    assert tuple(prof.input[1:]) == (769, 769)
    assert convention("fvcore").count(prof.total) == 276_238_281_792
    assert convention("macs").count(prof.total) == 275_007_090_368


def test_static_cost_equals_fvcore_flop_counter_and_memory():
    graph = archgraph.load(SPEC, **SMALL)
    size = (67, 99)
    static = profile(graph, size).total
    fv = fvcore_counts(graph, size)
    assert convention("fvcore").count(static) == fv["total"]
    assert fv["by_operator"]["grid_sampler"] == 4 * static.work["grid_sample"]
    assert fv["by_operator"]["adaptive_avg_pool2d"] == static.work["global_pool"] == 2048 * 3 * 4  # CAM's pool on C5
    assert 2 * static.macs == flop_counter_counts(graph, size)["total"]
    module = archgraph.build(graph).eval()
    assert profile(graph, size, batch=2).peak_bytes == live_peak(module, torch.randn(2, 3, *size))


def test_executor_matches_generated_source():
    assert_equivalent(archgraph.load(SPEC, **SMALL), size=(67, 99))
