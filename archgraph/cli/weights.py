"""``archgraph weights import``: another implementation's checkpoint mapped onto a spec's module."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from archgraph.cli.common import COMMAND_LINE, SetOpt, SpecArg, check_build, out, plain, reporting, write_output
from archgraph.errors import Loc

app = typer.Typer(name="weights", help="Move weights between checkpoints of other implementations and "
                                        "archgraph's modules.", no_args_is_help=True, rich_markup_mode=None)


@app.command("import")
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
    with reporting():
        from archgraph.ir import lower, verify
        from archgraph.weights import checkpoint as ckpt

        expanded = plain(spec, set_)
        graph = verify(lower(expanded))
        fmt, mapping = ckpt.choose(expanded, from_, COMMAND_LINE)
        check_build(graph, None)
        state = ckpt.read(checkpoint)
        module = ckpt.load(graph, state, mapping, Loc(str(checkpoint)))
        imported = module.state_dict()
        write_output(output, ckpt.to_bytes(imported))
        params = sum(p.numel() for p in module.parameters())
        out.print(f"{checkpoint}: wrote {output} ({graph.name} {' '.join(f'{k}={v}' for k, v in graph.params.items())}"
                  f"; {len(state):,} tensors from format {fmt!r} by {mapping}; {len(imported):,} keys, "
                  f"{params:,} parameters)", markup=False)
