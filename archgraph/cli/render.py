"""``archgraph render``: the network drawn with one lane per stride. No torch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from archgraph.cli.common import COMMAND_LINE, InputOpt, SetOpt, SpecArg, load, out, reporting, write_output
from archgraph.errors import SpecError


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
    with reporting():
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
        graph, size = load(spec, set_, input)
        picture = diagram(graph, size, fold=fold, depth=depth, cost=cost, convention=convention,
                          shapes=infer(graph, size))
        try:
            data = draw(to_dot(picture), fmt)
        except BackendMissing as error:
            raise SpecError(error.args[0], where, error.hint) from None
        write_output(output, data)
        if output is None:
            return
        drawn = len([b for b in picture.boxes if "arch-node" in b.classes]) - 1  # the input's box
        folded = f"; folded: {', '.join(picture.fold_names)}" if picture.folds else ""
        out.print(f"{spec}: wrote {output} ({fmt}; {len(picture.lanes)} lanes, {len(graph.nodes)} nodes in "
                  f"{drawn} boxes{folded})", markup=False)
