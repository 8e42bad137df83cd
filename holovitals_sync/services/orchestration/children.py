"""A full sync shared by several workers: the parent plans parts, children run them, and a
finalizer ends the parent once they have all ended.

Built on RQ, not on a scheduler of our own: each child is an ordinary sync job (its own row,
checkpoint, retries and the connection's rate limit) on the sync queues, so every free sync
worker takes one; the finalizer is an RQ job that depends on all of them (`allow_failure`),
so RQ runs it once each has succeeded or used up its retries.

What belongs to the whole run stays with the parent: records are stored and marked seen
under the parent's id (so the end tombstones what no part saw), record errors name it, the
connection's cursor moves only when every part is done, and the parent's counters and
progress add up its children's as their batches commit. Cancelling the parent cancels its
children; retrying a failed parent retries only the children that failed.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from rq import Worker
from sqlmodel import Session, select

from ...adapters import EHRAdapter
from ...config import get_settings
from ...db import session_scope
from ...models import JOB_COUNTERS, Direction, JobStatus, JobType, Priority, SyncJob
from ...models.types import utcnow
from ..platform.redis import redis_connection
from . import lifecycle, queueing
from .events import JobEvents, publish_state

log = logging.getLogger(__name__)

# Counters a child adds to its parent as its batches commit (a split full sync only reads:
# it writes nothing to the EHR).
ADDED = tuple(name for name in JOB_COUNTERS if name != "written")
UNFINISHED = (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.RUNNING)


def run_id(job: SyncJob) -> int:
    """The id records, seen marks and errors are kept under: the whole run's."""
    return int(job.parent_id or job.id)  # type: ignore[arg-type]


def splittable(job: SyncJob) -> bool:
    """Inbound full syncs (a bidirectional one writes first, in one job)."""
    return (
        job.job_type is JobType.FULL
        and job.parent_id is None
        and job.direction is Direction.INBOUND
    )


def split(job: SyncJob, adapter: EHRAdapter) -> bool:
    """In the parent's run: hand the sync to children when it is large enough. True when
    they have it (the parent then waits for the finalizer); False: run it here."""
    if not splittable(job):
        return False
    if job.checkpoint.get("children"):  # planned by an earlier attempt: take them up
        _resume(job)
        return True
    settings = get_settings()
    if _sync_workers() < settings.sync_split_min_workers:
        return False
    types = list(adapter.profile.resource_types)
    plan = adapter.split_full(
        types,
        min_resources=settings.sync_split_above,
        patient_block=settings.sync_split_patient_block,
        workers=_sync_workers(),
    )
    if len(plan.parts) < 2:
        if plan.resume is not None:  # the export it started is the one this run reads
            with session_scope() as session:
                lifecycle.fence(session, job, checkpoint={**job.checkpoint, "resume": plan.resume})
        return False
    _spawn(job, types, plan.parts)
    return True


def _sync_workers() -> int:
    """Workers registered on the sync queues now (the parent's own among them)."""
    queue = queueing.queue_for(Priority.DEFAULT)
    return Worker.count(connection=queue.connection, queue=queue)


def _spawn(parent: SyncJob, types: list[str], parts: list[dict[str, Any]]) -> None:
    with session_scope() as session:
        kids = [
            SyncJob(
                connection_id=parent.connection_id,
                job_type=JobType.FULL,
                direction=parent.direction,
                mode=parent.mode,
                priority=parent.priority,
                requested_by_kind=parent.requested_by_kind,
                requested_by=parent.requested_by,
                max_attempts=parent.max_attempts,
                parent_id=parent.id,
                part=part,
            )
            for part in parts
        ]
        session.add_all(kids)
        session.flush()
        ids = [int(k.id) for k in kids]  # type: ignore[arg-type]
        lifecycle.fence(
            session,
            parent,
            total_estimate=None,
            checkpoint={**parent.checkpoint, "children": ids, "types": _swept(types, parts)},
        )
        first = [int(k.id) for k in kids if not _last(k)]  # type: ignore[arg-type]
    log.info("sync job %s: split into %d parts", parent.id, len(ids))
    _dispatch_and_wait(parent, ids, first)


def _swept(types: list[str], parts: list[dict[str, Any]]) -> list[str]:
    """The types whose records the complete run may tombstone when it did not see them.

    Not the types cut in `_lastUpdated` windows: a window paged by offset while one of its
    resources changes loses that resource to a later window, every record behind it moves
    up a place, and one at a page boundary is never returned. A record missing there is no
    delete; the id sweep and the type's history find the real ones.
    """
    windowed = {t for part in parts if part.get("window") for t in part["types"]}
    return [t for t in types if t not in windowed]


def _last(kid: SyncJob) -> bool:
    """A part that runs after all the others (a type's open `_lastUpdated` tail: what
    changes while the others run moves into it, so it must be read last)."""
    return bool((kid.part or {}).get("last"))


def _hold(kid: SyncJob) -> None:
    """Back to waiting for the finisher, to be read from the start."""
    kid.status, kid.rq_job_id, kid.checkpoint = JobStatus.PENDING, None, {}
    for name in ADDED:
        setattr(kid, name, 0)


def held_back(job: SyncJob) -> bool:
    """A last part not queued yet: its finisher queues it once the other parts have ended
    (nothing is lost: it has never been queued, so no queue can have dropped it)."""
    return job.status is JobStatus.PENDING and job.rq_job_id is None and _last(job)


def _resume(parent: SyncJob) -> None:
    """A later attempt of the parent (a retry after a part failed, or a lost finalizer):
    the parts that failed or were cancelled run again from their checkpoints."""
    ids = [int(i) for i in parent.checkpoint["children"]]
    with session_scope() as session:
        kids = list(session.exec(select(SyncJob).where(SyncJob.id.in_(ids))))
        again = [k for k in kids if k.status in (JobStatus.FAILED, JobStatus.CANCELLED)]
        for kid in again:
            kid.max_attempts = kid.attempts + get_settings().retry_attempts + 1
            session.add(kid)
        # The last parts wait again while any other part still has to run (`finish`); one
        # already read is read again after it, from the start (what changed since moved
        # into it), its counts started over so the parent's totals count it once.
        held = any(not _last(k) and k.status is not JobStatus.COMPLETED for k in kids)
        for kid in (k for k in kids if held and _last(k)):
            _hold(kid)
            session.add(kid)
        again_ids = [
            int(k.id)  # type: ignore[arg-type]
            for k in again
            if not (held and _last(k))
        ]
    log.info("sync job %s: %d of %d parts run again", parent.id, len(again_ids), len(ids))
    _dispatch_and_wait(parent, ids, again_ids)


def _dispatch_and_wait(parent: SyncJob, ids: list[int], start: list[int] | None = None) -> None:
    """Queue the parts (`start`: only these; default all) and the finalizer after them."""
    from .service import dispatch

    with session_scope() as session:
        again = ids if start is None else start
        for kid in session.exec(select(SyncJob).where(SyncJob.id.in_(again))):
            dispatch(session, kid)
        waiting = [
            str(k.rq_job_id)
            for k in session.exec(
                select(SyncJob).where(SyncJob.id.in_(ids), SyncJob.status.in_(UNFINISHED))
            )
            if k.rq_job_id
        ]
        row = session.get(SyncJob, parent.id)
        if row is None or row.status is not JobStatus.RUNNING:
            return
        row.rq_job_id = f"sync-{parent.id}-end-{utcnow().strftime('%H%M%S%f')}"
        session.add(row)
        session.commit()
        queueing.enqueue_finisher(row, waiting)


def wait_again(parent_id: int) -> None:
    """A part was queued again under a new RQ id: a new finalizer waits for the parts as
    they are now (the old one, waiting for an id that will never end, is left deferred)."""
    with session_scope() as session:
        parent = session.get(SyncJob, parent_id)
        ids = [
            int(k) for k in session.exec(select(SyncJob.id).where(SyncJob.parent_id == parent_id))
        ]
        if parent is None:
            return
        session.expunge(parent)
    _dispatch_and_wait(parent, ids, [])


def add_to_parent(session: Session, child: SyncJob, before: dict[str, int]) -> None:
    """In the child's batch transaction: what the batch added, added to the parent too, and
    the parent's progress as its children's average."""
    table = SyncJob.__table__
    deltas = {name: getattr(child, name) - before.get(name, 0) for name in ADDED}
    kids = table.alias("kids")
    average = (
        sa.select(sa.func.coalesce(sa.func.avg(kids.c.progress), 0.0))
        .where(kids.c.parent_id == child.parent_id)
        .scalar_subquery()
    )
    session.execute(
        sa.update(table)
        .where(table.c.id == child.parent_id, table.c.status == JobStatus.RUNNING.value)
        .values(
            **{n: table.c[n] + d for n, d in deltas.items() if d},
            # Never "done" before the finalizer has done the aftermath.
            progress=sa.case((average > 0.99, 0.99), else_=average),
            heartbeat_at=utcnow(),
        )
    )


def publish_parent(child: SyncJob, events: JobEvents) -> None:
    """After the child's batch commit: the parent's row moved too; tell the dashboard."""
    with session_scope() as session:
        parent = session.get(SyncJob, child.parent_id)
    if parent is not None:
        events.progress(parent)


def cancel_children(session: Session, parent: SyncJob) -> list[SyncJob]:
    """The parent was cancelled: its unfinished children are too (their RQ jobs stopped
    by the caller after the commit)."""
    kids = list(
        session.exec(
            select(SyncJob).where(SyncJob.parent_id == parent.id, SyncJob.status.in_(UNFINISHED))
        )
    )
    for kid in kids:
        kid.status, kid.finished_at = JobStatus.CANCELLED, utcnow()
        session.add(kid)
    return kids


def finish(parent_id: int) -> str:
    """The finalizer: end the parent once every child has ended; returns what it did."""
    with session_scope() as session:
        parent = session.get(SyncJob, parent_id)
        if parent is None or parent.status is not JobStatus.RUNNING:
            return "nothing"  # cancelled meanwhile, or already ended
        kids = list(session.exec(select(SyncJob).where(SyncJob.parent_id == parent_id)))
        session.expunge(parent)
    held = [k for k in kids if held_back(k)]
    waiting = [k for k in kids if k.status in UNFINISHED and k not in held]
    others_done = all(k.status is JobStatus.COMPLETED for k in kids if not _last(k))
    if waiting or (held and others_done):
        # A part queued again (reconcile, a retry), or the last parts' turn: only once
        # every other part completed, or a part that runs again later could miss what
        # changed meanwhile (it moved into a tail already read).
        start = [] if waiting else [int(k.id) for k in held]  # type: ignore[arg-type]
        _dispatch_and_wait(parent, [int(k.id) for k in kids], start)  # type: ignore[arg-type]
        return "waiting"
    totals = {name: sum(getattr(k, name) for k in kids) for name in ADDED}
    # Held tails count as not completed; the part that failed is named first.
    failed = sorted((k for k in kids if k.status is not JobStatus.COMPLETED), key=held_back)
    if held:  # never read: a part before them failed (a retry of the parent reads them)
        _cancel_held(held)
    if failed:
        _fail(parent, failed, len(kids), totals)
        return "failed"
    _save_cursor(parent, kids)
    from .completion import complete_run

    swept = list(parent.checkpoint.get("types") or [])
    complete_run(parent, parent.connection_id, swept, **totals)
    JobEvents(redis_connection()).state(parent)
    log.info("sync job %s completed: %d parts, %d fetched", parent_id, len(kids), totals["fetched"])
    return "completed"


def _cancel_held(held: list[SyncJob]) -> None:
    with session_scope() as session:
        for kid in session.exec(select(SyncJob).where(SyncJob.id.in_([k.id for k in held]))):  # type: ignore[union-attr]
            kid.status, kid.finished_at = JobStatus.CANCELLED, utcnow()
            session.add(kid)


def _fail(parent: SyncJob, failed: list[SyncJob], count: int, totals: dict[str, int]) -> None:
    first = failed[0]
    reason = (
        f"{len(failed)} of {count} parts did not complete; part (job {first.id}) "
        f"{first.status.value}: {first.last_error or 'no error recorded'}"
    )[:1900]
    with session_scope() as session:
        lifecycle.finish(session, parent, JobStatus.FAILED, last_error=reason, **totals)
        from .aftermath import emit_failed

        emit_failed(session, parent)
    publish_state(redis_connection(), parent)


def _save_cursor(parent: SyncJob, kids: list[SyncJob]) -> None:
    """Each type's cursor: the earliest its parts reported (none is later than the data)."""
    cursor: dict[str, str] = {}
    for kid in kids:
        for rtype, instant in (kid.checkpoint.get("cursor") or {}).items():
            cursor[rtype] = min(cursor.get(rtype, instant), instant)
    if cursor:
        with session_scope() as session:
            lifecycle.save_cursor(session, parent.connection_id, cursor, utcnow())
