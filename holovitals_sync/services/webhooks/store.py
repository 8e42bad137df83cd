"""Storing accepted inbound events, many per transaction (group commit).

Under load the receiver hands over every event accepted while the previous commit was
running; one executemany of a single cached `INSERT ... ON CONFLICT DO NOTHING RETURNING`
stores them all, so the cost of a commit is shared instead of paid per event. A key already
stored (a replay, or the same event twice in one batch) returns no id.

Why Core and executemany: a multi-VALUES insert built per batch is compiled afresh each
time (its shape changes with the batch size), which cost ~1.5 ms for 10 events; the
executemany form is compiled once and SQLAlchemy's "insertmanyvalues" still sends one
statement per batch (~0.2 ms for 10 events on SQLite).

The receiver's SQLite writer on the event loop (`api.loop_writer`) goes one step further:
`insert_events_sqlite` sends the same statement through the DBAPI cursor, its SQL text
cached per batch size (SQLite prepares each text once), the values passed through
SQLAlchemy's own bind processors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from ...db import begin_write_promptly
from ...models import InboundEvent, InboundStatus
from ...models.types import utcnow
from . import gaps, queueing
from .notifications import EventInfo

log = logging.getLogger(__name__)
Bind = Session | sa.Connection


def _table() -> sa.Table:
    return SQLModel.metadata.tables[InboundEvent.__tablename__]


@cache
def _insert(dialect: str) -> sa.Insert:
    """The insert for a dialect, built once (SQLAlchemy caches its compiled form)."""
    table = _table()
    module = postgresql if dialect == "postgresql" else sqlite
    return (
        module.insert(table)
        .on_conflict_do_nothing(index_elements=["connection_id", "event_key"])
        .returning(table.c.id, table.c.connection_id, table.c.event_key)
    )


def _connection(bind: Bind) -> sa.Connection:
    return bind.connection() if isinstance(bind, Session) else bind


_COLUMNS = (
    "connection_id",
    "event_key",
    "source",
    "event_type",
    "resource_type",
    "resource_id",
    "patient_ref",
    "recheck",
    "status",
    "received_at",
)


def _values(cid: int, info: EventInfo, now: datetime) -> tuple[Any, ...]:
    """An event's row, in `_COLUMNS` order."""
    return (
        cid,
        info.key,
        info.source,
        info.event_type,
        info.resource_type,
        info.resource_id,
        info.patient_ref,
        info.recheck,
        InboundStatus.RECEIVED,
        now,
    )


def insert_events(bind: Bind, events: Sequence[tuple[int, EventInfo]]) -> list[int | None]:
    """Insert events without committing; the new row id per event, None for a replay."""
    if not events:
        return []
    now = utcnow()
    rows = [dict(zip(_COLUMNS, _values(cid, info, now), strict=True)) for cid, info in events]
    connection = _connection(bind)
    result = connection.execute(_insert(connection.dialect.name), rows)
    return _ids(events, result)


def _ids(events: Sequence[tuple[int, EventInfo]], returned: Iterable[Any]) -> list[int | None]:
    stored = {(cid, key): int(eid) for eid, cid, key in returned}
    # The first of two identical keys in one batch gets the id; the second is a replay.
    return [stored.pop((cid, info.key), None) for cid, info in events]


@cache
def _sqlite_binders(dialect: sa.Dialect) -> list[Callable[[Any], Any] | None]:
    """Each column's bind processor: what SQLAlchemy would send SQLite for a value."""
    table = _table()
    return [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in _COLUMNS]


@lru_cache(maxsize=64)
def _sqlite_sql(count: int) -> str:
    row = "(" + ", ".join("?" * len(_COLUMNS)) + ")"
    return (
        f"INSERT INTO inbound_event ({', '.join(_COLUMNS)}) VALUES {', '.join([row] * count)} "
        "ON CONFLICT (connection_id, event_key) DO NOTHING "
        "RETURNING id, connection_id, event_key"
    )


def insert_events_sqlite(
    cursor: Any, dialect: sa.Dialect, events: Sequence[tuple[int, EventInfo]]
) -> list[int | None]:
    """`insert_events` on a DBAPI cursor of SQLite, without SQLAlchemy's statement handling."""
    if not events:
        return []
    now = utcnow()
    binders = _sqlite_binders(dialect)
    params: list[Any] = []
    for cid, info in events:
        values = _values(cid, info, now)
        params.extend(v if b is None else b(v) for b, v in zip(binders, values, strict=True))
    return _ids(events, cursor.execute(_sqlite_sql(len(events)), params))


def commit_events(bind: Bind, events: Sequence[tuple[int, EventInfo]]) -> list[int | None]:
    """Insert and commit events; the new row id per event, None for a replay."""
    ids = insert_events(bind, events)
    if events:
        bind.commit()
    return ids


def store_catch_ups(bind: Bind, accepted: Sequence[tuple[int, EventInfo]]) -> list[int]:
    """Store the catch-ups that newly accepted events' numbers call for (see `gaps`).

    Never raises: the events themselves are stored already. Without Redis no number is
    noted, and later numbers show the hole again. A database failing after Redis noted a
    hole loses that hole's catch-up (Redis reports each hole once).

    Returns:
        The new catch-up rows, to queue with the events.
    """
    try:
        # Catch-ups carry no count of their own: they call for no further catch-up.
        if not (missed := gaps.catch_ups(accepted)):
            return []
        if isinstance(bind, sa.Connection):  # the receiver's intake: see begin_write_promptly
            begin_write_promptly(bind)
        new = [eid for eid in insert_events(bind, missed) if eid is not None]
        bind.commit()
        return new
    except Exception as exc:  # noqa: BLE001 - the events are stored: still accepted
        bind.rollback()
        log.warning("inbound gap detection skipped: %s", type(exc).__name__)
        return []


def store_events(
    bind: Bind, events: Sequence[tuple[int, EventInfo]]
) -> tuple[list[int | None], list[int]]:
    """Insert and commit events, then the catch-ups their numbers call for.

    Args:
        bind: A session or connection with no other pending work (committed here).
        events: (connection id, what the event is about) pairs, ids only.

    Returns:
        The new row id per event, in order (None for an event whose key was already
        stored), and every new row to queue for processing (catch-ups included).
    """
    ids = commit_events(bind, events)
    accepted = [event for event, eid in zip(events, ids, strict=True) if eid is not None]
    new = [eid for eid in ids if eid is not None]
    return ids, new + store_catch_ups(bind, accepted)


def queue_events(event_ids: list[int]) -> None:
    """Hand stored events to the webhooks queue.

    Nothing here decides the answer to the sender: the events are stored already. A Redis
    failure leaves them `received` and unqueued, and the webhooks maintenance
    (`sweep.requeue_unqueued`) queues them later. Failing the request instead would make
    the sender retry into a 409, and the event would never be processed.
    """
    try:
        queueing.enqueue_inbound(event_ids)
    except Exception as exc:  # noqa: BLE001 - see above: persisted means acknowledged
        log.warning(
            "%d inbound events stored but not queued (the sweeper will): %s",
            len(event_ids),
            type(exc).__name__,
        )


def store_batch(bind: Bind, events: Sequence[tuple[int, EventInfo]]) -> list[int | None]:
    """Store events (see `store_events`) and queue them; the new row id per event."""
    ids, new = store_events(bind, events)
    queue_events(new)
    return ids


def store_one(session: Session, connection_id: int, info: EventInfo) -> int | None:
    """Store a single event (see `store_batch`)."""
    return store_batch(session, [(connection_id, info)])[0]
