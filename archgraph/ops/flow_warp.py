"""flow_warp: coarse to fine along a learned flow — SFNet's FAM and AlignSeg's CAB, one guided edge.

An FPN-style decoder upsamples a coarse map and adds it to a finer one, assuming that the two are
aligned pixel for pixel; the flow-warp edges learn where each pixel should sample from instead.
Both read two maps: the edge's source (the coarse map) and a *guide* (``guide: <node>``, the fine
map at the target's arrival stride), which is what makes them the one guided op (see
``EdgeOp.guide_node``): the IR computes the guide before the target, shape inference gives the
edge the guide's HxW, and the module is called as ``module(source, guide)``.

``variant: sfnet`` — Li et al., "Semantic Flow for Fast and Accurate Scene Parsing", ECCV 2020,
the Flow Alignment Module (``AlignedModule`` in lxtGH/SFSegNets, ``network/nn/operators.py``):

    low  = down_l(guide)                                  1x1 conv, no bias, to mid
    high = resize(down_h(x), guide's HxW)                 1x1 conv, no bias, to mid; bilinear,
                                                          align_corners=True
    flow = flow_make(cat[high, low])                      3x3 conv, no bias, to 2 channels
    out  = grid_sample(x, base grid + flow / (W, H))      the ORIGINAL coarse map, warped

The edge returns the warped coarse map (the source's width, the guide's HxW); SFNet's decoder adds
it to the lateral map (``f = conv_x + align([conv_x, f])``), so the target sums this edge with its
other inputs, typically an identity edge from the guide itself. mid defaults to half the source's
width (SFNet: ``AlignedModule(inplane=fpn_dim, outplane=fpn_dim // 2)``); grid_sample's
``align_corners`` to True, as the official code has it (the blog copy calls ``F.grid_sample``
without it: PyTorch's default, False, since 1.3).

``variant: alignseg`` — Huang et al., "AlignSeg: Feature-Aligned Segmentation Networks", TPAMI 2021,
the aligned feature aggregation (``CAB`` in speedinghzl/AlignSeg, ``networks/alignseg.py``):

    high   = resize(x, guide's HxW)                       bilinear, align_corners=True
    concat = cat[guide, high]
    delta_k = delta_gen_k(concat), k = 1, 2               1x1 conv (to mid) + BN + leaky ReLU +
                                                          3x3 conv (to 2), no biases, the 3x3 conv
                                                          zero-initialised
    out    = warp(high, delta1) + warp(guide, delta2)     warp: grid_sample(., base grid + delta / (H, W))

The edge returns the sum, guide included: the target takes this edge as its only input (the
rules reject others), and the source and the guide must have the same width, which the output
keeps. mid defaults to that width (CAB's ``features``). The offsets are divided by (H, W) in the
order the blog copy has it (``norm = [[[[h/s, w/s]]]]``); the repository later swapped it to
(W, H) (its issue #7), which is the same for square maps. The BN's activation is inplace_abn's
default for ``InPlaceABNSync``, a leaky ReLU of slope 0.01 (``act: none`` leaves it out); grid_sample
runs with PyTorch's default, align_corners=False, as the code calls it.

The layers are ``_layers.AlignedModule`` and ``_layers.CAB``; their attribute names (``down_h``,
``down_l``, ``flow_make``; ``delta_gen1``, ``delta_gen2``) are the official modules', so
checkpoints map key for key.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from archgraph.lang.values import Bool, Choice, PosInt
from archgraph.ops.base import EdgeOp, EdgeStyle, call, halvings
from archgraph.ops.registry import register

# grid_sample's align_corners where the spec leaves it null: the official code's choice
ALIGN_CORNERS = {"sfnet": True, "alignseg": False}


@register
class FlowWarp(EdgeOp):
    """Coarse to fine along a learned flow, aligned to a fine guide map (SFNet's FAM, AlignSeg's CAB)."""

    op: Literal["flow_warp"] = "flow_warp"
    guide: str = Field(description="the fine node the flow aligns to, at the target's arrival stride")
    variant: Choice("sfnet", "alignseg") = Field(  # type: ignore[valid-type]
        "sfnet", description="'sfnet': warp the source only; 'alignseg': warp source and guide, return their sum"
    )
    mid: Optional[PosInt] = Field(
        None, description="hidden width of the flow predictor; null: the source's width / 2 (sfnet), or its width"
    )
    act: Optional[Choice("leaky_relu", "none")] = Field(  # type: ignore[valid-type]
        None, description="alignseg: activation after the offset generators' BN; null: leaky_relu (slope 0.01)"
    )
    align_corners: Optional[Bool] = Field(
        None, description="grid_sample's; null: the official code's (sfnet: true, alignseg: false)"
    )

    @model_validator(mode="after")
    def _act_is_alignsegs(self) -> "FlowWarp":
        if self.act is not None and self.variant != "alignseg":
            raise ValueError("act is the activation of alignseg's offset generators; sfnet's flow_make has none")
        return self

    @property
    def projects(self) -> bool:
        return False  # the warped source keeps its width (alignseg: the guide's too, the same)

    @property
    def guide_node(self) -> str:
        return self.guide

    def hidden(self, c_in: int) -> int:
        if self.mid is not None:
            return self.mid
        return max(1, c_in // 2) if self.variant == "sfnet" else c_in

    def grid_align_corners(self) -> bool:
        return ALIGN_CORNERS[self.variant] if self.align_corners is None else self.align_corners

    def stride_error(self, src: int, dst: int) -> str | None:
        if halvings(dst, src) is None:
            direction = "from fine to coarse" if src < dst else "between equal strides" if src == dst else ""
            return (
                f"flow_warp must go from a coarser to a finer stride by a power of two, "
                f"but goes from stride {src} to {dst}" + (f" ({direction})" if direction else "")
            )
        return None

    def guide_error(self, c_in: int, c_guide: int, siblings: int) -> str | None:
        if self.variant != "alignseg":
            return None  # sfnet projects both maps to mid; the target sums the result with its other inputs
        if c_in != c_guide:
            return (f"flow_warp (alignseg) sums the warped source and the warped guide, so they need the same "
                    f"width, but the source has {c_in} channels and the guide {c_guide}")
        if siblings:
            others = f"{siblings} other input" + ("s" if siblings > 1 else "")
            return (f"flow_warp (alignseg) already adds the guide to the warped source, so it must be the only "
                    f"input of its target, which has {others} (to add other maps, use variant sfnet)")
        return None

    def build(self, c_in: int, c_out: int, src: int, dst: int, c_guide: int | None = None):
        from archgraph.ops._layers import CAB, AlignedModule

        assert c_guide is not None, "flow_warp needs its guide's width"
        if self.variant == "sfnet":
            return AlignedModule(c_in, c_guide, self.hidden(c_in), self.grid_align_corners())
        return CAB(c_in, self.hidden(c_in), self.act or "leaky_relu", self.grid_align_corners())

    def emit(self, c_in: int, c_out: int, src: int, dst: int, c_guide: int | None = None):
        assert c_guide is not None, "flow_warp needs its guide's width"
        if self.variant == "sfnet":
            return call("AlignedModule", c_in, c_guide, self.hidden(c_in), self.grid_align_corners())
        return call("CAB", c_in, self.hidden(c_in), self.act or "leaky_relu", self.grid_align_corners())

    def cost(self, t, x, c_out, src, dst, hw, guide=None):
        # as _layers.AlignedModule / CAB's forward, call for call; ``hw`` is the guide's HxW
        assert guide is not None, "flow_warp needs its guide"
        mid = self.hidden(x.channels)
        if self.variant == "sfnet":
            a = t.conv(x, mid, 1)  # down_h
            high = t.upsample(a, "bilinear", hw)
            t.free(a)
            low = t.conv(guide, mid, 1)  # down_l
            both = t.concat([high, low])
            t.free(low)
            flow = t.conv(both, 2, 3)  # flow_make
            t.free(both)
            out = _warp(t, x, flow, hw)
            t.free(flow, high)
            return out
        high = t.upsample(x, "bilinear", hw)
        both = t.concat([guide, high])
        deltas = []
        for _ in range(2):  # delta_gen1, delta_gen2: conv, BN (+ leaky ReLU in place), conv
            a = t.conv(both, mid, 1)
            b = t.bn(a)
            t.free(a)
            if (self.act or "leaky_relu") == "leaky_relu":
                b = t.leaky_relu(b)
            deltas.append(t.conv(b, 2, 3))
            t.free(b)
        out = _warp(t, high, deltas[0], hw)
        t.free(high)
        other = _warp(t, guide, deltas[1], hw)
        out = t.add(out, other, inplace=True)
        t.free(other, both, *deltas)
        return out

    def render_style(self):
        return EdgeStyle("flow_warp", "flow warp (coarse to fine, aligned to a guide)", "#CC79A7", "solid", "vee")


def _warp(t, x, flow, hw):
    """``_layers.warp``: the sampling grid (per sample: the repeated base grid, flow / norm, their sum;
    the batch-independent base grid itself is not counted), then grid_sample."""
    repeated = t.new(2, hw)
    shift = t.new(2, hw)
    grid = t.new(2, hw)
    t.free(repeated, shift)
    out = t.grid_sample(x, hw)
    t.free(grid)
    return out
