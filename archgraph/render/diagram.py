"""The diagram of a verified graph: every box, curve and caption, placed, styled and described.

:func:`diagram` turns an :class:`~archgraph.ir.graph.ArchGraph` into a :class:`Diagram` — plain
geometry in points (origin top left, y down) with labels, CSS classes, ids and tooltips — which
``archgraph.render.dot`` writes as Graphviz DOT with every position pinned. The look of each fusion
edge is its op's own (``EdgeOp.render_style``, beside its shape and cost rules); a block names
itself in a box with ``BlockOp.render_label``. Costs come from the static cost model. No torch.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from archgraph.errors import Loc, SpecError
from archgraph.ir.graph import ArchGraph, Edge
from archgraph.ir.shapes import Shapes, infer
from archgraph.ops.base import EdgeStyle
from archgraph.render.layout import Fold, Layout, layout

FONT = "Helvetica,Arial,sans-serif"
FOLD_ABOVE = 40  # graphs with more nodes than this are folded unless told otherwise
COSTS = ("flops", "params")

# geometry, in points
MARGIN = 84.0  # the lane labels' column
COL_GAP = 52.0
FOLD_GAP = 22.0  # extra room either side of a folded module's frame
ROW_GAP = 14.0  # between boxes sharing a lane and a column
LANE_PAD = 30.0  # above and below the boxes of a lane (a frame's caption lives there)
TITLE_H = 46.0
ARROW = 7.0  # arrowhead length (arrowsize 0.7)
FRAME_PAD = 10.0

# one tint per lane, finest first: (box, band)
LANE_TINTS = (("#cfe2f3", "#f3f8fd"), ("#d5ecd2", "#f4faf3"), ("#fbe1c6", "#fef7ef"), ("#e2d7ef", "#f8f5fb"),
              ("#f4d0dc", "#fdf4f7"), ("#d9d9d9", "#f7f7f7"))
INK, MUTED, BORDER = "#1a1a1a", "#555555", "#4a5a6a"
HEAT = ("#fff7ec", "#fdd49e", "#fc8d59", "#d7301f", "#990000")  # share of the total, low to high
EDGE_HEAT = ("#b8b8b8",) + HEAT[1:]  # an edge of no cost stays visible, in grey
CONCAT = EdgeStyle("concat", "into a concat merge", "#404040", "solid", "diamond")
KIND_ORDER = ("identity", "upsample", "downsample", "conv")


@dataclass
class Box:
    """A Graphviz node: a rectangle (or a caption) at a fixed place. ``x, y``: centre; ``w, h``: size."""

    id: str
    classes: tuple[str, ...]
    x: float
    y: float
    w: float
    h: float
    label: str = ""  # the inside of an HTML-like label (without the outer <>), or ""
    tooltip: str = ""
    shape: str = "box"
    style: str = "filled"
    fill: str = "white"
    color: str = BORDER
    penwidth: float = 1.0

    @property
    def left(self) -> float:
        return self.x - self.w / 2

    @property
    def right(self) -> float:
        return self.x + self.w / 2

    @property
    def top(self) -> float:
        return self.y - self.h / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h / 2


@dataclass
class Curve:
    """A Graphviz edge: a cubic B-spline (3n+1 points) ending in an arrowhead at ``tip``."""

    id: str
    classes: tuple[str, ...]
    tail: str  # box ids
    head: str
    points: list[tuple[float, float]]
    tip: tuple[float, float]
    color: str
    style: str
    arrowhead: str
    penwidth: float = 1.2
    tooltip: str = ""


@dataclass
class Diagram:
    name: str
    width: float
    height: float
    boxes: list[Box] = field(default_factory=list)  # in drawing order: bands, frames, nodes, captions
    curves: list[Curve] = field(default_factory=list)
    lanes: tuple[int, ...] = ()
    folds: tuple[Fold, ...] = ()
    nodes: dict[str, str] = field(default_factory=dict)  # every graph node -> the id of the box drawing it
    edges: dict[tuple[str, str], str] = field(default_factory=dict)  # every edge -> its curve's or fold's id
    guides: dict[tuple[str, str], str] = field(default_factory=dict)  # a guided edge -> its guide's curve (or fold)

    @property
    def fold_names(self) -> list[str]:
        return [f"{fold_name(f)} ×{f.count}" for f in self.folds]


def diagram(graph: ArchGraph, size: tuple[int, int] | None = None, *, fold: bool | None = None, depth: int = 1,
            cost: str | None = None, convention: str = "fvcore", shapes: Shapes | None = None) -> Diagram:
    """The diagram of a verified ``graph`` for an input of ``size`` (default: the spec's).

    ``fold``: draw each repeated module once, marked ``xN`` (default: for graphs of more than
    ``FOLD_ABOVE`` nodes); ``depth``: 0 shows names and shapes, 1 adds a summary of each body,
    2 one line per block; ``cost``: shade nodes and edges by their share of the total ``flops``
    (counted in ``convention``) or ``params``.
    """
    if cost not in (None, *COSTS):
        raise SpecError(f"--cost must be flops or params, got {cost!r}", Loc("<command line>"))
    return _Builder(graph, size, fold, depth, cost, convention, shapes).run()


# --- text -----------------------------------------------------------------------------------------

_NARROW = set("iljtfr.,:;|!()[]' ")
_WIDE = set("mwMW@%")


def text_width(text: str, size: float, bold: bool = False) -> float:
    """An estimate of ``text``'s width in Helvetica at ``size`` points (a little generous)."""
    em = 0.0
    for ch in text:
        em += (0.33 if ch in _NARROW else 0.9 if ch in _WIDE else 0.64 if ch.isdigit() else
               0.7 if ch.isupper() else 0.6)
    return em * size * (1.1 if bold else 1.0)


@dataclass(frozen=True)
class Line:
    text: str
    size: float = 9.0
    bold: bool = False
    color: str = MUTED

    def html(self) -> str:
        inner = html.escape(self.text, quote=False)
        if self.bold:
            inner = f"<B>{inner}</B>"
        return f'<FONT POINT-SIZE="{self.size:g}" COLOR="{self.color}">{inner}</FONT>'

    @property
    def width(self) -> float:
        return text_width(self.text, self.size, self.bold)


def label_of(lines: Iterable[Line], align: str = "CENTER") -> str:
    """An HTML-like label: one table row per line (rows keep descenders clear of the next line)."""
    rows = "".join(f'<TR><TD ALIGN="{align}">{line.html()}</TD></TR>' for line in lines)
    return f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{rows}</TABLE>'


def block_size(lines: list[Line], pad_x: float = 16.0, pad_y: float = 8.0) -> tuple[float, float]:
    return (max(line.width for line in lines) + pad_x, sum(line.size * 1.3 + 2 for line in lines) + pad_y)


def si(n: float, unit: str = "") -> str:
    """3 significant digits with an SI prefix: 8967561536 -> '8.97 G'."""
    prefixes = ("", "k", "M", "G", "T", "P")
    k = 0
    while abs(n) >= 999.5 and k < len(prefixes) - 1:
        n /= 1000
        k += 1
    text = f"{n:.3g}" if k else f"{n:g}"
    return f"{text} {prefixes[k]}{unit}".rstrip()


# --- colours --------------------------------------------------------------------------------------


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def heat(t: float, scale: tuple[str, ...] = HEAT) -> str:
    """The colour for a share ``t`` in [0, 1] of the largest one."""
    t = min(max(t, 0.0), 1.0) * (len(scale) - 1)
    i = min(int(t), len(scale) - 2)
    a, b, f = _rgb(scale[i]), _rgb(scale[i + 1]), t - i
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b))


def dark(colour: str) -> bool:
    r, g, b = _rgb(colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 110


# --- names ----------------------------------------------------------------------------------------


def pattern_name(names: list[str]) -> str:
    """The names of a folded node's copies in one: s3_m0_b0 .. s3_m3_b0 -> 's3_m[0-3]_b0'."""
    if len(names) == 1:
        return names[0]
    prefix = os.path.commonprefix(names)
    while prefix and prefix[-1].isdigit():
        prefix = prefix[:-1]
    rests = [n[len(prefix):] for n in names]
    suffix = os.path.commonprefix([r[::-1] for r in rests])[::-1]
    while suffix and suffix[0].isdigit():
        suffix = suffix[1:]
    middles = [r[: len(r) - len(suffix)] for r in rests]
    if all(m.isdigit() for m in middles):
        numbers = [int(m) for m in middles]
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            return f"{prefix}[{numbers[0]}-{numbers[-1]}]{suffix}"
    return f"{names[0]} (+{len(names) - 1})"


def node_id(name: str) -> str:
    return f"node-{name}"


def edge_id(src: str, dst: str) -> str:
    return f"edge-{src}--{dst}"


def guide_id(src: str, dst: str) -> str:
    """The curve from a guided edge's guide node to the edge's target (named after the edge)."""
    return f"guide-{src}--{dst}"


# the dotted curve from a guide node into the target of the edge it guides
GUIDE = EdgeStyle("guide", "guide: the map a guided edge aligns to", "#CC79A7", "dotted", "odot")


# --- the builder ----------------------------------------------------------------------------------


class _Builder:
    def __init__(self, graph: ArchGraph, size, fold, depth, cost, convention, shapes):
        self.graph, self.depth, self.cost = graph, max(depth, 0), cost
        self.shapes = shapes or infer(graph, size)
        fold = len(graph.nodes) > FOLD_ABOVE if fold is None else fold
        self.layout: Layout = layout(graph, fold)
        from archgraph.analysis.cost import convention as get_convention
        from archgraph.analysis.cost import profile

        self.conv = get_convention(convention)
        try:
            self.profile = profile(graph, size, shapes=self.shapes)
        except SpecError:
            if cost is not None:
                raise  # asked for: say why it cannot be counted
            self.profile = None  # an op without a cost rule: tooltips say so, nothing is shaded
        self.node_cost = {n.name: n.cost for n in self.profile.nodes} if self.profile else {}
        self.edge_cost = {(e.src, e.dst): e.cost for e in self.profile.edges} if self.profile else {}
        self.total = self.profile.total if self.profile else None
        self.out = Diagram(graph.name, 0, 0, lanes=self.layout.lanes, folds=self.layout.folds)
        rep: dict[str, str] = {}
        for f in self.layout.folds:
            rep.update(f.representative())
        self.rep = rep  # hidden or drawn node of a fold -> its drawn node
        self.copies: dict[str, list[str]] = {}  # a drawn node of a fold -> every copy it stands for
        for f in self.layout.folds:
            for j, name in enumerate(f.units[0]):
                self.copies[name] = [unit[j] for unit in f.units]
        self.repeats = [f.repeat_of() for f in self.layout.folds]  # per fold: node -> which copy it is in
        self.groups, self.folded = self._edge_groups()
        self._max: float | None = None
        self.kinds: dict[str, EdgeStyle] = {}  # every edge kind drawn, for the legend

    # -- costs --
    def _count(self, c) -> int:
        return self.conv.count(c) if self.cost != "params" else c.params

    def _share(self, costs: list) -> float:
        whole = self._count(self.total) if self.total is not None else 0
        return sum(self._count(c) for c in costs) / whole if whole else 0.0

    def _unit(self) -> str:
        conv = self.conv
        return conv.unit if conv.name in conv.unit else f"{conv.unit} ({conv.name})"

    def _cost_text(self, costs: list, copies: int = 1) -> str:
        if self.total is None:
            return "cost: not counted (an op has no cost rule)"
        conv = self.conv
        flops = sum(conv.count(c) for c in costs)
        params = sum(c.params for c in costs)
        whole = conv.count(self.total)
        what = f" (all {copies} copies)" if copies > 1 else ""
        share_f = f"{100 * flops / whole:.2f}%" if whole else "-"
        share_p = f"{100 * params / self.total.params:.2f}%" if self.total.params else "-"
        unit = self._unit()
        return f"cost{what}: {si(flops)} {unit} = {share_f} of the total; {params:,} parameters = {share_p}"

    # -- the whole --
    def run(self) -> Diagram:
        self._place_nodes()
        self._lanes_and_frames()
        self._route_edges()
        self._title()
        self._legend()
        self._finish()
        return self.out

    def _visible(self) -> list[str]:
        return [n for n in [self.graph.input.name, *self.graph.order] if n not in self.layout.hidden]

    # -- nodes --
    def _node_lines(self, name: str) -> list[Line]:
        graph, shapes = self.graph, self.shapes
        copies = self.copies.get(name, [name])
        title = pattern_name(copies)
        lines = [Line(title, 11.0, True, INK)]
        shape = shapes[name]
        lines.append(Line(f"{shape.channels} ch · {shape.h}×{shape.w}" if shape.h is not None
                          else f"{shape.channels} (vector)", 9.0, False, INK))
        if name == graph.input.name:
            if self.depth >= 1:
                lines.append(Line("input", 9.0))
        elif self.depth >= 1:
            node = graph.nodes[name]
            merge = []
            if len(graph.in_edges(name)) > 1:
                merge.append("sum" if node.merge == "sum" else "concat")
            if node.act == "relu":
                merge.append("relu")
            head = " + ".join(merge)
            if self.depth == 1:
                body = _squash([b.render_label() for b in node.body])
                lines.append(Line(" · ".join(x for x in (head, body) if x) or "\u00a0", 9.0))
            else:
                if head:
                    lines.append(Line(head, 9.0))
                widths = graph.body_channels(name)
                groups: dict[int, list[int]] = {}
                for k, at in enumerate(node.body_at):
                    groups.setdefault(at, []).append(k)
                for ks in groups.values():
                    block = node.body[ks[0]]
                    out = block.out_channels(widths[ks[-1]])
                    times = f" ×{len(ks)}" if len(ks) > 1 else ""
                    lines.append(Line(f"{block.render_label()}{times} → {out}", 9.0))
                if not node.body and not head:
                    lines.append(Line("\u00a0", 9.0))
        if self.cost and name != graph.input.name and self.total is not None:
            share = self._share([self.node_cost[c] for c in copies])
            what = "FLOPs" if self.cost == "flops" else "params"
            lines.append(Line(f"{100 * share:.1f}% of {what}", 9.0, True, INK))
        return lines

    def _place_nodes(self) -> None:
        lay, graph = self.layout, self.graph
        visible = self._visible()
        lines = {n: self._node_lines(n) for n in visible}
        size = {n: block_size(lines[n]) for n in visible}
        # cells: (lane, x) -> nodes, stacked in declaration order
        cells: dict[tuple[int, int], list[str]] = {}
        for n in visible:
            cells.setdefault((lay.lane[n], lay.x_index[lay.column[n]]), []).append(n)
        rows = {lane: max([len(v) for (ln, _), v in cells.items() if ln == lane], default=1) for lane in lay.lanes}
        row_h = {lane: max([size[n][1] for n in visible if lay.lane[n] == lane], default=30.0) for lane in lay.lanes}
        # x: uniform columns (boxes of one width read as a grid), wider gaps around folded modules
        ncols = max(lay.x_index.values()) + 1
        widths = [76.0] * ncols  # boxes of one column share its width
        for n in visible:
            xi = lay.x_index[lay.column[n]]
            widths[xi] = max(widths[xi], size[n][0])
        extra = [0.0] * (ncols + 1)  # extra room before column i
        for f in lay.folds:
            extra[lay.x_index[f.start]] += FOLD_GAP
            extra[lay.x_index[f.start] + f.width] += FOLD_GAP
        # a gap that many edges cross between lanes (an all-to-all fusion) gets wider
        crossing = [0] * (ncols + 1)
        for s, d in self.groups:
            if lay.lane[s] != lay.lane[d]:
                for i in range(lay.x_index[lay.column[s]] + 1, lay.x_index[lay.column[d]] + 1):
                    crossing[i] += 1
        self.col_x, x = [], MARGIN + 16.0
        for i in range(ncols):
            x += extra[i] + (min(max(crossing[i] - 4, 0) * 4.0, 48.0) if i else 0.0)
            self.col_x.append(x + widths[i] / 2)
            x += widths[i] + COL_GAP
        self.right_edge = x - COL_GAP + extra[ncols] + 16.0
        # y: lanes top to bottom
        self.lane_top, self.lane_bottom, y = {}, {}, TITLE_H
        for lane in lay.lanes:
            self.lane_top[lane] = y
            y += LANE_PAD * 2 + rows[lane] * row_h[lane] + (rows[lane] - 1) * ROW_GAP
            self.lane_bottom[lane] = y
        self.lanes_end = y
        self.boxes: dict[str, Box] = {}
        for (lane, xi), names in cells.items():
            for slot, n in enumerate(names):
                cy = self.lane_top[lane] + LANE_PAD + slot * (row_h[lane] + ROW_GAP) + row_h[lane] / 2
                self.boxes[n] = self._node_box(n, self.col_x[xi], cy, widths[xi], row_h[lane], lines[n])
        for n in [graph.input.name, *graph.order]:
            self.out.nodes[n] = node_id(self.rep.get(n, n))

    def _node_box(self, name: str, x: float, y: float, w: float, h: float, lines: list[Line]) -> Box:
        graph, lay = self.graph, self.layout
        tint = LANE_TINTS[min(lay.lanes.index(lay.lane[name]), len(LANE_TINTS) - 1)][0]
        copies = self.copies.get(name, [name])
        classes = ["arch-node", f"lane-{lay.lane[name]}"]
        style, fill, pen = "filled", tint, 1.0
        if name == graph.input.name:
            classes.append("input")
            fill, style = "white", "filled,dashed"
            tooltip = (f"{name}: the network's input, {self.shapes.input}\n"
                       f"spec: {graph.input_origin.loc() if graph.input_origin else '<spec>'}")
        else:
            node = graph.nodes[name]
            kind = "block" if node.body else "merge"
            classes.append(kind)
            if kind == "merge":
                style = "rounded,filled"
            if node.merge == "concat":
                classes.append("concat")
            if node.output:
                classes.append("output")
                pen = 2.2
            if len(copies) > 1:
                classes.append("folded")
            tooltip = self._node_tooltip(name, copies)
            if self.cost and self.total is not None:
                fill = heat(self._share([self.node_cost[c] for c in copies]) / self._max_share())
                ink = "#ffffff" if dark(fill) else INK  # full contrast on a shaded box
                lines = [Line(ln.text, ln.size, ln.bold, ink) for ln in lines]
        return Box(node_id(name), tuple(classes), x, y, w, h, label_of(lines), tooltip, "box", style, fill, BORDER,
                   pen)

    def _max_share(self) -> float:
        """The largest share of any box or edge: the top of the shading scale."""
        if self._max is None:
            shares = [self._share([self.node_cost[c] for c in self.copies.get(n, [n])])
                      for n in self.graph.order if n not in self.layout.hidden]
            shares += [self._share([self.edge_cost[k] for k in ks]) for ks in self.groups.values()]
            self._max = max(shares, default=0.0) or 1.0
        return self._max

    def _node_tooltip(self, name: str, copies: list[str]) -> str:
        graph, node = self.graph, self.graph.nodes[name]
        where = _where(node.origin)
        body = _squash([f"{b.tag}({_kv(_all_params(b))})" for b in node.body]) or "none"
        lines = [f"{name}: stride {node.stride} (1/{node.stride}), {self.shapes[name]}",
                 f"spec: {where}",
                 f"merge: {node.merge} of {len(graph.in_edges(name))} input(s), act: {node.act}; body: {body}"]
        if len(copies) > 1:
            lines.append(f"folded: stands for {len(copies)} identical nodes: {', '.join(copies)}")
        if self.total is not None:
            lines.append(self._cost_text([self.node_cost[c] for c in copies], len(copies)))
        return "\n".join(lines)

    # -- lanes, frames --
    def _lanes_and_frames(self) -> None:
        lay, out = self.layout, self.out
        for i, lane in enumerate(lay.lanes):
            top, bottom = self.lane_top[lane], self.lane_bottom[lane]
            band = LANE_TINTS[min(i, len(LANE_TINTS) - 1)][1]
            out.boxes.append(Box(f"band-{lane}", ("lane-band", f"lane-{lane}"), (self.right_edge) / 2,
                                 (top + bottom) / 2, self.right_edge, bottom - top, "", f"stride {lane}", "box",
                                 "filled", band, band, 0.0))
        for i, lane in enumerate(lay.lanes):
            top, bottom = self.lane_top[lane], self.lane_bottom[lane]
            hw = self._lane_hw(lane)
            lines = [Line(f"1/{lane}", 15.0, True, INK)] + ([Line(hw, 9.0)] if hw else [])
            w, h = block_size(lines, 8.0, 6.0)
            out.boxes.append(Box(f"lane-{lane}", ("lane-label",), MARGIN / 2 + 4, (top + bottom) / 2, max(w, 60.0), h,
                                 label_of(lines), f"lane: stride {lane}, 1/{lane} of the input's resolution"
                                 + (f" ({hw})" if hw else ""), "plaintext", "", "none", "none", 0.0))
        for k, f in enumerate(lay.folds):
            members = [self.boxes[n] for n in f.units[0]]
            left = min(b.left for b in members) - FRAME_PAD
            right = max(b.right for b in members) + FRAME_PAD
            top = min(b.top for b in members) - FRAME_PAD - 14.0
            bottom = max(b.bottom for b in members) + FRAME_PAD
            group = fold_name(f)
            fid = f"fold-{k}"
            copies = ", ".join(_common_prefix(unit) or unit[0] for unit in f.units)
            tip = [f"{group}: {f.count} identical modules ({copies}), drawn once",
                   f"each: {len(f.units[0])} nodes; the edges from each copy into the next are not drawn"]
            if self.total is not None:
                tip.append(self._cost_text([self.node_cost[n] for u in f.units for n in u], f.count))
            tooltip = "\n".join(tip)
            out.boxes.append(Box(fid, ("fold",), (left + right) / 2, (top + bottom) / 2, right - left, bottom - top,
                                 "", tooltip, "box", "rounded,dashed", "none", "#333333", 1.4))
            times, name = Line(f"×{f.count}", 13.0, True, INK), Line(f"  {group}", 9.0, False, MUTED)
            w = times.width + name.width + 8
            out.boxes.append(Box(f"{fid}-label", ("fold-label",), left + 4 + w / 2, top + 9.0, w, 16.0,
                                 times.html() + name.html(), tooltip, "plaintext", "", "none", "none", 0.0))
        self.out.boxes.extend(self.boxes[n] for n in self._visible())

    def _lane_hw(self, lane: int) -> str:
        sizes = [(s.h, s.w) for n, s in self.shapes.nodes.items()
                 if n != self.graph.input.name and self.graph.nodes[n].stride == lane and s.h is not None]
        if not sizes:
            return ""
        h, w = max(set(sizes), key=sizes.count)
        return f"{h}×{w}"

    # -- edges --
    def _edge_groups(self):
        """(drawn ends -> the graph edges that curve stands for, graph edge -> fold hiding it): an edge
        from one copy of a folded module into the next is hidden, the others are drawn between the
        boxes that stand for their ends."""
        groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
        folded: dict[tuple[str, str], int] = {}
        for edge in self.graph.edges:
            s, d = edge.src, edge.dst
            k = self._fold_between(s, d)
            if k is not None:
                folded[(s, d)] = k
                continue
            groups.setdefault((self.rep.get(s, s), self.rep.get(d, d)), []).append((s, d))
        return groups, folded

    def _fold_between(self, s: str, d: str) -> int | None:
        """The fold hiding a curve from ``s`` to ``d`` (two copies of one folded module), or None."""
        for k, repeat in enumerate(self.repeats):
            if s in repeat and d in repeat:
                return k if repeat[s] != repeat[d] else None
        return None

    def _route_edges(self) -> None:
        graph, out = self.graph, self.out
        edge_of = {(e.src, e.dst): e for e in graph.edges}
        # every curve, as (tail box, head box): the fusion edges, then each guided edge's guide input
        routes = list(self.groups)
        guided: list[Edge] = []
        for edge in graph.edges:
            if edge.guide is None:
                continue
            k = self._fold_between(edge.guide, edge.dst)
            if k is not None:
                out.guides[(edge.src, edge.dst)] = f"fold-{k}"
                continue
            guided.append(edge)
            routes.append((self.rep.get(edge.guide, edge.guide), self.rep.get(edge.dst, edge.dst)))
        # ports: spread the curves leaving (entering) a box over its right (left) side, top to bottom
        leaving: dict[str, list[int]] = {}
        entering: dict[str, list[int]] = {}
        for i, (s, d) in enumerate(routes):
            leaving.setdefault(s, []).append(i)
            entering.setdefault(d, []).append(i)
        out_port: dict[int, float] = {}
        in_port: dict[int, float] = {}
        for s, ids in leaving.items():
            ids.sort(key=lambda i: (self.boxes[routes[i][1]].y, self.boxes[routes[i][1]].x))
            for k, i in enumerate(ids):
                out_port[i] = self._spread(self.boxes[s], k, len(ids))
        for d, ids in entering.items():
            ids.sort(key=lambda i: (self.boxes[routes[i][0]].y, -self.boxes[routes[i][0]].x))
            for k, i in enumerate(ids):
                in_port[i] = self._spread(self.boxes[d], k, len(ids))

        def path(i: int) -> tuple[list[tuple[float, float]], tuple[float, float]]:
            s, d = routes[i]
            p3 = (self.boxes[d].left, in_port[i])
            return self._path((self.boxes[s].right, out_port[i]), (p3[0] - ARROW, p3[1]), s, d), p3

        for i, ((s, d), members) in enumerate(self.groups.items()):
            # named after the graph edge drawn: inside a fold, the first copy's (an edge leaving a fold
            # leaves its last copy, and is the only one)
            real = members[0]
            edge = edge_of[real]
            points, p3 = path(i)
            style = edge.op.render_style()
            self.kinds.setdefault(style.kind, style)
            classes = ["arch-edge", f"fusion-{style.kind}", f"op-{edge.op.tag}"]
            arrowhead = style.arrowhead
            if graph.nodes[d].merge == "concat" and len(graph.in_edges(d)) > 1:
                classes.append("merge-concat")
                arrowhead = CONCAT.arrowhead
            color, pen = style.color, 1.3
            if self.cost and self.total is not None:
                t = self._share([self.edge_cost[m] for m in members]) / self._max_share()
                color, pen = heat(t, EDGE_HEAT), 1.0 + 4.0 * t
            if len(members) > 1:
                classes.append("folded")
            cid = edge_id(*real)
            out.curves.append(Curve(cid, tuple(classes), node_id(s), node_id(d), points, p3, color, style.style,
                                    arrowhead, pen, self._edge_tooltip(edge, members)))
            for m in members:
                out.edges[m] = cid
        for (s, d), k in self.folded.items():
            out.edges[(s, d)] = f"fold-{k}"
        for i, edge in enumerate(guided, start=len(self.groups)):
            points, p3 = path(i)
            self.kinds.setdefault(GUIDE.kind, GUIDE)
            cid = guide_id(edge.src, edge.dst)
            colour = edge.op.render_style().color
            tip = (f"{edge.guide} → {edge.dst}: the guide of {edge.src} → {edge.dst} ({edge.op.tag}), "
                   f"read at {self.shapes[edge.guide].h}×{self.shapes[edge.guide].w}\nspec: {_where(edge.origin)}")
            out.curves.append(Curve(cid, ("arch-guide", f"op-{edge.op.tag}"), node_id(routes[i][0]),
                                    node_id(routes[i][1]), points, p3, colour, GUIDE.style, GUIDE.arrowhead, 1.1, tip))
            out.guides[(edge.src, edge.dst)] = cid

    @staticmethod
    def _spread(box: Box, k: int, n: int) -> float:
        usable = box.h * 0.7
        return box.y - usable / 2 + usable * (k + 0.5) / n if n > 1 else box.y

    def _path(self, p0, p3, s: str, d: str) -> list[tuple[float, float]]:
        """A cubic from p0 to p3 leaving and arriving horizontally; around any box it would cross."""
        dx = max(p3[0] - p0[0], 1.0)
        straight = [p0, (p0[0] + dx / 2, p0[1]), (p3[0] - dx / 2, p3[1]), p3]
        if not self._crosses(straight, s, d):
            return straight
        # through the gap above the upper end's lane: up, along, down
        upper = min(self.layout.lane[s], self.layout.lane[d], key=self.layout.lanes.index)
        ch = self.lane_top[upper] + 6.0
        r = min(COL_GAP / 2, dx / 4)
        a = (p0[0] + r, ch)
        b = (p3[0] - r, ch)
        return [p0, (p0[0] + r * 0.9, p0[1]), (p0[0] + r * 0.1, ch), a,
                (a[0] + (b[0] - a[0]) / 3, ch), (a[0] + 2 * (b[0] - a[0]) / 3, ch), b,
                (p3[0] - r * 0.1, ch), (p3[0] - r * 0.9, p3[1]), p3]

    def _crosses(self, pts, s: str, d: str) -> bool:
        boxes = [b for n, b in self.boxes.items() if n not in (s, d)]
        for i in range(1, 24):
            t = i / 24
            x = sum(c * p[0] for c, p in zip(_bernstein(t), pts))
            y = sum(c * p[1] for c, p in zip(_bernstein(t), pts))
            if any(b.left - 2 <= x <= b.right + 2 and b.top - 2 <= y <= b.bottom + 2 for b in boxes):
                return True
        return False

    def _edge_tooltip(self, edge: Edge, members: list[tuple[str, str]]) -> str:
        graph = self.graph
        s, d = edge.src, edge.dst
        params = _kv(_all_params(edge.op))
        c_in, c_out = graph.edge_channels(edge)
        src_shape = self.shapes[s]
        out_shape = self.shapes.edges[(s, d)]
        where = _where(edge.origin)
        lines = [f"{s} → {d}: {edge.op.tag}" + (f"({params})" if params else ""),
                 (f"stride {graph.stride(s)} → {graph.types[d].arrival_stride}, {c_in} → {c_out} ch, "
                  f"{src_shape.h}×{src_shape.w} → {out_shape.h}×{out_shape.w}"),
                 f"spec: {where}",
                 f"{edge.op.tag}: {type(edge.op).summary()}"]
        if len(members) > 1:
            lines.append(f"folded: stands for {len(members)} edges: "
                         + ", ".join(f"{a} → {b}" for a, b in members))
        if self.total is not None:
            lines.append(self._cost_text([self.edge_cost[m] for m in members], len(members)))
        return "\n".join(lines)

    # -- captions --
    def _title(self) -> None:
        graph, prof = self.graph, self.profile
        params = " · ".join(f"{k}={v}" for k, v in graph.params.items())
        head = Line(graph.name, 15.0, True, INK)
        bits = [f"input {self.shapes.input}", f"{len(graph.nodes)} nodes, {len(graph.edges)} edges"]
        if prof is not None:
            total = prof.total
            bits.append(f"{si(self.conv.count(total))} {self.conv.unit}")
            bits.append(f"{si(total.params)} parameters")
        if self.layout.folds:
            bits.append("repeated modules folded")
        sub = Line(" · ".join(x for x in (params, *bits) if x), 9.0)
        w, h = block_size([head, sub], 4.0, 4.0)
        self.title = Box("title", ("title",), 12 + w / 2, 8 + h / 2, w, h, label_of([head, sub], "LEFT"),
                         f"{graph.name}: {graph.doc.strip()}" if graph.doc else graph.name, "plaintext", "", "none",
                         "none", 0.0)
        self.out.boxes.append(self.title)

    def _legend(self) -> None:
        out = self.out
        concat = any("merge-concat" in c.classes for c in out.curves)
        ordered = sorted(self.kinds.values(), key=lambda s: (KIND_ORDER.index(s.kind) if s.kind in KIND_ORDER
                                                             else len(KIND_ORDER), s.kind))
        entries: list[tuple[str, EdgeStyle | None, str]] = [(s.kind, s, s.legend) for s in ordered]
        if concat:
            entries.append(("concat", CONCAT, CONCAT.legend))
        boxes = {b.classes[2] for b in self.boxes.values() if len(b.classes) > 2}
        if "block" in boxes:
            entries.append(("block", None, "a node with a body"))
        if "merge" in boxes:
            entries.append(("merge", None, "a node that only merges"))
        if self.layout.folds:
            entries.append(("fold", None, "×N: N identical modules, drawn once"))
        y = self.lanes_end + 22.0
        x = MARGIN + 16.0
        out.boxes.append(Box("legend", ("legend", "legend-title"), MARGIN / 2 + 4, y, 60.0, 14.0,
                             Line("legend", 10.0, True, INK).html(), "what the edges and frames mean", "plaintext",
                             "", "none", "none", 0.0))
        row_end = self.right_edge
        for key, style, words in entries:
            tw = text_width(words, 9.0) + 6
            need = 38 + 6 + tw + 22
            if x + need > row_end and x > MARGIN + 16.0:
                x, y = MARGIN + 16.0, y + 20.0
            eid = f"legend-{key}"
            if style is None:  # a sample box or frame
                look = {"block": ("filled", "#eeeeee", BORDER), "merge": ("rounded,filled", "#eeeeee", BORDER),
                        "fold": ("rounded,dashed", "none", "#333333")}[key]
                out.boxes.append(Box(f"{eid}-sample", ("legend", "legend-sample"), x + 19, y, 34.0, 14.0, "",
                                     words, "box", look[0], look[1], look[2], 1.2))
            else:
                a = Box(f"{eid}-from", ("legend", "legend-anchor"), x, y, 0.5, 0.5, "", "", "point", "invis",
                        "none", "none", 0.0)
                b = Box(f"{eid}-to", ("legend", "legend-anchor"), x + 38, y, 0.5, 0.5, "", "", "point", "invis",
                        "none", "none", 0.0)
                out.boxes += [a, b]
                colour = style.color if not self.cost else "#555555"
                out.curves.append(Curve(eid, ("legend", f"fusion-{style.kind}"), a.id, b.id,
                                        [(x, y), (x + 10, y), (x + 21, y), (x + 38 - ARROW, y)], (x + 38, y), colour,
                                        style.style, style.arrowhead, 1.3, words))
            out.boxes.append(Box(f"{eid}-text", ("legend", "legend-text"), x + 44 + tw / 2, y, tw, 14.0,
                                 Line(words, 9.0, False, INK).html(), words, "plaintext", "", "none", "none", 0.0))
            x += need
        if self.cost and self.total is not None:
            x, y = MARGIN + 16.0, y + 22.0
            unit = self._unit() if self.cost == "flops" else "parameters"
            label = f"shading: share of the total {unit}; a grey edge costs nothing"
            tw = text_width(label, 9.0) + 6
            out.boxes.append(Box("legend-cost-text", ("legend", "legend-text"), x + tw / 2, y, tw, 14.0,
                                 Line(label, 9.0, False, INK).html(), label, "plaintext", "", "none", "none", 0.0))
            x += tw + 10
            top = self._max_share()
            for i in range(5):
                t = i / 4
                fill = heat(t)
                text = f"{100 * top * t:.1f}%"
                out.boxes.append(Box(f"legend-cost-{i}", ("legend", "legend-heat"), x + 22, y, 44.0, 14.0,
                                     Line(text, 8.0, False, "#ffffff" if dark(fill) else INK).html(),
                                     f"{text} of the total", "box", "filled", fill, BORDER, 0.6))
                x += 48
        self.legend_bottom = y + 16.0

    def _finish(self) -> None:
        out = self.out
        out.width = max(self.right_edge, self.title.right + 12,
                        max((b.right for b in out.boxes if "legend" in b.classes), default=0) + 12)
        out.height = self.legend_bottom + 8.0
        for box in out.boxes:  # bands run the whole width
            if "lane-band" in box.classes:
                box.w, box.x = out.width, out.width / 2


def _bernstein(t: float) -> tuple[float, float, float, float]:
    u = 1 - t
    return (u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t)


def _squash(labels: list[str]) -> str:
    """['conv3×3/2', 'conv3×3/2'] -> 'conv3×3/2 ×2'; runs of one label squashed."""
    parts: list[list] = []
    for label in labels:
        if parts and parts[-1][0] == label:
            parts[-1][1] += 1
        else:
            parts.append([label, 1])
    return ", ".join(f"{label} ×{n}" if n > 1 else label for label, n in parts)


def _all_params(op) -> dict:
    """Every parameter of an op, defaults included (not its endpoints)."""
    return op.model_dump(by_alias=True, exclude=set(op.base_fields))


def _kv(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _where(origin) -> str:
    """``file:line:col`` of a node's or edge's origin, and the pattern that wrote it, if one did."""
    if origin is None:
        return "<spec>"
    text = str(origin.loc())
    item = origin.source.data
    try:
        for key in origin.path[:2]:
            item = item[key]
    except (KeyError, IndexError, TypeError):
        return text
    if isinstance(item, dict) and "use" in item:
        text += f" (written by use: {item['use']}, name: {item.get('name', '?')})"
    return text


def _common_prefix(names) -> str:
    return os.path.commonprefix(list(names)).rstrip("_")


def fold_name(f: Fold) -> str:
    """A folded module's name from its copies' nodes: s3_m0_*, ..., s3_m3_* -> 's3_m[0-3]'."""
    prefixes = [_common_prefix(unit) for unit in f.units]
    if all(prefixes) and len(set(prefixes)) == len(prefixes):
        return pattern_name(prefixes)
    return pattern_name([unit[0] for unit in f.units])
