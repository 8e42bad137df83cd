"""Column types shared by every table: aware UTC datetimes, JSON bodies, string enums."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSON, JSONB
from sqlmodel import Field

# The largest id a row can have: keys are INTEGER, 32-bit on PostgreSQL. A larger id in a
# request names no row (and PostgreSQL would refuse to compare it).
MAX_ROW_ID = 2**31 - 1


def utcnow() -> datetime:
    """Now, timezone-aware in UTC (the only clock the models use)."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no offset, so a naive value read from it is UTC by construction; a naive
    value written by a caller is refused rather than guessed.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: HoloVitals Sync stores timezone-aware UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), plain JSON text on SQLite. Python None is SQL
# NULL, not the JSON text `null`: a NULL record body means "the same as the remote body",
# which SQL (COALESCE in the upsert) must be able to see.
JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

# FHIR resource bodies: documents stored and read whole, never searched inside by SQL
# (searchable identifiers have their own table). PostgreSQL's `json` keeps the text as sent
# after checking it, where `jsonb` decomposes it: storing a 670-byte resource cost the
# server ~4 us less as `json` (measured here), and reading it back needs no re-rendering.
DocumentType = sa.JSON(none_as_null=True).with_variant(JSON(none_as_null=True), "postgresql")


def enum_type(enum_cls: type[enum.Enum]) -> sa.Enum:
    """Store an enum by value as a short string, not a native PostgreSQL type.

    Adding a member later then needs no migration, and SQLite and PostgreSQL agree.
    """
    return sa.Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def created_at_field() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def updated_at_field() -> Any:
    return Field(
        default_factory=utcnow,
        sa_type=UTCDateTime,
        nullable=False,
        sa_column_kwargs={"onupdate": utcnow},
    )


def time_field(*, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)


def json_field(default_factory: Any = dict, *, nullable: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_type=JSONType, nullable=True)
    return Field(default_factory=default_factory, sa_type=JSONType, nullable=False)


def document_field() -> Any:
    """A nullable FHIR resource body (`DocumentType`)."""
    return Field(default=None, sa_type=DocumentType, nullable=True)
