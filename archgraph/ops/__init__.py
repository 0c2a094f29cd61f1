"""One module per primitive: blocks (layers inside a node) and fusion edges."""

from archgraph.ops.base import BlockOp, EdgeOp
from archgraph.ops.registry import blocks, edge_ops, register

__all__ = ["BlockOp", "EdgeOp", "blocks", "edge_ops", "register"]
