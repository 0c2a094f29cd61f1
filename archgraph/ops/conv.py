"""conv-bn-act, the one plain convolution primitive, in its three roles.

* ``block: conv`` — a layer in a node's body with its own width and stride
  (HRNet's stem, the heads' 1x1 convs);
* ``op: conv`` — an edge at equal strides that maps the source to the target's
  width (HRNet's transition when a branch changes width: 3x3 conv + BN + ReLU);
* ``op: lateral`` — FPN's lateral 1x1 conv: the same edge with FPN's defaults
  (bias, no BN, no activation).
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from archgraph.ops.base import Act, BlockOp, EdgeOp, EdgeStyle, call, conv_hw
from archgraph.ops.registry import register
from archgraph.lang.values import Bool, Choice, NonNegInt, PosInt


def _build(c_in: int, c_out: int, kernel: int, stride: int, padding: int | None, bias: bool, bn: bool, act: str,
           dilation: int = 1):
    from archgraph.ops._layers import conv_bn_act

    return conv_bn_act(c_in, c_out, kernel, stride, padding, bias=bias, bn=bn, act=act, dilation=dilation)


@register
class ConvBlock(BlockOp):
    """kxk conv -> [BN] -> [ReLU] with its own output width and stride."""

    block: Literal["conv"] = "conv"
    channels: PosInt = Field(description="output width")
    kernel: PosInt = Field(3, description="kernel size")
    stride: PosInt = Field(1, description="conv stride")
    padding: Optional[NonNegInt] = Field(None, description="default: dilation * (kernel // 2)")
    dilation: PosInt = Field(1, description="spacing of the kernel's taps (atrous conv)")
    bias: Bool = Field(False, description="conv bias")
    bn: Bool = Field(True, description="BatchNorm after the conv")
    act: Choice("relu", "leaky_relu", "none") = Field(  # type: ignore[valid-type]
        "relu", description="activation after the BN (leaky_relu: slope 0.01, as AlignSeg's InPlaceABNSync)"
    )

    def stride_factor(self) -> int:
        return self.stride

    def out_channels(self, c_in: int) -> int:
        return self.channels

    def out_hw(self, hw):
        padding = self.dilation * (self.kernel // 2) if self.padding is None else self.padding
        return conv_hw(hw, self.kernel, self.stride, padding, self.dilation)

    def build(self, c_in: int):
        return _build(c_in, self.channels, self.kernel, self.stride, self.padding, self.bias, self.bn, self.act,
                      self.dilation)

    def emit(self, c_in: int):
        return call("conv_bn_act", c_in, self.channels, self.kernel, self.stride, self.padding,
                    bias=self.bias, bn=self.bn, act=self.act, dilation=self.dilation)

    def cost(self, t, x):
        return t.conv_bn_act(x, self.channels, self.kernel, self.stride, self.padding, self.bias, self.bn, self.act,
                             self.dilation)

    def render_label(self):
        return f"conv{self.kernel}×{self.kernel}" + (f"/{self.stride}" if self.stride > 1 else "") + \
            (f" d{self.dilation}" if self.dilation > 1 else "")


@register
class ConvEdge(EdgeOp):
    """kxk conv -> [BN] -> [ReLU] at equal strides, to the target's width."""

    op: Literal["conv"] = "conv"
    kernel: PosInt = Field(3, description="kernel size (odd: padding keeps HxW)")
    bias: Bool = Field(False, description="conv bias")
    bn: Bool = Field(True, description="BatchNorm after the conv")
    act: Act = Field("relu", description="activation after the BN")

    def stride_error(self, src: int, dst: int) -> str | None:
        if src != dst:
            return f"{self.op} joins equal strides, but goes from stride {src} to {dst}"
        if self.kernel % 2 == 0:
            return f"{self.op} needs an odd kernel to keep HxW, got {self.kernel}"
        return None

    def build(self, c_in: int, c_out: int, src: int, dst: int):
        return _build(c_in, c_out, self.kernel, 1, None, self.bias, self.bn, self.act)

    def emit(self, c_in: int, c_out: int, src: int, dst: int):
        return call("conv_bn_act", c_in, c_out, self.kernel, 1, None, bias=self.bias, bn=self.bn, act=self.act)

    def cost(self, t, x, c_out, src, dst, hw):
        return t.conv_bn_act(x, c_out, self.kernel, 1, None, self.bias, self.bn, self.act)

    def render_style(self):  # lateral too: one kind, a conv at equal strides
        return EdgeStyle("conv", "conv / lateral (same stride)", "#009E73", "solid", "box")


@register
class Lateral(ConvEdge):
    """FPN's lateral connection: 1x1 conv (with bias) to the target's width."""

    op: Literal["lateral"] = "lateral"  # type: ignore[assignment]
    kernel: Literal[1] = Field(1, description="always 1")  # type: ignore[assignment]
    bias: Bool = Field(True, description="conv bias")
    bn: Bool = Field(False, description="BatchNorm after the conv")
    act: Act = Field("none", description="activation after the conv")
