"""upconv: coarse to fine by a transposed convolution — U-Net's "up-convolution".

Ronneberger et al. (MICCAI 2015): "an upsampling of the feature map followed by a 2x2
convolution ('up-convolution') that halves the number of feature channels", written in
PyTorch as ``nn.ConvTranspose2d(c_in, c_out, kernel_size=2, stride=2)`` (with bias, no BN, no
activation: the concatenation and the 3x3 convs follow). For a stride ratio f = 2^k the
kernel and the stride are both f, so H×W is multiplied by f exactly:
(x − 1)·f + f = x·f. The edge maps the source's width to the target's merged width; since a
projecting edge cannot feed a ``concat`` (its width would be undefined), U-Net's decoder
writes the up-convolution into a node of its own, which the concat node then reads.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from archgraph.ops.base import EdgeOp, EdgeStyle, call, upward_stride_error
from archgraph.ops.registry import register
from archgraph.lang.values import Bool


@register
class UpConv(EdgeOp):
    """Coarse to fine: a transposed conv with kernel = stride = the stride ratio, to the target's width."""

    op: Literal["upconv"] = "upconv"
    bias: Bool = Field(True, description="conv bias (PyTorch's default for ConvTranspose2d)")

    def stride_error(self, src: int, dst: int) -> str | None:
        return upward_stride_error("upconv", src, dst)

    def out_hw(self, hw, src: int, dst: int):
        factor = src // dst
        return (hw[0] * factor, hw[1] * factor)

    def build(self, c_in: int, c_out: int, src: int, dst: int):
        from torch import nn

        factor = src // dst
        return nn.ConvTranspose2d(c_in, c_out, factor, factor, bias=self.bias)

    def emit(self, c_in: int, c_out: int, src: int, dst: int):
        factor = src // dst
        return call("nn.ConvTranspose2d", c_in, c_out, factor, factor, bias=self.bias)

    def cost(self, t, x, c_out, src, dst, hw):
        # every input element meets every weight once (kernel = stride: the windows do not overlap):
        # c_in x c_out x f² x H_in x W_in multiply-accumulates, which is also fvcore's count for a
        # transposed conv (N x prod(weight shape) x prod(input HxW))
        factor = src // dst
        weights = x.channels * c_out * factor * factor
        t.count("conv_mac", weights * x.hw[0] * x.hw[1])
        t.params += weights
        if self.bias:
            t.count("conv_bias", c_out * hw[0] * hw[1])
            t.params += c_out
        return t.new(c_out, hw)

    def render_style(self):
        return EdgeStyle("upconv", "upconv (transposed conv, coarse to fine)", "#56B4E9", "solid", "normal")
