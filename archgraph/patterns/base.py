"""What a pattern is: a named, validated macro that writes plain nodes and edges.

A pattern use sits in a spec's ``nodes`` list (``use: multires_stage``). Its fields
are validated like any spec object (expressions evaluated); ``expand`` then
returns a :class:`Fragment` of plain node and edge dicts — exactly what a user
could have written by hand — plus the names of its outputs, so that later nodes
and patterns can say ``from: s2`` to mean "the outputs of pattern s2".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, ClassVar, Optional

from pydantic import ConfigDict, Field

from archgraph.lang.values import Bool
from archgraph.limits import charge
from archgraph.ops.base import Documented
from archgraph.lang import values
from archgraph.lang.values import Name, require_tag


Sources = Annotated[
    values.Sources,
    Field(alias="from", description="input nodes, finest first, or an earlier pattern's name (its outputs)"),
]


@dataclass(frozen=True)
class NodeInfo:
    """What a pattern may know about a node declared before it."""

    name: str
    stride: int
    channels: int


@dataclass
class Fragment:
    """A pattern's expansion: plain node and edge dicts, and its outputs in order."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def node(self, **fields: Any) -> str:
        charge("nodes")  # against the expansion's limits, so that a huge count stops early
        self.nodes.append({k: v for k, v in fields.items() if v is not None})
        return fields["name"]

    def edge(self, src: str, dst: str, op: str = "identity", **params: Any) -> None:
        charge("edges")
        self.edges.append({"from": src, "to": dst, "op": op, **params})


class Scope:
    """The nodes and pattern outputs declared so far, for a pattern to build on.

    ``fail`` raises a :class:`~archgraph.errors.SpecError` at the pattern's field.
    """

    def __init__(self, nodes: dict[str, NodeInfo], groups: dict[str, list[str]], fail: Callable[..., Any]):
        self._nodes = nodes
        self._groups = groups
        self.fail = fail

    def resolve(self, names: list[str], field: str = "from") -> list[NodeInfo]:
        """Node names, with pattern names replaced by their outputs, as NodeInfo."""
        from archgraph.errors import did_you_mean

        found = []
        for name in names:
            for member in self._groups.get(name, [name]):
                if member not in self._nodes:
                    known = [*self._nodes, *self._groups]
                    self.fail(f"unknown node '{member}'", field, did_you_mean(member, known))
                found.append(self._nodes[member])
        return found


class Pattern(Documented):
    """Base of all patterns: a name (the prefix of what it writes) and an optional condition."""

    kind: ClassVar[str] = "pattern"
    model_config = ConfigDict(json_schema_extra=require_tag("use"))
    tag: ClassVar[str]
    base_fields: ClassVar[frozenset[str]] = frozenset({"use", "when"})

    use: str
    name: Name = Field(description="prefix of the nodes it writes; later nodes may say from: <name>")
    when: Optional[Bool] = Field(None, description="expand only if the expression is true")

    def expand(self, scope: Scope) -> Fragment:
        raise NotImplementedError
