"""Blocks rrb and aligned_context: AlignSeg's refinement residual block and aligned context module.

Oracles: the official modules (``RRB``, ``CAM``) of a port of the official code
(tests/reference/alignseg_official.py, speedinghzl/AlignSeg ``networks/alignseg.py``), with
inplace_abn's ``InPlaceABNSync`` as its kernels compute it (|weight| + eps scales, converted as the
``alignseg_official`` import does); fvcore, FlopCountMode and a tensor-by-tensor measurement for the
cost model; the executor for the generated source and TorchScript.

Budget: modules of 8 to 24 channels on maps of a few pixels.
"""

from __future__ import annotations

import pytest
import torch

import archgraph
from archgraph.analysis import convention, profile
from archgraph.analysis.measure import flop_counter_counts, fvcore_counts, live_peak
from archgraph.ops import blocks
from archgraph.weights.alignseg import _abn_scale
from tests.reference import alignseg_official as official
from tests.test_source_backend import assert_equivalent

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


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
