"""multires_stage: HRNet's stage — a transition, then multi-resolution modules with all-to-all fusion.

Follows the official code (``HighResolutionModule`` and
``_make_transition_layer``):

* transition: branch i that exists already keeps its input (identity) or, if its
  width changes, gets a 3x3 conv + BN + ReLU; a new branch is made from the last
  input by stride-2 3x3 convs + BN + ReLU, one per halving;
* each module: branch i runs ``blocks`` residual blocks at width ``widths[i]``;
  then fuse node i = ReLU(sum over j of f_ij(branch j)), summed in j order, with
  f_ii = identity, f_ij = upsample (1x1 conv + BN, then upsample) for j > i and a
  chain of i - j stride-2 convs for j < i;
* with ``multi_scale_output: false`` the last module fuses only into branch 0
  (the pose network's last module).

Writes nodes ``<name>_t<i>`` (transitions that are not identities),
``<name>_m<m>_b<i>`` (branches) and ``<name>_m<m>_f<i>`` (fusions). Its outputs are
the last module's fusion nodes.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from archgraph.lang.values import Bool, Choice, PosInt, PosIntList
from archgraph.patterns import Fragment, Pattern, Scope, register
from archgraph.patterns.base import Sources


@register
class MultiResStage(Pattern):
    """HRNet stage: transition to len(widths) branches, then modules with all-to-all fusion."""

    use: Literal["multires_stage"] = "multires_stage"
    src: Sources
    widths: PosIntList = Field(description="branch widths, finest first: [C, 2C, 4C, ...]")
    modules: PosInt = Field(1, description="number of multi-resolution modules")
    blocks: PosInt = Field(4, description="residual blocks per branch per module")
    block: Choice("basic", "bottleneck") = Field("basic", description="residual block kind")  # type: ignore[valid-type]
    multi_scale_output: Bool = Field(True, description="false: the last module fuses only into branch 0")
    upsample: Choice("nearest", "bilinear") = Field(  # type: ignore[valid-type]
        "nearest",
        description="nearest: by a factor (HRNet, HRNet-C); bilinear: to the target's size (HRNetV2 segmentation)",
    )
    align_corners: Optional[Bool] = Field(None, description="for bilinear upsampling")

    def expand(self, scope: Scope) -> Fragment:
        out = Fragment()
        inputs = scope.resolve(self.src)
        if len(self.widths) < len(inputs):
            scope.fail(f"{len(inputs)} inputs but only {len(self.widths)} widths", "widths")
        current = self._transition(out, inputs)
        strides = [stride for _, stride in current]
        for m in range(self.modules):
            branches = []
            for i, (src, stride) in enumerate(current):
                body = [{"block": self.block, "channels": self.widths[i], "repeat": self.blocks}]
                name = out.node(name=f"{self.name}_m{m}_b{i}", stride=stride, channels=self.widths[i], body=body)
                out.edge(src, name)
                branches.append(name)
            if len(branches) == 1:
                current = [(branches[0], strides[0])]
                continue
            last = m == self.modules - 1
            fused = range(len(branches) if self.multi_scale_output or not last else 1)
            current = [(self._fuse(out, m, i, branches, strides), strides[i]) for i in fused]
        out.outputs = [name for name, _ in current]
        return out

    def _transition(self, out: Fragment, inputs) -> list[tuple[str, int]]:
        """(node, stride) feeding each branch of the first module."""
        current = []
        for i, width in enumerate(self.widths):
            if i < len(inputs):
                src = inputs[i]
                if src.channels == width:
                    current.append((src.name, src.stride))
                    continue
                name = out.node(name=f"{self.name}_t{i}", stride=src.stride, channels=width)
                out.edge(src.name, name, "conv")
                current.append((name, src.stride))
            else:
                src, links = inputs[-1], i + 1 - len(inputs)
                stride = src.stride * 2**links
                name = out.node(name=f"{self.name}_t{i}", stride=stride, channels=width)
                out.edge(src.name, name, "downsample", act_last=True)
                current.append((name, stride))
        return current

    def _fuse(self, out: Fragment, m: int, i: int, branches: list[str], strides: list[int]) -> str:
        name = out.node(name=f"{self.name}_m{m}_f{i}", stride=strides[i], channels=self.widths[i], act="relu")
        for j, src in enumerate(branches):
            if j == i:
                out.edge(src, name)
            elif j > i:
                if self.upsample == "nearest":
                    out.edge(src, name, "upsample")
                else:
                    out.edge(src, name, "upsample", mode="bilinear", size="target", align_corners=self.align_corners)
            else:
                out.edge(src, name, "downsample")
        return name
