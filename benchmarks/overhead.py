"""The executor's own Python overhead, per forward.

Two measurements:

* ``glue``: the executor's ``_run`` over its real schedule with every edge module and body replaced by
  a Python function that returns its input, on a 1x1 input: what remains is the schedule walk,
  ``_merge``, the input check (cached per shape), the dict of live tensors, and the adds and ReLUs
  of the merges (torch calls the reference makes too, here on 3-element tensors);
* a dispatch-bound forward: the full network on a tiny input (32 x 32), where the arithmetic is
  small and per-call overheads dominate, executor and generated source against the reference.
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import torch

import archgraph


def glue(spec: str, rounds: int = 2000, **params) -> dict[str, float]:
    """Microseconds per forward spent in the executor's walk (modules stubbed out)."""
    module = archgraph.build(spec, device="meta", **params)

    def ident(t, *args):
        return t

    schedule = []
    for step in module._schedule:
        inputs = tuple(dataclasses.replace(i, module=None if i.module is None else ident) for i in step.inputs)
        schedule.append(dataclasses.replace(step, inputs=inputs, body=None if step.body is None else ident))
    module._schedule = schedule
    x = torch.zeros(1, module.graph.input.channels, 1, 1)
    module._accepted.add(tuple(x.shape[1:]))  # a 1x1 input: accept it as a cached, checked shape
    times = []
    with torch.inference_mode():
        for _ in range(100):
            module._run(x, True)
        for _ in range(rounds):
            start = time.perf_counter()
            module._run(x, True)
            times.append(time.perf_counter() - start)
    return {"steps": len(schedule), "median_us": statistics.median(times) * 1e6, "min_us": min(times) * 1e6}


def merge_torch_calls_us(rounds: int = 20000) -> dict[str, float]:
    """What one add and one in-place ReLU on a 3-element tensor cost (the glue's torch part)."""
    x = torch.zeros(1, 3, 1, 1)
    with torch.inference_mode():
        start = time.perf_counter()
        for _ in range(rounds):
            y = x + x
        add = (time.perf_counter() - start) / rounds
        start = time.perf_counter()
        for _ in range(rounds):
            torch.relu_(y)
        relu = (time.perf_counter() - start) / rounds
    return {"add_us": add * 1e6, "relu_us": relu * 1e6}
