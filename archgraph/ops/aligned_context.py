"""aligned_context: AlignSeg's aligned context module — a pooled context, sampled per pixel at learned offsets.

``CAM`` of speedinghzl/AlignSeg (``networks/alignseg.py``), the paper's AlignCM (Huang et al.,
"AlignSeg: Feature-Aligned Segmentation Networks", TPAMI 2021), on C5 of AlignSeg's trunk:

    pooled = pool(x)          adaptive average pooling to bins x bins, 1x1 conv to x's width + ABN,
                              3x3 conv to ``channels`` + ABN
    local  = adapt(x)         1x1 conv to x's width + ABN, 3x3 conv to ``channels`` + ABN
    delta  = delta_gen(cat[local, resize(pooled, x's HxW)])
                              bilinear, align_corners=True; 1x1 conv to ``channels`` + ABN, 3x3
                              conv to 2 (zero-initialised)
    out    = grid_sample(pooled, base grid at x's HxW + delta / (H, W) of the pooled map) + local

No conv has a bias; ABN is ``inplace_abn``'s ``InPlaceABNSync`` (in eval mode BN + leaky ReLU
0.01). The *pooled* map (bins x bins) is what is sampled, at the input's resolution: each pixel
picks its own context, which is the point of the module. grid_sample runs with PyTorch's default,
align_corners=False, as the code calls it; the offsets are divided by the pooled map's (H, W),
(3, 3) in the official code, so their order does not matter. H×W is kept; the width becomes
``channels``. The pooled map is at no stride of the graph, hence one block rather than nodes
and edges, as block ``ppm``.

Layer: ``_layers.CAM`` (``pool.1``-``pool.4``, ``adapt.0``-``adapt.3``, ``delta_gen.0``-``.2``: the
official keys); the warp is ``_layers.warp``, as the flow-warp edges', and the offset generator
``_layers.offset_generator``, as AlignSeg's CAB (op ``flow_warp``, ``variant: alignseg``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from archgraph.lang.values import PosInt
from archgraph.ops.base import BlockOp, call
from archgraph.ops.flow_warp import offset_generator
from archgraph.ops.registry import register


@register
class AlignedContext(BlockOp):
    """AlignSeg's context module: a bins x bins pooled context sampled at learned offsets, plus the adapted input."""

    block: Literal["aligned_context"] = "aligned_context"
    channels: PosInt = Field(description="output width (AlignSeg's 256)")
    bins: PosInt = Field(3, description="the adaptive average pool's output size (AlignSeg's 3)")

    def out_channels(self, c_in: int) -> int:
        return self.channels

    def render_label(self):
        return f"AlignCM({self.bins})"

    def build(self, c_in: int):
        from archgraph.ops._layers import CAM

        return CAM(c_in, self.channels, self.bins)

    def emit(self, c_in: int):
        return call("CAM", c_in, self.channels, self.bins)

    def cost(self, t, x):
        # as _layers.CAM.forward, call for call
        pooled = _convs(t, t.adaptive_avg_pool(x, self.bins), self.channels)  # pool
        local = _convs(t, x, self.channels)  # adapt
        up = t.upsample(pooled, "bilinear", x.hw)
        both = t.concat([local, up])
        delta = offset_generator(t, both, self.channels)  # delta_gen
        t.free(both)  # torch.cat's result goes once delta_gen has returned
        out = t.warp(pooled, delta)
        t.add(out, local, inplace=True)  # out += local
        t.free(delta, up, pooled, local)  # the locals go when forward returns
        return out


def _convs(t, x, channels: int):
    """``pool[1:]`` or ``adapt`` on ``x``: 1x1 conv to x's width, ABN, 3x3 conv to ``channels``, ABN; the
    Sequential drops each input once the next layer has returned (``x`` itself only if it made it)."""
    a = t.conv(x, x.channels, 1)
    t.free(x)
    b = t.bn(a)
    t.free(a)
    t.leaky_relu(b)
    c = t.conv(b, channels, 3)
    t.free(b)
    out = t.bn(c)
    t.free(c)
    t.leaky_relu(out)
    return out
