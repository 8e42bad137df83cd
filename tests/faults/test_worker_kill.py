"""A sync worker SIGKILLed mid-batch (full and incremental sync): a new pool takes the job
back through the lost-job recovery and it completes with exactly the sandbox's data."""

from __future__ import annotations

import pytest
from rq import Worker
from sqlmodel import select

from holovitals_sync.config import get_settings
from holovitals_sync.db import session_scope
from holovitals_sync.models import JobType, Priority, SyncJob
from holovitals_sync.services.orchestration import queueing, reconcile
from tests.integration.sync.conftest import job_row, start, wait_running, wait_status
from tests.waiting import wait_for

from .conftest import assert_matches_sandbox, record_count, remote_hashes

pytestmark = pytest.mark.timeout(300)


def finished_after_recovery(job_id: int, timeout: float = 120) -> SyncJob:
    """Wait for the end, running the maintenance a worker runs every 10 s meanwhile."""

    def finished() -> SyncJob | None:
        reconcile()
        row = job_row(job_id)
        return row if row.status.value in ("completed", "failed") else None

    return wait_for(finished, timeout=timeout, interval=1)  # type: ignore[return-value]


def test_full_sync_survives_a_sigkilled_worker(connection, ehr, pools):
    # Many small export files answered slowly: the kill lands between batches' commits.
    ehr.configure(export_file_max_lines=10)
    ehr.set_faults(latency_ms=100)
    first = pools.start("sync")
    job_id = start(connection.id)
    wait_running(job_id, min_fetched=80, timeout=60)
    pools.kill(first)
    stored_when_killed = record_count(connection.id)
    assert stored_when_killed > 0

    pools.start("sync")
    job = finished_after_recovery(job_id)
    assert job.status.value == "completed", (job.last_error, pools.logs())
    assert job.attempts >= 2 and "Abandoned" in (job.last_error or "")
    assert_matches_sandbox(connection.id, ehr)
    assert record_count(connection.id) > stored_when_killed
    # Every record counted once as created, however often its batch was replayed.
    assert job.created == record_count(connection.id) and job.updated == 0


def test_incremental_sync_survives_a_sigkilled_worker(connection, ehr, pools):
    pools.start("sync")
    baseline = wait_status(start(connection.id), "completed", "failed", timeout=90)
    assert baseline.status.value == "completed", baseline.last_error
    pool = pools.procs[-1]

    changed = ehr.clinic_day(changes=150)
    assert changed["changed"]
    ehr.configure(default_page_size=10)
    ehr.set_faults(latency_ms=150)
    job_id = start(connection.id, JobType.INCREMENTAL)
    wait_running(job_id, min_fetched=20, timeout=60)
    pools.kill(pool)
    partial = job_row(job_id)
    assert partial.status.value == "running" and partial.fetched < 150 + 1000

    pools.start("sync")
    job = finished_after_recovery(job_id)
    assert job.status.value == "completed", (job.last_error, pools.logs())
    assert job.attempts >= 2
    assert_matches_sandbox(connection.id, ehr)
    assert len(remote_hashes(ehr)) == record_count(connection.id)


@pytest.mark.faults_long
def test_full_sync_survives_repeated_kills(connection, ehr, pools):
    """Long variant: three kills in one run (max attempts raised to allow them)."""
    from holovitals_sync.db import session_scope

    ehr.configure(export_file_max_lines=10)
    ehr.set_faults(latency_ms=100)
    pools.start("sync")
    job_id = start(connection.id)
    with session_scope() as session:
        row = session.get(SyncJob, job_id)
        row.max_attempts = 6
        session.add(row)
    for kill in range(3):
        wait_running(job_id, min_fetched=40 * (kill + 2), timeout=90)
        pools.kill(pools.procs[-1])
        pools.start("sync")
    job = finished_after_recovery(job_id, timeout=240)
    assert job.status.value == "completed", (job.last_error, pools.logs())
    assert job.attempts >= 4
    assert_matches_sandbox(connection.id, ehr)
    assert job.created == record_count(connection.id)


def test_a_split_full_sync_survives_a_sigkilled_pool(connection, ehr, pools, monkeypatch):
    """Killed while its parts run (#23): the parts are taken back like any job, the
    finisher still waits for them all, and every resource is stored exactly once."""
    monkeypatch.setenv("HOLOVITALS_SYNC_SPLIT_ABOVE", "1")  # the pools inherit it
    monkeypatch.setenv("HOLOVITALS_WORKERS_SYNC", "3")
    get_settings.cache_clear()
    ehr.configure(export_file_max_lines=50)
    ehr.set_faults(latency_ms=100)
    first = pools.start("sync")
    # A full sync splits when two sync workers are there to share it.
    queue = queueing.queue_for(Priority.DEFAULT)
    wait_for(
        lambda: Worker.count(connection=queue.connection, queue=queue) >= 2 or None, timeout=60
    )
    job_id = start(connection.id)
    wait_running(job_id, min_fetched=100, timeout=90)
    assert _part_count(job_id) >= 2
    pools.kill(first)

    pools.start("sync")
    # A part a dying worker had taken but not started is found by reconcile after its
    # grace period (60 s) and queued again.
    job = finished_after_recovery(job_id, timeout=200)
    assert job.status.value == "completed", (job.last_error, pools.logs())
    assert_matches_sandbox(connection.id, ehr)
    assert job.created == record_count(connection.id) and job.updated == 0


def _part_count(parent_id: int) -> int:
    with session_scope() as session:
        return len(session.exec(select(SyncJob).where(SyncJob.parent_id == parent_id)).all())
