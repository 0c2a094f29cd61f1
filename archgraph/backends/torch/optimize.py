"""Inference optimisation of a built network: BatchNorm folded into convs, fused oneDNN kernels, channels_last.

:func:`optimize` rewrites a module tree in place (and returns it), without torch.fx: it walks the
modules and recognises the layers archgraph builds (``archgraph/ops/_layers.py``), whether they
come from the executor (:class:`~archgraph.backends.torch.GraphModule`) or from a generated source
file (which copies those layers verbatim; recognised by name and by the bytecode of ``forward``):

1. **BatchNorm folding.** A ``Conv2d`` directly followed by a ``BatchNorm2d`` (eval statistics) in
   a plain ``nn.Sequential`` (``conv_bn_act``, projection shortcuts, fusion edges, downsampling
   links, ``ResizeTo``), and the ``conv1/bn1``, ``conv2/bn2``, ``conv3/bn3`` pairs of
   ``BasicBlock`` and ``Bottleneck``, become one conv with ``W' = W * g / sqrt(var + eps)`` and
   ``b' = (b - mean) * g / sqrt(var + eps) + beta`` (``torch.nn.utils.fusion.fuse_conv_bn_weights``).
   Only exact ``nn.Conv2d`` / ``nn.BatchNorm2d`` pairs are folded (never a subclass, such as
   ``BatchNormAct``, whose forward does more).
2. **Fused kernels** (CPU, float32, where PyTorch has oneDNN, the default ``mkldnn=None`` decides
   so): each conv becomes a :class:`FusedConv2d` that calls oneDNN's convolution with post-ops
   (``torch.ops.mkldnn._convolution_pointwise``, what TorchInductor's CPU backend emits) on weights
   reordered once into oneDNN's blocked layout: the ReLU that follows a conv is applied by the
   conv kernel, and in residual blocks the shortcut's sum and the final ReLU too (``conv2`` of a
   ``BasicBlock``, ``conv3`` of a ``Bottleneck``). It also sidesteps PyTorch's heuristic that
   sends batch-1 1x1 convs and convs on small maps to its slower native kernel. Where the input
   is not a CPU float32 tensor (the module was moved to CUDA, or to float64), or gradients are
   wanted, it falls back to ``F.conv2d`` with the same arithmetic.
3. **In-place activations**: every ReLU archgraph builds is already in place where that is safe
   (inside ``conv_bn_act`` and the blocks, and on a merged sum); the one that is not, a ReLU on a
   lone identity input (another node's tensor), must not be. Nothing to change there.
4. **channels_last** (default: on the CPU): weights are stored NHWC and activations flow NHWC
   from the first conv on; outputs are returned contiguous (NCHW), so callers see no difference.

Outputs equal the unoptimised module's up to float rounding (tests: within 1e-4 relative). The
optimised module is for inference only: it is put in eval mode, its parameters stop requiring
grad, and its ``state_dict`` is no longer the build's (BN entries are gone, convs have a bias):
load a checkpoint first, then optimise. A conv's reordered weights are remade when its weight
changes (``load_state_dict`` on the optimised module, ``.to()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from archgraph.ops import _layers

CHANNELS_LAST = torch.channels_last


@dataclass
class Report:
    """What :func:`optimize` did, for summaries (``archgraph compile --optimize``)."""

    folded: int = 0  # BatchNorms folded into the preceding conv
    fused_convs: int = 0  # convs running as FusedConv2d (oneDNN, with post-ops)
    fused_relus: int = 0  # ReLUs applied by a conv kernel
    fused_adds: int = 0  # residual sums applied by a conv kernel
    mkldnn: bool = False
    channels_last: bool = False
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{self.folded} BatchNorms folded into convs"]
        if self.mkldnn:
            parts.append(f"{self.fused_convs} convs on oneDNN with {self.fused_relus} ReLUs and "
                         f"{self.fused_adds} residual adds fused")
        parts.append("channels_last" if self.channels_last else "NCHW")
        return ", ".join(parts)


def mkldnn_available() -> bool:
    """oneDNN's fused convolution ops are there (x86/ARM CPU builds with mkldnn)."""
    try:
        return (bool(torch.backends.mkldnn.is_available()) and bool(torch.backends.mkldnn.enabled)
                and hasattr(torch.ops.mkldnn, "_convolution_pointwise"))
    except (AttributeError, RuntimeError):
        return False


def optimize(module: nn.Module, *, mkldnn: Optional[bool] = None, channels_last: Optional[bool] = None) -> nn.Module:
    """Optimise ``module`` for inference, in place; returns it (with ``module.optimize_report``).

    ``mkldnn`` (fused oneDNN convs) defaults to on where the parameters are CPU float32 and
    oneDNN is available; ``channels_last`` defaults to on where the parameters are on the CPU.
    On the meta device only BatchNorm folding applies (the shapes, for counting).
    """
    module.eval()
    param = next(module.parameters(), None)
    device = param.device.type if param is not None else "cpu"
    dtype = param.dtype if param is not None else torch.float32
    if mkldnn is None:
        mkldnn = device == "cpu" and dtype == torch.float32 and mkldnn_available()
    elif mkldnn and not mkldnn_available():
        raise RuntimeError("oneDNN's fused convolutions are not available in this PyTorch build")
    if channels_last is None:
        channels_last = device == "cpu"
    report = Report(mkldnn=bool(mkldnn), channels_last=bool(channels_last))
    with torch.no_grad():
        _rewrite(module, report)
        for p in module.parameters():
            p.requires_grad_(False)
        if channels_last:
            module.to(memory_format=CHANNELS_LAST)
        # oneDNN may hand back NHWC tensors even from NCHW inputs: outputs are made contiguous
        if (channels_last or mkldnn) and not getattr(module, "_archgraph_contiguous_outputs", False):
            module.register_forward_hook(_contiguous_outputs)
            module._archgraph_contiguous_outputs = True
    replan = getattr(module, "_plan", None)  # the executor's schedule holds the modules it calls: remake it
    if callable(replan) and hasattr(module, "_schedule"):
        module._schedule = replan()
    module.optimize_report = report
    return module


def _contiguous_outputs(module, args, output):
    """Forward hook: hand back NCHW tensors, as the unoptimised module does."""
    if isinstance(output, torch.Tensor):
        return output.contiguous()
    if isinstance(output, dict):
        return {k: v.contiguous() if isinstance(v, torch.Tensor) else v for k, v in output.items()}
    if isinstance(output, (tuple, list)):
        return type(output)(v.contiguous() if isinstance(v, torch.Tensor) else v for v in output)
    return output


# --- recognising archgraph's layers ---------------------------------------------------------------


def _code(function) -> tuple:
    code = function.__code__
    return code.co_code, code.co_names, code.co_consts


def _is_layer(module: nn.Module, cls: type) -> bool:
    """``module`` is an instance of ``cls`` from ``_layers``, or of its verbatim copy in a generated file."""
    kind = type(module)
    if kind is cls:
        return True
    return kind.__name__ == cls.__name__ and _code(kind.forward) == _code(cls.forward)


def _is_sequential(module: nn.Module) -> bool:
    """Applies its children one after the other (so that a conv's output is the next child's input)."""
    if not isinstance(module, nn.Sequential):
        return False
    return type(module).forward is nn.Sequential.forward or _is_layer(module, _layers.ResizeTo)


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new conv computing ``bn(conv(x))`` with BN's running statistics."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                      device=conv.weight.device, dtype=conv.weight.dtype)
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics")
    weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                        bn.weight, bn.bias)
    fused.weight, fused.bias = weight, bias
    return fused


def _is_conv(m) -> bool:
    return type(m) in (nn.Conv2d, _layers.ZeroConv2d)  # a plain conv, whatever its starting values


def _is_bn(m) -> bool:
    return type(m) is nn.BatchNorm2d


def _is_relu(m) -> bool:
    return type(m) is nn.ReLU


def _rewrite(module: nn.Module, report: Report) -> None:
    for name, child in list(module.named_children()):
        replacement = _block(child, report)
        if replacement is not None:
            setattr(module, name, replacement)  # ModuleDict, Sequential and attributes alike
        else:
            _rewrite(child, report)
    if _is_sequential(module):
        _sequence(module, report)


def _sequence(seq: nn.Sequential, report: Report) -> None:
    """conv [BN] [ReLU] runs inside a Sequential: one (fused) conv under the conv's key; the rest removed."""
    items = list(seq._modules.items())
    i = 0
    while i < len(items):
        key, m = items[i]
        if not _is_conv(m):
            i += 1
            continue
        j = i + 1
        conv = m
        if j < len(items) and _is_bn(items[j][1]):
            conv = _fold(conv, items[j][1])
            report.folded += 1
            del seq._modules[items[j][0]]
            j += 1
        relu = False
        if report.mkldnn and FusedConv2d.accepts(conv) and j < len(items) and _is_relu(items[j][1]):
            relu = True
            del seq._modules[items[j][0]]
            j += 1
        seq._modules[key] = _conv(conv, relu, report)
        i = j


def _conv(conv: nn.Conv2d, relu: bool, report: Report) -> nn.Module:
    if report.mkldnn and FusedConv2d.accepts(conv):
        report.fused_convs += 1
        report.fused_relus += relu
        return FusedConv2d(conv, relu, report.channels_last)
    return conv


def _block(m: nn.Module, report: Report) -> Optional[nn.Module]:
    """A BasicBlock or Bottleneck, BN folded (and fused, with mkldnn); None for anything else."""
    if _is_layer(m, _layers.BasicBlock):
        pairs = (("conv1", "bn1"), ("conv2", "bn2"))
    elif _is_layer(m, _layers.Bottleneck):
        pairs = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))
    else:
        return None
    if not all(_is_conv(getattr(m, c, None)) and _is_bn(getattr(m, b, None)) for c, b in pairs):
        return None
    convs = []
    for c, b in pairs:
        convs.append(_fold(getattr(m, c), getattr(m, b)))
        report.folded += 1
    if m.downsample is not None:
        _rewrite(m.downsample, report)  # the projection shortcut: a Sequential of conv, BN
    if not report.mkldnn or not all(FusedConv2d.accepts(c) for c in convs):
        for (c, b), conv in zip(pairs, convs):  # the block's own forward, BN now an identity
            setattr(m, c, conv)
            setattr(m, b, nn.Identity())
        return m
    fused = [FusedConv2d(conv, True, report.channels_last) for conv in convs]  # the last: ReLU after the residual sum
    report.fused_convs += len(fused)
    report.fused_relus += len(fused)
    report.fused_adds += 1
    return FusedResidual(fused, m.downsample)


# --- fused modules ------------------------------------------------------------------------------------


class FusedConv2d(nn.Module):
    """conv (BN folded in) [+ residual] [+ ReLU] as one oneDNN kernel on reordered weights.

    ``forward(x, other=None)``: ``relu?(conv(x) [+ other])``. Keys: ``weight``, ``bias``.
    """

    def __init__(self, conv: nn.Conv2d, relu: bool, channels_last: bool = True):
        super().__init__()
        self.channels_last = channels_last  # make the input NHWC (else take it as it comes)
        self.weight = nn.Parameter(conv.weight.detach().clone(), requires_grad=False)
        bias = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(
            conv.out_channels, device=conv.weight.device, dtype=conv.weight.dtype)
        self.bias = nn.Parameter(bias, requires_grad=False)
        self.stride = list(conv.stride)
        self.padding = list(conv.padding)  # type: ignore[arg-type]
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.relu = relu
        self._attr = "relu" if relu else "none"
        self._packed: Optional[torch.Tensor] = None
        self._packed_for: Optional[tuple] = None

    @staticmethod
    def accepts(conv: nn.Conv2d) -> bool:
        return (conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
                and conv.weight.device.type == "cpu" and conv.weight.dtype == torch.float32)

    def extra_repr(self) -> str:
        c_out, c_in, kh, kw = self.weight.shape
        return (f"{c_in * self.groups}, {c_out}, kernel_size=({kh}, {kw}), stride={tuple(self.stride)}, "
                f"padding={tuple(self.padding)}, relu={self.relu}")

    def __getstate__(self):  # the reordered weights are a cache (and oneDNN tensors do not pickle)
        state = self.__dict__.copy()
        state["_packed"], state["_packed_for"] = None, None
        return state

    def _weights(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        try:
            version = w._version
        except RuntimeError:  # an inference tensor: cannot change outside inference mode
            version = None
        key = (w.data_ptr(), version)
        if self._packed_for != key:
            self._packed = torch.ops.mkldnn._reorder_convolution_weight(
                w.contiguous(), self.padding, self.stride, self.dilation, self.groups, list(x.shape))
            self._packed_for = key
        return self._packed  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, other: Optional[torch.Tensor] = None) -> torch.Tensor:
        if (x.device.type != "cpu" or x.dtype != torch.float32 or self.weight.device.type != "cpu"
                or (torch.is_grad_enabled() and x.requires_grad)):
            return self._reference(x, other)
        if self.channels_last:
            x = x.contiguous(memory_format=CHANNELS_LAST)
            other = other.contiguous(memory_format=CHANNELS_LAST) if other is not None else None
        w = self._weights(x)
        if other is None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, w, self.bias, self.padding, self.stride, self.dilation, self.groups, self._attr, [], "")
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, other, w, self.bias, self.padding, self.stride,
            self.dilation, self.groups, "add", None, self._attr, [], "")

    def _reference(self, x: torch.Tensor, other: Optional[torch.Tensor]) -> torch.Tensor:
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if other is not None:
            y = y + other
        return F.relu(y, inplace=True) if self.relu else y


class FusedResidual(nn.Module):
    """A BasicBlock (two convs) or Bottleneck (three), BN folded, the sum and last ReLU in the last conv.

    Keys: ``conv1`` .. ``conv<n>`` and ``downsample.0`` (the projection shortcut, if any), each
    with ``weight`` and ``bias``.
    """

    def __init__(self, convs: list[FusedConv2d], downsample: Optional[nn.Module]):
        super().__init__()
        for i, conv in enumerate(convs, 1):
            self.add_module(f"conv{i}", conv)
        self.downsample = downsample
        self._convs = len(convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.conv1(x)
        if self._convs == 3:
            out = self.conv2(out)
            return self.conv3(out, residual)
        return self.conv2(out, residual)
