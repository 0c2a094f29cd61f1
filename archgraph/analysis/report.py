"""A profile as report rows and text cells: what ``archgraph profile`` shows, without printing it.

Rows come grouped the way one reads a multi-resolution network: nodes by stride lane, edges by
kind, or everything by op kind. Each grouping ends with the rows that complete it (the edges
under ``--by node``, the nodes under ``--by edge``), so that its rows add up to the total.
No torch.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Iterable

from archgraph.analysis.cost import Convention, Cost, Profile
from archgraph.ops.base import WORK_TERMS

GROUPINGS = ("node", "edge", "op")


@dataclass(frozen=True)
class Row:
    """One line of a report. ``kind``: node, edge, op, rest (the complement), subtotal or total."""

    group: str  # the section: 'stride 4', 'upsample', '' for op rows and totals
    kind: str
    name: str
    op: str
    stride: str
    shape: str
    cost: Cost


def rows(profile: Profile, by: str) -> list[Row]:
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {GROUPINGS}, got {by!r}")
    out: list[Row] = []
    edges = sum((e.cost for e in profile.edges), Cost())
    nodes = sum((n.cost for n in profile.nodes), Cost())
    if by == "node":
        for stride in sorted({n.stride for n in profile.nodes}):
            lane = [n for n in profile.nodes if n.stride == stride]
            group = f"stride {stride}"
            for n in lane:
                out.append(Row(group, "node", n.name, n.body or _merge_of(n), str(n.stride), shape_text(n.shape),
                               n.cost))
            out.append(Row(group, "subtotal", f"{group} ({len(lane)} nodes)", "", str(stride), "",
                           sum((n.cost for n in lane), Cost())))
        out.append(Row("", "rest", f"edges ({len(profile.edges)}; see --by edge)", "", "", "", edges))
    elif by == "edge":
        kinds = list(dict.fromkeys(e.op for e in profile.edges))
        for kind in kinds:
            group = [e for e in profile.edges if e.op == kind]
            for e in group:
                out.append(Row(kind, "edge", e.name, e.op, f"{e.src_stride}->{e.dst_stride}", shape_text(e.shape),
                               e.cost))
            out.append(Row(kind, "subtotal", f"{kind} ({len(group)} edges)", kind, "", "",
                           sum((e.cost for e in group), Cost())))
        out.append(Row("", "rest", f"nodes ({len(profile.nodes)}; see --by node)", "", "", "", nodes))
    else:
        for op, cost in profile.by_op().items():
            out.append(Row("", "op", op, "", "", "", cost))
    out.append(Row("", "total", "total", "", "", "", profile.total))
    return out


def _merge_of(node) -> str:
    return ", ".join(p.op for p in node.parts) or "(passes its input on)"


def shape_text(dims: Iterable[int]) -> str:
    return "x".join(map(str, dims))


# --- cells ----------------------------------------------------------------------------------------

_SI = ("", "k", "M", "G", "T", "P")


def si(n: float) -> str:
    """8967561536 -> '8.968 G' (4 significant digits, SI prefixes)."""
    if n == 0:
        return "0"
    k = 0
    while abs(n) >= 1000 and k < len(_SI) - 1:
        n /= 1000
        k += 1
    text = f"{n:.4g}" if k else f"{n:,.0f}"
    return f"{text} {_SI[k]}".rstrip()


def binary(n: float) -> str:
    """Bytes with binary prefixes: 11841536 -> '11.29 MiB'."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    k = 0
    while abs(n) >= 1024 and k < len(units) - 1:
        n /= 1024
        k += 1
    return f"{n:.4g} {units[k]}" if k else f"{int(n)} B"


def count_text(count: int, conv: Convention) -> str:
    """A count in the convention's unit: SI-prefixed, or hrnet-readme's fixed G of 2**30 (3 significant)."""
    if conv.prefix:
        return f"{count / conv.divisor:.3g}"
    return si(count)


def count_header(conv: Convention) -> str:
    return conv.unit if conv.prefix else f"{conv.unit}"


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def describe(conv: Convention, training: bool = False) -> str:
    """One line saying what a convention counts: 'fvcore: x1 conv_mac, linear_mac; x2 bn; ... not counted: ...'."""
    by_weight: dict[int, list[str]] = {}
    for term in WORK_TERMS:
        by_weight.setdefault(conv.weight(term, training), []).append(term)
    parts = [f"x{w} {', '.join(terms)}" for w, terms in sorted(by_weight.items()) if w]
    ignored = by_weight.get(0, [])
    text = f"{conv.name}: " + "; ".join(parts)
    if ignored:
        text += f"; not counted: {', '.join(ignored)}"
    if conv.divisor != 1:
        text += f"; shown / {conv.divisor:,}"
    return text + (" (training mode)" if training else "")


def variant_label(overrides: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in overrides.items()) or "defaults"


# --- CSV ------------------------------------------------------------------------------------------

CSV_FIELDS = ("variant", "group", "kind", "name", "op", "stride", "shape", "count", "params", "act_bytes",
              "alloc_bytes", *WORK_TERMS)


def to_csv(variants: list[tuple[dict[str, Any], Profile]], by: str, conv: Convention, training: bool = False) -> str:
    """One CSV table: a row per report row per variant; ``count`` in ``conv`` (exact, undivided)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for overrides, profile in variants:
        label = variant_label(overrides)
        for row in rows(profile, by):
            c = row.cost
            writer.writerow([label, row.group, row.kind, row.name, row.op, row.stride, row.shape,
                             conv.count(c, training), c.params, c.act_bytes, c.alloc_bytes,
                             *(c.work.get(t, 0) for t in WORK_TERMS)])
    return buffer.getvalue()


# --- JSON -----------------------------------------------------------------------------------------


def document(variants: list[dict[str, Any]], conv: Convention, training: bool = False) -> dict[str, Any]:
    """The ``--json`` document (schema ``archgraph-profile/1``, see docs/profile.md).

    Each variant is ``{"set": overrides, "profile": Profile, "verify": dict|None, "latency": dict|None}``;
    its profile becomes ``Profile.to_data(conv)``, which ``Profile.from_data`` reads back.
    """
    from archgraph.analysis.cost import SCHEMA

    return {
        "schema": SCHEMA,
        "convention": conv.to_data(),
        "training": training,
        "variants": [
            {"set": dict(v["set"]), "profile": v["profile"].to_data(conv, training),
             "verify": v.get("verify"), "latency": v.get("latency")}
            for v in variants
        ],
    }
