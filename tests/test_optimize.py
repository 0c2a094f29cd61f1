"""archgraph.optimize and build(optimize=..., device=...): inference-optimised modules compute what the build does.

Oracles: the unoptimised executor (and generated module) with random weights and BatchNorm
statistics, within 1e-4 relative (BN folded changes the float rounding, nothing else). No timing
here: speed is measured by ``python -m benchmarks.run`` (docs/benchmarks.md), never asserted.
"""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import archgraph
from archgraph.backends.source.export import as_dict, module_class, randomize
from archgraph.backends.torch.optimize import FusedConv2d, FusedResidual, mkldnn_available
from archgraph.cli import app

HRNET = "specs/hrnet.yaml"
CASES = [
    (HRNET, {"width": 8}, (64, 64)),
    (HRNET, {"width": 8, "head": "pose"}, (64, 96)),
    (HRNET, {"width": 8, "head": "segmentation"}, (70, 50)),
    ("specs/fpn.yaml", {"depth": 50, "d": 32}, (70, 50)),
    ("specs/resnet.yaml", {"depth": 18}, (64, 64)),
    ("specs/unet.yaml", {}, (64, 64)),
]
MODES = [
    {"mkldnn": False, "channels_last": False},
    {"mkldnn": False, "channels_last": True},
    pytest.param({"mkldnn": True, "channels_last": True},
                 marks=pytest.mark.skipif(not mkldnn_available(), reason="no oneDNN in this torch")),
    pytest.param({"mkldnn": True, "channels_last": False},
                 marks=pytest.mark.skipif(not mkldnn_available(), reason="no oneDNN in this torch")),
]



def built(spec, params, seed=1):
    graph = archgraph.load(spec, **params)
    module = archgraph.build(graph).eval()
    randomize(module, seed)
    return graph, module


def close(got, expected, graph) -> None:
    got, expected = as_dict(got, graph), as_dict(expected, graph)
    assert list(got) == list(expected)
    for name in expected:
        assert got[name].shape == expected[name].shape
        assert got[name].is_contiguous(), name  # NCHW out, whatever ran inside
        scale = expected[name].abs().max()
        assert ((got[name] - expected[name]).abs().max() / scale).item() <= 1e-4, name


def count(module, kind) -> int:
    return sum(type(m) is kind for m in module.modules())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("spec", "params", "size"), CASES)
def test_optimized_executor_computes_what_the_build_does(spec, params, size, mode):
    graph, module = built(spec, params)
    bns = count(module, nn.BatchNorm2d)
    optimized = archgraph.optimize(copy.deepcopy(module), **mode)
    report = optimized.optimize_report
    assert report.folded == bns and count(optimized, nn.BatchNorm2d) == 0
    assert report.mkldnn == mode["mkldnn"] and report.channels_last == mode["channels_last"]
    if mode["mkldnn"]:
        assert count(optimized, nn.Conv2d) == 0 and report.fused_convs == count(optimized, FusedConv2d)
    x = torch.randn(2, graph.input.channels, *size)
    with torch.inference_mode():
        close(optimized(x), module(x), graph)
    with torch.no_grad():  # not inference mode: the same
        close(optimized(x), module(x), graph)


@pytest.mark.parametrize("mode", MODES)
def test_optimized_generated_module_too(mode):
    graph, module = built(HRNET, {"width": 8, "head": "segmentation"})
    generated = module_class(graph)().eval()
    generated.load_state_dict(module.state_dict(), strict=True)
    optimized = archgraph.optimize(generated, **mode)
    assert optimized.optimize_report.folded == count(module, nn.BatchNorm2d)
    if mode["mkldnn"]:
        blocks = count(module, type(module.nodes["s2_m0_b0"][0])) + count(module, type(module.nodes["layer1"][0]))
        assert count(optimized, FusedResidual) == blocks  # every BasicBlock and Bottleneck
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        close(optimized(x), module(x), graph)


def test_state_dict_keeps_the_conv_keys_and_loses_the_batchnorms():
    _, module = built(HRNET, {"width": 8})
    optimized = archgraph.optimize(copy.deepcopy(module), mkldnn=False)
    keys = set(optimized.state_dict())
    assert "nodes.stem.0.0.weight" in keys and "nodes.stem.0.0.bias" in keys  # the folded conv, under its key
    assert not any(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in keys)
    assert all(k in module.state_dict() or k.endswith(".bias") for k in keys)
    assert not any(p.requires_grad for p in optimized.parameters()) and not optimized.training


@pytest.mark.skipif(not mkldnn_available(), reason="no oneDNN in this torch")
def test_reordered_weights_follow_load_state_dict_copies_and_pickles():
    _, a = built(HRNET, {"width": 8}, seed=1)
    _, b = built(HRNET, {"width": 8}, seed=2)
    a, b = archgraph.optimize(a), archgraph.optimize(b)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        before, expected = a(x), b(x)
    assert not torch.allclose(before, expected)
    a.load_state_dict(b.state_dict())  # after a forward: the reordered weights are stale, and remade
    with torch.inference_mode():
        torch.testing.assert_close(a(x), expected, rtol=0, atol=0)
        for twin in (copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
            torch.testing.assert_close(twin(x), expected, rtol=0, atol=0)
        torch.testing.assert_close(a(torch.cat([x, x])), torch.cat([expected, expected]), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not mkldnn_available(), reason="no oneDNN in this torch")
def test_fused_modules_fall_back_where_onednn_cannot_run():
    graph, module = built(HRNET, {"width": 8})
    optimized = archgraph.optimize(copy.deepcopy(module))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = module(x)
    got = optimized(x.clone().requires_grad_())  # gradients wanted: F.conv2d, same arithmetic
    close(got.detach(), expected, graph)
    as_double = archgraph.optimize(copy.deepcopy(module)).double()
    with torch.no_grad():
        close(as_double(x.double()).float(), expected, graph)


def test_build_optimize_and_device_keywords():
    model = archgraph.build(HRNET, width=8, optimize=True)
    assert model.optimize_report.folded > 0 and not model.training
    meta = archgraph.build(HRNET, width=8, device="meta")
    assert next(meta.parameters()).device.type == "meta"
    with torch.device("meta"):
        plain = archgraph.build(HRNET, width=8)
    assert sum(p.numel() for p in meta.parameters()) == sum(p.numel() for p in plain.parameters())
    folded = archgraph.build(HRNET, width=8, device="meta", optimize=True)  # shapes only: BN folded, no oneDNN
    assert not folded.optimize_report.mkldnn and count(folded, nn.BatchNorm2d) == 0
    assert tuple(folded(torch.empty(2, 3, 64, 64, device="meta")).shape) == (2, 1000)


def test_meta_builds_are_not_held_to_the_parameter_limit():
    limits = archgraph.Limits(max_params=1000)
    with pytest.raises(archgraph.SpecError):
        archgraph.build(HRNET, width=8, limits=limits)
    huge = archgraph.build(HRNET, width=8, limits=limits, device="meta")  # nothing allocated
    assert sum(p.numel() for p in huge.parameters()) > 1000


def test_a_spec_parameter_named_optimize_is_set_through_load():
    spec = {"archgraph": 1, "name": "Net", "params": {"optimize": 8},
            "nodes": [{"name": "a", "stride": 2, "channels": "optimize", "from": "image", "output": True,
                       "body": [{"block": "conv", "channels": "optimize", "stride": 2}]}]}
    graph = archgraph.load(spec, optimize=16)  # load has no keyword of that name: the spec's parameter
    model = archgraph.build(graph, optimize=True)  # build's own keyword
    assert graph.nodes["a"].channels == 16 and model.optimize_report.folded == 1


def test_cli_compile_optimize(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["compile", "tests/golden/hrnet_tiny.yaml", "--optimize"])
    assert result.exit_code == 0, result.output
    bns = count(archgraph.build("tests/golden/hrnet_tiny.yaml", device="meta"), nn.BatchNorm2d)
    assert f"optimized: {bns} BatchNorms folded into convs, NCHW" in result.output  # on meta: folding only
    result = runner.invoke(app, ["compile", "tests/golden/hrnet_tiny.yaml", "--optimize", "--target", "source"])
    assert result.exit_code == 2 and "--optimize does not apply to --target source" in result.output
    out = tmp_path / "tiny.pt"
    result = runner.invoke(app, ["compile", "tests/golden/hrnet_tiny.yaml", "--optimize", "--target", "torchscript",
                                 "-o", str(out), "--check"])
    assert result.exit_code == 0, result.output
    assert "check: optimised (BatchNorm folded) == generated module" in result.output
    scripted = torch.jit.load(str(out))
    assert not any("running_mean" in k for k in scripted.state_dict())
