"""Processing a stored inbound EHR event on the webhooks queue: it becomes a targeted sync job.

Above the sync engine (it starts jobs) and beside the webhooks package, whose receiver stores
the events; HL7 v2 messages become jobs through `job_for` too.

A patient's burst of events collapses into one job: while a job for the same target is still
waiting (pending or queued) it will fetch the latest data anyway, so later events attach to
it. A Redis lock per target makes the look-up and the creation one step across workers.

An event whose processing fails for a passing reason (database or Redis unreachable, the
collapse lock busy) is retried on its own RQ job with `HOLOVITALS_RETRY_ATTEMPTS` and
`HOLOVITALS_RETRY_BACKOFF`; one that can never succeed (its content does not make a valid job,
its connection is gone) is marked failed with the reason at once. A failure of the
infrastructure itself never marks an event failed: it stays `received`, and the sweeper
queues it again once things are back. Either way the row says what happened, never the
payload.

A gap-detection catch-up (`gaps.MISSED`) waits out `gaps.GRACE_SECONDS` on its own delayed
RQ job first, and becomes an incremental sync only if the numbered events it stands for are
still missing then; reordered events that arrived late end it without a sync.
"""

from __future__ import annotations

import logging
import random
import re
import time

from rq import Retry
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, select

from ..config import get_settings
from ..db import session_scope
from ..models import (
    EHRConnection,
    InboundEvent,
    InboundStatus,
    JobStatus,
    JobType,
    Priority,
    RequesterKind,
    SyncedRecord,
    SyncJob,
)
from ..models.types import utcnow
from . import audit
from .orchestration import JobRequest, shutdown, start_job
from .platform import job_functions
from .platform.failures import is_infrastructure
from .platform.redis import redis_connection
from .webhooks import gaps, queueing
from .webhooks.notifications import HOUSEKEEPING

log = logging.getLogger(__name__)
ACTOR = audit.Actor.system("webhooks")
WAITING = (JobStatus.PENDING, JobStatus.QUEUED)
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
PROCESS_INBOUND = job_functions.PROCESS_INBOUND
DEFERRED = "deferred"  # a catch-up waiting out the gap grace period (still `received`)
NOTHING_MISSED = "nothing missed: the numbered events arrived late"
NOT_SYNCED = "not synced: the connection's resource types leave this type out"
# Tries at creating a job when the audit chain's next `seq` was taken by another writer,
# and the base pause between them (seconds, grows per try, randomised).
CHAIN_ATTEMPTS = 8
CHAIN_PAUSE = 0.01


class PassingFailure(RuntimeError):
    """Processing failed for a reason that may pass (named by the original's class)."""


def is_permanent(exc: BaseException) -> bool:
    """Failures no retry can fix: invalid job content (pydantic's ValidationError is a
    ValueError) or a target that does not exist (ConnectionNotFound is a LookupError)."""
    return isinstance(exc, ValueError | LookupError)


def target_of(session: Session, event: InboundEvent) -> JobRequest:
    """The narrowest sync that picks up what the event is about.

    A patient (the focus, or the patient the focus belongs to) -> that patient's sync;
    a resource of unknown patient -> that resource type; an empty payload -> incremental.
    A focus sent without its content (id-only, or deleted) names no patient: the record
    held here does, so the event still costs one patient's sync, not a whole type's.
    """
    base = {"connection_id": event.connection_id}
    patient_ref = event.patient_ref or _stored_patient(session, event)
    if patient_ref and patient_ref.startswith("Patient/"):
        return JobRequest(**base, job_type=JobType.PATIENT, patient_id=patient_ref.split("/", 1)[1])
    if event.resource_type and _RESOURCE_TYPE.match(event.resource_type):
        return JobRequest(**base, job_type=JobType.RESOURCE, resource_type=event.resource_type)
    return JobRequest(**base, job_type=JobType.INCREMENTAL)


def _stored_patient(session: Session, event: InboundEvent) -> str | None:
    """The patient of the record this event's focus names, if one is held here."""
    if not (event.resource_type and event.resource_id):
        return None
    return session.exec(
        select(SyncedRecord.patient_ref).where(
            SyncedRecord.connection_id == event.connection_id,
            SyncedRecord.resource_type == event.resource_type,
            SyncedRecord.remote_id == event.resource_id,
        )
    ).first()


def _waiting_job(session: Session, request: JobRequest) -> SyncJob | None:
    query = select(SyncJob).where(
        SyncJob.connection_id == request.connection_id,
        SyncJob.job_type == request.job_type,
        SyncJob.status.in_(WAITING),  # type: ignore[attr-defined]
    )
    if request.patient_id:
        query = query.where(SyncJob.patient_id == request.patient_id)
    if request.resource_type:
        query = query.where(SyncJob.resource_type == request.resource_type)
    return session.exec(query.order_by(SyncJob.id).limit(1)).first()


def job_for(
    session: Session, request: JobRequest, *, event_id: int, requested_by: str | None = None
) -> SyncJob:
    """The waiting job for this target, or a new one (the only call into orchestration).

    The lock makes one target's look-up and creation one step, but events for different
    targets run side by side, and each new job appends to the audit chain: two workers may
    take the same `seq` (unique), and the later one's insert fails with an IntegrityError
    (see `audit.record`). Nothing was committed or queued then, so it starts over: look
    again, then create, after a short random pause so the racers spread out.
    `requested_by` names the source of a new job (default: the inbound event).
    """
    target = request.patient_id or request.resource_type or "all"
    lock_name = f"webhooks:collapse:{request.connection_id}:{request.job_type.value}:{target}"
    with redis_connection().lock(lock_name, timeout=30, blocking_timeout=30):
        for attempt in range(1, CHAIN_ATTEMPTS):
            try:
                return _waiting_or_new(session, request, event_id, requested_by)
            except IntegrityError:
                session.rollback()
                time.sleep(random.uniform(0.5, 1.5) * CHAIN_PAUSE * attempt)
        # The last try: an error now is a passing failure, for the event's own retry.
        return _waiting_or_new(session, request, event_id, requested_by)


def _waiting_or_new(
    session: Session, request: JobRequest, event_id: int, requested_by: str | None = None
) -> SyncJob:
    existing = _waiting_job(session, request)
    if existing is not None:
        return existing
    return start_job(
        session,
        request=request,
        requested_by_kind=RequesterKind.WEBHOOK,
        requested_by=requested_by or f"inbound-event:{event_id}",
        actor=ACTOR,
    )


def process_event(event_id: int, *, retries_left: int | None = None) -> str:
    """Turn one stored event into its outcome; returns the new status (for the RQ result).

    Idempotent: an event already processed (a retried RQ job) is left alone. A permanent
    failure is recorded and returns "failed"; a passing one is recorded and raised, for the
    caller to retry (`retries_left` only words the recorded reason: None = first attempt).
    """
    with session_scope() as session:
        event = session.get(InboundEvent, event_id)
        if event is None or event.status not in (InboundStatus.RECEIVED, InboundStatus.FAILED):
            return "skipped"
        if event.event_type in HOUSEKEEPING or event.connection_id is None:
            event.status, event.processed_at = InboundStatus.PROCESSED, utcnow()
            return event.status.value
        if _not_synced(session, event):
            event.status, event.processed_at = InboundStatus.PROCESSED, utcnow()
            event.rejection_reason = NOT_SYNCED
            return event.status.value
        try:
            if event.event_type == gaps.MISSED and (held := _hold_catch_up(event)):
                return held
            job = job_for(session, target_of(session, event), event_id=event_id)
        except Exception as exc:
            session.rollback()
            permanent = is_permanent(exc)
            _mark_failed(
                event_id,
                _reason(exc, permanent, retries_left),
                final=permanent or not is_infrastructure(exc),
            )
            if permanent:
                log.warning(
                    "inbound event %s cannot be processed: %s", event_id, type(exc).__name__
                )
                return InboundStatus.FAILED.value
            # Retried (see `retry_later`); the row says why meanwhile. Re-raised by name only:
            # a database error's text can quote parameters (ids), and RQ logs what it gets.
            raise PassingFailure(type(exc).__name__) from None
        event = session.get(InboundEvent, event_id)
        event.job_id, event.status, event.processed_at = job.id, InboundStatus.PROCESSED, utcnow()
        session.add(event)
        if event.event_type == gaps.MISSED:
            _covered(event)
        return event.status.value


def _hold_catch_up(event: InboundEvent) -> str | None:
    """A catch-up waits out the grace period, then ends without a sync when the events it
    was stored for arrived late (reordered, not lost). None: go on and sync."""
    wait = gaps.grace_left(event.received_at)
    if wait > 0:
        defer(event.id, wait)
        return DEFERRED
    if gaps.hole_state(event.connection_id, gaps.needed(event.event_key)) != gaps.Hole.FILLED:
        return None  # open, or caught up by another catch-up whose waiting job it joins
    event.status, event.processed_at = InboundStatus.PROCESSED, utcnow()
    event.rejection_reason = NOTHING_MISSED
    return event.status.value


def _not_synced(session: Session, event: InboundEvent) -> bool:
    """The event is about a type the connection was told not to sync (its resource types):
    done, with no job, rather than a sync of its patient or a job refused as failed."""
    connection = session.get(EHRConnection, event.connection_id)
    chosen = connection.resource_types if connection is not None else []
    return bool(chosen and event.resource_type and event.resource_type not in chosen)


def _covered(event: InboundEvent) -> None:
    try:
        gaps.covered(event.connection_id, gaps.needed(event.event_key))
    except Exception as exc:  # the sync is asked for; at worst a later hole syncs again
        log.warning("inbound event %s: gap floor not moved: %s", event.id, type(exc).__name__)


def _retry() -> Retry | None:
    """RQ retries for a processing job queued for later (the settings' attempts)."""
    settings = get_settings()
    if settings.retry_attempts == 0:
        return None
    return Retry(max=settings.retry_attempts, interval=settings.retry_backoff)


def defer(event_id: int, seconds: float) -> None:
    """Process the event on its own RQ job in `seconds` (timed by RQ's scheduler), with the
    usual retries should that attempt fail for a passing reason."""
    queueing.queue(Priority.DEFAULT).enqueue_at(
        queueing.not_before(seconds),
        PROCESS_INBOUND,
        event_id,
        retry=_retry(),
        job_timeout=600,
        result_ttl=queueing.RESULT_TTL,
        failure_ttl=queueing.FAILURE_TTL,
        description=f"inbound event {event_id} (after the gap grace period)",
    )


def _reason(exc: BaseException, permanent: bool, retries_left: int | None) -> str:
    name = type(exc).__name__
    if permanent:
        return f"{name}; not retried"
    if retries_left == 0 or (retries_left is None and get_settings().retry_attempts == 0):
        if is_infrastructure(exc):  # the event is fine: it waits for the sweeper
            return f"{name}; retries used up, queued again by the sweeper"
        return f"{name}; retries used up"
    return f"{name}; retrying"


def retry_later(event_id: int) -> None:
    """Process the event again on its own RQ job after the first backoff, with RQ's `Retry`
    for the attempts after that (RQ's scheduler, which `worker-pool` runs, times them)."""
    settings = get_settings()
    if settings.retry_attempts == 0:
        return
    backoff = settings.retry_backoff
    later = backoff[1:] or backoff[-1:]
    retry = (
        Retry(max=settings.retry_attempts - 1, interval=later)
        if settings.retry_attempts > 1
        else None
    )
    queueing.queue(Priority.DEFAULT).enqueue_at(
        queueing.not_before(backoff[0]),
        PROCESS_INBOUND,
        event_id,
        retry=retry,
        job_timeout=600,
        result_ttl=queueing.RESULT_TTL,
        failure_ttl=queueing.FAILURE_TTL,
        description=f"inbound event {event_id} (retry)",
    )


def _retry_or_record(event_id: int, failure: str) -> None:
    try:
        retry_later(event_id)
    except Exception as exc:  # Redis gone too: the sweeper queues it once Redis is back
        log.warning("inbound event %s: retry not queued: %s", event_id, type(exc).__name__)
        _mark_failed(
            event_id,
            f"{failure}; retry not queued",
            final=not (is_infrastructure(exc) or is_infrastructure(failure)),
        )


def _mark_failed(event_id: int, reason: str, *, final: bool = True) -> None:
    """Record why processing failed; `final` False keeps the event `received`, for the
    sweeper to queue again (an infrastructure failure: the event itself is fine)."""
    try:
        with session_scope() as session:
            event = session.get(InboundEvent, event_id)
            if event is not None:
                if final:
                    event.status = InboundStatus.FAILED
                event.rejection_reason = reason[:200]
                session.add(event)
    except DBAPIError as exc:  # the database is the infrastructure that failed: it stays
        log.warning("inbound event %s: failure not recorded: %s", event_id, type(exc).__name__)


def drain(batch: int = 200) -> int:
    """Process every queued inbound event (the drain RQ job); returns how many.

    Several drains may run at once: each id is popped by exactly one. One event failing
    (marked failed, with the reason) does not hold up the others.
    """
    queueing.claim_drain()
    done = 0
    while ids := queueing.pop_inbound(batch):
        try:
            for n, event_id in enumerate(ids):
                if shutdown.requested():  # the worker is stopping: the rest waits for the next
                    queueing.enqueue_inbound(ids[n:], front=True)
                    log.info(
                        "drain stopped with its worker; %d event(s) queued again", len(ids) - n
                    )
                    return done
                try:
                    process_event(event_id)
                except Exception as exc:  # already marked failed; retried later, keep draining
                    name = str(exc) if isinstance(exc, PassingFailure) else type(exc).__name__
                    log.warning("inbound event %s failed: %s; retrying", event_id, name)
                    _retry_or_record(event_id, name)
                done += 1
        finally:  # after any give-back above: an id is never on neither side
            queueing.done_inbound(ids)
    return done
