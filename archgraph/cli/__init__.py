"""The ``archgraph`` command. The only package that prints or chooses an exit code.

Exit codes: 0 success; 2 a problem in the spec or the command line (one
``file:line:col: error: ...`` line per problem on stderr); 1 an internal error.
``validate``, ``expand``, ``schema``, ``ops`` and ``render`` never import torch.

This module holds the app, its top-level options and ``main``; ``common`` what every command
uses; one module per command or group of commands, each importing ``common`` and nothing
else of this package. The rest of archgraph is imported inside the functions that need it.
"""

from __future__ import annotations

from typing import Optional

import typer

from archgraph.cli import common, compile, profile, render, schema, validate, weights
from archgraph.errors import SpecError

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
    common.debug = debug
    from archgraph.limits import DEFAULT, Limits

    given = {"max_nodes": max_nodes, "max_edges": max_edges, "max_blocks": max_blocks, "max_params": max_params}
    base = Limits.unlimited() if allow_large else DEFAULT
    common.limits = base.but(**{k: v for k, v in given.items() if v is not None})
    if plugin:
        with common.reporting():
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
            if common.debug:
                raise
            raise SpecError(f"plugin {name!r} failed to load: {type(error).__name__}: {error}", common.COMMAND_LINE,
                            "rerun with --debug for its traceback") from None
    from archgraph.spec.model import models

    models.cache_clear()  # the document models are built from the registries, which the plugins grew


for command in (validate.validate, validate.expand, compile.compile, schema.schema, schema.ops, profile.profile,
                render.render):
    app.command()(command)
app.add_typer(weights.app)


def main() -> None:
    import gc

    # everything imported so far lives as long as the process: out of the collector's sight, later
    # collections (pydantic builds the document models while the command runs) and the one at exit
    # do not walk it again (docs/benchmarks.md, tool speed)
    gc.freeze()
    app()
