"""Shape inference: channels, stride and HxW of every node for a given input size, without torch.

Spatial sizes follow PyTorch's arithmetic op by op (a 3x3 stride-2 conv takes 57
to 29), so odd input sizes come out exactly as the built module will produce them
— or fail here, with a message naming the node, where the module would fail.
"""

from __future__ import annotations

from dataclasses import dataclass

from archgraph.errors import SpecError
from archgraph.ir.graph import ArchGraph


@dataclass(frozen=True)
class Shape:
    """A tensor's shape without the batch: (channels, H, W), or (channels,) for a vector."""

    channels: int
    h: int | None = None
    w: int | None = None

    @property
    def dims(self) -> tuple[int, ...]:
        return (self.channels,) if self.h is None else (self.channels, self.h, self.w)  # type: ignore[return-value]

    def __str__(self) -> str:
        return "x".join(map(str, self.dims))


@dataclass(frozen=True)
class Shapes:
    input: Shape
    nodes: dict[str, Shape]  # every node, the input included
    edges: dict[tuple[str, str], Shape]  # every edge's output

    def __getitem__(self, name: str) -> Shape:
        return self.nodes[name]


def infer(graph: ArchGraph, size: tuple[int, int] | None = None) -> Shapes:
    """The shape of every node and edge for an input of ``size`` = (H, W) (default: the spec's)."""
    h, w = size or graph.input.size
    first = Shape(graph.input.channels, h, w)
    nodes = {graph.input.name: first}
    edges: dict[tuple[str, str], Shape] = {}
    for name in graph.order:
        node = graph.nodes[name]
        arrival = graph.types[name].arrival_stride
        incoming = graph.in_edges(name)
        sizes = {}
        for edge in incoming:
            if edge.guide is not None:  # a guided edge arrives at its guide's size (at the arrival stride)
                guide = nodes[edge.guide]
                sizes[edge.src] = (guide.h, guide.w)
            elif edge.op.takes_input_size:  # resized to the network input's HxW (arriving at its stride, 1)
                sizes[edge.src] = (h, w)
            elif not edge.op.adopts_size:
                src = nodes[edge.src]
                sizes[edge.src] = edge.op.out_hw((src.h, src.w), graph.stride(edge.src), arrival)
        if len(set(sizes.values())) > 1:
            detail = ", ".join(f"'{src}' gives {a}x{b}" for src, (a, b) in sizes.items())
            raise SpecError(f"inputs to '{name}' disagree in size for a {h}x{w} input: {detail}",
                            _loc(node), _divisibility_hint(graph))
        hw = next(iter(sizes.values()))
        for edge in incoming:
            edges[(edge.src, name)] = Shape(graph.edge_channels(edge)[1], *hw)
        c, vector = graph.types[name].merge_channels, False
        for block in node.body:
            if not vector:
                hw = block.out_hw(hw)
            c, vector = block.out_channels(c), block.gives_vector
        if not vector and min(hw) < 1:
            raise SpecError(f"a {h}x{w} input is too small: node '{name}' would be {hw[0]}x{hw[1]}", _loc(node),
                            _divisibility_hint(graph))
        nodes[name] = Shape(c) if vector else Shape(c, *hw)
    return Shapes(first, nodes, edges)


def _loc(node):
    return node.origin.loc("name") if node.origin else None


def _divisibility_hint(graph: ArchGraph) -> str:
    largest = max((node.stride for node in graph.nodes.values()), default=1)
    return f"this network wants H and W divisible by {largest}, its largest stride"
