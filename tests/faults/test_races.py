"""Two workers on two database sessions racing on the same job and on the same records:
no lost update, no duplicate row (the unique key on connection + type + id proves it)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlmodel import Session, select

from holovitals_sync.adapters import content_hash
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import EHRConnection, JobType, SyncedRecord, SyncJob
from holovitals_sync.services.orchestration.service import dispatch
from holovitals_sync.services.orchestration.upsert import upsert_batch
from tests.integration.sync.conftest import job_row, start, wait_running, wait_status
from tests.waiting import wait_for

from .conftest import assert_matches_sandbox, record_count

pytestmark = pytest.mark.timeout(180)


def allow_two_runs(connection_id: int) -> None:
    with session_scope() as session:
        row = session.get(EHRConnection, connection_id)
        row.concurrency_limit = 2
        session.add(row)


def test_a_job_taken_over_by_a_second_worker_is_advanced_by_one_run_only(connection, ehr, pools):
    allow_two_runs(connection.id)
    ehr.configure(export_file_max_lines=10)
    ehr.set_faults(latency_ms=100)
    pools.start("sync")
    job_id = start(connection.id)
    first = wait_running(job_id, min_fetched=40, timeout=60)
    pools.start("sync")
    # What maintenance does to a job it believes lost, while its first run is alive: a
    # second worker (its own process and database session) starts the next attempt.
    with session_scope() as session:
        dispatch(session, session.get(SyncJob, job_id))
    wait_for(lambda: job_row(job_id).attempts == first.attempts + 1, timeout=60)
    job = wait_status(job_id, "completed", "failed", timeout=120)
    assert job.status.value == "completed", (job.last_error, pools.logs())
    assert job.attempts == first.attempts + 1
    assert_matches_sandbox(connection.id, ehr)
    # The superseded run stopped at its next batch: nothing counted twice.
    assert job.created == record_count(connection.id) and job.updated == 0


def test_two_syncs_of_one_connection_at_once_store_each_record_once(connection, ehr, pools):
    allow_two_runs(connection.id)
    ehr.set_faults(latency_ms=30)
    pools.start("sync")
    pools.start("sync")
    ids = [start(connection.id, JobType.INCREMENTAL), start(connection.id, JobType.FULL)]
    jobs = [wait_status(i, "completed", "failed", timeout=120) for i in ids]
    assert all(j.status.value == "completed" for j in jobs), [j.last_error for j in jobs]
    assert_matches_sandbox(connection.id, ehr)
    assert sum(j.created for j in jobs) == record_count(connection.id)


def version(resource: dict[str, Any], n: int, instant: str) -> dict[str, Any]:
    return {
        **resource,
        "meta": {"versionId": str(n), "lastUpdated": instant},
        "status": "amended" if n > 1 else "final",
    }


def upsert_in(session: Session, connection_id: int, resource: dict[str, Any]) -> None:
    upsert_batch(session, connection_id=connection_id, job_id=None, resources=[resource])


@pytest.mark.parametrize("newer_commits_first", [True, False])
def test_an_older_copy_committed_last_does_not_overwrite_a_newer_one(
    connection, ehr, newer_commits_first
):
    base = {
        "resourceType": "Observation",
        "id": "race-1",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/p1"},
    }
    old = version(base, 1, "2026-01-01T00:00:00.000Z")
    new = version(base, 2, "2026-01-02T00:00:00.000Z")
    first, second = (new, old) if newer_commits_first else (old, new)
    engine = get_engine()
    outcome: dict[str, BaseException] = {}
    with Session(engine) as holder:
        upsert_in(holder, connection.id, first)  # row (or its insert) locked until commit

        def racer() -> None:
            try:
                with Session(engine) as session:
                    upsert_in(session, connection.id, second)  # waits for the lock
                    session.commit()
            except BaseException as exc:  # reported by the main thread
                outcome["error"] = exc

        thread = threading.Thread(target=racer)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # really waiting on the other session
        holder.commit()
    thread.join(timeout=30)
    assert not thread.is_alive() and "error" not in outcome, outcome
    with session_scope() as session:
        rows = list(
            session.exec(
                select(SyncedRecord).where(
                    SyncedRecord.connection_id == connection.id, SyncedRecord.remote_id == "race-1"
                )
            )
        )
    assert len(rows) == 1
    assert rows[0].content_hash == content_hash(new) and rows[0].remote_version == "2"
