"""Redis and PostgreSQL restarted under a running sync (the private servers of this
session, never the machine's shared ones): the job completes, nothing is half-written."""

from __future__ import annotations

import psycopg
import pytest

from holovitals_sync.models import SyncJob
from holovitals_sync.services.orchestration import reconcile
from tests.integration.sync.conftest import job_row, start, wait_running
from tests.waiting import wait_for

from .conftest import assert_matches_sandbox, record_count

pytestmark = pytest.mark.timeout(300)


def wait_finished(job_id: int, timeout: float = 150) -> SyncJob:
    def finished() -> SyncJob | None:
        try:
            reconcile()
            row = job_row(job_id)
        except Exception:  # the service may still be coming back
            return None
        return row if row.status.value in ("completed", "failed") else None

    return wait_for(finished, timeout=timeout, interval=1)  # type: ignore[return-value]


def test_redis_restarted_mid_sync(connection, ehr, pools, private_redis):
    ehr.configure(export_file_max_lines=10)
    ehr.set_faults(latency_ms=100)
    pools.start("sync")
    job_id = start(connection.id)
    wait_running(job_id, min_fetched=40, timeout=60)

    private_redis.restart(down_for=2.0)  # no persistence: every queue and RQ job is gone

    job = wait_finished(job_id)
    assert job.status.value == "completed", (job.last_error, pools.logs())
    assert_matches_sandbox(connection.id, ehr)
    # The same worker pool took new work after the outage: a second job runs too.
    ehr.clear_faults()
    second = wait_finished(start(connection.id), timeout=90)
    assert second.status.value == "completed", (second.last_error, pools.logs())
    assert second.created == 0 and second.unchanged == record_count(connection.id)


def hold_job_row(database_url: str, job_id: int) -> psycopg.Connection:
    """Lock the job's row in an open transaction: the worker's next batch, records already
    written, then waits on its fenced UPDATE of that row, mid-transaction."""
    conn = psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql"))
    conn.execute("SELECT id FROM sync_job WHERE id = %s FOR UPDATE", (job_id,))
    return conn


def batch_waiting(database_url: str) -> bool:
    with psycopg.connect(
        database_url.replace("postgresql+psycopg", "postgresql"), autocommit=True
    ) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = "
            "current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
        return bool(row and row[0])


def test_postgres_restarted_mid_batch(connection, ehr, pools, private_pg, fault_env, monkeypatch):
    # The configured backoff (the default's shape): a retry right away would find the
    # server still down and burn every attempt within the restart.
    monkeypatch.setenv("HOLOVITALS_RETRY_BACKOFF", "2,3,4")
    ehr.configure(export_file_max_lines=10)
    ehr.set_faults(latency_ms=50)
    pools.start("sync")
    job_id = start(connection.id)
    wait_running(job_id, min_fetched=40, timeout=60)
    holder = hold_job_row(fault_env, job_id)
    wait_for(lambda: batch_waiting(fault_env), timeout=30)
    in_flight = record_count(connection.id)  # what is committed; the batch waits

    private_pg.restart()  # cuts every session: the batch in flight rolls back
    holder.close()

    job = wait_finished(job_id)
    assert job.status.value == "completed", (job.last_error, pools.logs())
    assert job.attempts >= 2 and "OperationalError" in (job.last_error or ""), job.last_error
    assert record_count(connection.id) > in_flight
    assert_matches_sandbox(connection.id, ehr)
    assert job.created == record_count(connection.id)
