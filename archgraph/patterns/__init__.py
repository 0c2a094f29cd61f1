"""Patterns: macros that expand into plain nodes and edges (one module per pattern)."""

from __future__ import annotations

from typing import TypeVar

from archgraph.ops.registry import discover
from archgraph.patterns.base import Fragment, NodeInfo, Pattern, Scope

PATTERNS: dict[str, type[Pattern]] = {}
P = TypeVar("P", bound=type[Pattern])
_loaded = False


def register(cls: P) -> P:
    tag = cls.model_fields["use"].default
    if tag in PATTERNS and PATTERNS[tag] is not cls:
        raise ValueError(f"two patterns named {tag!r}")
    cls.tag = tag
    PATTERNS[tag] = cls
    return cls


def patterns() -> dict[str, type[Pattern]]:
    global _loaded
    if not _loaded:
        _loaded = True
        discover("archgraph.patterns", "archgraph.patterns", {"base"})
    return PATTERNS


__all__ = ["Fragment", "NodeInfo", "Pattern", "Scope", "patterns", "register"]
