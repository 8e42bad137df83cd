"""Statistics for the dashboard and `GET /api/sync/statistics`.

Queue figures come from RQ's registries (the truth for what is waiting and running right
now); job and record figures come from the database.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from redis import Redis
from rq import Queue
from rq.utils import current_timestamp
from sqlmodel import Session, func, select

from ...config import QUEUE_FAMILIES, get_settings
from ...models import EHRConnection, JobStatus, SyncedRecord, SyncJob
from ...models.types import utcnow

WINDOW = timedelta(hours=1)
# Averages over the most recent completed jobs keep the query bounded on a busy install.
DURATION_SAMPLE = 1000
REGISTRY_KINDS = ("waiting", "scheduled", "running", "completed", "failed")


def queue_stats(redis: Redis) -> dict[str, dict[str, int]]:
    """Per queue family: waiting, scheduled, running, completed, failed (one round trip).

    Entries past their expiry are not counted, as RQ's `count` would after its cleanup;
    the cleanup itself (retrying abandoned jobs) is the workers' maintenance, not a read's:
    the dashboard asks on every burst of job events, and one registry at a time it was
    five round trips per queue.
    """
    settings = get_settings()
    now = current_timestamp()
    pipe = redis.pipeline(transaction=False)
    layout: list[tuple[str, str]] = []
    for family in QUEUE_FAMILIES:
        for name in settings.queue_names(family):
            queue = Queue(name, connection=redis)
            pipe.llen(queue.key)
            pipe.zcard(queue.scheduled_job_registry.key)  # scored by when, not expiry
            for registry in (
                queue.started_job_registry,
                queue.finished_job_registry,
                queue.failed_job_registry,
            ):
                pipe.zcount(registry.key, f"({now}", "+inf")
            layout += [(family, kind) for kind in REGISTRY_KINDS]
    out: dict[str, Counter[str]] = {family: Counter() for family in QUEUE_FAMILIES}
    for (family, kind), count in zip(layout, pipe.execute(), strict=True):
        out[family][kind] += int(count)
    return {
        family: {kind: totals[kind] for kind in REGISTRY_KINDS} for family, totals in out.items()
    }


def _completed_since(session: Session, since: datetime | None, limit: int | None = None):
    query = select(
        SyncJob.connection_id, SyncJob.started_at, SyncJob.finished_at, SyncJob.fetched
    ).where(SyncJob.status == JobStatus.COMPLETED)
    if since is not None:
        query = query.where(SyncJob.finished_at >= since)
    query = query.order_by(SyncJob.finished_at.desc())
    return list(session.exec(query.limit(limit) if limit else query))


def average_duration(session: Session) -> float | None:
    """Mean seconds from first start to completion over recent completed jobs."""
    rows = _completed_since(session, None, DURATION_SAMPLE)
    spans = [(f - s).total_seconds() for _, s, f, _ in rows if s and f]
    return round(sum(spans) / len(spans), 3) if spans else None


def throughput(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Resources fetched per minute by jobs completed in the last hour (oldest first)."""
    per_minute: Counter[str] = Counter()
    for _, _, finished, fetched in _completed_since(session, now - WINDOW):
        per_minute[finished.replace(second=0, microsecond=0).isoformat()] += fetched
    return [{"minute": m, "resources": n} for m, n in sorted(per_minute.items())]


def connection_lag(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Per connection: the last successful sync and how long ago it was."""
    last = dict(
        session.exec(
            select(SyncJob.connection_id, func.max(SyncJob.finished_at))
            .where(SyncJob.status == JobStatus.COMPLETED)
            .group_by(SyncJob.connection_id)
        ).all()
    )
    out = []
    for conn_id, name in session.exec(
        select(EHRConnection.id, EHRConnection.name).order_by(EHRConnection.id)
    ):
        success = last.get(conn_id)  # max() keeps the column type: aware UTC
        lag = round((now - success).total_seconds(), 1) if success else None
        out.append(
            {
                "connection_id": conn_id,
                "name": name,
                "last_success": success.isoformat() if success else None,
                "lag_seconds": lag,
            }
        )
    return out


def collect(session: Session, redis: Redis, now: datetime | None = None) -> dict[str, Any]:
    """Everything the statistics view shows."""
    now = now or utcnow()
    by_status = dict(
        session.exec(select(SyncJob.status, func.count()).group_by(SyncJob.status)).all()
    )
    records = session.exec(
        select(func.count()).select_from(SyncedRecord).where(SyncedRecord.deleted == sa.false())
    ).one()
    per_minute = throughput(session, now)
    return {
        "queues": queue_stats(redis),
        "jobs": {status.value: int(by_status.get(status, 0)) for status in JobStatus},
        "records_synced": int(records),
        "average_duration_seconds": average_duration(session),
        "throughput_per_minute": per_minute,
        "resources_last_hour": sum(p["resources"] for p in per_minute),
        "connections": connection_lag(session, now),
        "generated_at": now.isoformat(),
    }
