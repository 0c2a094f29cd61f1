"""A port of the official SFNet code (ResNet trunks), used as a test oracle.

Ported from lxtGH/SFSegNets (MIT License, Xiangtai Li):

- ``network/resnet_d.py``: ``conv3x3``, ``ResNet`` (the deep stem: three 3x3 convs to 128
  channels) and ``resnet18``/``resnet50``/``resnet101``. Its ``BasicBlock``, ``Bottleneck`` and
  ``ResNet._make_layer`` are torchvision's (the file is "Code Adapted from" torchvision's
  ``resnet.py``) but for ``mynn.Norm2d`` in place of ``nn.BatchNorm2d``, so the port of
  torchvision's in :mod:`tests.reference.resnet_fpn` is used;
- ``network/nn/operators.py``: ``PSPModule`` and ``AlignedModule`` (the FAM, with
  ``grid_sample(..., align_corners=True)``);
- ``network/sfnet_resnet.py``: ``conv3x3_bn_relu``, ``UperNetAlignHead`` and ``AlignNetResNet``
  with the "variant D" loop that dilates the trunk, as ``DeepR18_SF_deeply`` /
  ``DeepR50_SF_deeply`` / ``DeepR101_SF_deeply`` build it (``variant='D'``; the Cityscapes
  training script ``scripts/cityscacpes/train_cityscapes_sfnet_res18.sh`` passes
  ``--arch network.sfnet_resnet.DeepR18_SF_deeply``), and with ``fpn_dsn=True``, the
  deep-supervision heads ``head.dsn``, as ``DeepR18_SF_deeply_dsn`` builds it (in the file as of
  commit 77c97d4; ``scripts/train_cityscapes_sfnet_res18_dsn.sh`` passes it with
  ``--fpn_dsn_loss``, the README's "+dsn" checkpoint); the current file keeps ``fpn_dsn`` on
  ``UperNetAlignHead`` and ``AlignNetResNet``, with the same heads;
- ``network/nn/mynn.py`` (as in lxtGH/DecoupleSegNets, on which the repository is based):
  ``Norm2d``, which builds ``cfg.MODEL.BNFUNC`` (``nn.BatchNorm2d``; ``SyncBatchNorm`` with
  ``--syncbn``, which has the same keys and computes the same in eval mode), and ``Upsample``,
  bilinear ``F.interpolate`` with ``align_corners=True``.

What was changed, and only this: pretrained loading (``./pretrained_models/*.pth``) and the
trunk's ``avgpool``, ``fc`` (with its ``num_classes``) and ``forward`` are dropped
(``AlignNetResNet`` takes ``layer0`` .. ``layer4`` and deletes the trunk, so they never reach
its state dict or run); the trunk is chosen by ``depth`` (18, 50, 101) instead of the
``trunk`` string ('resnet-18-deep', ...); the criterion, the training branch of ``forward``
(which hands the head's ``(x, out)``, the stride-4 logits and the deep-supervision maps, to
``CriterionSFNet``; the eval branch returns only ``main_out``) and the options that only select
other heads (``head_type='v2'``; ``global_context='sppm'``; ``conv3x3_type``) or are unused
(``skip``, ``skip_num``) are dropped, so the head is always ``UperNetAlignHead`` with the
PSPModule and three ``AlignedModule``s, and ``fpn_dsn`` (off by default) adds its ``dsn``
heads; ``F.upsample`` is written as ``F.interpolate``, which it calls. The ``kaiming_normal_``
initialisation is kept.

Module and attribute names are the official ones, so ``state_dict()`` keys equal those of the
official checkpoints (which ``nn.DataParallel`` or apex's DDP prefix with ``module.``).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.reference import resnet_fpn as torchvision
from tests.reference.resnet_fpn import BasicBlock, Bottleneck

__all__ = ["AlignNetResNet", "AlignedModule", "PSPModule", "ResNet", "UperNetAlignHead", "sfnet"]


# --- network/nn/mynn.py -------------------------------------------------------------------------


def Norm2d(in_channels):
    """cfg.MODEL.BNFUNC(in_channels)"""
    return nn.BatchNorm2d(in_channels)


def Upsample(x, size):
    """Wrapper Around the Upsample Call"""
    return nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=True)


# --- network/resnet_d.py (its blocks and _make_layer: torchvision's, from resnet_fpn.py) ---------


def conv3x3(in_planes, out_planes, stride=1):
    """3x3 convolution with padding"""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class ResNet(nn.Module):
    def __init__(self, block, layers):
        self.inplanes = 128
        super(ResNet, self).__init__()
        self.conv1 = nn.Sequential(
            conv3x3(3, 64, stride=2),
            Norm2d(64),
            nn.ReLU(inplace=True),
            conv3x3(64, 64),
            Norm2d(64),
            nn.ReLU(inplace=True),
            conv3x3(64, 128))
        self.bn1 = Norm2d(128)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    _make_layer = torchvision.ResNet._make_layer


# resnet18, resnet50, resnet101 (pretrained=False)
TRUNKS = {18: (BasicBlock, [2, 2, 2, 2]), 50: (Bottleneck, [3, 4, 6, 3]), 101: (Bottleneck, [3, 4, 23, 3])}


# --- network/nn/operators.py --------------------------------------------------------------------


class PSPModule(nn.Module):
    """
    Reference:
        Zhao, Hengshuang, et al. *"Pyramid scene parsing network."*
    """
    def __init__(self, features, out_features=512, sizes=(1, 2, 3, 6), norm_layer=nn.BatchNorm2d):
        super(PSPModule, self).__init__()

        self.stages = []
        self.stages = nn.ModuleList([self._make_stage(features, out_features, size, norm_layer) for size in sizes])
        self.bottleneck = nn.Sequential(
            nn.Conv2d(features+len(sizes)*out_features, out_features, kernel_size=1, padding=0, dilation=1,
                      bias=False),
            norm_layer(out_features),
            nn.ReLU(),
            nn.Dropout2d(0.1)
            )

    def _make_stage(self, features, out_features, size, norm_layer):
        prior = nn.AdaptiveAvgPool2d(output_size=(size, size))
        conv = nn.Conv2d(features, out_features, kernel_size=1, bias=False)
        bn = norm_layer(out_features)
        return nn.Sequential(prior, conv, bn)

    def forward(self, feats):
        h, w = feats.size(2), feats.size(3)
        priors = [F.interpolate(input=stage(feats), size=(h, w), mode="bilinear", align_corners=True)
                  for stage in self.stages] + [feats]
        bottle = self.bottleneck(torch.cat(priors, 1))
        return bottle


class AlignedModule(nn.Module):

    def __init__(self, inplane, outplane, kernel_size=3):
        super(AlignedModule, self).__init__()
        self.down_h = nn.Conv2d(inplane, outplane, 1, bias=False)
        self.down_l = nn.Conv2d(inplane, outplane, 1, bias=False)
        self.flow_make = nn.Conv2d(outplane*2, 2, kernel_size=kernel_size, padding=1, bias=False)

    def forward(self, x):
        low_feature, h_feature = x
        h_feature_orign = h_feature
        h, w = low_feature.size()[2:]
        size = (h, w)
        low_feature = self.down_l(low_feature)
        h_feature = self.down_h(h_feature)
        h_feature = F.interpolate(h_feature, size=size, mode="bilinear", align_corners=True)
        flow = self.flow_make(torch.cat([h_feature, low_feature], 1))
        h_feature = self.flow_warp(h_feature_orign, flow, size=size)

        return h_feature

    def flow_warp(self, input, flow, size):
        out_h, out_w = size
        n, c, h, w = input.size()
        # n, c, h, w
        # n, 2, h, w

        norm = torch.tensor([[[[out_w, out_h]]]]).type_as(input).to(input.device)
        h = torch.linspace(-1.0, 1.0, out_h).view(-1, 1).repeat(1, out_w)
        w = torch.linspace(-1.0, 1.0, out_w).repeat(out_h, 1)
        grid = torch.cat((w.unsqueeze(2), h.unsqueeze(2)), 2)
        grid = grid.repeat(n, 1, 1, 1).type_as(input).to(input.device)
        grid = grid + flow.permute(0, 2, 3, 1) / norm

        output = F.grid_sample(input, grid, align_corners=True)
        return output


# --- network/sfnet_resnet.py --------------------------------------------------------------------


def conv3x3_bn_relu(in_planes, out_planes, stride=1, normal_layer=nn.BatchNorm2d):
    return nn.Sequential(
            conv3x3(in_planes, out_planes, stride),
            normal_layer(out_planes),
            nn.ReLU(inplace=True),
    )


class UperNetAlignHead(nn.Module):

    def __init__(self, inplane, num_class, norm_layer=nn.BatchNorm2d, fpn_inplanes=[256, 512, 1024, 2048],
                 fpn_dim=256, fpn_dsn=False):
        super(UperNetAlignHead, self).__init__()
        self.ppm = PSPModule(inplane, norm_layer=norm_layer, out_features=fpn_dim)

        self.fpn_dsn = fpn_dsn
        self.fpn_in = []
        for fpn_inplane in fpn_inplanes[:-1]:
            self.fpn_in.append(
                nn.Sequential(
                    nn.Conv2d(fpn_inplane, fpn_dim, 1),
                    norm_layer(fpn_dim),
                    nn.ReLU(inplace=False)
                )
            )
        self.fpn_in = nn.ModuleList(self.fpn_in)

        self.fpn_out = []
        self.fpn_out_align = []
        self.dsn = []
        for i in range(len(fpn_inplanes) - 1):
            self.fpn_out.append(nn.Sequential(
                conv3x3_bn_relu(fpn_dim, fpn_dim, 1),
            ))
            self.fpn_out_align.append(
                AlignedModule(inplane=fpn_dim, outplane=fpn_dim//2)
            )

            if self.fpn_dsn:
                self.dsn.append(
                    nn.Sequential(
                        nn.Conv2d(fpn_dim, fpn_dim, kernel_size=3, stride=1, padding=1),
                        norm_layer(fpn_dim),
                        nn.ReLU(),
                        nn.Dropout2d(0.1),
                        nn.Conv2d(fpn_dim, num_class, kernel_size=1, stride=1, padding=0, bias=True)
                    )
                )

        self.fpn_out = nn.ModuleList(self.fpn_out)
        self.fpn_out_align = nn.ModuleList(self.fpn_out_align)

        if self.fpn_dsn:
            self.dsn = nn.ModuleList(self.dsn)

        self.conv_last = nn.Sequential(
            conv3x3_bn_relu(len(fpn_inplanes) * fpn_dim, fpn_dim, 1),
            nn.Conv2d(fpn_dim, num_class, kernel_size=1)
        )

    def forward(self, conv_out):
        psp_out = self.ppm(conv_out[-1])

        f = psp_out
        fpn_feature_list = [psp_out]
        out = []
        for i in reversed(range(len(conv_out) - 1)):
            conv_x = conv_out[i]
            conv_x = self.fpn_in[i](conv_x)  # lateral branch
            f = self.fpn_out_align[i]([conv_x, f])
            f = conv_x + f
            fpn_feature_list.append(self.fpn_out[i](f))
            if self.fpn_dsn:
                out.append(self.dsn[i](f))

        fpn_feature_list.reverse()  # [P2 - P5]
        output_size = fpn_feature_list[0].size()[2:]
        fusion_list = [fpn_feature_list[0]]

        for i in range(1, len(fpn_feature_list)):
            fusion_list.append(nn.functional.interpolate(
                fpn_feature_list[i],
                output_size,
                mode="bilinear", align_corners=True))

        fusion_out = torch.cat(fusion_list, 1)
        x = self.conv_last(fusion_out)

        return x, out


class AlignNetResNet(nn.Module):
    def __init__(self, num_classes, depth=101, variant="D", fpn_dsn=False):
        super(AlignNetResNet, self).__init__()
        self.variant = variant
        self.fpn_dsn = fpn_dsn

        resnet = ResNet(*TRUNKS[depth])

        resnet.layer0 = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer0 = resnet.layer0
        self.layer1, self.layer2, self.layer3, self.layer4 = \
            resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4
        del resnet

        if self.variant == "D":
            for n, m in self.layer3.named_modules():
                if "conv2" in n:
                    m.dilation, m.padding = (2, 2), (2, 2)
                elif "downsample.0" in n:
                    m.stride = (2, 2)
            for n, m in self.layer4.named_modules():
                if "conv2" in n:
                    m.dilation, m.padding = (4, 4), (4, 4)
                elif "downsample.0" in n:
                    m.stride = (2, 2)

        if depth == 18:
            inplane_head = 512
            self.head = UperNetAlignHead(inplane_head, num_class=num_classes, norm_layer=Norm2d,
                                         fpn_inplanes=[64, 128, 256, 512], fpn_dim=128, fpn_dsn=fpn_dsn)
        else:
            inplane_head = 2048
            self.head = UperNetAlignHead(inplane_head, num_class=num_classes, norm_layer=Norm2d, fpn_dsn=fpn_dsn)

    def forward(self, x):
        x_size = x.size()  # 800
        x0 = self.layer0(x)  # 400
        x1 = self.layer1(x0)  # 400
        x2 = self.layer2(x1)  # 100
        x3 = self.layer3(x2)  # 100
        x4 = self.layer4(x3)  # 100
        x = self.head([x1, x2, x3, x4])
        main_out = Upsample(x[0], x_size[2:])
        return main_out


def sfnet(depth=18, num_classes=19, variant="D", fpn_dsn=False):
    """``DeepR18_SF_deeply`` / ``DeepR50_SF_deeply`` / ``DeepR101_SF_deeply`` (variant 'D'), or the undilated
    trunk; with ``fpn_dsn``, ``DeepR18_SF_deeply_dsn`` (and its ResNet-50/101 counterparts)."""
    return AlignNetResNet(num_classes, depth, variant, fpn_dsn)
