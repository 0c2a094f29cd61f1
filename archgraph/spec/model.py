"""The spec document, as pydantic models.

A spec has a format version, a name, parameters, an input, and two lists:
``nodes`` (resolution nodes, and pattern uses that expand into nodes and edges)
and ``edges`` (fusion edges). The unions over blocks, edge ops and patterns are
built from the registries, so an op or pattern added in its own module (or by a
plugin) is part of the language without touching this file.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Optional, Union

from pydantic import (
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    create_model,
    field_validator,
)

from archgraph.lang.values import Bool, Choice, Name, PosInt, Size, Sources
from archgraph.ops import blocks, edge_ops
from archgraph.ops.base import Act, Strict
from archgraph.patterns import patterns
from archgraph.spec.init import InitRule

FORMAT_VERSION = 1


Scalar = Union[bool, int, float, str]


class ParamDecl(Strict):
    """A parameter with a default and, optionally, the values it may take."""

    default: Scalar
    choices: Optional[list[Scalar]] = None
    doc: str = ""


# a parameter is declared by its default alone, or by a mapping with default/choices/doc
ParamValue = Annotated[
    Union[Annotated[ParamDecl, Tag("declaration")], Annotated[Scalar, Tag("default")]],
    Discriminator(lambda v: "declaration" if isinstance(v, (dict, ParamDecl)) else "default"),
]


class InputSpec(Strict):
    """The network's input: an image tensor (N, channels, H, W)."""

    name: Name = "image"
    channels: PosInt = 3
    size: Size = Field(
        (224, 224), description="default H, W for compile and profile"
    )


class NodeBase(Strict):
    """A resolution node: a feature map at a stride.

    Its value is ``body(act(merge(inputs)))``: the incoming edges' outputs are merged
    (summed, or concatenated along channels), optionally activated, then passed
    through the body's blocks in order.
    """

    name: Name
    stride: PosInt = Field(description="the output's stride relative to the input (4 for 1/4 resolution)")
    channels: PosInt = Field(description="the output's width")
    src: Sources = Field(
        default_factory=list, alias="from", description="node(s) feeding this one through identity edges"
    )
    merge: Choice("sum", "concat") = Field("sum", description="how incoming edges combine")  # type: ignore[valid-type]
    act: Act = Field("none", description="activation after the merge")
    output: Bool = Field(False, description="this node is an output of the network")
    when: Optional[Bool] = Field(None, description="keep this node only if the expression is true")
    doc: str = ""


class SpecBase(Strict):
    """The document's header; ``nodes`` and ``edges`` are added from the registries."""

    archgraph: int = Field(strict=True, description=f"format version (this archgraph reads {FORMAT_VERSION})")
    name: Name = Field(description="the network's name")
    doc: str = ""
    params: dict[Name, ParamValue] = Field(default_factory=dict)
    input: InputSpec = Field(default_factory=InputSpec)
    init: list[InitRule] = Field(
        default_factory=list,
        description="how kinds of layer start (a reference's init_weights); what no rule covers keeps "
                    "PyTorch's default",
    )
    weights: dict[Name, Name] = Field(
        default_factory=dict,
        description="checkpoint formats this network's weights can be imported from (archgraph weights import "
                    "--from FORMAT): format name -> a registered key mapping (archgraph.weights)",
    )

    @field_validator("archgraph")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != FORMAT_VERSION:
            raise ValueError(f"unknown format version {value}; this archgraph reads format {FORMAT_VERSION}")
        return value


def _tagged(table: dict[str, type], key: str, default: str | None = None):
    """A union over ``table``'s classes, dispatched on the value of ``key``."""

    def tag(value: Any) -> Any:
        if isinstance(value, dict):
            return value.get(key, default)
        return getattr(value, key, default)

    members = tuple(Annotated[cls, Tag(name)] for name, cls in table.items())
    check = Discriminator(tag, custom_error_type="unknown_" + key, custom_error_message=f"unknown {key}")
    return Annotated[Union[members], check]  # type: ignore[valid-type]


@functools.cache
def models() -> Any:
    """The document models for the ops and patterns registered now (built once)."""
    Block = _tagged(blocks(), "block")
    Edge = _tagged(edge_ops(), "op", default="identity")
    Node = create_model("Node", __base__=NodeBase, body=(list[Block], Field(default_factory=list)))
    items = {"node": Node, **patterns()}
    NodeOrPattern = _tagged(items, "use", default="node")
    Spec = create_model(
        "Spec",
        __base__=SpecBase,
        nodes=(list[NodeOrPattern], Field(description="resolution nodes and pattern uses, in order")),
        edges=(list[Edge], Field(default_factory=list, description="fusion edges")),
    )
    Plain = create_model(
        "PlainSpec",
        __base__=SpecBase,
        nodes=(list[Node], ...),
        edges=(list[Edge], Field(default_factory=list)),
    )
    names = {"Block": Block, "Edge": Edge, "Node": Node, "Spec": Spec, "Plain": Plain}
    return type("Models", (), {**names, "edge_adapter": TypeAdapter(Edge)})
