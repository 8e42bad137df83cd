"""A connection's HL7 v2 ADT feeds: the senders mapped to it (admin changes them) and what
the feed is doing (viewer). Counts, reasons, control ids and event types; never content."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from ..models import EHRConnection, HL7Feed, HL7Message, InboundStatus
from ..services.hl7 import feeds as service
from ..services.hl7.stats import feed_view
from ..services.platform.redis import redis_connection
from .deps import Admin, SessionDep, Viewer
from .strict import strict_body

router = APIRouter(prefix="/api/connections/{connection_id}/hl7", tags=["hl7"])


class FeedIn(BaseModel):
    sending_application: str = Field(min_length=1, max_length=180)  # MSH-3
    sending_facility: str = Field(default="", max_length=180)  # MSH-4; "" = any facility
    # Assigning authority (PID-3.4 namespace id) -> FHIR identifier system.
    identifier_systems: dict[str, str] = Field(default_factory=dict, max_length=50)


FeedBody = strict_body(FeedIn)


class FeedOut(BaseModel):
    id: int
    connection_id: int
    sending_application: str
    sending_facility: str
    identifier_systems: dict[str, str]
    created_at: datetime

    @classmethod
    def of(cls, row: HL7Feed) -> FeedOut:
        return cls.model_validate(row, from_attributes=True)


class MessageOut(BaseModel):
    id: int
    sender: str
    control_id: str
    message_type: str
    status: InboundStatus
    outcome: str | None
    patient_id: str | None
    job_id: int | None
    received_at: datetime
    processed_at: datetime | None

    @classmethod
    def of(cls, row: HL7Message) -> MessageOut:
        return cls.model_validate(row, from_attributes=True)


class ActivityOut(BaseModel):
    connection_id: int
    messages_per_minute: list[int]  # the last 15 minutes, oldest first
    last_message_at: str | None
    acks_today: dict[str, int]  # AA, AE, AR
    rejects: dict[str, int]  # reason -> count
    recent_rejects: list[dict[str, Any]]  # at, reason, peer
    senders: list[dict[str, Any]]  # open connections: peer, sender, since, messages
    stored: dict[str, int]  # stored messages per processing status
    messages: list[MessageOut]  # the newest stored messages


def _connection(session: SessionDep, connection_id: int) -> EHRConnection:
    connection = session.get(EHRConnection, connection_id)
    if connection is None:
        raise HTTPException(404, "connection not found")
    return connection


@router.get("/feeds", response_model=list[FeedOut])
def list_feeds(connection_id: int, _viewer: Viewer, session: SessionDep) -> list[FeedOut]:
    """The senders (MSH-3/MSH-4) whose ADT messages belong to this connection."""
    _connection(session, connection_id)
    return [FeedOut.of(f) for f in service.list_feeds(session, connection_id)]


@router.post("/feeds", response_model=FeedOut, status_code=201)
def add_feed(connection_id: int, body: FeedBody, admin: Admin, session: SessionDep) -> FeedOut:
    """Map a sending application (and facility) to this connection; 409 if mapped already."""
    connection = _connection(session, connection_id)
    try:
        feed = service.add_feed(
            session,
            connection=connection,
            sending_application=body.sending_application,
            sending_facility=body.sending_facility,
            identifier_systems=body.identifier_systems,
            actor=admin.actor,
        )
    except service.SenderTaken as exc:
        raise HTTPException(409, str(exc)) from None
    except service.InvalidFeed as exc:
        raise HTTPException(422, str(exc)) from None
    return FeedOut.of(feed)


@router.delete("/feeds/{feed_id}", status_code=204)
def remove_feed(connection_id: int, feed_id: int, admin: Admin, session: SessionDep) -> None:
    """Unmap a sender (its next messages are answered AR); stored messages stay."""
    try:
        service.remove_feed(
            session, connection_id=connection_id, feed_id=feed_id, actor=admin.actor
        )
    except service.FeedNotFound:
        raise HTTPException(404, "feed not found") from None


@router.get("/activity", response_model=ActivityOut)
def activity(
    connection_id: int, _viewer: Viewer, session: SessionDep, limit: int = Query(20, ge=1, le=200)
) -> ActivityOut:
    """Connected senders, messages per minute, last message, ACK codes, rejects by reason,
    and the newest stored messages (ids, control ids, events, outcomes)."""
    _connection(session, connection_id)
    view = feed_view(redis_connection(), connection_id)
    return ActivityOut(
        **view,
        stored=service.status_counts(session, connection_id),
        messages=[
            MessageOut.of(m) for m in service.recent_messages(session, connection_id, limit=limit)
        ],
    )
