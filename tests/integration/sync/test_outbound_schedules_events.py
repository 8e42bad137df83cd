"""Outbound writes (accepted, stale, refused), cron schedules, and job events on pub/sub."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import orjson
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    Direction,
    EHRConnection,
    JobType,
    RecordError,
    SyncedRecord,
    SyncJob,
)
from holovitals_sync.services.orchestration import channel_for, schedules
from holovitals_sync.services.platform.redis import redis_connection
from workers import jobs

from .conftest import job_row, start, wait_status


def _record(session, connection_id: int, rtype: str) -> SyncedRecord:
    return session.exec(
        select(SyncedRecord)
        .where(SyncedRecord.connection_id == connection_id, SyncedRecord.resource_type == rtype)
        .order_by(SyncedRecord.remote_id)
    ).first()


def test_outbound_writes_conflicts_and_refusals(connection, ehr, workers):
    workers.start(1)
    assert wait_status(start(connection.id), "completed").created > 0
    with session_scope() as session:
        patient = _record(session, connection.id, "Patient")
        patient.local_body = {**patient.local_copy, "gender": "unknown"}
        patient.dirty = True
        stale = _record(session, connection.id, "Condition")
        stale.local_body = {**stale.local_copy, "note": [{"text": "edited locally"}]}
        stale.dirty, stale.remote_version = True, "0"  # the EHR is at a newer version
        session.add_all(
            [
                patient,
                stale,
                SyncedRecord(
                    connection_id=connection.id,
                    resource_type="Basic",
                    remote_id="b1",
                    dirty=True,
                    local_body={"resourceType": "Basic", "id": "b1"},
                ),
            ]
        )
        patient_id = patient.remote_id

    job = wait_status(
        start(connection.id, JobType.FULL, direction=Direction.OUTBOUND), "completed", "failed"
    )
    assert job.status.value == "completed", job.last_error
    # The stale write's 412 read the EHR's copy at once: its content had not changed, so the
    # local note merges onto the current version (no conflict) and waits for the next run.
    assert (job.written, job.conflicts, job.invalid) == (1, 0, 1)
    assert ehr.state.store.get("Patient", patient_id).resource()["gender"] == "unknown"
    with session_scope() as session:
        patient = _record(session, connection.id, "Patient")
        assert not patient.dirty and patient.remote_version != "1"
        condition = _record(session, connection.id, "Condition")
        assert not condition.conflict_pending and condition.dirty
        assert condition.remote_version == str(
            ehr.state.store.get("Condition", condition.remote_id).version
        )
        assert condition.local_body["note"] == [{"text": "edited locally"}]
        errors = list(session.exec(select(RecordError).where(RecordError.job_id == job.id)))
    assert [(e.resource_type, e.remote_id) for e in errors] == [("Basic", "b1")]


def test_the_maintenance_job_functions_run(connection):
    """`workers.jobs.reconcile` and `schedule_tick` are documented as jobs anyone may
    enqueue: each runs (reconcile once named the package's function as a module)."""
    lost = start(connection.id)  # queued, and no worker: reconcile leaves it be
    assert isinstance(jobs.reconcile(), dict)
    assert jobs.schedule_tick() == 0  # no connection has a schedule
    assert job_row(lost).status.value == "queued"


def test_schedule_tick_starts_one_job_per_slot(connection, ehr):
    with session_scope() as session:
        row = session.get(EHRConnection, connection.id)
        row.sync_schedule = "*/5 * * * *"
        session.add(row)
    # Just after the next slot (slots before the connection existed never fire).
    slot_now = schedules.next_due("*/5 * * * *", datetime.now(UTC)).replace(second=1)
    # Two schedulers ticking in the same slot start one job between them.
    assert schedules.tick(slot_now) == 1
    assert schedules.tick(slot_now) == 0
    with session_scope() as session:
        jobs = list(session.exec(select(SyncJob)))
    assert [(j.job_type.value, j.requested_by_kind.value) for j in jobs] == [
        ("incremental", "schedule")
    ]


def test_events_report_state_and_throttled_progress(connection, ehr, workers):
    conn = redis_connection()
    pubsub = conn.pubsub()
    pubsub.subscribe(channel_for(conn))
    events: list[dict] = []

    def listen() -> None:
        for message in pubsub.listen():
            if message["type"] == "message":
                events.append(orjson.loads(message["data"]))
                if (
                    events[-1]["event"] == "state"
                    and events[-1]["status"] == "completed"
                    and events[-1]["connection_id"] == connection.id
                ):
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    workers.start(1)
    job = wait_status(start(connection.id), "completed")
    listener.join(timeout=10)
    pubsub.close()
    # Pub/sub channels span Redis databases: keep this job's events only.
    events = [e for e in events if e["job_id"] == job.id and e["connection_id"] == connection.id]
    states = [e["status"] for e in events if e["event"] == "state"]
    assert states == ["queued", "running", "completed"]
    progress = [e for e in events if e["event"] == "progress"]
    batches = -(-job.fetched // 40)
    assert 1 <= len(progress) < batches  # throttled: fewer frames than batches
    assert progress[-1]["fetched"] == job.fetched
    assert set(events[0]) >= {"job_id", "connection_id", "status", "progress", "fetched"}
