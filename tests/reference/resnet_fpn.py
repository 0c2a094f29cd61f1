"""Self-contained ports of torchvision's ResNet and FPN and of FroyoZzz's FPN code, used as test oracles.

torchvision is not installed here, so the code itself is ported (BSD 3-Clause License,
Copyright (c) Soumith Chintala 2016, and the torchvision contributors):

- ``torchvision/models/resnet.py`` (pytorch/vision, commit 054e54c): ``conv3x3``, ``conv1x1``,
  ``BasicBlock``, ``Bottleneck``, ``ResNet``, ``resnet18`` ... ``resnet152``;
- ``torchvision/models/_utils.py``: ``IntermediateLayerGetter``;
- ``torchvision/ops/feature_pyramid_network.py`` (commit 032024e): ``FeaturePyramidNetwork``
  (its lateral and output convs are plain ``nn.Conv2d`` with bias in that version; later
  versions wrap them in ``Conv2dNormActivation``, which adds a ``.0`` to the keys and nothing
  else);
- ``torchvision/models/detection/backbone_utils.py``: ``BackboneWithFPN``.

What was changed, and only this: the ``groups``/``width_per_group``/``replace_stride_with_dilation``/
``norm_layer`` options of ``ResNet`` (ResNeXt, wide and dilated variants) are dropped, with the
checks that only guard them; pretrained loading and ``zero_init_residual`` are dropped (the
``kaiming_normal_`` initialisation is kept); ``BackboneWithFPN`` takes no ``extra_blocks`` (the
detection models add ``LastLevelMaxPool``, a "pool" level P6, which FPN's P2..P5 do not have),
and so ``FeaturePyramidNetwork`` has none either.

FroyoZzz's FPN (a blog's code, from FroyoZzz/CV-Papers-Codes
``FPN/FPN.py``) is :class:`FroyoFPN`, as written there: its Bottleneck (a copy of torchvision's,
so the one above is used) and ``_make_layer``, 1x1 lateral convs and 3x3 output convs *without bias* (its ``conv1x1`` and
``conv3x3`` helpers are torchvision's), ``_upsample_add`` = nearest ``F.upsample`` to the
lateral's size (here ``F.interpolate``, which ``F.upsample`` calls), and no 3x3 conv on P5; its
forward returns ``(p2, p3, p4, p5)``. ``Variable`` and the module-level ``test()`` are dropped.

Module and attribute names are the originals, so ``state_dict()`` keys are theirs.
"""

from collections import OrderedDict

import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet",
    "IntermediateLayerGetter",
    "FeaturePyramidNetwork",
    "BackboneWithFPN",
    "resnet_fpn",
    "FroyoFPN",
    "froyo_fpn",
    "LAYERS",
]


# --- torchvision/models/resnet.py -------------------------------------------------------------


def conv3x3(in_planes, out_planes, stride=1):
    """3x3 convolution with padding"""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution"""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super(BasicBlock, self).__init__()
        # Both self.conv1 and self.downsample layers downsample the input when stride != 1
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)

        if self.downsample is not None:
            identity = self.downsample(x)

        out += identity
        out = self.relu(out)

        return out


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super(Bottleneck, self).__init__()
        width = planes
        # Both self.conv2 and self.downsample layers downsample the input when stride != 1
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)

        out = self.conv3(out)
        out = self.bn3(out)

        if self.downsample is not None:
            identity = self.downsample(x)

        out += identity
        out = self.relu(out)

        return out


class ResNet(nn.Module):

    def __init__(self, block, layers, num_classes=1000):
        super(ResNet, self).__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )

        layers = []
        layers.append(block(self.inplanes, planes, stride, downsample))
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))

        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)

        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)

        x = self.avgpool(x)
        x = x.reshape(x.size(0), -1)
        x = self.fc(x)

        return x


# torchvision's resnet18 ... resnet152: block and blocks per layer
LAYERS = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


def resnet(depth, num_classes=1000):
    """torchvision.models.resnet{depth}(num_classes=num_classes)."""
    block, layers = LAYERS[depth]
    return ResNet(block, layers, num_classes=num_classes)


# --- torchvision/models/_utils.py -------------------------------------------------------------


class IntermediateLayerGetter(nn.ModuleDict):
    """
    Module wrapper that returns intermediate layers from a model

    It has a strong assumption that the modules have been registered
    into the model in the same order as they are used.
    """

    def __init__(self, model, return_layers):
        if not set(return_layers).issubset([name for name, _ in model.named_children()]):
            raise ValueError("return_layers are not present in model")
        orig_return_layers = return_layers
        return_layers = {str(k): str(v) for k, v in return_layers.items()}
        layers = OrderedDict()
        for name, module in model.named_children():
            layers[name] = module
            if name in return_layers:
                del return_layers[name]
            if not return_layers:
                break

        super(IntermediateLayerGetter, self).__init__(layers)
        self.return_layers = orig_return_layers

    def forward(self, x):
        out = OrderedDict()
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                out_name = self.return_layers[name]
                out[out_name] = x
        return out


# --- torchvision/ops/feature_pyramid_network.py -----------------------------------------------


class FeaturePyramidNetwork(nn.Module):
    """FPN on top of a set of feature maps (in increasing depth order), as torchvision builds it."""

    def __init__(self, in_channels_list, out_channels):
        super(FeaturePyramidNetwork, self).__init__()
        self.inner_blocks = nn.ModuleList()
        self.layer_blocks = nn.ModuleList()
        for in_channels in in_channels_list:
            if in_channels == 0:
                continue
            inner_block_module = nn.Conv2d(in_channels, out_channels, 1)
            layer_block_module = nn.Conv2d(out_channels, out_channels, 3, padding=1)
            self.inner_blocks.append(inner_block_module)
            self.layer_blocks.append(layer_block_module)

        # initialize parameters now to avoid modifying the initialization of top_blocks
        for m in self.children():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        # unpack OrderedDict into two lists for easier handling
        names = list(x.keys())
        x = list(x.values())

        last_inner = self.inner_blocks[-1](x[-1])
        results = []
        results.append(self.layer_blocks[-1](last_inner))
        for feature, inner_block, layer_block in zip(
            x[:-1][::-1], self.inner_blocks[:-1][::-1], self.layer_blocks[:-1][::-1]
        ):
            if not inner_block:
                continue
            inner_lateral = inner_block(feature)
            feat_shape = inner_lateral.shape[-2:]
            inner_top_down = F.interpolate(last_inner, size=feat_shape, mode="nearest")
            last_inner = inner_lateral + inner_top_down
            results.insert(0, layer_block(last_inner))

        # make it back an OrderedDict
        out = OrderedDict([(k, v) for k, v in zip(names, results)])

        return out


# --- torchvision/models/detection/backbone_utils.py -------------------------------------------


class BackboneWithFPN(nn.Module):
    """A model's intermediate layers (``return_layers``), then a FeaturePyramidNetwork on them."""

    def __init__(self, backbone, return_layers, in_channels_list, out_channels):
        super(BackboneWithFPN, self).__init__()
        self.body = IntermediateLayerGetter(backbone, return_layers=return_layers)
        self.fpn = FeaturePyramidNetwork(in_channels_list=in_channels_list, out_channels=out_channels)
        self.out_channels = out_channels

    def forward(self, x):
        x = self.body(x)
        x = self.fpn(x)
        return x


def resnet_fpn(depth, out_channels=256):
    """As ``resnet_fpn_backbone('resnet{depth}', ...)`` without its P6: outputs '0'..'3' are P2..P5."""
    backbone = resnet(depth)
    return_layers = {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}
    in_channels_stage2 = backbone.inplanes // 8
    in_channels_list = [in_channels_stage2 * 2 ** i for i in range(4)]
    return BackboneWithFPN(backbone, return_layers, in_channels_list, out_channels)


# --- FroyoZzz's FPN (CV-Papers-Codes, FPN/FPN.py) --------------------------


class FroyoFPN(nn.Module):
    def __init__(self, block, layers):
        super(FroyoFPN, self).__init__()
        self.inplanes = 64

        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        # Bottom up stages
        self.layer1 = self._make_layer(block, 64, layers[0], stride=1)
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)

        # Top layer
        self.toplayer = conv1x1(2048, 256)

        # Lateral layers
        self.laterallayer1 = conv1x1(1024, 256)
        self.laterallayer2 = conv1x1(512, 256)
        self.laterallayer3 = conv1x1(256, 256)

        # Final conv layers
        self.finalconv1 = conv3x3(256, 256)
        self.finalconv2 = conv3x3(256, 256)
        self.finalconv3 = conv3x3(256, 256)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )

        layers = []
        layers.append(block(self.inplanes, planes, stride, downsample))
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))

        return nn.Sequential(*layers)

    def _upsample_add(self, x, y):
        _, _, H, W = y.size()
        return F.interpolate(x, size=(H, W), mode="nearest") + y

    def forward(self, x):
        # Bottom-Up
        c1 = self.relu(self.bn1(self.conv1(x)))
        c1 = self.maxpool(c1)
        c2 = self.layer1(c1)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)

        # Top layer && Top-Down
        p5 = self.toplayer(c5)
        p4 = self._upsample_add(p5, self.laterallayer1(c4))
        p3 = self._upsample_add(p4, self.laterallayer2(c3))
        p2 = self._upsample_add(p3, self.laterallayer3(c2))

        # Final conv layers
        p4 = self.finalconv1(p4)
        p3 = self.finalconv2(p3)
        p2 = self.finalconv3(p2)
        return p2, p3, p4, p5


def froyo_fpn(depth):
    """FroyoZzz's FPN101() = FroyoFPN(Bottleneck, [3, 4, 23, 3]); FPN-50 with [3, 4, 6, 3]."""
    block, layers = LAYERS[depth]
    assert block is Bottleneck, "FroyoZzz's FPN hard-codes ResNet-50/101/152's widths (C5: 2048)"
    return FroyoFPN(block, layers)
