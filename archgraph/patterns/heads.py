"""The HRNet heads that read several branches: HRNet-C classification and HRNetV2 segmentation.

(The pose head is a single 1x1 conv on the finest branch: a plain node, no pattern.)
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from archgraph.lang.values import Bool, PosInt, PosIntList
from archgraph.patterns import Fragment, Pattern, Scope, register
from archgraph.patterns.base import Sources


@register
class HRNetClassificationHead(Pattern):
    """HRNet-C head: a Bottleneck per branch, stride-2 convs finest to coarsest, 1x1 conv, pool, linear.

    As the official ``cls_hrnet.py``: ``y = incre[0](x[0])``; then for each coarser
    branch ``y = incre[i](x[i]) + downsamp[i-1](y)`` with downsamp = 3x3 stride-2
    conv (with bias) + BN + ReLU; then 1x1 conv (with bias) to ``features`` + BN +
    ReLU, global average pooling and a linear classifier.

    Writes ``<name>_incre<i>``, ``<name>_y<i>`` and the output node ``<name>``.
    """

    use: Literal["hrnet_cls_head"] = "hrnet_cls_head"
    src: Sources
    widths: PosIntList = Field([128, 256, 512, 1024], description="Bottleneck output width per branch")
    features: PosInt = Field(2048, description="width of the final 1x1 conv")
    classes: PosInt = Field(1000, description="number of classes")

    def expand(self, scope: Scope) -> Fragment:
        out = Fragment()
        inputs = scope.resolve(self.src)
        if len(inputs) != len(self.widths):
            scope.fail(f"{len(inputs)} inputs but {len(self.widths)} widths", "widths")
        y = None
        for i, (src, width) in enumerate(zip(inputs, self.widths)):
            body = [{"block": "bottleneck", "channels": width}]
            incre = out.node(name=f"{self.name}_incre{i}", stride=src.stride, channels=width, body=body)
            out.edge(src.name, incre)
            if y is None:
                y = incre
                continue
            y_next = out.node(name=f"{self.name}_y{i}", stride=src.stride, channels=width)
            out.edge(incre, y_next)
            out.edge(y, y_next, "downsample", act_last=True, bias=True)
            y = y_next
        head = [
            {"block": "conv", "channels": self.features, "kernel": 1, "bias": True},
            {"block": "global_avg_pool"},
            {"block": "linear", "features": self.classes},
        ]
        out.node(name=self.name, stride=inputs[-1].stride, channels=self.classes, body=head, output=True)
        out.edge(y, self.name)
        out.outputs = [self.name]
        return out


@register
class HRNetV2SegmentationHead(Pattern):
    """HRNetV2 head: upsample every branch to the finest, concat, 1x1 conv + BN + ReLU, 1x1 conv to classes.

    As the official ``seg_hrnet.py``: bilinear ``F.interpolate`` to the finest
    branch's size (``align_corners`` False in the Cityscapes configuration), concat
    along channels, ``last_layer`` = 1x1 conv (bias) + BN + ReLU + 1x1 conv (bias).
    The output stays at the finest branch's stride (no final upsampling).

    Writes the output node ``<name>``.
    """

    use: Literal["hrnetv2_seg_head"] = "hrnetv2_seg_head"
    src: Sources
    classes: PosInt = Field(19, description="number of classes")
    align_corners: Optional[Bool] = Field(False, description="of the bilinear upsampling")

    def expand(self, scope: Scope) -> Fragment:
        out = Fragment()
        inputs = scope.resolve(self.src)
        width = sum(node.channels for node in inputs)
        body = [
            {"block": "conv", "channels": width, "kernel": 1, "bias": True},
            {"block": "conv", "channels": self.classes, "kernel": 1, "bias": True, "bn": False, "act": "none"},
        ]
        finest = inputs[0]
        out.node(name=self.name, stride=finest.stride, channels=self.classes, merge="concat", body=body, output=True)
        for src in inputs:
            if src.stride == finest.stride:
                out.edge(src.name, self.name)
            else:
                out.edge(src.name, self.name, "upsample", project=False, mode="bilinear", size="target",
                         align_corners=self.align_corners)
        out.outputs = [self.name]
        return out
