"""Per-connection schedules: an incremental sync and an id sweep, each on its own cron.

The sweep (`sweep_schedule`, nightly by default) runs only for active connections that have
synced before: it looks for records the EHR deleted, and a connection with nothing stored
has nothing to lose.

`tick()` runs every few seconds in every sync worker's maintenance (and may run anywhere
else too): for each connection whose latest cron time has passed, it claims that time slot
in Redis with SET NX, so however many schedulers tick, one job is created per slot.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from croniter import croniter
from sqlmodel import Session, select

from ...db import session_scope
from ...models import (
    ConnectionStatus,
    EHRConnection,
    JobType,
    Priority,
    RequesterKind,
    SyncJob,
)
from ...models.types import utcnow
from .. import audit
from ..platform.redis import redis_connection
from .lifecycle import ACTIVE

log = logging.getLogger(__name__)

# A slot missed by longer than this (no scheduler was running) is skipped, not back-filled.
MISFIRE_GRACE = timedelta(minutes=5)
SLOT_KEY = "holovitals:schedule:{connection_id}:{kind}:{slot}"
SCHEDULER = audit.Actor.system("scheduler")


def last_due(expression: str, now: datetime) -> datetime:
    """The most recent cron time at or before `now`."""
    return croniter(expression, now + timedelta(seconds=1)).get_prev(datetime)


def next_due(expression: str, now: datetime) -> datetime:
    """The next cron time after `now` (shown in the UI)."""
    return croniter(expression, now).get_next(datetime)


def _busy(session: Session, connection_id: int, job_type: JobType) -> bool:
    """A job of this type and connection is still waiting or running."""
    query = select(SyncJob.id).where(
        SyncJob.connection_id == connection_id,
        SyncJob.job_type == job_type,
        SyncJob.status.in_(ACTIVE),
    )
    return session.exec(query).first() is not None


def _claim(connection_id: int, job_type: JobType, slot: datetime) -> bool:
    key = SLOT_KEY.format(
        connection_id=connection_id, kind=job_type.value, slot=int(slot.timestamp())
    )
    return bool(redis_connection().set(key, "1", nx=True, ex=86_400))


def _due(connection: EHRConnection, job_type: JobType) -> str | None:
    """The connection's cron expression for this kind of job, if it runs now at all."""
    if job_type is JobType.SWEEP:
        live = connection.status is ConnectionStatus.ACTIVE and connection.last_synced_at
        return connection.sweep_schedule if live else None
    return connection.sync_schedule


def tick(now: datetime | None = None) -> int:
    """Start the incremental syncs and id sweeps that are due; returns how many started."""
    from .service import JobRequest, start_job

    now = now or utcnow()
    started = 0
    with session_scope() as session:
        rows = session.exec(
            select(EHRConnection).where(
                sa.or_(
                    EHRConnection.sync_schedule.is_not(None),
                    EHRConnection.sweep_schedule.is_not(None),
                ),
                EHRConnection.status != ConnectionStatus.PAUSED,
            )
        )
        for connection in list(rows):
            for job_type, priority in (
                (JobType.INCREMENTAL, Priority.DEFAULT),
                (JobType.SWEEP, Priority.LOW),
            ):
                expression = _due(connection, job_type)
                if expression is None:
                    continue
                slot = last_due(expression, now)
                if now - slot > MISFIRE_GRACE or slot < connection.created_at:
                    continue
                if _busy(session, connection.id, job_type) or not _claim(
                    connection.id, job_type, slot
                ):
                    continue
                request = JobRequest(
                    connection_id=connection.id, job_type=job_type, priority=priority
                )
                start_job(
                    session,
                    request=request,
                    requested_by_kind=RequesterKind.SCHEDULE,
                    requested_by=f"cron {expression}",
                    actor=SCHEDULER,
                )
                started += 1
    if started:
        log.info("schedules: %d scheduled job(s) started", started)
    return started
