"""Writing a resolved record back to the EHR with `If-Match`, once.

If the EHR moved on again (412, or Oracle Health's 409) the EHR's current copy is read and
goes through detection as a `stale_write`: a clean merge leaves the record dirty for the
next outbound run, otherwise a fresh conflict replaces the resolved one. Nothing is
written twice from here, so a record that keeps changing cannot loop, and the resolved
local copy is kept either way, so no update is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from ...adapters import EHRAdapter, RemoteChanged, WriteNotSupported, adapter_for, content_hash
from ...models import ConflictKind, EHRConnection, SyncedRecord
from ...models.types import utcnow
from ..connection_spec import connection_spec
from .detect import Action, detect_record

log = logging.getLogger(__name__)

AdapterFactory = Callable[[EHRConnection], EHRAdapter]


@dataclass(frozen=True, slots=True)
class WriteBack:
    """What happened to the write: written, stale (new conflict or merge), refused."""

    status: str
    version: str | None = None
    conflict_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "version": self.version,
                "conflict_id": self.conflict_id}


def default_adapter(connection: EHRConnection) -> EHRAdapter:
    """The vendor adapter for a stored connection (secrets decrypted in memory only)."""
    return adapter_for(connection_spec(connection))


class AdapterPool:
    """One adapter per connection for the length of a (bulk) resolution."""

    def __init__(self, factory: AdapterFactory | None = None):
        self._factory = factory or default_adapter
        self._open: dict[int, EHRAdapter] = {}

    def get(self, connection: EHRConnection) -> EHRAdapter:
        if connection.id not in self._open:
            self._open[connection.id] = self._factory(connection)
        return self._open[connection.id]

    def close(self) -> None:
        for adapter in self._open.values():
            adapter.close()
        self._open.clear()


@contextmanager
def adapter_pool(factory: AdapterFactory | None = None) -> Iterator[AdapterPool]:
    pool = AdapterPool(factory)
    try:
        yield pool
    finally:
        pool.close()


def push(session: Session, *, record: SyncedRecord, adapter: EHRAdapter,
         job_id: int | None = None) -> WriteBack:
    """Write the record's local body over the EHR's `record.remote_version`.

    Args:
        session: The resolution's transaction.
        record: A record whose local body must reach the EHR.
        adapter: The connection's adapter.
        job_id: Recorded on a conflict the write turns up.

    Returns:
        The outcome; the record is updated accordingly (not committed).
    """
    body = {k: v for k, v in (record.local_copy or {}).items() if k != "meta"}
    body["id"] = record.remote_id
    try:
        outcome = adapter.write(body, remote_version=record.remote_version)
    except WriteNotSupported:
        record.dirty = False  # it can never be written; the local copy keeps the resolution
        session.add(record)
        return WriteBack("refused")
    except RemoteChanged:
        return _stale(session, record=record, adapter=adapter, job_id=job_id)
    written = outcome.resource or body
    record.base_body = record.local_body = record.remote_body = written
    record.remote_version = outcome.version_id or record.remote_version
    record.content_hash = content_hash(written)
    record.dirty = False
    record.last_synced_at = utcnow()
    session.add(record)
    return WriteBack("written", version=record.remote_version)


def _stale(session: Session, *, record: SyncedRecord, adapter: EHRAdapter,
           job_id: int | None) -> WriteBack:
    current = adapter.client.read(record.resource_type, record.remote_id)
    version = (current.get("meta") or {}).get("versionId")
    outcome = detect_record(session, record=record, remote_body=current,
                            remote_version=None if version is None else str(version),
                            job_id=job_id, kind=ConflictKind.STALE_WRITE)
    log.info("write-back of record %s found the EHR moved on: %s", record.id,
             outcome.action.value)
    if outcome.action is Action.CONFLICT:
        return WriteBack("stale", version=record.remote_version, conflict_id=outcome.conflict_id)
    return WriteBack("stale_merged", version=record.remote_version)
