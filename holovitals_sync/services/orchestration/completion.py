"""The end of a successful run: what it found gone, references, conflicts, events.

Shared by the runner (a job run whole) and the finalizer of a split full sync (the parent,
once every child is done): the aftermath of a full sync is the connection's, not a part's.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...db import session_scope
from ...models import EHRConnection, JobStatus, SyncJob
from ...models.types import utcnow
from . import aftermath, deletes, lifecycle


def complete_run(
    job: SyncJob,
    connection_id: int,
    swept: list[str],
    notified: Sequence[deletes.Key] = (),
    **counters: int,
) -> None:
    """Mark the run COMPLETED with its aftermath (`swept`: types it saw in full;
    `notified`: records notifications said were deleted, which the EHR confirmed)."""
    with session_scope() as session:
        gone = aftermath.tombstone_unseen(session, job, swept)
        if notified:
            told = deletes.tombstone(
                session,
                job.connection_id,
                job.id,
                notified,
                reason=f"deleted at the EHR (notified), confirmed by a read in sync {job.id}",
            )
            gone.deleted += told.deleted
            gone.conflicts += told.conflicts
        missing = aftermath.settle_references(session, job)
        conflict_ids = aftermath.detect_conflicts(session, job) + gone.conflicts
        counts = {
            name: counters.get(name, getattr(job, name))
            for name in ("conflicts", "invalid", "deleted")
        }
        # The outbound step already counted its refused writes, which detection has just
        # turned into conflict rows: count each conflict once.
        lifecycle.finish(
            session,
            job,
            JobStatus.COMPLETED,
            progress=1.0,
            **{k: v for k, v in counters.items() if k not in ("conflicts", "invalid", "deleted")},
            conflicts=max(counts["conflicts"], len(conflict_ids)),
            invalid=counts["invalid"] + missing,
            deleted=counts["deleted"] + len(gone.deleted),
        )
        aftermath.announce_deletes(session, job.connection_id, gone.deleted)
        row = session.get(EHRConnection, connection_id)
        if row is not None:
            row.last_synced_at = utcnow()
            session.add(row)
        aftermath.emit_completed(session, job, conflict_ids)
    with session_scope() as session:  # after the commit: the resolution jobs read them
        aftermath.schedule_automatic(session, conflict_ids)
