"""op: flow_warp (SFNet's FAM, AlignSeg's CAB), the guide mechanism, block: ppm, specs/sfnet.yaml.

Oracles:

* the blog's ``AlignedModule`` and ``CAB`` (a blog's copy of lxtGH/SFSegNets
  and speedinghzl/AlignSeg), ported verbatim below: only the line breaks the blog lost are restored
  and one missing comma put back; its ``CAB`` is the official one of
  tests/reference/alignseg_official.py but for the order in which it divides the offsets, the
  order of the code before the repository's issue #7 (``norm: hw``). Their weights (random, the
  zero-initialised offset convs overwritten) are loaded with strict=True into the edge modules
  archgraph builds (inplace_abn's BN scales converted, as the import does), whose outputs must
  then be theirs, bit for bit; the official ``CAB`` gives the default order (``norm: wh``);
* the official code's parameter counts for SFNet (derived from lxtGH/SFSegNets'
  ``network/sfnet_resnet.py``, ``resnet_d.py`` and ``nn/operators.py``: 12,869,715 for ResNet-18,
  the paper's "12.87M");
* fvcore and FlopCountMode for the static cost model, a tensor-by-tensor measurement for its
  memory, and the executor for the generated source.

Budget: full-size networks are built on the meta device; forwards run at 64x64 (one odd size)
with ResNet-18 and narrow decoders; fvcore traces each spec once at 64x64.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn
import torch.nn.functional as F

import archgraph
from archgraph.analysis import convention, profile
from archgraph.analysis.measure import flop_counter_counts, fvcore_counts, live_peak
from archgraph.ir import infer
from archgraph.weights.alignseg import _abn_scale
from tests.reference import alignseg_official as official
from tests.test_source_backend import assert_equivalent

SFNET = "specs/sfnet.yaml"
ALIGNSEG = "specs/alignseg.yaml"
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::DeprecationWarning")]



# --- the oracles: the blog's code --------------------------------------------------------------------


class CAB(official.CAB):
    """AlignSeg's CAB before the repository's issue #7, whose ``bilinear_interpolate_torch_gridsample``
    divided the offsets by ``[h/s, w/s]`` (now ``[w/s, h/s]``); the rest is the official module."""

    def bilinear_interpolate_torch_gridsample(self, input, size, delta=0):
        out_h, out_w = size
        n, c, h, w = input.shape
        s = 1.0
        norm = torch.tensor([[[[h/s, w/s]]]]).type_as(input).to(input.device)
        w_list = torch.linspace(-1.0, 1.0, out_h).view(-1, 1).repeat(1, out_w)
        h_list = torch.linspace(-1.0, 1.0, out_w).repeat(out_h, 1)
        grid = torch.cat((h_list.unsqueeze(2), w_list.unsqueeze(2)), 2)
        grid = grid.repeat(n, 1, 1, 1).type_as(input).to(input.device)
        grid = grid + delta.permute(0, 2, 3, 1) / norm

        output = F.grid_sample(input, grid)
        return output


# the blog's copy: SFNet's AlignedModule, verbatim
class AlignedModule(nn.Module):
    def __init__(self, inplane, outplane, kernel_size=3):
        super(AlignedModule, self).__init__()
        self.down_h = nn.Conv2d(inplane, outplane, 1, bias=False)
        self.down_l = nn.Conv2d(inplane, outplane, 1, bias=False)
        self.flow_make = nn.Conv2d(outplane*2, 2, kernel_size=kernel_size, padding=1, bias=False)

    def forward(self, x):
        low_feature, h_feature = x
        h_feature_orign = h_feature
        h, w = low_feature.size()[2:]
        size = (h, w)
        low_feature = self.down_l(low_feature)
        h_feature= self.down_h(h_feature)
        h_feature = F.upsample(h_feature, size=size,
                               mode="bilinear", align_corners=True)
        flow = self.flow_make(torch.cat([h_feature, low_feature], 1))
        h_feature = self.flow_warp(h_feature_orign, flow, size=size)

        return h_feature

    def flow_warp(self, input, flow, size):
        out_h, out_w = size
        n, c, h, w = input.size()
        # n, c, h, w
        # n, 2, h, w

        norm = torch.tensor([[[[out_w, out_h]]]]).type_as(input).to(input.device)
        h = torch.linspace(-1.0, 1.0, out_h).view(-1, 1).repeat(1, out_w)
        w = torch.linspace(-1.0, 1.0, out_w).repeat(out_h, 1)
        grid = torch.cat((w.unsqueeze(2), h.unsqueeze(2)), 2)
        grid = grid.repeat(n, 1, 1, 1).type_as(input).to(input.device)
        grid = grid + flow.permute(0, 2, 3, 1) / norm

        output = F.grid_sample(input, grid)
        return output


# --- helpers ------------------------------------------------------------------------------------------


def randomize(module: nn.Module, seed: int, flow_scale: float = 1.0) -> nn.Module:
    """Random weights everywhere (the zero-initialised offset convs too), random BN statistics; eval.

    ``flow_scale`` enlarges the last conv of each flow/offset predictor, so that the warps move
    pixels by several pixels, some off the map (grid_sample's zero padding).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 if p.dim() > 1 else 0.1))
            if p.dim() == 1 and name.endswith("weight"):  # BN's scale: around 1
                p.add_(1.0)
            if name.endswith(("flow_make.weight", "2.weight")):
                p.mul_(flow_scale)
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return module.eval()


def spec(variant: str, c_coarse: int = 8, c_fine: int = 8, extra: dict | None = None) -> dict:
    """fine (stride 2) and coarse (stride 4); ``out`` reads coarse through flow_warp guided by fine."""
    sfnet = variant == "sfnet"
    return {
        "archgraph": 1, "name": "Warp", "input": {"channels": 3, "size": [36, 52]},
        "nodes": [
            {"name": "fine", "stride": 2, "channels": c_fine, "from": "image",
             "body": [{"block": "conv", "channels": c_fine, "stride": 2}]},
            {"name": "coarse", "stride": 4, "channels": c_coarse, "from": "fine",
             "body": [{"block": "conv", "channels": c_coarse, "stride": 2}]},
            {"name": "out", "stride": 2, "channels": c_coarse, "output": True, **({"from": "fine"} if sfnet else {})},
        ],
        "edges": [{"from": "coarse", "to": "out", "op": "flow_warp", "variant": variant, "guide": "fine",
                   **(extra or {})}],
    }


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(spec_, **params):
    with torch.device("meta"):
        return archgraph.build(spec_, **params)


# --- the blog's modules, same weights, same outputs -----------------------------------------------------


@pytest.mark.parametrize("official", [False, True], ids=["blog", "sfsegnets"])
def test_sfnet_edge_is_the_quoted_aligned_module(official, monkeypatch):
    graph = archgraph.load(spec("sfnet", extra={"align_corners": official}))
    model = archgraph.build(graph).eval()
    edge = model.edges["out"]["coarse"]
    quoted = randomize(AlignedModule(8, 4), 1, flow_scale=4.0)
    edge.load_state_dict(quoted.state_dict(), strict=True)  # down_h, down_l, flow_make: the official keys
    if official:
        # lxtGH/SFSegNets' operators.py differs from the blog copy in one place: grid_sample(..., align_corners=True)
        monkeypatch.setattr(F, "grid_sample", functools.partial(F.grid_sample, align_corners=True))
    g = torch.Generator().manual_seed(2)
    fine, coarse = torch.randn(2, 8, 9, 13, generator=g), torch.randn(2, 8, 5, 7, generator=g)
    with torch.no_grad():
        expected = quoted([fine, coarse])
        got = edge(coarse, fine)
        # the executor: the node sums the lateral (fine) and the warped coarse map, as SFNet's decoder does
        env = model.forward_all(torch.randn(2, 3, 36, 52, generator=g))
        node = env["fine"] + quoted([env["fine"], env["coarse"]])
    assert got.shape == (2, 8, 9, 13)
    assert torch.equal(got, expected)
    assert torch.equal(env["out"], node)
    moved = (got - F.interpolate(coarse, size=(9, 13), mode="bilinear", align_corners=True)).abs().max()
    assert moved > 0.1  # the flow does move things


@pytest.mark.parametrize("act", ["leaky_relu", "none"])
def test_alignseg_edge_is_the_quoted_cab(act, monkeypatch):
    graph = archgraph.load(spec("alignseg", extra={"act": act, "norm": "hw"}))
    model = archgraph.build(graph).eval()
    edge = model.edges["out"]["coarse"]
    assert all(not edge.get_parameter(f"delta_gen{k}.2.weight").any() for k in (1, 2))  # zero-initialised
    activation = "leaky_relu" if act == "leaky_relu" else "identity"
    monkeypatch.setattr(official, "InPlaceABNSync", functools.partial(official.InPlaceABNSync, activation=activation))
    quoted = randomize(CAB(8), 3, flow_scale=4.0)  # the zero init overwritten
    # delta_gen1/2.{0,1,2}: the official keys; inplace_abn's scales |weight| + eps, as the import converts them
    edge.load_state_dict({k: _abn_scale(k, v) for k, v in quoted.state_dict().items()}, strict=True)
    g = torch.Generator().manual_seed(4)
    fine, coarse = torch.randn(2, 8, 9, 13, generator=g), torch.randn(2, 8, 5, 7, generator=g)
    with torch.no_grad():
        expected = quoted(fine, coarse)  # CAB(low_stage, high_stage): the fine map first
        got = edge(coarse, fine)
        env = model.forward_all(torch.randn(2, 3, 36, 52, generator=g))
        node = quoted(env["fine"], env["coarse"])
    assert got.shape == (2, 8, 9, 13)
    assert torch.equal(got, expected)
    assert torch.equal(env["out"], node)  # the edge is the node's only input: the guide is added by the edge


def test_alignseg_edge_is_the_official_cab_in_both_orders():
    theirs = randomize(official.CAB(8), 5, flow_scale=4.0)
    g = torch.Generator().manual_seed(6)
    fine, coarse = torch.randn(2, 8, 9, 13, generator=g), torch.randn(2, 8, 5, 7, generator=g)
    with torch.no_grad():
        expected = theirs(fine, coarse)
    got = {}
    for norm in ("wh", "hw"):
        edge = archgraph.build(archgraph.load(spec("alignseg", extra={"norm": norm}))).eval().edges["out"]["coarse"]
        edge.load_state_dict({k: _abn_scale(k, v) for k, v in theirs.state_dict().items()}, strict=True)
        with torch.no_grad():
            got[norm] = edge(coarse, fine)
    assert torch.equal(got["wh"], expected)  # the default: x / W, y / H, as the code since its issue #7
    assert (got["hw"] - expected).abs().max() > 0.1  # the older order differs where H != W


def test_keys_and_widths_are_the_official_modules():
    model = build(SFNET)
    keys = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert keys["edges.f4.ppm.down_h.weight"] == (64, 128, 1, 1)  # AlignedModule(inplane=128, outplane=64)
    assert keys["edges.f4.ppm.down_l.weight"] == (64, 128, 1, 1)
    assert keys["edges.f4.ppm.flow_make.weight"] == (2, 128, 3, 3)
    assert keys["nodes.ppm.0.stages.3.1.weight"] == (128, 512, 1, 1)  # PSPModule(512, out_features=128), bin 6
    assert keys["nodes.ppm.0.stages.3.2.running_var"] == (128,)
    assert keys["nodes.ppm.0.bottleneck.0.weight"] == (128, 512 + 4 * 128, 1, 1)
    model = build(ALIGNSEG, depth=50)
    keys = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert keys["edges.d2.a2.delta_gen1.0.weight"] == (256, 512, 1, 1)  # CAB(256)
    assert keys["edges.d2.a2.delta_gen2.1.weight"] == (256,)
    assert keys["edges.d2.a2.delta_gen2.2.weight"] == (2, 256, 3, 3)


def test_guide_of_another_width_and_a_chosen_mid():
    # sfnet projects both maps to mid: the guide may have another width (here 'out' reads only the edge)
    data = spec("sfnet", c_coarse=12, c_fine=6, extra={"mid": 5})
    data["nodes"][2].pop("from")
    graph = archgraph.load(data)
    module = archgraph.build(graph).eval()
    edge = module.edges["out"]["coarse"]
    assert edge.down_h.weight.shape == (5, 12, 1, 1) and edge.down_l.weight.shape == (5, 6, 1, 1)
    with torch.no_grad():
        assert module(torch.randn(1, 3, 36, 52)).shape == (1, 12, 18, 26)


# --- the rules --------------------------------------------------------------------------------------


def _error(data: dict) -> str:
    with pytest.raises(archgraph.SpecError) as info:
        archgraph.load(data)
    return str(info.value)


def _with(data: dict, nodes: list | None = None, edges: list | None = None) -> dict:
    return {**data, "nodes": nodes if nodes is not None else data["nodes"],
            "edges": edges if edges is not None else data["edges"]}


def test_guide_must_name_a_node_other_than_the_target():
    data = spec("sfnet")
    message = _error(_with(data, edges=[{**data["edges"][0], "guide": "fien"}]))
    assert "unknown guide node 'fien'" in message and "did you mean 'fine'" in message
    message = _error(_with(data, edges=[{**data["edges"][0], "guide": "out"}]))
    assert "the guide is the edge's own target 'out'" in message


def test_guide_must_be_at_the_arrival_stride_and_a_map():
    data = spec("sfnet")
    message = _error(_with(data, edges=[{**data["edges"][0], "guide": "image"}]))
    assert "the guide must be at the arrival stride 2 of 'out', but 'image' is at stride 1" in message
    pooled = {"name": "pooled", "stride": 2, "channels": 8, "from": "fine", "output": True,
              "body": [{"block": "global_avg_pool"}]}
    message = _error(_with(data, nodes=[*data["nodes"], pooled], edges=[{**data["edges"][0], "guide": "pooled"}]))
    assert "the guide 'pooled' outputs a vector" in message


def test_flow_warp_goes_from_coarse_to_fine():
    data = spec("sfnet")
    edges = [{"from": "fine", "to": "coarse", "op": "flow_warp", "guide": "fine"}]
    nodes = [data["nodes"][0], {"name": "coarse", "stride": 4, "channels": 8, "output": True,
                                "body": [{"block": "conv", "channels": 8, "stride": 2}]}]
    message = _error(_with(data, nodes=nodes, edges=edges))
    assert "flow_warp must go from a coarser to a finer stride by a power of two, but goes from stride 2 to 2" \
        in message


def test_alignseg_needs_equal_widths_and_no_other_input():
    message = _error(spec("alignseg", c_coarse=8, c_fine=16))
    assert "sums the warped source and the warped guide, so they need the same width, but the source has 8 " \
           "channels and the guide 16" in message
    data = spec("alignseg")
    data["nodes"][2]["from"] = "fine"
    message = _error(data)
    assert "must be the only input of its target, which has 1 other input (to add other maps, use variant sfnet)" \
        in message


def test_sfnet_sums_the_source_width_with_the_other_inputs():
    message = _error(spec("sfnet", c_coarse=8, c_fine=16))
    assert "channel mismatch at sum node 'out': 'fine' gives 16, 'coarse' gives 8" in message


def test_act_and_norm_belong_to_alignseg():
    message = _error(spec("sfnet", extra={"act": "none"}))
    assert "act is the activation of alignseg's offset generators" in message
    message = _error(spec("sfnet", extra={"norm": "hw"}))
    assert "norm orders alignseg's offset scaling; sfnet divides its flow by (W, H)" in message


def test_a_cycle_through_a_guide_is_reported():
    # 'late' reads 'out' and is the guide of the edge into 'out': a cycle closed by the guide alone
    data = spec("alignseg")
    nodes = [*data["nodes"], {"name": "late", "stride": 2, "channels": 8, "from": "out", "output": True}]
    message = _error(_with(data, nodes=nodes, edges=[{**data["edges"][0], "guide": "late"}]))
    assert "cycle: out -> late -> out" in message or "cycle: late -> out -> late" in message


def test_the_guide_is_computed_first_and_released_after_its_last_use():
    data = spec("alignseg")
    # 'lat' is read only as the guide, and declared after the node that needs it
    data["nodes"].append({"name": "lat", "stride": 2, "channels": 8, "from": "fine",
                          "body": [{"block": "conv", "channels": 8, "kernel": 1}]})
    data["edges"][0]["guide"] = "lat"
    graph = archgraph.load(data)
    assert graph.order.index("lat") < graph.order.index("out")
    assert graph.reads("out") == ["coarse", "lat"]
    module = archgraph.build(graph).eval()
    step = next(s for s in module._schedule if s.name == "out")
    assert set(step.release) == {"coarse", "lat"}
    x = torch.randn(2, 3, 36, 52)
    assert profile(graph, (36, 52), batch=2).peak_bytes == live_peak(module, x)


@pytest.mark.parametrize("variant", ["sfnet", "alignseg"])
def test_peak_memory_of_a_guided_edge_equals_a_measurement(variant):
    data = spec(variant, c_coarse=64, c_fine=64)  # wide maps, so that the peak is in the warp
    graph = archgraph.load(data)
    module = archgraph.build(graph).eval()
    x = torch.randn(2, 3, 36, 52)
    prof = profile(graph, (36, 52), batch=2)
    assert prof.peak_at == "out"
    assert prof.peak_bytes == live_peak(module, x)


# --- shapes ---------------------------------------------------------------------------------------


def test_shapes_follow_the_guide_at_odd_sizes():
    graph = archgraph.load(SFNET)
    shapes = infer(graph, (65, 97))
    module = archgraph.build(graph).eval()
    with torch.no_grad():
        env = module.forward_all(torch.randn(1, 3, 65, 97))
    for name, shape in shapes.nodes.items():
        assert tuple(env[name].shape[1:]) == shape.dims, name
    # the warped map takes the guide's size (5x7), not twice the coarse map's (2 x 3x4)
    assert shapes["ppm"].dims == (128, 3, 4) and shapes["lat4"].dims == (128, 5, 7)
    assert shapes.edges[("ppm", "f4")].dims == (128, 5, 7)


def test_ppm_block():
    data = {"archgraph": 1, "name": "P", "input": {"channels": 3, "size": [40, 24]},
            "nodes": [{"name": "p", "stride": 2, "channels": 6, "from": "image", "output": True,
                       "body": [{"block": "conv", "channels": 5, "stride": 2},
                                {"block": "ppm", "channels": 6, "bins": [1, 4], "dropout": 0.0}]}]}
    graph = archgraph.load(data)
    module = archgraph.build(graph).eval()
    ppm = module.nodes["p"][1]
    assert [s[0].output_size for s in ppm.stages] == [1, 4]
    assert ppm.bottleneck[0].weight.shape == (6, 5 + 2 * 6, 1, 1)
    with torch.no_grad():
        assert module(torch.randn(1, 3, 40, 24)).shape == (1, 6, 20, 12)
    assert_equivalent(graph, size=(40, 24))
    bad = {**data, "nodes": [{**data["nodes"][0], "body": [{"block": "ppm", "channels": 6, "bins": []}]}]}
    assert "at least one bin size" in _error(bad)


# --- generated source, cost, counts ---------------------------------------------------------------


def test_executor_matches_generated_source():
    assert_equivalent(archgraph.load(SFNET), size=(64, 64))


@pytest.mark.parametrize("variant", ["sfnet", "alignseg"])
def test_tiny_guided_graph_matches_generated_source(variant):
    assert_equivalent(archgraph.load(spec(variant)), size=(36, 52))


def test_static_cost_equals_fvcore_and_flop_counter():
    graph = archgraph.load(SFNET)
    static = profile(graph, (64, 64)).total
    fv = fvcore_counts(graph, (64, 64))
    assert convention("fvcore").count(static) == fv["total"]
    assert fv["by_operator"]["grid_sampler"] == 4 * static.work["grid_sample"]
    assert fv["by_operator"]["adaptive_avg_pool2d"] == static.work["global_pool"] == 4 * 512 * 2 * 2  # 4 bins
    assert fv["by_operator"]["upsample_bilinear2d"] == 4 * static.work["upsample_bilinear"]
    assert 2 * static.macs == flop_counter_counts(graph, (64, 64))["total"]


# the official code's parameter counts (AlignNetResNet, 19 classes): ResNet-D deep-stem trunk + UperNetAlignHead
OFFICIAL = {18: 12_869_715, 50: 31_325_139, 101: 50_317_267}


@pytest.mark.parametrize("depth", list(OFFICIAL))
def test_sfnet_parameters_are_the_official_codes(depth):
    assert count(build(SFNET, depth=depth)) == OFFICIAL[depth]


def test_sfnet_resnet18_parts():
    model = build(SFNET)
    parts = {"backbone": 0, "ppm": 0, "align": 0}
    for key, p in model.named_parameters():
        part = "backbone" if ".resnet_" in key else "ppm" if key.startswith("nodes.ppm.") else \
            "align" if key.startswith("edges.f") else None
        if part:
            parts[part] += p.numel()
    # trunk (deep stem, 128-wide inplanes), head.ppm (PSPModule(512, 128)), head.fpn_out_align (3 x FAM(128, 64))
    assert parts == {"backbone": 11_324_992, "ppm": 394_496, "align": 3 * (2 * 128 * 64 + 128 * 2 * 9)}


@pytest.mark.parametrize("target", ["torchscript", "onnx"])
@pytest.mark.parametrize("variant", ["sfnet", "alignseg"])
def test_guided_graphs_export(variant, target):
    if target == "onnx":
        pytest.importorskip("onnxruntime")
    from archgraph.backends.source.export import compile_graph, onnx_opset

    graph = archgraph.load(spec(variant))
    assert onnx_opset(graph) >= 16  # GridSample
    compiled = compile_graph(graph, target, size=(36, 52), verify=True)
    assert any("max |diff|" in check for check in compiled.checks)


def test_profile_verify_names_the_grid_sampler(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from archgraph.cli import app

    path = tmp_path / "warp.yaml"
    path.write_text(yaml.safe_dump(spec("alignseg")))
    result = CliRunner().invoke(app, ["profile", str(path), "--verify"])
    assert result.exit_code == 0, result.output
    assert "grid_sampler" in result.output and "(ignores) leaky_relu" in result.output


@pytest.mark.parametrize(("depth", "flops"), [(18, 244_013_740_544), (50, 665_543_795_712)])
def test_sfnet_fvcore_flops_at_cityscapes_size(depth, flops):
    # the static count, which equals fvcore's on these specs (above, at 64x64), at the spec's 1024x2048
    assert convention("fvcore").count(profile(archgraph.load(SFNET, depth=depth)).total) == flops
