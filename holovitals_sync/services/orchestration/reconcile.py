"""Keeping rows and RQ in step: lost jobs are put back, never left RUNNING for ever.

Run periodically by every sync worker (see `workers.worker`), and callable from `up`, a
maintenance job or tests. Safe to run concurrently: RQ's registry cleanup is atomic per job
and the row updates below are guarded by the status they expect.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, cast

import sqlalchemy as sa
from rq import Queue
from rq.job import Job
from rq.job import JobStatus as RQStatus
from sqlmodel import Session, col, select

from ...db import session_scope
from ...models import JobStatus, SyncJob
from ...models.types import utcnow
from ..platform.redis import redis_connection
from . import children, queueing
from .events import publish_state
from .heartbeat import LOST_AFTER
from .lifecycle import ACTIVE

log = logging.getLogger(__name__)

# A row queued this recently may not have reached Redis yet (committed, enqueue in flight).
# Requeueing one too early costs a needless queue entry, no more: the late RQ job finds the
# row names another and does nothing, and a run that started meanwhile keeps its row
# (`_claim_lost` requeues only a row still as it was read).
GRACE = timedelta(seconds=20)


def _requeue_or_fail(session: Session, job: SyncJob, reason: str) -> str:
    job.last_error = reason
    if job.attempts < job.max_attempts:
        from .service import dispatch

        dispatch(session, job)
        if job.parent_id is not None:  # a new RQ id: the parent's finisher must wait for it
            children.wait_again(job.parent_id)
        return "requeued"
    job.status = JobStatus.FAILED
    job.finished_at = utcnow()
    session.add(job)
    session.commit()
    return "failed"


def _claim_lost(session: Session, job: SyncJob, reason: str) -> bool:
    """Whether a row Redis no longer knows is lost, decided and locked in one statement.

    A RUNNING row is lost once its run has not beaten for `LOST_AFTER`, a queued one once
    it has waited `GRACE`. The row was read a while ago (reconcile looks at every active
    row, and a commit may wait for SQLite's lock), so the test runs in the UPDATE itself,
    against the row as it is now: a run that beat, moved on or finished since keeps it. The
    UPDATE holds the row (the write lock on SQLite) until the requeue commits, so the run's
    next fence meets the new attempt and stops.
    """
    if job.status is JobStatus.RUNNING:
        since = sa.func.coalesce(
            col(SyncJob.heartbeat_at), col(SyncJob.started_at), col(SyncJob.created_at)
        )
        cutoff = utcnow() - LOST_AFTER
    else:
        since = sa.func.coalesce(col(SyncJob.queued_at), col(SyncJob.created_at))
        cutoff = utcnow() - GRACE
    statement = (
        sa.update(SyncJob)
        .where(
            col(SyncJob.id) == job.id,
            col(SyncJob.status) == job.status,
            col(SyncJob.attempts) == job.attempts,
            col(SyncJob.rq_job_id).is_not_distinct_from(job.rq_job_id),
            since < cutoff,
        )
        .values(last_error=reason)
    )
    return cast("sa.CursorResult[Any]", session.execute(statement)).rowcount == 1


def _check(session: Session, job: SyncJob) -> str | None:
    rq_job = queueing.fetch_rq_job(job.rq_job_id)
    if rq_job is None:
        reason = "LostJob: the queue no longer knows this job"
        if not _claim_lost(session, job, reason):
            return None
        return _requeue_or_fail(session, job, reason)
    status = rq_job.get_status()
    if status == RQStatus.QUEUED:
        since = job.queued_at or job.created_at
        if utcnow() - since >= GRACE and _push_back_if_stranded(rq_job):
            log.warning(
                "sync job %s was queued in no queue (its worker died taking it); queued again",
                job.id,
            )
            return "requeued"
        return None
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


def _push_back_if_stranded(rq_job: Job) -> bool:
    """A job RQ calls queued that no queue holds: a worker popped it and died before it
    started. Put the same job id back (jobs that depend on it keep waiting for it)."""
    queue = Queue(rq_job.origin, connection=rq_job.connection)
    with rq_job.connection.pipeline(transaction=True) as pipe:  # one atomic look
        pipe.hget(rq_job.key, "status")
        pipe.lpos(queue.key, rq_job.id)
        pipe.lpos(queue.intermediate_queue_key, rq_job.id)
        status, waiting, taken = pipe.execute()
    if status != RQStatus.QUEUED.value.encode() or waiting is not None or taken is not None:
        return False
    queue.push_job_id(rq_job.id)
    return True


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
            if children.held_back(job):
                continue
            result = _check(session, job)
            if result:
                outcome[result] = outcome.get(result, 0) + 1
                publish_state(redis_connection(), job)
    if outcome:
        log.info("reconcile: %s", outcome)
    return outcome
