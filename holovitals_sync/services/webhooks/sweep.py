"""Stored inbound events that nobody queued: found and handed to the webhooks queue.

The receiver acknowledges an event once its row is committed and queues it just after (see
`api.intake`). Between the two the process may die, Redis may be down, or a Redis without
persistence may restart and forget the pending list; a drain job killed after popping ids
loses them the same way. The row stays `received`, so the webhooks maintenance asks here,
every tick, for events received more than `SWEEP_AFTER` ago and still `received` that are
neither on the pending list nor held by a drain (`platform.id_lists`), and queues them
again; an event marked failed only because Redis or
the database was away is taken back first. An event whose processing failed because
Redis or the database was away stays `received` too (see `platform.failures.INFRASTRUCTURE`), so
it is taken up here once they are back, however long that takes.

Queueing one twice after it was processed does no harm: a processed event is skipped, and a
catch-up waiting out its grace period is held again by its own check. Two drains processing
one event at once could each make a sync job, which is why ids a drain holds count as
waiting; a drain that dies holding them gives them up after `id_lists.LEASE`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from ...models import EHRConnection, InboundEvent, InboundStatus
from ...models.types import utcnow
from ..platform.redis import redis_connection
from . import queueing

log = logging.getLogger(__name__)
# Far beyond the receiver's follow-up (milliseconds) and a catch-up's grace period (10 s).
SWEEP_AFTER = timedelta(seconds=60)
LIMIT = 5000  # per connection and tick; the next tick takes the rest
# Every webhooks worker ticks; one sweep per interval is enough.
LOCK = "webhooks:inbound:sweep-lock"
LOCK_SECONDS = 8


def _stranded(session: Session, connection_id: int, cutoff: datetime) -> list[int]:
    # (connection_id, status, received_at) is the table's index: no full scan per tick.
    query = (
        select(InboundEvent.id)
        .where(
            InboundEvent.connection_id == connection_id,
            InboundEvent.status == InboundStatus.RECEIVED,
            InboundEvent.received_at < cutoff,
        )
        .order_by(InboundEvent.id)
        .limit(LIMIT)
    )
    return [int(i) for i in session.exec(query)]


def _revive_infrastructure_failures(session: Session, connection_id: int) -> int:
    """Events marked failed only because Redis or the database was away (as releases before
    this one did when a worker outlived its Redis) go back to `received`: their content was
    fine, and the sweep below takes them up like any stranded event."""
    from ..platform.failures import INFRASTRUCTURE

    reason = InboundEvent.rejection_reason
    ids = list(
        session.exec(
            select(InboundEvent.id)
            .where(
                InboundEvent.connection_id == connection_id,
                InboundEvent.status == InboundStatus.FAILED,
                sa.or_(*(reason.like(f"{name};%") for name in INFRASTRUCTURE)),
                sa.not_(reason.like("%not retried%")),
            )
            .order_by(InboundEvent.id)
            .limit(LIMIT)
        )
    )
    if ids:
        session.execute(
            sa.update(InboundEvent)
            .where(InboundEvent.id.in_(ids))
            .values(status=InboundStatus.RECEIVED)
        )
    return len(ids)


def requeue_unqueued(
    session: Session, *, now: datetime | None = None, older_than: timedelta = SWEEP_AFTER
) -> int:
    """Queue stored events left unqueued; returns how many (0 when another worker sweeps)."""
    client = redis_connection()
    if not client.set(LOCK, 1, nx=True, ex=LOCK_SECONDS):
        return 0
    cutoff = (now or utcnow()) - older_than
    ids: list[int] = []
    for connection_id in list(session.exec(select(EHRConnection.id))):
        if _revive_infrastructure_failures(session, connection_id):
            session.commit()  # `received` before any worker is told
        ids += _stranded(session, connection_id, cutoff)
    if not ids:
        return 0
    # Read after the rows: an id still waiting on the list, or popped by a drain that is
    # working through it, is not pushed again. (Pushed again, a backlog older than
    # `SWEEP_AFTER` had events processed twice at once: two sync jobs for one event.)
    waiting = queueing.waiting_inbound()
    lost = [i for i in ids if i not in waiting]
    if lost:
        queueing.enqueue_inbound(lost)
        log.warning("requeued %d stored inbound events that were never queued", len(lost))
    return len(lost)
