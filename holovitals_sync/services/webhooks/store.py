"""Storing accepted inbound events, many per transaction (group commit).

Under load the receiver hands over every event accepted while the previous commit was
running; one INSERT ... ON CONFLICT DO NOTHING RETURNING stores them all, so the cost of a
commit is shared instead of paid per event. A key already stored (a replay, or the same
event twice in one batch) returns no id.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from ...models import InboundEvent, InboundStatus
from ...models.types import utcnow
from . import gaps, queueing
from .notifications import EventInfo


def _insert(dialect: str):  # noqa: ANN202 - a dialect-specific Insert construct
    table = InboundEvent.__table__
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def store_batch(session: Session, events: Sequence[tuple[int, EventInfo]]) -> list[int | None]:
    """Insert and commit events, then queue them for processing.

    Args:
        session: A session with no other pending work (it is committed here).
        events: (connection id, what the event is about) pairs, ids only.

    Returns:
        The new row id per event, in order; None for an event whose key was already stored.
    """
    if not events:
        return []
    now = utcnow()
    rows = [
        {"connection_id": cid, "event_key": info.key, "source": info.source,
         "event_type": info.event_type, "resource_type": info.resource_type,
         "resource_id": info.resource_id, "patient_ref": info.patient_ref,
         "status": InboundStatus.RECEIVED, "received_at": now}
        for cid, info in events
    ]
    table = InboundEvent.__table__
    statement = (_insert(session.get_bind().dialect.name).values(rows)
                 .on_conflict_do_nothing(index_elements=["connection_id", "event_key"])
                 .returning(table.c.id, table.c.connection_id, table.c.event_key))
    stored = {(cid, key): int(eid) for eid, cid, key in session.execute(statement)}
    session.commit()
    ids: list[int | None] = []
    for cid, info in events:
        # The first of two identical keys in one batch gets the id; the second is a replay.
        ids.append(stored.pop((cid, info.key), None))
    queueing.enqueue_inbound([i for i in ids if i is not None])
    accepted = [event for event, eid in zip(events, ids, strict=True) if eid is not None]
    if missed := gaps.catch_ups(accepted):
        store_batch(session, missed)  # their own events carry no count: no recursion
    return ids


def store_one(session: Session, connection_id: int, info: EventInfo) -> int | None:
    """Store a single event (see `store_batch`)."""
    return store_batch(session, [(connection_id, info)])[0]



