"""Keeping rows and RQ in step: lost jobs are put back, never left RUNNING for ever.

Run periodically by every sync worker (see `workers.worker`), and callable from `up`, a
maintenance job or tests. Safe to run concurrently: RQ's registry cleanup is atomic per job
and the row updates below are guarded by the status they expect.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from rq.job import JobStatus as RQStatus
from sqlmodel import Session, select

from ...db import session_scope
from ...models import JobStatus, SyncJob
from ...models.types import utcnow
from . import queueing
from .events import publish_state
from .lifecycle import ACTIVE

log = logging.getLogger(__name__)

# A row queued this recently may not have reached Redis yet (committed, enqueue in flight).
GRACE = timedelta(seconds=60)


def _requeue_or_fail(session: Session, job: SyncJob, reason: str) -> str:
    job.last_error = reason
    if job.attempts < job.max_attempts:
        from .service import dispatch

        dispatch(session, job)
        return "requeued"
    job.status = JobStatus.FAILED
    job.finished_at = utcnow()
    session.add(job)
    session.commit()
    return "failed"


def _check(session: Session, job: SyncJob) -> str | None:
    rq_job = queueing.fetch_rq_job(job.rq_job_id)
    if rq_job is None:
        since = job.heartbeat_at or job.queued_at or job.created_at
        if utcnow() - since < GRACE:
            return None
        return _requeue_or_fail(session, job, "LostJob: the queue no longer knows this job")
    status = rq_job.get_status()
    if status == RQStatus.FAILED:
        job.status, job.finished_at = JobStatus.FAILED, utcnow()
        job.last_error = job.last_error or "JobFailed"
    elif status in (RQStatus.STOPPED, RQStatus.CANCELED):
        job.status, job.finished_at = JobStatus.CANCELLED, utcnow()
    else:
        return None  # queued, scheduled (waiting for a retry), started, rate limited
    session.add(job)
    session.commit()
    return job.status.value


def reconcile() -> dict[str, int]:
    """Clean RQ's started registries (abandoned jobs are retried by RQ), then fix rows.

    Returns:
        How many rows were requeued, failed or cancelled.
    """
    for queue in queueing.sync_queues():
        # An execution whose worker stopped heartbeating (SIGKILL) is abandoned: RQ calls
        # the failure callback and retries it (or moves it to the failed registry).
        queue.started_job_registry.cleanup()
    outcome: dict[str, int] = {}
    with session_scope() as session:
        rows = list(session.exec(select(SyncJob).where(SyncJob.status.in_(ACTIVE))))
        for job in rows:
            result = _check(session, job)
            if result:
                outcome[result] = outcome.get(result, 0) + 1
                publish_state(queueing.redis_connection(), job)
    if outcome:
        log.info("reconcile: %s", outcome)
    return outcome
