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
``align_corners`` to True, as the official code has it (an older, widely quoted copy calls ``F.grid_sample``
without it: PyTorch's default, False, since 1.3).

``variant: alignseg`` — Huang et al., "AlignSeg: Feature-Aligned Segmentation Networks", TPAMI 2021,
the aligned feature aggregation (``CAB`` in speedinghzl/AlignSeg, ``networks/alignseg.py``):

    high   = resize(x, guide's HxW)                       bilinear, align_corners=True
    concat = cat[guide, high]
    delta_k = delta_gen_k(concat), k = 1, 2               1x1 conv (to mid) + BN + leaky ReLU +
                                                          3x3 conv (to 2), no biases, the 3x3 conv
                                                          zero-initialised
    out    = warp(high, delta1) + warp(guide, delta2)     warp: grid_sample(., base grid + delta / (W, H))

The edge returns the sum, guide included: the target takes this edge as its only input (the
rules reject others), and the source and the guide must have the same width, which the output
keeps. mid defaults to that width (CAB's ``features``). The offsets' x is divided by W and their
y by H (``norm: wh``, ``norm = [[[[w/s, h/s]]]]`` in the official code); before the repository's
issue #7 it divided x by H and y by W (``norm: hw``, ``[[[[h/s, w/s]]]]``), which is the same on
square maps (the official evaluation's 769x769 or 872x872 tiles) and nowhere else. The BN's
activation is inplace_abn's default for ``InPlaceABNSync``, a leaky ReLU of slope 0.01 (``act:
none`` leaves it out); grid_sample runs with PyTorch's default, align_corners=False, as the code
calls it.

The layers are ``_layers.AlignedModule`` and ``_layers.CAB``; their attribute names (``down_h``,
``down_l``, ``flow_make``; ``delta_gen1``, ``delta_gen2``) are the official modules', so
checkpoints map key for key. The warp is ``_layers.warp`` (``Tally.warp`` for the cost), which
AlignSeg's context module (block ``aligned_context``) shares.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from archgraph.lang.values import Bool, Choice, PosInt
from archgraph.ops.base import EdgeOp, EdgeStyle, call, upward_stride_error
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
    norm: Optional[Choice("wh", "hw")] = Field(  # type: ignore[valid-type]
        None, description="alignseg: offsets' x / W and y / H ('wh'; null), or x / H and y / W ('hw', before "
                          "the official code's issue #7)"
    )

    @model_validator(mode="after")
    def _options_are_alignsegs(self) -> "FlowWarp":
        if self.act is not None and self.variant != "alignseg":
            raise ValueError("act is the activation of alignseg's offset generators; sfnet's flow_make has none")
        if self.norm is not None and self.variant != "alignseg":
            raise ValueError("norm orders alignseg's offset scaling; sfnet divides its flow by (W, H)")
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
        return upward_stride_error("flow_warp", src, dst)

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
        return CAB(c_in, self.hidden(c_in), self.act or "leaky_relu", self.grid_align_corners(), self.norm or "wh")

    def emit(self, c_in: int, c_out: int, src: int, dst: int, c_guide: int | None = None):
        assert c_guide is not None, "flow_warp needs its guide's width"
        if self.variant == "sfnet":
            return call("AlignedModule", c_in, c_guide, self.hidden(c_in), self.grid_align_corners())
        return call("CAB", c_in, self.hidden(c_in), self.act or "leaky_relu", self.grid_align_corners(),
                    self.norm or "wh")

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
            out = t.warp(x, flow)
            t.free(flow, high)
            return out
        high = t.upsample(x, "bilinear", hw)
        both = t.concat([guide, high])
        leaky = (self.act or "leaky_relu") == "leaky_relu"
        deltas = [offset_generator(t, both, mid, leaky) for _ in range(2)]  # delta_gen1, delta_gen2
        out = t.warp(high, deltas[0])
        t.free(high)
        other = t.warp(guide, deltas[1])
        out = t.add(out, other, inplace=True)
        t.free(other, both, *deltas)
        return out

    def render_style(self):
        return EdgeStyle("flow_warp", "flow warp (coarse to fine, aligned to a guide)", "#CC79A7", "solid", "vee")


def offset_generator(t, x, mid: int, leaky: bool = True):
    """``_layers.offset_generator``'s forward on ``x`` (the caller's): 1x1 conv to ``mid``, BN (+ leaky
    ReLU in place), 3x3 conv to 2; the Sequential drops each input once the next layer has returned."""
    a = t.conv(x, mid, 1)
    b = t.bn(a)
    t.free(a)
    if leaky:
        t.leaky_relu(b)
    out = t.conv(b, 2, 3)
    t.free(b)
    return out
