"""Peak activation memory of one forward, measured at the allocator.

``tracemalloc`` cannot see torch's allocations, and RSS moves in pages and with the C library's
caching, so neither says what a forward holds. This uses ``torch.profiler`` with
``profile_memory=True``: PyTorch reports every allocation and free of its CPU allocator (tensor
storage, and the scratch space operators take through it) as a ``[memory]`` event with a signed
size and a timestamp. Summing them in time order gives the bytes the forward holds at every
moment; we report

* ``allocator peak``: the largest such total, plus the input (which the caller allocated before,
  and which the static model counts as live throughout): everything the forward made, at its worst
  moment, scratch included;
* ``between ops``: the largest total at the end of a top-level operator, plus the input: the live
  activations, without what an operator makes and drops inside itself;
* ``largest scratch``: the excess of the first over the second, with the operator where it happened
  (oneDNN reorders a convolution's weights into its blocked layout on every call, when they were not
  reordered beforehand: a transient copy of the weights, not an activation).

Parameters and buffers exist before the forward and are not counted (they are not freed either).
The static model's figure (``archgraph profile``: peak live activations) and a tensor-by-tensor
tracking of live activations (``archgraph.analysis.measure.live_peak``) are reported beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.profiler import ProfilerActivity, profile


@dataclass
class Peak:
    allocator: int  # bytes: peak of everything allocated during the forward, plus the input
    between_ops: int  # bytes: peak at top-level operator boundaries, plus the input
    scratch_op: str  # the operator during which the allocator peak happened


def forward_peak(module: torch.nn.Module, x: torch.Tensor) -> Peak:
    with torch.inference_mode():
        module(x)  # warm: lazily reordered weights, caches
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = module(x)
            del out
    events = prof.profiler.kineto_results.events()
    cpu = torch.autograd.DeviceType.CPU
    memory = sorted((e for e in events if e.name() == "[memory]" and e.device_type() == cpu),
                    key=lambda e: e.start_ns())
    ops = [e for e in events if e.name() != "[memory]" and e.name().startswith("aten::")]
    # top-level operators: not inside another aten operator
    ops.sort(key=lambda e: (e.start_ns(), -e.end_ns()))
    top, end = [], -1
    for op in ops:
        if op.start_ns() >= end:
            top.append(op)
            end = op.end_ns()
    live = peak = 0
    peak_time = 0
    totals = []  # (time, live after the event)
    for e in memory:
        live += e.nbytes()
        totals.append((e.start_ns(), live))
        if live > peak:
            peak, peak_time = live, e.start_ns()
    between = 0
    i, current = 0, 0
    for op in top:
        while i < len(totals) and totals[i][0] <= op.end_ns():
            current = totals[i][1]
            i += 1
        between = max(between, current)
    where = next((op.name() for op in top if op.start_ns() <= peak_time <= op.end_ns()), "between operators")
    extra = x.untyped_storage().nbytes()
    return Peak(peak + extra, between + extra, where)
