"""Reading and acknowledging alerts (the API and the dashboard use these)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ...models import Alert, AlertStatus
from ...models.types import utcnow
from .. import audit
from .publish import publish

MAX_LIMIT = 500


class AlertNotFound(LookupError):
    """No alert with that id."""


class AlertClosed(ValueError):
    """A closed alert cannot be acknowledged any more."""


def list_alerts(
    session: Session, *, status: AlertStatus | None = None, offset: int = 0, limit: int = 50
) -> list[Alert]:
    """Alerts newest first, optionally of one status; `limit` is capped at 500."""
    query = select(Alert).order_by(Alert.raised_at.desc(), Alert.id.desc())  # type: ignore[attr-defined]
    if status is not None:
        query = query.where(Alert.status == status)
    offset, limit = max(offset, 0), min(max(limit, 1), MAX_LIMIT)
    return list(session.exec(query.offset(offset).limit(limit)))


def count_open(session: Session) -> int:
    """Alerts not yet acknowledged: what the dashboard's banner shows."""
    query = select(sa.func.count()).select_from(Alert).where(Alert.status == AlertStatus.OPEN)
    return int(session.exec(query).one())


def acknowledge(session: Session, *, alert_id: int, actor: audit.Actor, redis: Any = None) -> Alert:
    """An operator has seen the alert: it stays active until its condition clears.

    Audited and committed. Acknowledging an acknowledged alert changes nothing.

    Raises:
        AlertNotFound: unknown id.
        AlertClosed: the condition has already cleared.
    """
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertNotFound(alert_id)
    if alert.status == AlertStatus.CLOSED:
        raise AlertClosed("this alert has closed already")
    if alert.status == AlertStatus.ACKNOWLEDGED:
        return alert
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at, alert.acknowledged_by = utcnow(), actor.name
    session.add(alert)
    audit.record(
        session,
        actor=actor,
        action="alert.acknowledge",
        target_type="alert",
        target_id=alert.id,
        details={"kind": alert.kind.value},
    )
    session.commit()
    publish(redis, alert, "acknowledged")
    return alert
