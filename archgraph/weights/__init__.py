"""Importing checkpoints written by other implementations: key mappings, named by the spec.

A spec's header says which checkpoint formats its weights can come from::

    weights: {official: hrnet_official}

``official`` is the format's name (``archgraph weights import --from official``), ``hrnet_official``
a *key mapping* registered here: a function ``(key, graph) -> str | None`` that takes one
state-dict key as that implementation names it and returns the built module's key for it
(``nodes.<node>.<block>...`` or ``edges.<to>.<from>...``), or ``None`` when it has no rule for
it. It may read the graph (the expanded, verified :class:`~archgraph.ir.ArchGraph`), so a
mapping can follow a spec's parameters: HRNet's module counts, a pattern's node names.

The built-in mappings, one module per family: :mod:`archgraph.weights.hrnet` (the official HRNet
classification, pose and segmentation code), :mod:`archgraph.weights.torchvision` (torchvision's
ResNet and FPN), :mod:`archgraph.weights.sfnet` (the official SFNet) and
:mod:`archgraph.weights.refinenet` (DrSleep's Light-Weight RefineNet and RefineNet). A plugin
(``archgraph --plugin MODULE``) registers more with :func:`register`. Reading, unwrapping and
checking a checkpoint is :mod:`archgraph.weights.checkpoint` (torch is imported there only).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archgraph.ir import ArchGraph

KeyMap = Callable[[str, "ArchGraph"], str | None]

_MAPS: dict[str, KeyMap] = {}
_BUILTIN = ("archgraph.weights.hrnet", "archgraph.weights.torchvision", "archgraph.weights.sfnet",
            "archgraph.weights.refinenet")


def register(name: str) -> Callable[[KeyMap], KeyMap]:
    """Register a key mapping under ``name`` (the value a spec's ``weights:`` names)."""

    def add(function: KeyMap) -> KeyMap:
        if name in _MAPS and _MAPS[name] is not function:
            raise ValueError(f"a key mapping named {name!r} is registered already")
        _MAPS[name] = function
        return function

    return add


def key_maps() -> dict[str, KeyMap]:
    """Every registered key mapping, the built-in ones included, by name."""
    for module in _BUILTIN:
        importlib.import_module(module)
    return dict(_MAPS)


__all__ = ["KeyMap", "key_maps", "register"]
