"""Every bound on what a spec may ask for, in one place.

Two kinds:

* fixed bounds of the language, checked while a spec is validated, like any other field
  constraint: every count or size written in a spec (channels, strides, kernel sizes, repeats,
  widths, classes, the input's H and W, ...) is an integer from 1 (or 0, for paddings) to
  :data:`MAX_VALUE`;
* adjustable limits on a whole network, :class:`Limits`: its nodes and edges once expanded, the
  blocks of its bodies once ``repeat`` is unrolled, and the parameters a build allocates. The
  defaults are far above real networks (HRNet-W48: 56 nodes, 109 edges, 77 million parameters)
  and below what would take a machine down; raise them on purpose with the command line's
  ``--max-nodes``, ``--max-edges``, ``--max-blocks``, ``--max-params`` or ``--allow-large``, or the API's
  ``limits=Limits(...)`` (``Limits.unlimited()`` switches them off).

The sizes of the spec file itself (4 MiB, 64 levels, 200,000 values) are the loader's, in
:mod:`archgraph.lang.source`, and those of expressions in :mod:`archgraph.lang.expr`.

Nodes, edges and blocks are counted while the spec is expanded, so that a pattern asked for
millions of nodes stops at the limit rather than after writing them all; a pattern charges what it
writes through :func:`charge`. Parameters are counted from the static cost model before anything
is allocated (:func:`check_build`).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterator, Optional

from archgraph.errors import Loc, SpecError

if TYPE_CHECKING:
    from archgraph.ir.graph import ArchGraph

MAX_VALUE = 2**16  # the largest count or size a spec may write: channels <= 65536, stride <= 65536, ...
PARAM_BYTES = 4  # a float32 parameter, as built (torch's default dtype)


@dataclass(frozen=True)
class Limits:
    """Limits on a whole network; ``None`` means no limit."""

    max_nodes: Optional[int] = 10_000  # nodes after expansion (the input not counted)
    max_edges: Optional[int] = 40_000  # edges after expansion, from: edges included
    max_blocks: Optional[int] = 100_000  # body blocks after repeat: n is unrolled into n blocks
    max_params: Optional[int] = 2**31  # parameters of a build: 2**31 float32 = 8 GiB

    @classmethod
    def unlimited(cls) -> "Limits":
        return cls(None, None, None, None)

    def but(self, **changes: Optional[int]) -> "Limits":
        """A copy with some limits changed."""
        return replace(self, **changes)


DEFAULT = Limits()

# what each counted thing is called, and the command-line option that raises its limit
_WHAT = {"nodes": "nodes", "edges": "edges", "blocks": "body blocks (repeats unrolled)"}


class LimitExceeded(SpecError):
    """A network larger than a limit allows. Raised at once, not collected with other errors."""


class Budget:
    """What an expansion has written so far, against ``limits``."""

    def __init__(self, limits: Limits, loc: Loc | None = None):
        self.limits = limits
        self.loc = loc
        self.counts = {"nodes": 0, "edges": 0, "blocks": 0}

    def fork(self, loc: Loc | None) -> "Budget":
        """A copy that goes on counting from here (for a pattern's draft), reporting at ``loc``."""
        copy = Budget(self.limits, loc)
        copy.counts = dict(self.counts)
        return copy

    def spend(self, what: str, n: int = 1, loc: Loc | None = None) -> None:
        limit = getattr(self.limits, f"max_{what}")
        self.counts[what] += n
        if limit is not None and self.counts[what] > limit:
            raise LimitExceeded(f"the network has more than {limit:,} {_WHAT[what]} after expansion, the limit",
                                loc or self.loc, f"to go further on purpose: --max-{what} N or --allow-large "
                                f"(API: limits=Limits(max_{what}=N))")


_active: ContextVar[Optional[Budget]] = ContextVar("archgraph_budget", default=None)


@contextmanager
def charging(budget: Budget) -> Iterator[Budget]:
    """Make ``budget`` the one that :func:`charge` spends from, for the duration of the block."""
    token = _active.set(budget)
    try:
        yield budget
    finally:
        _active.reset(token)


def charge(what: str, n: int = 1) -> None:
    """Count ``n`` nodes, edges or blocks that a pattern writes (nothing happens outside an expansion)."""
    budget = _active.get()
    if budget is not None:
        budget.spend(what, n)


def parameter_count(graph: "ArchGraph", size: tuple[int, int] | None = None) -> int:
    """The parameters a build of ``graph`` allocates, from the static cost model (no torch).

    Parameters do not depend on the input size, but the cost model walks shapes: it takes ``size``,
    else the spec's, else a size every stride divides, whichever shape inference accepts first.
    Only the parameters are counted (:func:`archgraph.analysis.cost.parameters`), not the rest of a
    profile: this runs before every build.
    """
    from archgraph.analysis.cost import parameters

    largest = max((node.stride for node in graph.nodes.values()), default=1)
    first: SpecError | None = None
    for hw in dict.fromkeys([size, tuple(graph.input.size), (64 * largest, 64 * largest)]):
        if hw is None:
            continue
        try:
            return parameters(graph, hw)  # type: ignore[arg-type]
        except SpecError as error:
            if error.message.startswith("cannot profile"):  # an op without a cost rule (a plugin's, say)
                return _meta_count(graph)
            first = first or error
    assert first is not None
    raise first


def _meta_count(graph: "ArchGraph") -> int:
    """The parameters of the module built on torch's meta device, which allocates nothing."""
    import torch

    from archgraph.backends.torch import GraphModule

    with torch.device("meta"):
        return sum(p.numel() for p in GraphModule(graph).parameters())


def check_build(graph: "ArchGraph", limits: Limits | None = None, size: tuple[int, int] | None = None) -> int:
    """Raise :class:`LimitExceeded` if building ``graph`` would allocate more parameters than allowed.

    Returns the parameter count. Located at the spec's ``name``.
    """
    limits = limits or DEFAULT
    count = parameter_count(graph, size)
    if limits.max_params is not None and count > limits.max_params:
        where = graph.input_origin.source.loc(("name",)) if graph.input_origin else Loc()
        raise LimitExceeded(
            f"building '{graph.name}' would allocate {_binary(count * PARAM_BYTES)} for its {count:,} parameters "
            f"(float32), over the limit of {_binary(limits.max_params * PARAM_BYTES)} ({limits.max_params:,} "
            "parameters)", where,
            "to build it anyway: --max-params N or --allow-large (API: limits=Limits(max_params=N))")
    return count


def _binary(n: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
