"""The ``archgraph`` command. The only module that prints or chooses an exit code.

Exit codes: 0 success; 2 a problem in the spec or the command line (one
``file:line:col: error: ...`` line per problem on stderr); 1 an internal error.
``validate``, ``expand``, ``schema`` and ``ops`` never import torch.
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

from archgraph.errors import Loc, SpecError

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

SpecArg = typer.Argument(..., metavar="SPEC", help="the spec file (.yaml, .yml or .json)", show_default=False)
SetOpt = typer.Option([], "--set", "-s", metavar="NAME=VALUE", help="override a spec parameter (repeatable)")
InputOpt = typer.Option(None, "--input", "-i", metavar="[Cx]HxW", help="input size (default: the spec's)")


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="show Python tracebacks for internal errors")) -> None:
    global _debug
    _debug = debug


@contextmanager
def _reporting() -> Iterator[None]:
    """Spec problems -> located lines on stderr and exit 2; anything else -> exit 1."""
    try:
        yield
    except SpecError as error:
        sys.stderr.write(f"{error}\n")
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
    parts = text.lower().split("x")
    where = Loc("<command line>")
    if len(parts) not in (2, 3) or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise SpecError(f"--input expects HxW or CxHxW with positive integers, got {text!r}", where,
                        "for example --input 3x224x224")
    dims = [int(p) for p in parts]
    if len(dims) == 3 and dims[0] != channels:
        raise SpecError(f"--input has {dims[0]} channels but the spec's input has {channels}", where)
    return dims[-2], dims[-1]


def _load(spec: Path, pairs: list[str]):
    from archgraph.api import load

    return load(spec, **_overrides(pairs))


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

        from archgraph.api import plain
        from archgraph.io import write_atomic

        if format not in ("yaml", "json"):
            raise SpecError(f"--format must be yaml or json, got {format!r}", Loc("<command line>"))
        expanded = plain(spec, **_overrides(set_))
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
) -> None:
    """Build the PyTorch module and print its nodes, edges, parameters and output shapes."""
    with _reporting():
        from archgraph.ir import infer

        graph = _load(spec, set_)
        size = _input_size(input, graph.input.channels)
        shapes = infer(graph, size)
        import torch

        from archgraph.backends.torch import GraphModule

        with torch.device(device):
            module = GraphModule(graph).eval()
            x = torch.empty(batch, *shapes.input.dims)
            with torch.no_grad():
                result = module(x)
        results = result if isinstance(result, dict) else {graph.outputs[0]: result}
        _summary(graph, shapes, module)
        total = sum(p.numel() for p in module.parameters())
        out.print(f"{graph.name}: {len(graph.nodes)} nodes, {len(graph.edges)} edges, {total:,} parameters "
                  f"(built on {device})")
        for name, tensor in results.items():
            expected = (batch, *shapes[name].dims)
            status = "" if tuple(tensor.shape) == expected else f"  [static inference said {expected}]"
            out.print(f"output {name}: {tuple(tensor.shape)}{status}")
        if any(tuple(t.shape) != (batch, *shapes[n].dims) for n, t in results.items()):
            raise RuntimeError("the built module's output shapes differ from shape inference")


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
