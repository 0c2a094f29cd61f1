"""ResNet's residual blocks, as HRNet uses them (the seeds' BasicBlock and Bottleneck).

Every conv is followed by BN; ReLU comes after the residual sum. The shortcut is
the identity unless the width or the resolution changes, in which case it is a
1x1 (strided) conv + BN — the projection shortcut rule.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from archgraph.ops.base import BlockOp, conv_hw
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


@register
class Basic(_Residual):
    """ResNet BasicBlock: 3x3-BN-ReLU-3x3-BN + shortcut, ReLU (expansion 1)."""

    block: Literal["basic"] = "basic"

    def build(self, c_in: int):
        from archgraph.ops._layers import BasicBlock

        return BasicBlock(c_in, self.channels, self.stride)


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
