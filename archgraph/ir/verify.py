"""Verification: every structural, stride and channel rule, all problems reported at once.

Structure first (names, duplicates, cycles, reachability), then, in topological
order, each node's strides and widths: every in-edge's op must be able to join
the source's stride to the node's arrival stride, the widths at a sum must agree,
and the body must end at the declared width.
"""

from __future__ import annotations

import math

import networkx as nx

from archgraph.errors import Loc, SpecError, did_you_mean, raise_all
from archgraph.ir.graph import ArchGraph, Edge, Node, NodeType


# Attributes of torch's nn.ModuleDict (torch 2.x, dunders aside), in which the built module keeps its
# node and edge modules by node name: a node called ``items`` or ``training`` cannot be a key there,
# and ``self.nodes.items`` in generated source would be the method. tests/test_robustness.py checks
# this list against the installed torch.
MODULE_ATTRIBUTES = frozenset({
    'T_destination', '_apply', '_backward_hooks', '_backward_pre_hooks', '_buffers', '_call_impl',
    '_compiled_call_impl', '_forward_hooks', '_forward_hooks_always_called', '_forward_hooks_with_kwargs',
    '_forward_pre_hooks', '_forward_pre_hooks_with_kwargs', '_get_backward_hooks', '_get_backward_pre_hooks',
    '_get_name', '_is_full_backward_hook', '_load_from_state_dict', '_load_state_dict_post_hooks',
    '_load_state_dict_pre_hooks', '_maybe_warn_non_full_backward_hook', '_modules', '_named_members',
    '_non_persistent_buffers_set', '_parameters', '_register_load_state_dict_pre_hook',
    '_register_state_dict_hook', '_replicate_for_data_parallel', '_save_to_state_dict', '_slow_forward',
    '_state_dict_hooks', '_state_dict_pre_hooks', '_version', '_wrapped_call_impl', 'add_module', 'apply',
    'bfloat16', 'buffers', 'call_super_init', 'children', 'clear', 'compile', 'cpu', 'cuda', 'double',
    'dump_patches', 'eval', 'extra_repr', 'float', 'forward', 'get_buffer', 'get_extra_state', 'get_parameter',
    'get_submodule', 'half', 'ipu', 'items', 'keys', 'load_state_dict', 'modules', 'mtia', 'named_buffers',
    'named_children', 'named_modules', 'named_parameters', 'parameters', 'pop', 'register_backward_hook',
    'register_buffer', 'register_forward_hook', 'register_forward_pre_hook', 'register_full_backward_hook',
    'register_full_backward_pre_hook', 'register_load_state_dict_post_hook',
    'register_load_state_dict_pre_hook', 'register_module', 'register_parameter',
    'register_state_dict_post_hook', 'register_state_dict_pre_hook', 'requires_grad_', 'set_extra_state',
    'set_submodule', 'share_memory', 'state_dict', 'to', 'to_empty', 'train', 'training', 'type', 'update',
    'values', 'xpu', 'zero_grad',
})


def reserved_name(name: str) -> bool:
    """A name the built module cannot key a submodule by (see :data:`MODULE_ATTRIBUTES`)."""
    return name in MODULE_ATTRIBUTES or (name.startswith("__") and name.endswith("__"))


def verify(graph: ArchGraph) -> ArchGraph:
    """Check ``graph``, fill in ``graph.types`` and ``graph.order``; raise every problem found."""
    errors = _structure(graph)
    if not any(e.fatal for e in errors):
        errors += _types(graph)
    raise_all(sorted(errors, key=lambda e: (e.loc, e.message)))
    return graph


class _Problem(SpecError):
    """A verification error; ``fatal`` ones stop the typing pass (it needs an acyclic graph)."""

    def __init__(self, message: str, loc: Loc, hint: str | None = None, fatal: bool = False):
        super().__init__(message, loc, hint)
        self.fatal = fatal


def _at(thing: Node | Edge | None, graph: ArchGraph, *field: str) -> Loc:
    origin = thing.origin if thing is not None else graph.input_origin
    return origin.loc(*field) if origin is not None else Loc()


def _structure(graph: ArchGraph) -> list[_Problem]:
    problems: list[_Problem] = []
    names = [graph.input.name, *graph.nodes]
    for node in [None, *graph.nodes.values()]:
        name = node.name if node is not None else graph.input.name
        if reserved_name(name):
            what = "node" if node is not None else "input"
            problems.append(_Problem(f"{what} name '{name}' is reserved: torch's nn.ModuleDict, which holds the "
                                     f"built module's nodes, has an attribute '{name}'",
                                     _at(node, graph, "name"), f"rename it, e.g. '{name.strip('_')}_node'",
                                     fatal=True))
    for node in graph.duplicates:
        first = graph.nodes.get(node.name)
        where = f"line {_at(first, graph).line}" if first else "the input"
        problems.append(_Problem(f"duplicate node name '{node.name}'", _at(node, graph, "name"),
                                 f"'{node.name}' is already declared at {where}", fatal=True))
    seen: dict[tuple[str, str], Edge] = {}
    duplicated = {node.name for node in graph.duplicates}
    for edge in graph.edges:
        for end, name in (("from", edge.src), ("to", edge.dst)):
            if name not in graph.g:
                problems.append(_Problem(f"edge {edge.label}: unknown node '{name}'", _at(edge, graph, end),
                                         did_you_mean(name, names), fatal=True))
        if edge.src == edge.dst:
            problems.append(_Problem(f"edge {edge.label} is a self-loop", _at(edge, graph), fatal=True))
        if edge.guide is not None:  # a guided edge's extra input, checked like its 'from'
            if edge.guide not in graph.g:
                problems.append(_Problem(f"edge {edge.label}: unknown guide node '{edge.guide}'",
                                         _at(edge, graph, "guide"), did_you_mean(edge.guide, names), fatal=True))
            elif edge.guide == edge.dst:
                problems.append(_Problem(f"edge {edge.label}: the guide is the edge's own target '{edge.dst}'",
                                         _at(edge, graph, "guide"), "a guide is computed before the target: "
                                         "name a node at the target's arrival stride", fatal=True))
        if edge.dst == graph.input.name:
            problems.append(_Problem(f"edge {edge.label} feeds the network's input", _at(edge, graph, "to"),
                                     fatal=True))
        first = seen.setdefault((edge.src, edge.dst), edge)
        if first is not edge and edge.dst not in duplicated:  # a repeated node repeats its from: edges
            problems.append(_Problem(f"duplicate edge {edge.src} -> {edge.dst}", _at(edge, graph),
                                     f"first declared at line {_at(first, graph).line}; a node sums each "
                                     "source once", fatal=True))
    for component in nx.strongly_connected_components(graph.g):
        if len(component) > 1:
            cycle = nx.find_cycle(graph.g.subgraph(component))
            path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
            data = graph.g.edges[cycle[-1]]
            last = data.get("edge") or data["guide"]  # a guide's dependency has no edge of its own
            problems.append(_Problem(f"cycle: {path}", _at(last, graph), "a network must be acyclic", fatal=True))
    if problems:
        return problems  # reachability is noise until names and cycles are right
    if not graph.outputs:
        at = graph.input_origin.source.key_loc(("nodes",)) if graph.input_origin else Loc()
        problems.append(_Problem("no node is an output", at,
                                 "mark the final node(s) with 'output: true'", fatal=True))
        return problems
    reachable = nx.descendants(graph.g, graph.input.name)
    useful = set().union(*(nx.ancestors(graph.g, out) | {out} for out in graph.outputs))
    for name, node in graph.nodes.items():
        if name not in reachable:
            problems.append(_Problem(f"node '{name}' is not reachable from the input '{graph.input.name}'",
                                     _at(node, graph, "name"), "give it an input with 'from:' or an edge",
                                     fatal=True))
        elif name not in useful:
            problems.append(_Problem(f"node '{name}' does not lead to any output", _at(node, graph, "name"),
                                     "use it in an edge, mark it 'output: true', or remove it", fatal=True))
    return problems


def _types(graph: ArchGraph) -> list[_Problem]:
    problems: list[_Problem] = []
    order = {name: i for i, name in enumerate(graph.nodes)}
    graph.order = [n for n in nx.lexicographical_topological_sort(graph.g, key=lambda n: order.get(n, -1))
                   if n != graph.input.name]
    graph.types[graph.input.name] = NodeType(1, graph.input.channels)
    for name in graph.order:
        if any(src not in graph.types for src in graph.reads(name)):
            continue  # an input (or a guide) could not be typed: its error is reported already
        node_type, found = _type_node(graph, graph.nodes[name])
        problems += found
        if node_type is not None:
            graph.types[name] = node_type
    return problems


def _type_node(graph: ArchGraph, node: Node) -> tuple[NodeType | None, list[_Problem]]:
    problems: list[_Problem] = []
    edges = graph.in_edges(node.name)
    body_stride = math.prod(block.stride_factor() for block in node.body)
    if node.stride % body_stride:
        problems.append(_Problem(f"node '{node.name}' has stride {node.stride}, which its body's stride "
                                 f"{body_stride} does not divide", _at(node, graph, "stride")))
        return None, problems
    arrival = node.stride // body_stride
    for edge in edges:
        if graph.types[edge.src].vector:
            problems.append(_Problem(f"edge {edge.label}: '{edge.src}' outputs a vector, not a feature map",
                                     _at(edge, graph, "from")))
            continue
        why = edge.op.stride_error(graph.stride(edge.src), arrival)
        if why:
            hints = [getattr(why, "hint", None)]  # an op's own hint (a Why), if any
            if body_stride > 1:
                hints.append(f"'{node.name}' is at stride {node.stride} after a body of stride {body_stride}")
            problems.append(_Problem(f"edge {edge.label}: {why}", _at(edge, graph, getattr(why, "field", "op")),
                                     "; ".join(h for h in hints if h) or None))
        if edge.guide is not None:
            problems += _guide_problems(graph, node, edge, arrival, len(edges) - 1)
    if all(edge.op.adopts_size for edge in edges):
        problems.append(_Problem(f"node '{node.name}': every input takes its size from the node itself",
                                 _at(node, graph, "name"), "at least one input must have a size of its own "
                                 "(an identity edge, say)"))
    merged = _merge_width(graph, node, edges, problems)
    if merged is None:
        return None, problems
    c, vector = merged, False
    for k, block in enumerate(node.body):
        if block.takes_vector != vector:
            need = "a pooled vector" if block.takes_vector else "a feature map"
            problems.append(_Problem(f"node '{node.name}': block '{block.tag}' needs {need}",
                                     _at(node, graph, "body", node.body_at[k])))
            return None, problems
        c, vector = block.out_channels(c), block.gives_vector
    if c != node.channels:
        what = "its body gives" if node.body else f"its inputs {node.merge} to"
        problems.append(_Problem(f"node '{node.name}' declares {node.channels} channels but {what} {c}",
                                 _at(node, graph, "channels")))
    return NodeType(arrival, merged, vector), problems


def _guide_problems(graph: ArchGraph, node: Node, edge: Edge, arrival: int, siblings: int) -> list[_Problem]:
    """A guided edge's guide: a feature map at the arrival stride, of a width (and among inputs) its op takes."""
    guide = edge.guide
    assert guide is not None
    at = _at(edge, graph, "guide")
    if graph.types[guide].vector:
        return [_Problem(f"edge {edge.label}: the guide '{guide}' outputs a vector, not a feature map", at)]
    if graph.stride(guide) != arrival:
        return [_Problem(f"edge {edge.label}: the guide must be at the arrival stride {arrival} of "
                         f"'{node.name}', but '{guide}' is at stride {graph.stride(guide)}", at,
                         "the guide is the fine map the edge aligns its source to, at the target's resolution")]
    why = edge.op.guide_error(graph.channels(edge.src), graph.channels(guide), siblings)
    return [_Problem(f"edge {edge.label}: {why}", at)] if why else []


def _merge_width(graph: ArchGraph, node: Node, edges: list[Edge], problems: list[_Problem]) -> int | None:
    """The width after the merge: fixed by the edges that keep their source's width."""
    kept = [(edge, graph.channels(edge.src)) for edge in edges if not edge.op.projects]
    if node.merge == "concat":
        projecting = [edge for edge in edges if edge.op.projects]
        for edge in projecting:
            problems.append(_Problem(f"edge {edge.label}: a projecting edge cannot feed a concat (its width "
                                     "would be undefined)", _at(edge, graph, "op"),
                                     "project into a node of its own, or use a sum merge"))
        return sum(c for _, c in kept) if not projecting else None
    widths = {c for _, c in kept}
    if len(widths) > 1:
        detail = ", ".join(f"'{edge.src}' gives {c}" for edge, c in kept)
        problems.append(_Problem(f"channel mismatch at sum node '{node.name}': {detail}",
                                 _at(node, graph, "name"), "project the odd input to the same width "
                                 "(an op with a 1x1 conv), or use merge: concat"))
        return None
    return widths.pop() if widths else node.channels
