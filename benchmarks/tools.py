"""The tools' speed: ``archgraph validate``'s wall time, the static profile against fvcore, building.

``archgraph validate`` is timed as a whole process (interpreter start, imports, the check), with
``hyperfine`` when it is on the PATH (``apt-get install hyperfine``) and a loop of ``subprocess``
runs otherwise; the interpreter's own start (``python -c pass``) and the CLI's imports alone are
timed the same way, for scale. Wall time depends on the machine's load; the CPU time (user +
system) the process used depends on it much less, and is reported beside it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import archgraph

ROOT = Path(__file__).resolve().parents[1]


def _commands(spec: str) -> dict[str, list[str]]:
    python = sys.executable
    script = Path(python).with_name("archgraph")
    validate = [str(script), "validate", spec] if script.exists() else [python, "-m", "archgraph.cli", "validate", spec]
    return {
        f"archgraph validate {spec}": validate,
        "python -c 'import archgraph.cli'": [python, "-c", "import archgraph.cli"],
        "python -c pass": [python, "-c", "pass"],
    }


def process_times(spec: str = "specs/hrnet.yaml", runs: int = 20, warmup: int = 3) -> dict[str, Any]:
    """Wall and CPU seconds of whole processes: mean, min, median, by hyperfine or a subprocess loop."""
    commands = _commands(spec)
    if shutil.which("hyperfine"):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "hyperfine.json"
            # -N: no intermediate shell; the commands' words are simple
            subprocess.run(["hyperfine", "-N", "--style", "none", "--warmup", str(warmup), "--runs", str(runs),
                            "--export-json", str(out), *(shlex.join(c) for c in commands.values())],
                           cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            data = json.loads(out.read_text())
        results = {}
        for name, r in zip(commands, data["results"]):
            results[name] = {"mean": r["mean"], "min": r["min"], "median": r["median"],
                             "cpu": r["user"] + r["system"], "runs": len(r["times"])}
        return {"tool": "hyperfine", "results": results}
    results = {}
    for name, command in commands.items():
        walls, cpus = [], []
        for i in range(warmup + runs):
            before = os.times()
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - start
            after = os.times()
            if i >= warmup:
                walls.append(wall)
                cpus.append((after.children_user - before.children_user) + (after.children_system - before.children_system))
        results[name] = {"mean": statistics.mean(walls), "min": min(walls), "median": statistics.median(walls),
                         "cpu": statistics.mean(cpus), "runs": runs}
    return {"tool": "subprocess loop", "results": results}


_PHASES = r"""
import json, time
t = [time.perf_counter()]
import networkx; t.append(time.perf_counter())
import pydantic, yaml; t.append(time.perf_counter())
import typer, rich.console, rich.table; t.append(time.perf_counter())
import archgraph.cli; t.append(time.perf_counter())
from archgraph.ops.registry import edge_ops, blocks
from archgraph.patterns import patterns
from archgraph.spec.model import models
edge_ops(), blocks(), patterns(), models(); t.append(time.perf_counter())
import archgraph
graph = archgraph.load(SPEC); t.append(time.perf_counter())
from archgraph.ir import infer
infer(graph); t.append(time.perf_counter())
names = ["import networkx", "import pydantic, yaml", "import typer, rich", "import archgraph.cli (the rest)",
         "op and pattern registries, document models (pydantic)", "archgraph.load(spec)", "shape inference"]
print(json.dumps(dict(zip(names, [b - a for a, b in zip(t, t[1:])]))))
"""


def validate_phases(spec: str = "specs/hrnet.yaml", runs: int = 7) -> dict[str, float]:
    """Where ``archgraph validate``'s time goes, in a fresh interpreter each run: the fastest run's phases."""
    best: dict[str, float] | None = None
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _PHASES.replace("SPEC", repr(spec))], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
        phases = json.loads(out.strip().splitlines()[-1])
        if best is None or sum(phases.values()) < sum(best.values()):
            best = phases
    assert best is not None
    return best


def _best(fn, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def static_vs_fvcore(width: int = 48, size: tuple[int, int] = (224, 224), repeat: int = 3) -> dict[str, Any]:
    """``archgraph.analysis.profile`` of a loaded graph against ``FlopCountAnalysis`` of the built module."""
    from fvcore.nn import FlopCountAnalysis

    from archgraph.analysis import convention, profile

    graph = archgraph.load("specs/hrnet.yaml", width=width)
    profile(graph, size)  # warm: op registries, caches
    static_s, prof = _best(lambda: profile(graph, size), max(repeat, 5))
    module = archgraph.build(graph).eval()
    module.check_input = False  # fvcore's jit trace gives shapes as tensors (see analysis.measure)
    x = torch.zeros(1, 3, *size)

    def count() -> int:
        analysis = FlopCountAnalysis(module, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        return int(analysis.total())

    fvcore_s, fv_total = _best(count, repeat)
    static_total = convention("fvcore").count(prof.total)
    return {"network": f"HRNet-W{width}", "input": size, "static_s": static_s, "fvcore_s": fvcore_s,
            "speedup": fvcore_s / static_s, "static_total": static_total, "fvcore_total": fv_total,
            "identical": static_total == fv_total}


def build_times(width: int = 48, rounds: int = 15) -> dict[str, Any]:
    """``archgraph.build`` against instantiating the reference, each against the official call that
    gives the same initialisation: median seconds, and the ratios (median of the rounds' ratios, 95%
    interval).

    The spec carries the official ``init_weights`` as init rules, so ``build`` (from the file, and from
    a loaded graph) is compared with the official entry point ``get_cls_net`` (the constructor, then
    ``init_weights``). The same graph without its rules (PyTorch's defaults) is compared with the bare
    constructor: construction alone, like for like.
    """
    from benchmarks.timing import interleaved, ratio
    from tests.reference import hrnet_official as official

    graph = archgraph.load("specs/hrnet.yaml", width=width)
    defaults = dataclasses.replace(graph, init=())
    official_init, official_ctor = "official port: get_cls_net(W)", "official port: hrnet_cls(W)"
    calls = {
        official_init: lambda: official.get_cls_net(width),
        official_ctor: lambda: official.hrnet_cls(width),
        "archgraph.build(spec, width=W)": lambda: archgraph.build("specs/hrnet.yaml", width=width),
        "archgraph.build(graph)": lambda: archgraph.build(graph),
        "archgraph.build(graph without init rules)": lambda: archgraph.build(defaults),
    }
    baseline = {
        "archgraph.build(spec, width=W)": official_init,
        "archgraph.build(graph)": official_init,
        "archgraph.build(graph without init rules)": official_ctor,
    }
    times = interleaved(calls, rounds, warmup=1)
    ratios = {k: (*ratio(times[k], times[base]), base) for k, base in baseline.items()}
    meta_calls = {
        "archgraph.load(spec, width=W)": lambda: archgraph.load("specs/hrnet.yaml", width=width),
        "archgraph.build(spec, width=W, device='meta')": lambda: archgraph.build("specs/hrnet.yaml", width=width,
                                                                                 device="meta"),
        "official port on meta": lambda: _on_meta(lambda: official.hrnet_cls(width)),
    }
    meta = interleaved(meta_calls, rounds * 4, warmup=1)
    huge_width = 512
    start = time.perf_counter()
    huge = archgraph.build("specs/hrnet.yaml", width=huge_width, device="meta")
    huge_s = time.perf_counter() - start
    huge_params = sum(p.numel() for p in huge.parameters())
    return {"width": width, "times": {k: statistics.median(v) for k, v in times.items()}, "ratios": ratios,
            "meta": {k: statistics.median(v) for k, v in meta.items()},
            "huge": {"width": huge_width, "seconds": huge_s, "params": huge_params}}


def _on_meta(fn):
    with torch.device("meta"):
        return fn()
