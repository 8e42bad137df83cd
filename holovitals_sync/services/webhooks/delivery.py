"""One delivery attempt: build the body from ids, sign it, POST it, log it, plan a retry.

The body is built when the attempt runs (never stored): event id, type, time and resource
references, and for a subscription that opted in to clinical content the stored resource
itself (`content`), read at that moment. Every attempt appends {status, ms, error, at} to
the delivery's log. Timeouts, connection errors, 5xx and 429 are retried with exponential
backoff and jitter; other answers end the delivery. A subscription failing for
`webhook_disable_after_seconds` is switched off.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from sqlmodel import Session, select

from ...config import get_settings
from ...db import session_scope
from ...fhir.transport import shared_ssl_context
from ...models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from ...models.types import utcnow
from . import queueing, signing
from .content import content_for
from .events import TEST_EVENT
from .ssrf import PinnedTarget, TargetRefused
from .subscriptions import check_url, signing_secrets

log = logging.getLogger(__name__)
USER_AGENT = "HoloVitals-Sync-Webhooks/1"
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 3600


@dataclass(frozen=True)
class AttemptResult:
    """What the receiver answered (status None: no answer at all)."""

    status: int | None
    ms: int
    error: str | None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        if self.status is None:
            return self.error != "target refused"  # a refused target will not heal itself
        return self.status in RETRYABLE


def body_of(delivery: WebhookDelivery, content: Mapping[str, Any] | None = None) -> bytes:
    """The JSON body: ids and references, plus `content` (the stored resource, see
    `content.content_for`) only for a subscription that opted in to clinical content."""
    refs = dict(delivery.event_ref)
    data: dict[str, object] = {**refs}
    if refs.get("resource_type") and refs.get("resource_id"):
        data["reference"] = f"{refs['resource_type']}/{refs['resource_id']}"
    return orjson.dumps(
        {
            "id": delivery.event_id,
            "type": delivery.event_type,
            "time": delivery.created_at.isoformat(),
            "data": data,
            **(content or {}),
        }
    )


def headers_for(sub: WebhookSubscription, delivery: WebhookDelivery, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signing.SIGNATURE_HEADER: signing.sign(body, signing_secrets(sub), algorithm=sub.algorithm),
        signing.EVENT_ID_HEADER: delivery.event_id,
        signing.EVENT_TYPE_HEADER: delivery.event_type,
    }


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), MAX_RETRY_AFTER) if value.isdecimal() else None


def send(
    sub: WebhookSubscription, delivery: WebhookDelivery, content: Mapping[str, Any] | None = None
) -> AttemptResult:
    """POST one signed delivery (with `content` in its body, see `body_of`); never raises
    (every outcome is an AttemptResult)."""
    started = time.monotonic()
    try:
        target = check_url(sub.url)  # again at send time: DNS may point elsewhere now
    except TargetRefused:
        return AttemptResult(None, 0, "target refused")
    body = body_of(delivery, content)
    try:
        response = post_to(
            target, body, headers_for(sub, delivery, body), timeout=sub.timeout_seconds
        )
    except httpx.TimeoutException:
        return AttemptResult(None, _ms(started), "timeout")
    except httpx.HTTPError as exc:
        return AttemptResult(None, _ms(started), type(exc).__name__)
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return AttemptResult(response.status_code, _ms(started), error, _retry_after(response))


def post_to(
    target: PinnedTarget, body: bytes, headers: Mapping[str, str], *, timeout: float
) -> httpx.Response:
    """POST to the address just vetted (no redirects); SNI and the certificate check still
    use the subscription's host name.

    A fresh client per attempt, as jobs run in forked children (see STYLE: Jobs), but on the
    process's one TLS context: building a context per client cost ~20 ms of CPU.
    """
    with httpx.Client(
        timeout=timeout, follow_redirects=False, verify=shared_ssl_context(True)
    ) as client:
        return client.post(
            target.url,
            content=body,
            headers={**headers, "Host": target.host},
            extensions={"sni_hostname": target.host.split(":")[0]},
        )


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def backoff(sub: WebhookSubscription, retry_number: int, retry_after: float | None) -> float:
    """Seconds before retry `retry_number` (1-based): the subscription's schedule, or
    doubling past its end, with +-20 % jitter so many failed deliveries do not return in
    one wave; a receiver's Retry-After wins when it asks for longer."""
    steps = sub.backoff_seconds or [10]
    base = (
        steps[retry_number - 1]
        if retry_number <= len(steps)
        else steps[-1] * 2 ** (retry_number - len(steps))
    )
    delay = base * random.uniform(0.8, 1.2)
    return max(delay, retry_after or 0.0)


def record(delivery: WebhookDelivery, result: AttemptResult, *, manual: bool = False) -> None:
    """Append one attempt to the delivery's log (status, latency, error; no body)."""
    entry = {
        "status": result.status,
        "ms": result.ms,
        "error": result.error,
        "at": utcnow().isoformat(),
        **({"manual": True} if manual else {}),
    }
    delivery.attempt_log = [*delivery.attempt_log, entry]
    delivery.response_status, delivery.response_ms = result.status, result.ms
    delivery.last_error = result.error


def claim(session: Session, delivery_id: int, expected_attempts: int) -> bool:
    """Take the attempt: attempts must still be `expected_attempts` (a stale job loses)."""
    table = WebhookDelivery.__table__
    result = session.execute(
        sa.update(table)
        .where(
            table.c.id == delivery_id,
            table.c.attempts == expected_attempts,
            table.c.status.notin_([DeliveryStatus.DELIVERED.value, DeliveryStatus.CANCELLED.value]),
        )
        .values(
            attempts=expected_attempts + 1,
            status=DeliveryStatus.DELIVERING.value,
            updated_at=utcnow(),
        )
    )
    session.commit()
    return result.rowcount == 1


# A claimed attempt runs at most the RQ job timeout (the subscription's timeout + 30 s, see
# queueing.enqueue_delivery); one still "delivering" after that lost its worker.
STALL_GRACE_SECONDS = 30 + 15


def recover_stalled(session: Session) -> list[int]:
    """Put back deliveries whose worker died mid-attempt; returns their ids.

    The claim moved the delivery to `delivering` and counted the attempt, so its RQ job,
    if RQ ever ran it again, would be turned away as stale. Each such delivery is logged
    as a failed attempt ("worker lost") and queued again with the same event id, so a
    receiver that did get the first attempt can drop the repeat.
    """
    now = utcnow()
    rows = session.exec(
        select(WebhookDelivery, WebhookSubscription)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(WebhookDelivery.status == DeliveryStatus.DELIVERING,
               WebhookDelivery.updated_at < now - timedelta(seconds=STALL_GRACE_SECONDS))
    ).all()  # fmt: skip
    stalled = [
        (d, sub)
        for d, sub in rows
        if d.updated_at <= now - timedelta(seconds=sub.timeout_seconds + STALL_GRACE_SECONDS)
    ]
    for delivery, _ in stalled:
        record(delivery, AttemptResult(None, 0, "worker lost"))
        delivery.status, delivery.next_attempt_at = DeliveryStatus.RETRYING, now
        session.add(delivery)
    session.commit()
    for delivery, sub in stalled:
        queueing.enqueue_delivery(
            delivery_id=delivery.id,
            subscription_id=sub.id,
            expected_attempts=delivery.attempts,
            timeout=sub.timeout_seconds,
        )
    if stalled:
        log.warning(
            "webhook deliveries put back after a lost worker: %s", [d.id for d, _ in stalled]
        )
    return [d.id for d, _ in stalled]


def deliver(delivery_id: int, expected_attempts: int, manual: bool = False) -> str:
    """Run one attempt of a delivery (the RQ job); returns the delivery's new status.

    `manual` marks the first attempt of a redelivery by hand: it starts a fresh round of
    retries.
    """
    with session_scope() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            return "gone"  # the subscription was deleted: end quietly
        sub = session.get(WebhookSubscription, delivery.subscription_id)
        if sub is None or not sub.active:
            delivery.status = DeliveryStatus.CANCELLED
            session.add(delivery)
            return delivery.status.value
        if not claim(session, delivery_id, expected_attempts):
            return "stale"
    with session_scope() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        sub = session.get(WebhookSubscription, delivery.subscription_id)
        # Read now, never stored: the resource as HoloVitals holds it at this attempt.
        content = content_for(session, delivery.event_ref) if sub.include_content else None
        result = send(sub, delivery, content)
        finish(session, sub, delivery, result, manual=manual)
        return delivery.status.value


def finish(
    session: Session,
    sub: WebhookSubscription,
    delivery: WebhookDelivery,
    result: AttemptResult,
    *,
    manual: bool = False,
    test: bool = False,
) -> None:
    """Store the attempt's outcome, update the subscription's health, queue a retry.

    A test event (`test`) is logged but neither retried nor counted in the subscription's
    health: an operator probing a broken endpoint must not get it disabled.
    """
    record(delivery, result, manual=manual)
    now = utcnow()
    retry_in = None
    if test:
        delivery.status = DeliveryStatus.DELIVERED if result.ok else DeliveryStatus.FAILED
        delivery.delivered_at = now if result.ok else None
    elif result.ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
            DeliveryStatus.DELIVERED,
            now,
            None,
        )
        sub.last_success_at, sub.failure_streak, sub.last_delivery_at = now, 0, now
    else:
        retry_in = _failed(session, sub, delivery, result)
    session.add_all([sub, delivery])
    session.commit()
    if retry_in is not None:
        queueing.enqueue_delivery(
            delivery_id=delivery.id,
            subscription_id=sub.id,
            expected_attempts=delivery.attempts,
            timeout=sub.timeout_seconds,
            delay=retry_in,
        )
    log.info(
        "webhook delivery %s attempt %s: %s %s ms",
        delivery.id,
        delivery.attempts,
        result.status or result.error,
        result.ms,
    )


def _failed(
    session: Session, sub: WebhookSubscription, delivery: WebhookDelivery, result: AttemptResult
) -> float | None:
    """Mark a failed attempt; returns the delay of the retry to queue, if any."""
    now = utcnow()
    sub.last_delivery_at = now
    sub.failure_streak += 1
    retries_used = _round_attempts(delivery) - 1
    retry_in = None
    if result.retryable and retries_used < sub.max_retries and sub.active:
        retry_in = backoff(sub, retries_used + 1, result.retry_after)
        delivery.status = DeliveryStatus.RETRYING
        delivery.next_attempt_at = now + timedelta(seconds=retry_in)
    else:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
    maybe_disable(session, sub)
    return retry_in


def _round_attempts(delivery: WebhookDelivery) -> int:
    """Attempts since the last manual redelivery (each redelivery gets fresh retries)."""
    count = 0
    for entry in reversed(delivery.attempt_log):
        count += 1
        if entry.get("manual"):
            break
    return count


def maybe_disable(session: Session, sub: WebhookSubscription) -> None:
    """Switch a subscription off once it has failed without a success for too long."""
    window = timedelta(seconds=get_settings().webhook_disable_after_seconds)
    failing_since = _failing_since(session, sub)
    if failing_since is not None and utcnow() - failing_since >= window:
        sub.active = False
        log.warning(
            "webhook subscription %s disabled after failing since %s",
            sub.id,
            failing_since.isoformat(),
        )


def _failing_since(session: Session, sub: WebhookSubscription) -> datetime | None:
    """The first failed delivery after the last success (no column stores it)."""
    query = select(sa.func.min(WebhookDelivery.created_at)).where(
        WebhookDelivery.subscription_id == sub.id,
        WebhookDelivery.status.in_(  # type: ignore[attr-defined]
            [
                DeliveryStatus.RETRYING,
                DeliveryStatus.FAILED,
                DeliveryStatus.DELIVERING,
            ]
        ),
        WebhookDelivery.attempts > 0,
        WebhookDelivery.event_type != TEST_EVENT,
    )
    if sub.last_success_at is not None:
        query = query.where(WebhookDelivery.created_at > sub.last_success_at)
    first = session.exec(query).one()
    if first is not None and first.tzinfo is None:
        first = first.replace(tzinfo=UTC)  # SQLite's MIN() comes back as a naive value
    return first
