"""Alert events on Redis pub/sub, so the dashboard's banner and list update live.

Messages carry the alert's id, kind, status and subject (ids only), never PHI.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from ...models import Alert
from ..platform.redis import redis_connection

log = logging.getLogger(__name__)

CHANNEL = "holovitals:alerts"


def channel_for(conn: Any) -> str:
    """The alerts channel of the Redis database `conn` uses (as for job events: pub/sub
    channels span every database of a server, so the database number is in the name)."""
    db = conn.connection_pool.connection_kwargs.get("db", 0)
    return f"{CHANNEL}:db{db}"


def payload(alert: Alert, event: str) -> dict[str, Any]:
    """`event` is raised, acknowledged or closed."""
    return {
        "event": event,
        "alert_id": alert.id,
        "kind": alert.kind.value,
        "severity": alert.severity.value,
        "status": alert.status.value,
        "subject": alert.subject,
        "connection_id": alert.connection_id,
        "queue": alert.queue,
        "at": time.time(),
    }


def _default_redis() -> Any:
    return redis_connection()  # the process-wide connection, when configured


def publish(redis: Any, alert: Alert, event: str) -> None:
    """Best effort: the row is the truth, a dashboard that missed this reloads the list.

    `redis` None means the process-wide connection (`HOLOVITALS_REDIS_URL`).
    """
    try:
        redis = redis if redis is not None else _default_redis()
        redis.publish(channel_for(redis), orjson.dumps(payload(alert, event)))
    except Exception as exc:
        log.warning("alert event not published: %s", type(exc).__name__)
