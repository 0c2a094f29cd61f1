"""identity: the map passes unchanged; HRNet's f_ii, and every plain chain link."""

from __future__ import annotations

from typing import Literal

from archgraph.ops.base import EdgeOp, EdgeStyle
from archgraph.ops.registry import register


@register
class Identity(EdgeOp):
    """Pass the source map unchanged (same stride, same width)."""

    op: Literal["identity"] = "identity"

    @property
    def projects(self) -> bool:
        return False

    def stride_error(self, src: int, dst: int) -> str | None:
        if src != dst:
            return f"identity joins equal strides, but goes from stride {src} to {dst}"
        return None

    def build(self, c_in: int, c_out: int, src: int, dst: int) -> None:
        return None

    def emit(self, c_in: int, c_out: int, src: int, dst: int) -> None:
        return None

    def cost(self, t, x, c_out, src, dst, hw):
        return x  # no module: the source's tensor itself

    def render_style(self):
        return EdgeStyle("identity", "identity", "#404040", "solid", "normal")
