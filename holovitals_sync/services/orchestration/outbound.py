"""Outbound writes: records changed locally (`dirty`) go to the EHR with `If-Match`.

Each batch is three steps, so no database transaction is held open while the EHR answers
(a slow EHR once held SQLite's write lock and froze the whole product):

1. read the batch's dirty records (a short transaction);
2. write each to the EHR (no transaction): the answer, and after a 412 (Oracle Health:
   409) the EHR's current copy, read at once;
3. record every outcome (a short transaction): a write taken makes both sides agree; a
   refused stale write goes through three-way detection in this same job, so the conflict
   is on the list when the job ends (and counted once); a record the EHR deleted meanwhile
   is a remote-deleted conflict; a write the vendor takes no such write of is a RecordError.

A record changed locally again while its write was on the way keeps the newer change (and
stays dirty for the next run): only what was sent is taken as agreed.

Records deleted in HoloVitals (`local_deleted`) take the same three steps with a `DELETE`
instead of a write (`outbound_deletes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ...adapters import EHRAdapter, RemoteChanged, WriteNotSupported, content_hash
from ...db import session_scope
from ...fhir.errors import ResourceNotFound
from ...models import ConflictKind, EHRConnection, RecordError, SyncedRecord, SyncJob
from ...models.types import utcnow
from ..conflicts.detect import Action, detect_record
from . import deletes, lifecycle, shutdown
from . import outbound_deletes as removal
from .events import JobEvents


@dataclass(frozen=True, slots=True)
class Pending:
    """A dirty record as read for writing (detached from any session)."""

    id: int
    resource_type: str
    remote_id: str
    body: dict[str, Any]
    remote_version: str | None
    delete: str | None = None  # a delete asked for in HoloVitals: what to do (removal.plan)


@dataclass(slots=True)
class Attempt:
    """What the EHR said to one write."""

    pending: Pending
    outcome: str  # "written", "stale", "gone", "refused"; deletes: also "deleted", "planned"
    body: dict[str, Any] | None = None  # written: the EHR's copy; stale: its current copy
    version: str | None = None
    message: str = ""


def _dirty(session: Session, job: SyncJob, after_id: int, limit: int) -> list[Pending]:
    query = select(SyncedRecord).where(
        SyncedRecord.connection_id == job.connection_id,
        # A marked delete may be clean again (decided by a conflict, or the EHR's change
        # taken in by an inbound run): removal.plan says what it still needs.
        sa.or_(SyncedRecord.dirty == sa.true(), SyncedRecord.local_deleted == sa.true()),
        SyncedRecord.conflict_pending == sa.false(),
        SyncedRecord.deleted == sa.false(),
        SyncedRecord.id > after_id,
    )
    if job.resource_type:
        query = query.where(SyncedRecord.resource_type == job.resource_type)
    if job.patient_id:
        query = query.where(SyncedRecord.patient_ref == f"Patient/{job.patient_id}")
    return [
        Pending(
            int(r.id),
            r.resource_type,
            r.remote_id,
            dict(r.local_copy or {}),
            r.remote_version,
            removal.plan(session, r) if r.local_deleted else None,
        )
        for r in session.exec(query.order_by(SyncedRecord.id).limit(limit))
    ]


def attempt(adapter: EHRAdapter, pending: Pending) -> Attempt:
    """Write one record; after a refusal for staleness, read what the EHR holds now."""
    if pending.delete is not None:
        if pending.delete != removal.SEND:
            return Attempt(pending, "planned")  # decided without asking the EHR
        outcome, current, version, message = removal.send(
            adapter, pending.resource_type, pending.remote_id, pending.remote_version
        )
        return Attempt(pending, outcome, current, version, message)
    try:
        done = adapter.write(pending.body, remote_version=pending.remote_version)
    except WriteNotSupported as exc:
        return Attempt(pending, "refused", message=f"[write] {exc}"[:1000])
    except RemoteChanged:
        try:
            current = adapter.client.read(pending.resource_type, pending.remote_id)
        except ResourceNotFound:
            return Attempt(pending, "gone")
        version = (current.get("meta") or {}).get("versionId")
        return Attempt(pending, "stale", current, None if version is None else str(version))
    return Attempt(pending, "written", done.resource or pending.body, done.version_id)


def _accepted(
    row: SyncedRecord, sent: dict[str, Any], body: dict[str, Any], version: str | None
) -> None:
    row.remote_body = body
    row.remote_version = version or row.remote_version
    row.content_hash = content_hash(body)
    row.last_synced_at = utcnow()
    if row.local_copy == sent:
        row.base_body = row.local_body = None  # the same as the remote body again
        row.dirty = False
    else:  # changed again meanwhile: what was sent is agreed, the newer change still owed
        row.base_body = body


def record_attempt(session: Session, job: SyncJob, tried: Attempt) -> list[int]:
    """Store one write's outcome; returns the conflicts it opened."""
    row = session.get(SyncedRecord, tried.pending.id)
    if row is None or row.conflict_pending or row.deleted:
        return []  # decided elsewhere meanwhile (a conflict, a delete)
    if tried.pending.delete is not None:
        return _record_delete(session, job, row, tried)
    key = (row.resource_type, row.remote_id)
    if tried.outcome == "written":
        _accepted(row, tried.pending.body, tried.body or {}, tried.version)
        session.add(row)
        return []
    if tried.outcome == "refused":
        session.add(
            RecordError(
                job_id=job.id,
                connection_id=job.connection_id,
                resource_type=row.resource_type,
                remote_id=row.remote_id,
                message=tried.message,
            )
        )
        return []
    if tried.outcome == "gone":
        return deletes.tombstone(
            session,
            job.connection_id,
            job.id,
            [key],
            reason=f"deleted at the EHR; found by write {job.id}",
        ).conflicts
    found = detect_record(
        session,
        record=row,
        remote_body=tried.body or {},
        remote_version=tried.version,
        job_id=job.id,
        kind=ConflictKind.STALE_WRITE,
    )
    return [int(found.conflict_id)] if found.action is Action.CONFLICT and found.conflict_id else []


def _record_delete(session: Session, job: SyncJob, row: SyncedRecord, tried: Attempt) -> list[int]:
    """Store what came of a delete asked for in HoloVitals; returns the conflict it opened."""
    if not row.local_deleted:
        return []  # withdrawn meanwhile
    plan, outcome = tried.pending.delete, tried.outcome
    if outcome in ("deleted", "gone"):
        removal.tombstone(row, job, gone_already=outcome == "gone")
        session.add(row)
        from .aftermath import announce_deletes

        announce_deletes(
            session, job.connection_id, [(row.resource_type, row.remote_id, row.patient_ref)]
        )
        return []
    if outcome == "refused":
        removal.refused(session, row, job, tried.message)
        return []
    if outcome == "stale" or plan == removal.CHANGED:
        return [removal.hold(session, row, job, tried.body, tried.version)]
    if plan == removal.WITHDRAW:
        removal.withdraw(row)
    else:  # WAIT: its conflict is open still
        row.conflict_pending = True
    session.add(row)
    return []


def run_outbound(
    job: SyncJob,
    connection: EHRConnection,
    adapter: EHRAdapter,
    *,
    batch_size: int,
    events: JobEvents,
) -> None:
    """Write every dirty record of the job's scope, one batch at a time."""
    del connection  # the adapter is already bound to it
    after_id = 0
    while True:
        with session_scope() as session:
            lifecycle.fence(session, job)  # stop early when cancelled
            batch = _dirty(session, job, after_id, batch_size)
        if not batch:
            return
        tried = [attempt(adapter, pending) for pending in batch]
        after_id = batch[-1].id
        with session_scope() as session:
            opened = [cid for one in tried for cid in record_attempt(session, job, one)]
            from .aftermath import announce_conflicts

            announce_conflicts(session, job, opened)
            lifecycle.fence(
                session,
                job,
                written=job.written + sum(t.outcome == "written" for t in tried),
                deleted=job.deleted
                + sum(
                    t.pending.delete is not None and t.outcome in ("deleted", "gone") for t in tried
                ),
                conflicts=job.conflicts + len(opened),
                invalid=job.invalid + sum(t.outcome == "refused" for t in tried),
            )
        events.progress(job)
        shutdown.at_checkpoint(job)
