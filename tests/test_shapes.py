"""Static shape inference agrees with PyTorch: same shape for every node, and the same verdict on sizes.

Oracle: a real forward pass of the built module (``forward_all``), on random valid
multi-resolution graphs and on HRNet at odd input sizes. Where inference rejects a
size, the forward must fail too, and where it accepts one, the forward must give
exactly the predicted shapes.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archgraph
from archgraph.errors import SpecError
from archgraph.ir import infer
from archgraph.ops import blocks
from tests.conftest import examples

STRIDES = [2, 4, 8, 16]


def _halvings(fine: int, coarse: int) -> int:
    return coarse.bit_length() - fine.bit_length()


@st.composite
def _edge(draw, src: str, src_stride: int, dst: str, arrival: int, concat: bool) -> dict:
    """An edge from ``src`` into ``dst``'s merge that can join the strides (projecting unless ``concat``)."""
    edge = {"from": src, "to": dst}
    if src_stride == arrival:
        op = "identity" if concat else draw(st.sampled_from(["conv", "lateral"]))
        edge["op"] = op
        if op == "conv" and draw(st.booleans()):
            edge["kernel"] = draw(st.sampled_from([1, 3, 5]))
    elif src_stride > arrival:
        edge["op"] = "upsample"
        edge["mode"] = draw(st.sampled_from(["nearest", "bilinear"]))
        edge["size"] = draw(st.sampled_from(["scale", "target"] + (["input"] if arrival == 1 else [])))
        edge["project"] = not concat
        if edge["mode"] == "bilinear":
            edge["align_corners"] = draw(st.sampled_from([None, False, True]))
    else:
        assert not concat
        edge["op"] = "downsample"
        if draw(st.booleans()):
            edge["links"] = _halvings(src_stride, arrival)
        edge["act_last"] = draw(st.booleans())
        edge["bias"] = draw(st.booleans())
    return edge


def _body(draw, width: int, stride: int) -> list[dict]:
    """Blocks ending at ``width`` whose strides multiply to ``stride`` (the first block carries it)."""
    kinds = ["conv", "basic"] + (["bottleneck"] if width % 4 == 0 else [])
    count = draw(st.integers(0 if stride == 1 else 1, 2))
    body = []
    for i in range(count):
        kind = draw(st.sampled_from(kinds))
        block = {"block": kind, "channels": width, "stride": stride if i == 0 else 1}
        if kind == "conv" and draw(st.booleans()):
            block["kernel"] = draw(st.sampled_from([1, 3]))
        if draw(st.integers(0, 3)) == 0:  # padded as much as dilated, so that the graph stays valid
            block["dilation"] = draw(st.sampled_from([2, 3]))
        if draw(st.integers(0, 3)) == 0:
            block["repeat"] = 2  # only the first copy strides
        body.append(block)
    return body


@st.composite
def multires_specs(draw) -> dict:
    stem_stride = draw(st.sampled_from([2, 4]))
    stem_width = draw(st.sampled_from([4, 8, 12, 16]))
    if draw(st.booleans()):
        stem_body = [{"block": "conv", "channels": stem_width, "stride": stem_stride}]
    else:
        stem_body = [{"block": "conv", "channels": stem_width, "stride": 2} for _ in range(stem_stride // 2)]
    nodes = [{"name": "stem", "stride": stem_stride, "channels": stem_width, "from": "image", "body": stem_body}]
    edges: list[dict] = []
    known = {"stem": (stem_stride, stem_width)}
    for i in range(draw(st.integers(1, 4))):
        name = f"n{i}"
        stride = draw(st.sampled_from(STRIDES))
        body_stride = draw(st.sampled_from([1, 1, 2]))
        arrival = stride // body_stride
        previous = list(known)[-1]  # every node feeds a later one, so only the last can be a sink
        others = [n for n in known if n != previous]
        extra = draw(st.lists(st.sampled_from(others), unique=True, max_size=2)) if others else []
        inputs = draw(st.permutations([previous, *extra]))
        concat = draw(st.booleans()) and all(known[src][0] >= arrival for src in inputs)
        in_edges = [draw(_edge(src, known[src][0], name, arrival, concat)) for src in inputs]
        if all(e.get("size") == "target" for e in in_edges):
            in_edges[0]["size"] = "scale"  # one input must have a size of its own
        width = draw(st.sampled_from([4, 8, 12, 16]) if draw(st.booleans()) else st.integers(4, 16))
        merged = sum(known[src][1] for src in inputs) if concat else width
        body = _body(draw, width, body_stride)
        channels = width if body else merged
        node = {"name": name, "stride": stride, "channels": channels, "body": body,
                "merge": "concat" if concat else "sum", "act": draw(st.sampled_from(["none", "relu"]))}
        nodes.append(node)
        edges += in_edges
        known[name] = (stride, channels)
    last = nodes[-1]
    last["output"] = True
    if draw(st.booleans()):  # end in a classifier
        classes = draw(st.integers(1, 5))
        last["body"] = last["body"] + [{"block": "global_avg_pool"}, {"block": "linear", "features": classes}]
        last["channels"] = classes
    if len(nodes) > 2 and draw(st.booleans()):
        draw(st.sampled_from(nodes[1:-1]))["output"] = True
    return {"archgraph": 1, "name": "random", "nodes": nodes, "edges": edges}


def _forward_all(module, size, device="cpu"):
    module.check_input = False  # torch's own verdict, the oracle for inference's
    with torch.no_grad():
        return module.forward_all(torch.randn(1, 3, *size, device=device))


def _check(graph, module, size, device="cpu"):
    """Inference and torch agree on ``size``: same verdict, and the same shape for every node."""
    try:
        shapes = infer(graph, size)
    except SpecError as error:
        assert "disagree in size" in error.message or "too small" in error.message
        with pytest.raises(RuntimeError):
            _forward_all(module, size, device)
        return None
    tensors = _forward_all(module, size, device)
    assert set(tensors) == set(shapes.nodes)
    for name, tensor in tensors.items():
        assert tuple(tensor.shape) == (1, *shapes[name].dims), name
    return shapes


@settings(max_examples=examples(25, 500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=multires_specs(), h=st.integers(17, 70), w=st.integers(17, 70))
def test_inference_agrees_with_torch_on_random_graphs(data, h, w):
    graph = archgraph.load(data)  # the generator writes only valid graphs
    module = archgraph.build(graph).eval()
    if _check(graph, module, (h, w)) is None:
        return
    # forward (which frees tensors after their last use) computes the same outputs as forward_all
    x = torch.randn(1, 3, h, w)
    with torch.no_grad():
        every, result = module.forward_all(x), module(x)
    outputs = result if isinstance(result, dict) else {graph.outputs[0]: result}
    assert list(outputs) == graph.outputs
    for name, tensor in outputs.items():
        assert torch.equal(tensor, every[name]), name


def test_the_generator_reaches_both_verdicts():
    """The property above is only meaningful if random graphs are both accepted and rejected at random sizes."""
    verdicts = set()

    @settings(max_examples=40, deadline=None, database=None, derandomize=True)
    @given(data=multires_specs(), h=st.integers(17, 70), w=st.integers(17, 70))
    def probe(data, h, w):
        try:
            infer(archgraph.load(data), (h, w))
            verdicts.add(True)
        except SpecError:
            verdicts.add(False)

    probe()
    assert verdicts == {True, False}


# --- HRNet at odd sizes (meta device: torch's own shape rules, no weights, no arithmetic) ----------

HRNET = str(Path(__file__).resolve().parent.parent / "specs" / "hrnet.yaml")


@pytest.fixture(scope="module")
def hrnet_meta():
    cache = {}

    def get(head):
        if head not in cache:
            graph = archgraph.load(HRNET, width=18, head=head)
            with torch.device("meta"):
                cache[head] = graph, archgraph.build(graph).eval()
        return cache[head]

    return get


@pytest.mark.parametrize(("head", "size", "accepted", "output"), [
    ("classification", (225, 225), False, None),
    ("classification", (224, 160), True, (1000,)),
    ("classification", (96, 64), True, (1000,)),
    ("pose", (257, 192), False, None),
    ("pose", (256, 192), True, (17, 64, 48)),
    ("segmentation", (70, 50), True, (19, 18, 13)),
    ("segmentation", (225, 225), True, (19, 57, 57)),  # bilinear fusion resizes to the target: any size
])
def test_hrnet_odd_sizes(hrnet_meta, head, size, accepted, output):
    graph, module = hrnet_meta(head)
    shapes = _check(graph, module, size, device="meta")
    assert (shapes is not None) == accepted
    if accepted:
        assert shapes[graph.outputs[0]].dims == output


def test_hrnet_225_is_rejected_by_a_real_forward_too():
    graph = archgraph.load(HRNET, width=18)
    with pytest.raises(SpecError, match="disagree in size for a 225x225 input"):
        infer(graph, (225, 225))
    module = archgraph.build(graph).eval()
    x = torch.randn(1, 3, 225, 225)
    with torch.no_grad(), pytest.raises(SpecError, match="'s2_m0_f0'"):  # named, before any compute
        module(x)
    module.check_input = False
    with torch.no_grad(), pytest.raises(RuntimeError):  # and torch agrees it cannot be done
        module(x)


TINY = {"archgraph": 1, "name": "tiny", "nodes": [
    {"name": "a", "stride": 2, "channels": 4, "from": "image", "body": [{"block": "conv", "channels": 4, "stride": 2}]},
    {"name": "b", "stride": 4, "channels": 4, "from": "a", "body": [{"block": "conv", "channels": 4, "stride": 2}]},
    {"name": "c", "stride": 2, "channels": 4, "from": "a", "output": True},
], "edges": [{"from": "b", "to": "c", "op": "upsample"}]}


@pytest.mark.parametrize(("size", "c"), [
    ((4, 4), (4, 2, 2)),
    ((3, 3), (4, 2, 2)),   # 3 -> 2 -> 1, and 1 upsampled is 2 again
    ((8, 8), (4, 4, 4)),
    ((8, 6), None),        # W: 6 -> 3 at a, 3 -> 2 at b, upsampled to 4 != 3
    ((9, 8), None),        # H: 9 -> 5 -> 3, upsampled to 6 != 5
])
def test_tiny_sizes(size, c):
    graph = archgraph.load(TINY)
    shapes = _check(graph, archgraph.build(graph).eval(), size)
    assert (shapes["c"].dims if shapes else None) == c


def test_repeat_strides_only_the_first_copy():
    data = {"archgraph": 1, "name": "r", "nodes": [
        {"name": "a", "stride": 2, "channels": 8, "from": "image",
         "body": [{"block": "basic", "channels": 8, "stride": 2, "repeat": 3}]},
        {"name": "b", "stride": 2, "channels": 8, "from": "image", "body": [{"block": "conv", "channels": 8,
                                                                            "stride": 2}]},
        {"name": "out", "stride": 2, "channels": 8, "from": ["a", "b"], "output": True},
    ]}
    graph = archgraph.load(data)
    assert [block.stride for block in graph.nodes["a"].body] == [2, 1, 1]
    shapes = _check(graph, archgraph.build(graph).eval(), (17, 30))
    assert shapes["a"].dims == shapes["b"].dims == (8, 9, 15)


def test_a_1x1_map_is_not_broadcast_into_a_sum():
    # torch alone would broadcast the 1x1 map into the 2x2 sum; the module checks sizes first
    graph = archgraph.load(TINY)
    with pytest.raises(SpecError, match="'a' gives 1x1, 'b' gives 2x2"):
        infer(graph, (2, 2))
    module = archgraph.build(graph).eval()
    with torch.no_grad(), pytest.raises(SpecError, match="'a' gives 1x1, 'b' gives 2x2"):
        module(torch.randn(1, 3, 2, 2))



def test_dilated_conv_arithmetic_is_torchs():
    """⌊(x + 2p − d(k − 1) − 1)/s⌋ + 1 for every kernel, stride, dilation and padding, padding's default
    (d·⌊k/2⌋, which keeps the size at stride 1) included, as ``F.conv2d`` computes it."""
    conv = blocks()["conv"]
    for k, s, d, p in itertools.product((1, 2, 3, 5), (1, 2, 3), (1, 2, 3), (None, 0, 1, 4)):
        op = conv(block="conv", channels=1, kernel=k, stride=s, dilation=d, padding=p)
        padding = d * (k // 2) if p is None else p
        for hw in ((7, 8), (12, 20), (25, 9)):
            if min(hw) + 2 * padding < d * (k - 1) + 1:
                continue  # the window does not fit: torch refuses, inference finds no output size > 0
            out = F.conv2d(torch.zeros(1, 1, *hw), torch.zeros(1, 1, k, k), stride=s, padding=padding, dilation=d)
            assert op.out_hw(hw) == tuple(out.shape[2:]), (k, s, d, p, hw)


def test_ceil_mode_max_pool_arithmetic_is_torchs():
    """⌈(x + 2p − k)/s⌉ + 1, less one where the last window would start past the input and its left
    padding, for every kernel, stride and allowed padding, as ``nn.MaxPool2d(ceil_mode=True)`` computes
    it (AlignSeg's stem: 512 -> 257 where floor mode gives 256)."""
    maxpool = blocks()["maxpool"]
    for k, s in itertools.product((1, 2, 3, 4), (1, 2, 3)):
        for p in range(k // 2 + 1):
            op = maxpool(block="maxpool", kernel=k, stride=s, padding=p, ceil_mode=True)
            for x in range(max(1, k - 2 * p), 20):
                out = F.max_pool2d(torch.zeros(1, 1, x, x + 1), k, s, p, ceil_mode=True)
                assert op.out_hw((x, x + 1)) == tuple(out.shape[2:]), (k, s, p, x)
    assert maxpool(block="maxpool", kernel=3, stride=2, padding=1, ceil_mode=True).out_hw((512, 511)) == (257, 256)
    assert maxpool(block="maxpool", kernel=3, stride=2, padding=1).out_hw((512, 511)) == (256, 256)
