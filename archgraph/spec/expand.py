"""From a written spec to a plain one: parameters substituted, conditions applied, patterns unrolled.

The plain spec has only nodes and edges with literal values — what
``archgraph expand`` prints, itself a valid spec. Every plain node and edge keeps
its :class:`Origin`, the place in the written spec it came from, so that later
checks can point there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from pydantic import ValidationError

from archgraph import limits as bounds
from archgraph.errors import Loc, SpecError, SpecErrors, raise_all
from archgraph.lang.source import Source
from archgraph.ops.base import BlockOp, EdgeOp
from archgraph.patterns import NodeInfo, Pattern, Scope
from archgraph.spec import params as param_values
from archgraph.spec.errors import spec_errors
from archgraph.spec.init import InitRule
from archgraph.spec.model import FORMAT_VERSION, InputSpec, NodeBase, models


@dataclass(frozen=True)
class Origin:
    """Where a plain node or edge came from: a path in the written spec."""

    source: Source
    path: tuple

    def loc(self, *field: str | int) -> Loc:
        return self.source.loc(self.path + field)


@dataclass
class PlainSpec:
    """A spec with nothing left to evaluate: ``nodes`` and ``edges`` in declaration order."""

    name: str
    doc: str
    input: InputSpec
    params: dict[str, Any]
    nodes: list[tuple[NodeBase, Origin]] = field(default_factory=list)
    edges: list[tuple[EdgeOp, Origin]] = field(default_factory=list)
    input_origin: Origin | None = None
    weights: dict[str, str] = field(default_factory=dict)  # checkpoint format -> key mapping (the header's)
    init: list[InitRule] = field(default_factory=list)  # the rules that apply, ``when`` settled

    def to_data(self) -> dict[str, Any]:
        """The plain spec as data (for YAML/JSON output); it validates as a spec itself."""
        return {
            "archgraph": FORMAT_VERSION,
            "name": self.name,
            **({"doc": self.doc} if self.doc else {}),
            "input": {"name": self.input.name, "channels": self.input.channels, "size": list(self.input.size)},
            **({"weights": dict(self.weights)} if self.weights else {}),
            **({"init": [rule.data() for rule in self.init]} if self.init else {}),
            "nodes": [node_data(node) for node, _ in self.nodes],
            "edges": [edge_data(edge) for edge, _ in self.edges],
        }


def node_data(node: NodeBase) -> dict[str, Any]:
    data = node.model_dump(by_alias=True, exclude_defaults=True, exclude={"src", "when", "body", "doc"})
    data = {"name": node.name, "stride": node.stride, "channels": node.channels, **data}
    if node.body:  # type: ignore[attr-defined]
        data["body"] = [block_data(b) for b in node.body]  # type: ignore[attr-defined]
    return data


def block_data(block: BlockOp) -> dict[str, Any]:
    extra = {"repeat": block.repeat} if block.repeat != 1 else {}
    return {"block": block.tag, **block.params(), **extra}


def edge_data(edge: EdgeOp) -> dict[str, Any]:
    return {"from": edge.src, "to": edge.dst, "op": edge.tag, **edge.params()}


def expand(source: Source, overrides: Mapping[str, Any] | None = None, where: Loc = Loc("<parameters>"),
           limits: bounds.Limits | None = None) -> PlainSpec:
    """Validate ``source`` with the given parameter overrides and unroll it into a plain spec.

    ``where`` names the overrides' origin in messages (the API's keyword arguments, or the command line).
    Nodes, edges and body blocks are counted against ``limits`` (default: :data:`archgraph.limits.DEFAULT`)
    as they are written; going over raises :class:`archgraph.limits.LimitExceeded` at once.
    """
    values = param_values.resolve(source, overrides or {}, where)
    M = models()
    try:
        spec = M.Spec.model_validate(source.data, context={"params": values})
    except ValidationError as error:
        raise_all(spec_errors(error, source))
        raise
    plain = PlainSpec(spec.name, spec.doc, spec.input, values, input_origin=Origin(source, ("input",)),
                      weights=dict(spec.weights), init=_init_rules(spec.init, source))
    _Expander(source, plain, M, bounds.Budget(limits or bounds.DEFAULT)).run(spec)
    return plain


def _init_rules(rules: list[InitRule], source: Source) -> list[InitRule]:
    """The rules whose ``when`` holds; two for one kind of layer are an error (which would win?)."""
    chosen: dict[str, int] = {}
    errors = []
    for i, rule in enumerate(rules):
        if rule.when is False:
            continue
        if rule.layers in chosen:
            first = source.loc(("init", chosen[rule.layers]))
            errors.append(SpecError(f"a second init rule for {rule.layers} layers", source.loc(("init", i, "layers")),
                                    f"the first is at line {first.line}; give them when: conditions that "
                                    "exclude each other"))
        else:
            chosen[rule.layers] = i
    raise_all(errors)
    return [rules[i].model_copy(update={"when": None}) for i in chosen.values()]


class _Expander:
    def __init__(self, source: Source, plain: PlainSpec, M: Any, budget: bounds.Budget):
        self.source, self.plain, self.M, self.budget = source, plain, M, budget
        self.known = {plain.input.name: NodeInfo(plain.input.name, 1, plain.input.channels)}
        self.groups: dict[str, list[str]] = {}
        self.errors: list[SpecError] = []

    def run(self, spec: Any) -> None:
        for i, item in enumerate(spec.nodes):
            if item.when is False:
                continue
            origin = Origin(self.source, ("nodes", i))
            try:
                if isinstance(item, Pattern):
                    self._pattern(item, origin)
                else:
                    self._node(item, origin)
            except bounds.LimitExceeded as error:  # going on would only write more
                raise_all([*self.errors, error])
            except SpecErrors as errors:
                self.errors.extend(errors)
            except SpecError as error:
                self.errors.append(error)
        for j, edge in enumerate(spec.edges):
            if edge.when is not False:
                origin = Origin(self.source, ("edges", j))
                try:
                    self.budget.spend("edges", loc=origin.loc())
                except bounds.LimitExceeded as error:
                    raise_all([*self.errors, error])
                self.plain.edges.append((edge, origin))
        raise_all(self.errors)

    def _node(self, node: NodeBase, origin: Origin) -> None:
        self._add_node(node, origin)
        for src in node.src:  # from: sugar for identity edges; a pattern's name means its outputs
            for member in self.groups.get(src, [src]):
                self._add_edge({"from": member, "to": node.name}, Origin(self.source, origin.path + ("from",)))

    def _pattern(self, pattern: Pattern, origin: Origin) -> None:
        def fail(message: str, field: str | None = None, hint: str | None = None):
            raise SpecError(message, origin.loc(*([field] if field else [])), hint)

        if pattern.name in self.known or pattern.name in self.groups:
            fail(f"'{pattern.name}' is already the name of a node or pattern", "name")
        with bounds.charging(self.budget.fork(origin.loc())):  # stops a pattern asked for millions of nodes
            fragment = pattern.expand(Scope(self.known, self.groups, fail))
        for data in fragment.nodes:
            self._add_node(self._validate(self.M.Node.model_validate, data, origin), origin)
        for data in fragment.edges:
            self._add_edge(data, origin)
        self.groups[pattern.name] = fragment.outputs

    def _add_node(self, node: NodeBase, origin: Origin) -> None:
        self.budget.spend("nodes", loc=origin.loc())
        self.budget.spend("blocks", sum(block.repeat for block in node.body), origin.loc())  # type: ignore[attr-defined]
        if node.name in self.groups:
            raise SpecError(f"'{node.name}' is already the name of a pattern", origin.loc("name"),
                            "in from: a pattern's name means its outputs, so nodes cannot share it")
        self.plain.nodes.append((node, origin))
        self.known.setdefault(node.name, NodeInfo(node.name, node.stride, node.channels))

    def _add_edge(self, data: dict, origin: Origin) -> None:
        self.budget.spend("edges", loc=origin.loc())
        edge = self._validate(self.M.edge_adapter.validate_python, data, origin)
        self.plain.edges.append((edge, origin))

    def _validate(self, validate: Any, data: dict, origin: Origin) -> Any:
        try:
            return validate(data, context={"params": {}})
        except ValidationError as error:
            located = spec_errors(error, self.source, origin.path, data)
            raise SpecErrors(located) if len(located) > 1 else located[0]
