"""A spec's parameters: declared defaults, overridden from the CLI (``--set``) or the API."""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import TypeAdapter, ValidationError

from archgraph.errors import Loc, SpecError, did_you_mean, raise_all, shorten
from archgraph.lang.source import Source, old_bool_hint, scalar
from archgraph.spec.errors import spec_errors
from archgraph.lang.values import Name
from archgraph.spec.model import ParamDecl, ParamValue

_DECLS = TypeAdapter(dict[Name, ParamValue])


def parse_override(text: str, where: Loc = Loc("<command line>")) -> tuple[str, Any]:  # noqa: B008
    """``'width=48'`` -> ``('width', 48)``; the value is read as a spec's YAML scalar (YAML 1.2's core schema).

    A value that is no boolean, number or string there (null, a list, broken YAML) is kept as the text written.
    """
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise SpecError(f"--set expects NAME=VALUE, got {shorten(text)!r}", where, "for example --set width=48")
    try:
        parsed = scalar(value, where.file) if value.strip() else ""
    except SpecError:
        parsed = value
    if not isinstance(parsed, (bool, int, float, str)):
        parsed = value
    return name.strip(), parsed


def resolve(source: Source, overrides: Mapping[str, Any], where: Loc = Loc("<parameters>")) -> dict[str, Any]:
    """The parameter values: each declared default, replaced by its override if given."""
    raw = source.data.get("params", {}) if isinstance(source.data, dict) else {}
    try:
        decls = _DECLS.validate_python(raw if raw is not None else {})
    except ValidationError as error:
        raise_all(spec_errors(error, source, ("params",), raw))
        raise
    values: dict[str, Any] = {}
    choices: dict[str, list | None] = {}
    for name, decl in decls.items():
        decl = decl if isinstance(decl, ParamDecl) else ParamDecl(default=decl)
        values[name], choices[name] = decl.default, decl.choices
        if decl.choices is not None and decl.default not in decl.choices:
            raise SpecError(f"default {decl.default!r} of '{name}' is not among its choices",
                            source.loc(("params", name)), f"choices: {decl.choices}")
    errors = []
    for name, value in overrides.items():
        if name not in values:
            hint = did_you_mean(name, values) or (f"parameters: {', '.join(values)}" if values else "it has none")
            errors.append(SpecError(f"unknown parameter '{shorten(name)}' for {source.file}", where, hint))
            continue
        default = values[name]
        if isinstance(default, bool) != isinstance(value, bool) or (
            not isinstance(value, type(default)) and not (isinstance(default, float) and isinstance(value, int))
        ):
            kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}[type(default)]
            hint = old_bool_hint(value) if isinstance(default, bool) else None
            errors.append(SpecError(f"parameter '{name}' takes {kind}, got {shorten(repr(value))}", where, hint))
            continue
        allowed = choices[name]
        if allowed is not None and value not in allowed:
            hint = did_you_mean(str(value), [str(c) for c in allowed]) or f"choices: {allowed}"
            errors.append(SpecError(f"parameter '{name}' cannot be {shorten(repr(value))}", where, hint))
            continue
        values[name] = value
    raise_all(errors)
    return values
