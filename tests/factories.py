"""Test data factories: users, tokens and connections through the real services."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from holovitals_sync.models import (
    AuthMethod,
    DeliveryStatus,
    EHRConnection,
    JobStatus,
    JobType,
    RequesterKind,
    Role,
    SyncJob,
    Vendor,
    WebhookDelivery,
    WebhookSubscription,
)
from holovitals_sync.services import audit, auth
from holovitals_sync.services.connections import ConnectionIn, create_connection

PASSWORD = "correct horse battery staple"
SYSTEM = audit.Actor.system("tests")


def make_user(session: Session, username: str, role: Role) -> auth.Principal:
    user = auth.create_user(session, username=username, password=PASSWORD, role=role,
                            actor=SYSTEM)  # fmt: skip
    return auth.Principal(user.id, user.username, user.role, via=audit.ActorKind.USER)


def make_token(session: Session, owner: auth.Principal, role: Role | None = None) -> str:
    token, _ = auth.create_api_token(session, owner=owner, name=f"{owner.username}-token",
                                     role=role or owner.role)  # fmt: skip
    return token


def make_connection(session: Session, name: str = "General Hospital", **overrides) -> EHRConnection:
    data = {
        "name": name,
        "vendor": Vendor.GENERIC,
        "base_url": "https://fhir.example.org/r4",
        "client_id": "hv-client",
        "auth_method": AuthMethod.CLIENT_SECRET_BASIC,
        "client_secret": "factory-secret-value",
    } | overrides
    return create_connection(session, data=ConnectionIn(**data), actor=SYSTEM)


def make_job(
    session: Session, connection_id: int, status: JobStatus = JobStatus.QUEUED, **overrides
) -> SyncJob:
    """A job row in a given state, without queueing anything."""
    fields = {
        "job_type": JobType.INCREMENTAL,
        "requested_by_kind": RequesterKind.SYSTEM,
        "requested_by": "tests",
        "last_error": "ServerError: HTTP 503" if status is JobStatus.FAILED else None,
        **overrides,
    }
    job = SyncJob(connection_id=connection_id, status=status, **fields)
    session.add(job)
    session.flush()
    return job


def make_subscription(
    session: Session, url: str = "https://93.184.215.14/hook", **overrides
) -> WebhookSubscription:
    """An outbound webhook subscription row (secret 'whsec_factory'), no SSRF check."""
    from holovitals_sync.services.crypto import encrypt

    fields = {"event_types": ["patient.updated"]} | overrides
    sub = WebhookSubscription(
        name="factory", url=url, secret_encrypted=encrypt("whsec_factory"), **fields
    )
    session.add(sub)
    session.flush()
    return sub


def make_delivery(session: Session, subscription_id: int, **overrides) -> WebhookDelivery:
    """A delivered delivery row of a subscription."""
    delivery = WebhookDelivery(
        subscription_id=subscription_id,
        event_id=uuid.uuid4().hex,
        event_type="patient.updated",
        event_ref={"resource_id": "pt-1"},
        status=DeliveryStatus.DELIVERED,
        attempts=1,
        **overrides,
    )
    session.add(delivery)
    session.flush()
    return delivery


def make_record(
    session: Session, connection_id: int, remote_id: str = "p1", resource_type: str = "Patient"
) -> int:
    """A synced record both sides agree on (no local change); its id."""
    from holovitals_sync.models import SyncedRecord

    record = SyncedRecord(
        connection_id=connection_id,
        resource_type=resource_type,
        remote_id=remote_id,
        remote_version="1",
        remote_body={"resourceType": resource_type, "id": remote_id},
    )
    session.add(record)
    session.flush()
    return int(record.id)


def make_conflict(
    session: Session, connection_id: int, remote_id: str = "pt-1", resource_type: str = "Basic"
) -> int:
    """An open field conflict (low severity on `Basic`) found by real detection; its id."""
    from holovitals_sync.models import SyncedRecord
    from holovitals_sync.services.conflicts import Incoming, detect_batch

    base = {"resourceType": resource_type, "id": remote_id, "code": {"text": "base"}}
    record = SyncedRecord(
        connection_id=connection_id,
        resource_type=resource_type,
        remote_id=remote_id,
        patient_ref=f"Patient/{remote_id}",
        base_body=base,
        local_body={**base, "code": {"text": "local"}},
        remote_body=base,
        remote_version="1",
        dirty=True,
    )
    session.add(record)
    session.flush()
    remote = {**base, "code": {"text": "remote"}, "meta": {"versionId": "2"}}
    (outcome,) = detect_batch(session, connection_id, None, [Incoming(record, remote, "2")])
    return outcome.conflict_id
