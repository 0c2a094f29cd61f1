"""Self-contained port of the official HRNet implementations, used as a test oracle.

Ported from (MIT License, Copyright (c) Microsoft; Bin Xiao, Ke Sun):

- classification (HRNet-C): HRNet/HRNet-Image-Classification, ``lib/models/cls_hrnet.py``
  (timm's ``timm/models/hrnet.py`` is a copy of it and was used as a cross-check);
- pose (HRNetV1): leoxiaobin/deep-high-resolution-net.pytorch, ``lib/models/pose_hrnet.py``;
- segmentation (HRNetV2): HRNet/HRNet-Semantic-Segmentation, ``lib/models/seg_hrnet.py``
  (with ``experiments/cityscapes/seg_hrnet_w48_*.yaml`` for the settings the config supplied).

What was changed, and only this:

- the yacs config (``cfg.MODEL.EXTRA.STAGE1..4``, ``NUM_CLASSES``, ``NUM_JOINTS``,
  ``FINAL_CONV_KERNEL``, ``MODEL.ALIGN_CORNERS``) is replaced by the plain-Python
  arguments of :func:`hrnet_cls`, :func:`hrnet_pose` and :func:`hrnet_seg` and by the
  fixed stage layout shared by every published variant (modules 1/4/3, branches 2/3/4,
  4 BasicBlocks per branch, widths C, 2C, 4C, 8C; stage 1 = 4 Bottlenecks of 64 planes),
  which :func:`hrnet_cls`'s keyword arguments change for the small classification configs;
- the three repositories each carry their own copy of ``HighResolutionModule``; here there
  is one, with two keyword arguments selecting the variant: ``upsample_mode`` ('nearest':
  ``nn.Upsample(scale_factor)`` inside ``fuse_layers[i][j]`` as cls/pose do; 'bilinear':
  no module, ``F.interpolate`` to the target branch's size in ``forward`` as seg does) and
  ``relu_inplace`` (the cls copy builds its fuse ReLUs with ``inplace=False``);
- logging, pretrained loading in ``init_weights``, ``PRETRAINED_LAYERS`` and the
  ``torch._C._get_tracing_state()`` pooling branch of the cls head are dropped; the
  constructors (:func:`hrnet_cls` and its siblings) leave PyTorch's default initialisation,
  and the official entry points :func:`get_cls_net`, :func:`get_seg_model` and
  :func:`get_pose_net` (``is_train=True`` with ``INIT_WEIGHTS``) then run each
  repository's ``init_weights``, as there;
- the seg head's deprecated ``F.upsample(..., mode='bilinear')`` is written as
  ``F.interpolate(..., mode='bilinear', align_corners=False)``, which is what it resolves to.

Module and attribute names are the official ones, so ``state_dict()`` keys equal those of
the official checkpoints, and each forward performs the official operations in the
official order.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "BN_MOMENTUM",
    "BasicBlock",
    "Bottleneck",
    "HighResolutionModule",
    "HighResolutionNetCls",
    "PoseHighResolutionNet",
    "HighResolutionNetSeg",
    "hrnet_cls",
    "hrnet_pose",
    "hrnet_seg",
    "get_cls_net",
    "get_pose_net",
    "get_seg_model",
]

BN_MOMENTUM = 0.1

# The seg repo's Cityscapes configs set MODEL.ALIGN_CORNERS: False, and its older
# seg_hrnet.py calls bilinear upsampling without align_corners (i.e. False).
SEG_ALIGN_CORNERS = False


def conv3x3(in_planes, out_planes, stride=1):
    """3x3 convolution with padding"""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride,
                     padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        residual = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)

        if self.downsample is not None:
            residual = self.downsample(x)

        out += residual
        out = self.relu(out)

        return out


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride,
                               padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1,
                               bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
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

        out += residual
        out = self.relu(out)

        return out


class HighResolutionModule(nn.Module):
    """One HRNet exchange unit: parallel branches, then all-to-all fusion.

    ``upsample_mode='nearest'`` is the cls/pose module (``fuse_layers[i][j]`` for j > i is
    conv1x1, BN, ``nn.Upsample(scale_factor=2**(j-i))``); ``'bilinear'`` is the seg module
    (conv1x1, BN, and ``forward`` resizes bilinearly to branch i's exact size).
    """

    def __init__(self, num_branches, blocks, num_blocks, num_inchannels,
                 num_channels, fuse_method="SUM", multi_scale_output=True, *,
                 upsample_mode="nearest", relu_inplace=True):
        super().__init__()
        if upsample_mode not in ("nearest", "bilinear"):
            raise ValueError(f"upsample_mode must be 'nearest' or 'bilinear', got {upsample_mode!r}")
        self._check_branches(
            num_branches, blocks, num_blocks, num_inchannels, num_channels)

        self.num_inchannels = num_inchannels
        self.fuse_method = fuse_method
        self.num_branches = num_branches
        self.upsample_mode = upsample_mode
        self.relu_inplace = relu_inplace

        self.multi_scale_output = multi_scale_output

        self.branches = self._make_branches(
            num_branches, blocks, num_blocks, num_channels)
        self.fuse_layers = self._make_fuse_layers()
        self.relu = nn.ReLU(inplace=relu_inplace)

    def _check_branches(self, num_branches, blocks, num_blocks,
                        num_inchannels, num_channels):
        if num_branches != len(num_blocks):
            raise ValueError('NUM_BRANCHES({}) <> NUM_BLOCKS({})'.format(
                num_branches, len(num_blocks)))

        if num_branches != len(num_channels):
            raise ValueError('NUM_BRANCHES({}) <> NUM_CHANNELS({})'.format(
                num_branches, len(num_channels)))

        if num_branches != len(num_inchannels):
            raise ValueError('NUM_BRANCHES({}) <> NUM_INCHANNELS({})'.format(
                num_branches, len(num_inchannels)))

    def _make_one_branch(self, branch_index, block, num_blocks, num_channels,
                         stride=1):
        downsample = None
        if stride != 1 or \
           self.num_inchannels[branch_index] != num_channels[branch_index] * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.num_inchannels[branch_index],
                          num_channels[branch_index] * block.expansion,
                          kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(num_channels[branch_index] * block.expansion,
                               momentum=BN_MOMENTUM),
            )

        layers = []
        layers.append(block(self.num_inchannels[branch_index],
                            num_channels[branch_index], stride, downsample))
        # Official behaviour: this mutates the caller's list, which is how _make_stage
        # learns the next module's input widths via get_num_inchannels().
        self.num_inchannels[branch_index] = \
            num_channels[branch_index] * block.expansion
        for i in range(1, num_blocks[branch_index]):
            layers.append(block(self.num_inchannels[branch_index],
                                num_channels[branch_index]))

        return nn.Sequential(*layers)

    def _make_branches(self, num_branches, block, num_blocks, num_channels):
        branches = []

        for i in range(num_branches):
            branches.append(
                self._make_one_branch(i, block, num_blocks, num_channels))

        return nn.ModuleList(branches)

    def _make_fuse_layers(self):
        if self.num_branches == 1:
            return None

        num_branches = self.num_branches
        num_inchannels = self.num_inchannels
        fuse_layers = []
        for i in range(num_branches if self.multi_scale_output else 1):
            fuse_layer = []
            for j in range(num_branches):
                if j > i:
                    up = [
                        nn.Conv2d(num_inchannels[j], num_inchannels[i],
                                  1, 1, 0, bias=False),
                        nn.BatchNorm2d(num_inchannels[i], momentum=BN_MOMENTUM),
                    ]
                    if self.upsample_mode == "nearest":
                        up.append(nn.Upsample(scale_factor=2 ** (j - i), mode='nearest'))
                    fuse_layer.append(nn.Sequential(*up))
                elif j == i:
                    fuse_layer.append(None)
                else:
                    conv3x3s = []
                    for k in range(i - j):
                        if k == i - j - 1:
                            num_outchannels_conv3x3 = num_inchannels[i]
                            conv3x3s.append(nn.Sequential(
                                nn.Conv2d(num_inchannels[j],
                                          num_outchannels_conv3x3,
                                          3, 2, 1, bias=False),
                                nn.BatchNorm2d(num_outchannels_conv3x3,
                                               momentum=BN_MOMENTUM)))
                        else:
                            num_outchannels_conv3x3 = num_inchannels[j]
                            conv3x3s.append(nn.Sequential(
                                nn.Conv2d(num_inchannels[j],
                                          num_outchannels_conv3x3,
                                          3, 2, 1, bias=False),
                                nn.BatchNorm2d(num_outchannels_conv3x3,
                                               momentum=BN_MOMENTUM),
                                nn.ReLU(inplace=self.relu_inplace)))
                    fuse_layer.append(nn.Sequential(*conv3x3s))
            fuse_layers.append(nn.ModuleList(fuse_layer))

        return nn.ModuleList(fuse_layers)

    def get_num_inchannels(self):
        return self.num_inchannels

    def forward(self, x):
        if self.num_branches == 1:
            return [self.branches[0](x[0])]

        for i in range(self.num_branches):
            x[i] = self.branches[i](x[i])

        x_fuse = []
        for i in range(len(self.fuse_layers)):
            y = x[0] if i == 0 else self.fuse_layers[i][0](x[0])
            for j in range(1, self.num_branches):
                if i == j:
                    y = y + x[j]
                elif j > i and self.upsample_mode == "bilinear":
                    width_output = x[i].shape[-1]
                    height_output = x[i].shape[-2]
                    y = y + F.interpolate(
                        self.fuse_layers[i][j](x[j]),
                        size=[height_output, width_output],
                        mode='bilinear', align_corners=SEG_ALIGN_CORNERS)
                else:
                    y = y + self.fuse_layers[i][j](x[j])
            x_fuse.append(self.relu(y))

        return x_fuse


def _stage_configs(width, modules=(1, 4, 3), blocks=4):
    """STAGE2..4 of every published HRNet-W{C} config (cls, pose and seg alike).

    ``modules`` and ``blocks`` default to that layout; the small classification configs
    (``cls_hrnet_w18_small_v1/v2``) set them.
    """
    return [
        dict(NUM_MODULES=modules[0], NUM_BRANCHES=2, BLOCK=BasicBlock,
             NUM_BLOCKS=[blocks] * 2, NUM_CHANNELS=[width, 2 * width], FUSE_METHOD="SUM"),
        dict(NUM_MODULES=modules[1], NUM_BRANCHES=3, BLOCK=BasicBlock,
             NUM_BLOCKS=[blocks] * 3, NUM_CHANNELS=[width, 2 * width, 4 * width],
             FUSE_METHOD="SUM"),
        dict(NUM_MODULES=modules[2], NUM_BRANCHES=4, BLOCK=BasicBlock,
             NUM_BLOCKS=[blocks] * 4,
             NUM_CHANNELS=[width, 2 * width, 4 * width, 8 * width], FUSE_METHOD="SUM"),
    ]


class _HighResolutionBackbone(nn.Module):
    """Stem, stage 1 and stages 2-4 with their transitions, as the three repos build them.

    Subclasses add the head; the attribute names here are the official ones.
    """

    def __init__(self, width, *, upsample_mode, relu_inplace, last_multi_scale_output,
                 stage1_blocks=4, stage1_planes=64, modules=(1, 4, 3), blocks=4):
        super().__init__()
        self._upsample_mode = upsample_mode
        self._relu_inplace = relu_inplace

        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=3, stride=2, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)

        # STAGE1: 1 module, 1 branch, BOTTLENECK, NUM_BLOCKS [4], NUM_CHANNELS [64]
        # (small configs: [1], [32] for w18_small_v1; [2], [64] for w18_small_v2)
        self.layer1 = self._make_layer(Bottleneck, 64, stage1_planes, stage1_blocks)
        stage1_out_channel = Bottleneck.expansion * stage1_planes

        stage2_cfg, stage3_cfg, stage4_cfg = _stage_configs(width, modules, blocks)

        self.stage2_cfg = stage2_cfg
        num_channels = [c * stage2_cfg['BLOCK'].expansion for c in stage2_cfg['NUM_CHANNELS']]
        self.transition1 = self._make_transition_layer(
            [stage1_out_channel], num_channels)
        self.stage2, pre_stage_channels = self._make_stage(
            stage2_cfg, num_channels)

        self.stage3_cfg = stage3_cfg
        num_channels = [c * stage3_cfg['BLOCK'].expansion for c in stage3_cfg['NUM_CHANNELS']]
        self.transition2 = self._make_transition_layer(
            pre_stage_channels, num_channels)
        self.stage3, pre_stage_channels = self._make_stage(
            stage3_cfg, num_channels)

        self.stage4_cfg = stage4_cfg
        num_channels = [c * stage4_cfg['BLOCK'].expansion for c in stage4_cfg['NUM_CHANNELS']]
        self.transition3 = self._make_transition_layer(
            pre_stage_channels, num_channels)
        self.stage4, pre_stage_channels = self._make_stage(
            stage4_cfg, num_channels, multi_scale_output=last_multi_scale_output)

        self.pre_stage_channels = list(pre_stage_channels)

    def _make_transition_layer(
            self, num_channels_pre_layer, num_channels_cur_layer):
        num_branches_cur = len(num_channels_cur_layer)
        num_branches_pre = len(num_channels_pre_layer)

        transition_layers = []
        for i in range(num_branches_cur):
            if i < num_branches_pre:
                if num_channels_cur_layer[i] != num_channels_pre_layer[i]:
                    transition_layers.append(nn.Sequential(
                        nn.Conv2d(num_channels_pre_layer[i],
                                  num_channels_cur_layer[i],
                                  3, 1, 1, bias=False),
                        nn.BatchNorm2d(
                            num_channels_cur_layer[i], momentum=BN_MOMENTUM),
                        nn.ReLU(inplace=True)))
                else:
                    transition_layers.append(None)
            else:
                conv3x3s = []
                for j in range(i + 1 - num_branches_pre):
                    inchannels = num_channels_pre_layer[-1]
                    outchannels = num_channels_cur_layer[i] \
                        if j == i - num_branches_pre else inchannels
                    conv3x3s.append(nn.Sequential(
                        nn.Conv2d(
                            inchannels, outchannels, 3, 2, 1, bias=False),
                        nn.BatchNorm2d(outchannels, momentum=BN_MOMENTUM),
                        nn.ReLU(inplace=True)))
                transition_layers.append(nn.Sequential(*conv3x3s))

        return nn.ModuleList(transition_layers)

    def _make_layer(self, block, inplanes, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * block.expansion,
                          kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion, momentum=BN_MOMENTUM),
            )

        layers = []
        layers.append(block(inplanes, planes, stride, downsample))
        inplanes = planes * block.expansion
        for i in range(1, blocks):
            layers.append(block(inplanes, planes))

        return nn.Sequential(*layers)

    def _make_stage(self, layer_config, num_inchannels,
                    multi_scale_output=True):
        num_modules = layer_config['NUM_MODULES']
        num_branches = layer_config['NUM_BRANCHES']
        num_blocks = layer_config['NUM_BLOCKS']
        num_channels = layer_config['NUM_CHANNELS']
        block = layer_config['BLOCK']
        fuse_method = layer_config['FUSE_METHOD']

        modules = []
        for i in range(num_modules):
            # multi_scale_output is only used by the last module
            if not multi_scale_output and i == num_modules - 1:
                reset_multi_scale_output = False
            else:
                reset_multi_scale_output = True

            modules.append(
                HighResolutionModule(num_branches,
                                     block,
                                     num_blocks,
                                     num_inchannels,
                                     num_channels,
                                     fuse_method,
                                     reset_multi_scale_output,
                                     upsample_mode=self._upsample_mode,
                                     relu_inplace=self._relu_inplace)
            )
            num_inchannels = modules[-1].get_num_inchannels()

        return nn.Sequential(*modules), num_inchannels

    def _forward_backbone(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.conv2(x)
        x = self.bn2(x)
        x = self.relu(x)
        x = self.layer1(x)

        x_list = []
        for i in range(self.stage2_cfg['NUM_BRANCHES']):
            if self.transition1[i] is not None:
                x_list.append(self.transition1[i](x))
            else:
                x_list.append(x)
        y_list = self.stage2(x_list)

        # The official cls/pose code feeds every non-None transition from y_list[-1]; with
        # these widths the only non-None entries of transition2/3 are the new branches, so
        # this equals the seg repo's later `y_list[i] if i < prev_branches else y_list[-1]`.
        x_list = []
        for i in range(self.stage3_cfg['NUM_BRANCHES']):
            if self.transition2[i] is not None:
                x_list.append(self.transition2[i](y_list[-1]))
            else:
                x_list.append(y_list[i])
        y_list = self.stage3(x_list)

        x_list = []
        for i in range(self.stage4_cfg['NUM_BRANCHES']):
            if self.transition3[i] is not None:
                x_list.append(self.transition3[i](y_list[-1]))
            else:
                x_list.append(y_list[i])
        y_list = self.stage4(x_list)
        return y_list


class HighResolutionNetCls(_HighResolutionBackbone):
    """``HighResolutionNet`` of HRNet-Image-Classification (``cls_hrnet.py``)."""

    def __init__(self, width=32, num_classes=1000, **layout):
        super().__init__(width, upsample_mode="nearest", relu_inplace=False,
                         last_multi_scale_output=True, **layout)

        self.incre_modules, self.downsamp_modules, \
            self.final_layer = self._make_head(self.pre_stage_channels)

        self.classifier = nn.Linear(2048, num_classes)

    def _make_head(self, pre_stage_channels):
        head_block = Bottleneck
        head_channels = [32, 64, 128, 256]

        # Increasing the #channels on each resolution
        # from C, 2C, 4C, 8C to 128, 256, 512, 1024
        incre_modules = []
        for i, channels in enumerate(pre_stage_channels):
            incre_module = self._make_layer(head_block,
                                            channels,
                                            head_channels[i],
                                            1,
                                            stride=1)
            incre_modules.append(incre_module)
        incre_modules = nn.ModuleList(incre_modules)

        downsamp_modules = []
        for i in range(len(pre_stage_channels) - 1):
            in_channels = head_channels[i] * head_block.expansion
            out_channels = head_channels[i + 1] * head_block.expansion

            downsamp_module = nn.Sequential(
                nn.Conv2d(in_channels=in_channels,
                          out_channels=out_channels,
                          kernel_size=3,
                          stride=2,
                          padding=1),
                nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True)
            )

            downsamp_modules.append(downsamp_module)
        downsamp_modules = nn.ModuleList(downsamp_modules)

        final_layer = nn.Sequential(
            nn.Conv2d(
                in_channels=head_channels[3] * head_block.expansion,
                out_channels=2048,
                kernel_size=1,
                stride=1,
                padding=0
            ),
            nn.BatchNorm2d(2048, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True)
        )

        return incre_modules, downsamp_modules, final_layer

    def forward(self, x):
        y_list = self._forward_backbone(x)

        y = self.incre_modules[0](y_list[0])
        for i in range(len(self.downsamp_modules)):
            y = self.incre_modules[i + 1](y_list[i + 1]) + \
                self.downsamp_modules[i](y)

        y = self.final_layer(y)

        y = F.avg_pool2d(y, kernel_size=y.size()[2:]).view(y.size(0), -1)

        y = self.classifier(y)

        return y

    def init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


class PoseHighResolutionNet(_HighResolutionBackbone):
    """``PoseHighResolutionNet`` of deep-high-resolution-net.pytorch (``pose_hrnet.py``).

    The last module of stage 4 fuses into branch 0 only, and the head is one 1x1 conv
    (``FINAL_CONV_KERNEL: 1``) on that stride-4 branch.
    """

    def __init__(self, width=32, num_joints=17):
        super().__init__(width, upsample_mode="nearest", relu_inplace=True,
                         last_multi_scale_output=False)

        self.final_layer = nn.Conv2d(
            in_channels=self.pre_stage_channels[0],
            out_channels=num_joints,
            kernel_size=1,
            stride=1,
            padding=0
        )

    def forward(self, x):
        y_list = self._forward_backbone(x)

        x = self.final_layer(y_list[0])

        return x

    def init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                for name, _ in m.named_parameters():
                    if name in ['bias']:
                        nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
                for name, _ in m.named_parameters():
                    if name in ['bias']:
                        nn.init.constant_(m.bias, 0)


class HighResolutionNetSeg(_HighResolutionBackbone):
    """``HighResolutionNet`` of HRNet-Semantic-Segmentation (``seg_hrnet.py``, HRNetV2).

    Output logits are at stride 4; the official repo resizes them to the label size in
    the loss / inference code, not in the model.
    """

    def __init__(self, width=48, num_classes=19):
        super().__init__(width, upsample_mode="bilinear", relu_inplace=True,
                         last_multi_scale_output=True)

        last_inp_channels = int(sum(self.pre_stage_channels))

        self.last_layer = nn.Sequential(
            nn.Conv2d(
                in_channels=last_inp_channels,
                out_channels=last_inp_channels,
                kernel_size=1,
                stride=1,
                padding=0),
            nn.BatchNorm2d(last_inp_channels, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(
                in_channels=last_inp_channels,
                out_channels=num_classes,
                kernel_size=1,
                stride=1,
                padding=0)
        )

    def forward(self, x):
        x = self._forward_backbone(x)

        x0_h, x0_w = x[0].size(2), x[0].size(3)
        x1 = F.interpolate(x[1], size=(x0_h, x0_w), mode='bilinear',
                           align_corners=SEG_ALIGN_CORNERS)
        x2 = F.interpolate(x[2], size=(x0_h, x0_w), mode='bilinear',
                           align_corners=SEG_ALIGN_CORNERS)
        x3 = F.interpolate(x[3], size=(x0_h, x0_w), mode='bilinear',
                           align_corners=SEG_ALIGN_CORNERS)

        x = torch.cat([x[0], x1, x2, x3], 1)

        x = self.last_layer(x)

        return x

    def init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def hrnet_cls(width: int = 32, num_classes: int = 1000, *, stage1_blocks: int = 4,
              stage1_planes: int = 64, modules: tuple = (1, 4, 3), blocks: int = 4) -> nn.Module:
    """HRNet-W{width}-C classifier (official ``cls_hrnet.py``).

    The keywords give the official configs' STAGE1 NUM_BLOCKS/NUM_CHANNELS and STAGE2..4
    NUM_MODULES/NUM_BLOCKS; the defaults are every HRNet-W{C}-C config's. The small configs:
    ``cls_hrnet_w18_small_v1``: width 16, stage1_blocks 1, stage1_planes 32, modules (1, 1, 1),
    blocks 2; ``cls_hrnet_w18_small_v2``: width 18, stage1_blocks 2, stage1_planes 64,
    modules (1, 3, 2), blocks 2.
    """
    return HighResolutionNetCls(width, num_classes, stage1_blocks=stage1_blocks,
                                stage1_planes=stage1_planes, modules=modules, blocks=blocks)


def hrnet_pose(width: int = 32, num_joints: int = 17) -> nn.Module:
    """Pose HRNet-W{width} (official ``pose_hrnet.py``), heatmaps at stride 4."""
    return PoseHighResolutionNet(width, num_joints)


def hrnet_seg(width: int = 48, num_classes: int = 19) -> nn.Module:
    """HRNetV2-W{width} segmentation net (official ``seg_hrnet.py``), logits at stride 4."""
    return HighResolutionNetSeg(width, num_classes)


def get_cls_net(width: int = 32, num_classes: int = 1000, **layout) -> nn.Module:
    """The official ``get_cls_net``: the constructor, then ``init_weights``."""
    model = hrnet_cls(width, num_classes, **layout)
    model.init_weights()
    return model


def get_pose_net(width: int = 32, num_joints: int = 17, is_train: bool = True) -> nn.Module:
    """The official ``get_pose_net`` with ``MODEL.INIT_WEIGHTS: true``: ``init_weights`` when training."""
    model = hrnet_pose(width, num_joints)
    if is_train:
        model.init_weights()
    return model


def get_seg_model(width: int = 48, num_classes: int = 19) -> nn.Module:
    """The official ``get_seg_model``: the constructor, then ``init_weights``."""
    model = hrnet_seg(width, num_classes)
    model.init_weights()
    return model
