"""rrb: AlignSeg's refinement residual block — a 1x1 conv, then a residual of two 3x3 convs, BN after the sum.

``RRB`` of speedinghzl/AlignSeg (``networks/alignseg.py``; Huang et al., "AlignSeg: Feature-Aligned
Segmentation Networks", TPAMI 2021), after DFN's block of that name (Yu et al., "Learning a
Discriminative Feature Network for Semantic Segmentation", CVPR 2018):

    u   = unify(x)                          1x1 conv to ``channels``, no bias (no BN)
    r   = residual(u)                       3x3 conv to channels // 4 + ABN + 3x3 conv to channels,
                                            no biases
    out = norm(u + r)                       ABN

where ABN is ``inplace_abn``'s ``InPlaceABNSync`` with its default activation: in eval mode a
BatchNorm followed by a leaky ReLU of slope 0.01. The BN comes after the sum, which is why the
``residual`` block (BN before the sum, a plain ReLU after) cannot express it. AlignSeg refines
every level of its decoder with one (``RRB1a`` ... ``RRB5b``, ``channels`` 256). H×W is kept.

Layer: ``_layers.RRB``, with the official attribute names (``unify``, ``residual.0/1/2``,
``norm``), so checkpoints map key for key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from archgraph.lang.values import PosInt
from archgraph.ops.base import BlockOp, call
from archgraph.ops.registry import register


@register
class RRB(BlockOp):
    """Refinement residual block: 1x1 conv, plus two 3x3 convs (ABN between) on it, ABN of the sum."""

    block: Literal["rrb"] = "rrb"
    channels: PosInt = Field(description="output width; the residual's 3x3 convs narrow to channels // 4")

    @field_validator("channels")
    @classmethod
    def _narrows(cls, channels: int) -> int:
        if channels < 4:
            raise ValueError(f"channels must be at least 4 (the residual is channels // 4 wide), got {channels}")
        return channels

    def out_channels(self, c_in: int) -> int:
        return self.channels

    def render_label(self):
        return "RRB"

    def build(self, c_in: int):
        from archgraph.ops._layers import RRB as Layer

        return Layer(c_in, self.channels)

    def emit(self, c_in: int):
        return call("RRB", c_in, self.channels)

    def cost(self, t, x):
        # as _layers.RRB.forward: x = unify(x); leaky(norm(x + residual(x)))
        c = self.channels
        u = t.conv(x, c, 1)  # unify
        a = t.conv(u, c // 4, 3)  # residual.0
        b = t.bn(a)  # residual.1, then its leaky ReLU in place
        t.free(a)
        t.leaky_relu(b)
        r = t.conv(b, c, 3)  # residual.2
        t.free(b)
        total = t.add(u, r)  # u + r: a new tensor; the residual goes with the expression
        t.free(r)
        out = t.bn(total)  # norm, then its leaky ReLU in place
        t.free(total)
        t.leaky_relu(out)
        t.free(u)  # the unified map goes when forward returns
        return out
