"""The torch layers that ops build, where plain ``nn.Sequential`` is not enough.

Imported only from ops' ``build`` methods, never at import time. Attribute names
follow the official HRNet/ResNet code (``conv1``, ``bn1``, ``downsample``) so that
state-dict keys read the same as in the checkpoints people already have.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BN_MOMENTUM = 0.1  # the official HRNet value, also PyTorch's default


def conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int | None = None,
                bias: bool = False, bn: bool = True, act: str = "relu") -> nn.Sequential:
    """conv -> [BN] -> [ReLU], as ``0``, ``1``, ``2`` in a Sequential (the official layout)."""
    padding = kernel // 2 if padding is None else padding
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=bias)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM))
    if act == "relu":
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def projection(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """ResNet's shortcut when width or resolution changes: 1x1 conv (strided) + BN."""
    return conv_bn_act(c_in, c_out, 1, stride, 0, act="none")


class BasicBlock(nn.Module):
    """ResNet BasicBlock: 3x3-BN-ReLU-3x3-BN, plus the shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)
        self.downsample = projection(c_in, c_out, stride) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += residual
        return self.relu(out)


class Bottleneck(nn.Module):
    """ResNet Bottleneck: 1x1-3x3-1x1 with BN, widths planes, planes, planes*expansion."""

    def __init__(self, c_in: int, planes: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = projection(c_in, c_out, stride) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += residual
        return self.relu(out)


class ResizeTo(nn.Sequential):
    """[1x1 conv + BN projection, as ``0`` and ``1``] then interpolate to the target node's size.

    Used where the official code resizes to a reference map's size
    (``F.interpolate(x, size=ref.shape[2:])``) rather than by a fixed factor; the
    projection's keys match HRNetV2's ``fuse_layers[i][j].0/1``.
    """

    def __init__(self, project: nn.Sequential | None, mode: str, align_corners: bool | None):
        super().__init__(*(project or ()))
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor, size: list[int]) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x)
        return F.interpolate(x, size=size, mode=self.mode, align_corners=self.align_corners)


class GlobalAvgPool(nn.Module):
    """Average over H and W and flatten to (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the mean over the whole map, as timm's HRNet head pools (the official code's
        # F.avg_pool2d(x, kernel_size=x.shape[2:]) is the same mean, up to float rounding)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)
