"""Refused inbound requests: counted per connection, kind and reason, with a small sample.

Anyone can send a request to the receiver, signed or not. Each refusal used to be stored as
an `inbound_event` row and never cleaned up, so an attacker could fill the disk. Now a
refusal adds one to a counter row (`inbound_rejection`: one row per connection, kind and
reason, whatever the traffic) and its time and reason join a sample of the newest ones in
Redis (`HOLOVITALS_INBOUND_REJECTION_SAMPLE` per connection, dropped after
`HOLOVITALS_INBOUND_REJECTION_RETENTION_DAYS`). Neither holds any of the request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from redis.exceptions import RedisError
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from ...config import get_settings
from ...models import EHRConnection, InboundRejection, InboundStatus
from ...models.types import utcnow

log = logging.getLogger(__name__)
SAMPLE_KEY = "holovitals:inbound:rejections:{connection_id}"


def count(
    session: Session,
    *,
    connection_id: int | None,
    reason: str,
    status: InboundStatus = InboundStatus.REJECTED,
) -> None:
    """Add one to the counter (one UPSERT, committed now: the request fails right after)."""
    if connection_id is not None and session.get(EHRConnection, connection_id) is None:
        connection_id = None  # unknown connection: counted without one
    key = connection_id or 0
    now = utcnow()
    table = InboundRejection.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {
        "connection_id": key,
        "status": status.value,
        "reason": reason[:200],
        "count": 1,
        "first_at": now,
        "last_at": now,
    }
    insert = dialect.insert(table).values(**values)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["connection_id", "status", "reason"],
            set_={"count": table.c.count + 1, "last_at": insert.excluded.last_at},
        )
    )
    session.commit()
    _sample(key, status.value, reason)
    log.info("inbound webhook refused: connection=%s reason=%s", connection_id, reason)


def _sample(connection_id: int, status: str, reason: str) -> None:
    settings = get_settings()
    if settings.redis_url is None:
        return
    from ..platform.redis import redis_connection

    name = SAMPLE_KEY.format(connection_id=connection_id)
    entry = orjson.dumps({"at": round(time.time(), 3), "status": status, "reason": reason[:200]})
    try:
        with redis_connection().pipeline() as pipe:
            pipe.lpush(name, entry)
            pipe.ltrim(name, 0, settings.inbound_rejection_sample - 1)
            pipe.expire(name, settings.inbound_rejection_retention_days * 86_400)
            pipe.execute()
    except RedisError as exc:  # the count is stored; the sample is a courtesy
        log.warning("rejection sample not kept: %s", type(exc).__name__)


def counts(session: Session) -> list[InboundRejection]:
    return list(session.exec(select(InboundRejection)))


def recent(connection_id: int | None) -> list[dict[str, Any]]:
    """The newest refusals of a connection (None: unknown connections), within retention."""
    settings = get_settings()
    if settings.redis_url is None:
        return []
    from ..platform.redis import redis_connection

    oldest = time.time() - settings.inbound_rejection_retention_days * 86_400
    try:
        raw = redis_connection().lrange(SAMPLE_KEY.format(connection_id=connection_id or 0), 0, -1)
    except RedisError:
        return []
    entries = [orjson.loads(item) for item in raw]
    return [e for e in entries if e.get("at", 0) >= oldest]
