"""The ``archgraph`` command. The only module that prints or chooses an exit code.

Exit codes: 0 success; 2 a problem in the spec or the command line (one
``file:line:col: error: ...`` line per problem on stderr); 1 an internal error.
``validate``, ``expand``, ``schema``, ``ops`` and ``render`` never import torch.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

from archgraph.errors import Loc, SpecError, shorten

app = typer.Typer(
    name="archgraph",
    help="Multi-resolution vision networks as validated graphs: validate, expand and compile specs.",
    epilog="Examples: archgraph validate specs/hrnet.yaml --set width=48 · archgraph expand specs/hrnet.yaml"
    " · archgraph compile specs/hrnet.yaml --set head=pose. Spec problems exit with 2, one"
    " 'file:line:col: error: ...' line each on stderr.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# a pipe or a file gets wide tables rather than rich's 80-column default
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
_debug = False
COMMAND_LINE = Loc("<command line>")

SpecArg = typer.Argument(..., metavar="SPEC", help="the spec file (.yaml, .yml or .json)", show_default=False)
SetOpt = typer.Option([], "--set", "-s", metavar="NAME=VALUE", help="override a spec parameter (repeatable)")
InputOpt = typer.Option(None, "--input", "-i", metavar="[Cx]HxW", help="input size (default: the spec's)")


_limits = None  # archgraph.limits.Limits from the top-level options; None until the callback runs


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="show Python tracebacks for internal errors"),
    plugin: list[str] = typer.Option([], "--plugin", metavar="MODULE",
                                     help="import this Python module first, so that the ops and patterns it "
                                          "registers can be used (repeatable). It runs the module's code, like any "
                                          "import; specs themselves can never load code"),
    max_nodes: Optional[int] = typer.Option(None, "--max-nodes", min=1, metavar="N",
                                            help="refuse networks of more than N nodes once expanded [10,000]"),
    max_edges: Optional[int] = typer.Option(None, "--max-edges", min=1, metavar="N",
                                            help="refuse networks of more than N edges once expanded [40,000]"),
    max_blocks: Optional[int] = typer.Option(None, "--max-blocks", min=1, metavar="N",
                                             help="refuse networks of more than N body blocks, repeats unrolled "
                                                  "[100,000]"),
    max_params: Optional[int] = typer.Option(None, "--max-params", min=1, metavar="N",
                                             help="refuse to build (compile, profile --verify/--device) networks of "
                                                  "more than N parameters [2**31: 8 GiB of float32]"),
    allow_large: bool = typer.Option(False, "--allow-large",
                                     help="lift every limit not given explicitly by the options above"),
) -> None:
    global _debug, _limits
    _debug = debug
    from archgraph.limits import DEFAULT, Limits

    given = {"max_nodes": max_nodes, "max_edges": max_edges, "max_blocks": max_blocks, "max_params": max_params}
    base = Limits.unlimited() if allow_large else DEFAULT
    _limits = base.but(**{k: v for k, v in given.items() if v is not None})
    if plugin:
        with _reporting():
            _load_plugins(plugin)


def _load_plugins(names: list[str]) -> None:
    from archgraph.ops.registry import edge_ops, load_plugin
    from archgraph.patterns import patterns

    edge_ops(), patterns()  # the built-in ops first: a plugin's op may not take a built-in's name
    for name in names:
        try:
            load_plugin(name)
        except SpecError:
            raise
        except Exception as error:  # noqa: BLE001 - the plugin's own code failed
            if _debug:
                raise
            raise SpecError(f"plugin {name!r} failed to load: {type(error).__name__}: {error}", COMMAND_LINE,
                            "rerun with --debug for its traceback") from None
    from archgraph.spec.model import models

    models.cache_clear()  # the document models are built from the registries, which the plugins grew


@contextmanager
def _reporting() -> Iterator[None]:
    """Spec problems -> located lines on stderr and exit 2; anything else -> exit 1."""
    try:
        yield
    except SpecError as error:
        sys.stderr.write(f"{error}\n")
        raise typer.Exit(2) from None
    except OSError as error:  # a file we were asked to read or write
        sys.stderr.write(f"{error.filename or '<file>'}: error: {error.strerror or error}\n")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as error:  # noqa: BLE001 - the last line of defence
        if _debug:
            raise
        sys.stderr.write(f"archgraph: internal error: {type(error).__name__}: {error} "
                         "(hint: rerun with --debug for a traceback, and please report it)\n")
        raise typer.Exit(1) from None


def _overrides(pairs: list[str]) -> dict:
    from archgraph.spec.params import parse_override

    return dict(parse_override(pair) for pair in pairs)


def _input_size(text: Optional[str], channels: int) -> Optional[tuple[int, int]]:
    if text is None:
        return None
    from archgraph.limits import MAX_VALUE

    parts = text.lower().split("x")
    where = COMMAND_LINE
    shown = repr(shorten(text))
    # ASCII digits only (str.isdigit() takes '²', which int() refuses), read only as far as the bound
    if len(parts) not in (2, 3) or not all(p.isascii() and p.isdigit() for p in parts):
        raise SpecError(f"--input expects HxW or CxHxW with positive integers, got {shown}", where,
                        "for example --input 3x224x224")
    dims = [int(p) if len(p.lstrip("0")) <= 6 else MAX_VALUE + 1 for p in parts]
    if min(dims) < 1:
        raise SpecError(f"--input expects HxW or CxHxW with positive integers, got {shown}", where,
                        "for example --input 3x224x224")
    if max(dims[-2:]) > MAX_VALUE:
        raise SpecError(f"--input sizes are at most {MAX_VALUE}, got {shown}", where)
    if len(dims) == 3 and dims[0] != channels:
        raise SpecError(f"--input has {dims[0]} channels but the spec's input has {channels}", where)
    return dims[-2], dims[-1]


def _plain(spec: Path, pairs: list[str]):
    from archgraph.api import source_of
    from archgraph.spec.expand import expand

    return expand(source_of(spec), _overrides(pairs), COMMAND_LINE, limits=_limits)


def _torch_device(name: str):
    import torch

    try:
        return torch.device(name)
    except (RuntimeError, ValueError):
        raise SpecError(f"unknown torch device {name!r}", COMMAND_LINE, "for example cpu, cuda or meta") from None


def _load(spec: Path, pairs: list[str]):
    from archgraph.ir import lower, verify

    return verify(lower(_plain(spec, pairs)))


def _check_build(graph, size) -> None:
    """Refuse, before allocating anything, a build whose parameters are over the limit (--max-params)."""
    from archgraph.limits import check_build

    check_build(graph, _limits, size)


@app.command()
def validate(spec: Path = SpecArg, set_: list[str] = SetOpt, input: Optional[str] = InputOpt) -> None:
    """Check a spec: schema, graph structure, strides, channels and shapes. Prints a one-line summary."""
    with _reporting():
        from archgraph.ir import infer

        graph = _load(spec, set_)
        shapes = infer(graph, _input_size(input, graph.input.channels))
        outputs = ", ".join(f"{name} {shapes[name]}" for name in graph.outputs)
        out.print(f"{spec}: ok: {graph.name}, {len(graph.nodes)} nodes, {len(graph.edges)} edges; "
                  f"input {shapes.input} -> {outputs}")


@app.command()
def expand(
    spec: Path = SpecArg,
    set_: list[str] = SetOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write here instead of stdout"),
    format: str = typer.Option("yaml", "--format", "-f", help="yaml or json"),
) -> None:
    """Print the plain graph: parameters substituted, patterns unrolled. The result is a valid spec."""
    with _reporting():
        import yaml

        from archgraph.io import write_atomic

        from archgraph.ir import infer, lower, verify

        if format not in ("yaml", "json"):
            raise SpecError(f"--format must be yaml or json, got {format!r}", COMMAND_LINE)
        expanded = _plain(spec, set_)
        infer(verify(lower(expanded)))  # what is printed is a valid spec: every check passes first
        data = expanded.to_data()
        if format == "json":
            text = json.dumps(data, indent=2) + "\n"
        else:
            header = f"# {spec} expanded" + "".join(f" {k}={v}" for k, v in expanded.params.items()) + "\n"
            text = header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
        if output is None:
            sys.stdout.write(text)
        else:
            write_atomic(output, text)


@app.command()
def compile(
    spec: Path = SpecArg,
    set_: list[str] = SetOpt,
    input: Optional[str] = InputOpt,
    batch: int = typer.Option(1, "--batch", "-b", min=1, help="batch size for the shape check"),
    device: str = typer.Option("meta", "--device", help="build on this torch device (meta: no weights)"),
    target: Optional[str] = typer.Option(None, "--target", "-t", metavar="source|torchscript|onnx",
                                         help="write the network as a standalone Python file, TorchScript "
                                              "or ONNX (instead of the summary)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="the file to write with --target "
                                          "(source: default stdout)"),
    check: bool = typer.Option(False, "--check", help="with --target: build both backends (and the export) "
                                                      "and compare their outputs before writing anything"),
    optimize: bool = typer.Option(False, "--optimize", help="optimise for inference: BatchNorm folded into the "
                                                            "convs; on the CPU also oneDNN convs with ReLUs and "
                                                            "residual sums fused, channels_last. With --target "
                                                            "torchscript or onnx: BN folded in the exported module"),
) -> None:
    """Build the PyTorch module and print its nodes, edges, parameters and output shapes.

    With --target, compile it instead: 'source' is one readable Python file with the same
    state_dict as the built module; 'torchscript' and 'onnx' export that file's module.
    --optimize: see docs/benchmarks.md.
    """
    with _reporting():
        from archgraph.ir import infer

        graph = _load(spec, set_)
        size = _input_size(input, graph.input.channels)
        shapes = infer(graph, size)
        _check_build(graph, size)
        if target is not None or output is not None or check:
            _compile_target(graph, size, batch, target, output, check, optimize)
            return
        import torch

        from archgraph.backends.torch import GraphModule

        with _torch_device(device):
            module = GraphModule(graph).eval()
            if optimize:
                from archgraph.backends.torch.optimize import optimize as optimize_module

                optimize_module(module)
            x = torch.empty(batch, *shapes.input.dims)
            with torch.no_grad():
                result = module(x)
        results = result if isinstance(result, dict) else {graph.outputs[0]: result}
        _summary(graph, shapes, module)
        total = sum(p.numel() for p in module.parameters())
        out.print(f"{graph.name}: {len(graph.nodes)} nodes, {len(graph.edges)} edges, {total:,} parameters "
                  f"(built on {device})")
        if optimize:
            out.print(f"optimized: {module.optimize_report}")
        for name, tensor in results.items():
            expected = (batch, *shapes[name].dims)
            status = "" if tuple(tensor.shape) == expected else f"  [static inference said {expected}]"
            out.print(f"output {name}: {tuple(tensor.shape)}{status}")
        if any(tuple(t.shape) != (batch, *shapes[n].dims) for n, t in results.items()):
            raise RuntimeError("the built module's output shapes differ from shape inference")


def _compile_target(graph, size, batch: int, target: Optional[str], output: Optional[Path], check: bool,
                    optimize: bool = False) -> None:
    """``compile --target``: generate, optionally check, then write atomically (or print the source)."""
    from archgraph.backends.source.export import TARGETS, CheckFailed, compile_graph
    from archgraph.io import write_atomic

    where = COMMAND_LINE
    if target is None:
        raise SpecError("--output and --check go with --target", where, "for example --target source -o net.py")
    if target not in TARGETS:
        raise SpecError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}", where)
    if output is None and target != "source":
        raise SpecError(f"--target {target} writes a binary file: give it with -o/--output", where)
    if optimize and target == "source":
        raise SpecError("--optimize does not apply to --target source: the file keeps the executor's state_dict, "
                        "so that checkpoints load into it", where,
                        "load the weights, then call archgraph.optimize(model) on the generated module")
    try:
        compiled = compile_graph(graph, target, size, batch, verify=check, optimize=optimize)
    except CheckFailed as error:
        sys.stderr.write(f"archgraph: check failed: {error}; nothing written\n")
        raise typer.Exit(1) from None
    report = sys.stderr if output is None else sys.stdout
    for line in compiled.checks:
        report.write(f"check: {line}\n")
    if output is None:
        sys.stdout.write(compiled.source)
        return
    write_atomic(output, compiled.data)
    lines = compiled.source.count("\n")
    detail = f"{lines} lines" if target == "source" else f"{len(compiled.data):,} bytes, from {lines} lines of source"
    report.write(f"{graph.name}: wrote {output} ({target}, {detail})\n")


def _summary(graph, shapes, module) -> None:
    table = Table(title=f"{graph.name} — nodes", title_justify="left", show_edge=False)
    for column in ("node", "stride", "shape", "inputs", "act", "body", "params"):
        table.add_column(column, justify="right" if column in ("stride", "params") else "left")
    for name in graph.order:
        node = graph.nodes[name]
        params = sum(p.numel() for p in module.nodes[name].parameters()) if name in module.nodes else 0
        if name in module.edges:
            params += sum(p.numel() for p in module.edges[name].parameters())
        joint = " | " if node.merge == "concat" else " + "
        inputs = joint.join(e.src if e.op.tag == "identity" else f"{e.op.tag}({e.src})"
                            for e in graph.in_edges(name))
        body = ", ".join(b.tag for b in node.body)
        act = "relu" if node.act == "relu" else ""
        table.add_row(name, str(node.stride), str(shapes[name]), inputs, act, _squash(body), f"{params:,}")
    out.print(table)


def _squash(body: str) -> str:
    """'basic, basic, basic, basic' -> 'basic x4'."""
    parts = body.split(", ") if body else []
    if parts and all(p == parts[0] for p in parts) and len(parts) > 1:
        return f"{parts[0]} x{len(parts)}"
    return body


@app.command()
def schema() -> None:
    """Print the JSON Schema of the spec language (for editors)."""
    with _reporting():
        from archgraph.spec.model import models

        document = models().Spec.model_json_schema(by_alias=True)
        document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        document["title"] = "archgraph spec"
        sys.stdout.write(json.dumps(document, indent=2) + "\n")


@app.command()
def ops() -> None:
    """List every registered edge op, block and pattern with its parameters."""
    with _reporting():
        from archgraph.ops import blocks, edge_ops
        from archgraph.patterns import patterns

        for title, table in (("edge ops (op:)", edge_ops()), ("blocks (block:)", blocks()),
                             ("patterns (use:)", patterns())):
            view = Table(title=title, title_justify="left", show_edge=False, show_lines=False)
            view.add_column("name")
            view.add_column("parameters")
            view.add_column("what it does")
            for name, cls in sorted(table.items()):
                params = ", ".join(f"{k}={v!r}" if v != "required" else k for k, v in cls.parameters().items())
                view.add_row(name, params, cls.summary())
            out.print(view)
            out.print()


@app.command()
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
    with _reporting():
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
            overrides = _overrides(list(combo))
            graph = _load(spec, list(combo))
            size = _input_size(input, graph.input.channels)
            prof = static_profile(graph, size, batch, dtype)
            if verify or device is not None:  # these build the module
                _check_build(graph, size)
            variant = {"set": overrides, "profile": prof, "graph": graph, "verify": None, "latency": None}
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
        if output is None:
            sys.stdout.write(text)
        else:  # written whole, at the end: an interrupted or failed profile leaves no file
            from archgraph.io import write_atomic

            write_atomic(output, text)
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
        cells = [row.name, _squash(row.op), row.stride, row.shape] if by != "op" else [row.name]
        table.add_row(*cells, report.count_text(count, conv), report.percent(count, whole), f"{c.params:,}", output,
                      style=style)
    out.print(table)
    out.print(f"total: {report.count_text(whole, conv)} {conv.unit} ({whole:,}) · {total.params:,} parameters · "
              f"outputs written {report.binary(total.act_bytes)} · peak live activations "
              f"{report.binary(prof.peak_bytes)} (during '{prof.peak_at}', executor schedule, no_grad)")
    out.print(f"counted as {report.describe(conv, train)}")
    out.print(f"  ({conv.summary})")
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
              f"batch {lat['batch']}, input {'x'.join(map(str, lat['input']))}, "
              f"{'channels_last' if lat['channels_last'] else 'contiguous'}, eval + inference_mode, "
              f"{lat['warmup']} warm-up discarded, {lat['runs']} runs, torch {lat['torch']}): "
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
    out.print(f"counted as {report.describe(conv, train)}")
    out.print(f"  ({conv.summary})")
    if timed:
        lat = next(v["latency"] for v in variants if v["latency"])
        out.print(f"latency: {lat['device']} ({lat['device_name']}), {lat['threads']} threads, {lat['dtype']}, "
                  f"{'channels_last' if lat['channels_last'] else 'contiguous'}, eval + inference_mode, "
                  f"{lat['warmup']} warm-up discarded, {lat['runs']} runs")


@app.command()
def render(
    spec: Path = SpecArg,
    set_: list[str] = SetOpt,
    input: Optional[str] = InputOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="the file to write; its extension picks the format (default: SVG "
                                               "on stdout)"),
    format: Optional[str] = typer.Option(None, "--format", "-f", metavar="svg|png|pdf|dot",
                                         help="the format, if not the output's extension"),
    fold: Optional[bool] = typer.Option(None, "--fold/--no-fold",
                                        help="draw repeated modules once, marked xN (default: for graphs of more "
                                             "than 40 nodes)"),
    depth: int = typer.Option(1, "--depth", "-d", min=0, max=2,
                              help="how much of each node's body to show: 0 none, 1 a summary, 2 every block"),
    cost: Optional[str] = typer.Option(None, "--cost", metavar="flops|params",
                                       help="shade nodes and edges by their share of the total (static cost model)"),
    convention: str = typer.Option("fvcore", "--convention", "-c", help="how --cost flops counts (as profile)"),
) -> None:
    """Draw the network as the papers do: one lane per stride, depth left to right, fusion edges by kind.

    SVG, PNG and PDF are drawn by the Graphviz library in pygraphviz's wheel; .dot needs nothing
    (its positions are fixed: neato -n2 -Tsvg draws it). Does not import torch.
    """
    with _reporting():
        from archgraph.io import write_atomic
        from archgraph.ir import infer
        from archgraph.render import FORMATS, BackendMissing, diagram, draw, to_dot

        where = COMMAND_LINE
        fmt = format or (output.suffix.lstrip(".").lower() if output is not None and output.suffix else None)
        if fmt is None:
            if output is not None:
                raise SpecError(f"cannot tell the format of {str(output)!r} from its extension", where,
                                "use --format svg|png|pdf|dot")
            fmt = "svg"
        if fmt not in FORMATS:
            raise SpecError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}", where)
        if output is None and fmt in ("png", "pdf"):
            raise SpecError(f"{fmt.upper()} is binary: give a file with -o/--output", where,
                            f"for example -o net.{fmt}")
        if cost is not None and cost not in ("flops", "params"):
            raise SpecError(f"--cost must be flops or params, got {cost!r}", where)
        graph = _load(spec, set_)
        size = _input_size(input, graph.input.channels)
        picture = diagram(graph, size, fold=fold, depth=depth, cost=cost, convention=convention,
                          shapes=infer(graph, size))
        try:
            data = draw(to_dot(picture), fmt)
        except BackendMissing as error:
            raise SpecError(error.args[0], where, error.hint) from None
        if output is None:
            sys.stdout.write(data.decode())
            return
        write_atomic(output, data)
        drawn = len([b for b in picture.boxes if "arch-node" in b.classes]) - 1  # the input's box
        folded = f"; folded: {', '.join(picture.fold_names)}" if picture.folds else ""
        out.print(f"{spec}: wrote {output} ({fmt}; {len(picture.lanes)} lanes, {len(graph.nodes)} nodes in "
                  f"{drawn} boxes{folded})", markup=False)


weights_app = typer.Typer(name="weights", help="Move weights between checkpoints of other implementations and "
                                                "archgraph's modules.", no_args_is_help=True,
                          rich_markup_mode=None)
app.add_typer(weights_app)


@weights_app.command("import")
def weights_import(
    spec: Path = SpecArg,
    checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", show_default=False,
                                      help="a file written by torch.save: a state dict (or a dict holding one under "
                                           "'state_dict'), with the other implementation's key names"),
    output: Path = typer.Option(..., "--output", "-o", show_default=False,
                                help="the state dict to write, with the built module's keys"),
    set_: list[str] = SetOpt,
    from_: Optional[str] = typer.Option(None, "--from", metavar="FORMAT",
                                        help="which of the spec's checkpoint formats (its 'weights:') the keys are "
                                             "in (default: the first)"),
) -> None:
    """Map a checkpoint's keys onto the spec's module, load it with strict=True, and save its state dict.

    The spec's header names the key mapping for each format (weights: {official: hrnet_official}).
    The checkpoint is read with torch.load(weights_only=True); a 'module.' prefix (DataParallel) or a
    wrapping {'state_dict': ...} is removed. Keys without a rule, extra or missing keys and shape
    mismatches exit with 2 and write nothing. archgraph.build(SPEC, ...).load_state_dict(torch.load(OUT))
    then loads the output.
    """
    with _reporting():
        from archgraph.io import write_atomic
        from archgraph.ir import lower, verify
        from archgraph.weights import checkpoint as ckpt

        plain = _plain(spec, set_)
        graph = verify(lower(plain))
        fmt, mapping = ckpt.choose(plain, from_, COMMAND_LINE)
        _check_build(graph, None)
        state = ckpt.read(checkpoint)
        module = ckpt.load(graph, state, mapping, Loc(str(checkpoint)))
        imported = module.state_dict()
        write_atomic(output, ckpt.to_bytes(imported))
        params = sum(p.numel() for p in module.parameters())
        out.print(f"{checkpoint}: wrote {output} ({graph.name} {' '.join(f'{k}={v}' for k, v in graph.params.items())}"
                  f"; {len(state):,} tensors from format {fmt!r} by {mapping}; {len(imported):,} keys, "
                  f"{params:,} parameters)", markup=False)


def main() -> None:
    import gc

    # everything imported so far lives as long as the process: out of the collector's sight, later
    # collections (pydantic builds the document models while the command runs) and the one at exit
    # do not walk it again (docs/benchmarks.md, tool speed)
    gc.freeze()
    app()


if __name__ == "__main__":
    main()
