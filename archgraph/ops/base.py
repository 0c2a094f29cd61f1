"""What every op is: a validated parameter model plus its rules.

An op is defined once, as a pydantic model whose fields are the op's parameters
and whose methods are its rules:

* the shape rules (channels and stride in -> out, and the spatial arithmetic),
  used by verification and shape inference without torch;
* ``build``, which makes the ``torch.nn.Module`` and imports torch only when
  called, so that ``archgraph validate`` never pays for importing torch;
* ``emit``, the same construction written as Python source (a constructor
  expression, see :func:`call`) for the source backend, which checks that the
  two agree (same state-dict keys, shapes and outputs).

There are two kinds. A :class:`BlockOp` is a layer in a node's body (a conv, a
residual block). An :class:`EdgeOp` is a fusion edge from one resolution node to
another; the edge's endpoints (``from``, ``to``) are fields of the same model, so
a validated edge is simply an instance of its op.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from pydantic import ConfigDict, Field

from archgraph.lang.strict import Strict
from archgraph.lang.values import Bool, Choice, PosInt, require_tag

if TYPE_CHECKING:
    from torch import nn
    from typing_extensions import Self  # typing's from Python 3.11

HW = tuple[int, int]
Act = Choice("relu", "none")


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
    model_config = ConfigDict(json_schema_extra=require_tag("block"))
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

    def render_label(self) -> str:
        """How diagrams (``archgraph render``) name this block in a node's box: short, e.g. ``conv3x3/2``."""
        return self.tag

    def build(self, c_in: int) -> "nn.Module":
        raise NotImplementedError

    def emit(self, c_in: int) -> Code:
        """``build(c_in)`` as source: an expression over ``nn`` and the helpers in ``ops/_layers.py``."""
        raise NotImplementedError(f"block '{self.tag}' has no source rule (emit)")

    def cost(self, t: "Tally", x: "Value") -> "Value":
        """Replay ``build(c_in)``'s forward on ``x`` in ``t`` (work, parameters, memory); return the output.

        Every op that the cost model should see defines this next to its shape rule,
        call for call as its module's ``forward`` runs (see :class:`Tally`).
        """
        raise NotImplementedError(f"block '{self.tag}' has no cost rule")


@dataclass(frozen=True)
class EdgeStyle:
    """How a fusion edge looks in a diagram (``archgraph render``); each edge op gives its own.

    ``kind`` names the edge's CSS class (``fusion-<kind>``) and its legend entry, which ops of the
    same kind share; ``color``, ``style`` (Graphviz: solid, dashed, dotted, bold) and ``arrowhead``
    (Graphviz arrow shapes: normal, vee, box, empty, ...) draw it.
    """

    kind: str
    legend: str
    color: str = "#4d4d4d"
    style: str = "solid"
    arrowhead: str = "normal"


class EdgeOp(Op):
    """A fusion edge: a transform from the ``from`` node to the merge of the ``to`` node.

    The rules take the stride of the source and the stride at which the edge must
    arrive (the target's stride before its body): an upsample goes from 16 to 4, a
    stride-2 chain from 4 to 16.
    """

    kind: ClassVar[str] = "edge"
    model_config = ConfigDict(json_schema_extra=require_tag("op"))
    untagged_default: ClassVar[str] = "identity"  # an edge without op: is an identity
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

    @property
    def takes_input_size(self) -> bool:
        """True if the output HxW is the network input's: the module is called as ``module(x, (H, W))``
        with the input tensor's H and W (read when forward starts), and the edge must arrive at the
        input's stride, 1 (``stride_error`` says so)."""
        return False

    @property
    def guide_node(self) -> str | None:
        """The one extra node this edge reads besides ``from`` (its ``guide:`` field), or None.

        A guided edge (``op: flow_warp``) computes from two maps: its source and a guide at the
        arrival stride. The guide is a dependency of the target (it is computed first), must be
        at the edge's arrival stride, and sets the edge's output HxW; the built module is called
        as ``module(source, guide)``, and ``build``/``emit``/``cost`` receive the guide's width
        (``c_guide=``) or value (``guide=``) as a keyword.
        """
        return None

    def guide_error(self, c_in: int, c_guide: int, siblings: int) -> str | None:
        """Why this guided edge cannot read a guide of width ``c_guide`` (its source has ``c_in``) into a
        node with ``siblings`` other in-edges, or None if it can. Only asked of edges with a guide."""
        return None

    def stride_error(self, src: int, dst: int) -> str | None:
        """Why this op cannot go from stride ``src`` to stride ``dst``, or None if it can.

        A plain string is about the edge's ``op``; a :class:`Why` can name the field at fault and a hint.
        """
        raise NotImplementedError

    def out_hw(self, hw: HW, src: int, dst: int) -> HW:
        return hw

    def build(self, c_in: int, c_out: int, src: int, dst: int) -> "nn.Module | None":
        """The module for this edge (None: no module, the tensor passes unchanged)."""
        raise NotImplementedError

    def emit(self, c_in: int, c_out: int, src: int, dst: int) -> Code | None:
        """``build(...)`` as source (None where build gives None); see :meth:`BlockOp.emit`."""
        raise NotImplementedError(f"edge op '{self.tag}' has no source rule (emit)")

    def cost(self, t: "Tally", x: "Value", c_out: int, src: int, dst: int, hw: HW) -> "Value":
        """Replay the edge's forward on ``x`` in ``t``; ``hw`` is the output size shape inference gave.

        Returns the edge's output (``x`` itself for an edge without a module).
        """
        raise NotImplementedError(f"edge op '{self.tag}' has no cost rule")

    def render_style(self) -> "EdgeStyle":
        """How diagrams (``archgraph render``) draw this edge: its fusion kind, colour, dash and arrowhead.

        An op without a style of its own is drawn as a grey dashed line with an open arrowhead, under
        its tag in the legend.
        """
        return EdgeStyle(self.tag, f"{self.tag}", "#7f7f7f", "dashed", "empty")


class Why(str):
    """A rule's reason (see :meth:`EdgeOp.stride_error`) with the edge's field it is about (errors point
    there; default ``op``) and, optionally, a hint for the fix."""

    field: str
    hint: str | None

    def __new__(cls, text: str, field: str = "op", hint: str | None = None) -> Self:
        why = super().__new__(cls, text)
        why.field, why.hint = field, hint
        return why


class Code(str):
    """Python source for an expression; :func:`call` inserts it as is (other strings become literals)."""


def literal(value: Any) -> str:
    """A Python literal for an op parameter: None, bool, int, float or str (always double-quoted, escaped)."""
    if isinstance(value, Code):
        return value
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f'float("{value}")'
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are a subset of Python's: always a valid str literal
    raise TypeError(f"no literal for {type(value).__name__} {value!r}")


def call(fn: str, *args: Any, **kwargs: Any) -> Code:
    """``fn(arg, ..., key=value, ...)`` as source; ``Code`` arguments are nested expressions."""
    parts = [literal(a) for a in args] + [f"{key}={literal(v)}" for key, v in kwargs.items()]
    return Code(f"{fn}({', '.join(parts)})")


def conv_hw(hw: HW, kernel: int, stride: int, padding: int, dilation: int = 1) -> HW:
    """PyTorch's output size for a convolution or pooling window: ⌊(x + 2p − d(k − 1) − 1)/s⌋ + 1."""
    span = dilation * (kernel - 1) + 1  # the window's extent: k taps, d apart
    return tuple((x + 2 * padding - span) // stride + 1 for x in hw)  # type: ignore[return-value]


def halvings(fine: int, coarse: int) -> int | None:
    """k if ``coarse == fine * 2**k`` for some k >= 1, else None."""
    if coarse <= fine or coarse % fine:
        return None
    n = coarse // fine
    return n.bit_length() - 1 if n & (n - 1) == 0 else None


def upward_stride_error(op: str, src: int, dst: int) -> str | None:
    """The check of every coarse-to-fine edge op: ``src`` must be ``dst`` times a power of two."""
    if halvings(dst, src) is not None:
        return None
    direction = "from fine to coarse" if src < dst else "between equal strides" if src == dst else ""
    return (f"{op} must go from a coarser to a finer stride by a power of two, but goes from stride {src} "
            f"to {dst}" + (f" ({direction})" if direction else ""))


def pool_hw(hw: HW, kernel: int, stride: int, padding: int, ceil_mode: bool = False) -> HW:
    """PyTorch's output size for a pooling window (``pooling_output_shape``): with ``ceil_mode``,
    ⌈(x + 2p − k)/s⌉ + 1, less one where the last window would start past the input and its left
    padding (``MaxPool2d(3, 2, 1, ceil_mode=True)`` takes 512 to 257, 511 to 256)."""
    if not ceil_mode:
        return conv_hw(hw, kernel, stride, padding)
    out = []
    for x in hw:
        n = -(-(x + 2 * padding - kernel) // stride) + 1
        out.append(n - 1 if (n - 1) * stride >= x + padding else n)
    return tuple(out)  # type: ignore[return-value]


# --- cost rules -----------------------------------------------------------------------------------
#
# An op's cost rule (``BlockOp.cost``, ``EdgeOp.cost``) replays its module's forward, call for call,
# on a :class:`Tally`: each call counts its work in the primitive *terms* below, adds the layer's
# parameters, and allocates or frees the tensors it makes. The tally weighs nothing: turning terms
# into "FLOPs" is a counting convention's job (``archgraph.analysis.cost.CONVENTIONS``). Counts are for
# one sample; every term is linear in the batch size. No torch here.

WORK_TERMS: dict[str, str] = {
    "conv_mac": "multiply-accumulates of convolutions: out elements x in channels/groups x kernel area "
                "(transposed: in elements x out channels x kernel area)",
    "conv_bias": "bias additions of convolutions: one per output element of a conv with bias",
    "linear_mac": "multiply-accumulates of linear layers: in features x out features",
    "linear_bias": "bias additions of linear layers: one per output feature",
    "bn": "elements normalised by BatchNorm (its input's size)",
    "relu": "elements through a ReLU",
    "add": "elementwise additions: one per output element of each two-input sum",
    "upsample_nearest": "output elements of nearest-neighbour upsampling",
    "upsample_bilinear": "output elements of bilinear interpolation",
    "global_pool": "input elements of global or adaptive average pooling (aten::adaptive_avg_pool2d)",
    "max_pool": "comparisons of max pooling: output elements x (kernel area - 1)",
    "grid_sample": "output elements of bilinear grid sampling (F.grid_sample: the flow-warp edges)",
    "leaky_relu": "elements through a leaky ReLU",
}


class Value:
    """A tensor in a cost rule's replay: its shape for one sample, and whether the replay made it.

    ``hw`` is None for a vector (N, C). A value the op did not make (its input) is never
    freed by the op; one it made is live until :meth:`Tally.free`.
    """

    __slots__ = ("channels", "hw", "owned", "live")

    def __init__(self, channels: int, hw: HW | None, owned: bool = True):
        self.channels, self.hw, self.owned, self.live = channels, hw, owned, owned

    @property
    def elements(self) -> int:
        return self.channels if self.hw is None else self.channels * self.hw[0] * self.hw[1]

    def __repr__(self) -> str:
        dims = (self.channels,) if self.hw is None else (self.channels, *self.hw)
        return f"Value({'x'.join(map(str, dims))}{'' if self.owned else ', input'})"


class _Memory:
    """Live activation elements (per sample) over a whole replay, shared by a tally and its children."""

    def __init__(self, item_bytes: int = 4) -> None:
        self.live = 0
        self.peak = 0
        self.where = ""  # a label for the step being replayed (set by the caller)
        self.peak_at = ""
        self.item_bytes = item_bytes  # bytes of one activation element (the profiled dtype's), for transients


class Tally:
    """Work (by term), parameters and activation memory of a replayed forward, for one sample.

    Memory follows eager PyTorch under ``no_grad``: a tensor is live from the call that makes
    it until the last reference to it goes (the replay says when, with :meth:`free`); in-place
    calls (``ReLU(inplace=True)``, ``+=``) make nothing. :meth:`child` gives a tally with its
    own work and parameters that shares this one's memory, so that a whole network's replay
    has one peak while each op's work is kept apart.
    """

    def __init__(self, memory: _Memory | None = None):
        self.work: Counter[str] = Counter()
        self.params = 0
        self.allocated = 0  # elements of every tensor this tally made
        self.memory = memory or _Memory()

    def child(self) -> "Tally":
        return Tally(self.memory)

    # -- bookkeeping --
    def input(self, channels: int, hw: HW | None) -> Value:
        """A value the op receives (not its own: never freed by it)."""
        return Value(channels, hw, owned=False)

    def new(self, channels: int, hw: HW | None) -> Value:
        value = Value(channels, hw)
        self.allocated += value.elements
        memory = self.memory
        memory.live += value.elements
        if memory.live > memory.peak:
            memory.peak, memory.peak_at = memory.live, memory.where
        return value

    def free(self, *values: Value) -> None:
        """The last reference to each value goes (values the op did not make are left alone)."""
        for value in values:
            if value.owned and value.live:
                value.live = False
                self.memory.live -= value.elements

    def transient(self, nbytes: int) -> None:
        """A tensor of ``nbytes`` (per sample) made and dropped inside one call: it can only raise the peak.

        For scratch tensors of another dtype than the activations', such as the int64 indices of
        ATen's ``max_pool2d_with_indices``, which ``F.max_pool2d`` calls and then drops.
        """
        memory = self.memory
        live = memory.live + -(-nbytes // memory.item_bytes)
        if live > memory.peak:
            memory.peak, memory.peak_at = live, memory.where

    def count(self, term: str, n: int) -> None:
        if term not in WORK_TERMS:
            raise KeyError(f"unknown work term {term!r}; known: {', '.join(WORK_TERMS)}")
        self.work[term] += n

    # -- layers (one call each, as torch runs them) --
    def conv(self, x: Value, c_out: int, kernel: int, stride: int = 1, padding: int | None = None,
             bias: bool = False, groups: int = 1, dilation: int = 1) -> Value:
        """``nn.Conv2d(x.channels, c_out, kernel, stride, padding, dilation, groups, bias)(x)``; padding
        None: ``dilation * (kernel // 2)``. Dilation spreads the taps: the work per output element is the same."""
        padding = dilation * (kernel // 2) if padding is None else padding
        hw = conv_hw(x.hw, kernel, stride, padding, dilation)  # type: ignore[arg-type]
        weights = c_out * (x.channels // groups) * kernel * kernel
        self.count("conv_mac", weights * hw[0] * hw[1])
        self.params += weights
        if bias:
            self.count("conv_bias", c_out * hw[0] * hw[1])
            self.params += c_out
        return self.new(c_out, hw)

    def bn(self, x: Value) -> Value:
        """``nn.BatchNorm2d(x.channels)(x)``: a new tensor; weight and bias are its parameters."""
        self.count("bn", x.elements)
        self.params += 2 * x.channels
        return self.new(x.channels, x.hw)

    def relu(self, x: Value, inplace: bool = True) -> Value:
        self.count("relu", x.elements)
        return x if inplace else self.new(x.channels, x.hw)

    def add(self, a: Value, b: Value, inplace: bool = False) -> Value:
        """``a + b`` (a new tensor) or ``a += b``."""
        self.count("add", a.elements)
        return a if inplace else self.new(a.channels, a.hw)

    def upsample(self, x: Value, mode: str, hw: HW) -> Value:
        """``F.interpolate(x, size=hw, mode=mode)`` (and ``nn.Upsample``)."""
        self.count(f"upsample_{mode}", x.channels * hw[0] * hw[1])
        return self.new(x.channels, hw)

    def adaptive_avg_pool(self, x: Value, bins: int) -> Value:
        """``F.adaptive_avg_pool2d(x, bins)``: counted, as fvcore does, by the input's elements."""
        self.count("global_pool", x.elements)
        return self.new(x.channels, (bins, bins))

    def grid_sample(self, x: Value, hw: HW) -> Value:
        """``F.grid_sample(x, grid)`` with a grid of size ``hw`` (bilinear): an output of x's width at ``hw``."""
        self.count("grid_sample", x.channels * hw[0] * hw[1])
        return self.new(x.channels, hw)

    def leaky_relu(self, x: Value, inplace: bool = True) -> Value:
        self.count("leaky_relu", x.elements)
        return x if inplace else self.new(x.channels, x.hw)

    def warp(self, x: Value, flow: Value) -> Value:
        """``ops._layers.warp(x, flow, ...)``: the sampling grid at ``flow``'s HxW (per sample: the repeated
        base grid, flow / norm, their sum; the batch-independent base grid itself is not counted), then
        grid_sample."""
        hw: HW = flow.hw  # type: ignore[assignment]
        repeated = self.new(2, hw)
        shift = self.new(2, hw)
        grid = self.new(2, hw)
        self.free(repeated, shift)
        out = self.grid_sample(x, hw)
        self.free(grid)
        return out

    def max_pool(self, x: Value, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False) -> Value:
        """``F.max_pool2d(x, kernel, stride, padding, ceil_mode=...)`` (and ``nn.MaxPool2d``): kernel² - 1
        comparisons per output element; ATen computes it as ``max_pool2d_with_indices``, whose int64 indices
        live for the call."""
        y = self.new(x.channels, pool_hw(x.hw, kernel, stride, padding, ceil_mode))  # type: ignore[arg-type]
        self.count("max_pool", y.elements * (kernel * kernel - 1))
        self.transient(8 * y.elements)
        return y

    def global_avg_pool(self, x: Value) -> Value:
        """Mean over HxW, flattened to (N, C) (the flatten is a view: nothing new)."""
        self.count("global_pool", x.elements)
        return self.new(x.channels, None)

    def linear(self, x: Value, features: int, bias: bool = True) -> Value:
        self.count("linear_mac", x.channels * features)
        self.params += x.channels * features
        if bias:
            self.count("linear_bias", features)
            self.params += features
        return self.new(features, None)

    def concat(self, parts: list[Value]) -> Value:
        """``torch.cat(parts, 1)``: a copy, no arithmetic."""
        return self.new(sum(p.channels for p in parts), parts[0].hw)

    def conv_bn_act(self, x: Value, c_out: int, kernel: int, stride: int = 1, padding: int | None = None,
                    bias: bool = False, bn: bool = True, act: str = "relu", dilation: int = 1) -> Value:
        """``ops._layers.conv_bn_act``: Sequential(conv, [BN], [ReLU(inplace)]); ``x`` is the caller's."""
        y = self.conv(x, c_out, kernel, stride, padding, bias, dilation=dilation)
        if bn:
            z = self.bn(y)
            self.free(y)  # Sequential drops the conv output once the BN has returned
            y = z
        if act == "relu":
            y = self.relu(y)
        elif act == "leaky_relu":
            y = self.leaky_relu(y)
        return y
