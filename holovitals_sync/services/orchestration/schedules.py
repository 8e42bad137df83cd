"""Per-connection schedules: an incremental sync on the connection's cron expression.

`tick()` runs every few seconds in every sync worker's maintenance (and may run anywhere
else too): for each connection whose latest cron time has passed, it claims that time slot
in Redis with SET NX, so however many schedulers tick, one job is created per slot.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from croniter import croniter
from sqlmodel import Session, select

from ...db import session_scope
from ...models import (
    ConnectionStatus,
    EHRConnection,
    JobType,
    RequesterKind,
    SyncJob,
)
from ...models.types import utcnow
from .. import audit
from . import queueing
from .lifecycle import ACTIVE

log = logging.getLogger(__name__)

# A slot missed by longer than this (no scheduler was running) is skipped, not back-filled.
MISFIRE_GRACE = timedelta(minutes=5)
SLOT_KEY = "holovitals:schedule:{connection_id}:{slot}"
SCHEDULER = audit.Actor.system("scheduler")


def last_due(expression: str, now: datetime) -> datetime:
    """The most recent cron time at or before `now`."""
    return croniter(expression, now + timedelta(seconds=1)).get_prev(datetime)


def next_due(expression: str, now: datetime) -> datetime:
    """The next cron time after `now` (shown in the UI)."""
    return croniter(expression, now).get_next(datetime)


def _busy(session: Session, connection_id: int) -> bool:
    """An incremental job of this connection is still waiting or running."""
    query = select(SyncJob.id).where(SyncJob.connection_id == connection_id,
                                     SyncJob.job_type == JobType.INCREMENTAL,
                                     SyncJob.status.in_(ACTIVE))
    return session.exec(query).first() is not None


def _claim(connection_id: int, slot: datetime) -> bool:
    key = SLOT_KEY.format(connection_id=connection_id, slot=int(slot.timestamp()))
    return bool(queueing.redis_connection().set(key, "1", nx=True, ex=86_400))


def tick(now: datetime | None = None) -> int:
    """Start the incremental syncs that are due; returns how many were started."""
    from .service import JobRequest, start_job

    now = now or utcnow()
    started = 0
    with session_scope() as session:
        rows = session.exec(select(EHRConnection).where(
            EHRConnection.sync_schedule.is_not(None),
            EHRConnection.status != ConnectionStatus.PAUSED))
        for connection in list(rows):
            slot = last_due(str(connection.sync_schedule), now)
            if now - slot > MISFIRE_GRACE or slot < connection.created_at:
                continue
            if _busy(session, connection.id) or not _claim(connection.id, slot):
                continue
            request = JobRequest(connection_id=connection.id, job_type=JobType.INCREMENTAL)
            start_job(session, request=request, requested_by_kind=RequesterKind.SCHEDULE,
                      requested_by=f"cron {connection.sync_schedule}", actor=SCHEDULER)
            started += 1
    if started:
        log.info("schedules: %d incremental sync(s) started", started)
    return started
