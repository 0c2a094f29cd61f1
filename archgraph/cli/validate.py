"""``archgraph validate`` and ``archgraph expand``: a spec checked, or printed plain. No torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from archgraph.cli.common import COMMAND_LINE, InputOpt, SetOpt, SpecArg, load, out, plain, reporting, write_output
from archgraph.errors import SpecError


def validate(spec: Path = SpecArg, set_: list[str] = SetOpt, input: Optional[str] = InputOpt) -> None:
    """Check a spec: schema, graph structure, strides, channels and shapes. Prints a one-line summary."""
    with reporting():
        from archgraph.ir import infer

        graph, size = load(spec, set_, input)
        shapes = infer(graph, size)
        outputs = ", ".join(f"{name} {shapes[name]}" for name in graph.outputs)
        out.print(f"{spec}: ok: {graph.name}, {len(graph.nodes)} nodes, {len(graph.edges)} edges; "
                  f"input {shapes.input} -> {outputs}")


def expand(
    spec: Path = SpecArg,
    set_: list[str] = SetOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write here instead of stdout"),
    format: str = typer.Option("yaml", "--format", "-f", help="yaml or json"),
) -> None:
    """Print the plain graph: parameters substituted, patterns unrolled. The result is a valid spec."""
    with reporting():
        from archgraph.ir import infer, lower, verify
        from archgraph.lang.source import dumps

        if format not in ("yaml", "json"):
            raise SpecError(f"--format must be yaml or json, got {format!r}", COMMAND_LINE)
        expanded = plain(spec, set_)
        infer(verify(lower(expanded)))  # what is printed is a valid spec: every check passes first
        data = expanded.to_data()
        if format == "json":
            text = json.dumps(data, indent=2) + "\n"
        else:
            header = f"# {spec} expanded" + "".join(f" {k}={v}" for k, v in expanded.params.items()) + "\n"
            text = header + dumps(data, sort_keys=False, default_flow_style=None, width=100)
        write_output(output, text)
