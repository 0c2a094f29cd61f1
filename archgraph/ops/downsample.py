"""downsample: fine to coarse by a chain of stride-2 convs — HRNet's f_ij for j < i.

One link per halving: 3x3 stride-2 conv + BN, ReLU after every link but the last.
The last link maps to the target's width, the others keep the source's. With
``act_last`` the last link gets its ReLU too: that is HRNet's transition to a new
branch, and (with ``bias``) the HRNet-C head's ``downsamp_modules``.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from archgraph.ops.base import EdgeOp, EdgeStyle, call, conv_hw, halvings
from archgraph.ops.registry import register
from archgraph.lang.values import Bool, PosInt


@register
class Downsample(EdgeOp):
    """Fine to coarse: one 3x3 stride-2 conv + BN per halving, ReLU between links."""

    op: Literal["downsample"] = "downsample"
    links: Optional[PosInt] = Field(None, description="number of stride-2 links; must match the stride ratio")
    act_last: Bool = Field(False, description="ReLU after the last link too (HRNet transitions)")
    bias: Bool = Field(False, description="conv bias")

    def stride_error(self, src: int, dst: int) -> str | None:
        k = halvings(src, dst)
        if k is None:
            return (
                f"downsample must go from a finer to a coarser stride by a power of two, "
                f"but goes from stride {src} to {dst}"
            )
        if self.links is not None and self.links != k:
            return f"stride {src} to {dst} takes {k} stride-2 link(s), but links is {self.links}"
        return None

    def out_hw(self, hw, src: int, dst: int):
        for _ in range(halvings(src, dst) or 0):
            hw = conv_hw(hw, 3, 2, 1)
        return hw

    def build(self, c_in: int, c_out: int, src: int, dst: int):
        from torch import nn

        from archgraph.ops._layers import conv_bn_act

        k = halvings(src, dst)
        links = []
        for i in range(k):
            last = i == k - 1
            act = "relu" if not last or self.act_last else "none"
            links.append(conv_bn_act(c_in, c_out if last else c_in, 3, 2, 1, bias=self.bias, act=act))
        return nn.Sequential(*links)

    def emit(self, c_in: int, c_out: int, src: int, dst: int):
        k = halvings(src, dst) or 0
        links = [
            call("conv_bn_act", c_in, c_out if i == k - 1 else c_in, 3, 2, 1, bias=self.bias,
                 act="relu" if i < k - 1 or self.act_last else "none")
            for i in range(k)
        ]
        return call("nn.Sequential", *links)

    def cost(self, t, x, c_out, src, dst, hw):
        k = halvings(src, dst) or 0
        y = x
        for i in range(k):
            last = i == k - 1
            act = "relu" if not last or self.act_last else "none"
            z = t.conv_bn_act(y, c_out if last else x.channels, 3, 2, 1, bias=self.bias, act=act)
            t.free(y)  # the Sequential drops a link's input once the link has returned
            y = z
        return y

    def render_style(self):
        return EdgeStyle("downsample", "downsample (stride-2 convs)", "#D55E00", "solid", "vee")
