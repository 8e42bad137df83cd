""" "Send test event" for the dashboard: like `actions.send_test`, plus the receiver's words.

The operator configuring an endpoint wants to see what it answered (status, time and the
start of its body), so this sends the same signed `webhook.test` delivery through the same
SSRF guard and logging as `actions.send_test`, and keeps a short, printable excerpt of the
response body. The excerpt is the receiver's text, never anything of ours.
"""

from __future__ import annotations

import time
import uuid

import httpx
from pydantic import BaseModel
from sqlmodel import Session

from ...models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from .. import audit
from .delivery import AttemptResult, body_of, finish, headers_for, post_to
from .events import TEST_EVENT
from .ssrf import TargetRefused
from .subscriptions import check_url

EXCERPT_CHARS = 300


class ProbeResult(BaseModel):
    """What the receiver answered to a test event."""

    delivery_id: int
    status: int | None
    ms: int
    error: str | None
    ok: bool
    body_excerpt: str


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a response body, printable characters only, marked when cut."""
    clean = "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text[: limit + 1])
    return clean[:limit] + "…" if len(clean) > limit else clean


def _post(sub: WebhookSubscription, delivery: WebhookDelivery) -> tuple[AttemptResult, str]:
    started = time.monotonic()
    try:
        target = check_url(sub.url)
    except TargetRefused as exc:
        return AttemptResult(None, 0, "target refused"), str(exc)
    body = body_of(delivery)
    try:
        # Pinned to the vetted address like every delivery (no DNS rebinding in between).
        response = post_to(
            target, body, headers_for(sub, delivery, body), timeout=sub.timeout_seconds
        )
    except httpx.TimeoutException:
        return AttemptResult(None, _ms(started), "timeout"), ""
    except httpx.HTTPError as exc:
        return AttemptResult(None, _ms(started), type(exc).__name__), ""
    ms = _ms(started)
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return AttemptResult(response.status_code, ms, error), excerpt(response.text)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def send_test_event(
    session: Session, *, sub: WebhookSubscription, actor: audit.Actor
) -> ProbeResult:
    """Send a signed `webhook.test` now (one attempt, logged, not counted in health)."""
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
    result, text = _post(sub, delivery)
    finish(session, sub, delivery, result, manual=True, test=True)
    return ProbeResult(
        delivery_id=delivery.id,
        status=result.status,
        ms=result.ms,
        error=result.error,
        ok=result.ok,
        body_excerpt=text,
    )
