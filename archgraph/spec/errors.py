"""Turning pydantic's validation errors into located, readable spec errors."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from archgraph.errors import SpecError, did_you_mean
from archgraph.lang.source import Source

_TAGS = {"unknown_op": ("op", "edge_ops"), "unknown_block": ("block", "blocks"), "unknown_use": ("use", "patterns")}


def data_path(data: Any, loc: tuple, missing: bool = False) -> tuple:
    """The part of pydantic's ``loc`` that names real keys/indices in ``data``.

    Pydantic puts union tags and validator names into ``loc``; they are skipped.
    """
    path: list = []
    for k, part in enumerate(loc):
        if isinstance(data, dict) and part in data:
            data = data[part]
            path.append(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
            path.append(part)
        elif missing and k == len(loc) - 1 and isinstance(data, dict):
            path.append(part)  # a missing key: kept so that the message can name it
    return tuple(path)


def spec_errors(error: ValidationError, source: Source, prefix: tuple = (), data: Any = None) -> list[SpecError]:
    """One SpecError per pydantic error, located in ``source``.

    ``data`` is what was validated (default: the whole document) and ``prefix`` its path.
    """
    if data is None:
        data = source.data
    errors = []
    for item in error.errors():
        path = prefix + data_path(data, item["loc"], missing=item["type"] == "missing")
        if "[key]" in item["loc"]:  # the key itself is wrong: point at the key, not its value
            item = {**item, "input": path[-1] if path else item["input"]}
            errors.extend(_convert(item, path, source, key=True))
        else:
            errors.extend(_convert(item, path, source))
    return errors


def _convert(item: dict, path: tuple, source: Source, key: bool = False) -> list[SpecError]:
    kind, ctx, value = item["type"], item.get("ctx") or {}, item.get("input")
    field = next((p for p in reversed(path) if isinstance(p, str)), "value")
    at = source.key_loc(path) if key else source.loc(path)
    if kind == "unknown_keys":
        key, allowed = ctx["key"], ctx["allowed"]
        hint = did_you_mean(key, allowed) or f"allowed keys: {', '.join(allowed)}"
        return [SpecError(f"unknown key '{key}'", source.key_loc(path), hint)]
    if kind in _TAGS:
        key, table = _TAGS[kind]
        choices = _registry(table)
        tag = value.get(key) if isinstance(value, dict) else None
        if tag is None:
            return [SpecError(f"missing '{key}'", at, f"one of: {', '.join(choices)}")]
        what = {"op": "edge op", "block": "block", "use": "pattern"}[key]
        hint = did_you_mean(tag, choices) or f"known: {', '.join(choices)}"
        return [SpecError(f"unknown {what} '{tag}'", source.loc(path + (key,)), hint)]
    if kind == "missing":
        parent = path[:-1] if path and path[-1] == field else path
        return [SpecError(f"missing required key '{field}'", source.loc(parent))]
    if kind == "expression":
        return [SpecError(ctx["message"], at, ctx.get("hint"))]
    if kind == "choice":
        options = " or ".join(repr(o) for o in ctx["options"])
        return [SpecError(f"'{field}' must be {options}, got {value!r}", at, did_you_mean(value, ctx["options"]))]
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        hint = did_you_mean(value, [e.strip(" '") for e in expected.replace(" or ", ",").split(",")])
        return [SpecError(f"'{field}' must be {expected}, got {value!r}", at, hint)]
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return [SpecError(f"'{field}' must be an integer, got {value!r}", at)]
    if kind in {"greater_than_equal", "greater_than"}:
        bound = ctx.get("ge", ctx.get("gt"))
        op = ">=" if "ge" in ctx else ">"
        return [SpecError(f"'{field}' must be {op} {bound}, got {value!r}", at)]
    if kind == "string_pattern_mismatch":
        return [SpecError(f"{value!r} is not a valid name", at,
                          "names are identifiers: letters, digits and '_', not starting with a digit")]
    message = item["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return [SpecError(f"'{field}': {message[:1].lower() + message[1:]}", at)]


def _registry(name: str) -> list[str]:
    from archgraph import ops, patterns

    table = {"edge_ops": ops.edge_ops, "blocks": ops.blocks, "patterns": patterns.patterns}[name]()
    return sorted(table)
