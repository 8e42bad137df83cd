"""A full sync shared by several workers (#23) under the faults an unsplit one survives: a 429
storm while its parts run, and Redis restarted (every RQ job gone, the finisher too). The
parent ends completed, and every resource is stored exactly once."""

from __future__ import annotations

import pytest
from rq import Worker
from sqlmodel import select

from holovitals_sync.config import get_settings
from holovitals_sync.db import session_scope
from holovitals_sync.models import Priority, SyncJob
from holovitals_sync.services.orchestration import queueing
from tests.integration.sync.conftest import start, wait_running
from tests.waiting import wait_for

from .conftest import assert_matches_sandbox, record_count
from .test_service_restarts import wait_finished

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def shared(connection, ehr, pools, monkeypatch: pytest.MonkeyPatch):
    """Two sync workers and a full sync large enough to split into export-file parts."""
    monkeypatch.setenv("HOLOVITALS_SYNC_SPLIT_ABOVE", "1")  # the pools inherit it
    monkeypatch.setenv("HOLOVITALS_WORKERS_SYNC", "2")
    get_settings.cache_clear()
    ehr.configure(export_file_max_lines=40)
    ehr.set_faults(latency_ms=100)
    pools.start("sync")
    queue = queueing.queue_for(Priority.DEFAULT)
    wait_for(
        lambda: Worker.count(connection=queue.connection, queue=queue) >= 2 or None, timeout=60
    )
    return connection


def _parts(parent_id: int) -> list[SyncJob]:
    with session_scope() as session:
        return list(session.exec(select(SyncJob).where(SyncJob.parent_id == parent_id)))


def _split_and_running(connection_id: int) -> int:
    job_id = start(connection_id)
    wait_running(job_id, min_fetched=40, timeout=90)  # a part's batch added to the parent
    assert len(_parts(job_id)) >= 2
    return job_id


def test_a_split_full_sync_rides_out_a_429_storm(shared, ehr, pools):
    job_id = _split_and_running(shared.id)
    # More 429s than one request's tries: some part fails an attempt and is retried.
    ehr.set_faults(latency_ms=100, storm=12, retry_after=0.2)
    job = wait_finished(job_id, timeout=200)
    assert job.status.value == "completed", (job.last_error, pools.logs())
    assert ehr.stats()["by_status"].get("429") == 12
    parts = _parts(job_id)
    assert all(p.status.value == "completed" for p in parts)
    ehr.clear_faults()
    assert_matches_sandbox(shared.id, ehr)
    assert job.created == record_count(shared.id) and job.updated == 0


def test_a_split_full_sync_survives_a_redis_restart(shared, ehr, pools, private_redis):
    job_id = _split_and_running(shared.id)
    private_redis.restart(down_for=2.0)  # no persistence: parts, finisher, queues all gone
    job = wait_finished(job_id, timeout=240)
    assert job.status.value == "completed", (job.last_error, pools.logs())
    ehr.clear_faults()
    assert_matches_sandbox(shared.id, ehr)
    assert job.created == record_count(shared.id) and job.updated == 0
