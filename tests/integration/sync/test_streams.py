"""Parallel streams within one job: several resource types paged at once, never more of our
requests at the EHR than the connection allows, and a killed worker resumes each stream
after its last committed batch. Real workers, the sandbox over HTTP, SQLite and PostgreSQL."""

from __future__ import annotations

from sqlmodel import func, select

from holovitals_sync.db import session_scope
from holovitals_sync.models import EHRConnection, JobType, SyncedRecord
from tests.integration.sync.conftest import (
    job_row,
    local_hashes,
    sandbox_hashes,
    start,
    wait_for,
    wait_running,
    wait_status,
)


def _tune(connection_id: int, **values: int) -> None:
    with session_scope() as session:
        row = session.get(EHRConnection, connection_id)
        for name, value in values.items():
            setattr(row, name, value)
        session.add(row)


def _stored(connection_id: int) -> int:
    with session_scope() as session:
        return session.exec(
            select(func.count())
            .select_from(SyncedRecord)
            .where(SyncedRecord.connection_id == connection_id)
        ).one()


def test_streams_run_at_once_within_the_connections_limit(connection, ehr, workers):
    workers.start(1)
    assert wait_status(start(connection.id), "completed").status.value == "completed"
    ehr.clinic_day(changes=150, seed=7)
    _tune(connection.id, concurrency_limit=3, stream_limit=8, page_size=20)
    ehr.set_faults(latency_ms=60)
    ehr.state.stats.reset()
    job = wait_status(start(connection.id, JobType.INCREMENTAL), "completed", "failed", timeout=120)
    assert job.status.value == "completed", job.last_error
    # Several types at once (one stream would show 1), never beyond the limit of 3.
    assert ehr.stats()["max_in_flight"] == 3
    assert local_hashes(connection.id) == sandbox_hashes(ehr)


def test_one_stream_where_the_limit_is_one(connection, ehr, workers):
    workers.start(1)
    wait_status(start(connection.id), "completed")
    ehr.clinic_day(changes=60, seed=8)
    _tune(connection.id, concurrency_limit=1, stream_limit=4)
    ehr.set_faults(latency_ms=30)
    ehr.state.stats.reset()
    job = wait_status(start(connection.id, JobType.INCREMENTAL), "completed", "failed", timeout=120)
    assert job.status.value == "completed", job.last_error
    assert ehr.stats()["max_in_flight"] == 1
    assert local_hashes(connection.id) == sandbox_hashes(ehr)


def test_a_killed_worker_resumes_every_stream_where_it_was(connection, ehr, workers):
    (first,) = workers.start(1)
    wait_status(start(connection.id), "completed")
    ehr.clinic_day(changes=300, seed=9)
    _tune(connection.id, concurrency_limit=4, stream_limit=4, page_size=10)
    ehr.set_faults(latency_ms=80)
    job_id = start(connection.id, JobType.INCREMENTAL)
    wait_running(job_id, min_fetched=100, timeout=120)
    workers.kill(first)
    stopped = job_row(job_id)
    assert "streams" in stopped.checkpoint.get("resume", {})  # each stream's own position
    workers.start(1)
    job = wait_for(
        lambda: row if (row := job_row(job_id)).status.value in ("completed", "failed") else None,
        timeout=180,
        interval=1,
    )
    assert job.status.value == "completed", job.last_error
    expected = sandbox_hashes(ehr)
    assert local_hashes(connection.id) == expected
    assert _stored(connection.id) == len(expected)  # nothing stored twice


def _exports(ehr) -> int:
    return sum("$export" in r["path"] for r in ehr.stats()["recent"])


def test_a_connection_set_to_search_pages_its_full_sync(connection, ehr, workers):
    """The sandbox offers `$export`, so a full sync exports by default; a connection set to
    search pages every type instead (a server that exports slowly), and stores the same."""
    from holovitals_sync.services.connections import ConnectionPatch, update_connection
    from tests.factories import SYSTEM

    workers.start(1)
    ehr.state.stats.reset()
    assert wait_status(start(connection.id), "completed").status.value == "completed"
    assert _exports(ehr) >= 1
    exported = local_hashes(connection.id)
    assert exported == sandbox_hashes(ehr)

    with session_scope() as session:
        row = session.get(EHRConnection, connection.id)
        update_connection(
            session, row=row, patch=ConnectionPatch(full_sync_via="search"), actor=SYSTEM
        )
    ehr.clinic_day(changes=40, seed=11)
    ehr.state.stats.reset()
    job = wait_status(start(connection.id), "completed", "failed", timeout=120)
    assert job.status.value == "completed", job.last_error
    assert _exports(ehr) == 0
    searched = {r["path"].rsplit("/", 1)[-1] for r in ehr.stats()["recent"] if r["method"] == "GET"}
    assert {"Patient", "Observation", "Encounter"} <= searched
    assert job.fetched >= len(exported)
    assert local_hashes(connection.id) == sandbox_hashes(ehr)


def test_the_largest_type_is_paged_first(connection, ehr, workers):
    """Offset paging reads a type's pages one after another, so the largest type sets a
    run's end: its stream starts first (`adapters.volume`), not in the profile's order, where
    Patient and Encounter come before Observation. Everything is still stored once."""
    from holovitals_sync.services.connections import ConnectionPatch, update_connection
    from tests.factories import SYSTEM

    with session_scope() as session:
        row = session.get(EHRConnection, connection.id)
        update_connection(
            session, row=row, patch=ConnectionPatch(full_sync_via="search"), actor=SYSTEM
        )
    _tune(connection.id, concurrency_limit=2, stream_limit=2)
    workers.start(1)
    ehr.state.stats.reset()
    job = wait_status(start(connection.id), "completed", "failed", timeout=120)
    assert job.status.value == "completed", job.last_error
    searched = [
        r["path"].rsplit("/", 1)[-1]
        for r in ehr.stats()["recent"]
        if r["method"] == "GET" and "/Patient/" not in r["path"]
    ]
    profile_order = ["Patient", "Encounter", "Observation"]
    assert [t for t in searched if t in profile_order][0] == "Observation", searched[:10]
    expected = sandbox_hashes(ehr)
    assert local_hashes(connection.id) == expected
    assert _stored(connection.id) == len(expected)
