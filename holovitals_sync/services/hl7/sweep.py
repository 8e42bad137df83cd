"""Stored messages that nobody queued, or whose processing met something away: queued again.

The listener acknowledges a message once it is committed and queues it just after; the
process may die between the two, or Redis may be down. Such a message, and one whose
processing met the EHR, Redis or the database away, stays `received`; the webhooks
maintenance asks here every tick for those received more than `SWEEP_AFTER` ago, neither on
the pending list nor held by a drain (`platform.id_lists`). Queueing one twice after it was
processed does no harm: processing skips what is not `received`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session, select

from ...models import HL7Message, InboundStatus
from ...models.types import utcnow
from ..platform.redis import redis_connection
from . import queueing

log = logging.getLogger(__name__)
SWEEP_AFTER = timedelta(seconds=60)
LIMIT = 5000
LOCK = "hl7:sweep-lock"
LOCK_SECONDS = 8


def requeue_stranded(
    session: Session, *, now: datetime | None = None, older_than: timedelta = SWEEP_AFTER
) -> int:
    """Queue received messages left behind; how many (0 when another worker sweeps)."""
    if not redis_connection().set(LOCK, 1, nx=True, ex=LOCK_SECONDS):
        return 0
    cutoff = (now or utcnow()) - older_than
    ids = [
        int(i)
        for i in session.exec(
            select(HL7Message.id)
            .where(HL7Message.status == InboundStatus.RECEIVED, HL7Message.received_at < cutoff)
            .order_by(HL7Message.id)
            .limit(LIMIT)
        )
    ]
    if not ids:
        return 0
    waiting = queueing.waiting()
    lost = [i for i in ids if i not in waiting]
    if lost:
        queueing.enqueue_messages(lost)
        log.warning("requeued %d stored HL7 messages", len(lost))
    return len(lost)
