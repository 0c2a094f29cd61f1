"""The end of a classification network: global average pooling, then a linear layer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from archgraph.ops.base import BlockOp, call
from archgraph.ops.registry import register
from archgraph.lang.values import Bool, PosInt


@register
class GlobalAvgPool(BlockOp):
    """Average each channel over HxW: (N, C, H, W) -> (N, C)."""

    block: Literal["global_avg_pool"] = "global_avg_pool"
    gives_vector = True

    def out_channels(self, c_in: int) -> int:
        return c_in

    def build(self, c_in: int):
        from archgraph.ops._layers import GlobalAvgPool as Layer

        return Layer()

    def emit(self, c_in: int):
        return call("GlobalAvgPool")

    def render_label(self):
        return "avg pool"

    def cost(self, t, x):
        return t.global_avg_pool(x)  # F.adaptive_avg_pool2d(x, 1): global_pool per input element; flatten: a view


@register
class Linear(BlockOp):
    """Fully connected layer on a pooled vector: (N, C) -> (N, features)."""

    block: Literal["linear"] = "linear"
    takes_vector = True
    gives_vector = True
    features: PosInt = Field(description="output features")
    bias: Bool = Field(True, description="bias")

    def out_channels(self, c_in: int) -> int:
        return self.features

    def build(self, c_in: int):
        from torch import nn

        return nn.Linear(c_in, self.features, bias=self.bias)

    def emit(self, c_in: int):
        return call("nn.Linear", c_in, self.features, bias=self.bias)

    def cost(self, t, x):
        return t.linear(x, self.features, self.bias)

    def render_label(self):
        return f"fc {self.features}"
