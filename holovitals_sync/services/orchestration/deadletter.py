"""The dead-letter view: jobs whose retries are exhausted, with their (PHI-free) error."""

from __future__ import annotations

from sqlmodel import Session, select

from ...models import JobStatus, SyncJob

DEAD_LETTER_LIMIT = 500


def failed_jobs(
    session: Session, *, connection_id: int | None = None, limit: int = DEAD_LETTER_LIMIT
) -> list[SyncJob]:
    """FAILED jobs, newest first."""
    query = select(SyncJob).where(SyncJob.status == JobStatus.FAILED)
    if connection_id is not None:
        query = query.where(SyncJob.connection_id == connection_id)
    return list(session.exec(query.order_by(SyncJob.id.desc()).limit(limit)))


def failed_job_ids(session: Session) -> list[int]:
    """Ids of every dead-lettered job, oldest first (replayed in that order)."""
    query = select(SyncJob.id).where(SyncJob.status == JobStatus.FAILED).order_by(SyncJob.id)
    return [int(i) for i in session.exec(query)]
