"""Peak memory of one forward, measured at torch's allocator, and what the allocations were.

``tracemalloc`` cannot see torch's allocations, and RSS moves in pages and with the C library's
caching, so neither says what a forward holds. ``archgraph.analysis.measure.allocator_peak`` uses
``torch.profiler`` with ``profile_memory=True``, which reports every allocation and free of the
CPU allocator (tensor storage, and the scratch buffers operators take through it) with its time
and the operator that made it. Two figures come out of one forward (the input included, which the
static model counts as live throughout; parameters and buffers excluded, they exist before):

* ``activations``: the most the allocator holds at the end of a top-level operator (one not
  called by another): the tensors that outlive the operator that made them. This is the quantity
  the static model's peak estimates (``archgraph profile``: peak live activations);
* ``total``: the most it holds at any moment, operators' *workspace* included: buffers an
  operator allocates and frees before it returns.

:func:`label` names each workspace allocation by its size against the operator's arguments and
result, and :func:`survey` counts the kinds over a whole forward. On the CPU (float32) they are:

* a convolution on PyTorch's oneDNN path (``aten::mkldnn_convolution``, weights in NCHW, not
  reordered beforehand) copies its input, its weights and its output into oneDNN's blocked
  layout, then the output back: workspace = input + weights + output bytes (a 3-channel input is
  read as it is: weights + output). PyTorch takes that path unless, on one thread, the conv is
  1x1 and unstrided with batch < 16, or the batch is 1 and the input has at most 20,480 elements;
* a convolution on the native path (``aten::_slow_conv2d_forward``) unfolds its input (im2col):
  N x C_in x kh x kw x H_out x W_out elements, none for a 1x1 unstrided conv;
* a strided 1x1 convolution on the oneDNN path also takes a scratchpad (the input subsampled to
  the output's grid);
* max pooling (``aten::max_pool2d``) runs as ``max_pool2d_with_indices`` and drops the int64
  indices (8 bytes per output element): the one workspace the static model counts too;
* nearest upsampling (``aten::upsample_nearest2d``) computes in channels_last: a copy of its input
  and an output-sized buffer, copied into the NCHW result;
* BatchNorm in eval: two per-channel vectors (scale and shift).

With oneDNN switched off (``torch.backends.mkldnn.flags(enabled=False)``) every conv takes the
native path: the activations are the same, the workspace is im2col's.
"""

from __future__ import annotations

import math
from collections import Counter

from archgraph.analysis.measure import AllocatorPeak, OpAllocations, allocator_peak

__all__ = ["AllocatorPeak", "allocator_peak", "describe", "label", "survey"]

FLOAT = 4  # bytes per element: the benchmarks run float32


def path(op: OpAllocations) -> str:
    """The kernel a top-level conv ran on: 'oneDNN', 'native' or '' (not a conv)."""
    if "aten::mkldnn_convolution" in op.calls:
        return "oneDNN"
    if "aten::_slow_conv2d_forward" in op.calls or "aten::thnn_conv2d" in op.calls:
        return "native"
    return ""


def label(op: OpAllocations, sizes: tuple[int, ...] | None = None) -> list[str]:
    """A name for each of ``op``'s workspace allocations (or of ``sizes``, some of them), in order."""
    sizes = op.workspace if sizes is None else sizes
    x = FLOAT * math.prod(op.shapes[0]) if op.shapes else -1
    y = op.outputs[0] if op.outputs else -1
    names = []
    if op.name == "aten::conv2d" and len(op.shapes) > 1:
        w = FLOAT * math.prod(op.shapes[1])
        c = op.shapes[0][1]
        k = math.prod(op.shapes[1][2:])
        columns = y // op.shapes[1][0] * c * k if y > 0 else -1  # N x C_in x kh x kw x H_out x W_out, in bytes
        for size in sizes:
            if path(op) == "native" and size == columns:
                names.append("im2col columns")
            elif size == x and "input copy" not in names:
                names.append("input copy")
            elif size == w and "weights copy" not in names:
                names.append("weights copy")
            elif size == y and "output copy" not in names:
                names.append("output copy")
            else:
                names.append("scratchpad" if path(op) == "oneDNN" else "other")
    elif op.name.startswith("aten::upsample_"):
        names = ["input, channels_last" if s == x else "output, channels_last" if s == y else "other"
                 for s in sizes]
    elif op.name == "aten::max_pool2d":
        names = ["int64 indices" if s == 2 * y else "other" for s in sizes]
    elif op.name == "aten::batch_norm" and op.shapes:
        channels = op.shapes[0][1]
        names = ["per-channel vector" if s == FLOAT * channels else "other" for s in sizes]
    else:
        names = ["other"] * len(sizes)
    return names


def survey(peak: AllocatorPeak) -> dict[tuple[str, str], Counter]:
    """For each operator kind (name, conv path): how many calls had which workspace allocations."""
    kinds: dict[tuple[str, str], Counter] = {}
    for op in peak.ops:
        kinds.setdefault((op.name, path(op)), Counter())[" + ".join(label(op)) or "none"] += 1
    return kinds


def describe(peak: AllocatorPeak) -> str:
    """The operator at the allocator's peak and its workspace then, e.g. ``aten::conv2d 512->1024 3x3
    (oneDNN): input copy 0.38 MiB + weights copy 18.00 MiB + output copy 0.19 MiB``."""
    op = peak.at
    if op is None:
        return "between operators"
    what = op.name
    if op.name == "aten::conv2d" and len(op.shapes) > 1:
        out, cin, kh, kw = op.shapes[1]
        what += f" {cin}->{out} {kh}x{kw} ({path(op)})"
    if not peak.workspace:
        return what
    sizes = tuple(size for size, _ in peak.workspace)
    return f"{what}: " + " + ".join(f"{name} {_size(size)}" for name, size in zip(label(op, sizes), sizes))


def _size(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**14 else f"{n} B"
