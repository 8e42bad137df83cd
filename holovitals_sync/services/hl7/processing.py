"""Stored ADT messages become work (the drain job on the webhooks queue).

- A01/A03/A04/A08/A28/A31: a patient sync of the patient PID-3 names;
- A11/A13 (cancellations): recorded, no sync;
- A40 (merge): the MRG-1 patient is marked merged into the PID-3 patient (`patient_merge`,
  `patient.merged`), and the survivor is synced;
- any other ADT event: recorded, nothing to do.

Coalescing: the drain waits `HOLOVITALS_MLLP_COALESCE_SECONDS` before it reads the list, so
a burst about one patient (A01, A08, A08, ... within the window) is read as one batch and
asks for one sync; across batches, a sync of the patient still waiting (pending or queued)
is joined, not queued twice (the inbound webhooks' collapse, `event_jobs.job_for`).

Failures: a message that can never be processed (unreadable, no usable identifier, no such
patient) ends `failed` with a reason of fixed words. One that met the connection's settings
(or an EHR answer no retry changes) ends `failed` too, held until the connection is saved
(`held`). One whose processing met the EHR, Redis or the database away stays `received` with
the reason, and the sweep queues it again.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

from sqlmodel import Session, select

from ...config import get_settings
from ...db import session_scope
from ...models import (
    EHRConnection,
    HL7Feed,
    HL7Message,
    InboundStatus,
    JobType,
    PatientMerge,
)
from ...models.types import utcnow
from ..event_jobs import job_for
from ..orchestration import JobRequest, shutdown
from ..webhooks.resource_events import Change, emit_changes
from . import queueing
from .events import Action, AdtEvent, UnreadableMessage, read_event
from .held import held_outcome
from .patients import NoUsableIdentifier, PatientNotFound, resolve
from .store import read_body

log = logging.getLogger(__name__)
BATCH = 200
PERMANENT = (UnreadableMessage, NoUsableIdentifier, PatientNotFound)


@dataclass
class Batch:
    """What one batch of messages asks for: syncs per patient, and each message's outcome."""

    syncs: dict[tuple[int, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    done: dict[int, tuple[InboundStatus, str, str | None]] = field(default_factory=dict)


def _systems(session: Session) -> dict[tuple[int, str], dict[str, str]]:
    """(connection, "APP|FAC" or "APP|") -> the feed's assigning-authority systems."""
    return {
        (f.connection_id, f"{f.sending_application}|{f.sending_facility}"): f.identifier_systems
        or {}
        for f in session.exec(select(HL7Feed))
    }


def _feed_systems(
    systems: dict[tuple[int, str], dict[str, str]], message: HL7Message
) -> dict[str, str]:
    app = message.sender.split("|", 1)[0]
    return (
        systems.get((message.connection_id, message.sender))
        or systems.get((message.connection_id, f"{app}|"))
        or {}
    )


def _merge(
    session: Session, connection: EHRConnection, message: HL7Message, event: AdtEvent, survivor: str
) -> str:
    """Record an A40; returns the outcome's words."""
    try:
        merged = resolve(session, connection, event.merged, merged_away=True)
    except (NoUsableIdentifier, PatientNotFound):
        merged = None
    if merged is None or merged == survivor:
        return "merge recorded; the merged patient is not known here"
    existing = session.exec(
        select(PatientMerge).where(
            PatientMerge.connection_id == connection.id, PatientMerge.merged_patient_id == merged
        )
    ).first()
    if existing is None:
        session.add(
            PatientMerge(
                connection_id=connection.id,
                merged_patient_id=merged,
                survivor_patient_id=survivor,
                message_id=message.id,
            )
        )
        emit_changes(
            session,
            int(connection.id or 0),
            [Change("Patient", merged, None, False, patient_id=merged, merged_into=survivor)],
        )
    session.commit()
    return f"patient {merged} merged into {survivor}"


def _decide(
    session: Session,
    message: HL7Message,
    connection: EHRConnection,
    systems: dict[str, str],
    batch: Batch,
) -> None:
    """One message's outcome (or its share of a patient's sync)."""
    event = read_event(read_body(message), systems)
    if event.action is Action.NONE:
        batch.done[message.id] = (InboundStatus.PROCESSED, f"{event.trigger}: no action", None)
        return
    if event.action is Action.CANCELLATION:
        batch.done[message.id] = (
            InboundStatus.PROCESSED,
            f"{event.trigger}: cancellation recorded",
            None,
        )
        return
    patient = resolve(session, connection, event.patient)
    note = ""
    if event.action is Action.MERGE:
        note = _merge(session, connection, message, event, patient) + "; "
    batch.syncs[(message.connection_id, patient)].append(message.id)
    batch.done[message.id] = (
        InboundStatus.PROCESSED,
        f"{event.trigger}: {note}patient sync",
        patient,
    )


def _fail(batch: Batch, message: HL7Message, exc: Exception) -> None:
    mid = int(message.id or 0)
    if isinstance(exc, PERMANENT):
        batch.done[mid] = (InboundStatus.FAILED, f"{exc}; not retried", None)
    elif outcome := held_outcome(exc):  # the connection's settings: until it is saved
        batch.done[mid] = (InboundStatus.FAILED, outcome, None)
        log.warning("HL7 message %s: held for connection %s: %s",
                    mid, message.connection_id, type(exc).__name__)  # fmt: skip
    else:  # the EHR, Redis or the database: stays received, the sweep queues it again
        batch.done[mid] = (
            InboundStatus.RECEIVED,
            f"{type(exc).__name__}; retried later",
            None,
        )
        log.warning("HL7 message %s: processing failed: %s; retried later", mid, type(exc).__name__)


def process_batch(message_ids: list[int]) -> int:
    """Decide every message, ask for one sync per patient, record outcomes; how many."""
    batch = Batch()
    with session_scope() as session:
        systems = _systems(session)
        messages = list(
            session.exec(
                select(HL7Message)
                .where(
                    HL7Message.id.in_(message_ids),  # type: ignore[union-attr]
                    HL7Message.status == InboundStatus.RECEIVED,
                )
                .order_by(HL7Message.id)
            )
        )
        connections = {
            m.connection_id: session.get(EHRConnection, m.connection_id) for m in messages
        }
        for message in messages:
            try:
                _decide(
                    session,
                    message,
                    connections[message.connection_id],
                    _feed_systems(systems, message),
                    batch,
                )
            except Exception as exc:  # noqa: BLE001 - one message never holds up the rest
                session.rollback()
                _fail(batch, message, exc)
        jobs = _request_syncs(session, batch)
        _record(session, messages, batch, jobs)
    return len(batch.done)


def _request_syncs(session: Session, batch: Batch) -> dict[int, int]:
    """One patient sync per patient (joining a waiting one); message id -> job id."""
    jobs: dict[int, int] = {}
    for (connection_id, patient), ids in batch.syncs.items():
        request = JobRequest(
            connection_id=connection_id, job_type=JobType.PATIENT, patient_id=patient
        )
        try:
            job = job_for(session, request, event_id=ids[0], requested_by=f"hl7-message:{ids[0]}")
        except Exception as exc:  # noqa: BLE001 - recorded per message below
            session.rollback()
            for message_id in ids:
                batch.done[message_id] = (
                    InboundStatus.RECEIVED,
                    f"{type(exc).__name__}; retried later",
                    None,
                )
            log.warning("HL7 messages %s: sync not queued: %s", ids[0], type(exc).__name__)
            continue
        jobs.update(dict.fromkeys(ids, int(job.id or 0)))
    return jobs


def _record(
    session: Session, messages: list[HL7Message], batch: Batch, jobs: dict[int, int]
) -> None:
    now = utcnow()
    for message in messages:
        status, outcome, patient = batch.done.get(
            message.id, (InboundStatus.RECEIVED, "not processed", None)
        )
        row = session.get(HL7Message, message.id)
        if row is None:
            continue
        row.status, row.outcome = status, outcome[:200]
        row.patient_id = patient or row.patient_id
        row.job_id = jobs.get(message.id, row.job_id)
        if status != InboundStatus.RECEIVED:
            row.processed_at = now
        session.add(row)
    session.commit()


def drain(batch: int = BATCH) -> int:
    """Process every queued message (the drain RQ job); returns how many."""
    queueing.claim_drain()
    window = get_settings().mllp_coalesce_seconds
    if window:
        time.sleep(window)  # a burst about one patient arrives within it: one sync
    done = 0
    while ids := queueing.pop_messages(batch):
        try:
            if shutdown.requested():  # the worker is stopping: they wait for the next drain
                queueing.enqueue_messages(ids, front=True)
                return done
            done += process_batch(ids)
        finally:  # after any give-back above: an id is never on neither side
            queueing.done(ids)
    return done
