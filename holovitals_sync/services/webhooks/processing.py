"""Processing a stored inbound event on the webhooks queue: it becomes a targeted sync job.

A patient's burst of events collapses into one job: while a job for the same target is still
waiting (pending or queued) it will fetch the latest data anyway, so later events attach to
it. A Redis lock per target makes the look-up and the creation one step across workers.
"""

from __future__ import annotations

import logging
import re

from sqlmodel import Session, select

from ...db import session_scope
from ...models import InboundEvent, InboundStatus, JobStatus, JobType, RequesterKind, SyncJob
from ...models.types import utcnow
from .. import audit
from ..orchestration import JobRequest, start_job
from ..orchestration.queueing import redis_connection
from . import queueing
from .notifications import HOUSEKEEPING

log = logging.getLogger(__name__)
ACTOR = audit.Actor.system("webhooks")
WAITING = (JobStatus.PENDING, JobStatus.QUEUED)
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")


def target_of(event: InboundEvent) -> JobRequest:
    """The narrowest sync that picks up what the event is about.

    A patient (the focus, or the patient the focus belongs to) -> that patient's sync;
    a resource of unknown patient -> that resource type; an empty payload -> incremental.
    """
    base = {"connection_id": event.connection_id}
    if event.patient_ref and event.patient_ref.startswith("Patient/"):
        return JobRequest(**base, job_type=JobType.PATIENT,
                          patient_id=event.patient_ref.split("/", 1)[1])
    if event.resource_type and _RESOURCE_TYPE.match(event.resource_type):
        return JobRequest(**base, job_type=JobType.RESOURCE, resource_type=event.resource_type)
    return JobRequest(**base, job_type=JobType.INCREMENTAL)


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


def job_for(session: Session, request: JobRequest, *, event_id: int) -> SyncJob:
    """The waiting job for this target, or a new one (the only call into orchestration)."""
    target = request.patient_id or request.resource_type or "all"
    lock_name = f"webhooks:collapse:{request.connection_id}:{request.job_type.value}:{target}"
    with redis_connection().lock(lock_name, timeout=30, blocking_timeout=30):
        existing = _waiting_job(session, request)
        if existing is not None:
            return existing
        return start_job(session, request=request, requested_by_kind=RequesterKind.WEBHOOK,
                         requested_by=f"inbound-event:{event_id}", actor=ACTOR)


def process_event(event_id: int) -> str:
    """Turn one stored event into its outcome; returns the new status (for the RQ result).

    Idempotent: an event already processed (a retried RQ job) is left alone.
    """
    with session_scope() as session:
        event = session.get(InboundEvent, event_id)
        if event is None or event.status not in (InboundStatus.RECEIVED, InboundStatus.FAILED):
            return "skipped"
        if event.event_type in HOUSEKEEPING or event.connection_id is None:
            event.status, event.processed_at = InboundStatus.PROCESSED, utcnow()
            return event.status.value
        try:
            job = job_for(session, target_of(event), event_id=event_id)
        except Exception as exc:
            session.rollback()
            _mark_failed(event_id, type(exc).__name__)
            raise  # RQ retries; the row says why meanwhile
        event = session.get(InboundEvent, event_id)
        event.job_id, event.status, event.processed_at = job.id, InboundStatus.PROCESSED, utcnow()
        session.add(event)
        return event.status.value


def _mark_failed(event_id: int, reason: str) -> None:
    with session_scope() as session:
        event = session.get(InboundEvent, event_id)
        if event is not None:
            event.status, event.rejection_reason = InboundStatus.FAILED, reason[:200]
            session.add(event)


def drain(batch: int = 200) -> int:
    """Process every queued inbound event (the drain RQ job); returns how many.

    Several drains may run at once: each id is popped by exactly one. One event failing
    (marked failed, with the reason) does not hold up the others.
    """
    queueing.claim_drain()
    done = 0
    while ids := queueing.pop_inbound(batch):
        for event_id in ids:
            try:
                process_event(event_id)
            except Exception as exc:  # already marked failed; keep draining
                log.warning("inbound event %s failed: %s", event_id, type(exc).__name__)
            done += 1
    return done
