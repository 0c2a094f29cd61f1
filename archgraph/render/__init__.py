"""Diagrams of a verified graph in the style of the papers' figures: one lane per resolution.

``diagram`` places and styles everything (lanes per stride, columns per depth, repeated modules
folded, costs from the static cost model); ``to_dot`` writes it as DOT with every position pinned;
``draw`` turns DOT into SVG, PNG or PDF through pygraphviz's bundled Graphviz. No torch.
"""

from __future__ import annotations

from archgraph.ir.graph import ArchGraph
from archgraph.render.backend import FORMATS, INSTALL, BackendMissing, draw
from archgraph.render.diagram import Diagram, diagram
from archgraph.render.dot import to_dot

__all__ = ["FORMATS", "INSTALL", "BackendMissing", "Diagram", "diagram", "draw", "render", "to_dot"]


def render(graph: ArchGraph, fmt: str = "svg", size: tuple[int, int] | None = None, **options) -> bytes:
    """``graph`` drawn as ``fmt`` (svg, png, pdf or dot); ``options`` go to :func:`diagram`."""
    return draw(to_dot(diagram(graph, size, **options)), fmt)
