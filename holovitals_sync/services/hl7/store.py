"""Storing accepted messages, many per transaction, encrypted (they carry PHI).

The listener hands over every message accepted while the previous commit ran; one
executemany of a cached `INSERT ... ON CONFLICT DO NOTHING RETURNING` stores them all (the
same group commit as the webhook receiver's, `services.webhooks.store`). A repeated message
(same sender and MSH-10) inserts nothing and gets no id: it is acknowledged again and not
processed twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ...models import HL7Message, InboundStatus
from ...models.types import utcnow
from ..crypto import cipher


class Accepted(NamedTuple):
    """One message to store: where it goes, its key, and its bytes as received."""

    connection_id: int
    sender: str
    control_id: str
    message_type: str
    body: bytes


@cache
def _insert(dialect: str) -> sa.Insert:
    table = HL7Message.__table__
    module = postgresql if dialect == "postgresql" else sqlite
    return (
        module.insert(table)
        .on_conflict_do_nothing(index_elements=["connection_id", "sender", "control_id"])
        .returning(table.c.id, table.c.connection_id, table.c.sender, table.c.control_id)
    )


def store_messages(connection: sa.Connection, messages: Sequence[Accepted]) -> list[int | None]:
    """Insert and commit; the new row id per message, None for a repeat."""
    if not messages:
        return []
    now, fernet = utcnow(), cipher()
    rows = [
        {
            "connection_id": m.connection_id,
            "sender": m.sender,
            "control_id": m.control_id,
            "message_type": m.message_type,
            "body_encrypted": fernet.encrypt(m.body).decode("ascii"),
            "status": InboundStatus.RECEIVED,
            "received_at": now,
        }
        for m in messages
    ]
    result = connection.execute(_insert(connection.dialect.name), rows)
    stored = {(cid, sender, ctl): int(mid) for mid, cid, sender, ctl in result}
    connection.commit()
    # The first of two identical keys in one batch gets the id; the second is a repeat.
    return [stored.pop((m.connection_id, m.sender, m.control_id), None) for m in messages]


def read_body(row: HL7Message) -> bytes:
    """The message's bytes, decrypted (for processing only; never logged or shown)."""
    return cipher().decrypt(row.body_encrypted.encode("ascii"))
