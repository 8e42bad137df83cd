"""The RQ worker class every queue family runs."""

from __future__ import annotations

import logging
from typing import Any

from rq.job import Job
from rq.worker import Worker

from holovitals_sync.db import dispose_after_fork

log = logging.getLogger(__name__)

# An idle worker heartbeats every WORKER_TTL - 15 s; `/api/health` counts a worker as live
# while its last heartbeat is younger than LIVE_WITHIN. RQ's default (420 s) would keep a
# killed worker "live" for minutes.
WORKER_TTL = 30
LIVE_WITHIN = WORKER_TTL + 15
# While a job runs, the worker renews the job's execution every JOB_MONITORING_INTERVAL s
# for EXECUTION_GRACE s more. A worker killed with SIGKILL stops renewing, so its job is
# "abandoned" (and retried from its checkpoint) within ~EXECUTION_GRACE + MAINTENANCE_INTERVAL
# instead of RQ's default of 90 s + 10 min.
JOB_MONITORING_INTERVAL = 3
EXECUTION_GRACE = 10
MAINTENANCE_INTERVAL = 10


class HoloVitalsWorker(Worker):
    """RQ's forking worker, with a short heartbeat and the database pool dropped per job.

    A forked child must not reuse the parent's pooled database connections: two processes
    on one socket corrupt each other's conversations. Sync workers also run the sync
    maintenance (lost jobs, due schedules) with RQ's own registry maintenance.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        # The rq CLI always passes its defaults, so these are set rather than defaulted.
        kwargs["job_monitoring_interval"] = JOB_MONITORING_INTERVAL
        kwargs["maintenance_interval"] = MAINTENANCE_INTERVAL
        super().__init__(*args, **kwargs)
        if self._serves_sync():
            # Imported once in the parent, so each forked work horse starts warm instead of
            # importing the adapters and FHIR client again for every job.
            import workers.jobs  # noqa: F401

    def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
        dispose_after_fork()
        super().main_work_horse(*args, **kwargs)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        if job.timeout and job.timeout > 0:
            remaining = job.timeout - working_time
            return int(min(remaining, self.job_monitoring_interval)) + EXECUTION_GRACE
        return self.job_monitoring_interval + EXECUTION_GRACE

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        if self._serves_sync():
            self._sync_maintenance()

    def _serves_sync(self) -> bool:
        return any(q.name.startswith("sync.") for q in self.queues)

    def _sync_maintenance(self) -> None:
        # Imported here: only sync workers need the orchestration services.
        from holovitals_sync.services.orchestration import reconcile, schedules

        try:
            reconcile()
            schedules.tick()
        except Exception as exc:  # maintenance must never stop the worker
            log.warning("sync maintenance failed: %s", type(exc).__name__)
