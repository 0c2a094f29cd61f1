"""Importing checkpoints written by other implementations: key mappings, named by the spec.

A spec's header says which checkpoint formats its weights can come from::

    weights: {official: hrnet_official}

``official`` is the format's name (``archgraph weights import --from official``), ``hrnet_official``
a *key mapping* registered here: a function ``(key, graph) -> str | None`` that takes one
state-dict key as that implementation names it and returns the built module's key for it
(``nodes.<node>.<block>...`` or ``edges.<to>.<from>...``), or ``None`` when it has no rule for
it. It may read the graph (the expanded, verified :class:`~archgraph.ir.ArchGraph`), so a
mapping can follow a spec's parameters: HRNet's module counts, a pattern's node names. Where
the other implementation's tensors mean something else than the built module's, the mapping
registers a conversion too (``register(name, values=...)``).

The built-in mappings, one module per family: :mod:`archgraph.weights.hrnet` (the official HRNet
classification, pose and segmentation code), :mod:`archgraph.weights.torchvision` (torchvision's
ResNet and FPN), :mod:`archgraph.weights.sfnet` (the official SFNet),
:mod:`archgraph.weights.refinenet` (DrSleep's Light-Weight RefineNet and RefineNet) and
:mod:`archgraph.weights.alignseg` (the official AlignSeg, whose inplace_abn scales it converts
into BatchNorm weights). A plugin (``archgraph --plugin MODULE``) registers more with
:func:`register`. Reading, unwrapping and checking a checkpoint is
:mod:`archgraph.weights.checkpoint` (torch is imported there only).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from archgraph.ir import ArchGraph

KeyMap = Callable[[str, "ArchGraph"], str | None]
ValueMap = Callable[[str, "torch.Tensor"], "torch.Tensor"]

_MAPS: dict[str, KeyMap] = {}
_VALUES: dict[str, ValueMap] = {}
_BUILTIN = ("archgraph.weights.hrnet", "archgraph.weights.torchvision", "archgraph.weights.sfnet",
            "archgraph.weights.refinenet", "archgraph.weights.alignseg")


def register(name: str, values: ValueMap | None = None) -> Callable[[KeyMap], KeyMap]:
    """Register a key mapping under ``name`` (the value a spec's ``weights:`` names).

    ``values``, if given, converts each tensor, given its checkpoint key, where the other implementation's
    parameters mean something else than the built module's (AlignSeg's inplace_abn scales by |weight| + eps).
    """

    def add(function: KeyMap) -> KeyMap:
        if name in _MAPS and _MAPS[name] is not function:
            raise ValueError(f"a key mapping named {name!r} is registered already")
        _MAPS[name] = function
        if values is not None:
            _VALUES[name] = values
        return function

    return add


def key_maps() -> dict[str, KeyMap]:
    """Every registered key mapping, the built-in ones included, by name."""
    for module in _BUILTIN:
        importlib.import_module(module)
    return dict(_MAPS)


def value_map(name: str) -> ValueMap | None:
    """The tensor conversion registered with the key mapping ``name``, or None (tensors are taken as they are)."""
    key_maps()
    return _VALUES.get(name)


__all__ = ["KeyMap", "ValueMap", "key_maps", "register", "value_map"]
