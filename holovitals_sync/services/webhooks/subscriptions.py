"""Outbound webhook subscriptions: create, change, delete, rotate the signing secret.

The secret is generated here, returned once at creation (and once per rotation) and stored
only encrypted. After a rotation the previous secret keeps signing for a grace period, so
subscribers can switch without dropping a delivery.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator
from sqlmodel import Session

from ...config import get_settings
from ...models import SignatureAlgorithm, WebhookSubscription
from ...models.types import utcnow
from .. import audit
from ..crypto import decrypt, encrypt
from ..patches import Patch
from .events import EVENT_TYPES
from .ssrf import PinnedTarget, TargetRefused, check_target

SECRET_PREFIX = "whsec_"


def _known_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return value
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event types {unknown}; known: {list(EVENT_TYPES)}")
    if not value:
        raise ValueError("choose at least one event type")
    return sorted(set(value), key=EVENT_TYPES.index)


class SubscriptionPatch(Patch):
    """Fields an operator may change; unset fields stay as they are (`null` drops a filter;
    for `include_content` it keeps the current choice)."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset(
        {"filter_connection_id", "filter_resource_types", "include_content"}
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = Field(default=None, min_length=8, max_length=1000, pattern=r"^https?://")
    algorithm: SignatureAlgorithm | None = None
    event_types: list[str] | None = None
    filter_connection_id: int | None = None
    filter_resource_types: list[str] | None = None
    # At least a second: 5e-324 was accepted, and no receiver answers in a femtosecond.
    timeout_seconds: float | None = Field(default=None, ge=1, le=60)
    max_retries: int | None = Field(default=None, ge=0, le=20)
    backoff_seconds: list[int] | None = Field(default=None, min_length=1, max_length=20)
    active: bool | None = None
    # True sends the stored FHIR resource (PHI) in each delivery about one; see content.py.
    include_content: bool | None = None

    _types = field_validator("event_types")(_known_types)


class SubscriptionIn(SubscriptionPatch):
    """A new subscription: name, URL and event types are required."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset(
        {
            "filter_connection_id",
            "filter_resource_types",
            "include_content",
            "algorithm",
            "timeout_seconds",
            "max_retries",
            "backoff_seconds",
            "active",
        }
    )

    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=8, max_length=1000, pattern=r"^https?://")
    algorithm: SignatureAlgorithm = SignatureAlgorithm.HMAC_SHA256
    event_types: list[str]
    filter_resource_types: list[str] = Field(default_factory=list)
    timeout_seconds: float = Field(default=10.0, ge=1, le=60)
    max_retries: int = Field(default=5, ge=0, le=20)
    backoff_seconds: list[int] = Field(
        default_factory=lambda: [10, 60, 300, 1800, 7200], min_length=1, max_length=20
    )
    active: bool = True
    include_content: bool = False  # ids and references only unless asked for


class SubscriptionOut(BaseModel):
    """A subscription as the API shows it: never a secret."""

    id: int
    name: str
    url: str
    algorithm: SignatureAlgorithm
    event_types: list[str]
    filter_connection_id: int | None
    filter_resource_types: list[str]
    timeout_seconds: float
    max_retries: int
    backoff_seconds: list[int]
    active: bool
    include_content: bool
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None
    last_delivery_at: datetime | None
    last_success_at: datetime | None
    failure_streak: int
    created_at: datetime

    @classmethod
    def of(cls, row: WebhookSubscription) -> SubscriptionOut:
        data = row.model_dump()
        # No column records why; a subscription switched off with failures behind it was
        # switched off by the failure rule (see delivery.maybe_disable).
        data["disabled_reason"] = (
            "disabled after failing for too long" if not row.active and row.failure_streak else None
        )
        return cls(**data)


class SubscriptionCreated(SubscriptionOut):
    secret: str  # shown once


def check_url(url: str) -> PinnedTarget:
    """The SSRF guard with the configured allow-list; TargetRefused when refused."""
    return check_target(url, get_settings().webhook_allow_hosts)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def create(
    session: Session, *, data: SubscriptionIn, actor: audit.Actor
) -> tuple[WebhookSubscription, str]:
    """Save a subscription; returns it with its secret (the only time it is readable)."""
    check_url(data.url)
    secret = new_secret()
    row = WebhookSubscription(**data.model_dump(), secret_encrypted=encrypt(secret))
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="webhook_subscription.create",
        target_type="webhook_subscription",
        target_id=row.id,
        details={
            "event_types": row.event_types,
            "host": _host(row.url),
            "include_content": row.include_content,
        },
    )
    return row, secret


def update(
    session: Session, *, row: WebhookSubscription, patch: SubscriptionPatch, actor: audit.Actor
) -> WebhookSubscription:
    """Apply a PATCH; a new URL passes the SSRF guard first; re-activating clears failures."""
    changes: dict[str, Any] = patch.model_dump(exclude_unset=True)
    if changes.get("url"):
        check_url(changes["url"])
    if changes.get("active") and not row.active:
        changes["failure_streak"] = 0
    if changes.get("include_content") is None:
        changes.pop("include_content", None)  # null: leave it as it is
    details: dict[str, Any] = {"fields": sorted(changes)}
    if "include_content" in changes and changes["include_content"] != row.include_content:
        # Whether PHI leaves the system is the change an auditor looks for: say it plainly.
        details["include_content"] = {"from": row.include_content, "to": changes["include_content"]}
    row.sqlmodel_update(changes)
    row.updated_at = utcnow()
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="webhook_subscription.update",
        target_type="webhook_subscription",
        target_id=row.id,
        details=details,
    )
    return row


def delete(session: Session, *, row: WebhookSubscription, actor: audit.Actor) -> None:
    """Delete a subscription; its deliveries go with it and its queued jobs end quietly."""
    audit.record(
        session,
        actor=actor,
        action="webhook_subscription.delete",
        target_type="webhook_subscription",
        target_id=row.id,
    )
    session.delete(row)


def rotate_secret(
    session: Session,
    *,
    row: WebhookSubscription,
    actor: audit.Actor,
    grace_seconds: int | None = None,
) -> str:
    """Replace the secret; the old one also signs until the grace period ends."""
    grace = (
        get_settings().webhook_rotation_grace_seconds if grace_seconds is None else grace_seconds
    )
    secret = new_secret()
    row.previous_secret_encrypted = row.secret_encrypted if grace > 0 else None
    row.previous_secret_expires_at = utcnow() + timedelta(seconds=grace) if grace > 0 else None
    row.secret_encrypted = encrypt(secret)
    row.updated_at = utcnow()
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="webhook_subscription.rotate_secret",
        target_type="webhook_subscription",
        target_id=row.id,
        details={"grace_seconds": grace},
    )
    return secret


def signing_secrets(row: WebhookSubscription, now: datetime | None = None) -> list[str]:
    """The secrets that sign a delivery now: current first, then one in its grace period."""
    keys = [decrypt(row.secret_encrypted)]
    expires = row.previous_secret_expires_at
    if row.previous_secret_encrypted and expires and expires > (now or utcnow()):
        keys.append(decrypt(row.previous_secret_encrypted))
    return keys


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # refused by check_url before it gets here; never an error of its own
        return ""


__all__ = [
    "SubscriptionCreated",
    "SubscriptionIn",
    "SubscriptionOut",
    "SubscriptionPatch",
    "TargetRefused",
    "check_url",
    "create",
    "delete",
    "rotate_secret",
    "signing_secrets",
    "update",
]
