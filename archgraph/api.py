"""The Python API: ``load`` a spec into the verified IR, ``build`` it into a torch module."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Union

from archgraph.ir import ArchGraph, lower, verify
from archgraph.lang.source import Source, load as load_source
from archgraph.limits import Limits, check_build
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


def plain(spec: SpecLike, *, limits: Limits | None = None, **params: Any) -> PlainSpec:
    """The spec with parameters substituted and patterns unrolled (what ``archgraph expand`` prints)."""
    return expand(source_of(spec), params, limits=limits)


def load(spec: SpecLike, *, limits: Limits | None = None, **params: Any) -> ArchGraph:
    """Parse, expand and verify a spec; ``params`` override its parameters (``width=48``).

    Raises :class:`archgraph.SpecError` (or ``SpecErrors``, several at once) with
    ``file:line:col`` locations. Does not import torch. ``limits`` bounds the nodes, edges and
    blocks of the expanded network (default: :data:`archgraph.limits.DEFAULT`; ``limits`` is
    therefore not available as a spec parameter's name here).
    """
    return verify(lower(plain(spec, limits=limits, **params)))


def build(spec: SpecLike | ArchGraph, *, limits: Limits | None = None, optimize: bool = False,
          device: Any = None, **params: Any) -> "GraphModule":
    """Build the ``torch.nn.Module`` of a spec (or of an already loaded graph).

    The module returns the output tensor if the spec has one output, else a dict
    from output name to tensor. Its state-dict keys are ``nodes.<node>.<block>...``
    for node bodies and ``edges.<to>.<from>...`` for fusion edges.

    Before anything is allocated, the parameters are counted statically: more than
    ``limits.max_params`` (default 2**31, 8 GiB of float32) raises
    :class:`archgraph.limits.LimitExceeded`; ``limits=Limits(max_params=...)`` or
    ``Limits.unlimited()`` builds it anyway.

    ``device`` builds on that torch device; ``device="meta"`` allocates nothing (shapes only:
    parameter counts of any variant in milliseconds), so the parameter limit does not apply.
    ``optimize=True`` returns :func:`optimize`'s inference module (BatchNorm folded, fused
    kernels, channels_last; see docs/benchmarks.md), with the build's random initialisation:
    to run trained weights, load them into ``build(spec)`` and optimise that.
    ``limits``, ``optimize`` and ``device`` are ``build``'s own keywords and take precedence: a
    spec parameter of one of these names is set through ``load(spec, optimize=...)``, then
    ``build(graph, ...)``.
    """
    import contextlib

    import torch

    from archgraph.backends.torch import GraphModule

    graph = spec if isinstance(spec, ArchGraph) else load(spec, limits=limits, **params)
    if isinstance(spec, ArchGraph) and params:
        raise TypeError("parameters apply to a spec, not to an already loaded graph")
    meta = device is not None and torch.device(device).type == "meta"
    if not meta:  # on meta nothing is allocated
        check_build(graph, limits)
    with torch.device(device) if device is not None else contextlib.nullcontext():
        module = GraphModule(graph)
    if optimize:
        from archgraph.backends.torch.optimize import optimize as optimize_module

        module = optimize_module(module)
    return module


def optimize(module: Any, *, mkldnn: bool | None = None, channels_last: bool | None = None) -> Any:
    """Optimise a built module (the executor's or a generated one) for inference, in place; returns it.

    BatchNorm folded into the convs, oneDNN convs with the ReLUs and residual sums fused on the
    CPU, channels_last: :mod:`archgraph.backends.torch.optimize`. Outputs equal the original's up
    to float rounding; the state_dict changes (no BN), so load weights before optimising.
    """
    from archgraph.backends.torch.optimize import optimize as run

    return run(module, mkldnn=mkldnn, channels_last=channels_last)
