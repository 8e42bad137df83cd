"""Job events on Redis pub/sub for the dashboard: state changes always, progress throttled.

Events carry ids, statuses and counters only, never resource content (no PHI).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from ...models import JOB_COUNTERS, SyncJob

log = logging.getLogger(__name__)

CHANNEL = "holovitals:jobs"


def channel_for(conn: Any) -> str:
    """The job-events channel of the Redis database `conn` uses.

    Pub/sub channels are shared by every database of a Redis server, so two installations
    (or test runs) on one server would otherwise see each other's jobs.
    """
    db = conn.connection_pool.connection_kwargs.get("db", 0)
    return f"{CHANNEL}:db{db}"


# A few progress frames per second per job is what a browser can show usefully; Reflex
# sends one websocket frame per state change, so more would only cost bandwidth.
PROGRESS_INTERVAL = 0.25

COUNTERS = JOB_COUNTERS


def job_payload(job: SyncJob, kind: str) -> dict[str, Any]:
    """The event body of one job: ids, status, progress and counters."""
    return {
        "event": kind,
        "job_id": job.id,
        "connection_id": job.connection_id,
        "status": job.status.value,
        "progress": round(job.progress, 4),
        "attempts": job.attempts,
        **{name: getattr(job, name) for name in COUNTERS},
        "at": time.time(),
    }


class JobEvents:
    """Publishes one job's events; progress at most every `PROGRESS_INTERVAL` seconds."""

    def __init__(self, redis: Any, interval: float = PROGRESS_INTERVAL) -> None:
        self._redis = redis
        self._interval = interval
        self._last_progress = 0.0

    def state(self, job: SyncJob) -> None:
        """A status change: always published."""
        self._publish(job_payload(job, "state"))

    def progress(self, job: SyncJob, *, force: bool = False) -> None:
        """Counters moved: published unless one went out less than the interval ago."""
        now = time.monotonic()
        if not force and now - self._last_progress < self._interval:
            return
        self._last_progress = now
        self._publish(job_payload(job, "progress"))

    def _publish(self, payload: dict[str, Any]) -> None:
        try:
            self._redis.publish(channel_for(self._redis), orjson.dumps(payload))
        except Exception as exc:  # events are best effort: the database row is the truth
            log.warning("job event not published: %s", type(exc).__name__)


def publish_state(redis: Any, job: SyncJob) -> None:
    """Publish a state change from outside a running job (cancel, retry, reconcile)."""
    JobEvents(redis).state(job)
