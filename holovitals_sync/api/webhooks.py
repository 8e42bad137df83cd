"""Outbound webhook subscriptions, their deliveries, inbound statistics, inbound auth.

Operators manage subscriptions; viewers read them; setting a connection's inbound secret is
an administrator's job like its other credentials. Secrets appear once, in the answer that
creates them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlmodel import select

from ..models import EHRConnection, WebhookDelivery, WebhookSubscription
from ..services.webhooks import EVENT_GROUPS, actions, subscriptions
from ..services.webhooks.inbound_config import InboundAuthIn, InboundAuthOut, set_inbound_auth
from ..services.webhooks.ssrf import TargetRefused
from ..services.webhooks.stats import InboundStats, inbound_stats
from ..services.webhooks.subscriptions import (
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
)
from .deps import Admin, Operator, SessionDep, Viewer
from .strict import strict_body

router = APIRouter(prefix="/api/sync/webhooks", tags=["webhooks"])
connections_router = APIRouter(prefix="/api/connections", tags=["connections"])


class DeliveryOut(BaseModel):
    id: int
    subscription_id: int
    event_id: str
    event_type: str
    event_ref: dict[str, Any]
    status: str
    attempts: int
    attempt_log: list[dict[str, Any]]
    response_status: int | None
    response_ms: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class RotateIn(BaseModel):
    grace_seconds: int | None = Field(default=None, ge=0, le=30 * 86_400)


class RotateOut(BaseModel):
    secret: str  # shown once
    previous_secret_expires_at: datetime | None


def _sub(session: SessionDep, subscription_id: int) -> WebhookSubscription:
    row = session.get(WebhookSubscription, subscription_id)
    if row is None:
        raise HTTPException(404, "no such webhook subscription")
    return row


def _check_connection(session: SessionDep, connection_id: int | None) -> None:
    if connection_id is not None and session.get(EHRConnection, connection_id) is None:
        raise HTTPException(422, "filter_connection_id: no such connection")


# Request bodies with strict scalars (see api.strict): `true` is not an integer here.
SubscriptionBody = strict_body(SubscriptionIn)
SubscriptionPatchBody = strict_body(SubscriptionPatch)
RotateBody = strict_body(RotateIn)
InboundAuthBody = strict_body(InboundAuthIn)


@router.get("/event-types", response_model=dict[str, list[str]])
def event_types(_viewer: Viewer) -> dict[str, list[str]]:
    """The event types a subscription can choose (sixteen), grouped."""
    return {group: list(types) for group, types in EVENT_GROUPS.items()}


@router.get("/inbound/stats", response_model=list[InboundStats])
def inbound_statistics(_viewer: Viewer, session: SessionDep) -> list[InboundStats]:
    """Inbound events per connection: by status, housekeeping, rejections by reason."""
    return inbound_stats(session)


@router.get("", response_model=list[SubscriptionOut])
def list_subscriptions(_viewer: Viewer, session: SessionDep) -> list[SubscriptionOut]:
    """Every subscription (secrets never included)."""
    rows = session.exec(select(WebhookSubscription).order_by(WebhookSubscription.id))
    return [SubscriptionOut.of(row) for row in rows]


@router.post("", response_model=SubscriptionCreated, status_code=201)
def create_subscription(
    body: SubscriptionBody, operator: Operator, session: SessionDep
) -> SubscriptionCreated:
    """Add a subscription; the answer carries its signing secret, the only time it shows.

    `include_content: true` opts in to clinical content (the stored resource in each body
    about one: PHI leaves the system); it is off unless asked for, and audited."""
    _check_connection(session, body.filter_connection_id)
    try:
        row, secret = subscriptions.create(session, data=body, actor=operator.actor)
    except TargetRefused as exc:
        raise HTTPException(422, f"url refused: {exc}") from None
    return SubscriptionCreated(**SubscriptionOut.of(row).model_dump(), secret=secret)


@router.get("/{subscription_id}", response_model=SubscriptionOut)
def get_subscription(subscription_id: int, _viewer: Viewer, session: SessionDep) -> SubscriptionOut:
    """One subscription."""
    return SubscriptionOut.of(_sub(session, subscription_id))


@router.patch("/{subscription_id}", response_model=SubscriptionOut)
def update_subscription(
    subscription_id: int, body: SubscriptionPatchBody, operator: Operator, session: SessionDep
) -> SubscriptionOut:
    """Change a subscription; a new URL passes the SSRF guard again, and switching
    `include_content` is recorded in the audit log with its old and new value."""
    row = _sub(session, subscription_id)
    _check_connection(session, body.filter_connection_id)
    try:
        subscriptions.update(session, row=row, patch=body, actor=operator.actor)
    except TargetRefused as exc:
        raise HTTPException(422, f"url refused: {exc}") from None
    return SubscriptionOut.of(row)


@router.delete("/{subscription_id}", status_code=204)
def delete_subscription(subscription_id: int, operator: Operator, session: SessionDep) -> None:
    """Delete a subscription; its pending deliveries end quietly."""
    subscriptions.delete(session, row=_sub(session, subscription_id), actor=operator.actor)


@router.post("/{subscription_id}/test", response_model=actions.TestResult)
def send_test_event(
    subscription_id: int, operator: Operator, session: SessionDep
) -> actions.TestResult:
    """Send a signed `webhook.test` event now and return the receiver's answer."""
    return actions.send_test(session, sub=_sub(session, subscription_id), actor=operator.actor)


@router.post("/{subscription_id}/rotate-secret", response_model=RotateOut)
def rotate_secret(
    subscription_id: int, operator: Operator, session: SessionDep, body: RotateBody | None = None
) -> RotateOut:
    """A new signing secret (shown once); the old one keeps signing for the grace period."""
    row = _sub(session, subscription_id)
    secret = subscriptions.rotate_secret(
        session, row=row, actor=operator.actor, grace_seconds=body.grace_seconds if body else None
    )
    return RotateOut(secret=secret, previous_secret_expires_at=row.previous_secret_expires_at)


@router.get("/{subscription_id}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    subscription_id: int, _viewer: Viewer, session: SessionDep, limit: int = Query(50, ge=1, le=500)
) -> list[DeliveryOut]:
    """Recent deliveries of a subscription, newest first, with every attempt."""
    _sub(session, subscription_id)
    rows = session.exec(
        select(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == subscription_id)
        .order_by(WebhookDelivery.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    return [DeliveryOut(**row.model_dump()) for row in rows]


@router.post("/deliveries/{delivery_id}/redeliver", response_model=DeliveryOut, status_code=202)
def redeliver(delivery_id: int, operator: Operator, session: SessionDep) -> DeliveryOut:
    """Send a delivery again (queued now, with a fresh round of retries)."""
    try:
        row = actions.redeliver(session, delivery_id=delivery_id, actor=operator.actor)
    except actions.DeliveryNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return DeliveryOut(**row.model_dump())


@connections_router.put("/{connection_id}/inbound-auth", response_model=InboundAuthOut)
def put_inbound_auth(
    connection_id: int, body: InboundAuthBody, admin: Admin, session: SessionDep
) -> InboundAuthOut:
    """Set how this connection's EHR signs its webhooks; the secret is shown once."""
    connection = session.get(EHRConnection, connection_id)
    if connection is None:
        raise HTTPException(404, "no such connection")
    return set_inbound_auth(session, connection=connection, data=body, actor=admin.actor)
