"""Partial updates (PATCH bodies): a field left out keeps its value; `null` clears a field
only where clearing means something.

`{"name": null}` once reached a NOT NULL column and answered 500 on twenty field and route
combinations. A patch model lists the fields `null` may clear in `NULLABLE`; for every other
field an explicit `null` is refused with a message naming it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ValidationInfo, field_validator


class Patch(BaseModel):
    """Base of the PATCH bodies: explicit nulls only where `NULLABLE` allows them."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.NULLABLE:
            raise ValueError("cannot be null: leave the field out to keep its value")
        return value
