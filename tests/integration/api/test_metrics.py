"""`/api/metrics` reports state from the database and the queues."""

from __future__ import annotations

from rq import Queue

from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    Conflict,
    JobStatus,
    JobType,
    RequesterKind,
    Severity,
    SyncedRecord,
    SyncJob,
)
from tests.factories import make_connection


def test_metrics_reflect_state(world, redis_client):
    with session_scope() as session:
        conn = make_connection(session)
        for status in (JobStatus.COMPLETED, JobStatus.COMPLETED, JobStatus.FAILED):
            session.add(SyncJob(connection_id=conn.id, job_type=JobType.FULL, status=status,
                                requested_by_kind=RequesterKind.SYSTEM))  # fmt: skip
        record = SyncedRecord(connection_id=conn.id, resource_type="Observation", remote_id="o1")
        session.add(record)
        session.flush()
        session.add(Conflict(record_id=record.id, connection_id=conn.id,
                             resource_type="Observation", severity=Severity.HIGH))  # fmt: skip
    Queue("sync.low", connection=redis_client).enqueue("builtins.len", "x")

    response = world.client.get("/api/metrics", headers=world.headers("viewer"))
    assert response.status_code == 200
    text = response.text
    assert 'holovitals_sync_jobs{status="completed"} 2.0' in text
    assert 'holovitals_sync_jobs{status="failed"} 1.0' in text
    assert "holovitals_records 1.0" in text
    assert 'holovitals_conflicts_open{severity="high"} 1.0' in text
    assert 'holovitals_queue_depth{family="sync",queue="sync.low"} 1.0' in text
    assert world.client.get("/api/metrics").status_code == 401
