"""Alerts: list them (viewer), acknowledge one (operator), threshold overrides (admin)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from ..config import get_settings
from ..models import Alert, AlertKind, AlertStatus, EHRConnection, Severity
from ..services import alerts as service
from .deps import Admin, Operator, SessionDep, Viewer
from .strict import strict_body

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


class AlertOut(BaseModel):
    id: int
    kind: AlertKind
    severity: Severity
    connection_id: int | None
    queue: str | None
    subject: str
    message: str
    status: AlertStatus
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    closed_at: datetime | None
    occurrences: int
    last_seen_at: datetime

    @classmethod
    def of(cls, row: Alert) -> AlertOut:
        return cls.model_validate(row, from_attributes=True)


class AlertPage(BaseModel):
    items: list[AlertOut]
    offset: int
    limit: int
    next_offset: int | None  # None on the last page
    open_count: int  # open (unacknowledged) alerts overall: the dashboard's banner


class ThresholdOut(BaseModel):
    kind: AlertKind
    connection_id: int | None
    queue: str | None
    value: float


class ThresholdsOut(BaseModel):
    defaults: dict[str, float]  # kind -> the HOLOVITALS_ALERT_* setting
    overrides: list[ThresholdOut]


class ThresholdIn(BaseModel):
    kind: AlertKind
    connection_id: int | None = None  # either a connection ...
    queue: str | None = Field(default=None, max_length=64)  # ... or a queue family
    value: float | None = Field(gt=0)  # null removes the override


ThresholdBody = strict_body(ThresholdIn)


@router.get("/thresholds", response_model=ThresholdsOut)
def thresholds(_viewer: Viewer, session: SessionDep) -> ThresholdsOut:
    """The defaults (settings) and every per-connection or per-queue override."""
    rows = service.list_overrides(session)
    return ThresholdsOut(
        defaults=service.defaults(get_settings()),
        overrides=[ThresholdOut.model_validate(r, from_attributes=True) for r in rows],
    )


@router.put("/thresholds", response_model=ThresholdsOut)
def put_threshold(body: ThresholdBody, admin: Admin, session: SessionDep) -> ThresholdsOut:
    """Set (or with value null remove) one override for a connection or a queue family."""
    if body.connection_id is not None and session.get(EHRConnection, body.connection_id) is None:
        raise HTTPException(404, "connection not found")
    try:
        service.set_threshold(
            session,
            kind=body.kind,
            value=body.value,
            connection_id=body.connection_id,
            queue=body.queue,
            actor=admin.actor,
        )
    except service.InvalidThreshold as exc:
        raise HTTPException(422, str(exc)) from None
    return thresholds(admin, session)


@router.get("", response_model=AlertPage)
def list_alerts(
    _viewer: Viewer,
    session: SessionDep,
    status: AlertStatus | None = None,
    offset: int = Query(0, ge=0, le=1_000_000),
    limit: int = Query(50, ge=1, le=500),
) -> AlertPage:
    """Alerts newest first, optionally of one status (open, acknowledged, closed)."""
    rows = service.list_alerts(session, status=status, offset=offset, limit=limit + 1)
    more = len(rows) > limit
    return AlertPage(
        items=[AlertOut.of(r) for r in rows[:limit]],
        offset=offset,
        limit=limit,
        next_offset=offset + limit if more else None,
        open_count=service.count_open(session),
    )


@router.post("/{alert_id}/acknowledge", response_model=AlertOut)
def acknowledge(alert_id: int, operator: Operator, session: SessionDep) -> AlertOut:
    """Mark an open alert as seen; it closes by itself when its condition clears."""
    try:
        row = service.acknowledge(session, alert_id=alert_id, actor=operator.actor)
    except service.AlertNotFound:
        raise HTTPException(404, "no such alert") from None
    except service.AlertClosed as exc:
        raise HTTPException(409, str(exc)) from None
    return AlertOut.of(row)
