"""refinenet_unit: one RefineNet block — RCUs per input path, multi-resolution fusion, CRP, output RCU.

Lin, Milan, Shen and Reid, "RefineNet: Multi-Path Refinement Networks for High-Resolution Semantic
Segmentation", CVPR 2017, section 3.2 and Fig. 3:

* adaptive convs: each input path is passed through two residual conv units (``rcu``);
* multi-resolution fusion: "convolutions for input adaptation, which generate feature maps of the
  same feature dimension (the smallest one among the inputs), and then upsamples all (smaller)
  feature maps to the largest resolution of the inputs. Finally, all features maps are fused by
  summation"; a block with one input skips it;
* chained residual pooling (``crp``), then one more RCU, the output conv.

As the released model has it (DrSleep/refinenet-pytorch, a port of the MatConvNet release) the
adaptation convs are 3x3 without bias or BN, and the coarser inputs are resized bilinearly with
``align_corners=True`` to the finest input's size (``nn.Upsample(size=l3.size()[2:])``, so odd
input sizes work). Light-Weight RefineNet (Nekrasov, Shen and Reid, BMVC 2018) is the same block
with no RCUs (``rcus: 0, output_rcus: 0``), 1x1 convs (``kernel: 1, crp_kernel: 1``) and 4 pooling
blocks.

Writes, for a unit named ``u`` with inputs x_0 .. x_{n-1}:

* one input: the node ``u`` at x_0's stride and width, fed by an identity edge, with the body
  [rcu x rcus, crp, rcu x output_rcus];
* several inputs: with ``rcus`` > 0 a node ``u_rcu<i>`` per input (x_i's stride and width, body
  rcu x rcus, an identity edge from x_i), then the fusion node ``u`` at the finest input's stride
  with ``width`` channels (default: the smallest input width), fed by a ``conv`` edge (kxk, no bias,
  BN or activation) from each path at that stride and a projecting ``upsample`` edge (kxk conv, no
  BN; bilinear, to the node's size) from each coarser path, summed in the order of ``from``; its
  body is [crp, rcu x output_rcus].

Its output is ``u``.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, field_validator

from archgraph.lang.values import Bool, NonNegInt, PosInt
from archgraph.patterns import Fragment, Pattern, Scope, register
from archgraph.patterns.base import Sources


def _rcus(n: int) -> list[dict[str, Any]]:
    if not n:
        return []
    return [{"block": "rcu", **({"repeat": n} if n > 1 else {})}]


@register
class RefineNetUnit(Pattern):
    """RefineNet block: rcus RCUs per input, fusion (kxk convs, upsampling, sum), CRP, output RCUs."""

    use: Literal["refinenet_unit"] = "refinenet_unit"
    src: Sources
    width: Optional[PosInt] = Field(None, description="width of the fusion (null: the smallest input width)")
    rcus: NonNegInt = Field(2, description="RCUs on each input path (light-weight: 0)")
    kernel: PosInt = Field(3, description="kernel of the fusion's adaptation convs (light-weight: 1)")
    crp_blocks: PosInt = Field(2, description="pooling blocks of the CRP (paper: 2; released model, light-weight: 4)")
    crp_kernel: PosInt = Field(3, description="kernel of the CRP's convs (light-weight: 1)")
    output_rcus: NonNegInt = Field(1, description="RCUs after the CRP (light-weight: 0)")
    align_corners: Optional[Bool] = Field(True, description="of the bilinear upsampling")

    @field_validator("kernel", "crp_kernel")
    @classmethod
    def _odd(cls, kernel: int) -> int:
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd to keep HxW, got {kernel}")
        return kernel

    def expand(self, scope: Scope) -> Fragment:
        out = Fragment()
        inputs = scope.resolve(self.src)
        crp = {"block": "crp", "n": self.crp_blocks, "kernel": self.crp_kernel}
        if len(inputs) == 1:
            (src,) = inputs
            if self.width is not None and self.width != src.channels:
                scope.fail(f"a unit with one input has no fusion: its width is the input's ({src.channels}), "
                           f"not {self.width}", "width")
            body = [*_rcus(self.rcus), crp, *_rcus(self.output_rcus)]
            out.node(name=self.name, stride=src.stride, channels=src.channels, body=body)
            out.edge(src.name, self.name)
            out.outputs = [self.name]
            return out
        paths = []
        for i, src in enumerate(inputs):
            if self.rcus:
                name = out.node(name=f"{self.name}_rcu{i}", stride=src.stride, channels=src.channels,
                                body=_rcus(self.rcus))
                out.edge(src.name, name)
                paths.append((name, src.stride))
            else:
                paths.append((src.name, src.stride))
        finest = min(stride for _, stride in paths)
        width = self.width or min(src.channels for src in inputs)
        out.node(name=self.name, stride=finest, channels=width, body=[crp, *_rcus(self.output_rcus)])
        for name, stride in paths:
            if stride == finest:
                out.edge(name, self.name, "conv", kernel=self.kernel, bn=False, act="none")
            else:
                out.edge(name, self.name, "upsample", kernel=self.kernel, bn=False, mode="bilinear",
                         size="target", align_corners=self.align_corners)
        out.outputs = [self.name]
        return out
