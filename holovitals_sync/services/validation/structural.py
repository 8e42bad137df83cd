"""Structural FHIR R4 validation with `fhir.resources` (its R4B models, close to R4).

It costs a few hundred microseconds per resource, so the batch validator makes it
optional. Messages come from the pydantic error *type*, never from pydantic's text or
input, which may quote the value (PHI).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from .issues import Layer, ValidationIssue, identity

_MESSAGES = {
    "missing": "required element is missing",
    "extra_forbidden": "element is not defined for this resource type",
    "string_type": "must be a string",
    "bool_type": "must be a boolean",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "float_type": "must be a number",
    "decimal_type": "must be a decimal",
    "list_type": "must be an array",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "literal_error": "is not one of the allowed codes",
    "enum": "is not one of the allowed codes",
    "string_pattern_mismatch": "does not match the FHIR format for its datatype",
    "string_too_short": "must not be empty",
}


@lru_cache(maxsize=256)  # bounded: resourceType comes from remote data
def _model(resource_type: str) -> Any | None:
    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, AttributeError):
        return None


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "value_error":
        return "value is not valid for its FHIR datatype"
    return f"invalid ({kind})"


def _path(loc: tuple[Any, ...]) -> str | None:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part) != "__root__":
            out += ("." if out else "") + str(part)
    return out or None


def validate_structure(resource: Any) -> list[ValidationIssue]:
    """Issues of one resource against its FHIR R4 model (empty when it conforms)."""
    rtype, rid = identity(resource)
    model = _model(rtype)
    if model is None:
        return [
            ValidationIssue(
                rtype, rid, "resourceType", "unknown FHIR resource type", Layer.STRUCTURE
            )
        ]
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return [
            ValidationIssue(rtype, rid, _path(err["loc"]), _message(err), Layer.STRUCTURE)
            for err in exc.errors(include_input=False, include_url=False)
        ]
    except Exception:  # fhir_core raises plain errors for some malformed input
        return [ValidationIssue(rtype, rid, None, "resource could not be parsed", Layer.STRUCTURE)]
    return []
