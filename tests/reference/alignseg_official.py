"""Self-contained port of the official AlignSeg network, used as the test oracle for specs/alignseg.yaml.

Ported from speedinghzl/AlignSeg, ``networks/alignseg.py`` (MIT License, Copyright (c) 2020 Zilong
Huang): Huang, Wei, Wang, Liu, Huang and Shi, "AlignSeg: Feature-Aligned Segmentation Networks",
TPAMI 2021. ``Seg_Model`` is ``ResNet(Bottleneck, [3, 4, 23, 3])``: a deep-stem ResNet-101 without
dilation, the RRB/CAB decoder at stride 4, the aligned context module CAM on C5, and two heads
(``head`` and the deep-supervision ``dsn``), returned as ``[out, dsn]``.

What was changed, and only this:

- ``InPlaceABNSync`` comes from the ``inplace_abn`` package (a CUDA extension, not installed here).
  It is replaced by :class:`InPlaceABNSync` below, which has the package's parameters and buffers
  (``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``: inplace_abn
  1.x's ``ABN``) and computes what its kernels compute (``forward_cpu`` of
  ``src/inplace_abn_cpu.cpp``): act((x - mean) / sqrt(var + eps) * (|weight| + eps) + bias), with
  the batch's statistics in training and the running ones in eval; activation ``leaky_relu``
  (slope 0.01, the default) or ``identity`` (the trunk's ``BatchNorm2d``). It returns a new
  tensor where the package overwrites its input, which no forward here reads again;
- ``load_model``, ``pretrained_model``, ``criterion``/``labels`` and the ``init`` method are dropped
  (``forward`` returns ``[out, dsn]``, as without a criterion); ``Seg_Model`` takes the blocks per
  layer (``layers``, default the official [3, 4, 23, 3]) so that ResNet-50/152 trunks can be built;
- the unused ``bilinear_interpolate_torch_gridsample2`` of ``CAM`` and ``CAB``, the first
  ``self.maxpool`` (overwritten by the ceil-mode one at once) and unused imports are dropped;
- ``F.grid_sample(input, grid)`` is written ``F.grid_sample(input, grid, align_corners=False)``,
  which is what it resolves to since PyTorch 1.3 (it warns otherwise).

Module and attribute names are the originals, so ``state_dict()`` keys are the official
checkpoints'. ``CAB``'s offsets are divided by ``[w/s, h/s]``, as the repository has it since its
issue #7, ``CAM``'s by the pooled map's ``[h/s, w/s]``.
"""

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["InPlaceABNSync", "RRB", "CAM", "CAB", "ResNet", "Seg_Model"]


class InPlaceABNSync(nn.Module):
    """inplace_abn's InPlaceABNSync, as its kernels compute it (see the module's docstring)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, activation="leaky_relu",
                 activation_param=0.01):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.activation, self.activation_param = activation, activation_param
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        if self.training:
            self.num_batches_tracked += 1
        scale = None if self.weight is None else self.weight.abs() + self.eps
        x = F.batch_norm(x, self.running_mean, self.running_var, scale, self.bias, self.training, self.momentum,
                         self.eps)
        if self.activation == "leaky_relu":
            return F.leaky_relu(x, negative_slope=self.activation_param)
        return x


BatchNorm2d = functools.partial(InPlaceABNSync, activation='identity')


def conv3x3(in_planes, out_planes, stride=1):
    "3x3 convolution with padding"
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride,
                     padding=1, bias=False)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None, fist_dilation=1, multi_grid=1):
        super(Bottleneck, self).__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride,
                               padding=dilation*multi_grid, dilation=dilation*multi_grid, bias=False)
        self.bn2 = BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=False)
        self.relu_inplace = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.dilation = dilation
        self.stride = stride

    def forward(self, x):
        residual = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)

        out = self.conv3(out)
        out = self.bn3(out)

        if self.downsample is not None:
            residual = self.downsample(x)

        out = out + residual
        out = self.relu_inplace(out)

        return out


class RRB(nn.Module):

    def __init__(self, features, out_features=512):
        super(RRB, self).__init__()

        self.unify = nn.Conv2d(features, out_features, kernel_size=1, padding=0, dilation=1, bias=False)
        self.residual = nn.Sequential(nn.Conv2d(out_features, out_features//4, kernel_size=3, padding=1, dilation=1,
                                                bias=False),
                                      InPlaceABNSync(out_features//4),
                                      nn.Conv2d(out_features//4, out_features, kernel_size=3, padding=1, dilation=1,
                                                bias=False))
        self.norm = InPlaceABNSync(out_features)

    def forward(self, feats):
        feats = self.unify(feats)
        residual = self.residual(feats)
        feats = self.norm(feats + residual)
        return feats


class CAM(nn.Module):
    def __init__(self, features, in_features):
        super(CAM, self).__init__()

        self.pool = nn.Sequential(
                        nn.AdaptiveAvgPool2d(output_size=(3, 3)),
                        nn.Conv2d(features, features, kernel_size=1, bias=False),
                        InPlaceABNSync(features),
                        nn.Conv2d(features, in_features, kernel_size=3, padding=1, bias=False),
                        InPlaceABNSync(in_features))

        self.adapt = nn.Sequential(
                        nn.Conv2d(features, features, kernel_size=1, bias=False),
                        InPlaceABNSync(features),
                        nn.Conv2d(features, in_features, kernel_size=3, padding=1, bias=False),
                        InPlaceABNSync(in_features))

        self.delta_gen = nn.Sequential(
                        nn.Conv2d(in_features*2, in_features, kernel_size=1, bias=False),
                        InPlaceABNSync(in_features),
                        nn.Conv2d(in_features, 2, kernel_size=3, padding=1, bias=False)
                        )
        self.delta_gen[2].weight.data.zero_()

    def bilinear_interpolate_torch_gridsample(self, input, size, delta=0):
        out_h, out_w = size
        n, c, h, w = input.shape
        s = 1.0
        norm = torch.tensor([[[[h/s, w/s]]]]).type_as(input).to(input.device)
        w_list = torch.linspace(-1.0, 1.0, out_h).view(-1, 1).repeat(1, out_w)
        h_list = torch.linspace(-1.0, 1.0, out_w).repeat(out_h, 1)
        grid = torch.cat((h_list.unsqueeze(2), w_list.unsqueeze(2)), 2)
        grid = grid.repeat(n, 1, 1, 1).type_as(input).to(input.device)
        grid = grid + delta.permute(0, 2, 3, 1) / norm

        output = F.grid_sample(input, grid, align_corners=False)
        return output

    def forward(self, low_stage):
        n, c, h, w = low_stage.shape
        high_stage = self.pool(low_stage)
        low_stage = self.adapt(low_stage)

        high_stage_up = F.interpolate(input=high_stage, size=(h, w), mode='bilinear', align_corners=True)
        concat = torch.cat((low_stage, high_stage_up), 1)
        delta = self.delta_gen(concat)
        high_stage = self.bilinear_interpolate_torch_gridsample(high_stage, (h, w), delta)

        high_stage += low_stage

        return high_stage


class CAB(nn.Module):
    def __init__(self, features):
        super(CAB, self).__init__()

        self.delta_gen1 = nn.Sequential(
                        nn.Conv2d(features*2, features, kernel_size=1, bias=False),
                        InPlaceABNSync(features),
                        nn.Conv2d(features, 2, kernel_size=3, padding=1, bias=False)
                        )

        self.delta_gen2 = nn.Sequential(
                        nn.Conv2d(features*2, features, kernel_size=1, bias=False),
                        InPlaceABNSync(features),
                        nn.Conv2d(features, 2, kernel_size=3, padding=1, bias=False)
                        )

        self.delta_gen1[2].weight.data.zero_()
        self.delta_gen2[2].weight.data.zero_()

    # https://github.com/speedinghzl/AlignSeg/issues/7
    # the normlization item is set to [w/s, h/s] rather than [h/s, w/s]
    def bilinear_interpolate_torch_gridsample(self, input, size, delta=0):
        out_h, out_w = size
        n, c, h, w = input.shape
        s = 1.0
        norm = torch.tensor([[[[w/s, h/s]]]]).type_as(input).to(input.device)
        w_list = torch.linspace(-1.0, 1.0, out_h).view(-1, 1).repeat(1, out_w)
        h_list = torch.linspace(-1.0, 1.0, out_w).repeat(out_h, 1)
        grid = torch.cat((h_list.unsqueeze(2), w_list.unsqueeze(2)), 2)
        grid = grid.repeat(n, 1, 1, 1).type_as(input).to(input.device)
        grid = grid + delta.permute(0, 2, 3, 1) / norm

        output = F.grid_sample(input, grid, align_corners=False)
        return output

    def forward(self, low_stage, high_stage):
        h, w = low_stage.size(2), low_stage.size(3)
        high_stage = F.interpolate(input=high_stage, size=(h, w), mode='bilinear', align_corners=True)

        concat = torch.cat((low_stage, high_stage), 1)
        delta1 = self.delta_gen1(concat)
        delta2 = self.delta_gen2(concat)
        high_stage = self.bilinear_interpolate_torch_gridsample(high_stage, (h, w), delta1)
        low_stage = self.bilinear_interpolate_torch_gridsample(low_stage, (h, w), delta2)

        high_stage += low_stage
        return high_stage


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes):
        self.inplanes = 128
        super(ResNet, self).__init__()
        self.conv1 = conv3x3(3, 64, stride=2)
        self.bn1 = BatchNorm2d(64)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = conv3x3(64, 64)
        self.bn2 = BatchNorm2d(64)
        self.relu2 = nn.ReLU(inplace=False)
        self.conv3 = conv3x3(64, 128)
        self.bn3 = BatchNorm2d(128)
        self.relu3 = nn.ReLU(inplace=False)

        self.relu = nn.ReLU(inplace=False)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True)  # change
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.CAM = CAM(2048, 256)
        self.RRB5a = RRB(256, 256)
        self.CAB5 = CAB(256)
        self.RRB5b = RRB(256, 256)
        self.RRB4a = RRB(2048, 256)
        self.CAB4 = CAB(256)
        self.RRB4b = RRB(256, 256)
        self.RRB3a = RRB(1024, 256)
        self.CAB3 = CAB(256)
        self.RRB3b = RRB(256, 256)
        self.RRB2a = RRB(512, 256)
        self.CAB2 = CAB(256)
        self.RRB2b = RRB(256, 256)
        self.RRB1a = RRB(256, 256)

        self.dsn = nn.Sequential(
            nn.Conv2d(256, 256, kernel_size=3, stride=1, padding=1),
            InPlaceABNSync(256),
            nn.Dropout2d(0.1),
            nn.Conv2d(256, num_classes, kernel_size=1, stride=1, padding=0, bias=True)
            )

        self.head = nn.Sequential(
            nn.Conv2d(256, 256, kernel_size=3, stride=1, padding=1),
            InPlaceABNSync(256),
            nn.Dropout2d(0.1),
            nn.Conv2d(256, num_classes, kernel_size=1, stride=1, padding=0, bias=True)
            )

    def _make_layer(self, block, planes, blocks, stride=1, dilation=1, multi_grid=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion,
                          kernel_size=1, stride=stride, bias=False),
                BatchNorm2d(planes * block.expansion, affine=True))

        layers = []
        generate_multi_grid = lambda index, grids: grids[index%len(grids)] if isinstance(grids, tuple) else 1  # noqa
        layers.append(block(self.inplanes, planes, stride, dilation=dilation, downsample=downsample,
                            multi_grid=generate_multi_grid(0, multi_grid)))
        self.inplanes = planes * block.expansion
        for i in range(1, blocks):
            layers.append(block(self.inplanes, planes, dilation=dilation,
                                multi_grid=generate_multi_grid(i, multi_grid)))

        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))
        x = self.maxpool(x)

        x1 = self.layer1(x)
        d1 = self.RRB1a(x1)

        x2 = self.layer2(x1)
        d2 = self.RRB2a(x2)
        d2 = self.CAB2(d1, d2)
        d2 = self.RRB2b(d2)

        x3 = self.layer3(x2)
        d3 = self.RRB3a(x3)
        d3 = self.CAB3(d2, d3)
        d3 = self.RRB3b(d3)
        dsn = self.dsn(d3)

        x4 = self.layer4(x3)
        d4 = self.RRB4a(x4)
        d4 = self.CAB4(d3, d4)
        d4 = self.RRB4b(d4)

        x5 = self.CAM(x4)
        d5 = self.RRB5a(x5)
        d5 = self.CAB5(d4, d5)
        d5 = self.RRB5b(d5)

        out = self.head(d5)

        return [out, dsn]


def Seg_Model(num_classes, layers=(3, 4, 23, 3)):
    return ResNet(Bottleneck, list(layers), num_classes)
