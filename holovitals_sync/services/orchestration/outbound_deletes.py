"""Deletes asked for in HoloVitals (`records.delete_local`), sent by outbound runs.

A record marked `local_deleted` goes to the EHR as `DELETE` with `If-Match` on the EHR's
version (where the vendor versions writes). What the EHR answers decides the record:

- taken, or 404/410 (it is gone already): a tombstone whose reason names who deleted it;
- 412 (Oracle Health: 409): the EHR changed the record since. Its current copy is read and
  becomes the record's bodies, and a `stale_write` conflict over the whole record ("deleted
  in HoloVitals" against "changed at the EHR") holds the record for a person;
- the vendor takes no FHIR delete of the type (a generic server that does not declare it):
  a `[write]` record error, and the record stays marked.

The conflict's resolution decides what the next outbound run does, so the resolution needs
no knowledge of deletes: use_local sends the delete again, over the version the person saw
(the record's remote version); any other resolution withdraws the delete and keeps the
record as the EHR has it. A marked record that is no longer dirty without such a decision
had its EHR change taken in by an inbound run after the delete was asked for: that is the
same conflict, opened from the stored copy without asking the EHR.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from ...adapters import EHRAdapter, RemoteChanged, WriteNotSupported, content_hash
from ...fhir.errors import ResourceNotFound
from ...models import (
    Conflict,
    ConflictKind,
    ConflictStatus,
    RecordError,
    ResolutionStrategy,
    Severity,
    SyncedRecord,
    SyncJob,
)
from ...models.types import utcnow

WHOLE = "(the whole record)"
LOCAL_SIDE = {WHOLE: "deleted in HoloVitals"}

# What to do with a marked record, decided when it is read for the run.
SEND = "send"  # send the delete
CHANGED = "changed"  # the EHR changed it since the delete was asked for: open the conflict
WITHDRAW = "withdraw"  # a resolution kept the EHR's copy: the delete is off
WAIT = "wait"  # its conflict is still open: hold the record


def plan(session: Session, row: SyncedRecord) -> str:
    """What the run does with a record marked for a delete."""
    if row.dirty:
        return SEND
    for conflict in session.exec(
        select(Conflict)
        .where(Conflict.record_id == row.id, Conflict.kind == ConflictKind.STALE_WRITE)
        .order_by(Conflict.id.desc())
    ):
        if conflict.local_values != LOCAL_SIDE:
            continue
        if row.local_deleted_at is not None and conflict.created_at < row.local_deleted_at:
            break  # a decision about an earlier delete
        if conflict.status is not ConflictStatus.RESOLVED:
            return WAIT
        return SEND if conflict.strategy is ResolutionStrategy.USE_LOCAL else WITHDRAW
    return CHANGED


def send(
    adapter: EHRAdapter, resource_type: str, remote_id: str, remote_version: str | None
) -> tuple[str, dict[str, Any] | None, str | None, str]:
    """Send one delete: (outcome, the EHR's current copy and version when stale, message).

    Outcomes: "deleted", "gone" (404/410), "stale" (412/409), "refused" (no such delete).
    """
    try:
        adapter.delete(resource_type, remote_id, remote_version=remote_version)
    except WriteNotSupported as exc:
        return "refused", None, None, f"[write] {exc}"[:1000]
    except ResourceNotFound:
        return "gone", None, None, ""
    except RemoteChanged:
        try:
            current = adapter.client.read(resource_type, remote_id)
        except ResourceNotFound:
            return "gone", None, None, ""
        version = (current.get("meta") or {}).get("versionId")
        return "stale", current, None if version is None else str(version), ""
    return "deleted", None, None, ""


def tombstone(row: SyncedRecord, job: SyncJob, *, gone_already: bool) -> None:
    """The delete is done: the record is kept as a tombstone naming who deleted it."""
    who = row.local_deleted_by or "someone"
    how = "the EHR had it no more" if gone_already else "deleted at the EHR"
    row.deleted, row.deleted_at = True, utcnow()
    row.delete_reason = f"deleted in HoloVitals by {who}; {how} by job {job.id}"[:200]
    _unmark(row)
    row.dirty = False
    row.last_job_id = job.id


def withdraw(row: SyncedRecord) -> None:
    """A resolution kept the EHR's copy: the record stays, the delete is off."""
    _unmark(row)


def _unmark(row: SyncedRecord) -> None:
    row.local_deleted, row.local_deleted_at, row.local_deleted_by = False, None, None


def hold(
    session: Session,
    row: SyncedRecord,
    job: SyncJob,
    current: dict[str, Any] | None,
    version: str | None,
) -> int:
    """The EHR changed what HoloVitals deleted: store its copy and open the conflict.

    All three bodies become the EHR's copy (the delete is the only local change), so a
    resolution has no fields to merge and writes nothing back itself; what it chose is
    carried out by the next outbound run (see `plan`). Returns the conflict's id.
    """
    if current is not None:
        row.remote_body, row.content_hash = current, content_hash(current)
        row.remote_version = version or row.remote_version
    row.base_body = row.local_body = None  # the same as the remote body
    row.dirty, row.conflict_pending = False, True
    row.last_synced_at = utcnow()
    session.add(row)
    key = row.remote_version
    existing = session.exec(
        select(Conflict).where(
            Conflict.record_id == row.id,
            Conflict.remote_version == key,
            Conflict.kind == ConflictKind.STALE_WRITE,
        )
    ).first()
    if (
        existing is not None
        and existing.status is ConflictStatus.OPEN
        and existing.local_values == LOCAL_SIDE
    ):
        return int(existing.id)
    conflict = Conflict(
        record_id=row.id,
        connection_id=row.connection_id,
        job_id=job.id,
        resource_type=row.resource_type,
        kind=ConflictKind.STALE_WRITE,
        # A version already decided for another reason keeps its row: this one has none.
        remote_version=None if existing is not None else key,
        fields=[WHOLE],
        base_values={WHOLE: "present"},
        local_values=dict(LOCAL_SIDE),
        remote_values={WHOLE: "changed at the EHR"},
        severity=Severity.HIGH,
    )
    session.add(conflict)
    session.flush()
    return int(conflict.id)


def refused(session: Session, row: SyncedRecord, job: SyncJob, message: str) -> None:
    """The vendor takes no such delete: say so per record (it stays marked)."""
    session.add(
        RecordError(
            job_id=job.id,
            connection_id=job.connection_id,
            resource_type=row.resource_type,
            remote_id=row.remote_id,
            message=message,
        )
    )
