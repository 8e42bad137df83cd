"""Outbound writes: records changed locally (`dirty`) go to the EHR with `If-Match`.

A write the EHR refuses because it moved on (412, or Oracle Health's 409) marks the record
for conflict detection; a write the vendor takes no such write of becomes a RecordError for
that record. Neither fails the job.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from ...adapters import EHRAdapter, RemoteChanged, WriteNotSupported, content_hash
from ...db import session_scope
from ...models import EHRConnection, RecordError, SyncedRecord, SyncJob
from ...models.types import utcnow
from . import lifecycle
from .events import JobEvents


def _dirty(session: Session, job: SyncJob, after_id: int, limit: int) -> list[SyncedRecord]:
    query = select(SyncedRecord).where(
        SyncedRecord.connection_id == job.connection_id,
        SyncedRecord.dirty == sa.true(),
        SyncedRecord.conflict_pending == sa.false(),
        SyncedRecord.id > after_id,
    )
    if job.resource_type:
        query = query.where(SyncedRecord.resource_type == job.resource_type)
    if job.patient_id:
        query = query.where(SyncedRecord.patient_ref == f"Patient/{job.patient_id}")
    return list(session.exec(query.order_by(SyncedRecord.id).limit(limit)))


def _accepted(row: SyncedRecord, body: dict, version: str | None) -> None:
    row.remote_body = body
    row.base_body = row.local_body = None  # the same as the remote body again
    row.remote_version = version or row.remote_version
    row.content_hash = content_hash(body)
    row.dirty = False
    row.last_synced_at = utcnow()


def write_one(session: Session, job: SyncJob, adapter: EHRAdapter, row: SyncedRecord) -> str:
    """Write one record; returns "written", "conflict" or "refused"."""
    body = dict(row.local_copy or {})
    try:
        outcome = adapter.write(body, remote_version=row.remote_version)
    except RemoteChanged:
        row.conflict_pending = True
        session.add(row)
        return "conflict"
    except WriteNotSupported as exc:
        session.add(RecordError(job_id=job.id, connection_id=job.connection_id,
                                resource_type=row.resource_type, remote_id=row.remote_id,
                                message=str(exc)[:1000]))
        return "refused"
    _accepted(row, outcome.resource or body, outcome.version_id)
    session.add(row)
    return "written"


def run_outbound(job: SyncJob, connection: EHRConnection, adapter: EHRAdapter, *,
                 batch_size: int, events: JobEvents) -> None:
    """Write every dirty record of the job's scope, one committed batch at a time."""
    del connection  # the adapter is already bound to it
    after_id = 0
    while True:
        with session_scope() as session:
            lifecycle.fence(session, job)  # stop early when cancelled
            rows = _dirty(session, job, after_id, batch_size)
            if not rows:
                return
            outcomes = [write_one(session, job, adapter, row) for row in rows]
            after_id = rows[-1].id or after_id
            lifecycle.fence(session, job,
                            written=job.written + outcomes.count("written"),
                            conflicts=job.conflicts + outcomes.count("conflict"),
                            invalid=job.invalid + outcomes.count("refused"))
        events.progress(job)
