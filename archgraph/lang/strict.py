"""The base of every spec object: unknown keys are errors, and they do not hide other errors."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError


class Strict(BaseModel):
    """A frozen pydantic model that reports unknown keys with the names it does know.

    Pydantic's own ``extra="forbid"`` cannot say which keys were allowed (for a
    did-you-mean), so unknown keys are reported here as ``unknown_keys`` errors,
    together with every error in the rest of the object.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="wrap")
    @classmethod
    def _reject_unknown_keys(cls, data: Any, handler: Any) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        fields = cls.model_fields
        known = _known(cls, fields)
        unknown = [key for key in data if key not in known]
        if not unknown:
            return handler(data)
        allowed = sorted(f.alias or name for name, f in fields.items())
        errors = [
            InitErrorDetails(
                type=PydanticCustomError("unknown_keys", "unknown key {key}", {"key": key, "allowed": allowed}),
                loc=(key,),
                input=data[key],
            )
            for key in unknown
        ]
        # a misspelt key also leaves its field missing: one error says both
        meant = {close for key in unknown for close in difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)}
        try:
            handler({k: v for k, v in data.items() if k not in unknown})
        except ValidationError as error:
            errors += [
                InitErrorDetails(
                    type=PydanticCustomError(e["type"], e["msg"], e.get("ctx")), loc=e["loc"], input=e["input"]
                )
                for e in error.errors()
                if not (e["type"] == "missing" and len(e["loc"]) == 1 and e["loc"][0] in meant)
            ]
        raise ValidationError.from_exception_data(cls.__name__, errors)


_KNOWN: dict[type, tuple[Any, frozenset[str]]] = {}  # a model class -> (its fields, their names and aliases)


def _known(cls: type, fields: dict[str, Any]) -> frozenset[str]:
    """The keys ``cls`` accepts, worked out once per class (every object of every spec is checked)."""
    cached = _KNOWN.get(cls)
    if cached is None or cached[0] is not fields:  # (a class whose fields were rebuilt since)
        cached = _KNOWN[cls] = (fields, frozenset(fields) | {f.alias for f in fields.values() if f.alias})
    return cached[1]
