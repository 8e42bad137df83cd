"""Strict scalars for JSON request bodies: `true` is not 1, `"5"` is not 5, `1` is not true.

Pydantic's lax mode turns a JSON boolean into an integer (`expires_in_days: true` means 1 day)
and "yes" into true. A whole model in strict mode would also refuse enum values and
timestamps given as JSON strings (FastAPI validates the parsed JSON as Python objects), so
only the scalar fields are made strict: int, float and bool, also inside optionals, lists and
nested models. Strings are strict in pydantic already.

`strict_body(Model)` is a subclass used as the route's body type only: the services (and the
dashboard, whose form values arrive as strings) keep validating with the lax original.
"""

from __future__ import annotations

import types
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Strict, create_model

_SCALARS = (bool, int, float)


def _strict(annotation: Any) -> Any:
    """The annotation with every scalar in it made strict (unchanged if it has none)."""
    if annotation in _SCALARS:
        return Annotated[annotation, Strict()]
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = tuple(_strict(a) for a in get_args(annotation))
        return Union[args] if args != get_args(annotation) else annotation  # noqa: UP007
    if origin is list and get_args(annotation):
        (item,) = get_args(annotation)
        return list[_strict(item)] if _strict(item) is not item else annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return strict_body(annotation)
    return annotation


@cache
def strict_body(model: type[BaseModel]) -> type[BaseModel]:
    """`model` with strict scalar fields, under the same name (so OpenAPI is unchanged)."""
    overrides: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        strict = _strict(info.annotation)
        if strict is not info.annotation:
            overrides[name] = (strict, info)
    if not overrides:
        return model
    return create_model(
        model.__name__,
        __base__=model,
        __module__=model.__module__,
        __doc__=model.__doc__,
        **overrides,
    )
