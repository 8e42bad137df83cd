"""What a finished run hands on: conflicts found under local changes, and webhook events.

Kept apart from the runner so the sync loop stays about fetching and storing; imports of
the conflicts and webhooks services are local because both of them also start sync jobs.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import defer
from sqlmodel import Session, select

from ...models import Conflict, ConflictStatus, Direction, SyncedRecord, SyncJob

log = logging.getLogger(__name__)


def detect_conflicts(session: Session, job: SyncJob) -> list[int]:
    """Run three-way detection on records whose remote copy moved on under local changes.

    Returns the ids of the conflicts this run opened (automatic policies need them once
    the transaction has committed).
    """
    if job.direction is Direction.OUTBOUND:
        return []
    from ..conflicts.detect import Action, detect_stored

    already_open = set(session.exec(
        select(Conflict.id).where(Conflict.connection_id == job.connection_id,
                                  Conflict.status == ConflictStatus.OPEN)
    ).all())  # fmt: skip
    outcomes = detect_stored(session, connection_id=job.connection_id, job_id=job.id)
    outcomes += _detect_duplicates(session, job)
    # Conflicts still open from an earlier run are found again; only new ones count here.
    return [o.conflict_id for o in outcomes
            if o.action is Action.CONFLICT and o.conflict_id not in already_open]


DUPLICATE_CHUNK = 500


def _detect_duplicates(session: Session, job: SyncJob) -> list:
    """Duplicate identifiers among the records this run wrote, a chunk at a time."""
    from ..conflicts.duplicates import DUPLICATE_TYPES, detect_duplicates

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
        found += detect_duplicates(session, connection_id=job.connection_id, job_id=job.id,
                                   records=chunk)
        last_id = chunk[-1].id


def emit_completed(session: Session, job: SyncJob, conflict_ids: list[int]) -> None:
    """`sync.completed` and one `conflict.detected` per new conflict, ids only."""
    from ..webhooks.emit import emit

    for conflict_id in conflict_ids:
        emit(session, "conflict.detected", {"connection_id": job.connection_id,
                                            "conflict_id": conflict_id, "job_id": job.id})
    emit(session, "sync.completed", {"connection_id": job.connection_id, "job_id": job.id})


def emit_failed(session: Session, job: SyncJob) -> None:
    """`sync.failed` once no retry is left."""
    from ..webhooks.emit import emit

    emit(session, "sync.failed", {"connection_id": job.connection_id, "job_id": job.id})


def schedule_automatic(session: Session, conflict_ids: list[int]) -> None:
    """Queue automatic resolutions (policy says so) on the conflicts queue."""
    if not conflict_ids:
        return
    from ..conflicts.policy import schedule_automatic as schedule

    scheduled = schedule(session, conflict_ids)
    log.info("sync: %s conflicts opened, %s scheduled for automatic resolution",
             len(conflict_ids), len(scheduled))
