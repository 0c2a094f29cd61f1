"""The graph IR: resolution nodes and fusion edges in a networkx DiGraph.

Contract:

* a :class:`Node` is a feature map at ``stride`` with ``channels``; its value is
  ``body(act(merge(inputs)))`` where the inputs are its in-edges' outputs in
  declaration order, merged by ``sum`` or ``concat``;
* an :class:`Edge` is a fusion op (an :class:`~archgraph.ops.base.EdgeOp`, which
  carries ``src`` and ``dst``) from one node into another's merge;
* a guided edge (``edge.guide``, e.g. ``op: flow_warp``) also reads one guide node at the
  target's arrival stride; ``g`` holds the dependency guide -> target (as ``guide=<edge>`` data,
  unless an edge already joins the two), so topological orders compute the guide first;
* the network's input is a node too (``graph.input.name``, stride 1, no body);
* after :func:`archgraph.ir.verify.verify`, ``graph.types[name]`` holds each node's
  arrival stride and merged width, and ``graph.order`` a deterministic
  topological order (declaration order where the graph leaves a choice).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from archgraph.ops.base import BlockOp, EdgeOp
from archgraph.spec.expand import Origin, PlainSpec
from archgraph.spec.init import InitRule
from archgraph.spec.model import InputSpec


@dataclass(frozen=True)
class Node:
    name: str
    stride: int
    channels: int
    body: tuple[BlockOp, ...]  # repeats unrolled
    merge: str = "sum"
    act: str = "none"
    output: bool = False
    origin: Origin | None = None
    body_at: tuple[int, ...] = ()  # for each block of body, its index in the spec's body list


@dataclass(frozen=True)
class Edge:
    op: EdgeOp
    origin: Origin | None = None

    @property
    def src(self) -> str:
        return self.op.src

    @property
    def dst(self) -> str:
        return self.op.dst

    @property
    def guide(self) -> str | None:
        """The extra node a guided edge reads (``op: flow_warp``'s ``guide:``), or None."""
        return self.op.guide_node

    @property
    def label(self) -> str:
        return f"{self.src} -> {self.dst} ({self.op.tag})"


@dataclass(frozen=True)
class NodeType:
    """What verification infers for a node, independent of the input size."""

    arrival_stride: int  # the stride at which its inputs merge (its stride before the body)
    merge_channels: int  # the width after the merge, entering the body
    vector: bool = False  # its output is (N, C), not a feature map


@dataclass
class ArchGraph:
    name: str
    input: InputSpec
    nodes: dict[str, Node]  # declaration order
    edges: list[Edge]  # declaration order
    params: dict = field(default_factory=dict)
    doc: str = ""
    input_origin: Origin | None = None
    duplicates: list[Node] = field(default_factory=list)  # later nodes reusing a name, for verify
    types: dict[str, NodeType] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    init: tuple[InitRule, ...] = ()  # how kinds of layer start (the spec's init rules that apply)

    def __post_init__(self) -> None:
        self.g = nx.DiGraph()
        self.g.add_node(self.input.name)
        self.g.add_nodes_from(self.nodes)
        for edge in self.edges:
            if edge.src in self.g and edge.dst in self.g and edge.src != edge.dst:
                self.g.add_edge(edge.src, edge.dst, edge=edge)
        for edge in self.edges:  # a guide is computed before the edge's target: a dependency, not an edge
            guide = edge.guide
            if guide in self.g and edge.dst in self.g and guide != edge.dst and not self.g.has_edge(guide, edge.dst):
                self.g.add_edge(guide, edge.dst, guide=edge)

    @property
    def outputs(self) -> list[str]:
        return [name for name, node in self.nodes.items() if node.output]

    def stride(self, name: str) -> int:
        return 1 if name == self.input.name else self.nodes[name].stride

    def channels(self, name: str) -> int:
        return self.input.channels if name == self.input.name else self.nodes[name].channels

    def in_edges(self, name: str) -> list[Edge]:
        """The edges into ``name``, in declaration order (the order of summation)."""
        # indexed once per edge list (verification, shape inference, the cost model and the
        # executor ask for every node's, many times: a scan each was quadratic)
        cached = self.__dict__.get("_in_edges")  # (the list indexed, its length, the index)
        if cached is None or cached[0] is not self.edges or cached[1] != len(self.edges):
            index: dict[str, list[Edge]] = {}
            for edge in self.edges:
                index.setdefault(edge.dst, []).append(edge)
            cached = self.__dict__["_in_edges"] = (self.edges, len(self.edges), index)
        return list(cached[2].get(name, ()))

    def sums_as_it_goes(self, name: str) -> bool:
        """Whether ``name``'s inputs are summed edge by edge, as the official HRNet fuses.

        Every backend merges this way (the executor, the generated source, the cost model's
        replay): each in-edge's output is added as soon as it is computed, then dropped; the
        first add makes a new tensor, the later ones add into it in place. Not for a
        concatenation, one input, or a sum whose first input takes its size from the others
        (which is not known until they are computed): those compute every output first.
        """
        edges = self.in_edges(name)
        return len(edges) > 1 and self.nodes[name].merge != "concat" and not edges[0].op.adopts_size

    def reads(self, name: str) -> list[str]:
        """The nodes whose tensors ``name``'s step uses: its in-edges' sources and guides, once each, in order."""
        used: dict[str, None] = {}
        for edge in self.in_edges(name):
            used[edge.src] = None
            if edge.guide is not None:
                used[edge.guide] = None
        return list(used)

    def guide_args(self, edge: Edge) -> dict[str, int]:
        """``{"c_guide": width}`` for a guided edge (the keyword its op's build/emit take), else ``{}``."""
        return {} if edge.guide is None else {"c_guide": self.channels(edge.guide)}

    def edge_channels(self, edge: Edge) -> tuple[int, int]:
        """(width in, width out) of an edge: out is the source's, or the target's merge width."""
        c_in = self.channels(edge.src)
        return c_in, (self.types[edge.dst].merge_channels if edge.op.projects else c_in)

    def body_channels(self, name: str) -> list[int]:
        """The width entering each block of ``name``'s body."""
        widths, c = [], self.types[name].merge_channels
        for block in self.nodes[name].body:
            widths.append(c)
            c = block.out_channels(c)
        return widths


def lower(plain: PlainSpec) -> ArchGraph:
    """The graph of a plain spec, not yet verified (duplicates are kept for verify to report)."""
    nodes: dict[str, Node] = {}
    duplicates = []
    for spec, origin in plain.nodes:
        body, body_at = _unroll(spec.body)  # type: ignore[attr-defined]
        node = Node(spec.name, spec.stride, spec.channels, body, spec.merge, spec.act, bool(spec.output), origin,
                    body_at)
        if spec.name in nodes or spec.name == plain.input.name:
            duplicates.append(node)
        else:
            nodes[spec.name] = node
    edges = [Edge(op, origin) for op, origin in plain.edges]
    return ArchGraph(plain.name, plain.input, nodes, edges, plain.params, plain.doc, plain.input_origin, duplicates,
                     init=tuple(plain.init))


def _unroll(body) -> tuple[tuple[BlockOp, ...], tuple[int, ...]]:
    """Blocks with ``repeat: n`` as n copies (only the first strides, as in a ResNet layer),
    and for each copy the index of the block it came from."""
    blocks, at = [], []
    for i, block in enumerate(body):
        for k in range(block.repeat):
            later = {"stride": 1} if k and "stride" in type(block).model_fields else {}
            blocks.append(block.model_copy(update={"repeat": 1, **later}))
            at.append(i)
    return tuple(blocks), tuple(at)
