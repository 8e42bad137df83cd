"""Sync orchestration: jobs on RQ, the batch pipeline, lifecycle, schedules and statistics.

This package's entry points (keyword arguments):

    start_job(session, request=JobRequest(...), requested_by_kind=..., requested_by=..., actor=...)
                                                    # InvalidJob: a type the EHR does not serve
    cancel_job(session, job_id=..., actor=...)      # StateConflict when already finished
    retry_job(session, job_id=..., actor=...)       # FAILED/CANCELLED -> resumes from checkpoint
    replay_failed(session, job_ids=[...] | None, actor=...)
    reconcile()                                     # lost jobs back on the queue
    schedules.tick()                                # cron per connection
    statistics.collect(session)

Workers run `workers.jobs.run_sync_job(job_id)`, which calls `runner.run_job`.
"""

from .deadletter import failed_jobs
from .events import CHANNEL, channel_for
from .reconcile import reconcile
from .service import (
    ConnectionNotFound,
    InvalidJob,
    JobNotFound,
    JobRequest,
    StateConflict,
    cancel_job,
    get_job,
    replay_failed,
    retry_job,
    start_job,
)

__all__ = [
    "CHANNEL",
    "channel_for",
    "ConnectionNotFound",
    "InvalidJob",
    "JobNotFound",
    "JobRequest",
    "StateConflict",
    "cancel_job",
    "failed_jobs",
    "get_job",
    "reconcile",
    "replay_failed",
    "retry_job",
    "start_job",
]
