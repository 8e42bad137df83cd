"""What a finished run hands on: conflicts found under local changes, and webhook events.

Kept apart from the runner so the sync loop stays about fetching and storing. The conflicts,
validation and webhooks services it calls sit below the sync engine (pyproject.toml's import
contract).
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import defer
from sqlmodel import Session, select

from ...models import Conflict, ConflictStatus, Direction, JobType, SyncedRecord, SyncJob
from ..conflicts.detect import Action, detect_stored
from ..conflicts.duplicates import DUPLICATE_TYPES, detect_duplicates
from ..conflicts.policy import schedule_automatic as schedule
from ..validation.pending import settle_references as settle
from ..webhooks.emit import emit
from ..webhooks.resource_events import Change, emit_changes
from . import deletes
from .deletes import Tombstoned

log = logging.getLogger(__name__)


def tombstone_unseen(session: Session, job: SyncJob, types: list[str]) -> Tombstoned:
    """After a complete full sync or id sweep: tombstone what the EHR no longer returned."""
    if not types:
        return Tombstoned()
    what = "id sweep" if job.job_type is JobType.SWEEP else "full sync"
    gone = deletes.tombstone_unseen(
        session, job, types, reason=f"not returned by the complete {what} {job.id}"
    )
    if gone.deleted or gone.conflicts:
        log.info(
            "sync job %s: %s records deleted at the EHR, %s of them changed here",
            job.id,
            len(gone.deleted),
            len(gone.conflicts),
        )
    return gone


def announce_deletes(
    session: Session, connection_id: int, deleted: list[tuple[str, str, str | None]]
) -> None:
    """`patient.deleted`, `observation.deleted`, ... for webhook subscribers (ids only)."""
    if not deleted:
        return
    emit_changes(
        session,
        connection_id,
        (
            Change(
                rtype, rid, None, False, patient.split("/", 1)[1] if patient else None, deleted=True
            )
            for rtype, rid, patient in deleted
        ),
    )


def settle_references(session: Session, job: SyncJob) -> int:
    """Decide the run's pending patient references; returns how many are missing anew."""
    if job.direction is Direction.OUTBOUND:
        return 0
    settled = settle(
        session, connection_id=job.connection_id, job_id=job.id, whole=job.job_type is JobType.FULL
    )
    if settled.missing or settled.resolved:
        log.info(
            "sync job %s: %s records miss their patient, %s found theirs",
            job.id,
            settled.missing,
            settled.resolved,
        )
    return settled.missing


def detect_conflicts(session: Session, job: SyncJob) -> list[int]:
    """Run three-way detection on records whose remote copy moved on under local changes.

    Returns the ids of the conflicts this run opened (automatic policies need them once
    the transaction has committed).
    """
    if job.direction is Direction.OUTBOUND:
        return []
    already_open = set(session.exec(
        select(Conflict.id).where(Conflict.connection_id == job.connection_id,
                                  Conflict.status == ConflictStatus.OPEN)
    ).all())  # fmt: skip
    outcomes = detect_stored(session, connection_id=job.connection_id, job_id=job.id)
    outcomes += _detect_duplicates(session, job)
    # Conflicts still open from an earlier run are found again; only new ones count here.
    return [
        o.conflict_id
        for o in outcomes
        if o.action is Action.CONFLICT and o.conflict_id not in already_open
    ]


DUPLICATE_CHUNK = 500


def _detect_duplicates(session: Session, job: SyncJob) -> list:
    """Duplicate identifiers among the records this run wrote, a chunk at a time."""
    found, last_id = [], 0
    while True:
        # Duplicates look at identifiers in the remote copy only: the base and local bodies
        # are not read (two JSON documents per record parsed for nothing otherwise).
        chunk = list(session.exec(
            select(SyncedRecord).options(defer(SyncedRecord.base_body),
                                         defer(SyncedRecord.local_body)).where(
                SyncedRecord.connection_id == job.connection_id,
                SyncedRecord.last_job_id == job.id,
                SyncedRecord.resource_type.in_(sorted(DUPLICATE_TYPES)),  # type: ignore[attr-defined]
                SyncedRecord.id > last_id,
            ).order_by(SyncedRecord.id).limit(DUPLICATE_CHUNK)
        ))  # fmt: skip
        if not chunk:
            return found
        found += detect_duplicates(
            session, connection_id=job.connection_id, job_id=job.id, records=chunk
        )
        last_id = chunk[-1].id


def announce_conflicts(session: Session, job: SyncJob, conflict_ids: list[int]) -> None:
    """One `conflict.detected` per new conflict, ids only."""
    for conflict_id in conflict_ids:
        emit(
            session,
            "conflict.detected",
            {"connection_id": job.connection_id, "conflict_id": conflict_id, "job_id": job.id},
        )


def emit_completed(session: Session, job: SyncJob, conflict_ids: list[int]) -> None:
    """`sync.completed` and one `conflict.detected` per new conflict, ids only."""
    announce_conflicts(session, job, conflict_ids)
    emit(session, "sync.completed", {"connection_id": job.connection_id, "job_id": job.id})


def emit_failed(session: Session, job: SyncJob) -> None:
    """`sync.failed` once no retry is left."""
    emit(session, "sync.failed", {"connection_id": job.connection_id, "job_id": job.id})


def schedule_automatic(session: Session, conflict_ids: list[int]) -> None:
    """Queue automatic resolutions (policy says so) on the conflicts queue."""
    if not conflict_ids:
        return
    scheduled = schedule(session, conflict_ids)
    log.info(
        "sync: %s conflicts opened, %s scheduled for automatic resolution",
        len(conflict_ids),
        len(scheduled),
    )
