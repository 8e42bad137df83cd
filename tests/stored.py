"""What a connection has stored, read back for assertions (shared by the sync test suites)."""

from __future__ import annotations

from sqlmodel import select

from holovitals_sync.adapters import content_hash
from holovitals_sync.db import session_scope
from holovitals_sync.models import SyncedRecord


def local_hashes(connection_id: int) -> dict[tuple[str, str], str]:
    """(type, id) -> content hash of each stored body, recomputed from the body itself
    (so a body mangled on the way into the database shows), and checked against the
    hash column the upsert compares."""
    with session_scope() as session:
        rows = session.exec(
            select(
                SyncedRecord.resource_type,
                SyncedRecord.remote_id,
                SyncedRecord.content_hash,
                SyncedRecord.remote_body,
            ).where(SyncedRecord.connection_id == connection_id)
        )
        out = {}
        for rtype, rid, stored, body in rows:
            out[(rtype, rid)] = content_hash(body)
            assert stored == out[(rtype, rid)], (rtype, rid)
        return out
