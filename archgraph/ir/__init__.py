"""The graph IR: lowering from a plain spec, verification, shape inference."""

from archgraph.ir.graph import ArchGraph, Edge, Node, NodeType, lower
from archgraph.ir.shapes import Shape, Shapes, infer
from archgraph.ir.verify import verify

__all__ = ["ArchGraph", "Edge", "Node", "NodeType", "Shape", "Shapes", "infer", "lower", "verify"]
