"""RQ job entry points (thin: they call services). Each carries only ids."""

from __future__ import annotations

from typing import Any

from rq import get_current_job
from rq.job import Job

from holovitals_sync.services.orchestration import reconcile as reconcile_service
from holovitals_sync.services.orchestration import runner, schedules


def run_sync_job(job_id: int) -> None:
    """Run or resume one SyncJob (queued on `sync.<priority>`)."""
    current = get_current_job()
    runner.run_job(job_id, rq_job_id=current.id if current else None)


def on_sync_job_failure(job: Job, connection: Any, exc_type: type, exc: BaseException,
                        traceback: Any) -> None:
    """RQ failure callback: every failed attempt, including an abandoned (killed) one.

    Called before RQ decides on a retry, so `retries_left` still counts this attempt's.
    """
    del connection, exc_type, traceback
    will_retry = bool(job.retries_left and job.retries_left > 0)
    runner.record_attempt_failure(int(job.args[0]), exc, will_retry=will_retry)


def reconcile() -> dict[str, int]:
    """Maintenance: put lost jobs back, end orphaned rows (also run by every sync worker)."""
    return reconcile_service.reconcile()


def schedule_tick() -> int:
    """Enqueue the incremental syncs whose cron time has come (idempotent)."""
    return schedules.tick()
