"""Drawing DOT into SVG, PNG or PDF with the Graphviz library that pygraphviz's wheel bundles.

No ``dot`` program is needed: the layout is already fixed in the DOT text, and Graphviz's
``nop2`` engine (what ``neato -n2`` runs) only draws it. Writing ``.dot`` needs nothing at all.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

FORMATS = ("svg", "png", "pdf", "dot")
INSTALL = ("pip install 'pygraphviz>=2.0' (or 'archgraph[render]'; its wheels bundle Graphviz, no system "
           "Graphviz is needed), or write .dot and draw it with Graphviz's own 'neato -n2 -Tsvg FILE.dot'")


# a box's text came out wider than archgraph estimated (fonts differ from machine to machine): cosmetic
_OVERFLOW = "size too small for label"


class BackendMissing(RuntimeError):
    """The library a format needs is missing: ``str()`` says which, ``hint`` what to install."""

    def __init__(self, message: str, hint: str = INSTALL):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.args[0]}: {self.hint}"


def draw(dot: str, fmt: str) -> bytes:
    """``dot`` drawn as ``fmt`` (svg, png or pdf) with its positions as given."""
    if fmt == "dot":
        return dot.encode()
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    try:
        import pygraphviz
    except ImportError:
        raise BackendMissing(f"writing {fmt.upper()} needs pygraphviz, which is not installed") from None
    with _quiet_fontconfig():
        graph = pygraphviz.AGraph(string=dot)
        try:
            return graph.draw(format=fmt, prog="nop2")
        except ValueError as error:  # a Graphviz without this output format (cairo missing)
            raise BackendMissing(f"this Graphviz cannot write {fmt.upper()} ({error})") from None


@contextmanager
def _quiet_fontconfig() -> Iterator[None]:
    """Graphviz's bundled fontconfig may warn about a newer system configuration (a harmless
    'unknown element' on stderr, from C): drop those lines, pass anything else on."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr is not a file (pytest's capture, a notebook)
        fd = 2
    try:
        saved = os.dup(fd)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                if line.strip() and not line.startswith("Fontconfig warning") and _OVERFLOW not in line:
                    sys.stderr.write(line + "\n")
