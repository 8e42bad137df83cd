"""Outbound webhook subscriptions and deliveries, and inbound events from EHRs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from .enums import DeliveryStatus, InboundStatus, SignatureAlgorithm
from .types import created_at_field, enum_type, json_field, time_field, updated_at_field


class WebhookSubscription(SQLModel, table=True):
    __tablename__ = "webhook_subscription"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    url: str = Field(max_length=1000)
    secret_encrypted: str  # Fernet token; shown once at creation
    # During rotation both secrets sign until the grace period ends.
    previous_secret_encrypted: str | None = None
    previous_secret_expires_at: datetime | None = time_field()
    algorithm: SignatureAlgorithm = Field(
        default=SignatureAlgorithm.HMAC_SHA256, sa_type=enum_type(SignatureAlgorithm)
    )
    event_types: list[str] = json_field(list)
    filter_connection_id: int | None = Field(
        default=None, foreign_key="ehr_connection.id", ondelete="CASCADE"
    )
    filter_resource_types: list[str] = json_field(list)
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    max_retries: int = Field(default=5, ge=0, le=20)
    backoff_seconds: list[int] = json_field(lambda: [10, 60, 300, 1800, 7200])
    active: bool = Field(default=True, index=True)
    # Off by default: deliveries name resources by reference and carry no clinical content.
    include_content: bool = Field(default=False)
    last_delivery_at: datetime | None = time_field()
    last_success_at: datetime | None = time_field()
    failure_streak: int = 0
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription; attempts update it in place, the log keeps them."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        # An event is delivered to a subscription once, whatever retries and restarts do.
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_delivery_sub_event"),
        sa.Index("ix_delivery_sub_created", "subscription_id", "created_at"),
        sa.Index("ix_delivery_status_next", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="webhook_subscription.id", ondelete="CASCADE")
    event_id: str = Field(max_length=64)  # uuid, sent as the delivery's idempotency key
    event_type: str = Field(max_length=64)
    # Ids the body is built from when the attempt runs (never the PHI payload itself).
    event_ref: dict[str, Any] = json_field()
    status: DeliveryStatus = Field(
        default=DeliveryStatus.PENDING, sa_type=enum_type(DeliveryStatus)
    )
    attempts: int = 0
    attempt_log: list[dict[str, Any]] = json_field(list)  # status, ms, error per attempt
    response_status: int | None = None
    response_ms: int | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    next_attempt_at: datetime | None = time_field()
    delivered_at: datetime | None = time_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class InboundEvent(SQLModel, table=True):
    """A webhook an EHR sent us: stored before it is acknowledged, processed on the queue."""

    __tablename__ = "inbound_event"
    __table_args__ = (
        # A replayed event id is accepted once only.
        sa.UniqueConstraint("connection_id", "event_key", name="uq_inbound_conn_key"),
        sa.Index("ix_inbound_conn_status", "connection_id", "status", "received_at"),
        # A job's events: the rechecks its run reads, and `ON DELETE SET NULL` from sync_job.
        sa.Index("ix_inbound_job", "job_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int | None = Field(
        default=None, foreign_key="ehr_connection.id", ondelete="CASCADE"
    )
    event_key: str | None = Field(default=None, max_length=200)
    source: str = Field(default="fhir_subscription", max_length=64)
    event_type: str | None = Field(default=None, max_length=64)
    resource_type: str | None = Field(default=None, max_length=64)
    resource_id: str | None = Field(default=None, max_length=200)
    patient_ref: str | None = Field(default=None, max_length=200)
    # The job that syncs it reads the focus afterwards (a delete, or id-only: see
    # `notifications.EventInfo.recheck`); a 404/410 tombstones the record.
    recheck: bool = Field(default=False)
    status: InboundStatus = Field(default=InboundStatus.RECEIVED, sa_type=enum_type(InboundStatus))
    rejection_reason: str | None = Field(default=None, max_length=200)  # no payload, ever
    job_id: int | None = Field(default=None, foreign_key="sync_job.id", ondelete="SET NULL")
    received_at: datetime = created_at_field()
    processed_at: datetime | None = time_field()


class InboundRejection(SQLModel, table=True):
    """Refused inbound requests, counted by connection, kind and reason: one row each,
    however many arrive (rows per refusal once let an attacker fill the disk). The newest
    few, with their time, are kept as a sample in Redis (`services.webhooks.rejections`)."""

    __tablename__ = "inbound_rejection"
    __table_args__ = (
        sa.UniqueConstraint("connection_id", "status", "reason", name="uq_inbound_rejection"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # 0: a connection id that names no connection (no foreign key: counts outlive rows).
    connection_id: int = Field(default=0)
    status: str = Field(max_length=16)  # "rejected" or "duplicate"
    reason: str = Field(max_length=200)  # a fixed phrase, never payload
    count: int = Field(default=0)
    first_at: datetime = created_at_field()
    last_at: datetime = created_at_field()
