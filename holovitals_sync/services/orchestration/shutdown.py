"""A worker asked to stop: its running sync job ends at the next checkpoint and waits queued.

`up` (and any process manager) stops workers with SIGTERM: RQ's warm shutdown then waits for
the running job to finish, which for a full sync may be an hour. Instead the worker passes
the request on to its work horse (`workers.worker`), and the run stops after the batch it is
writing: that batch and its checkpoint are committed, the row goes back to QUEUED on a fresh
RQ job, and the next worker resumes it from the checkpoint. A stop is not a failed attempt:
the attempt it used is given back.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from ...db import session_scope
from ...models import JobStatus, SyncJob
from .lifecycle import RunStopped

log = logging.getLogger(__name__)

_requested = False


class StoppedAtCheckpoint(RunStopped):
    """The run gave its job back at a checkpoint because its worker is stopping."""


def request(*_signal: object) -> None:
    """Signal handler of the work horse: stop at the next checkpoint."""
    global _requested
    _requested = True


def requested() -> bool:
    return _requested


def reset() -> None:
    global _requested
    _requested = False


def at_checkpoint(job: SyncJob) -> None:
    """Between batches (everything written is committed): give the job back if stopping."""
    if not _requested:
        return
    from .service import dispatch

    with session_scope() as session:
        table = SyncJob.__table__
        taken = (
            session.execute(
                sa.update(table)
                .where(
                    table.c.id == job.id,
                    table.c.status == JobStatus.RUNNING.value,
                    table.c.attempts == job.attempts,
                )
                .values(attempts=job.attempts - 1)
            ).rowcount
            == 1
        )
        if not taken:  # cancelled or taken over meanwhile: nothing to give back
            raise RunStopped(f"job {job.id} is no longer running this attempt")
        row = session.get(SyncJob, job.id)
        if row is not None:
            dispatch(session, row)  # commits QUEUED with a fresh RQ job, then enqueues it
    log.info("sync job %s: worker stopping; queued again at its checkpoint", job.id)
    raise StoppedAtCheckpoint(f"job {job.id} queued again at its checkpoint")
