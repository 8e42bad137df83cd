"""The conflicts queue: automatic resolutions and write-backs, one RQ job per conflict.

The RQ job id is derived from the conflict id and what the job does, so queueing the same
work twice while the first is still waiting or running adds nothing.
"""

from __future__ import annotations

from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from ..platform.queues import Family, queue_for

_PENDING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def conflict_queue() -> Queue:
    """The queue the conflicts workers serve (raises QueueUnavailable without a Redis)."""
    return queue_for(Family.CONFLICTS)


def pending(queue: Queue, job_id: str) -> bool:
    """Whether the RQ job is already waiting or running (enqueueing again would double it)."""
    try:
        return Job.fetch(job_id, connection=queue.connection).get_status() in _PENDING
    except NoSuchJobError:
        return False
