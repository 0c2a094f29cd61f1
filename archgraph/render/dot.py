"""A :class:`~archgraph.render.diagram.Diagram` as Graphviz DOT text, every position pinned.

Plain text, no Graphviz needed to write it. Nodes carry ``pos="x,y!"`` and a fixed size, edges
their spline in ``pos``; Graphviz's ``nop2`` layout (``neato -n2``) draws exactly that:

    neato -n2 -Tsvg hrnet.dot -o hrnet.svg
"""

from __future__ import annotations

from archgraph.render.diagram import FONT, Diagram


def _quote(text: str) -> str:
    """A DOT double-quoted string; newlines become Graphviz's centred line breaks."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _attrs(pairs: dict[str, str | None]) -> str:
    parts = []
    for key, value in pairs.items():
        if value is None:
            continue
        if key == "label" and value.startswith("<"):
            parts.append(f"label={value}")  # an HTML-like label: <...>
        else:
            parts.append(f"{key}={_quote(value)}")
    return ", ".join(parts)


def to_dot(d: Diagram) -> str:
    """DOT for ``d``; y flipped (Graphviz's y goes up)."""
    height = d.height

    def at(x: float, y: float) -> str:
        return f"{_num(x)},{_num(height - y)}"

    out = [
        f"// {d.name}: drawn by archgraph render; positions are fixed: neato -n2 -Tsvg FILE.dot",
        f"digraph {_quote(d.name)} {{",
        "  graph [" + _attrs({"bb": f"0,0,{_num(d.width)},{_num(height)}", "outputorder": "nodesfirst",
                               "splines": "true", "bgcolor": "white", "pad": "0.1", "fontname": FONT,
                               "id": "diagram", "class": "archgraph"}) + "];",
        "  node [" + _attrs({"fontname": FONT, "fixedsize": "true", "margin": "0"}) + "];",
        "  edge [" + _attrs({"arrowsize": "0.7", "fontname": FONT}) + "];",
    ]
    for b in d.boxes:
        # a caption is a borderless box as large as its text (Graphviz measures it), so that the SVG
        # says how much room it takes
        caption = b.shape == "plaintext"
        attrs = {
            "pos": at(b.x, b.y) + "!",
            "fixedsize": "false" if caption else None,
            "width": _num(max(b.w, 0.01) / 72),
            "height": _num(max(b.h, 0.01) / 72),
            "shape": "box" if caption else b.shape,
            "style": b.style or None,
            "fillcolor": b.fill,
            "color": "none" if caption else b.color,
            "penwidth": _num(b.penwidth),
            "label": f"<{b.label}>" if b.label else "",
            "tooltip": b.tooltip or " ",
            "id": b.id,
            "class": " ".join(b.classes),
        }
        out.append(f"  {_quote(b.id)} [{_attrs(attrs)}];")
    for c in d.curves:
        spline = "e," + at(*c.tip) + " " + " ".join(at(*p) for p in c.points)
        attrs = {
            "pos": spline,
            "color": c.color,
            "style": c.style,
            "arrowhead": c.arrowhead,
            "penwidth": _num(c.penwidth),
            "tooltip": c.tooltip or " ",
            "id": c.id,
            "class": " ".join(c.classes),
        }
        out.append(f"  {_quote(c.tail)} -> {_quote(c.head)} [{_attrs(attrs)}];")
    out.append("}")
    return "\n".join(out) + "\n"
