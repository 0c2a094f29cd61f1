"""maxpool: a max-pooling window in a node's body — ResNet's stem, U-Net's contracting path.

``nn.MaxPool2d(kernel, stride, padding, ceil_mode=...)`` with PyTorch's arithmetic (dilation 1):
H×W goes to ⌊(x + 2p − k)/s⌋ + 1, as for a convolution, or with ``ceil_mode`` to
⌈(x + 2p − k)/s⌉ + 1, less one where the last window would start past the input and its left
padding (``ops.base.pool_hw``). torchvision's ResNet stem pools with
``MaxPool2d(kernel_size=3, stride=2, padding=1)`` after its 7x7 stride-2 conv; AlignSeg's trunk
with the same window in ceil mode (speedinghzl/AlignSeg, ``networks/alignseg.py``), which takes
a 512x1024 map to 257x513 rather than 256x512; U-Net halves the resolution with
``MaxPool2d(2)`` (stride = kernel, PyTorch's default). No parameters; the width is kept.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from archgraph.ops.base import BlockOp, call, pool_hw
from archgraph.ops.registry import register
from archgraph.lang.values import Bool, NonNegInt, PosInt


@register
class MaxPool(BlockOp):
    """kxk max pooling with a stride (default: the kernel) and padding; keeps the width."""

    block: Literal["maxpool"] = "maxpool"
    kernel: PosInt = Field(2, description="window size")
    stride: Optional[PosInt] = Field(None, description="default: the kernel, as PyTorch")
    padding: NonNegInt = Field(0, description="implicit -inf padding on each side")
    ceil_mode: Bool = Field(False, description="round the output size up (PyTorch's ceil_mode)")

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
        return pool_hw(hw, self.kernel, self.step, self.padding, self.ceil_mode)

    def render_label(self):
        return f"maxpool{self.kernel}×{self.kernel}" + (f"/{self.step}" if self.step > 1 else "")

    def build(self, c_in: int):
        from torch import nn

        return nn.MaxPool2d(self.kernel, self.step, self.padding, ceil_mode=self.ceil_mode)

    def emit(self, c_in: int):
        return call("nn.MaxPool2d", self.kernel, self.step, *([self.padding] if self.padding else []),
                    **({"ceil_mode": True} if self.ceil_mode else {}))

    def cost(self, t, x):
        # one new tensor; each output element is the max of kernel² inputs: kernel² - 1 comparisons
        return t.max_pool(x, self.kernel, self.step, self.padding, self.ceil_mode)
