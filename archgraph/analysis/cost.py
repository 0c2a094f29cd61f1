"""The static cost model: work, parameters and activation memory of a verified graph, without torch.

Every op replays its module's forward on a :class:`~archgraph.ops.base.Tally` (its cost rule sits
next to its shape rule in ``archgraph/ops``), counting its work in primitive *terms*
(``WORK_TERMS``: conv multiply-accumulates, BN elements, upsampled elements, ...). This module walks
the graph in the executor's schedule (``GraphModule._plan``: ``graph.order``, each node's in-edges
in declaration order, a tensor dropped after its last consumer), attributes each op's work to its
node or edge, and simulates the live activations step by step.

What the terms are *worth* is a counting convention: a row of weights per term
(:data:`CONVENTIONS`). ``fvcore`` reproduces ``fvcore.nn.FlopCountAnalysis`` exactly; ``macs`` is
the multiply-accumulates of conv and linear layers (``torch.utils.flop_counter`` / 2);
``flops`` counts every arithmetic operation; ``hrnet-readme`` is the HRNet READMEs' "GFLOPs".

Results are values: a :class:`Cost` is frozen and adds with ``+``; a :class:`Profile` holds one per
node and per edge and round-trips through :meth:`Profile.to_data` / :meth:`Profile.from_data`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from archgraph.errors import Loc, SpecError
from archgraph.ir.graph import ArchGraph
from archgraph.ir.shapes import Shapes, infer
from archgraph.ops.base import WORK_TERMS, Tally, Value

SCHEMA = "archgraph-profile/1"

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


def _frozen(mapping: Mapping[str, int]) -> Mapping[str, int]:
    """Work as a read-only mapping in WORK_TERMS order, zero terms dropped."""
    return MappingProxyType({term: int(mapping[term]) for term in WORK_TERMS if mapping.get(term)})


@dataclass(frozen=True)
class Cost:
    """What an op (or a sum of ops) costs for the whole batch.

    * ``work``: count per primitive term (``archgraph.ops.base.WORK_TERMS``), batch included;
    * ``params``: parameters (weights, biases, BN affine; not BN running statistics);
    * ``act_bytes``: bytes of the tensor it returns, if it makes one (an identity edge makes none);
    * ``alloc_bytes``: bytes of every tensor it makes, intermediates included.

    Weigh ``work`` with a :class:`Convention` to get one number: ``convention('fvcore').count(cost)``.
    """

    work: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    params: int = 0
    act_bytes: int = 0
    alloc_bytes: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "work", _frozen(self.work))

    def __add__(self, other: "Cost") -> "Cost":
        if not isinstance(other, Cost):
            return NotImplemented
        work = {t: self.work.get(t, 0) + other.work.get(t, 0) for t in WORK_TERMS}
        return Cost(work, self.params + other.params, self.act_bytes + other.act_bytes,
                    self.alloc_bytes + other.alloc_bytes)

    def __radd__(self, other: Any) -> "Cost":  # sum() starts from 0
        if other == 0:
            return self
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Cost):
            return NotImplemented
        return (dict(self.work), self.params, self.act_bytes, self.alloc_bytes) == (
            dict(other.work), other.params, other.act_bytes, other.alloc_bytes)

    def __hash__(self) -> int:
        return hash((tuple(self.work.items()), self.params, self.act_bytes, self.alloc_bytes))

    @property
    def macs(self) -> int:
        """Multiply-accumulates of conv and linear layers."""
        return self.work.get("conv_mac", 0) + self.work.get("linear_mac", 0)

    def to_data(self) -> dict[str, Any]:
        return {"params": self.params, "act_bytes": self.act_bytes, "alloc_bytes": self.alloc_bytes,
                "work": dict(self.work)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Cost":
        return cls(dict(data["work"]), data["params"], data["act_bytes"], data["alloc_bytes"])


# --- conventions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Convention:
    """A way of counting: a weight per work term; a count is sum(weight x term count).

    ``training`` overrides weights when the network is in training mode (only fvcore
    distinguishes: its BatchNorm handle counts 5 per element in training, 2 in eval).
    Counts are exact integers; ``divisor`` and ``unit`` only say how to print them.
    """

    name: str
    summary: str
    weights: Mapping[str, int]
    notes: Mapping[str, str]
    training: Mapping[str, int] = field(default_factory=dict)
    divisor: int = 1
    unit: str = "FLOPs"
    prefix: str = ""  # fixed prefix for printing (hrnet-readme: 'G' of 2**30); '' = SI by size

    def weight(self, term: str, training: bool = False) -> int:
        if training and term in self.training:
            return self.training[term]
        return self.weights[term]

    def count(self, cost: Cost, training: bool = False) -> int:
        return sum(self.weight(term, training) * n for term, n in cost.work.items())

    def value(self, cost: Cost, training: bool = False) -> float:
        """The count in this convention's printed unit (hrnet-readme: / 2**30)."""
        return self.count(cost, training) / self.divisor

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "summary": self.summary, "weights": dict(self.weights),
                "training_weights": dict(self.training), "divisor": self.divisor, "unit": self.unit,
                "notes": dict(self.notes)}


def _row(**weights: int) -> dict[str, int]:
    unknown = set(weights) - set(WORK_TERMS)
    assert not unknown, unknown
    return {term: weights.get(term, 0) for term in WORK_TERMS}


_FVCORE_NOTES = {
    "conv_mac": "aten::_convolution: N x prod(weight shape) x prod(out HxW); bias ignored",
    "conv_bias": "not counted",
    "linear_mac": "aten::linear: prod(input shape) x out features; bias ignored",
    "linear_bias": "not counted",
    "bn": "aten::batch_norm: 2 per input element in eval (affine), 5 in training",
    "relu": "aten::relu/relu_: in fvcore's ignore list",
    "add": "aten::add/add_: not handled (reported as unsupported), so 0",
    "upsample_nearest": "aten::upsample_nearest2d: 1 per output element",
    "upsample_bilinear": "aten::upsample_bilinear2d: 4 per output element",
    "global_pool": "aten::adaptive_avg_pool2d: 1 per input element",
    "max_pool": "aten::max_pool2d: not handled (reported as unsupported), so 0",
    "grid_sample": "aten::grid_sampler: 4 per output element (fvcore assumes bilinear); the grid's own "
                   "arithmetic (aten::add, aten::div, linspace) is unsupported, so 0",
    "leaky_relu": "aten::leaky_relu: not handled (reported as unsupported), so 0",
}

CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention(
            "fvcore",
            "fvcore.nn.FlopCountAnalysis(model, x).total() for the module archgraph builds (eval mode); "
            "one multiply-add = 1",
            _row(conv_mac=1, linear_mac=1, bn=2, upsample_nearest=1, upsample_bilinear=4, global_pool=1,
                 grid_sample=4),
            _FVCORE_NOTES,
            training={"bn": 5},
            unit="FLOPs (fvcore)",
        ),
        Convention(
            "macs",
            "multiply-accumulates of conv and linear layers, nothing else (= torch.utils.flop_counter / 2)",
            _row(conv_mac=1, linear_mac=1),
            {"conv_mac": "1 per multiply-accumulate", "linear_mac": "1 per multiply-accumulate",
             **{t: "not counted" for t in WORK_TERMS if t not in ("conv_mac", "linear_mac")}},
            unit="MACs",
        ),
        Convention(
            "flops",
            "every arithmetic operation of inference: 2 per multiply-accumulate plus the elementwise work",
            _row(conv_mac=2, conv_bias=1, linear_mac=2, linear_bias=1, bn=2, relu=1, add=1,
                 upsample_bilinear=7, global_pool=1, max_pool=1, grid_sample=7, leaky_relu=2),
            {
                "conv_mac": "a multiply and an add",
                "conv_bias": "one add per output element",
                "linear_mac": "a multiply and an add",
                "linear_bias": "one add per output feature",
                "bn": "eval BN folds to y = x*scale + shift: a multiply and an add per element",
                "relu": "one max(x, 0) per element",
                "add": "one add per element of each two-input sum (a k-input sum: k-1)",
                "upsample_nearest": "a copy: no arithmetic",
                "upsample_bilinear": "a 2x2 weighted sum per output element: 4 multiplies + 3 adds",
                "global_pool": "HxW-1 adds and 1 divide per channel: 1 per input element (adaptive pooling "
                               "to b x b bins: the same when b divides H and W; otherwise its windows overlap "
                               "and this slightly undercounts)",
                "max_pool": "one max(a, b) per comparison: kernel area - 1 per output element",
                "grid_sample": "a 2x2 weighted sum per output element, as bilinear upsampling: 7 (the "
                               "grid's 2 per grid element, the base grid plus flow / size, is left out)",
                "leaky_relu": "a multiply and a max per element: 2",
            },
            unit="FLOPs",
        ),
        Convention(
            "hrnet-readme",
            "the HRNet READMEs' 'GFLOPs': conv + linear multiply-adds / 1024^3 (bias, BN, upsampling ignored)",
            _row(conv_mac=1, linear_mac=1),
            {"conv_mac": "1 per multiply-add", "linear_mac": "1 per multiply-add",
             **{t: "not counted" for t in WORK_TERMS if t not in ("conv_mac", "linear_mac")}},
            divisor=1024**3,
            unit="GFLOPs (MACs / 2^30)",
            prefix="G",
        ),
    )
}


def convention(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        from archgraph.errors import did_you_mean

        hint = did_you_mean(name, CONVENTIONS) or f"conventions: {', '.join(CONVENTIONS)}"
        raise SpecError(f"unknown counting convention {name!r}", Loc("<command line>"), hint) from None


# --- the profile ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """A piece of a node's cost: its merge (``merge sum+relu``) or its blocks of one kind."""

    op: str
    cost: Cost


@dataclass(frozen=True)
class NodeCost:
    name: str
    stride: int
    shape: tuple[int, ...]  # output, without the batch
    body: str  # 'basic x4', '' for none
    parts: tuple[Part, ...]

    @property
    def cost(self) -> Cost:
        return sum((p.cost for p in self.parts), Cost())


@dataclass(frozen=True)
class EdgeCost:
    src: str
    dst: str
    op: str
    src_stride: int
    dst_stride: int
    shape: tuple[int, ...]  # output, without the batch
    cost: Cost

    @property
    def name(self) -> str:
        return f"{self.src} -> {self.dst}"


@dataclass(frozen=True)
class Profile:
    """The static cost of one network at one input size, batch and dtype."""

    name: str
    params: Mapping[str, Any]  # the spec parameters it was built with
    input: tuple[int, ...]  # (C, H, W)
    batch: int
    dtype: str
    nodes: tuple[NodeCost, ...]
    edges: tuple[EdgeCost, ...]
    peak_bytes: int  # live activations at the fullest moment of the executor's schedule
    peak_at: str  # the node whose step reached it

    @property
    def total(self) -> Cost:
        return sum((n.cost for n in self.nodes), Cost()) + sum((e.cost for e in self.edges), Cost())

    def by_op(self) -> dict[str, Cost]:
        """Cost per op kind: ``block <tag>``, ``edge <tag>``, ``merge sum|concat[+relu]``."""
        groups: dict[str, Cost] = {}
        for node in self.nodes:
            for part in node.parts:
                groups[part.op] = groups.get(part.op, Cost()) + part.cost
        for edge in self.edges:
            key = f"edge {edge.op}"
            groups[key] = groups.get(key, Cost()) + edge.cost
        return groups

    def to_data(self, conv: Convention | str = "fvcore", training: bool = False) -> dict[str, Any]:
        """A JSON-able dict. ``count`` fields are derived (in ``conv``); :meth:`from_data` ignores them."""
        conv = convention(conv) if isinstance(conv, str) else conv

        def cost(c: Cost) -> dict[str, Any]:
            return {"count": conv.count(c, training), **c.to_data()}

        return {
            "name": self.name,
            "params": dict(self.params),
            "input": list(self.input),
            "batch": self.batch,
            "dtype": self.dtype,
            "total": {**cost(self.total), "peak_bytes": self.peak_bytes, "peak_at": self.peak_at},
            "nodes": [{"name": n.name, "stride": n.stride, "shape": list(n.shape), "body": n.body,
                       **cost(n.cost), "parts": [{"op": p.op, **cost(p.cost)} for p in n.parts]}
                      for n in self.nodes],
            "edges": [{"src": e.src, "dst": e.dst, "op": e.op, "src_stride": e.src_stride,
                       "dst_stride": e.dst_stride, "shape": list(e.shape), **cost(e.cost)} for e in self.edges],
            "ops": [{"op": op, **cost(c)} for op, c in self.by_op().items()],
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Profile":
        nodes = tuple(
            NodeCost(n["name"], n["stride"], tuple(n["shape"]), n["body"],
                     tuple(Part(p["op"], Cost.from_data(p)) for p in n["parts"]))
            for n in data["nodes"]
        )
        edges = tuple(
            EdgeCost(e["src"], e["dst"], e["op"], e["src_stride"], e["dst_stride"], tuple(e["shape"]),
                     Cost.from_data(e))
            for e in data["edges"]
        )
        total = data["total"]
        return cls(data["name"], dict(data["params"]), tuple(data["input"]), data["batch"], data["dtype"],
                   nodes, edges, total["peak_bytes"], total["peak_at"])


def profile(graph: ArchGraph, size: tuple[int, int] | None = None, batch: int = 1,
            dtype: str = "float32", shapes: Shapes | None = None) -> Profile:
    """The static profile of a verified ``graph`` for an input of ``size`` (default: the spec's)."""
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype {dtype!r}", Loc("<command line>"), f"dtypes: {', '.join(DTYPE_BYTES)}")
    if batch < 1:
        raise SpecError(f"batch must be at least 1, got {batch}", Loc("<command line>"))
    shapes = shapes or infer(graph, size)
    scale = batch * DTYPE_BYTES[dtype]  # elements per sample -> bytes for the batch
    replay = _Replay(graph, shapes)
    replay.root.memory.item_bytes = DTYPE_BYTES[dtype]  # for scratch tensors of other dtypes (Tally.transient)
    replay.run()

    def cost(t: Tally, out: Value | None) -> Cost:
        made = out is not None and out.owned
        work = {term: n * batch for term, n in t.work.items()}
        return Cost(work, t.params, out.elements * scale if made else 0, t.allocated * scale)  # type: ignore[union-attr]

    nodes = []
    for name in graph.order:
        node = graph.nodes[name]
        merge_tally, out, blocks = replay.node_tallies[name]
        parts = []
        merge_op = _merge_label(graph, name)
        if merge_op:
            parts.append(Part(merge_op, cost(merge_tally, None)))
        by_tag: dict[str, Cost] = {}
        for tag, t in blocks:
            by_tag[f"block {tag}"] = by_tag.get(f"block {tag}", Cost()) + cost(t, None)
        parts += [Part(op, c) for op, c in by_tag.items()]
        if out.owned:  # the node's output bytes go to its last part (the body, or the merge)
            last = parts[-1]
            parts[-1] = Part(last.op, last.cost + Cost(act_bytes=out.elements * scale))
        body = _squash([b.tag for b in node.body])
        nodes.append(NodeCost(name, node.stride, shapes[name].dims, body, tuple(parts)))
    edges = []
    for name in graph.order:
        for edge in graph.in_edges(name):
            t, out = replay.edge_tallies[(edge.src, name)]
            edges.append(EdgeCost(edge.src, name, edge.op.tag, graph.stride(edge.src),
                                  graph.types[name].arrival_stride, shapes.edges[(edge.src, name)].dims,
                                  cost(t, out)))
    return Profile(graph.name, dict(graph.params), shapes.input.dims, batch, dtype, tuple(nodes), tuple(edges),
                   replay.root.memory.peak * scale, replay.root.memory.peak_at)


def parameters(graph: ArchGraph, size: tuple[int, int] | None = None, shapes: Shapes | None = None) -> int:
    """The parameters of the module ``graph`` builds: ``profile(graph, size).total.params``, without the rest.

    For the parameter limit (``limits.check_build``), which runs before every build. Each op's cost
    rule runs on the shapes of ``size`` and its output is checked against shape inference, as in
    :func:`profile`, but once per distinct call: a rule is a function of its op's fields and its
    arguments, so a block or edge equal to one already counted, with the same inputs (HRNet's
    repeated modules, its fusion edges between the same strides), counts what that one counted.
    An edge's node names (``from``, ``to``) are not part of the comparison: ``build`` does not see
    them. Work and memory are not simulated.
    """
    shapes = shapes or infer(graph, size)
    seen: dict[Any, tuple[int, int, tuple[int, int] | None]] = {}  # call -> (params, out channels, out HxW)
    total = 0
    for name in graph.order:
        arrival = graph.types[name].arrival_stride
        edges = graph.in_edges(name)
        for edge in edges:
            c_out = graph.edge_channels(edge)[1]
            src, out = shapes[edge.src], shapes.edges[(edge.src, name)]
            guide = None if edge.guide is None else shapes[edge.guide]
            key = (_fields(edge.op, edge=True), src.dims, c_out, graph.stride(edge.src), arrival, out.dims,
                   guide and guide.dims)
            found = _memo(seen, key)
            if found is None:
                t = Tally()
                extra = {} if guide is None else {"guide": Value(guide.channels, _hw(guide), owned=False)}
                try:
                    value = edge.op.cost(t, Value(src.channels, _hw(src), owned=False), c_out,
                                         graph.stride(edge.src), arrival, _hw(out), **extra)
                except NotImplementedError as error:
                    raise _uncounted(error, edge.origin.loc("op") if edge.origin else None) from None
                _Replay._check(value, out.dims, f"edge {edge.label}")
                found = _remember(seen, key, (t.params, value.channels, value.hw))
            total += found[0]
        node = graph.nodes[name]
        c, hw = graph.types[name].merge_channels, _hw(shapes.edges[(edges[0].src, name)])
        for block in node.body:
            key = (_fields(block), c, hw)
            found = _memo(seen, key)
            if found is None:
                t = Tally()
                try:
                    value = block.cost(t, Value(c, hw, owned=False))
                except NotImplementedError as error:
                    raise _uncounted(error, node.origin.loc("body") if node.origin else None) from None
                found = _remember(seen, key, (t.params, value.channels, value.hw))
            total += found[0]
            c, hw = found[1], found[2]
        _Replay._check(Value(c, hw), shapes[name].dims, f"node '{name}'")
    return total


def _fields(op: Any, edge: bool = False) -> tuple[Any, ...]:
    """An op as a comparable value: its class and field values (an edge's without its node names)."""
    if edge:
        return (type(op), tuple((k, v) for k, v in op.__dict__.items() if k != "src" and k != "dst"))
    return (type(op), tuple(op.__dict__.items()))


def _memo(seen: dict, key: Any) -> Any:
    try:
        return seen.get(key)
    except TypeError:  # a field value that cannot be a key (a list): counted afresh each time
        return None


def _remember(seen: dict, key: Any, found: Any) -> Any:
    try:
        seen[key] = found
    except TypeError:
        pass
    return found


def _merge_label(graph: ArchGraph, name: str) -> str:
    """'merge sum+relu', 'merge concat', or '' for a node with one input and no activation."""
    node = graph.nodes[name]
    several = len(graph.in_edges(name)) > 1
    label = node.merge if several else ""
    if node.act == "relu":
        label = f"{label}+relu" if label else "relu"
    return f"merge {label}" if label else ""


def _squash(tags: list[str]) -> str:
    if tags and all(t == tags[0] for t in tags) and len(tags) > 1:
        return f"{tags[0]} x{len(tags)}"
    return ", ".join(tags)


class _Replay:
    """The executor's forward (``GraphModule._run`` and ``_merge``), replayed on tallies.

    Mirrors it reference for reference, so that the memory simulation frees a tensor exactly
    when eager PyTorch (``no_grad``) would: the input stays alive (the caller holds it); a
    sum (``_sum``) computes its first edge's output, adds the second's into a new tensor, the
    later ones in place, and drops each edge's output once it is added; a concatenation (or a
    sum whose first input adopts its size) keeps every edge's output until ``_merge`` returns,
    each add ``y = y + t`` making a new tensor and dropping the previous partial sum; the merged
    tensor stays referenced while the body runs;
    a body block's input goes once the block has returned; a node's tensor goes after its
    last consumer's step unless it is an output.
    """

    def __init__(self, graph: ArchGraph, shapes: Shapes):
        self.graph, self.shapes = graph, shapes
        self.root = Tally()
        self.node_tallies: dict[str, tuple[Tally, Value, list[tuple[str, Tally]]]] = {}
        self.edge_tallies: dict[tuple[str, str], tuple[Tally, Value | None]] = {}

    def run(self) -> None:
        graph, shapes, root = self.graph, self.shapes, self.root
        memory = root.memory
        first = shapes.input
        x = root.input(first.channels, (first.h, first.w))  # type: ignore[arg-type]
        memory.live = memory.peak = x.elements
        memory.where = memory.peak_at = graph.input.name
        env: dict[str, Value] = {graph.input.name: x}
        refs: dict[int, int] = {id(x): 1}  # env names per tensor (a pass-through node aliases its source)
        last_use = {}
        for i, name in enumerate(graph.order):
            for src in graph.reads(name):  # in-edges' sources and guides
                last_use[src] = i
        outputs = set(graph.outputs)
        for i, name in enumerate(graph.order):
            memory.where = name
            y = self._step(name, env)
            env[name] = y
            refs[id(y)] = refs.get(id(y), 0) + 1
            for src in graph.reads(name):
                if last_use[src] == i and src not in outputs:
                    gone = env.pop(src)
                    refs[id(gone)] -= 1
                    if not refs[id(gone)]:
                        root.free(gone)

    def _step(self, name: str, env: dict[str, Value]) -> Value:
        graph, shapes, root = self.graph, self.shapes, self.root
        node = graph.nodes[name]
        edges = graph.in_edges(name)
        arrival = graph.types[name].arrival_stride
        made: list[Value] = []  # edge outputs the replay made (not a node's tensor passed on)

        def output(k: int) -> Value:
            edge = edges[k]
            src = env[edge.src]
            alias = Value(src.channels, src.hw, owned=False)  # the edge must not free a node's tensor
            guide = {}
            if edge.guide is not None:  # a guided edge also reads its guide's tensor (never frees it)
                g = env[edge.guide]
                guide = {"guide": Value(g.channels, g.hw, owned=False)}
            t = root.child()
            try:
                out = edge.op.cost(t, alias, graph.edge_channels(edge)[1], graph.stride(edge.src), arrival,
                                   _hw(shapes.edges[(edge.src, name)]), **guide)
            except NotImplementedError as error:
                raise _uncounted(error, edge.origin.loc("op") if edge.origin else None) from None
            self._check(out, shapes.edges[(edge.src, name)].dims, f"edge {edge.label}")
            if out is alias:
                self.edge_tallies[(edge.src, name)] = (t, None)
                return src
            made.append(out)
            self.edge_tallies[(edge.src, name)] = (t, out)
            return out

        merge = root.child()
        if graph.sums_as_it_goes(name):
            # _sum: y = p0; y = y + p1; y += p2; ...: each output dropped once added
            y = output(0)
            for k in range(1, len(edges)):
                p = output(k)
                if k == 1:
                    total = merge.add(y, p)
                    if made and y is made[0]:
                        merge.free(y)  # y is rebound: p0 goes (unless it is a node's tensor)
                    y = total
                else:
                    merge.add(y, p, inplace=True)
                if made and p is made[-1]:
                    merge.free(p)
        else:
            parts: list[Value | None] = [None] * len(edges)
            # _merge computes the edges that adopt the target's size after the others
            for k in sorted(range(len(edges)), key=lambda k: edges[k].op.adopts_size):
                parts[k] = output(k)
            if len(parts) == 1:
                y = parts[0]  # type: ignore[assignment]
            elif node.merge == "concat":
                y = merge.concat(parts)  # type: ignore[arg-type]
            else:
                y = parts[0]  # type: ignore[assignment]
                for p in parts[1:]:
                    total = merge.add(y, p)  # type: ignore[arg-type]
                    if y is not parts[0]:
                        merge.free(y)  # a partial sum
                    y = total
            for p in made:
                if p is not y:
                    merge.free(p)  # _merge returns: its parts list goes
        is_env = any(y is v for v in env.values())
        if node.act == "relu":
            y = merge.relu(y, inplace=not is_env)  # type: ignore[arg-type]
            is_env = is_env and not y.owned
        merged = y
        blocks = []
        for block in node.body:
            t = root.child()
            alias = Value(y.channels, y.hw, owned=False)  # type: ignore[union-attr]
            try:
                out = block.cost(t, alias)
            except NotImplementedError as error:
                raise _uncounted(error, node.origin.loc("body") if node.origin else None) from None
            if out is alias:
                out = y  # a block that returns its input unchanged
            elif y is not merged:
                root.free(y)  # nn.Sequential rebinds its input: the previous block's output goes
            blocks.append((block.tag, t))
            y = out
        if y is not merged and not is_env:
            root.free(merged)  # _run rebinds y once the body returns
        self._check(y, shapes[name].dims, f"node '{name}'")  # type: ignore[arg-type]
        # the node's own output: a tensor its merge or body made (not a node's or an edge's, passed on)
        passed = any(y is v for v in env.values()) or any(y is p for p in made)
        out = Value(y.channels, y.hw, owned=False) if passed else y  # type: ignore[union-attr]
        self.node_tallies[name] = (merge, out, blocks)
        return y  # type: ignore[return-value]

    @staticmethod
    def _check(value: Value, dims: tuple[int, ...], what: str) -> None:
        got = (value.channels,) if value.hw is None else (value.channels, *value.hw)
        if got != tuple(dims):
            raise RuntimeError(f"the cost rule of {what} gives {got}, shape inference {tuple(dims)}")


def _uncounted(error: NotImplementedError, loc: Loc | None) -> SpecError:
    return SpecError(f"cannot profile: {error}", loc,
                     "an op needs a cost rule (its ``cost`` method, beside its shape rule) to be counted")


def _hw(shape) -> tuple[int, int] | None:
    return None if shape.h is None else (shape.h, shape.w)


def counts(profiles: Iterable[Profile], conv: Convention, training: bool = False) -> list[int]:
    return [conv.count(p.total, training) for p in profiles]
