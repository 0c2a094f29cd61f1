"""An interleaved timer, and the statistics the tables report.

Interleaving: every round calls each contestant once, in a fresh random order, so that whatever
else the machine does at a given moment (other processes' test runs on a shared machine, thermal
and frequency changes) falls on all of them alike. A contestant's figure is its median time; its
*ratio* is the median, over rounds, of (its time / the reference's time in the same round), with
a bootstrap 95% confidence interval for that median. The garbage collector is off while timing.

A *timer* takes a call, makes it and returns its seconds: :func:`wall` (the wall clock, around the
call) and :func:`cuda_events` (CUDA events recorded on the current stream before and after the
call, the device synchronised before and after) are interchangeable in :func:`interleaved`.
"""

from __future__ import annotations

import gc
import os
import platform
import random
import statistics
import time
from typing import Any, Callable

import torch


def wall(call: Callable[[], Any]) -> float:
    """Seconds of wall-clock time the call takes."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def cuda_events(call: Callable[[], Any]) -> float:
    """Seconds between two CUDA events around the call. The device is synchronised first, so that the
    start event is not queued behind earlier work: the figure is the call's latency (launching its
    kernels included), not just the GPU's busy time."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    call()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3  # elapsed_time is in milliseconds


def interleaved(calls: dict[str, Callable[[], Any]], rounds: int, warmup: int = 2,
                seed: int = 0, timer: Callable[[Callable[[], Any]], float] = wall) -> dict[str, list[float]]:
    """Seconds per call of each entry (measured by ``timer``), ``rounds`` times, interleaved in random order."""
    rng = random.Random(seed)
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            order = list(calls)
            rng.shuffle(order)
            for name in order:
                times[name].append(timer(calls[name]))
    finally:
        gc.enable()
    return times


def ratio(times: list[float], base: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Median of the paired ratios times[i] / base[i], with a bootstrap 95% interval."""
    pairs = [t / b for t, b in zip(times, base)]
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(pairs, k=len(pairs))) for _ in range(resamples))
    return statistics.median(pairs), medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1e3


def loadavg() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def conditions(threads: int) -> dict[str, Any]:
    return {
        "cpu": cpu_name(), "cores": os.cpu_count(), "threads": threads, "torch": torch.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "mkldnn": torch.backends.mkldnn.is_available(), "load average (1/5/15 min)": loadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def gpu_conditions() -> dict[str, Any]:
    """The CUDA device and the settings that change its float32 arithmetic, as they are (PyTorch's
    defaults unless the caller changed them: TF32 in cuDNN's convolutions on, in matmuls off)."""
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return {
        "gpu": props.name, "gpu memory": f"{props.total_memory / 2**30:.0f} GiB", "CUDA": torch.version.cuda,
        "cuDNN": torch.backends.cudnn.version(),
        "TF32 in convolutions (cudnn.allow_tf32)": torch.backends.cudnn.allow_tf32,
        "TF32 in matmuls (cuda.matmul.allow_tf32)": torch.backends.cuda.matmul.allow_tf32,
        "cudnn.benchmark": torch.backends.cudnn.benchmark,
    }
