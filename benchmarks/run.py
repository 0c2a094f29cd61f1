"""Run the benchmark suite and print Markdown: ``python -m benchmarks.run`` (from the repository root).

Sections (all by default; name some to run only those):

* ``latency``  -- reference vs executor, generated source and optimised module, interleaved, as ratios;
* ``ablation`` -- the optimisation's parts (BN folding, oneDNN fusion, channels_last), HRNet-W32 batch 1;
* ``ops``      -- where the time goes, by operator (torch.profiler), reference vs optimised;
* ``overhead`` -- the executor's own Python overhead per forward;
* ``tools``    -- ``archgraph validate`` wall time, static profile vs fvcore, build vs the reference;
* ``memory``   -- peak memory at the allocator (torch.profiler): activations vs the static model, and the
                  total with operators' workspace, named;
* ``gpu``      -- on a CUDA device: latency eager, under torch.compile and as CUDA graphs (CUDA events), and
                  peak memory (``torch.cuda.max_memory_allocated``); without one it says so and measures
                  nothing (with ``--quick`` it runs its code on the CPU, as a check of the code path).

``--quick`` shrinks every count (a smoke run: the figures are not meant to be read). ``--threads``
fixes torch's CPU threads (default 1). ``--out FILE`` also writes the Markdown there, ``--json FILE``
the raw figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

SECTIONS = ("latency", "ablation", "ops", "overhead", "tools", "memory", "gpu")


@dataclass
class Case:
    network: str  # "hrnet32", "hrnet48", "fpn50"
    batch: int
    size: tuple[int, int]
    rounds: int


CASES = [
    Case("hrnet32", 1, (224, 224), 30),
    Case("hrnet48", 1, (224, 224), 20),
    Case("fpn50", 1, (224, 224), 30),
    Case("hrnet32", 8, (224, 224), 8),
    Case("hrnet48", 8, (224, 224), 6),
    Case("fpn50", 8, (224, 224), 8),
]
QUICK = [Case("hrnet32", 1, (64, 64), 3), Case("fpn50", 8, (64, 64), 2)]
GPU_CASES = [Case(network, batch, (224, 224), 100 if batch == 1 else 50)
             for network in ("hrnet32", "hrnet48", "fpn50") for batch in (1, 8)]
GPU_QUICK = [Case("fpn50", 1, (64, 64), 3)]  # FPN: the quickest to compile


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.data: dict[str, Any] = {}

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        self("| " + " | ".join(header) + " |")
        self("|" + "|".join(" --- " for _ in header) + "|")
        for row in rows:
            self("| " + " | ".join(str(c) for c in row) + " |")
        self()


_built: dict[tuple, Any] = {}


def contestants(network: str, size: tuple[int, int]):
    from benchmarks import models

    key = (network, size)
    if key not in _built:
        _built.clear()  # one network at a time in memory
        if network.startswith("hrnet"):
            _built[key] = models.hrnet(int(network[5:]), size)
        else:
            _built[key] = models.fpn(int(network[3:]), size)
    return _built[key]


def _ratio_cell(times, base) -> str:
    from benchmarks.timing import ratio

    r, lo, hi = ratio(times, base)
    return f"{r:.3f} ({lo:.3f}-{hi:.3f})"


def latency(report: Report, cases: list[Case]) -> None:
    from benchmarks import models
    from benchmarks.timing import interleaved, loadavg, ms

    report("## Latency: ratios to the hand-written reference")
    report()
    report("Ratio = median over rounds of (time / the reference's time in the same round); lower is faster; "
           "95% bootstrap interval in brackets. Outputs checked against the reference first "
           "(max |diff| for executor and generated source, relative for optimised).")
    report()
    rows, data = [], []
    for case in cases:
        c = contestants(case.network, case.size)
        diffs = models.check(c, batch=1)
        x = c.input(case.batch)
        mods = {k: v for k, v in c.modules().items() if k in ("reference", "executor", "generated", "optimized")}
        start = time.perf_counter()
        load = loadavg()
        with torch.inference_mode():
            times = interleaved({k: (lambda m=m, x=x: m(x)) for k, m in mods.items()}, case.rounds)
        elapsed = time.perf_counter() - start
        base = times["reference"]
        row = [c.name, case.batch, f"{case.size[0]}x{case.size[1]}", case.rounds, f"{ms(base):.1f}",
               _ratio_cell(times["executor"], base), _ratio_cell(times["generated"], base),
               _ratio_cell(times["optimized"], base), f"{ms(base) / ms(times['optimized']):.2f}x",
               f"{diffs['executor']:.1e} / {diffs['generated']:.1e} / {diffs['optimized']:.1e}", load]
        rows.append(row)
        data.append({"case": case.__dict__, "times_s": times, "diffs": diffs, "seconds": elapsed, "load": load})
        print(f"  [{c.name} batch {case.batch}: {elapsed:.0f} s]", file=sys.stderr, flush=True)
    report.table(["model", "batch", "input", "rounds", "reference ms (median)", "executor ratio",
                  "generated-source ratio", "optimized ratio", "optimized speed-up", "output diff (exe / gen / opt)",
                  "load avg before"], rows)
    report.data["latency"] = data


def ablation(report: Report, quick: bool) -> None:
    from benchmarks import models
    from benchmarks.timing import interleaved, ms

    size = (64, 64) if quick else (224, 224)
    rounds = 3 if quick else 30
    c = contestants("hrnet32", size)
    models.ablations(c)
    models.check(c)
    x = c.input(1)
    mods = {"reference": c.reference, "executor": c.executor, **c.extra}
    with torch.inference_mode():
        times = interleaved({k: (lambda m=m, x=x: m(x)) for k, m in mods.items()}, rounds)
    base = times["reference"]
    report(f"## Ablation: what each part of `optimize` buys ({c.name}, batch 1, {size[0]}x{size[1]}, {rounds} rounds)")
    report()
    report.table(["variant", "median ms", "ratio to reference"],
                 [[k, f"{ms(v):.1f}", _ratio_cell(v, base)] for k, v in times.items()])
    report.data["ablation"] = {"times_s": times}


def ops(report: Report, quick: bool) -> None:
    from torch.profiler import ProfilerActivity, profile

    size = (64, 64) if quick else (224, 224)
    c = contestants("hrnet32", size)
    x = c.input(1)
    runs = 3
    report(f"## Where the time goes ({c.name}, batch 1, {size[0]}x{size[1]}; torch.profiler, self CPU time per "
           f"forward, mean of {runs})")
    report()
    tables = {}
    for name in ("reference", "optimized"):
        module = getattr(c, name)
        with torch.inference_mode():
            module(x)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(runs):
                    module(x)
        rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in rows)
        tables[name] = [(e.key, e.self_cpu_time_total / runs / 1e3, e.count // runs, e.self_cpu_time_total / total)
                        for e in rows[:8]]
        report(f"{name}: {total / runs / 1e3:.1f} ms of operator time per forward")
        report()
        report.table(["operator", "ms per forward", "calls per forward", "share"],
                     [[f"`{k}`", f"{t:.1f}", n, f"{s:.1%}"] for k, t, n, s in tables[name]])
    report.data["ops"] = tables


def overhead(report: Report, quick: bool) -> None:
    from benchmarks import overhead as oh
    from benchmarks.timing import interleaved, ms

    report("## Executor overhead")
    report()
    rows = []
    for label, spec, params in (("HRNet-W32", "specs/hrnet.yaml", {"width": 32}),
                                ("FPN-R50", "specs/fpn.yaml", {"depth": 50})):
        g = oh.glue(spec, rounds=200 if quick else 3000, **params)
        rows.append([label, g["steps"], f"{g['median_us']:.0f}", f"{g['min_us']:.0f}"])
    calls = oh.merge_torch_calls_us()
    report("The executor's walk with every module stubbed out (1x1 input): microseconds per forward, including "
           f"the merges' own adds and ReLUs (one add: {calls['add_us']:.2f} us, one in-place ReLU: "
           f"{calls['relu_us']:.2f} us here), which the reference makes too.")
    report()
    report.table(["network", "steps", "median us / forward", "min us / forward"], rows)
    size = (32, 32)
    rounds = 20 if quick else 300
    c = contestants("hrnet32", size)
    x = c.input(1)
    mods = {k: getattr(c, k) for k in ("reference", "executor", "generated")}
    with torch.inference_mode():
        times = interleaved({k: (lambda m=m, x=x: m(x)) for k, m in mods.items()}, rounds)
    base = times["reference"]
    report(f"Dispatch-bound forward: {c.name} on a {size[0]}x{size[1]} input, batch 1, {rounds} rounds.")
    report()
    report.table(["module", "median ms", "ratio to reference", "median difference to reference (us)"],
                 [[k, f"{ms(v):.2f}", _ratio_cell(v, base),
                   f"{statistics.median([(a - b) * 1e6 for a, b in zip(v, base)]):+.0f}"] for k, v in times.items()])
    report.data["overhead"] = {"glue": rows, "dispatch_times_s": times}


def tools(report: Report, quick: bool) -> None:
    from benchmarks import tools as t

    report("## Tool speed")
    report()
    proc = t.process_times(runs=5 if quick else 20, warmup=1 if quick else 3)
    report(f"Whole processes, timed with {proc['tool']} ({next(iter(proc['results'].values()))['runs']} runs each "
           "after warm-up); CPU = user + system time of the process.")
    report()
    report.table(["command", "mean s", "min s", "median s", "CPU s (mean)"],
                 [[f"`{k}`", f"{r['mean']:.3f}", f"{r['min']:.3f}", f"{r['median']:.3f}", f"{r['cpu']:.3f}"]
                  for k, r in proc["results"].items()])
    phases = t.validate_phases(runs=2 if quick else 7)
    report("Where `archgraph validate specs/hrnet.yaml`'s time goes, in-process (the fastest of fresh-interpreter "
           "runs; the interpreter's start, the command line's dispatch and the output come on top):")
    report()
    report.table(["phase", "ms"], [[k, f"{v * 1e3:.0f}"] for k, v in phases.items()] +
                 [["total", f"{sum(phases.values()) * 1e3:.0f}"]])
    width = 18 if quick else 48
    sv = t.static_vs_fvcore(width=width, repeat=1 if quick else 3)
    report(f"Static profile vs fvcore, {sv['network']} at {sv['input'][0]}x{sv['input'][1]} (best of runs; fvcore on "
           "the already built module: jit trace + counting):")
    report()
    report.table(["counter", "seconds", "total (fvcore convention)"],
                 [["`archgraph.analysis.profile(graph, size)`", f"{sv['static_s']:.4f}", f"{sv['static_total']:,}"],
                  ["`fvcore.nn.FlopCountAnalysis(model, x).total()`", f"{sv['fvcore_s']:.2f}",
                   f"{sv['fvcore_total']:,}"]])
    report(f"Static is {sv['speedup']:.0f}x faster; totals identical: {sv['identical']}.")
    report()
    bt = t.build_times(width=width, rounds=3 if quick else 15)
    report(f"Building HRNet-W{bt['width']} (median of interleaved rounds; CPU builds include the weight "
           "initialisation; ratio = median over rounds of the time / the official call's in the same round that "
           "gives the same initialisation, 95% bootstrap interval):")
    report()

    def against(k: str) -> str:
        if k not in bt["ratios"]:
            return ""
        mid, low, high, base = bt["ratios"][k]
        return f"{mid:.3f} ({low:.3f}-{high:.3f}) to `{base.split(': ')[1]}`"

    report.table(["call", "seconds", "ratio"],
                 [[f"`{k}`", f"{v:.3f}", against(k)] for k, v in bt["times"].items()] +
                 [[f"`{k}`", f"{v:.3f}", ""] for k, v in bt["meta"].items()])
    huge = bt["huge"]
    report(f"`archgraph.build('specs/hrnet.yaml', width={huge['width']}, device='meta')`: {huge['params']:,} "
           f"parameters counted in {huge['seconds']:.2f} s, nothing allocated.")
    report()
    report.data["tools"] = {"processes": proc, "phases": phases, "static_vs_fvcore": sv, "build": bt}


def memory(report: Report, quick: bool) -> None:
    from archgraph.analysis import profile
    from archgraph.analysis.measure import live_peak
    from benchmarks.memory import allocator_peak, describe, survey

    mib = 2 ** 20
    report("## Peak memory of a forward")
    report()
    report("MiB, measured at torch's CPU allocator (torch.profiler memory events), the input included. "
           "activations = the most it held at the end of a top-level operator (tensors that outlive the "
           "operator that made them); total = the most at any moment, operators' workspace included. "
           "static = `archgraph profile`'s peak live activations (the executor's schedule); live tensors = "
           "tensor-by-tensor tracking of the executor's forward (`archgraph.analysis.measure.live_peak`).")
    report()
    rows, data = [], []
    cases = [("hrnet32", 1), ("hrnet32", 8), ("fpn50", 1), ("fpn50", 8)]
    if quick:
        cases = [("hrnet32", 1)]
    size = (64, 64) if quick else (224, 224)
    names = ("reference", "executor", "generated", "optimized")
    workspace = {}
    for network, batch in cases:
        c = contestants(network, size)
        x = c.input(batch)
        static = profile(c.graph, size, batch=batch).peak_bytes
        peaks = {k: allocator_peak(getattr(c, k), x) for k in names}
        with torch.backends.mkldnn.flags(enabled=False):
            native = {k: allocator_peak(getattr(c, k), x) for k in ("reference", "executor")}
        live = live_peak(c.executor, x)
        ex = peaks["executor"]
        if (network, batch) == cases[0]:
            workspace = survey(ex)
        rows.append([c.name, batch, f"{static / mib:.2f}", f"{ex.activations / mib:.2f}", f"{live / mib:.2f}",
                     f"{(static - ex.activations) / ex.activations:+.2%}",
                     *(f"{peaks[k].activations / mib:.2f} / {peaks[k].total / mib:.2f}" for k in names),
                     f"{native['reference'].activations / mib:.2f} / {native['reference'].total / mib:.2f}",
                     f"{native['executor'].activations / mib:.2f} / {native['executor'].total / mib:.2f}",
                     f"`{describe(ex)}`"])
        data.append({"network": c.name, "batch": batch, "static": static, "live": live,
                     "peaks": {k: {"activations": v.activations, "total": v.total, "at": describe(v)}
                               for k, v in peaks.items()},
                     "oneDNN off": {k: {"activations": v.activations, "total": v.total, "at": describe(v)}
                                    for k, v in native.items()}})
    report.table(["model", "batch", "static", "executor: activations", "live tensors", "static vs activations",
                  *(f"{k}: activations / total" for k in names), "oneDNN off, reference: activations / total",
                  "oneDNN off, executor: activations / total", "executor's total peak: during, its workspace then"],
                 rows)
    network, batch = cases[0]
    report(f"Operators' workspace over the executor's forward ({network}, batch {batch}, {size[0]}x{size[1]}): "
           "each allocation an operator freed before returning, named by its size against the operator's "
           "arguments and result (`benchmarks/memory.py`).")
    report()
    report.table(["operator", "path", "calls", "workspace of a call"],
                 [[f"`{op}`", kind or "", n, pattern] for (op, kind), counts in workspace.items()
                  for pattern, n in counts.most_common() if pattern != "none"])
    report.data["memory"] = data


def gpu(report: Report, quick: bool) -> None:
    from archgraph.analysis import profile
    from benchmarks import gpu as g
    from benchmarks import models
    from benchmarks.timing import gpu_conditions, ms

    report("## On a GPU")
    report()
    cuda = torch.cuda.is_available()
    if not cuda:
        report("no CUDA device: the GPU section was not run.")
        report()
        report.data["gpu"] = {"measured": False, "reason": "no CUDA device"}
        if not quick:
            return
        report("`--quick`: its code run on the CPU instead (wall clock, CPU allocator, no CUDA graphs), to check "
               "the code path; these are not GPU figures.")
        report()
    else:
        cond = gpu_conditions()
        report("Conditions: " + "; ".join(f"{k}: {v}" for k, v in cond.items()) + ".")
        report()
        report.data["gpu"] = {"measured": True, "conditions": cond}
    device = "cuda" if cuda else "cpu"
    run = g.modes(device)
    report(f"Latency, float32, eval, modes {', '.join(run)}: each call timed "
           + ("between two CUDA events, the device synchronised before and after it"
              if cuda else "by the wall clock")
           + "; ratio = median over rounds of (time / the reference's in the same mode and round), 95% bootstrap "
           "interval in brackets; torch.compile's first call (compilation, seconds; TorchInductor's on-disk caches "
           "as earlier runs left them) apart. Output diff: max |difference| to the eager reference's output, "
           "relative to its largest value, checked first.")
    report()
    lat, mem, data = [], [], []
    moved = None
    for case in (GPU_QUICK if quick else GPU_CASES):
        c = contestants(case.network, case.size)
        if moved is None or moved.graph is not c.graph:
            moved = None  # one network at a time on the device
            moved = models.on(c, device)
        started = time.perf_counter()
        m = g.measure(moved, case.batch, case.rounds)
        print(f"  [{moved.name} batch {case.batch}: {time.perf_counter() - started:.0f} s]", file=sys.stderr,
              flush=True)
        static = profile(moved.graph, case.size, batch=case.batch).peak_bytes
        for mode in run:
            t = {k: m["times_s"][f"{k}, {mode}"] for k in models.NAMES}
            base = t["reference"]
            lat.append([moved.name, case.batch, f"{case.size[0]}x{case.size[1]}", mode, case.rounds,
                        f"{ms(base):.2f}", *(_ratio_cell(t[k], base) for k in models.NAMES[1:]),
                        " / ".join(f"{m['diffs'][f'{k}, {mode}']:.1e}" for k in models.NAMES),
                        " / ".join(f"{m['compile_s'][k]:.0f}" for k in models.NAMES) if mode == "torch.compile"
                        else ""])
        mib = 2 ** 20
        mem.append([moved.name, case.batch, f"{static / mib:.2f}",
                    *(f"{m['peak_bytes'][k] / mib:.2f}" for k in models.NAMES)])
        data.append({"case": case.__dict__, "device": device, **m, "static_peak_bytes": static})
    report.table(["model", "batch", "input", "mode", "rounds", "reference ms (median)", "executor ratio",
                  "generated-source ratio", "optimized ratio", "output diff (ref / exe / gen / opt)",
                  "compile s (ref / exe / gen / opt)"], lat)
    report("The check's limit per case is 1e-4, or ten times the eager reference's distance from its own float64 "
           "output where that is more: " + "; ".join(
               f"{d['case']['network']} batch {d['case']['batch']}: {d['reference_vs_float64']:.1e}, limit "
               f"{d['limit']:.1e}" for d in data) + ".")
    report()
    report("Peak memory of one eager forward, MiB: the most the " + ("CUDA allocator held "
           "(`torch.cuda.max_memory_allocated`)" if cuda else "CPU allocator held (torch.profiler)")
           + " above what it held before (the weights), plus the input: activations and operators' workspace. "
           "static = `archgraph profile`'s peak live activations (the executor's schedule, no workspace).")
    report()
    report.table(["model", "batch", "static", *models.NAMES], mem)
    report.data["gpu"]["cases"] = data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", metavar="SECTION", help=f"some of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="tiny counts and inputs: a smoke run")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    sections = args.sections or list(SECTIONS)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from benchmarks.timing import conditions

    report = Report()
    cond = conditions(torch.get_num_threads())
    report("# archgraph benchmarks")
    report()
    report("Conditions: " + "; ".join(f"{k}: {v}" for k, v in cond.items()) + ".")
    report(f"Command: `{' '.join(['python -m benchmarks.run', *(argv if argv is not None else sys.argv[1:])])}`")
    report()
    report.data["conditions"] = cond
    started = time.perf_counter()
    quick = args.quick
    for section in sections:
        if section == "latency":
            latency(report, QUICK if quick else CASES)
        else:
            globals()[section](report, quick)
    report(f"Total time: {time.perf_counter() - started:.0f} s; load average at the end: "
           f"{conditions(torch.get_num_threads())['load average (1/5/15 min)']}.")
    if args.out:
        args.out.write_text("\n".join(report.lines) + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(report.data, indent=1, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
