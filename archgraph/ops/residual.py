"""ResNet's residual blocks, as HRNet uses them (the official code's BasicBlock and Bottleneck).

Every conv is followed by BN; ReLU comes after the residual sum. The shortcut is
the identity unless the width or the resolution changes, in which case it is a
1x1 (strided) conv + BN — the projection shortcut rule.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from archgraph.ops.base import BlockOp, call, conv_hw
from archgraph.ops.registry import register
from archgraph.lang.values import PosInt


class _Residual(BlockOp):
    channels: PosInt = Field(description="output width")
    stride: PosInt = Field(1, description="stride of the 3x3 conv (and of the projection)")

    def stride_factor(self) -> int:
        return self.stride

    def out_channels(self, c_in: int) -> int:
        return self.channels

    def out_hw(self, hw):
        return conv_hw(hw, 3, self.stride, 1)

    def render_label(self):
        return self.tag + (f"/{self.stride}" if self.stride > 1 else "")

    def _shortcut(self, t, x):
        """The residual: ``x`` itself, or the projection (1x1 conv, strided, + BN) when shape changes."""
        if self.stride != 1 or x.channels != self.channels:
            return t.conv_bn_act(x, self.channels, 1, self.stride, 0, act="none")
        return x


@register
class Basic(_Residual):
    """ResNet BasicBlock: 3x3-BN-ReLU-3x3-BN + shortcut, ReLU (expansion 1)."""

    block: Literal["basic"] = "basic"

    def build(self, c_in: int):
        from archgraph.ops._layers import BasicBlock

        return BasicBlock(c_in, self.channels, self.stride)

    def emit(self, c_in: int):
        return call("BasicBlock", c_in, self.channels, self.stride)

    def cost(self, t, x):
        # as _layers.BasicBlock.forward, line for line
        residual = self._shortcut(t, x)
        out = t.conv_bn_act(x, self.channels, 3, self.stride, 1)  # relu(bn1(conv1(x)))
        y = t.conv_bn_act(out, self.channels, 3, 1, 1, act="none")  # bn2(conv2(out))
        t.free(out)
        t.add(y, residual, inplace=True)  # out += residual
        t.free(residual)
        return t.relu(y)


@register
class Bottleneck(_Residual):
    """ResNet Bottleneck: 1x1-3x3-1x1 with BN + shortcut, ReLU; inner width = channels / expansion."""

    block: Literal["bottleneck"] = "bottleneck"
    expansion: PosInt = Field(4, description="output width / inner width")

    @model_validator(mode="after")
    def _divisible(self) -> "Bottleneck":
        if self.channels % self.expansion:
            raise ValueError(f"channels ({self.channels}) must be a multiple of expansion ({self.expansion})")
        return self

    def build(self, c_in: int):
        from archgraph.ops._layers import Bottleneck as Layer

        return Layer(c_in, self.channels // self.expansion, self.channels, self.stride)

    def emit(self, c_in: int):
        return call("Bottleneck", c_in, self.channels // self.expansion, self.channels, self.stride)

    def cost(self, t, x):
        # as _layers.Bottleneck.forward, line for line
        planes = self.channels // self.expansion
        residual = self._shortcut(t, x)
        out1 = t.conv_bn_act(x, planes, 1, 1, 0)  # relu(bn1(conv1(x)))
        out2 = t.conv_bn_act(out1, planes, 3, self.stride, 1)  # relu(bn2(conv2(out)))
        t.free(out1)
        out3 = t.conv_bn_act(out2, self.channels, 1, 1, 0, act="none")  # bn3(conv3(out))
        t.free(out2)
        t.add(out3, residual, inplace=True)
        t.free(residual)
        return t.relu(out3)
