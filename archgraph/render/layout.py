"""Where things go: a column per depth, a lane per stride, and repeated modules folded into one.

Everything here is computed from the verified IR, deterministically; Graphviz never lays anything
out (no ranking, no crossing minimisation), so the same graph always gives the same picture.

* **Lanes**: one per stride, finest on top. The network's input sits in the finest lane.
* **Columns**: start from each node's longest-path depth from the input, then slide every node
  within the slack its neighbours leave it (left of its earliest successor, right of its latest
  predecessor) towards the side with more edges, so as to shorten them: a branch that feeds a
  whole fusion sits next to it, not next to the transition that feeds it. Ties go right.
* **Folds**: a run of ``n >= 2`` consecutive groups of columns that are identical up to names
  (same strides, widths, bodies and in-edges, each group fed only by itself and the one before)
  is a repeated module, drawn once and marked ``xn``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from archgraph.ir.graph import ArchGraph


@dataclass(frozen=True)
class Fold:
    """``len(units)`` repeats of a module of ``width`` columns, starting at column ``start``.

    ``units[k][j]`` is the j-th node of the k-th repeat; nodes at the same j correspond. The
    first repeat is drawn (it stands for all of them); the others are hidden.
    """

    start: int
    width: int
    units: tuple[tuple[str, ...], ...]

    @property
    def count(self) -> int:
        return len(self.units)

    @property
    def columns(self) -> range:
        """Every column the repeats take, the drawn one's included."""
        return range(self.start, self.start + self.width * self.count)

    def representative(self) -> dict[str, str]:
        """Each node of the repeats -> the drawn node that stands for it."""
        return {name: self.units[0][j] for unit in self.units for j, name in enumerate(unit)}

    def repeat_of(self) -> dict[str, int]:
        return {name: k for k, unit in enumerate(self.units) for name in unit}


@dataclass(frozen=True)
class Layout:
    lanes: tuple[int, ...]  # strides, finest first
    lane: dict[str, int]  # node (the input included) -> its lane's stride
    column: dict[str, int]  # node -> column, before folding
    folds: tuple[Fold, ...]
    hidden: frozenset[str]  # nodes of the repeats that are not drawn
    x_index: dict[int, int]  # drawn column -> its position left to right after folding


def layout(graph: ArchGraph, fold: bool = True) -> Layout:
    lanes = tuple(sorted({node.stride for node in graph.nodes.values()}))
    lane = {name: node.stride for name, node in graph.nodes.items()}
    lane[graph.input.name] = lanes[0] if lanes else 1
    column = columns(graph)
    folds = tuple(find_folds(graph, column)) if fold else ()
    hidden = frozenset(name for f in folds for unit in f.units[1:] for name in unit)
    dropped = {c for f in folds for c in f.columns[f.width:]}
    kept = [c for c in range(max(column.values()) + 1) if c not in dropped]
    return Layout(lanes, lane, column, folds, hidden, {c: i for i, c in enumerate(kept)})


def columns(graph: ArchGraph) -> dict[str, int]:
    """Each node's column: longest-path depth, then each node slid within its slack (see the module doc)."""
    g, first = graph.g, graph.input.name
    names = [first, *graph.order]
    col = {first: 0}
    for name in graph.order:
        col[name] = 1 + max(col[p] for p in g.predecessors(name))
    for _ in range(len(names)):  # coordinate descent on the total edge length; a few passes suffice
        moved = False
        for name in reversed(graph.order):
            preds, succs = list(g.predecessors(name)), list(g.successors(name))
            lo = 1 + max(col[p] for p in preds)
            if not succs:
                target = lo
            else:
                hi = min(col[s] for s in succs) - 1
                target = hi if len(succs) >= len(preds) else lo
            if target != col[name]:
                col[name], moved = target, True
        if not moved:
            break
    return col


def _params(op) -> str:
    return json.dumps(op.params(), sort_keys=True, default=str)


def _signature(graph: ArchGraph, name: str) -> str:
    """A node up to its name: what it is, and what feeds it (up to the feeders' names)."""
    node = graph.nodes[name]
    body = [(b.tag, _params(b)) for b in node.body]
    ins = sorted((e.op.tag, _params(e.op), graph.stride(e.src), graph.channels(e.src)) for e in graph.in_edges(name))
    return repr((node.stride, node.channels, node.merge, node.act, node.output, body, ins))


def find_folds(graph: ArchGraph, column: dict[str, int]) -> list[Fold]:
    """Repeated modules, greedily left to right: at each column the run covering most columns."""
    order = {name: i for i, name in enumerate(graph.order)}
    by_col: dict[int, list[str]] = {}
    for name in graph.order:
        by_col.setdefault(column[name], []).append(name)
    ncols = max(column.values()) + 1
    sig_of = {name: _signature(graph, name) for name in graph.order}
    for names in by_col.values():
        names.sort(key=lambda n: (graph.nodes[n].stride, sig_of[n], order[n]))
    sigs = [tuple(sig_of[n] for n in by_col.get(c, [])) for c in range(ncols)]
    folds, i = [], 1  # column 0 is the input
    while i < ncols:
        best: tuple[int, int] | None = None
        for p in range(1, (ncols - i) // 2 + 1):
            n = 1
            while i + (n + 1) * p <= ncols and sigs[i + n * p: i + (n + 1) * p] == sigs[i: i + p]:
                n += 1
            if n < 2 or not all(sigs[i: i + p]):
                continue
            units = [tuple(name for c in range(i + k * p, i + (k + 1) * p) for name in by_col[c]) for k in range(n)]
            n = _chained(graph, units)
            if n >= 2 and (best is None or p * n > best[0] * best[1]):
                best = (p, n)
        if best is None:
            i += 1
            continue
        p, n = best
        units = [tuple(name for c in range(i + k * p, i + (k + 1) * p) for name in by_col[c]) for k in range(n)]
        folds.append(Fold(i, p, tuple(units)))
        i += p * n
    return folds


def _chained(graph: ArchGraph, units: list[tuple[str, ...]]) -> int:
    """How many of ``units`` (from the first) repeat one module: each repeat fed only by itself and the
    one before, wired alike, and read only by itself and the next (a hidden repeat must not be needed
    elsewhere). Returns the length of the longest such prefix."""
    g = graph.g
    where = {name: (k, j) for k, unit in enumerate(units) for j, name in enumerate(unit)}

    def wiring(k: int, j: int) -> tuple[list[tuple[int, int]], bool]:
        """Predecessors of units[k][j] relative to its repeat, and whether any lies outside the run."""
        rel, outside = [], False
        for p in g.predecessors(units[k][j]):
            if p in where:
                rel.append((where[p][0] - k, where[p][1]))
            else:
                outside = True
        return sorted(rel), outside

    good = 1
    for k in range(1, len(units)):
        for j, name in enumerate(units[k]):
            rel, outside = wiring(k, j)
            before, _ = wiring(k - 1, j)
            if outside or any(d not in (0, -1) for d, _ in rel):
                return good
            if k >= 2 and rel != before:
                return good
            if k == 1 and [r for r in rel if r[0] == 0] != [r for r in before if r[0] == 0]:
                return good
            prev = units[k - 1][j]
            if graph.nodes[prev].output or any(s not in where or where[s][0] not in (k - 1, k)
                                               for s in g.successors(prev)):
                return good
        good = k + 1
    return good
