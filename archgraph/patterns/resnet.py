"""resnet: torchvision's ResNet-18/34/50/101/152 as four resolution nodes C2..C5 (no pooling, no fc).

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, as torchvision builds it
(``torchvision/models/resnet.py``):

* stem: ``conv1`` 7x7 stride-2 conv (padding 3, no bias) to 64 + ``bn1`` + ReLU, then
  ``maxpool`` 3x3 stride 2 padding 1: stride 4;
* ``layer1`` .. ``layer4``: 64, 128, 256, 512 planes, BasicBlocks (expansion 1; depth 18 and 34)
  or Bottlenecks (expansion 4; depth 50, 101, 152), [2, 2, 2, 2], [3, 4, 6, 3], [3, 4, 6, 3],
  [3, 4, 23, 3], [3, 8, 36, 3] blocks; the first block of layers 2-4 has stride 2 (on the 3x3
  conv of a Bottleneck: torchvision's "ResNet v1.5"), and the first block of a layer has the
  1x1 conv + BN projection shortcut when its stride or width changes (``downsample``).

The layers are FPN's C2..C5 at strides 4, 8, 16, 32 (times the input's stride) with 64, 128,
256, 512 x expansion channels. Writes ``<name>_stem`` and ``<name>_c2`` .. ``<name>_c5``; its
outputs are C2..C5. The blocks' state-dict keys are torchvision's below the node:
``layer3.5.conv2.weight`` is ``nodes.<name>_c4.5.conv2.weight``, ``conv1``/``bn1`` are
``nodes.<name>_stem.0.0``/``.0.1``.

``stem: deep`` replaces the 7x7 conv by three 3x3 convs + BN + ReLU (64 stride 2, 64, 128), the
"deep stem" of ResNet-C (He et al., "Bag of Tricks for Image Classification with Convolutional
Neural Networks", CVPR 2019) that SFNet's and AlignSeg's backbones use (lxtGH/SFSegNets
``network/resnet_d.py``: ``conv1`` = 3x3 s2 64, 3x3 64, 3x3 128, then ``bn1``): the stem is then
128 wide, and ``layer1``'s first block gets a projection shortcut from 128 channels (ResNet-18/34
too). Its convs are ``nodes.<name>_stem.0.0``, ``.1.0`` and ``.2.0``, each with its BN at ``.1``.

``ceil_mode: true`` makes the stem's max pool round up (``MaxPool2d(3, 2, 1, ceil_mode=True)``), as
AlignSeg's trunk does (speedinghzl/AlignSeg ``networks/alignseg.py``): a 1024x2048 input is then
257x513 at "stride 4", 33x65 at "stride 32", and the strides are nominal. Parameters stay.

``dilation`` gives each layer's blocks a dilation for their ``conv2``, padded as much, every stride
kept: ``[1, 1, 2, 4]`` is SFNet's trunk, which the official code calls "variant D"
(``network/sfnet_resnet.py``, ``AlignNetResNet``; :mod:`archgraph.ops.residual` says which convs).
The numbers, not that name: they are what the code sets, and "ResNet-D" in "Bag of Tricks" is
another change (an average-pooled shortcut). Shapes, parameters and FLOPs stay; outputs change.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from archgraph.lang.values import Bool, Choice, PosInt, PosIntList
from archgraph.patterns import Fragment, Pattern, Scope, register
from archgraph.patterns.base import Sources

# depth -> (block, expansion, blocks per layer), as torchvision's resnet18 ... resnet152
DEPTHS: dict[int, tuple[str, int, tuple[int, int, int, int]]] = {
    18: ("basic", 1, (2, 2, 2, 2)),
    34: ("basic", 1, (3, 4, 6, 3)),
    50: ("bottleneck", 4, (3, 4, 6, 3)),
    101: ("bottleneck", 4, (3, 4, 23, 3)),
    152: ("bottleneck", 4, (3, 8, 36, 3)),
}
PLANES = (64, 128, 256, 512)


@register
class ResNet(Pattern):
    """torchvision's ResNet without its pooling and fc: a stride-4 stem, then C2..C5 at strides 4-32."""

    use: Literal["resnet"] = "resnet"
    src: Sources
    depth: PosInt = Field(50, description="18, 34 (BasicBlock) or 50, 101, 152 (Bottleneck)")
    output: Bool = Field(False, description="mark C2..C5 as outputs of the network")
    stem: Choice("torchvision", "deep") = Field(  # type: ignore[valid-type]
        "torchvision", description="'torchvision': 7x7 conv to 64; 'deep': three 3x3 convs to 128 (ResNet-C)"
    )
    dilation: PosIntList = Field([1, 1, 1, 1], description="per layer, the blocks' conv2 dilation (strides kept)")
    ceil_mode: Bool = Field(False, description="the stem's max pool rounds its output size up (AlignSeg's trunk)")

    @field_validator("depth")
    @classmethod
    def _known_depth(cls, depth: int) -> int:
        if depth not in DEPTHS:
            raise ValueError(f"depth must be one of {', '.join(map(str, DEPTHS))}, got {depth}")
        return depth

    @field_validator("dilation")
    @classmethod
    def _per_layer(cls, dilation: list[int]) -> list[int]:
        if len(dilation) != len(PLANES):
            raise ValueError(f"dilation needs one value per layer (4), got {len(dilation)}")
        return dilation

    def expand(self, scope: Scope) -> Fragment:
        out = Fragment()
        inputs = scope.resolve(self.src)
        if len(inputs) != 1:
            scope.fail(f"a ResNet reads one input, got {len(inputs)}", "from")
        block, expansion, layers = DEPTHS[self.depth]
        src = inputs[0]
        stride = src.stride * 4
        pool = {"block": "maxpool", "kernel": 3, "stride": 2, "padding": 1}
        if self.ceil_mode:
            pool["ceil_mode"] = True
        if self.stem == "deep":
            stem = [{"block": "conv", "channels": 64, "stride": 2}, {"block": "conv", "channels": 64},
                    {"block": "conv", "channels": 128}, pool]
        else:
            stem = [{"block": "conv", "channels": 64, "kernel": 7, "stride": 2, "padding": 3}, pool]
        stem_width = stem[-2]["channels"]
        prev = out.node(name=f"{self.name}_stem", stride=stride, channels=stem_width, body=stem)
        out.edge(src.name, prev)
        for k, (planes, blocks, dilation) in enumerate(zip(PLANES, layers, self.dilation)):
            width, first = planes * expansion, 1 if k == 0 else 2
            stride *= first
            dilated = {"dilation": dilation} if dilation > 1 else {}
            body = [{"block": block, "channels": width, **({"stride": first} if first > 1 else {}), **dilated}]
            if blocks > 1:
                body.append({"block": block, "channels": width, **({"repeat": blocks - 1} if blocks > 2 else {}),
                             **dilated})
            name = out.node(name=f"{self.name}_c{k + 2}", stride=stride, channels=width, body=body,
                            output=True if self.output else None)
            out.edge(prev, name)
            out.outputs.append(name)
            prev = name
        return out
