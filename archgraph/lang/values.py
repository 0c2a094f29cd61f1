"""Field types for spec models whose values may be parameter expressions.

A numeric or boolean field in a spec may hold either a literal (``channels: 64``)
or an expression over the spec's parameters (``channels: 2*width``). The
expression is evaluated by :mod:`archgraph.lang.expr` while pydantic validates,
with the parameters taken from the validation context, so an expression error
is reported at the field it came from like any other validation error.

Plain string fields (names, modes) are never evaluated.
"""

from __future__ import annotations

import keyword
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

from archgraph.errors import SpecError
from archgraph.lang import expr
from archgraph.lang.source import old_bool_hint
from archgraph.limits import MAX_VALUE


def _evaluate(value: Any, info: ValidationInfo) -> Any:
    """Evaluate ``value`` if it is an expression string; leave literals alone."""
    if isinstance(value, list):
        return [_evaluate(item, info) for item in value]
    if not isinstance(value, str):
        return value
    params = (info.context or {}).get("params", {})
    try:
        return expr.evaluate(value, params)
    except SpecError as error:
        raise PydanticCustomError(
            "expression", "{message}", {"message": error.message, "hint": error.hint}
        ) from None


_EXPRESSION = {"type": "string", "description": "an expression over the spec's params, e.g. '2*width'"}


def _expr_schema(literal: dict) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [literal, _EXPRESSION]})


Evaluated = BeforeValidator(_evaluate)


def _not_bool(value: Any) -> Any:
    """Integers only: pydantic would take ``true`` as 1 (the expression is evaluated first)."""
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "not an integer")
    return value


NotBool = BeforeValidator(_not_bool)  # listed before Evaluated: before-validators run last to first


def _boolean(value: Any, info: ValidationInfo) -> Any:
    """A literal or an expression whose value is true or false, and nothing that pydantic would take for one.

    ``yes`` (a string in YAML 1.2) is reported as such, not as an expression naming an unknown
    parameter; and a string that an expression gives (a parameter declared ``deep: no``) is refused
    rather than read as pydantic reads ``'no'``, ``'on'`` or ``'1'``.
    """
    hint = old_bool_hint(value)
    if hint and value not in (info.context or {}).get("params", {}):
        raise PydanticCustomError("bool_parsing", "not a boolean", {"hint": hint})
    value = _evaluate(value, info)
    if isinstance(value, str):
        raise PydanticCustomError("bool_parsing", "not a boolean", {"value": value, "hint": old_bool_hint(value)})
    return value


def _within(low: int) -> AfterValidator:
    """``low <= value <= MAX_VALUE``; the error carries the value, which an expression computed."""

    def check(value: int) -> int:
        if value < low:
            raise PydanticCustomError("greater_than_equal", "too small", {"ge": low, "value": value})
        if value > MAX_VALUE:
            raise PydanticCustomError("less_than_equal", "too large", {"le": MAX_VALUE, "value": value})
        return value

    return AfterValidator(check)


# every count and size a spec writes is at most MAX_VALUE (2**16): channels, strides, kernels, repeats, ...
_POSITIVE = {"type": "integer", "minimum": 1, "maximum": MAX_VALUE}

Int = Annotated[int, NotBool, Evaluated, _expr_schema({"type": "integer"})]
PosInt = Annotated[int, NotBool, Evaluated, _within(1), _expr_schema(_POSITIVE)]
NonNegInt = Annotated[int, NotBool, Evaluated, _within(0),
                      _expr_schema({"type": "integer", "minimum": 0, "maximum": MAX_VALUE})]
Float = Annotated[float, Evaluated, _expr_schema({"type": "number"})]
Bool = Annotated[bool, BeforeValidator(_boolean), _expr_schema({"type": "boolean"})]
PosIntList = Annotated[
    list[Annotated[int, NotBool, _within(1)]],
    Evaluated,
    _expr_schema({"type": "array", "items": {"anyOf": [_POSITIVE, _EXPRESSION]}}),
]


def Choice(*options: str) -> Any:
    """A string field with fixed options that may also be chosen by an expression.

    ``mode: bilinear`` is taken literally; ``mode: "'bilinear' if head == 'seg' else 'nearest'"``
    is evaluated, and its value must be one of the options.
    """

    def evaluate_unless_option(value: Any, info: ValidationInfo) -> Any:
        if value in options:
            return value
        if isinstance(value, str) and value.isidentifier() and value not in (info.context or {}).get("params", {}):
            # a misspelt option, not an expression
            raise PydanticCustomError("choice", "not one of the options", {"options": list(options)})
        return _evaluate(value, info)

    return Annotated[
        Literal[options],  # type: ignore[valid-type]
        BeforeValidator(evaluate_unless_option),
        WithJsonSchema({"anyOf": [{"enum": list(options)}, _EXPRESSION]}),
    ]


def _not_keyword(name: str) -> str:
    if keyword.iskeyword(name):
        raise ValueError(f"'{name}' is a Python keyword and cannot be a name")
    return name


Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64),
    AfterValidator(_not_keyword),
    Field(description="an identifier: letters, digits and '_', not starting with a digit"),
]

_NAME_SCHEMA = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}

# one node name or a list of them; in `from:` a pattern's name stands for its outputs
Sources = Annotated[
    list[Name],
    BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
    WithJsonSchema({"anyOf": [_NAME_SCHEMA, {"type": "array", "items": _NAME_SCHEMA}]}),
]
Size = Annotated[
    tuple[PosInt, PosInt],
    Evaluated,
    WithJsonSchema({"anyOf": [{"type": "array", "minItems": 2, "maxItems": 2,
                               "items": {"anyOf": [_POSITIVE, _EXPRESSION]}},
                              _EXPRESSION]}),
]


def require_tag(field: str):
    """A ``json_schema_extra`` hook: the tag field is required in the schema unless it has a
    default that dispatch relies on (``op: identity``), so that editors can tell the union apart."""

    def hook(schema: dict, cls: type) -> None:
        if cls.model_fields[field].default != getattr(cls, "untagged_default", None):
            schema.setdefault("required", []).append(field)

    return hook
