"""State changes of a SyncJob row, kept consistent with its RQ job.

Every write a running job makes goes through `fence`: an UPDATE guarded by the row's status
and attempt number. A run that was cancelled, or superseded by a newer attempt (a worker
thought dead that is in fact still running), finds the guard false and stops, so two runs
never both advance one job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ...models import JOB_COUNTERS, JobStatus, JobType, SyncCheckpoint, SyncJob
from ...models.types import utcnow

ACTIVE = (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.RUNNING)
COUNTERS = JOB_COUNTERS


class RunStopped(Exception):
    """The run may not go on: the job was cancelled or another attempt owns it."""


def connection_cursor(session: Session, connection_id: int) -> dict[str, str]:
    """The connection's `_lastUpdated` high-water marks, type -> instant."""
    rows = session.exec(select(SyncCheckpoint).where(SyncCheckpoint.connection_id == connection_id))
    return {row.resource_type: row.cursor for row in rows if row.cursor}


def begin_run(session: Session, *, job_id: int, rq_job_id: str | None) -> SyncJob | None:
    """Mark the job RUNNING for a new attempt, or None when this run must not start.

    A cancelled or finished job, or an RQ job that is not the row's current one (an old
    retry of a replayed job), does nothing.
    """
    job = session.get(SyncJob, job_id, with_for_update=True)
    if job is None or job.status.finished or (rq_job_id and job.rq_job_id != rq_job_id):
        return None
    now = utcnow()
    job.status = JobStatus.RUNNING
    job.attempts += 1
    job.started_at = job.started_at or now
    job.heartbeat_at = now
    job.finished_at = None
    if job.job_type is JobType.INCREMENTAL and "start_cursor" not in job.checkpoint:
        # Resumed attempts must ask the adapter with the same cursor the first one used.
        job.checkpoint = {
            **job.checkpoint,
            "start_cursor": connection_cursor(session, job.connection_id),
        }
    session.add(job)
    return job


def owned(job_id: int | None, attempt: int) -> tuple[sa.ColumnElement[bool], ...]:
    """The guard of every write a run makes to its row: still RUNNING, the attempt it began
    (`fence`, and the heartbeat of `heartbeat.beating`)."""
    return (
        col(SyncJob.id) == job_id,
        col(SyncJob.status) == JobStatus.RUNNING,
        col(SyncJob.attempts) == attempt,
    )


def fence(session: Session, job: SyncJob, **values: Any) -> None:
    """Write `values` to the job row if this run still owns it, else raise RunStopped."""
    values["heartbeat_at"] = utcnow()
    result = session.execute(
        sa.update(SyncJob.__table__).where(*owned(job.id, job.attempts)).values(**values)
    )
    if result.rowcount != 1:
        raise RunStopped(f"job {job.id} is no longer running this attempt")
    for name, value in values.items():
        setattr(job, name, value)


def save_cursor(
    session: Session, connection_id: int, cursor: dict[str, str], now: datetime
) -> None:
    """Merge completed types' high-water marks into the connection's checkpoints.

    One INSERT .. ON CONFLICT, not read-then-insert: jobs of one connection run on several
    workers at once, and two of them creating the same (connection, type) row raced into
    the unique constraint (IntegrityError, a retried job). Rows are written in type order
    so concurrent batches lock them in the same order and cannot deadlock.
    """
    if not cursor:
        return
    table = SyncCheckpoint.__table__
    rows = [
        {
            "connection_id": connection_id,
            "resource_type": rtype,
            "cursor": instant,
            "last_synced_at": now,
            "bulk_state": {},
            "updated_at": now,
        }
        for rtype, instant in sorted(cursor.items())
    ]
    insert = _dialect_insert(session)(table).values(rows)
    # Never move a cursor backwards (an older full sync finishing late); ISO instants of
    # one server compare as strings.
    keep_newer = sa.case(
        (table.c.cursor.is_(None), insert.excluded.cursor),
        (insert.excluded.cursor > table.c.cursor, insert.excluded.cursor),
        else_=table.c.cursor,
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["connection_id", "resource_type"],
            set_={
                "cursor": keep_newer,
                "last_synced_at": insert.excluded.last_synced_at,
                "updated_at": insert.excluded.updated_at,
            },
        )
    )


def _dialect_insert(session: Session) -> Any:
    """The INSERT with ON CONFLICT of the session's database (PostgreSQL or SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def finish(session: Session, job: SyncJob, status: JobStatus, **values: Any) -> None:
    """End a run: COMPLETED by the runner (fenced)."""
    fence(session, job, status=status, finished_at=utcnow(), **values)
    job.status = status


def record_failure(
    session: Session, *, job_id: int, error: str, will_retry: bool
) -> SyncJob | None:
    """An attempt failed: keep the safe error, and wait for RQ's retry or end as FAILED.

    A job already cancelled or completed keeps its status (a stop command also reports
    as a failure to RQ).
    """
    job = session.get(SyncJob, job_id, with_for_update=True)
    if job is None or job.status in (JobStatus.CANCELLED, JobStatus.COMPLETED):
        return None
    job.last_error = error[:2000]
    job.status = JobStatus.QUEUED if will_retry else JobStatus.FAILED
    if not will_retry:
        job.finished_at = utcnow()
    session.add(job)
    return job
