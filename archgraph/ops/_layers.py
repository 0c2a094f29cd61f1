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
                bias: bool = False, bn: bool = True, act: str = "relu", dilation: int = 1) -> nn.Sequential:
    """conv -> [BN] -> [ReLU or leaky ReLU], as ``0``, ``1``, ``2`` in a Sequential (the official layout).

    ``padding=None`` pads by ``dilation * (kernel // 2)``, which keeps HxW at stride 1.
    """
    padding = dilation * (kernel // 2) if padding is None else padding
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation, bias=bias)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM))
    if act == "relu":
        layers.append(nn.ReLU(inplace=True))
    elif act == "leaky_relu":  # inplace_abn's default activation: AlignSeg's InPlaceABNSync is BN + this
        layers.append(nn.LeakyReLU(0.01, inplace=True))
    return nn.Sequential(*layers)


def projection(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """ResNet's shortcut when width or resolution changes: 1x1 conv (strided) + BN."""
    return conv_bn_act(c_in, c_out, 1, stride, 0, act="none")


class BasicBlock(nn.Module):
    """ResNet BasicBlock: 3x3-BN-ReLU-3x3-BN, plus the shortcut, then ReLU.

    ``dilation`` dilates ``conv2`` (padding as much), as SFSegNets' dilated trunk does.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)
        self.downsample = projection(c_in, c_out, stride) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the official order, one call per line: each intermediate goes as soon as the next exists,
        # and the shortcut is computed last (peak memory as the official code's)
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        residual = x if self.downsample is None else self.downsample(x)
        out += residual
        return self.relu(out)


class Bottleneck(nn.Module):
    """ResNet Bottleneck: 1x1-3x3-1x1 with BN, widths planes, planes, planes*expansion.

    ``dilation`` dilates the 3x3 ``conv2`` (padding as much), which keeps its stride.
    """

    def __init__(self, c_in: int, planes: int, c_out: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = projection(c_in, c_out, stride) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # as BasicBlock: the official order, one call per line, the shortcut last
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv3(out)
        out = self.bn3(out)
        residual = x if self.downsample is None else self.downsample(x)
        out += residual
        return self.relu(out)


class ResizeTo(nn.Sequential):
    """[1x1 conv + BN projection, as ``0`` and ``1``] then interpolate to ``size``: the target node's
    or the network input's H and W.

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


class ResidualConvUnit(nn.Module):
    """RefineNet's RCU: ReLU-conv3x3-ReLU-conv3x3 + identity, no BN (Lin et al., CVPR 2017).

    Names and biases as the PyTorch ports of the released model (thomasjpfan/pytorch_refinenet's
    ``ResidualConvUnit``; DrSleep/refinenet-pytorch's ``RCUBlock`` calls them ``{i}_conv`` and
    ``{i}_conv_relu_varout_dimred``): ``conv1`` with bias, ``conv2`` without. The first ReLU is
    not in place: ``x`` itself is the residual.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(x))
        out = self.conv2(F.relu(out, inplace=True))
        out += x
        return out


class ChainedResidualPool(nn.Sequential):
    """RefineNet's CRP: [ReLU], then n blocks of 5x5 stride-1 max pooling + conv (no bias), chained,
    each block's output added to a running sum that starts at the input.

    The convs are ``1_outvar_dimred`` ... ``n_outvar_dimred``, as DrSleep's ``CRPBlock`` names
    them (light-weight-refinenet and refinenet-pytorch, ``utils/layer_factory.py``); the pooling
    has no weights and is called as a function. The ReLU is not in place.
    """

    def __init__(self, channels: int, n: int, kernel: int = 3, relu: bool = True):
        super().__init__()
        for i in range(n):
            conv = nn.Conv2d(channels, channels, kernel, 1, kernel // 2, bias=False)
            self.add_module(f"{i + 1}_outvar_dimred", conv)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.relu:
            x = F.relu(x)
        top = x
        for conv in self:
            top = conv(F.max_pool2d(top, 5, 1, 2))
            x = top + x
        return x


def warp(x: torch.Tensor, flow: torch.Tensor, nx: float, ny: float, align_corners: bool) -> torch.Tensor:
    """``x`` sampled bilinearly on the base grid over [-1, 1] at ``flow``'s HxW, shifted by flow / (nx, ny).

    Op for op SFNet's ``AlignedModule.flow_warp`` (SFNet; (nx, ny) = (W, H) of the output) and
    AlignSeg's ``bilinear_interpolate_torch_gridsample`` (``CAB``'s: (W, H) of its input, or (H, W)
    before the repository's issue #7; ``CAM``'s: (H, W) of the pooled map it samples), so that
    outputs match theirs bit for bit. The grid's last axis is (x, y), as ``F.grid_sample`` takes
    it; flow channel 0 moves along x, channel 1 along y.
    """
    n, _, out_h, out_w = flow.shape
    # made on x's device (in float32, then cast, as theirs): no host-to-device copy per call, which
    # would cost a GPU a transfer of the whole grid and keep a forward from being captured as a CUDA graph
    rows = torch.linspace(-1.0, 1.0, out_h, device=x.device).view(-1, 1).repeat(1, out_w)
    cols = torch.linspace(-1.0, 1.0, out_w, device=x.device).repeat(out_h, 1)
    grid = torch.cat((cols.unsqueeze(2), rows.unsqueeze(2)), 2)
    grid = grid.repeat(n, 1, 1, 1).type_as(x)
    norm = torch.full((1, 1, 1, 2), float(nx), device=x.device)
    norm[..., 1] = ny
    grid = grid + flow.permute(0, 2, 3, 1) / norm.type_as(x)
    return F.grid_sample(x, grid, align_corners=align_corners)


class AlignedModule(nn.Module):
    """SFNet's flow alignment module (FAM): the coarse map ``x`` warped onto the fine ``guide``'s grid.

    Li et al., "Semantic Flow for Fast and Accurate Scene Parsing", ECCV 2020; ``AlignedModule`` of
    lxtGH/SFSegNets (``network/nn/operators.py``), whose attribute names it keeps: ``down_h`` and
    ``down_l`` (1x1 convs, no bias) bring the coarse and the fine map to ``mid`` channels, the
    coarse one is resized bilinearly (align_corners=True) to the guide's size, and ``flow_make``
    (3x3, no bias) turns their concatenation into a 2-channel flow that warps the original coarse
    map. Returns the warped map (``x``'s width, the guide's HxW); the caller adds the guide.
    ``align_corners`` is grid_sample's: True in the official code, PyTorch's default (False) in
    an older, widely quoted copy of the module.
    """

    def __init__(self, c_in: int, c_guide: int, mid: int, align_corners: bool = True):
        super().__init__()
        self.down_h = nn.Conv2d(c_in, mid, 1, bias=False)
        self.down_l = nn.Conv2d(c_guide, mid, 1, bias=False)
        self.flow_make = nn.Conv2d(mid * 2, 2, 3, padding=1, bias=False)
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        h, w = guide.shape[-2:]
        high = F.interpolate(self.down_h(x), size=(h, w), mode="bilinear", align_corners=True)
        flow = self.flow_make(torch.cat([high, self.down_l(guide)], 1))
        return warp(x, flow, float(w), float(h), self.align_corners)


def leaky(x: torch.Tensor) -> torch.Tensor:
    """inplace_abn's default activation, in place: a leaky ReLU of slope 0.01 (its ``activation_param``,
    a literal, as TorchScript needs; ``conv_bn_act(act="leaky_relu")`` appends the same as a module)."""
    return F.leaky_relu(x, 0.01, inplace=True)


class ABNSequential(nn.Sequential):
    """A Sequential in which every BatchNorm is followed by a leaky ReLU (:func:`leaky`).

    AlignSeg's decoder normalises with ``inplace_abn``'s ``InPlaceABNSync``, which in eval mode is a
    BatchNorm followed by its default activation. Keeping the BatchNorm as the Sequential's own
    entry (rather than a BN + activation pair) keeps the official keys: ``residual.1.weight``, not
    ``residual.1.0.weight``. inplace_abn scales by |weight| + eps rather than by the weight:
    :mod:`archgraph.weights.alignseg` converts the official checkpoints' weights on import.
    """

    def __init__(self, *layers: nn.Module):
        super().__init__(*layers)
        # the BNs' positions, found once: TorchScript may not see a module's class through isinstance
        self.activated: list[int] = [i for i, layer in enumerate(layers) if isinstance(layer, nn.BatchNorm2d)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self):
            x = layer(x)
            if i in self.activated:
                x = leaky(x)
        return x


class ZeroConv2d(nn.Conv2d):
    """A conv whose weight starts at zero (its ``reset_parameters``: what rebuilding it starts from)."""

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


def offset_generator(c_in: int, mid: int, act: str = "leaky_relu") -> nn.Sequential:
    """AlignSeg's ``delta_gen``: 1x1 conv (no bias) to ``mid``, BN [+ leaky ReLU], 3x3 conv (no bias) to 2.

    As ``0``, ``1``, ``2``, the official keys. The BN is ``InPlaceABNSync``'s (:class:`ABNSequential`;
    ``act="none"`` leaves the activation out). The last conv is zero-initialised, as in the
    official code, so that a new module starts as plain resizing.
    """
    layers = [
        nn.Conv2d(c_in, mid, 1, bias=False),
        nn.BatchNorm2d(mid, momentum=BN_MOMENTUM),
        ZeroConv2d(mid, 2, 3, padding=1, bias=False),
    ]
    return ABNSequential(*layers) if act == "leaky_relu" else nn.Sequential(*layers)


class CAB(nn.Module):
    """AlignSeg's aligned feature aggregation (``CAB``): both maps warped onto the guide's grid, summed.

    Huang et al., "AlignSeg: Feature-Aligned Segmentation Networks", TPAMI 2021; ``CAB`` of
    speedinghzl/AlignSeg (``networks/alignseg.py``), whose attribute names it keeps. The coarse map
    ``x`` is resized bilinearly (align_corners=True) to the guide's size and concatenated after
    the guide; two offset generators ``delta_gen1``/``delta_gen2`` (:func:`offset_generator`) give
    one offset field per map; each map is warped by its own and the two are summed. ``x`` and the
    guide have the same width, which the output keeps. ``norm`` is the order of the sizes the
    offsets are divided by: "wh" (x by W, y by H), the official code's since its issue #7, or "hw",
    the order before.
    """

    def __init__(self, channels: int, mid: int, act: str = "leaky_relu", align_corners: bool = False,
                 norm: str = "wh"):
        super().__init__()
        self.delta_gen1 = offset_generator(channels * 2, mid, act)
        self.delta_gen2 = offset_generator(channels * 2, mid, act)
        self.align_corners = align_corners
        self.swap = norm == "hw"

    def forward(self, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        h, w = guide.shape[-2:]
        high = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=True)
        concat = torch.cat((guide, high), 1)
        delta1 = self.delta_gen1(concat)
        delta2 = self.delta_gen2(concat)
        nx, ny = (float(h), float(w)) if self.swap else (float(w), float(h))
        high = warp(high, delta1, nx, ny, self.align_corners)
        high += warp(guide, delta2, nx, ny, self.align_corners)
        return high


class CAM(nn.Module):
    """AlignSeg's aligned context module (``CAM``, the paper's AlignCM): pooled context, warped per pixel.

    ``CAM`` of speedinghzl/AlignSeg (``networks/alignseg.py``), whose attribute names it keeps:
    ``pool`` (adaptive average pooling to ``bins`` x ``bins``, 1x1 conv to the input's width, BN,
    3x3 conv to ``channels``, BN) and ``adapt`` (the same convs at the input's size) each end in
    ``channels``; ``delta_gen`` (:func:`offset_generator`, ``mid`` = ``channels``) reads the adapted
    map and the pooled one resized bilinearly (align_corners=True) to the input's size; the
    *pooled* map itself is sampled on the input-sized grid shifted by the offsets / (H, W) of the
    pooled map, with grid_sample's default align_corners (False), and the adapted map is added.
    Every BN is an ``InPlaceABNSync`` (:class:`ABNSequential`); no conv has a bias.
    """

    def __init__(self, c_in: int, channels: int, bins: int = 3):
        super().__init__()

        def convs() -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_in, 1, bias=False),
                nn.BatchNorm2d(c_in, momentum=BN_MOMENTUM),
                nn.Conv2d(c_in, channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels, momentum=BN_MOMENTUM),
            ]

        self.pool = ABNSequential(nn.AdaptiveAvgPool2d(bins), *convs())
        self.adapt = ABNSequential(*convs())
        self.delta_gen = offset_generator(channels * 2, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pooled = self.pool(x)
        local = self.adapt(x)
        up = F.interpolate(pooled, size=(h, w), mode="bilinear", align_corners=True)
        delta = self.delta_gen(torch.cat((local, up), 1))
        out = warp(pooled, delta, float(pooled.shape[-2]), float(pooled.shape[-1]), False)
        out += local
        return out


class RRB(nn.Module):
    """AlignSeg's refinement residual block (``RRB``): a 1x1 conv, a residual of two 3x3 convs, BN after the sum.

    ``RRB`` of speedinghzl/AlignSeg (``networks/alignseg.py``), after DFN's block of that name
    (Yu et al., "Learning a Discriminative Feature Network for Semantic Segmentation", CVPR 2018),
    with its attribute names: ``unify`` (1x1 conv to ``channels``), ``residual`` (3x3 conv to
    ``channels // 4``, BN, 3x3 conv back to ``channels``) and ``norm``, the BN of their sum. No conv
    has a bias; every BN is an ``InPlaceABNSync`` (BN + leaky ReLU).
    """

    def __init__(self, c_in: int, channels: int):
        super().__init__()
        self.unify = nn.Conv2d(c_in, channels, 1, bias=False)
        self.residual = ABNSequential(
            nn.Conv2d(channels, channels // 4, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels // 4, momentum=BN_MOMENTUM),
            nn.Conv2d(channels // 4, channels, 3, padding=1, bias=False),
        )
        self.norm = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.unify(x)
        return leaky(self.norm(x + self.residual(x)))


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling module, as SFNet's ``PSPModule`` builds it (keys ``stages``, ``bottleneck``).

    Zhao et al., "Pyramid Scene Parsing Network", CVPR 2017; lxtGH/SFSegNets
    ``network/nn/operators.py``. Each stage: adaptive average pooling to b x b, 1x1 conv (no bias)
    to ``channels`` and BN (no ReLU), resized bilinearly (align_corners=True) back to the input's
    size; the stages and the input are concatenated (input last), then 1x1 conv (no bias) + BN +
    ReLU + Dropout2d to ``channels``.
    """

    def __init__(self, c_in: int, channels: int, bins: tuple[int, ...] = (1, 2, 3, 6), dropout: float = 0.1):
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(b),
                nn.Conv2d(c_in, channels, 1, bias=False),
                nn.BatchNorm2d(channels, momentum=BN_MOMENTUM),
            )
            for b in bins
        )
        self.bottleneck = nn.Sequential(
            nn.Conv2d(c_in + len(bins) * channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Dropout2d(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        priors = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=True) for stage in self.stages]
        return self.bottleneck(torch.cat(priors + [x], 1))
