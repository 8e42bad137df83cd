"""The audit log: every state change made by a person or a token."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from .enums import ActorKind
from .types import created_at_field, enum_type, json_field, time_field


class AuditLog(SQLModel, table=True):
    """Append-only and hash-chained: each row's hash covers its content and the previous hash,
    so an edited or deleted row breaks the chain (`holovitals-sync audit verify`)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_at", "at"),
        sa.Index("ix_audit_target", "target_type", "target_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)  # 1, 2, 3, ... with no gaps
    at: datetime = created_at_field()
    actor_kind: ActorKind = Field(sa_type=enum_type(ActorKind))
    actor: str = Field(max_length=200)  # username, token name or "system"
    action: str = Field(max_length=100)  # e.g. "job.cancel", "conflict.resolve"
    target_type: str | None = Field(default=None, max_length=64)
    target_id: str | None = Field(default=None, max_length=200)
    details: dict[str, Any] = json_field()  # ids and before/after of settings, never PHI
    ip: str | None = Field(default=None, max_length=64)
    outcome: str = Field(default="success", max_length=32)  # success, denied, failed
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64, unique=True)


class AuditAnchor(SQLModel, table=True):
    """The chain's latest position, outside the log: removing its last entries (or all of
    them) leaves the anchor pointing past the end. `mac` is keyed with the audit key, which
    the database does not hold, so the anchor cannot be moved back to match a truncated log.
    One row (id 1); writers take its row lock (the write lock on SQLite) before appending,
    which also serialises them."""

    __tablename__ = "audit_anchor"

    id: int | None = Field(default=None, primary_key=True)
    seq: int
    entry_hash: str = Field(max_length=64)
    keyed_from: int  # entries from here on are keyed (HMAC); older ones plain SHA-256
    mac: str | None = Field(default=None, max_length=64)
    updated_at: datetime | None = time_field()
