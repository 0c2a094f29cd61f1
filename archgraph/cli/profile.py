"""``archgraph profile``: the static cost model's tables, sweeps over --set values, --verify and latency."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from archgraph.cli.common import (COMMAND_LINE, InputOpt, SetOpt, SpecArg, check_build, load, out, overrides,
                                  reporting, squash, write_output)
from archgraph.errors import SpecError


def profile(
    spec: Path = SpecArg,
    set_: list[str] = SetOpt,
    input: Optional[str] = InputOpt,
    batch: int = typer.Option(1, "--batch", "-b", min=1, help="batch size"),
    convention: str = typer.Option("fvcore", "--convention", "-c",
                                   help="how to count: fvcore, macs, flops or hrnet-readme"),
    by: str = typer.Option("node", "--by", help="group rows by node (stride lanes), edge (kinds) or op"),
    train: bool = typer.Option(False, "--train", help="count BatchNorm in training mode (fvcore convention)"),
    as_json: bool = typer.Option(False, "--json", help="print the machine-readable report (docs/profile.md)"),
    as_csv: bool = typer.Option(False, "--csv", help="print the rows as CSV"),
    verify: bool = typer.Option(False, "--verify",
                                help="run fvcore and torch's FlopCounterMode beside the static figures (torch)"),
    device: Optional[str] = typer.Option(None, "--device", help="measure latency on cpu or cuda (torch)"),
    dtype: str = typer.Option("float32", "--dtype", help="float32, float16, bfloat16 or float64"),
    channels_last: bool = typer.Option(False, "--channels-last", help="latency: channels-last memory format"),
    warmup: int = typer.Option(3, "--warmup", min=0, help="latency: runs discarded before timing"),
    runs: int = typer.Option(10, "--runs", min=1, help="latency: timed runs"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="latency: torch CPU threads"),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="write the report here instead of stdout (once it is complete)"),
) -> None:
    """Count work, parameters and activation memory per node, edge and op; optionally verify and time.

    Static profiling reads the graph and the ops' cost rules only (no torch); --verify and
    --device build the module. --set NAME=A,B,C profiles each value (several such --set: every
    combination) in one comparison table. The conventions are described in docs/profile.md.
    """
    with reporting():
        import itertools

        from archgraph.analysis import report
        from archgraph.analysis.cost import DTYPE_BYTES
        from archgraph.analysis.cost import convention as get_convention
        from archgraph.analysis.cost import profile as static_profile

        where = COMMAND_LINE
        conv = get_convention(convention)
        if by not in report.GROUPINGS:
            raise SpecError(f"--by must be node, edge or op, got {by!r}", where)
        if as_json and as_csv:
            raise SpecError("--json and --csv exclude each other", where)
        if dtype not in DTYPE_BYTES:
            raise SpecError(f"--dtype must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}", where)
        if device is not None and device.split(":")[0] not in ("cpu", "cuda"):
            raise SpecError(f"--device must be cpu or cuda, got {device!r}", where)
        axes = []
        for pair in set_:
            name, sep, value = pair.partition("=")
            values = value.split(",") if sep and "," in value else [value]
            axes.append([f"{name}={v.strip()}" for v in values] if sep else [pair])
        variants = []
        for combo in itertools.product(*axes):
            chosen = overrides(list(combo))
            graph, size = load(spec, list(combo), input)
            prof = static_profile(graph, size, batch, dtype)
            if verify or device is not None:  # these build the module
                check_build(graph, size)
            variant = {"set": chosen, "profile": prof, "graph": graph, "verify": None, "latency": None}
            if verify:
                from archgraph.analysis import measure

                fv = measure.fvcore_counts(graph, size, batch, training=train)
                fc = measure.flop_counter_counts(graph, size, batch)
                import torch

                from archgraph.backends.torch import GraphModule

                measured_peak = measure.live_peak(GraphModule(graph).eval(), torch.randn(batch, *prof.input,
                                                                                           dtype=getattr(torch, dtype)))
                rows = measure.compare(prof.total, fv, fc, train)
                variant["verify"] = {
                    "fvcore": fv, "flop_counter": fc,
                    "rows": [{"counter": r.counter, "op": r.op, "static": r.static, "measured": r.measured,
                              "difference": r.difference, "note": r.note} for r in rows],
                    "peak_bytes": {"static": prof.peak_bytes, "measured": measured_peak},
                }
            if device is not None:
                from archgraph.analysis import measure

                variant["latency"] = measure.latency(graph, size, batch, device, dtype, channels_last, warmup, runs,
                                                     threads)
            variants.append(variant)
        if as_json:
            text = json.dumps(report.document(variants, conv, train), indent=2) + "\n"
        elif as_csv:
            text = report.to_csv([(v["set"], v["profile"]) for v in variants], by, conv, train)
        else:
            with out.capture() as captured:  # the tables, as they would print
                if len(variants) == 1:
                    _profile_tables(variants[0], by, conv, train)
                else:
                    _sweep_table(variants, conv, train)
            text = captured.get()
        write_output(output, text)  # at the end: an interrupted or failed profile leaves no file
        if verify and any(r["note"].startswith("differs") for v in variants for r in v["verify"]["rows"]):
            raise RuntimeError("the static cost model and a measured counter disagree (see the verify table)")


def _profile_tables(variant: dict, by: str, conv, train: bool) -> None:
    from archgraph.analysis import report

    prof = variant["profile"]
    total = prof.total
    whole = conv.count(total, train)
    label = report.variant_label(variant["set"])
    out.print(f"{prof.name} ({label}): input {prof.batch}x{report.shape_text(prof.input)} {prof.dtype}, "
              f"{len(prof.nodes)} nodes, {len(prof.edges)} edges")
    unit = report.count_header(conv)
    title = {"node": "per node, by stride lane", "edge": "per edge, by kind", "op": "per op kind"}[by]
    table = Table(title=f"{prof.name} — {title} · convention {conv.name}", title_justify="left", show_edge=False)
    columns = [("name", False), ("op / body", False), ("stride", True), ("shape", False)] if by != "op" else \
        [("op kind", False)]
    for column, right in (*columns, (unit, True), ("share", True), ("params", True), ("output", True)):
        table.add_column(column, justify="right" if right else "left", no_wrap=column in ("name",))
    group = None
    for row in report.rows(prof, by):
        if row.group != group and group is not None:
            table.add_section()
        group = row.group
        c = row.cost
        count = conv.count(c, train)
        style = "bold" if row.kind in ("subtotal", "total") else None
        if row.kind == "total":
            table.add_section()
        output = report.binary(c.act_bytes) if c.act_bytes else "-"
        cells = [row.name, squash(row.op), row.stride, row.shape] if by != "op" else [row.name]
        table.add_row(*cells, report.count_text(count, conv), report.percent(count, whole), f"{c.params:,}", output,
                      style=style)
    out.print(table)
    out.print(f"total: {report.count_text(whole, conv)} {conv.unit} ({whole:,}) · {total.params:,} parameters · "
              f"outputs written {report.binary(total.act_bytes)} · peak live activations "
              f"{report.binary(prof.peak_bytes)} (during '{prof.peak_at}', executor schedule, no_grad)")
    _counted_as(conv, train)
    if variant["verify"]:
        _verify_table(variant["verify"])
    if variant["latency"]:
        _latency_line(variant["latency"])


def _verify_table(data: dict) -> None:
    table = Table(title="verify: static model beside the counters", title_justify="left", show_edge=False)
    for column in ("counter", "operator", "static", "measured", "difference", "note"):
        table.add_column(column, justify="right" if column in ("static", "measured", "difference") else "left")
    counter = None
    for r in data["rows"]:
        if counter is not None and r["counter"] != counter:
            table.add_section()
        counter = r["counter"]
        ignored = r["op"].startswith("(ignores)")
        table.add_row(r["counter"], r["op"], "" if ignored else f"{r['static']:,}",
                      "" if ignored else f"{r['measured']:,}", "" if ignored else f"{r['difference']:,}", r["note"])
    out.print(table)
    fv, fc = data["fvcore"], data["flop_counter"]
    out.print(f"fvcore total {fv['total']:,} (unsupported ops skipped: "
              f"{', '.join(f'{k} x{v}' for k, v in fv['unsupported'].items()) or 'none'}); "
              f"FlopCounterMode total {fc['total']:,} (2 per multiply-add)")
    peak = data["peak_bytes"]
    out.print(f"peak live activations: static {peak['static']:,} B, measured {peak['measured']:,} B "
              f"(tensor-by-tensor tracking of one CPU forward)")


def _latency_line(lat: dict) -> None:
    out.print(f"latency on {lat['device']} ({lat['device_name']}, {lat['threads']} threads, {lat['dtype']}, "
              f"batch {lat['batch']}, input {'x'.join(map(str, lat['input']))}, {_timing(lat)}, torch {lat['torch']}): "
              f"median {lat['median_ms']:.3f} ms · p90 {lat['p90_ms']:.3f} ms · min {lat['min_ms']:.3f} ms · "
              f"IQR {lat['iqr_ms']:.3f} ms")


def _sweep_table(variants: list[dict], conv, train: bool) -> None:
    from archgraph.analysis import report

    first = variants[0]["profile"]
    unit = report.count_header(conv)
    table = Table(title=f"{first.name} — {len(variants)} variants · convention {conv.name}", title_justify="left",
                  show_edge=False)
    columns = ["variant", "input", unit, "exact", "params", "outputs written", "peak live"]
    timed = any(v["latency"] for v in variants)
    if timed:
        columns += ["median ms", "p90 ms", "min ms", "IQR ms"]
    if any(v["verify"] for v in variants):
        columns += ["fvcore (measured)", "verify"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("variant", "input", "verify") else "right")
    for v in variants:
        prof = v["profile"]
        count = conv.count(prof.total, train)
        cells = [report.variant_label(v["set"]), f"{prof.batch}x{report.shape_text(prof.input)}",
                 report.count_text(count, conv), f"{count:,}", f"{prof.total.params:,}",
                 report.binary(prof.total.act_bytes),
                 report.binary(prof.peak_bytes)]
        if timed:
            lat = v["latency"] or {}
            cells += [f"{lat[k]:.3f}" if lat else "-" for k in ("median_ms", "p90_ms", "min_ms", "iqr_ms")]
        if v["verify"]:
            bad = [r for r in v["verify"]["rows"] if r["note"].startswith("differs")]
            cells += [f"{v['verify']['fvcore']['total']:,}", "ok" if not bad else f"{len(bad)} differ"]
        elif "verify" in columns[-1:]:
            cells += ["-", "-"]
        table.add_row(*cells)
    out.print(table)
    _counted_as(conv, train)
    if timed:
        lat = next(v["latency"] for v in variants if v["latency"])
        out.print(f"latency: {lat['device']} ({lat['device_name']}), {lat['threads']} threads, {lat['dtype']}, "
                  f"{_timing(lat)}")


def _counted_as(conv, train: bool) -> None:
    from archgraph.analysis import report

    out.print(f"counted as {report.describe(conv, train)}")
    out.print(f"  ({conv.summary})")


def _timing(lat: dict) -> str:
    """How the latency was measured: memory format, mode, runs."""
    return (f"{'channels_last' if lat['channels_last'] else 'contiguous'}, eval + inference_mode, "
            f"{lat['warmup']} warm-up discarded, {lat['runs']} runs")
