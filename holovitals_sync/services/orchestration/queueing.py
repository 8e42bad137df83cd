"""RQ side of sync jobs: the queues and enqueueing one SyncJob row.

The RQ job carries only the SyncJob id; everything else is read from the database when the
job runs, so a retried or replayed job always sees the current checkpoint.
"""

from __future__ import annotations

from redis import Redis
from rq import Callback, Queue, Retry
from rq.job import Dependency, Job
from rq.rate_limit import RateLimit

from ...config import get_settings
from ...models import EHRConnection, Priority, SyncJob
from ..platform import job_functions, queues
from ..platform.queues import Family
from ..platform.redis import redis_connection

JOB_FUNCTION = job_functions.RUN_SYNC_JOB
FAILURE_CALLBACK = job_functions.ON_SYNC_JOB_FAILURE
FINISH_FUNCTION = job_functions.FINISH_FULL_SYNC
# A full sync of a large hospital runs for hours; RQ's default (180 s) would kill it.
JOB_TIMEOUT = 12 * 3600
# Failed RQ jobs stay inspectable for the dead-letter view for a week.
FAILURE_TTL = 7 * 24 * 3600
RESULT_TTL = 24 * 3600


def queue_for(priority: Priority, connection: Redis | None = None) -> Queue:
    """The sync queue of one priority (`sync.high`, `sync.default`, `sync.low`)."""
    return queues.queue_for(Family.SYNC, priority, connection)


def sync_queues(connection: Redis | None = None) -> list[Queue]:
    """Every sync queue, highest priority first."""
    return [queue_for(priority, connection) for priority in Priority]


def rate_limit_key(connection_id: int) -> str:
    """The RQ rate-limit key that bounds running jobs of one EHR connection."""
    return f"ehr-connection-{connection_id}"


def retry_policy(remaining: int) -> Retry | None:
    """RQ's retry with the configured intervals, for `remaining` further attempts."""
    if remaining <= 0:
        return None
    return Retry(max=remaining, interval=list(get_settings().retry_backoff))


def enqueue(job: SyncJob, connection: EHRConnection) -> Job:
    """Put a SyncJob on its priority queue, limited to the connection's concurrency.

    Retries left are what the row has not used yet, so a replayed job never gets more
    attempts in total than `max_attempts` allows per replay.
    """
    remaining = max(job.max_attempts - 1, 0)
    rq_job = queue_for(job.priority).enqueue(
        JOB_FUNCTION,
        job.id,
        job_id=job.rq_job_id,
        job_timeout=JOB_TIMEOUT,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        retry=retry_policy(remaining),
        on_failure=Callback(FAILURE_CALLBACK),
        rate_limit=RateLimit(rate_limit_key(connection.id), connection.concurrency_limit),
        description=f"sync job {job.id}",
    )
    return rq_job


def enqueue_finisher(parent: SyncJob, children: list[str]) -> Job:
    """The RQ job that ends a split full sync once every child's RQ job has ended (failed
    ones included: it then fails the parent, naming the parts)."""
    return queue_for(parent.priority).enqueue(
        FINISH_FUNCTION,
        parent.id,
        job_id=parent.rq_job_id,
        depends_on=Dependency(jobs=children, allow_failure=True),
        job_timeout=JOB_TIMEOUT,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        retry=retry_policy(3),
        description=f"sync job {parent.id}: end",
    )


def fetch_rq_job(rq_job_id: str | None) -> Job | None:
    """The RQ job of a row, or None when Redis no longer knows it."""
    if not rq_job_id:
        return None
    try:
        return Job.fetch(rq_job_id, connection=redis_connection())
    except Exception:  # NoSuchJobError, or a job hash that expired half-way
        return None
