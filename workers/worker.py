"""The RQ worker class every queue family runs."""

from __future__ import annotations

from typing import Any

from rq.worker import Worker

from holovitals_sync.db import dispose_after_fork

# An idle worker heartbeats every WORKER_TTL - 15 s; `/api/health` counts a worker as live
# while its last heartbeat is younger than LIVE_WITHIN. RQ's default (420 s) would keep a
# killed worker "live" for minutes.
WORKER_TTL = 30
LIVE_WITHIN = WORKER_TTL + 15


class HoloVitalsWorker(Worker):
    """RQ's forking worker, with a short heartbeat and the database pool dropped per job.

    A forked child must not reuse the parent's pooled database connections: two processes
    on one socket corrupt each other's conversations.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        super().__init__(*args, **kwargs)

    def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
        dispose_after_fork()
        super().main_work_horse(*args, **kwargs)
