"""Which resolution strategy a conflict gets by default, per connection and resource type."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from .enums import ResolutionStrategy
from .types import created_at_field, enum_type, updated_at_field


class ConflictPolicy(SQLModel, table=True):
    """A default strategy; `connection_id` None is the global default for the type.

    A per-connection row overrides the global one; built-in defaults apply when neither
    exists (see `services.conflicts.policy`).
    """

    __tablename__ = "conflict_policy"
    __table_args__ = (
        sa.UniqueConstraint("connection_id", "resource_type", name="uq_conflict_policy_conn_type"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int | None = Field(
        default=None, foreign_key="ehr_connection.id", ondelete="CASCADE", nullable=True
    )
    resource_type: str = Field(max_length=64)
    strategy: ResolutionStrategy = Field(sa_type=enum_type(ResolutionStrategy))
    updated_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
