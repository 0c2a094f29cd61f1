"""The contestants on a CUDA GPU: eager, under ``torch.compile`` and replayed as a CUDA graph; peak memory.

Each contestant (:mod:`benchmarks.models`: the reference, the executor, the generated source and the
optimised module, copied to the device with the same weights by :func:`benchmarks.models.on`) runs
in three *modes*, each a call that returns the forward's output:

* ``eager``: the module as it is;
* ``torch.compile``: ``torch.compile(module, dynamic=False)`` (TorchInductor, its default mode), a
  static-shape compilation per batch size (``torch.compiler.reset()`` before each case); the first
  call, which compiles, is timed on its own and is not one of the timed calls;
* ``CUDA graph``: the forward on a static input, warmed up on a side stream and then captured in a
  ``torch.cuda.CUDAGraph``, as PyTorch's documentation describes; a call is ``replay()``, with the
  input already in the static buffer.

:func:`measure` takes one case (a network's contestants on the device, a batch): the peak memory of
an eager forward of each (:func:`peak`), every variant's output checked against the eager
reference's (:func:`check`), then all variants timed in interleaved rounds
(:func:`benchmarks.timing.interleaved`) with the CUDA-event timer.

On a machine without CUDA the same functions run on the CPU (``python -m benchmarks.run gpu
--quick``): the wall-clock timer, the CPU allocator's peak, no CUDA graphs. That checks the code
path, nothing more.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Callable

import torch
from torch import nn

from benchmarks.models import NAMES, Contestants, outputs, relative
from benchmarks.timing import cuda_events, interleaved, wall

MODES = ("eager", "torch.compile", "CUDA graph")


def modes(device: str) -> tuple[str, ...]:
    """The modes that run on ``device``: CUDA graphs need CUDA."""
    return MODES if device == "cuda" else MODES[:2]


def _sync(x: torch.Tensor) -> None:
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)


def compiled(module: nn.Module, x: torch.Tensor) -> tuple[Callable[[], Any], float]:
    """``torch.compile(module)`` called on ``x``, and the seconds its first call took (the compilation)."""
    fn = torch.compile(module, dynamic=False)
    _sync(x)
    start = time.perf_counter()
    fn(x)
    _sync(x)
    return (lambda: fn(x)), time.perf_counter() - start


def graphed(module: nn.Module, x: torch.Tensor, warmup: int = 3) -> Callable[[], Any]:
    """``module``'s forward on a copy of ``x`` captured in a CUDA graph: a call that replays it and returns
    the captured output (static tensors, overwritten by each replay)."""
    static = x.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the default stream: lazy initialisation, cuDNN's choices
        for _ in range(warmup):
            module(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = module(static)

    def replay():
        graph.replay()
        return out

    return replay


def variants(c: Contestants, x: torch.Tensor, run: tuple[str, ...]) -> tuple[dict[str, Callable[[], Any]],
                                                                           dict[str, float]]:
    """Every contestant in every mode of ``run``, as calls named ``"executor, torch.compile"`` and so on,
    and the compilation seconds of each contestant (when ``torch.compile`` is one of the modes)."""
    calls, compile_s = {}, {}
    for name in NAMES:
        module = getattr(c, name)
        calls[f"{name}, eager"] = lambda m=module: m(x)
        if "torch.compile" in run:
            calls[f"{name}, torch.compile"], compile_s[name] = compiled(module, x)
        if "CUDA graph" in run:
            calls[f"{name}, CUDA graph"] = graphed(module, x)
    return calls, compile_s


def check(calls: dict[str, Callable[[], Any]], reference: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Every call's outputs against the eager reference's on ``x``, relative to their largest value; raises
    past the limit: 1e-4, or ten times the reference's own distance from its float64 output if that is
    more (TF32 convolutions, PyTorch's default on CUDA, move it; a wrong weight moves it by far more)."""
    expected = outputs(reference(x))
    drift = relative(expected, outputs(copy.deepcopy(reference).double()(x.double())))
    limit = max(1e-4, 10 * drift)
    diffs = {}
    for name, call in calls.items():
        diffs[name] = relative(outputs(call()), expected)
        if not diffs[name] <= limit:
            raise AssertionError(f"{name} differs from the eager reference by {diffs[name]:.3g} (limit {limit:.3g})")
    return {"diffs": diffs, "limit": limit, "reference_vs_float64": drift}


def cuda_peak(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes: the most torch's CUDA allocator held during one forward (after a warm-up one) above what it
    held before (the weights, the input), plus the input: activations and operators' workspace."""
    with torch.inference_mode():
        module(x)
        torch.cuda.synchronize(x.device)
        before = torch.cuda.memory_allocated(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        out = module(x)
        torch.cuda.synchronize(x.device)
        peak = torch.cuda.max_memory_allocated(x.device)
        del out
    return peak - before + x.untyped_storage().nbytes()


def peak(module: nn.Module, x: torch.Tensor) -> int:
    """:func:`cuda_peak` on CUDA; on the CPU the same quantity at the CPU allocator (``allocator_peak``'s
    total: input, activations and workspace)."""
    if x.device.type == "cuda":
        return cuda_peak(module, x)
    from archgraph.analysis.measure import allocator_peak

    return allocator_peak(module, x).total


def measure(c: Contestants, batch: int, rounds: int) -> dict[str, Any]:
    """One case on ``c``'s device: peak memory of each contestant's eager forward, then every mode of
    every contestant built, checked and timed (``times_s``, keyed like :func:`variants`'s calls)."""
    x = c.input(batch)
    peaks = {name: peak(getattr(c, name), x) for name in NAMES}
    torch.compiler.reset()  # compile afresh for each case, and never reach the recompile limit across cases
    try:
        with torch.inference_mode():
            calls, compile_s = variants(c, x, modes(c.device))
            checked = check(calls, c.reference, x)
            times = interleaved(calls, rounds, timer=cuda_events if c.device == "cuda" else wall)
    finally:
        torch.compiler.reset()
    return {"times_s": times, "compile_s": compile_s, **checked, "peak_bytes": peaks}
