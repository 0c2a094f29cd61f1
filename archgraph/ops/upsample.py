"""upsample: coarse to fine by a power of two — FPN's top-down path, HRNet's f_ij for j > i.

HRNet: 1x1 conv (no bias) + BN to the target's width, then nearest upsampling by
2**(j-i) (``fuse_layers[i][j]`` = conv, BN, Upsample). HRNetV2's segmentation head
and FPN upsample without a projection; HRNetV2 resizes bilinearly to the finest
map's size rather than by a factor (``size: target``); SFNet resizes its stride-4 logits to the
network input's size (``main_out = Upsample(x, x_size[2:])``: ``size: input``), which a factor of
4 gives only where H and W are multiples of 4. RefineNet's multi-resolution fusion projects each
coarser input with a 3x3 conv without BN before upsampling it (``kernel: 3, bn: false``;
Light-Weight RefineNet: 1x1).
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from archgraph.ops.base import Code, EdgeOp, EdgeStyle, Why, call, upward_stride_error
from archgraph.ops.registry import register
from archgraph.lang.values import Bool, Choice, PosInt


@register
class Upsample(EdgeOp):
    """Coarse to fine: [kxk conv (1x1) + BN to the target width], then resize by the stride ratio (or to a size)."""

    op: Literal["upsample"] = "upsample"
    mode: Choice("nearest", "bilinear") = Field("nearest", description="interpolation mode")  # type: ignore[valid-type]
    align_corners: Optional[Bool] = Field(None, description="for bilinear; None is PyTorch's default (False)")
    project: Bool = Field(True, description="1x1 conv + BN to the target's width before upsampling")
    size: Choice("scale", "target", "input") = Field(  # type: ignore[valid-type]
        "scale", description="'scale': multiply HxW by the ratio; 'target': resize to the target node's HxW; "
                             "'input': resize to the network input's HxW (into stride 1 only)"
    )
    kernel: PosInt = Field(1, description="kernel of the projecting conv (odd: padding keeps HxW)")
    bn: Bool = Field(True, description="BatchNorm after the projecting conv")

    @property
    def projects(self) -> bool:
        return self.project

    @property
    def adopts_size(self) -> bool:
        return self.size == "target"

    @property
    def takes_input_size(self) -> bool:
        return self.size == "input"

    def stride_error(self, src: int, dst: int) -> str | None:
        if (error := upward_stride_error("upsample", src, dst)) is not None:
            return error
        if self.project and self.kernel % 2 == 0:
            return f"upsample's projection needs an odd kernel to keep HxW, got {self.kernel}"
        if self.size == "input" and dst != 1:
            return Why(f"size: input resizes to the network input's HxW, at stride 1, but the edge arrives at "
                       f"stride {dst}", "size", f"only a node that merges at stride 1 can take the input's size; "
                       f"to arrive at stride {dst}, use size: scale or size: target")
        return None

    def out_hw(self, hw, src: int, dst: int):
        factor = src // dst
        return (hw[0] * factor, hw[1] * factor)

    def build(self, c_in: int, c_out: int, src: int, dst: int):
        from torch import nn

        from archgraph.ops._layers import ResizeTo, conv_bn_act

        align = self.align_corners if self.mode == "bilinear" else None
        if self.size != "scale":  # to the target's or the input's size, given when called
            project = conv_bn_act(c_in, c_out, self.kernel, bn=self.bn, act="none") if self.project else None
            return ResizeTo(project, self.mode, align)
        up = nn.Upsample(scale_factor=src // dst, mode=self.mode, align_corners=align)
        if not self.project:
            return up
        return nn.Sequential(*conv_bn_act(c_in, c_out, self.kernel, bn=self.bn, act="none"), up)

    def emit(self, c_in: int, c_out: int, src: int, dst: int):
        align = self.align_corners if self.mode == "bilinear" else None
        project = call("conv_bn_act", c_in, c_out, self.kernel, bn=self.bn, act="none") if self.project else None
        if self.size != "scale":
            return call("ResizeTo", project, self.mode, align)
        extra = {} if align is None else {"align_corners": align}
        up = call("nn.Upsample", scale_factor=src // dst, mode=self.mode, **extra)
        return call("nn.Sequential", Code("*" + project), up) if project else up

    def cost(self, t, x, c_out, src, dst, hw):
        # as build: [kxk conv + BN], then the resize to hw (src/dst times x's size, the target's or the input's)
        y = t.conv_bn_act(x, c_out, self.kernel, bn=self.bn, act="none") if self.project else x
        z = t.upsample(y, self.mode, hw)
        t.free(y)
        return z

    def render_style(self):
        return EdgeStyle("upsample", "upsample (coarse to fine)", "#0072B2", "dashed", "normal")
