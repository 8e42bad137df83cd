"""Full and incremental inbound syncs on real RQ workers give exactly the sandbox's data."""

from __future__ import annotations

from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    Conflict,
    ConflictKind,
    JobType,
    SyncCheckpoint,
    SyncedRecord,
)

from .conftest import local_hashes, sandbox_hashes, start, wait_status


def test_full_then_incremental_sync_mirror_the_sandbox(connection, ehr, workers):
    workers.start(1)
    job = wait_status(start(connection.id), "completed", "failed")
    assert job.status.value == "completed", job.last_error
    expected = sandbox_hashes(ehr)
    assert local_hashes(connection.id) == expected
    assert job.created == len(expected) and job.updated == 0 and job.attempts == 1
    # The export manifest's counts are the run's total, so its progress bar moves.
    assert job.total_estimate == len(expected) and job.progress == 1.0

    day = ehr.clinic_day(changes=15, seed=5)
    job = wait_status(start(connection.id, JobType.INCREMENTAL), "completed", "failed")
    assert job.status.value == "completed", job.last_error
    assert local_hashes(connection.id) == sandbox_hashes(ehr)
    changed = sum(len(ids) for ids in day["changed"].values())
    assert job.created + job.updated == changed
    assert job.created == sum(len(ids) for ids in day["created"].values())

    # Nothing changed since: a second incremental run writes nothing.
    job = wait_status(start(connection.id, JobType.INCREMENTAL), "completed", "failed")
    assert job.created == job.updated == 0


def test_a_patient_sync_does_not_move_the_incremental_cursor(connection, ehr, workers):
    """Changes to other patients made before a one-patient sync still reach the next
    incremental sync: the patient job's pages say nothing about them."""
    workers.start(1)
    assert wait_status(start(connection.id), "completed", "failed").status.value == "completed"
    after_full = _cursors(connection.id)
    assert after_full
    ehr.clinic_day(changes=15, seed=6)
    patient = wait_status(
        start(connection.id, JobType.PATIENT, patient_id="pt-00001"), "completed", "failed"
    )
    assert patient.status.value == "completed", patient.last_error
    assert _cursors(connection.id) == after_full
    job = wait_status(start(connection.id, JobType.INCREMENTAL), "completed", "failed")
    assert job.status.value == "completed", job.last_error
    assert local_hashes(connection.id) == sandbox_hashes(ehr)


def _cursors(connection_id: int) -> dict[str, str | None]:
    with session_scope() as session:
        rows = session.exec(
            select(SyncCheckpoint).where(SyncCheckpoint.connection_id == connection_id)
        )
        return {row.resource_type: row.cursor for row in rows}


def test_a_second_chart_for_one_person_is_a_duplicate_conflict(connection, ehr, workers):
    """Two remote Patients with one MRN: the run that stores them opens a duplicate."""
    store = ehr.state.store
    first = store.get("Patient", "pt-00001").resource()
    twin = {k: v for k, v in first.items() if k not in ("id", "meta")}
    created = store.create({**twin, "resourceType": "Patient"})
    workers.start(1)
    job = wait_status(start(connection.id), "completed", "failed")
    assert job.status.value == "completed", job.last_error
    with session_scope() as session:
        conflicts = session.exec(
            select(Conflict).where(
                Conflict.connection_id == connection.id, Conflict.kind == ConflictKind.DUPLICATE
            )
        ).all()
        assert len(conflicts) == 1 and job.conflicts == 1
        mine = session.get(SyncedRecord, conflicts[0].record_id)
        assert {mine.remote_id, conflicts[0].remote_values["remote_id"]} == {"pt-00001", created.id}
