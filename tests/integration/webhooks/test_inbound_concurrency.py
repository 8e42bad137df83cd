"""Inbound events processed at the same moment by several webhook workers: each target gets
exactly one sync job, nothing fails and nothing is retried (real PostgreSQL and SQLite, real
Redis; each racing worker is a thread with its own database session, started together)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import InboundEvent, InboundStatus, JobType, SyncJob
from holovitals_sync.services import audit, event_jobs
from tests.factories import make_connection

PATIENTS = 6
EVENTS_PER_PATIENT = 2
ROUNDS = 3


def _stored_events(connection_id: int, round_no: int) -> list[int]:
    """Two events per patient (a burst), stored the way the receiver stores them."""
    ids = []
    with session_scope() as session:
        for n in range(PATIENTS * EVENTS_PER_PATIENT):
            patient = f"pt-{round_no}-{n % PATIENTS}"
            event = InboundEvent(
                connection_id=connection_id,
                event_key=f"ev-{round_no}-{n}",
                event_type="event-notification",
                resource_type="Patient",
                resource_id=patient,
                patient_ref=f"Patient/{patient}",
            )
            session.add(event)
            session.flush()
            ids.append(event.id)
    return ids


def _race(event_ids: list[int]) -> list[str | BaseException]:
    """Process every event at once, one worker each; outcomes (or exceptions) in order."""
    start = threading.Barrier(len(event_ids))

    def work(event_id: int) -> str | BaseException:
        start.wait()
        try:
            return event_jobs.process_event(event_id)
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            return exc

    with ThreadPoolExecutor(len(event_ids)) as pool:
        return list(pool.map(work, event_ids))


def test_concurrent_events_give_one_job_per_patient_and_no_failure(wh_db, redis_client):
    with session_scope() as session:
        cid = make_connection(session).id
    for round_no in range(ROUNDS):
        ids = _stored_events(cid, round_no)
        outcomes = _race(ids)
        failures = [
            f"{type(o).__name__}: {o} ({o.__context__!r})"
            for o in outcomes
            if isinstance(o, BaseException)
        ]
        assert failures == [], failures
        assert outcomes == ["processed"] * len(ids)

    with session_scope() as session:
        jobs = session.exec(select(SyncJob).where(SyncJob.connection_id == cid)).all()
        events = session.exec(select(InboundEvent).where(InboundEvent.connection_id == cid)).all()
        chain = audit.verify_chain(session)
    assert all(j.job_type is JobType.PATIENT for j in jobs)
    # Exactly one job per patient: the burst collapsed, nobody created a second one.
    assert sorted(j.patient_id for j in jobs) == sorted(
        f"pt-{r}-{p}" for r in range(ROUNDS) for p in range(PATIENTS)
    )
    by_patient = {j.patient_id: j.id for j in jobs}
    for event in events:
        assert event.status is InboundStatus.PROCESSED, event.rejection_reason
        assert event.job_id == by_patient[event.patient_ref.split("/", 1)[1]]
        assert event.rejection_reason is None  # never failed, not even once
    assert chain.ok, chain
