"""Measurements of a built module, to hold the static cost model to account: needs torch (and fvcore).

* :func:`fvcore_counts` — ``fvcore.nn.FlopCountAnalysis`` on CPU (its jit trace cannot run on the
  meta device), per fvcore operator;
* :func:`flop_counter_counts` — ``torch.utils.flop_counter.FlopCounterMode`` on the meta device;
* :func:`compare` — each counter's figures beside the static model's, per operator, with what the
  counter ignores named and sized from the static work terms;
* :func:`live_peak` — the peak of live activation bytes of one forward, tracked tensor by tensor;
* :func:`allocator_peak` — one forward at the allocator: the peak of what outlives each operator
  (the activations), and the peak with the operators' own workspace, allocation by allocation;
* :func:`latency` — wall-clock timing (eval, inference mode, warm-up discarded).

Nothing here prints; torch is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import statistics
import time
import weakref
from dataclasses import dataclass
from typing import Any

from archgraph.analysis.cost import CONVENTIONS, Cost
from archgraph.errors import Loc, SpecError
from archgraph.ir.graph import ArchGraph
from archgraph.ir.shapes import infer

# which static work terms each counter's operators count, and with what weight
FVCORE_OPS: dict[str, str] = {  # fvcore's operator name -> the static work term it counts
    "conv": "conv_mac",
    "linear": "linear_mac",
    "batch_norm": "bn",
    "upsample_nearest2d": "upsample_nearest",
    "upsample_bilinear2d": "upsample_bilinear",
    "adaptive_avg_pool2d": "global_pool",  # GlobalAvgPool: F.adaptive_avg_pool2d(x, 1); block ppm's bins
    "grid_sampler": "grid_sample",  # op flow_warp: F.grid_sample
}
FLOP_COUNTER_OPS: dict[str, tuple[str, int]] = {
    "aten.convolution": ("conv_mac", 2),
    "aten.addmm": ("linear_mac", 2),
}
FLOP_COUNTER_IGNORES = "everything but matmul/conv/attention: bias, BN, ReLU, adds, interpolation, pooling"


def _module(graph: ArchGraph, training: bool = False):
    from archgraph.backends.torch import GraphModule

    return GraphModule(graph).train(training)


def fvcore_counts(graph: ArchGraph, size: tuple[int, int] | None = None, batch: int = 1,
                  training: bool = False) -> dict[str, Any]:
    """fvcore's total, its per-operator counts, and the operators it skipped (on CPU, zeros as input)."""
    import torch
    from fvcore.nn import FlopCountAnalysis

    shapes = infer(graph, size)  # the input size is checked here, statically
    module = _module(graph, training)
    if hasattr(module, "check_input"):
        # GraphModule's own input check runs shape inference on x.shape, whose entries are
        # tensors under torch.jit.trace (fvcore traces): it would reject every size
        module.check_input = False
    x = torch.zeros(batch, *shapes.input.dims)
    analysis = FlopCountAnalysis(module, x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return {"total": int(analysis.total()), "by_operator": {k: int(v) for k, v in analysis.by_operator().items()},
            "unsupported": dict(analysis.unsupported_ops())}


def flop_counter_counts(graph: ArchGraph, size: tuple[int, int] | None = None, batch: int = 1) -> dict[str, Any]:
    """``torch.utils.flop_counter.FlopCounterMode`` on the meta device (no weights, no arithmetic)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    shapes = infer(graph, size)
    with torch.device("meta"):
        module = _module(graph).eval()
        x = torch.empty(batch, *shapes.input.dims)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x)
    by_op = {str(k): int(v) for k, v in counter.get_flop_counts()["Global"].items()}
    return {"total": int(counter.get_total_flops()), "by_operator": by_op}


@dataclass(frozen=True)
class Row:
    """One operator of one counter: the static figure beside the measured one."""

    counter: str
    op: str
    static: int
    measured: int
    note: str

    @property
    def difference(self) -> int:
        return self.measured - self.static


def compare(total: Cost, fvcore: dict[str, Any] | None, flop_counter: dict[str, Any] | None,
            training: bool = False) -> list[Row]:
    """Per counter and operator: static vs measured; then what each counter ignores, sized statically."""
    rows: list[Row] = []
    if fvcore is not None:
        conv = CONVENTIONS["fvcore"]
        weighted = {op: (term, conv.weight(term, training)) for op, term in FVCORE_OPS.items()}
        rows += _per_operator("fvcore", weighted, fvcore["by_operator"], total)
        skipped = fvcore.get("unsupported", {})
        for term, note in _ignored(conv, training, total, skipped).items():
            rows.append(Row("fvcore", f"(ignores) {term}", 0, 0, note))
    if flop_counter is not None:
        rows += _per_operator("flop_counter", FLOP_COUNTER_OPS, flop_counter["by_operator"], total)
        counted = {term for term, _ in FLOP_COUNTER_OPS.values()}
        for term, n in total.work.items():
            if term not in counted:
                rows.append(Row("flop_counter", f"(ignores) {term}", 0, 0, f"{n:,} {_UNITS[term]}"))
    return rows


def _per_operator(counter: str, ops: dict[str, tuple[str, int]], measured: dict[str, int], total: Cost) -> list[Row]:
    """One row per operator a counter counts: the static figure (work term x weight) beside its own."""
    rows = []
    for op, (term, weight) in ops.items():
        static = weight * total.work.get(term, 0)
        if static or measured.get(op, 0):
            note = "" if static == measured.get(op, 0) else "differs: a cost rule and the module disagree"
            rows.append(Row(counter, op, static, measured.get(op, 0), note))
    for op, n in measured.items():
        if op not in ops:
            rows.append(Row(counter, op, 0, n, "an operator the static model does not know"))
    return rows


_UNITS = {
    "conv_mac": "multiply-accumulates", "conv_bias": "bias adds", "linear_mac": "multiply-accumulates",
    "linear_bias": "bias adds", "bn": "BN elements", "relu": "ReLU elements", "add": "element adds",
    "upsample_nearest": "nearest-upsampled elements", "upsample_bilinear": "bilinear output elements",
    "global_pool": "pooled input elements", "max_pool": "max-pool comparisons",
    "grid_sample": "grid-sampled output elements", "leaky_relu": "leaky ReLU elements",
}
_ATEN = {"relu": "aten::relu/relu_ (ignored)", "add": "aten::add/add_ (unsupported)",
         "conv_bias": "conv bias", "linear_bias": "linear bias", "max_pool": "aten::max_pool2d (unsupported)",
         "leaky_relu": "aten::leaky_relu/leaky_relu_ (unsupported)"}


def _ignored(conv, training: bool, total: Cost, skipped: dict[str, int]) -> dict[str, str]:
    out = {}
    for term, n in total.work.items():
        if conv.weight(term, training) == 0:
            where = _ATEN.get(term, "")
            calls = {"add": ("aten::add", "aten::add_"), "max_pool": ("aten::max_pool2d",),
                     "leaky_relu": ("aten::leaky_relu", "aten::leaky_relu_")}.get(term, ())
            seen = sum(skipped.get(c, 0) for c in calls)
            out[term] = f"{n:,} {_UNITS[term]}" + (f": {where}" if where else "") + (
                f", {seen} call(s) skipped" if seen else "")
    return out


def live_peak(module, x) -> int:
    """Peak bytes of activations alive at once during ``module(x)`` under ``no_grad``, input included.

    Every tensor an aten op returns is tracked by its storage until the last tensor viewing
    that storage is garbage; parameters, buffers and the input are not new (the input is
    added once, as the static model counts it).
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    known = {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers(), x]}

    class Tracker(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.tensors: dict[int, int] = {}  # id(tensor) -> storage
            self.views: dict[int, list[int]] = {}  # storage -> [tensors viewing it, bytes]
            self.live = self.peak = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    self._track(t)
            return out

        def _track(self, t) -> None:
            storage = t.untyped_storage()
            ptr, nbytes = storage.data_ptr(), storage.nbytes()
            if ptr in known or nbytes == 0 or id(t) in self.tensors:
                return
            self.tensors[id(t)] = ptr
            entry = self.views.setdefault(ptr, [0, nbytes])
            if entry[0] == 0:
                self.live += nbytes
                self.peak = max(self.peak, self.live)
            entry[0] += 1
            weakref.finalize(t, self._gone, id(t), ptr)

        def _gone(self, key: int, ptr: int) -> None:
            self.tensors.pop(key, None)
            entry = self.views[ptr]
            entry[0] -= 1
            if entry[0] == 0:
                self.live -= entry[1]
                del self.views[ptr]

    tracker = Tracker()
    with torch.no_grad(), tracker:
        out = module(x)
    del out
    return tracker.peak + x.untyped_storage().nbytes()


@dataclass(frozen=True)
class OpAllocations:
    """What one top-level operator of a forward (one not called by another) allocated, in bytes."""

    name: str  # aten::conv2d, mkldnn::_convolution_pointwise, ...
    shapes: tuple[tuple[int, ...], ...]  # its tensor arguments'
    calls: tuple[str, ...]  # the operators it called, each once, in the order first called
    workspace: tuple[int, ...]  # allocations it freed before returning, in order
    outputs: tuple[int, ...]  # allocations that outlive it
    peak: int  # the most the allocator held while it ran (the forward's input included)
    end: int  # what the allocator held when it returned (the input included)


@dataclass(frozen=True)
class AllocatorPeak:
    """One forward as torch's allocator saw it, in bytes. The input is counted (the caller made it;
    the static model counts it as live throughout); parameters and buffers are not.

    * ``activations``: the most the allocator held at the end of a top-level operator: the tensors
      that outlive the operator that made them, which is what the static model's peak counts (it
      also counts, during the call, the int64 indices a max pooling makes and drops);
    * ``total``: the most it held at any moment, operators' workspace included;
    * ``at``: the operator during which ``total`` was reached (None if between two), and
      ``workspace``: what it held at that moment and freed before returning, as (bytes, the
      innermost operator that allocated it);
    * ``ops``: every top-level operator, in order.
    """

    activations: int
    total: int
    at: OpAllocations | None
    workspace: tuple[tuple[int, str], ...]
    ops: tuple[OpAllocations, ...]


def allocator_peak(module, x) -> AllocatorPeak:
    """Measure ``module(x)`` (inference mode, after one warm-up call) at the allocator of ``x``'s device.

    ``torch.profiler`` with ``profile_memory=True`` reports every allocation and free (tensor
    storage, and the scratch buffers operators take through the allocator) with its time and the
    operator that made it; summed in order they give what the forward holds at every moment.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if x.device.type == "cuda" else [])
    with torch.inference_mode():
        module(x)  # warm: lazily made caches are not part of a forward
        with profile(activities=activities, profile_memory=True, record_shapes=True) as prof:
            out = module(x)
            del out
    events = []  # (time, bytes, allocation id, top-level operator's index, the operator that allocated it)
    tops = []  # top-level operators' nodes
    calls: dict[int, dict[str, None]] = {}
    stack = [(node, -1) for node in reversed(prof.profiler.kineto_results.experimental_event_tree())]
    while stack:
        node, top = stack.pop()
        if node.name == "[memory]":
            fields = node.extra_fields
            if fields.device.type == x.device.type:
                parent = node.parent.name if node.parent is not None else ""
                events.append((node.start_time_ns, fields.alloc_size, fields.allocation_id, top, parent))
            continue
        if top < 0 and "::" in node.name:  # an operator (aten::, mkldnn::), not an annotation
            top = len(tops)
            tops.append(node)
            calls[top] = {}
        elif top >= 0:
            calls[top][node.name] = None
        stack.extend((child, top) for child in reversed(node.children))
    events.sort(key=lambda e: e[0])
    order = sorted(range(len(tops)), key=lambda i: tops[i].start_time_ns)
    extra = x.untyped_storage().nbytes()
    live = total = 0
    at, k = -1, 0
    ops = []

    def until(time: float) -> None:  # take the events up to ``time`` into the running total
        nonlocal live, total, at, k
        while k < len(events) and events[k][0] <= time:
            live += events[k][1]
            if live > total:
                total, at = live, k
            k += 1

    for i in order:
        node = tops[i]
        until(node.start_time_ns - 1)  # the frees between operators
        first, running = k, live
        until(node.end_time_ns)
        mine = events[first:k]
        high = running
        for e in mine:
            running += e[1]
            high = max(high, running)
        freed = {e[2] for e in mine if e[1] < 0}
        made = [e for e in mine if e[1] > 0]
        shapes = tuple(tuple(a.sizes) for a in getattr(node.extra_fields, "inputs", ()) if hasattr(a, "sizes"))
        ops.append(OpAllocations(node.name, shapes, tuple(calls[i]), tuple(e[1] for e in made if e[2] in freed),
                                 tuple(e[1] for e in made if e[2] not in freed), high + extra, live + extra))
    until(float("inf"))
    peak_op, workspace = None, {}
    if at >= 0 and events[at][3] >= 0:  # what that operator holds at the peak and frees before it returns
        top = events[at][3]
        peak_op = ops[order.index(top)]
        mine = [e for e in events if e[3] == top]
        freed = {e[2] for e in mine if e[1] < 0}
        for e in mine:
            if e[0] > events[at][0]:
                break
            if e[1] > 0:
                workspace[e[2]] = (e[1], e[4])
            else:
                workspace.pop(e[2], None)
        workspace = {key: entry for key, entry in workspace.items() if key in freed}
    return AllocatorPeak(max((op.end for op in ops), default=extra), total + extra, peak_op,
                         tuple(workspace.values()), tuple(ops))


DEVICES = ("cpu", "cuda")
DTYPES = ("float32", "float16", "bfloat16", "float64")


def latency(graph: ArchGraph, size: tuple[int, int] | None = None, batch: int = 1, device: str = "cpu",
            dtype: str = "float32", channels_last: bool = False, warmup: int = 3, runs: int = 10,
            threads: int | None = None) -> dict[str, Any]:
    """Forward-pass wall time in eval + inference mode; warm-up runs are discarded.

    Returns the conditions (device, threads, dtype, batch, input, channels_last, runs) beside
    median, p90, min and IQR in milliseconds, and every run's time.
    """
    base = device.split(":")[0]
    where = Loc("<command line>")
    if base not in DEVICES:
        raise SpecError(f"--device must be cpu or cuda, got {device!r}", where)
    if dtype not in DTYPES:
        raise SpecError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}", where)
    if runs < 1 or warmup < 0:
        raise SpecError("--runs must be at least 1 and --warmup at least 0", where)
    import torch

    if base == "cuda" and not torch.cuda.is_available():
        build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise SpecError(f"--device {device}: no CUDA device is available (torch {torch.__version__}, {build})",
                        where, "use --device cpu")
    if threads is not None:
        torch.set_num_threads(threads)
    shapes = infer(graph, size)
    torch_dtype = getattr(torch, dtype)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    module = _module(graph).eval().to(device=device, dtype=torch_dtype, memory_format=fmt)
    x = torch.randn(batch, *shapes.input.dims, device=device, dtype=torch_dtype).to(memory_format=fmt)
    sync = torch.cuda.synchronize if base == "cuda" else (lambda: None)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            module(x)
        sync()
        for _ in range(runs):
            start = time.perf_counter()
            module(x)
            sync()
            times.append((time.perf_counter() - start) * 1e3)
    ordered = sorted(times)
    quart = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 3
    name = torch.cuda.get_device_name(torch.device(device)) if base == "cuda" else "cpu"
    return {
        "device": device, "device_name": name, "threads": torch.get_num_threads(), "dtype": dtype,
        "batch": batch, "input": list(shapes.input.dims), "channels_last": channels_last,
        "warmup": warmup, "runs": runs, "torch": torch.__version__,
        "median_ms": statistics.median(ordered), "p90_ms": _percentile(ordered, 0.9), "min_ms": ordered[0],
        "iqr_ms": quart[2] - quart[0], "times_ms": times,
    }


def _percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
