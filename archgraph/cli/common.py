"""What every command uses: the console, the located error lines and exit codes, --set and --input.

The top-level options (``archgraph.cli``) set ``debug`` and ``limits`` before a command runs.
Like the rest of the package, this imports the rest of archgraph only inside functions.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Union

import typer
from rich.console import Console

from archgraph.errors import Loc, SpecError, shorten

# a pipe or a file gets wide tables rather than rich's 80-column default
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
debug = False  # --debug
limits = None  # archgraph.limits.Limits from the top-level options; None until the callback runs
COMMAND_LINE = Loc("<command line>")

SpecArg = typer.Argument(..., metavar="SPEC", help="the spec file (.yaml, .yml or .json)", show_default=False)
SetOpt = typer.Option([], "--set", "-s", metavar="NAME=VALUE", help="override a spec parameter (repeatable)")
InputOpt = typer.Option(None, "--input", "-i", metavar="[Cx]HxW", help="input size (default: the spec's)")


@contextmanager
def reporting() -> Iterator[None]:
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
        if debug:
            raise
        sys.stderr.write(f"archgraph: internal error: {type(error).__name__}: {error} "
                         "(hint: rerun with --debug for a traceback, and please report it)\n")
        raise typer.Exit(1) from None


def overrides(pairs: list[str]) -> dict:
    from archgraph.spec.params import parse_override

    return dict(parse_override(pair) for pair in pairs)


def input_size(text: Optional[str], channels: int) -> Optional[tuple[int, int]]:
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


def plain(spec: Path, pairs: list[str]):
    from archgraph.api import source_of
    from archgraph.spec.expand import expand

    return expand(source_of(spec), overrides(pairs), COMMAND_LINE, limits=limits)


def load(spec: Path, pairs: list[str], input_text: Optional[str]):
    """The verified graph, and the size that --input gives (None: the spec's)."""
    from archgraph.ir import lower, verify

    graph = verify(lower(plain(spec, pairs)))
    return graph, input_size(input_text, graph.input.channels)


def check_build(graph, size) -> None:
    """Refuse, before allocating anything, a build whose parameters are over the limit (--max-params)."""
    from archgraph.limits import check_build as check

    check(graph, limits, size)


def write_output(output: Optional[Path], data: Union[str, bytes]) -> None:
    """``data`` on stdout, or the whole file at once (write_atomic): a failed or interrupted command leaves none."""
    if output is None:
        sys.stdout.write(data if isinstance(data, str) else data.decode())
        return
    from archgraph.io import write_atomic

    write_atomic(output, data)


def squash(body: str) -> str:
    """'basic, basic, basic, basic' -> 'basic x4'."""
    parts = body.split(", ") if body else []
    if parts and all(p == parts[0] for p in parts) and len(parts) > 1:
        return f"{parts[0]} x{len(parts)}"
    return body
