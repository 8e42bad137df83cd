"""Operator actions on deliveries: send again by hand, and send a test event now."""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from sqlmodel import Session

from ...models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from .. import audit
from . import queueing
from .delivery import finish, send
from .events import TEST_EVENT


class DeliveryNotFound(LookupError):
    """No such delivery (or its subscription is gone)."""


class TestResult(BaseModel):
    """What the receiver answered to a test event."""

    delivery_id: int
    event_id: str
    status: int | None
    ms: int
    error: str | None
    ok: bool


def redeliver(session: Session, *, delivery_id: int, actor: audit.Actor) -> WebhookDelivery:
    """Queue a delivery again now, with a fresh round of retries (any status)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    sub = session.get(WebhookSubscription, delivery.subscription_id) if delivery else None
    if delivery is None or sub is None:
        raise DeliveryNotFound(f"no delivery {delivery_id}")
    delivery.status, delivery.next_attempt_at = DeliveryStatus.PENDING, None
    session.add(delivery)
    audit.record(
        session,
        actor=actor,
        action="webhook_delivery.redeliver",
        target_type="webhook_delivery",
        target_id=delivery.id,
        details={"subscription_id": sub.id, "event_id": delivery.event_id},
    )
    session.commit()
    queueing.enqueue_delivery(
        delivery_id=delivery.id,
        subscription_id=sub.id,
        expected_attempts=delivery.attempts,
        timeout=sub.timeout_seconds,
        manual=True,
    )
    return delivery


def send_test(session: Session, *, sub: WebhookSubscription, actor: audit.Actor) -> TestResult:
    """Send a signed `webhook.test` event now (inactive subscriptions too) and report the
    receiver's answer. One attempt, no retries; it is logged like any delivery."""
    delivery = WebhookDelivery(
        subscription_id=sub.id,
        event_id=str(uuid.uuid4()),
        event_type=TEST_EVENT,
        event_ref={},
        attempts=1,
        status=DeliveryStatus.DELIVERING,
    )
    session.add(delivery)
    audit.record(
        session,
        actor=actor,
        action="webhook_subscription.test",
        target_type="webhook_subscription",
        target_id=sub.id,
    )
    session.commit()
    result = send(sub, delivery)
    finish(session, sub, delivery, result, manual=True, test=True)
    return TestResult(
        delivery_id=delivery.id,
        event_id=delivery.event_id,
        status=result.status,
        ms=result.ms,
        error=result.error,
        ok=result.ok,
    )
