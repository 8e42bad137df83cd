"""Transformation rules, applied in order per connection and resource type."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from .enums import RuleDirection, TransformKind
from .types import created_at_field, enum_type, json_field, updated_at_field


class TransformationRule(SQLModel, table=True):
    __tablename__ = "transformation_rule"
    __table_args__ = (
        # The sync loop loads a connection's rules for one resource type, in order.
        sa.Index("ix_rule_conn_type_pos", "connection_id", "resource_type", "position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # None: applies to every connection.
    connection_id: int | None = Field(
        default=None, foreign_key="ehr_connection.id", ondelete="CASCADE"
    )
    resource_type: str = Field(max_length=64)  # "*" for all types
    kind: TransformKind = Field(sa_type=enum_type(TransformKind))
    params: dict[str, Any] = json_field()
    position: int = 0
    enabled: bool = True
    direction: RuleDirection = Field(
        default=RuleDirection.INBOUND, sa_type=enum_type(RuleDirection)
    )
    description: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
