"""ResNet's residual blocks, as HRNet uses them (the official code's BasicBlock and Bottleneck).

Every conv is followed by BN; ReLU comes after the residual sum. The shortcut is
the identity unless the width or the resolution changes, in which case it is a
1x1 (strided) conv + BN — the projection shortcut rule.

``dilation`` dilates the block's ``conv2`` and pads it as much, keeping every stride: the
"variant D" trunk of SFNet (lxtGH/SFSegNets ``network/sfnet_resnet.py``, ``AlignNetResNet``)
sets ``m.dilation, m.padding = (d, d), (d, d)`` on every module of ``layer3``/``layer4`` whose
name holds ``conv2``, in the first block of a layer too. That is the BasicBlock's second 3x3
conv (its first, ``conv1``, keeps dilation 1 and carries the stride) and the Bottleneck's 3x3
conv, stride and all. torchvision's ``replace_stride_with_dilation`` differs: it drops the
stride, gives a layer's first block the previous dilation, and has no dilated BasicBlock.
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
    dilation: PosInt = Field(1, description="dilation (and padding) of conv2, the strides kept")

    def stride_factor(self) -> int:
        return self.stride

    def out_channels(self, c_in: int) -> int:
        return self.channels

    def out_hw(self, hw):
        # the strided 3x3 conv decides (padding = dilation keeps ⌊(x − 1)/s⌋ + 1 at any dilation)
        return conv_hw(hw, 3, self.stride, 1)

    def render_label(self):
        return self.tag + (f"/{self.stride}" if self.stride > 1 else "") + \
            (f" d{self.dilation}" if self.dilation > 1 else "")

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

        return BasicBlock(c_in, self.channels, self.stride, self.dilation)

    def emit(self, c_in: int):
        return call("BasicBlock", c_in, self.channels, self.stride, dilation=self.dilation)

    def cost(self, t, x):
        # as _layers.BasicBlock.forward, line for line: ``out = f(out)`` drops the old ``out`` once f returns
        d = self.dilation
        out = _then(t, t.conv(x, self.channels, 3, self.stride, 1), t.bn)  # conv1, bn1
        out = t.relu(out)
        out = _then(t, _then(t, out, lambda v: t.conv(v, self.channels, 3, 1, d, dilation=d)), t.bn)  # conv2, bn2
        residual = self._shortcut(t, x)
        t.add(out, residual, inplace=True)  # out += residual
        t.free(residual)
        return t.relu(out)


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

        return Layer(c_in, self.channels // self.expansion, self.channels, self.stride, self.dilation)

    def emit(self, c_in: int):
        return call("Bottleneck", c_in, self.channels // self.expansion, self.channels, self.stride,
                    dilation=self.dilation)

    def cost(self, t, x):
        # as _layers.Bottleneck.forward, line for line
        planes, d = self.channels // self.expansion, self.dilation
        out = t.relu(_then(t, t.conv(x, planes, 1, 1, 0), t.bn))  # conv1, bn1, relu
        out = t.relu(_then(t, _then(t, out, lambda v: t.conv(v, planes, 3, self.stride, d, dilation=d)),
                           t.bn))  # conv2, bn2, relu
        out = _then(t, _then(t, out, lambda v: t.conv(v, self.channels, 1, 1, 0)), t.bn)  # conv3, bn3
        residual = self._shortcut(t, x)
        t.add(out, residual, inplace=True)  # out += residual
        t.free(residual)
        return t.relu(out)


def _then(t, out, layer):
    """``out = layer(out)``: the new value exists before the old one goes (when it was the block's own)."""
    new = layer(out)
    t.free(out)
    return new
