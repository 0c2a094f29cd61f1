"""maxpool: a max-pooling window in a node's body — ResNet's stem, U-Net's contracting path.

``nn.MaxPool2d(kernel, stride, padding)`` with PyTorch's arithmetic (floor mode, dilation 1):
H×W goes to ⌊(x + 2p − k)/s⌋ + 1, as for a convolution. torchvision's ResNet stem pools with
``MaxPool2d(kernel_size=3, stride=2, padding=1)`` after its 7x7 stride-2 conv; U-Net halves
the resolution with ``MaxPool2d(2)`` (stride = kernel, PyTorch's default). No parameters;
the width is kept.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from archgraph.ops.base import BlockOp, call, conv_hw
from archgraph.ops.registry import register
from archgraph.lang.values import NonNegInt, PosInt


@register
class MaxPool(BlockOp):
    """kxk max pooling with a stride (default: the kernel) and padding; keeps the width."""

    block: Literal["maxpool"] = "maxpool"
    kernel: PosInt = Field(2, description="window size")
    stride: Optional[PosInt] = Field(None, description="default: the kernel, as PyTorch")
    padding: NonNegInt = Field(0, description="implicit -inf padding on each side")

    @model_validator(mode="after")
    def _padding_fits(self) -> "MaxPool":
        if 2 * self.padding > self.kernel:  # PyTorch: "pad should be at most half of effective kernel size"
            raise ValueError(f"padding ({self.padding}) must be at most half the kernel ({self.kernel})")
        return self

    @property
    def step(self) -> int:
        return self.kernel if self.stride is None else self.stride

    def stride_factor(self) -> int:
        return self.step

    def out_channels(self, c_in: int) -> int:
        return c_in

    def out_hw(self, hw):
        return conv_hw(hw, self.kernel, self.step, self.padding)

    def render_label(self):
        return f"maxpool{self.kernel}×{self.kernel}" + (f"/{self.step}" if self.step > 1 else "")

    def build(self, c_in: int):
        from torch import nn

        return nn.MaxPool2d(self.kernel, self.step, self.padding)

    def emit(self, c_in: int):
        return call("nn.MaxPool2d", self.kernel, self.step, *([self.padding] if self.padding else []))

    def cost(self, t, x):
        # one new tensor; each output element is the max of kernel² inputs: kernel² - 1 comparisons
        return t.max_pool(x, self.kernel, self.step, self.padding)
