"""Inbound webhook counts per connection: accepted, processed, duplicates, rejections."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from ...models import EHRConnection, InboundEvent, InboundStatus
from . import rejections
from .notifications import HOUSEKEEPING


class InboundStats(BaseModel):
    """One connection's inbound events (connection_id None: unknown connections)."""

    connection_id: int | None
    connection_name: str | None
    inbound_auth: str | None
    by_status: dict[str, int] = Field(default_factory=dict)
    housekeeping: int = 0  # handshakes and heartbeats acknowledged
    rejections: dict[str, int] = Field(default_factory=dict)  # reason -> count
    # The newest refusals (time, kind, reason), a bounded sample kept for a few days.
    recent_rejections: list[dict[str, Any]] = Field(default_factory=list)
    last_received_at: datetime | None = None


def inbound_stats(session: Session) -> list[InboundStats]:
    """Counts per connection, every connection listed (with zeros), unknown ones last."""
    out: dict[int | None, InboundStats] = {
        c.id: InboundStats(connection_id=c.id, connection_name=c.name, inbound_auth=c.inbound_auth)
        for c in session.exec(select(EHRConnection).order_by(EHRConnection.name))
    }
    cid, status = InboundEvent.connection_id, InboundEvent.status
    count, last = sa.func.count(), sa.func.max(InboundEvent.received_at)
    for connection_id, state, n, at in session.exec(
        select(cid, status, count, last).group_by(cid, status)
    ):
        stats = out.setdefault(
            connection_id,
            InboundStats(connection_id=connection_id, connection_name=None, inbound_auth=None),
        )
        stats.by_status[InboundStatus(state).value] = n
        if at is not None and (stats.last_received_at is None or at > stats.last_received_at):
            stats.last_received_at = at
    for row in rejections.counts(session):
        connection_id = row.connection_id or None
        stats = out.setdefault(
            connection_id,
            InboundStats(connection_id=connection_id, connection_name=None, inbound_auth=None),
        )
        stats.by_status[row.status] = stats.by_status.get(row.status, 0) + row.count
        stats.rejections[row.reason] = stats.rejections.get(row.reason, 0) + row.count
        if stats.last_received_at is None or row.last_at > stats.last_received_at:
            stats.last_received_at = row.last_at
    for stats in out.values():
        stats.recent_rejections = rejections.recent(stats.connection_id)
    kinds = (
        select(cid, count)
        .where(
            InboundEvent.event_type.in_(sorted(HOUSEKEEPING))  # type: ignore[union-attr]
        )
        .group_by(cid)
    )
    for connection_id, n in session.exec(kinds):
        out[connection_id].housekeeping = n
    return sorted(out.values(), key=lambda s: (s.connection_id is None, s.connection_name or ""))
