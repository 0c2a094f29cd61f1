"""ppm: PSPNet's pyramid pooling module in a node's body — global context at several bin sizes.

Zhao et al., "Pyramid Scene Parsing Network", CVPR 2017, as SFNet's decoder uses it on C5
(``PSPModule`` in lxtGH/SFSegNets, ``network/nn/operators.py``): for each bin size b, adaptive
average pooling to b x b, a 1x1 conv (no bias) to ``channels`` and BN (no ReLU: SFNet's stages
have none, PSPNet's do), resized bilinearly (align_corners=True) back to the input's size; the
stages and the input itself are concatenated (input last), then a 1x1 conv (no bias) + BN + ReLU
+ Dropout2d maps them to ``channels``. H×W is kept.

The pooled maps (1x1 ... 6x6) are at no stride of the graph, which is why this is one block rather
than nodes and edges. Layer: ``_layers.PyramidPooling``, whose keys are the official ones
(``stages.<i>.1`` conv, ``stages.<i>.2`` BN, ``bottleneck.0`` conv, ``bottleneck.1`` BN).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from archgraph.lang.values import Float, PosInt, PosIntList
from archgraph.ops.base import BlockOp, Code, call
from archgraph.ops.registry import register


@register
class PPM(BlockOp):
    """Pyramid pooling: per bin size, adaptive avg pool + 1x1 conv + BN, resized back; concat with the input; 1x1 conv."""

    block: Literal["ppm"] = "ppm"
    channels: PosInt = Field(description="output width, and the width of every stage")
    bins: PosIntList = Field([1, 2, 3, 6], description="output sizes of the adaptive average pools")
    dropout: Float = Field(0.1, description="Dropout2d probability after the last ReLU (training only)")

    @field_validator("bins")
    @classmethod
    def _some_bins(cls, bins: list[int]) -> list[int]:
        if not bins:
            raise ValueError("a pyramid needs at least one bin size")
        return bins

    @field_validator("dropout")
    @classmethod
    def _probability(cls, p: float) -> float:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        return p

    def out_channels(self, c_in: int) -> int:
        return self.channels

    def render_label(self):
        return f"ppm({','.join(map(str, self.bins))})"

    def build(self, c_in: int):
        from archgraph.ops._layers import PyramidPooling

        return PyramidPooling(c_in, self.channels, tuple(self.bins), self.dropout)

    def emit(self, c_in: int):
        bins = Code("(" + ", ".join(map(str, self.bins)) + ("," if len(self.bins) == 1 else "") + ")")
        return call("PyramidPooling", c_in, self.channels, bins, float(self.dropout))

    def cost(self, t, x):
        # as _layers.PyramidPooling.forward: each stage (pool, conv, BN; Sequential drops each input), resized
        # back; the stages and the input concatenated; conv, BN, ReLU in place; eval dropout returns its input
        priors = []
        for b in self.bins:
            pooled = t.adaptive_avg_pool(x, b)
            conv = t.conv(pooled, self.channels, 1)
            t.free(pooled)
            norm = t.bn(conv)
            t.free(conv)
            priors.append(t.upsample(norm, "bilinear", x.hw))
            t.free(norm)
        both = t.concat([*priors, x])
        y = t.conv_bn_act(both, self.channels, 1)  # the bottleneck: conv, BN, ReLU in place
        t.free(both, *priors)  # the concatenation (its argument) and the list ``priors`` go when forward returns
        return y
