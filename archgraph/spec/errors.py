"""Turning pydantic's validation errors into located, readable spec errors."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from archgraph.errors import SpecError, did_you_mean, shorten
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
    items = [(item, prefix + data_path(data, item["loc"], missing=item["type"] == "missing"))
             for item in error.errors()]
    for item, path in _merge_unions(items):
        if "[key]" in item["loc"]:  # the key itself is wrong: point at the key, not its value
            item = {**item, "input": path[-1] if path else item["input"]}
            errors.extend(_convert(item, path, source, key=True))
        else:
            errors.extend(_convert(item, path, source))
    return errors


# pydantic's type errors, as what the value must be
_MUST_BE = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "int_parsing_size": "an integer", "float_type": "a number", "float_parsing": "a number",
    "finite_number": "a finite number", "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list", "tuple_type": "a list", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping",
}


def _merge_unions(items: list[tuple[dict, tuple]]) -> list[tuple[dict, tuple]]:
    """One problem per value: the type errors of a union's members (a parameter's default may be a
    boolean, an integer, a number or a string) become one error listing what the value may be."""
    merged: list[tuple[dict, tuple]] = []
    for item, path in items:
        if merged and item["type"] in _MUST_BE:
            last, last_path = merged[-1]
            same = last_path == path and last["input"] is item["input"]
            if same and (last["type"] in _MUST_BE or last["type"] == "union"):
                kinds = (last.get("ctx") or {}).get("kinds") or [_MUST_BE[last["type"]]]
                kinds = [*kinds, *([_MUST_BE[item["type"]]] if _MUST_BE[item["type"]] not in kinds else [])]
                merged[-1] = ({**last, "type": "union", "ctx": {"kinds": kinds}}, path)
                continue
        merged.append((item, path))
    return merged


def _convert(item: dict, path: tuple, source: Source, key: bool = False) -> list[SpecError]:
    kind, ctx, value = item["type"], item.get("ctx") or {}, item.get("input")
    field = next((p for p in reversed(path) if isinstance(p, str)), "value")
    at = source.key_loc(path) if key else source.loc(path)
    if kind == "unknown_keys":
        key, allowed = ctx["key"], ctx["allowed"]
        hint = did_you_mean(key, allowed) or f"allowed keys: {', '.join(allowed)}"
        return [SpecError(f"unknown key '{shorten(key)}'", source.key_loc(path), hint)]
    if kind in _TAGS:
        key, table = _TAGS[kind]
        choices = _registry(table)
        tag = value.get(key) if isinstance(value, dict) else None
        if tag is None:
            return [SpecError(f"missing '{key}'", at, f"one of: {', '.join(choices)}")]
        what = {"op": "edge op", "block": "block", "use": "pattern"}[key]
        hint = did_you_mean(tag, choices) or f"known: {', '.join(choices)}"
        return [SpecError(f"unknown {what} '{shorten(tag)}'", source.loc(path + (key,)), hint)]
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
    label = f"'{field}'" if not path or isinstance(path[-1], str) else f"an entry of '{field}'"
    if kind == "list_type" and field == "from":
        return [SpecError(f"'from' must be a node name or a list of them, got {_show(value)}", at)]
    if kind in _MUST_BE or kind == "union":
        kinds = ctx.get("kinds") or [_MUST_BE[kind]]
        what = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]
        got = _show(ctx.get("value", value))
        if "value" in ctx and isinstance(value, str):  # computed by an expression
            got += f" (from {value!r})"
        return [SpecError(f"{label} must be {what}, got {got}", at, ctx.get("hint"))]
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        op, bound = next((sym, ctx[k]) for k, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
                         if k in ctx)
        got = _show(ctx.get("value", value))
        if "value" in ctx and isinstance(value, str):  # computed by an expression
            got += f" (from {value!r})"
        return [SpecError(f"{label} must be {op} {bound}, got {got}", at)]
    if kind in {"too_short", "too_long"}:
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        qualifier = "at least" if kind == "too_short" else "at most"
        return [SpecError(f"{label} must have {qualifier} {bound} items, got {ctx.get('actual_length', '?')}", at)]
    if kind == "string_too_long":
        return [SpecError(f"{label} must be at most {ctx.get('max_length')} characters long, "
                          f"got {len(value) if isinstance(value, str) else '?'}", at)]
    if kind == "string_pattern_mismatch":
        return [SpecError(f"{value!r} is not a valid name", at,
                          "names are identifiers: letters, digits and '_', not starting with a digit")]
    message = item["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return [SpecError(f"'{field}': {message[:1].lower() + message[1:]}", at)]


def _show(value: Any) -> str:
    """A value as a message quotes it: YAML's words for null and booleans, long values cut short."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _registry(name: str) -> list[str]:
    from archgraph import ops, patterns

    table = {"edge_ops": ops.edge_ops, "blocks": ops.blocks, "patterns": patterns.patterns}[name]()
    return sorted(table)
