"""`emit()`: how other services announce an event to webhook subscribers.

One `WebhookDelivery` row per matching active subscription, holding the event's ids only;
the delivery jobs are queued after the caller's transaction commits, so a worker never looks
for a row that is not there yet (and nothing is sent for a change that was rolled back).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session, select

from ...models import WebhookDelivery, WebhookSubscription
from . import queueing
from .events import check_event

_PENDING_KEY = "webhooks.pending_deliveries"


def _matches(sub: WebhookSubscription, event_type: str, refs: dict[str, str | int]) -> bool:
    if event_type not in sub.event_types:
        return False
    wanted = sub.filter_connection_id
    if wanted is not None and refs.get("connection_id") != wanted:
        return False
    return not sub.filter_resource_types or refs.get("resource_type") in sub.filter_resource_types


def _enqueue_after_commit(session: Session, rows: Iterable[tuple[int, int, float]]) -> None:
    pending = session.info.setdefault(_PENDING_KEY, [])
    first = not pending
    pending.extend(rows)
    if not first:
        return

    def flush(committed: Session) -> None:
        for delivery_id, subscription_id, timeout in committed.info.pop(_PENDING_KEY, []):
            queueing.enqueue_delivery(
                delivery_id=delivery_id,
                subscription_id=subscription_id,
                expected_attempts=0,
                timeout=timeout,
            )

    def drop(rolled_back: Session, _previous: object = None) -> None:
        rolled_back.info.pop(_PENDING_KEY, None)

    sa.event.listen(session, "after_commit", flush, once=True)
    sa.event.listen(session, "after_soft_rollback", drop, once=True)


def emit(session: Session, event_type: str, refs: dict[str, str | int | None]) -> list[int]:
    """Record an event for every subscription that wants it; deliveries start on commit.

    Args:
        session: The caller's session; the deliveries commit with the caller's change.
        event_type: One of `events.EVENT_TYPES`, e.g. "patient.updated".
        refs: Ids only, keys from `events.REF_KEYS`, e.g. {"connection_id": 3,
            "resource_type": "Patient", "resource_id": "pt-1", "version_id": "4"}.
            `connection_id` and `resource_type` drive the subscription filters.

    Returns:
        The ids of the deliveries created (empty when nobody subscribes).

    Raises:
        events.InvalidEvent: unknown type or a reference that is not an id.
    """
    clean = check_event(event_type, refs)
    subs = session.exec(select(WebhookSubscription).where(WebhookSubscription.active)).all()
    event_id = str(uuid.uuid4())
    created: list[tuple[int, int, float]] = []
    for sub in subs:
        if not _matches(sub, event_type, clean):
            continue
        row = WebhookDelivery(
            subscription_id=sub.id, event_id=event_id, event_type=event_type, event_ref=clean
        )
        session.add(row)
        session.flush()
        created.append((row.id, sub.id, sub.timeout_seconds))
    if created:
        _enqueue_after_commit(session, created)
    return [delivery_id for delivery_id, _, _ in created]
