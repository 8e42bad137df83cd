"""Configuring a connection's HL7 v2 feeds: which sending application (and facility) is it.

A sender names itself in MSH-3 (application) and MSH-4 (facility); its messages go to the
connection whose feed names that pair, or that application at any facility (facility "").
One sender belongs to one connection. The listener reads the table within seconds of a
change (`mllp.feeds`).
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlmodel import Session, select

from ...models import EHRConnection, HL7Feed, HL7Message, InboundStatus
from .. import audit

# HD namespace ids as engines write them: no HL7 separators, no line breaks.
_NAME = re.compile(r"^[^|^~\\&\r\n]{1,180}$")
_FACILITY = re.compile(r"^[^|^~\\&\r\n]{0,180}$")
_SYSTEM = re.compile(r"^(urn:oid:[0-9.]{1,200}|urn:uuid:[0-9a-fA-F-]{36}|https?://\S{1,400})$")


class FeedNotFound(LookupError):
    """No such feed on this connection."""


class InvalidFeed(ValueError):
    """The feed's names or systems cannot be used; the message names the field."""


class SenderTaken(ValueError):
    """Another feed (maybe another connection's) names the same sender."""


def list_feeds(session: Session, connection_id: int) -> list[HL7Feed]:
    return list(
        session.exec(
            select(HL7Feed).where(HL7Feed.connection_id == connection_id).order_by(HL7Feed.id)
        )
    )


def _check(application: str, facility: str, systems: dict[str, str]) -> None:
    if not _NAME.match(application):
        raise InvalidFeed("sending_application: 1-180 characters, no HL7 separators")
    if not _FACILITY.match(facility):
        raise InvalidFeed("sending_facility: up to 180 characters, no HL7 separators")
    for authority, system in systems.items():
        if not _NAME.match(authority) or not _SYSTEM.match(system):
            raise InvalidFeed(
                "identifier_systems: assigning authority -> urn:oid:, urn:uuid: or http(s) URI"
            )


def add_feed(
    session: Session,
    *,
    connection: EHRConnection,
    sending_application: str,
    sending_facility: str,
    identifier_systems: dict[str, str],
    actor: audit.Actor,
) -> HL7Feed:
    """Map a sender to the connection (audited)."""
    _check(sending_application, sending_facility, identifier_systems)
    feed = HL7Feed(
        connection_id=connection.id,
        sending_application=sending_application,
        sending_facility=sending_facility,
        identifier_systems=identifier_systems,
    )
    try:
        with session.begin_nested():
            session.add(feed)
    except sa.exc.IntegrityError:
        raise SenderTaken("a feed for this sending application and facility exists") from None
    audit.record(
        session,
        actor=actor,
        action="hl7_feed.add",
        target_type="ehr_connection",
        target_id=connection.id,
        details={"feed_id": feed.id},
    )
    session.commit()
    return feed


def remove_feed(session: Session, *, connection_id: int, feed_id: int, actor: audit.Actor) -> None:
    """Unmap a sender: its next messages are refused (AR). Stored messages stay."""
    feed = session.get(HL7Feed, feed_id)
    if feed is None or feed.connection_id != connection_id:
        raise FeedNotFound(f"no feed {feed_id} on connection {connection_id}")
    session.delete(feed)
    audit.record(
        session,
        actor=actor,
        action="hl7_feed.remove",
        target_type="ehr_connection",
        target_id=connection_id,
        details={"feed_id": feed_id},
    )
    session.commit()


def recent_messages(
    session: Session, connection_id: int, *, limit: int = 20, status: InboundStatus | None = None
) -> list[HL7Message]:
    """The newest stored messages (their columns only; the body stays encrypted)."""
    query = select(HL7Message).where(HL7Message.connection_id == connection_id)
    if status is not None:
        query = query.where(HL7Message.status == status)
    return list(session.exec(query.order_by(HL7Message.id.desc()).limit(limit)))  # type: ignore[union-attr]


def status_counts(session: Session, connection_id: int) -> dict[str, int]:
    """Stored messages per processing status."""
    rows = session.exec(
        select(HL7Message.status, sa.func.count())
        .where(HL7Message.connection_id == connection_id)
        .group_by(HL7Message.status)
    )
    return {str(status): int(n) for status, n in rows}
