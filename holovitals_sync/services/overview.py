"""Read-only summaries for the dashboard pages (ids, names and states; never PHI).

These grow into the connection, webhook, conflict and audit services of later issues.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import SQLModel, select

from ..db import session_scope
from ..models import AuditLog, Conflict, ConflictStatus, EHRConnection, WebhookSubscription

Row = dict[str, str]


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _rows(
    model: type[SQLModel], order: sa.ColumnElement, to_row: Callable, where=None, limit: int = 50
) -> list[Row]:
    query = select(model).order_by(order).limit(limit)
    if where is not None:
        query = query.where(where)
    with session_scope() as session:
        return [to_row(item) for item in session.exec(query)]


def list_connections(limit: int = 50) -> list[Row]:
    """Connections by name."""
    return _rows(
        EHRConnection,
        EHRConnection.name,
        lambda c: {
            "id": str(c.id),
            "name": c.name,
            "vendor": c.vendor.value,
            "status": c.status.value,
            "last_synced": _when(c.last_synced_at),
        },
        limit=limit,
    )


def list_subscriptions(limit: int = 50) -> list[Row]:
    """Outbound webhook subscriptions, newest first (the secret is never read here)."""
    return _rows(
        WebhookSubscription,
        WebhookSubscription.id.desc(),
        lambda s: {
            "id": str(s.id),
            "name": s.name,
            "url": s.url,
            "active": "yes" if s.active else "no",
            "failure_streak": str(s.failure_streak),
        },
        limit=limit,
    )


def list_open_conflicts(limit: int = 50) -> list[Row]:
    """Open conflicts, newest first."""
    return _rows(
        Conflict,
        Conflict.created_at.desc(),
        lambda c: {
            "id": str(c.id),
            "resource_type": c.resource_type,
            "severity": c.severity.value,
            "fields": ", ".join(c.fields),
            "created": _when(c.created_at),
        },
        where=Conflict.status == ConflictStatus.OPEN,
        limit=limit,
    )


def list_audit(limit: int = 100) -> list[Row]:
    """The newest audit entries."""
    return _rows(
        AuditLog,
        AuditLog.at.desc(),
        lambda a: {
            "at": _when(a.at),
            "actor": a.actor,
            "action": a.action,
            "target": f"{a.target_type or ''} {a.target_id or ''}".strip(),
        },
        limit=limit,
    )
