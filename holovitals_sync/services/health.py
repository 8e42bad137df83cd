"""Health of the parts the product needs: database, Redis, and live workers per queue."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import redis
import sqlalchemy as sa
from pydantic import BaseModel
from rq import Queue
from rq.utils import as_text, utcparse
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from ..config import QUEUE_FAMILIES, Settings
from ..db import get_engine, ping, probe_write

log = logging.getLogger(__name__)


class PartHealth(BaseModel):
    ok: bool
    error: str | None = None  # a short reason, never a stack trace


class QueueFamilyHealth(BaseModel):
    workers: int  # live workers listening on the family's queues
    expected_workers: int
    queued: int  # jobs waiting on the family's queues


class HealthReport(BaseModel):
    status: str  # "ok", "degraded" (some workers missing) or "down"
    database: PartHealth
    redis: PartHealth
    queues: dict[str, QueueFamilyHealth]

    @property
    def healthy(self) -> bool:
        return self.database.ok and self.redis.ok


def redis_connection(url: str, *, timeout: float = 2.0) -> redis.Redis:
    """A Redis client with short timeouts, so a dead server fails fast."""
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def _check_database(engine: sa.Engine) -> PartHealth:
    try:
        ping(engine)
    except Exception as exc:  # any driver error means "unreachable" here
        log.warning("health: database check failed: %s", type(exc).__name__)
        return PartHealth(ok=False, error=f"database unreachable ({type(exc).__name__})")
    try:
        probe_write(engine)
    except Exception as exc:  # reads work, writes do not: as good as down for this product
        log.warning("health: database write check failed: %s", type(exc).__name__)
        return PartHealth(
            ok=False, error=f"database takes no writes (locked or read-only; {type(exc).__name__})"
        )
    return PartHealth(ok=True)


# Matches workers.worker.LIVE_WITHIN (services must not import the workers package).
LIVE_WITHIN = timedelta(seconds=45)


def _live(beat: bytes | None, now: datetime) -> bool:
    """Whether a worker's `last_heartbeat` (as RQ stores it) is recent enough."""
    if not beat:
        return False
    moment = utcparse(as_text(beat))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return now - moment < LIVE_WITHIN


def _queue_health(conn: redis.Redis, settings: Settings) -> dict[str, QueueFamilyHealth]:
    """Workers and waiting jobs per family, in two round trips.

    RQ's `Worker.all` reads each worker whole, one worker and one queue at a time: with
    a worker pool on every queue family that was hundreds of round trips, and the dashboard
    asks on every burst of job events (benchmarks/ui_latency.py). Only the registry's
    worker sets, the queues' lengths and each worker's heartbeat are needed.
    """
    names = {family: settings.queue_names(family) for family in QUEUE_FAMILIES}
    every = [name for family in QUEUE_FAMILIES for name in names[family]]
    pipe = conn.pipeline(transaction=False)
    for name in every:
        pipe.smembers(WORKERS_BY_QUEUE_KEY % name)
        pipe.llen(Queue(name, connection=conn).key)
    answers = pipe.execute()
    members = {name: {as_text(k) for k in answers[2 * i]} for i, name in enumerate(every)}
    lengths = {name: int(answers[2 * i + 1]) for i, name in enumerate(every)}
    keys = sorted(set().union(*members.values())) if members else []
    pipe = conn.pipeline(transaction=False)
    for key in keys:
        pipe.hget(key, "last_heartbeat")
    now = datetime.now(UTC)
    live = {key for key, beat in zip(keys, pipe.execute(), strict=True) if _live(beat, now)}
    report = {}
    for family in QUEUE_FAMILIES:
        listening = set().union(*(members[name] for name in names[family]))
        report[family] = QueueFamilyHealth(
            workers=len(listening & live),
            expected_workers=settings.workers_for(family),
            queued=sum(lengths[name] for name in names[family]),
        )
    return report


def check_health(settings: Settings, engine: sa.Engine | None = None) -> HealthReport:
    """Check every part; never raises."""
    database = _check_database(engine or get_engine())
    queues: dict[str, QueueFamilyHealth] = {}
    if settings.redis_url is None:
        redis_part = PartHealth(ok=False, error="no Redis configured (HOLOVITALS_REDIS_URL)")
    else:
        conn = redis_connection(settings.redis_url)
        try:
            conn.ping()
            queues = _queue_health(conn, settings)
            redis_part = PartHealth(ok=True)
        except (redis.RedisError, OSError) as exc:
            redis_part = PartHealth(ok=False, error=f"Redis unreachable ({type(exc).__name__})")
        finally:
            conn.close()
    if not (database.ok and redis_part.ok):
        status = "down"
    elif any(q.workers == 0 and q.expected_workers > 0 for q in queues.values()):
        status = "degraded"
    else:
        status = "ok"
    return HealthReport(status=status, database=database, redis=redis_part, queues=queues)
