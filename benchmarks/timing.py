"""An interleaved timer, and the statistics the tables report.

Interleaving: every round calls each contestant once, in a fresh random order, so that whatever
else the machine does at a given moment (other processes' test runs on a shared machine, thermal
and frequency changes) falls on all of them alike. A contestant's figure is its median time; its
*ratio* is the median, over rounds, of (its time / the reference's time in the same round), with
a bootstrap 95% confidence interval for that median. The garbage collector is off while timing.
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


def interleaved(calls: dict[str, Callable[[], Any]], rounds: int, warmup: int = 2,
                seed: int = 0) -> dict[str, list[float]]:
    """Seconds per call of each entry, ``rounds`` times, interleaved in random order."""
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
                call = calls[name]
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
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
