"""crp: RefineNet's chained residual pooling — context from ever larger windows, summed.

Lin, Milan, Shen and Reid, "RefineNet: Multi-Path Refinement Networks for High-Resolution Semantic
Segmentation", CVPR 2017, section 3.2: "a chain of multiple pooling blocks, each consisting of one
max-pooling layer and one convolution layer. One pooling block takes the output of the previous
pooling block as input ... The output feature maps of all pooling blocks are fused together with the
input feature map through summation of residual connections", with a ReLU first. As code:

    x = relu(x); top = x
    for i in 1..n:  top = conv_i(maxpool5x5_s1_p2(top));  x = top + x

The paper has n = 2 blocks with 3x3 convs; the released model (DrSleep/refinenet-pytorch) 4;
Light-Weight RefineNet (Nekrasov et al., BMVC 2018) n = 4 with 1x1 convs and the ReLU before the
block. Convs have no bias and keep the width. Layer: ``_layers.ChainedResidualPool``, whose convs
are ``1_outvar_dimred`` ... ``n_outvar_dimred`` as in DrSleep's ``CRPBlock``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from archgraph.lang.values import Bool, PosInt
from archgraph.ops.base import BlockOp, call
from archgraph.ops.registry import register

POOL = 5  # the pooling window: 5x5, stride 1, padding 2 (keeps HxW)


@register
class CRP(BlockOp):
    """Chained residual pooling: [ReLU], then n x (5x5 max-pool, conv) chained, each added to a running sum."""

    block: Literal["crp"] = "crp"
    n: PosInt = Field(2, description="pooling blocks in the chain (paper: 2; light-weight: 4)")
    kernel: PosInt = Field(3, description="kernel of each block's conv (paper: 3; light-weight: 1)")
    relu: Bool = Field(True, description="ReLU on the input first (not in place)")

    @field_validator("kernel")
    @classmethod
    def _odd(cls, kernel: int) -> int:
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd to keep HxW, got {kernel}")
        return kernel

    def out_channels(self, c_in: int) -> int:
        return c_in

    def render_label(self):
        return f"CRP({self.n}" + ("" if self.kernel == 3 else f", {self.kernel}×{self.kernel}") + ")"

    def build(self, c_in: int):
        from archgraph.ops._layers import ChainedResidualPool

        return ChainedResidualPool(c_in, self.n, self.kernel, self.relu)

    def emit(self, c_in: int):
        return call("ChainedResidualPool", c_in, self.n, self.kernel, self.relu)

    def cost(self, t, x):
        # as _layers.ChainedResidualPool.forward, line for line
        c = x.channels
        if self.relu:
            x = t.relu(x, inplace=False)  # x = F.relu(x)
        top = x
        for _ in range(self.n):
            pooled = t.max_pool(top, POOL, 1, POOL // 2)  # F.max_pool2d(top, 5, 1, 2): same HxW
            out = t.conv(pooled, c, self.kernel)
            t.free(pooled)
            if top is not x:
                t.free(top)  # top = conv(...) drops the previous block's output
            top = out
            total = t.add(top, x)  # x = top + x: a new tensor
            t.free(x)  # the previous sum (never the op's input: that is not the op's to free)
            x = total
        t.free(top)
        return x
