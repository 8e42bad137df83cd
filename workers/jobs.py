"""RQ job entry points (thin: they call services). Each carries only ids."""

from __future__ import annotations

import math
import time
from typing import Any

from rq import get_current_job
from rq.job import Job
from sqlalchemy.exc import OperationalError

from holovitals_sync.services.orchestration import children, runner, schedules
from holovitals_sync.services.orchestration.reconcile import reconcile as reconcile_lost
from holovitals_sync.services.platform.failures import permanent_reason


def run_sync_job(job_id: int) -> None:
    """Run or resume one SyncJob (queued on `sync.<priority>`)."""
    current = get_current_job()
    runner.run_job(job_id, rq_job_id=current.id if current else None)


def finish_full_sync(parent_id: int) -> str:
    """End a split full sync once all its parts have ended (RQ runs it after them)."""
    return children.finish(parent_id)


def on_sync_job_failure(
    job: Job, connection: Any, exc_type: type, exc: BaseException, traceback: Any
) -> None:
    """RQ failure callback: every failed attempt, including an abandoned (killed) one.

    Called before RQ decides on a retry, so `retries_left` still counts this attempt's.
    """
    del connection, exc_type, traceback
    if permanent_reason(exc) is not None:
        job.retries_left = 0  # RQ reads it right after this callback: no retry is scheduled
    will_retry = bool(job.retries_left and job.retries_left > 0)
    if will_retry:
        honour_retry_after(job, exc)
    record_failure_patiently(int(job.args[0]), exc, will_retry=will_retry)


# The database restarting is one reason an attempt fails: its row must still learn why.
FAILURE_WRITE_TRIES = 10
FAILURE_WRITE_PAUSE = 0.5


def record_failure_patiently(job_id: int, exc: BaseException, *, will_retry: bool) -> None:
    """Write the failed attempt to the row, waiting (bounded) for the database to return."""
    for attempt in range(1, FAILURE_WRITE_TRIES + 1):
        try:
            runner.record_attempt_failure(job_id, exc, will_retry=will_retry)
            return
        except OperationalError:
            if attempt == FAILURE_WRITE_TRIES:
                raise
            time.sleep(FAILURE_WRITE_PAUSE)


# An EHR asking for more than this is misbehaving: the job waits at most this long.
MAX_RETRY_AFTER = 300


def honour_retry_after(job: Job, exc: BaseException) -> int | None:
    """Make the coming retry wait at least the EHR's `Retry-After` (capped).

    RQ schedules the retry right after this callback from the job's `retry_intervals`, at
    the index of the retry about to happen; that one slot is raised, the others stay.
    Returns the interval used, or None when the failure carried no `Retry-After`.
    """
    wanted = getattr(exc, "retry_after", None)
    if not isinstance(wanted, int | float) or wanted <= 0 or not job.retries_left:
        return None
    given = list(job.retry_intervals or [0])
    left = job.retries_left
    # One slot per retry still to come, each holding what RQ would have used
    # (`Job.get_retry_interval` reuses the first interval when retries outnumber them).
    length = max(len(given), left)
    intervals = [given[max(len(given) - (length - i), 0)] for i in range(length)]
    index = length - left
    # +1: RQ's scheduler keeps due times in whole seconds and may start a job up to a
    # second before the time it was given.
    intervals[index] = max(intervals[index], min(math.ceil(wanted) + 1, MAX_RETRY_AFTER))
    job.retry_intervals = intervals
    return intervals[index]


def reconcile() -> dict[str, int]:
    """Maintenance: put lost jobs back, end orphaned rows (also run by every sync worker)."""
    return reconcile_lost()


def schedule_tick() -> int:
    """Enqueue the incremental syncs whose cron time has come (idempotent)."""
    return schedules.tick()
