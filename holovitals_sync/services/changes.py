"""Change notices for the dashboard's lists: which kinds of rows moved, after each commit.

Job rows have their own events (`orchestration.events`); conflicts, webhook deliveries and
subscriptions change in many places (a worker's sync run, an automatic resolution, an
operator in the API, a delivery attempt). Rather than a publish call at each of them, the
services `follow` their tables here: a flush that adds, changes or deletes a followed row
marks its topic on the session, and the commit publishes the topics once on
`holovitals:changes:db<N>`; a rollback forgets them. A notice carries topic names only (no
ids, no PHI); an open dashboard re-reads the page it shows, coalesced (ui/state/live.py).

Publishing is best effort, like job events: the database row is the truth and the page is
right again on its next load.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from .platform.redis import QueueUnavailable, redis_connection

log = logging.getLogger(__name__)

CHANNEL = "holovitals:changes"
CONFLICTS = "conflicts"
WEBHOOKS = "webhooks"
_PENDING = "holovitals_change_topics"
_followed: dict[type, str] = {}


def channel_for(conn: Any) -> str:
    """The change channel of the Redis database `conn` uses (channels span databases)."""
    db = conn.connection_pool.connection_kwargs.get("db", 0)
    return f"{CHANNEL}:db{db}"


def follow(model: type, topic: str) -> None:
    """Publish `topic` after every commit that added, changed or deleted a `model` row."""
    if not _followed:
        event.listen(Session, "after_flush", _mark)
        event.listen(Session, "after_commit", _publish)
        event.listen(Session, "after_soft_rollback", _forget)
    _followed[model] = topic


def _mark(session: Session, _context: Any) -> None:
    # Still the pre-flush view here: what this flush wrote. A type lookup per object keeps
    # a sync batch's flush (mostly other tables) as cheap as before.
    topics = {
        _followed[type(obj)]
        for objects in (session.new, session.dirty, session.deleted)
        for obj in objects
        if type(obj) in _followed
    }
    if topics:
        session.info.setdefault(_PENDING, set()).update(topics)


def _forget(session: Session, previous: SessionTransaction) -> None:
    # Only the whole transaction's rollback undoes what was marked: a savepoint rolled back
    # (an insert that lost a race) leaves the rest of the transaction's changes standing.
    if previous.parent is None:
        session.info.pop(_PENDING, None)


def _publish(session: Session) -> None:
    # Releasing a savepoint also counts as a commit here; the changes are not visible to
    # other sessions until the outermost transaction commits.
    if session.in_nested_transaction():
        return
    topics = session.info.pop(_PENDING, None)
    if topics:
        publish(sorted(topics))


def publish(topics: list[str]) -> None:
    """Tell open dashboards that these lists changed (when this process has a Redis)."""
    try:
        redis = redis_connection()
        redis.publish(channel_for(redis), orjson.dumps({"topics": topics, "at": time.time()}))
    except QueueUnavailable:
        return  # no Redis in this process (a CLI command, a unit test): nobody is watching
    except Exception as exc:  # best effort: the stored rows are the truth
        log.warning("change notice not published: %s", type(exc).__name__)


def topics_of(data: bytes | str) -> set[str]:
    """The topics of one published notice (nothing for anything else)."""
    try:
        notice = orjson.loads(data)
    except orjson.JSONDecodeError:
        return set()
    topics = notice.get("topics") if isinstance(notice, dict) else None
    return {t for t in topics if isinstance(t, str)} if isinstance(topics, list) else set()
