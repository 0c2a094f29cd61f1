"""The Python API: ``load`` a spec into the verified IR, ``build`` it into a torch module."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Union

from archgraph.ir import ArchGraph, lower, verify
from archgraph.lang.source import Source, load as load_source
from archgraph.spec.expand import PlainSpec, expand

if TYPE_CHECKING:
    from archgraph.backends.torch import GraphModule

SpecLike = Union[str, os.PathLike, Mapping[str, Any], Source]


def source_of(spec: SpecLike) -> Source:
    """A path, a parsed dict (positions unknown) or a :class:`Source`, as a Source."""
    if isinstance(spec, Source):
        return spec
    if isinstance(spec, Mapping):
        return Source.from_data(dict(spec))
    return load_source(spec)


def plain(spec: SpecLike, **params: Any) -> PlainSpec:
    """The spec with parameters substituted and patterns unrolled (what ``archgraph expand`` prints)."""
    return expand(source_of(spec), params)


def load(spec: SpecLike, **params: Any) -> ArchGraph:
    """Parse, expand and verify a spec; ``params`` override its parameters (``width=48``).

    Raises :class:`archgraph.SpecError` (or ``SpecErrors``, several at once) with
    ``file:line:col`` locations. Does not import torch.
    """
    return verify(lower(plain(spec, **params)))


def build(spec: SpecLike | ArchGraph, **params: Any) -> "GraphModule":
    """Build the ``torch.nn.Module`` of a spec (or of an already loaded graph).

    The module returns the output tensor if the spec has one output, else a dict
    from output name to tensor. Its state-dict keys are ``nodes.<node>.<block>...``
    for node bodies and ``edges.<to>.<from>...`` for fusion edges.
    """
    from archgraph.backends.torch import GraphModule

    graph = spec if isinstance(spec, ArchGraph) else load(spec, **params)
    if isinstance(spec, ArchGraph) and params:
        raise TypeError("parameters apply to a spec, not to an already loaded graph")
    return GraphModule(graph)
