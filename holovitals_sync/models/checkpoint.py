"""Where the last sync of one resource type on one connection got to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from .types import json_field, time_field, updated_at_field


class SyncCheckpoint(SQLModel, table=True):
    __tablename__ = "sync_checkpoint"
    __table_args__ = (
        sa.UniqueConstraint("connection_id", "resource_type", name="uq_checkpoint_conn_type"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="ehr_connection.id", ondelete="CASCADE")
    resource_type: str = Field(max_length=64)
    # `_lastUpdated` high-water mark (ISO instant) for incremental search.
    cursor: str | None = Field(default=None, max_length=64)
    last_synced_at: datetime | None = time_field()
    # Bulk `$export` state: status URL, transactionTime (the next `_since`), files done.
    bulk_state: dict[str, Any] = json_field()
    updated_at: datetime = updated_at_field()
