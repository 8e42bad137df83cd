"""Identifiers of stored records, indexed: duplicate detection looks a value up instead of
reading every record of the type."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class RecordIdentifier(SQLModel, table=True):
    """One `identifier` (system + value) of one stored record of a checked type."""

    __tablename__ = "record_identifier"
    __table_args__ = (
        sa.UniqueConstraint("record_id", "system", "value", name="uq_record_identifier"),
        sa.Index(
            "ix_record_identifier_lookup", "connection_id", "resource_type", "system", "value"
        ),  # fmt: skip
    )

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="synced_record.id", ondelete="CASCADE")
    connection_id: int = Field(foreign_key="ehr_connection.id", ondelete="CASCADE")
    resource_type: str = Field(max_length=64)
    system: str = Field(max_length=500)
    value: str = Field(max_length=500)
