"""``archgraph compile``: the PyTorch module built and summarised, or written as source, TorchScript or ONNX."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from archgraph.cli.common import (COMMAND_LINE, InputOpt, SetOpt, SpecArg, check_build, load, out, reporting, squash,
                                  write_output)
from archgraph.errors import SpecError


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
    with reporting():
        from archgraph.ir import infer

        graph, size = load(spec, set_, input)
        shapes = infer(graph, size)
        check_build(graph, size)
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
    write_output(output, compiled.data)  # without -o, the target is source (checked above): printed
    if output is None:
        return
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
        table.add_row(name, str(node.stride), str(shapes[name]), inputs, act, squash(body), f"{params:,}")
    out.print(table)


def _torch_device(name: str):
    import torch

    try:
        return torch.device(name)
    except (RuntimeError, ValueError):
        raise SpecError(f"unknown torch device {name!r}", COMMAND_LINE, "for example cpu, cuda or meta") from None
