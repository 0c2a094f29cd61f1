"""rcu: RefineNet's residual conv unit — ReLU-conv3x3-ReLU-conv3x3 plus the identity, no BN.

Lin et al., CVPR 2017, section 3.2: "each input path is passed through two residual convolution
units (RCU), which is a simplified version of the convolution unit in the original ResNet, where
the batch-normalization layers are removed"; the output of every RefineNet block is one more RCU.
The width is kept. Biases as in the released model (DrSleep/refinenet-pytorch's ``RCUBlock``,
thomasjpfan/pytorch_refinenet's ``ResidualConvUnit``): the first conv has one, the second not.
Layer: ``_layers.ResidualConvUnit`` (``conv1``, ``conv2``).
"""

from __future__ import annotations

from typing import Literal

from archgraph.ops.base import BlockOp, call
from archgraph.ops.registry import register


@register
class RCU(BlockOp):
    """Residual conv unit: ReLU, 3x3 conv (bias), ReLU, 3x3 conv, plus the input; keeps the width."""

    block: Literal["rcu"] = "rcu"

    def out_channels(self, c_in: int) -> int:
        return c_in

    def render_label(self):
        return "RCU"

    def build(self, c_in: int):
        from archgraph.ops._layers import ResidualConvUnit

        return ResidualConvUnit(c_in)

    def emit(self, c_in: int):
        return call("ResidualConvUnit", c_in)

    def cost(self, t, x):
        # as _layers.ResidualConvUnit.forward, line for line
        a = t.relu(x, inplace=False)  # F.relu(x): x is the residual
        out = t.conv(a, x.channels, 3, bias=True)  # conv1
        t.free(a)
        t.relu(out)  # in place
        y = t.conv(out, x.channels, 3)  # conv2
        t.free(out)
        return t.add(y, x, inplace=True)  # out += x
