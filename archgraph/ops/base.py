"""What every op is: a validated parameter model plus its rules.

An op is defined once, as a pydantic model whose fields are the op's parameters
and whose methods are its rules:

* the shape rules (channels and stride in -> out, and the spatial arithmetic),
  used by verification and shape inference without torch;
* ``build``, which makes the ``torch.nn.Module`` and imports torch only when
  called, so that ``archgraph validate`` never pays for importing torch.

There are two kinds. A :class:`BlockOp` is a layer in a node's body (a conv, a
residual block). An :class:`EdgeOp` is a fusion edge from one resolution node to
another; the edge's endpoints (``from``, ``to``) are fields of the same model, so
a validated edge is simply an instance of its op.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from archgraph.lang.values import Bool, PosInt

if TYPE_CHECKING:
    from torch import nn

HW = tuple[int, int]
Act = Literal["relu", "none"]


class Strict(BaseModel):
    """A spec object: unknown keys are errors (with a did-you-mean), values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = {f.alias or name for name, f in cls.model_fields.items()} | set(cls.model_fields)
            unknown = [k for k in data if k not in known]
            if unknown:
                raise PydanticCustomError(
                    "unknown_keys",
                    "unknown key {keys}",
                    {"keys": unknown, "allowed": sorted(f.alias or n for n, f in cls.model_fields.items())},
                )
        return data


class Documented(Strict):
    """A spec object with a one-line summary and a listing of its own parameters."""

    base_fields: ClassVar[frozenset[str]] = frozenset()  # structural fields, not parameters

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0]

    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """The object's own parameters and their defaults ("required" when there is none)."""
        return {
            (f.alias or name): ("required" if f.is_required() else f.default)
            for name, f in cls.model_fields.items()
            if name not in cls.base_fields
        }


class Op(Documented):
    """Common to blocks and edges: the tag a spec names it by, and its parameter values."""

    kind: ClassVar[str]
    tag: ClassVar[str]  # the name written in specs: ``op: upsample`` or ``block: basic``

    def params(self) -> dict[str, Any]:
        """This instance's parameter values that differ from the defaults, as written in specs."""
        return self.model_dump(by_alias=True, exclude_defaults=True, exclude=set(self.base_fields))


class BlockOp(Op):
    """A layer in a node's body: maps (channels, HxW) to (channels, HxW)."""

    kind: ClassVar[str] = "block"
    base_fields: ClassVar[frozenset[str]] = frozenset({"block", "repeat"})
    # True for blocks that consume a feature map and emit a vector (global pooling)
    # or consume a vector (linear); everything else maps maps to maps.
    takes_vector: ClassVar[bool] = False
    gives_vector: ClassVar[bool] = False

    block: str
    repeat: PosInt = Field(1, description="how many copies of this block to chain")

    def stride_factor(self) -> int:
        """How much this block divides the resolution (1 for blocks that keep it)."""
        return 1

    def out_channels(self, c_in: int) -> int:
        raise NotImplementedError

    def out_hw(self, hw: HW) -> HW:
        return hw

    def build(self, c_in: int) -> "nn.Module":
        raise NotImplementedError


class EdgeOp(Op):
    """A fusion edge: a transform from the ``from`` node to the merge of the ``to`` node.

    The rules take the stride of the source and the stride at which the edge must
    arrive (the target's stride before its body): an upsample goes from 16 to 4, a
    stride-2 chain from 4 to 16.
    """

    kind: ClassVar[str] = "edge"
    base_fields: ClassVar[frozenset[str]] = frozenset({"op", "src", "dst", "when"})

    op: str
    src: str = Field(alias="from", description="the node this edge reads")
    dst: str = Field(alias="to", description="the node whose merge this edge feeds")
    when: Optional[Bool] = Field(None, description="keep this edge only if the expression is true")

    @property
    def projects(self) -> bool:
        """True if the output width is the target's (a projection), False if it is the source's."""
        return True

    @property
    def adopts_size(self) -> bool:
        """True if the output HxW is taken from the target node rather than computed."""
        return False

    def stride_error(self, src: int, dst: int) -> str | None:
        """Why this op cannot go from stride ``src`` to stride ``dst``, or None if it can."""
        raise NotImplementedError

    def out_hw(self, hw: HW, src: int, dst: int) -> HW:
        return hw

    def build(self, c_in: int, c_out: int, src: int, dst: int) -> "nn.Module | None":
        """The module for this edge (None: no module, the tensor passes unchanged)."""
        raise NotImplementedError


def conv_hw(hw: HW, kernel: int, stride: int, padding: int) -> HW:
    """PyTorch's output size for a convolution or pooling window (dilation 1)."""
    return tuple((x + 2 * padding - kernel) // stride + 1 for x in hw)  # type: ignore[return-value]


def halvings(fine: int, coarse: int) -> int | None:
    """k if ``coarse == fine * 2**k`` for some k >= 1, else None."""
    if coarse <= fine or coarse % fine:
        return None
    n = coarse // fine
    return n.bit_length() - 1 if n & (n - 1) == 0 else None
