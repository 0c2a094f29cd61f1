"""The PyTorch executor: an ``nn.Module`` that runs a verified graph.

``__init__`` builds one module per node body (``nodes.<name>``) and per edge that
has one (``edges.<to>.<from>``), and precomputes a schedule: the nodes in
topological order, each with its in-edges and the tensors it is the last user
of. ``forward`` walks that schedule, summing or concatenating the in-edges'
outputs in declaration order (the order of the reference implementations, so
that outputs match them bit for bit). A sum is made as they fuse: each edge's
output is added as soon as it is computed and then dropped, the first add making
a new tensor and the later ones adding into it in place; a concatenation, and a
sum whose first input adopts its size from the others, compute every output
first. ``forward`` drops every intermediate tensor after
its last use (as an edge's source or as a guided edge's guide, which the edge's
module receives as its second argument: ``module(source, guide)``). An edge that
adopts its target's size gets the size of the target's first input that has one
(``module(source, size)``); one that resizes to the network input's size gets the
input's H and W, read once as ``forward`` starts (only in networks that have such
an edge): the schedule may have dropped the input's tensor by the time that edge runs.

A graph with init rules (the spec's ``init``) is built without PyTorch's default random draws,
then initialised in one pass (:mod:`archgraph.backends.torch.init`): each layer drawn once.

Output: the output node's tensor when there is one output; otherwise a dict
from output name to tensor, in declaration order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from archgraph.backends.torch.init import initialise, skipping_default_draws
from archgraph.errors import Loc, SpecError
from archgraph.ir import infer
from archgraph.ir.graph import ArchGraph


@dataclass(frozen=True)
class _Input:
    src: str
    module: Optional[Callable]  # None: identity
    adopts_size: bool
    guide: Optional[str] = None  # a guided edge's second input: module(env[src], env[guide])
    input_size: bool = False  # module(env[src], the input's HxW)


@dataclass(frozen=True)
class _Step:
    name: str
    inputs: tuple[_Input, ...]
    concat: bool
    relu: bool
    body: Optional[nn.Module]
    release: tuple[str, ...]  # tensors no longer needed after this step
    incremental: bool = False  # a sum whose first input has a size of its own: add each output as it comes


class GraphModule(nn.Module):
    """A network built from an archgraph spec; ``graph`` is the verified IR it came from."""

    def __init__(self, graph: ArchGraph):
        super().__init__()
        self.graph = graph
        self.nodes = nn.ModuleDict()
        self.edges = nn.ModuleDict()
        # with init rules, each layer is drawn once: PyTorch's default draws would be overwritten
        # (on the meta device, the build's under ``build(device="meta")``, nothing is drawn anyway)
        if graph.init and torch.get_default_device().type != "meta":
            with skipping_default_draws():
                self._build(graph)
            initialise(self, graph.init)
        else:
            self._build(graph)
        self.input_name = graph.input.name
        self.output_names = graph.outputs
        self._schedule = self._plan()
        self._reads_input_size = any(inp.input_size for step in self._schedule for inp in step.inputs)
        self._accepted: set[tuple[int, ...]] = set()  # input shapes (C, H, W) known to be fine
        self.check_input = True  # False: let torch meet a bad input size (for testing the checks themselves)

    def _build(self, graph: ArchGraph) -> None:
        """One module per node body and per edge that has one."""
        for name in graph.order:
            node = graph.nodes[name]
            if node.body:
                widths = graph.body_channels(name)
                self.nodes[name] = nn.Sequential(*(b.build(c) for b, c in zip(node.body, widths)))
            for edge in graph.in_edges(name):
                c_in, c_out = graph.edge_channels(edge)
                module = edge.op.build(c_in, c_out, graph.stride(edge.src), graph.types[name].arrival_stride,
                                       **graph.guide_args(edge))
                if module is not None:
                    if name not in self.edges:
                        self.edges[name] = nn.ModuleDict()
                    self.edges[name][edge.src] = module

    def _plan(self) -> list[_Step]:
        graph = self.graph
        last_use = {}
        for i, name in enumerate(graph.order):
            for src in graph.reads(name):  # in-edges' sources and guides
                last_use[src] = i
        steps = []
        for i, name in enumerate(graph.order):
            node = graph.nodes[name]
            edge_modules = dict(self.edges[name].items()) if name in self.edges else {}
            inputs = tuple(
                _Input(e.src, edge_modules.get(e.src), e.op.adopts_size, e.guide, e.op.takes_input_size)
                for e in graph.in_edges(name)
            )
            release = tuple(
                src for src in graph.reads(name) if last_use[src] == i and src not in self.output_names
            )
            body = self.nodes[name] if name in self.nodes else None
            steps.append(_Step(name, inputs, node.merge == "concat", node.act == "relu", body, release,
                               graph.sums_as_it_goes(name)))
        return steps

    def forward(self, x: torch.Tensor):
        env = self._run(x, release=True)
        if len(self.output_names) == 1:
            return env[self.output_names[0]]
        return {name: env[name] for name in self.output_names}

    def forward_all(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every node's tensor, the input's included (keeps them all alive: for inspection)."""
        return self._run(x, release=False)

    def _check_input(self, x: torch.Tensor) -> None:
        """Reject, before any compute, an input the network cannot take (naming the node where it fails).

        Without this, a 1x1 map would silently broadcast into a sum with a larger one.
        """
        shape = tuple(int(d) for d in x.shape)
        if shape[1:] in self._accepted:
            return
        if len(shape) != 4 or shape[1] != self.graph.input.channels:
            expected = f"(N, {self.graph.input.channels}, H, W)"
            raise SpecError(f"{self.graph.name} takes an input of shape {expected}, got {shape}",
                            Loc("<input>"))
        infer(self.graph, shape[2:])
        self._accepted.add(shape[1:])

    def _run(self, x: torch.Tensor, release: bool) -> dict[str, torch.Tensor]:
        if self.check_input:
            self._check_input(x)
        env = {self.input_name: x}
        input_size = x.shape[-2:] if self._reads_input_size else None
        for step in self._schedule:
            y = _merge(step, env, input_size)
            if step.relu:
                # a lone identity input is another node's tensor: never modify it in place
                y = torch.relu(y) if y is env.get(step.inputs[0].src) else torch.relu_(y)
            if step.body is not None:
                y = step.body(y)
            env[step.name] = y
            for name in step.release if release else ():
                del env[name]
        return env


def _merge(step: _Step, env: dict[str, torch.Tensor], input_size: torch.Size | None) -> torch.Tensor:
    """The in-edges' outputs, in declaration order, summed or concatenated."""
    if step.incremental:
        return _sum(step, env, input_size)
    parts: list[Optional[torch.Tensor]] = []
    size = None
    for inp in step.inputs:
        if inp.adopts_size:
            parts.append(None)  # needs the size the others give: computed below
            continue
        t = _output(inp, env, input_size, None)
        size = t.shape[-2:] if size is None else size
        parts.append(t)
    for k, inp in enumerate(step.inputs):
        if inp.adopts_size:
            parts[k] = _output(inp, env, input_size, size)
    if step.concat and len(parts) > 1:  # one input: the concatenation is that tensor, not a copy of it
        return torch.cat(parts, 1)  # type: ignore[arg-type]
    y = parts[0]
    for t in parts[1:]:
        y = y + t
    return y  # type: ignore[return-value]


def _sum(step: _Step, env: dict[str, torch.Tensor], input_size: torch.Size | None) -> torch.Tensor:
    """((p0 + p1) + p2) + ..., each edge's output added as soon as it is computed, then dropped.

    The first add makes a new tensor (p0 may be another node's tensor, never to be written
    into); the later ones add in place into that one. The inputs that adopt the target's size
    take p0's (the schedule sends a sum whose first input adopts one to :func:`_merge`'s path).
    """
    y = _output(step.inputs[0], env, input_size, None)
    size = y.shape[-2:]
    y = y + _output(step.inputs[1], env, input_size, size)
    for inp in step.inputs[2:]:
        y += _output(inp, env, input_size, size)
    return y


def _output(inp: _Input, env: dict[str, torch.Tensor], input_size: torch.Size | None,
            size: torch.Size | None) -> torch.Tensor:
    """One in-edge's output; ``size``: the target's, for an edge that adopts it."""
    if inp.module is None:
        return env[inp.src]
    if inp.adopts_size:
        return inp.module(env[inp.src], size)
    if inp.input_size:
        return inp.module(env[inp.src], input_size)
    if inp.guide is None:
        return inp.module(env[inp.src])
    return inp.module(env[inp.src], env[inp.guide])
