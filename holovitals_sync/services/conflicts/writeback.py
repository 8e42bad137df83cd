"""Writing a resolved record back to the EHR: queued on the conflicts queue, sent once.

A resolution that must reach the EHR commits with its write-back owed
(`Conflict.write_back_queued_at` set, `resolution["write_back"]["status"]` "queued") and the
record dirty. When that transaction commits, the write-back goes on `conflicts.default`
(`queue_after_commit`), so the request that resolved never waits for the EHR or meets its
errors, and the Conflicts tab follows the outcome live (conflict rows are followed by
`services.changes`).

The job (`run`) takes the three steps outbound syncs take, so no database transaction is
held while the EHR answers:

1. read what to send (a short transaction); nothing is sent when a newer conflict holds the
   record, it was deleted, or an outbound sync already wrote it;
2. write it with `If-Match` on the version the resolution built on; after a 412 (Oracle
   Health: 409) read the EHR's current copy;
3. record the outcome (a short transaction): written; or the EHR moved on again, which goes
   through detection as a `stale_write` (a clean merge leaves the record dirty for the next
   outbound run, otherwise a fresh conflict is opened); or refused.

Nothing is written twice from here, so a record that keeps changing cannot loop, and the
resolved local copy is kept whatever happens, so no update is lost: a write-back that fails
leaves the record dirty for the next outbound sync. A failure that may pass (429, 5xx,
timeouts, Redis or the database away) is retried by RQ with the product's backoff; one no
retry can fix (`platform.failures.permanent_reason`) fails at once. A write-back whose job
was lost (the process died before queueing it, Redis forgot it) is queued again by the
conflicts workers' maintenance (`requeue_stranded`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from rq import Queue, Retry
from sqlalchemy import event
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, select

from ...adapters import EHRAdapter, RemoteChanged, WriteNotSupported, adapter_for, content_hash
from ...config import get_settings
from ...db import session_scope
from ...models import Conflict, ConflictKind, EHRConnection, SyncedRecord
from ...models.types import utcnow
from .. import audit
from ..connection_spec import connection_spec
from ..platform import job_functions
from ..platform.failures import permanent_reason, safe_error
from .detect import Action, detect_record
from .queueing import conflict_queue, pending

log = logging.getLogger(__name__)

AdapterFactory = Callable[[EHRConnection], EHRAdapter]
QUEUED = "queued"
ACTOR = audit.Actor.system("conflict-write-back")
# Far beyond the moment between a resolution's commit and its enqueue (milliseconds).
STRANDED_AFTER = timedelta(seconds=60)
_DUE = "holovitals_write_backs_due"


@dataclass(frozen=True, slots=True)
class WriteBack:
    """What happened to the write: queued, written, stale (new conflict), stale_merged,
    refused (the vendor takes no such write), failed (with why), or nothing to do
    (superseded: a newer conflict or a delete holds the record; settled: already written)."""

    status: str
    version: str | None = None
    conflict_id: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": self.version,
            "conflict_id": self.conflict_id,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One write-back as read for sending (detached from any session)."""

    conflict_id: int
    record_id: int
    connection_id: int
    job_id: int | None
    resource_type: str
    remote_id: str
    body: dict[str, Any]
    remote_version: str | None


@dataclass(frozen=True, slots=True)
class Answer:
    """What the EHR said: written (its copy), stale (its current copy) or refused."""

    outcome: str
    body: dict[str, Any] | None = None
    version: str | None = None


def default_adapter(connection: EHRConnection) -> EHRAdapter:
    """The vendor adapter for a stored connection (secrets decrypted in memory only)."""
    return adapter_for(connection_spec(connection))


# --- owing a write-back (inside the resolution's transaction) -------------------------------


def owe(session: Session, conflict: Conflict) -> WriteBack:
    """Mark the resolved record's write to the EHR as owed; queued once the caller commits."""
    conflict.write_back_queued_at = utcnow()
    session.info.setdefault(_DUE, set()).add(conflict.id)
    return WriteBack(QUEUED)


def _queue_due(session: Session) -> None:
    # A released savepoint also counts as a commit here; only the outermost one is seen by
    # the worker that will read the conflict.
    if session.in_nested_transaction():
        return
    due = session.info.pop(_DUE, None)
    if due:
        queue_write_backs(sorted(due))


def _forget_due(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:  # the whole transaction: nothing it owed was stored
        session.info.pop(_DUE, None)


event.listen(Session, "after_commit", _queue_due)
event.listen(Session, "after_soft_rollback", _forget_due)


def queue_write_backs(conflict_ids: Iterable[int], queue: Queue | None = None) -> None:
    """Put the write-backs on the conflicts queue (one RQ job per conflict, never two).

    Best effort: without Redis the write-back stays owed in the database and the conflicts
    workers' maintenance queues it once Redis is back.
    """
    settings = get_settings()
    try:
        queue = queue or conflict_queue()
        for conflict_id in conflict_ids:
            job_id = f"conflict-writeback-{conflict_id}"
            if pending(queue, job_id):
                continue
            retry = (
                Retry(max=settings.retry_attempts, interval=settings.retry_backoff)
                if settings.retry_attempts
                else None
            )
            queue.enqueue(
                job_functions.WRITE_BACK,
                conflict_id,
                job_id=job_id,
                retry=retry,
                result_ttl=3600,
                failure_ttl=7 * 24 * 3600,
                description=f"write-back of conflict {conflict_id}",
            )
    except Exception as exc:  # noqa: BLE001 - the owed row is the truth; the sweep retries
        log.warning(
            "write-back not queued (%s): the conflicts maintenance will queue it",
            type(exc).__name__,
        )


def requeue_stranded(session: Session, queue: Queue | None = None) -> int:
    """Queue again the write-backs owed for longer than `STRANDED_AFTER` that no RQ job
    holds (run by the conflicts workers' maintenance). Returns how many were queued."""
    cutoff = utcnow() - STRANDED_AFTER
    ids = list(
        session.exec(
            select(Conflict.id)
            .where(
                Conflict.write_back_queued_at.is_not(None), Conflict.write_back_queued_at < cutoff
            )
            .order_by(Conflict.id)
            .limit(1000)
        )
    )
    if not ids:
        return 0
    queue = queue or conflict_queue()
    stranded = [i for i in ids if not pending(queue, f"conflict-writeback-{i}")]
    if stranded:
        log.warning("%d write-backs owed without a job: queued again", len(stranded))
        queue_write_backs(stranded, queue)
    return len(stranded)


# --- the job ---------------------------------------------------------------------------------


def run(
    conflict_id: int, *, retries_left: int = 0, adapter_factory: AdapterFactory | None = None
) -> str:
    """Write one resolved record back to the EHR; returns the outcome's status.

    Idempotent: a write-back already recorded is left alone. A failure that may pass is
    raised while RQ has retries left (`retries_left`), and recorded as failed after the last.
    """
    with session_scope() as session:
        outgoing = _outgoing(session, conflict_id)
    if isinstance(outgoing, WriteBack):
        return outgoing.status
    try:
        answer = _send(outgoing, adapter_factory or default_adapter)
    except Exception as exc:
        reason = permanent_reason(exc)
        if reason is None and retries_left > 0:
            log.info(
                "write-back of conflict %s failed (%s); RQ retries it",
                conflict_id,
                type(exc).__name__,
            )
            raise
        error = safe_error(exc)
        with session_scope() as session:
            return _finish(session, conflict_id, WriteBack("failed", error=error)).status
    with session_scope() as session:
        return _record(session, outgoing, answer).status


def _outgoing(session: Session, conflict_id: int) -> Outgoing | WriteBack:
    """What to send, or the outcome when there is nothing to send (recorded here)."""
    conflict = session.get(Conflict, conflict_id)
    if conflict is None:
        return WriteBack("gone")
    if conflict.write_back_queued_at is None:  # done before (a duplicate or late job)
        return WriteBack(
            ((conflict.resolution or {}).get("write_back") or {}).get("status", "none")
        )
    record = session.get(SyncedRecord, conflict.record_id)
    if record.deleted or record.conflict_pending:
        return _finish(session, conflict_id, WriteBack("superseded"))
    if not record.dirty:  # an outbound sync wrote it first
        return _finish(session, conflict_id, WriteBack("settled", record.remote_version))
    body = _content(record.local_copy or {})
    body["id"] = record.remote_id
    return Outgoing(
        conflict_id,
        int(record.id),
        record.connection_id,
        conflict.job_id,
        record.resource_type,
        record.remote_id,
        body,
        record.remote_version,
    )


def _send(item: Outgoing, factory: AdapterFactory) -> Answer:
    """The write, with no transaction open (the EHR may take seconds)."""
    with session_scope() as session:
        connection = session.get(EHRConnection, item.connection_id)
        adapter = factory(connection)
    try:
        try:
            written = adapter.write(item.body, remote_version=item.remote_version)
        except WriteNotSupported:
            return Answer("refused")
        except RemoteChanged:
            current = adapter.client.read(item.resource_type, item.remote_id)
            version = (current.get("meta") or {}).get("versionId")
            return Answer("stale", current, None if version is None else str(version))
        return Answer("written", written.resource or item.body, written.version_id)
    finally:
        adapter.close()


def _record(session: Session, item: Outgoing, answer: Answer) -> WriteBack:
    record = session.get(SyncedRecord, item.record_id)
    if answer.outcome == "refused":
        record.dirty = False  # it can never be written; the local copy keeps the resolution
        session.add(record)
        return _finish(session, item.conflict_id, WriteBack("refused"))
    if answer.outcome == "stale" and _content(answer.body) != _content(item.body):
        outcome = detect_record(
            session,
            record=record,
            remote_body=answer.body,
            remote_version=answer.version,
            job_id=item.job_id,
            kind=ConflictKind.STALE_WRITE,
        )
        log.info(
            "write-back of record %s found the EHR moved on: %s", record.id, outcome.action.value
        )
        status = "stale" if outcome.action is Action.CONFLICT else "stale_merged"
        return _finish(
            session, item.conflict_id, WriteBack(status, record.remote_version, outcome.conflict_id)
        )
    # Written, or refused as stale over our own earlier write (a retry after a lost answer).
    _agree(session, record, item, answer.body or item.body, answer.version)
    return _finish(session, item.conflict_id, WriteBack("written", record.remote_version))


def _agree(
    session: Session,
    record: SyncedRecord,
    item: Outgoing,
    written: dict[str, Any],
    version: str | None,
) -> None:
    """Both sides now hold what was sent; a local change made meanwhile stays dirty."""
    changed_meanwhile = _content(record.local_copy or {}) != _content(item.body)
    record.base_body = record.remote_body = written
    if not changed_meanwhile:
        record.local_body = written
    record.remote_version = version or record.remote_version
    record.content_hash = content_hash(written)
    record.dirty = changed_meanwhile
    record.last_synced_at = utcnow()
    session.add(record)


def _finish(session: Session, conflict_id: int, outcome: WriteBack) -> WriteBack:
    """Record the outcome once: a second run that got here first wins, this one is dropped."""
    claimed = session.execute(
        sa.update(Conflict)
        .where(Conflict.id == conflict_id, Conflict.write_back_queued_at.is_not(None))
        .values(write_back_queued_at=None)
    ).rowcount
    if not claimed:
        session.rollback()
        return outcome
    conflict = session.get(Conflict, conflict_id)
    session.refresh(conflict)
    conflict.resolution = {**(conflict.resolution or {}), "write_back": outcome.as_dict()}
    session.add(conflict)
    audit.record(
        session,
        actor=ACTOR,
        action="conflict.write_back",
        target_type="conflict",
        target_id=conflict_id,
        details={
            "status": outcome.status,
            "new_conflict_id": outcome.conflict_id,
            "error": outcome.error,
        },
    )
    log.info("write-back of conflict %s: %s", conflict_id, outcome.status)
    return outcome


def _content(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "meta"}
