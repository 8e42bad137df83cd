"""At most `concurrency_limit` jobs of one connection run at once, however many workers."""

from __future__ import annotations

from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import EHRConnection, JobType, SyncJob

from .conftest import start, wait_for


def max_overlap(jobs: list[SyncJob]) -> int:
    """Most jobs whose [started, finished] intervals overlap at one instant."""
    edges = sorted(
        [(j.started_at, 1) for j in jobs] + [(j.finished_at, -1) for j in jobs],
        key=lambda e: (e[0], e[1]),
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_connection_concurrency_limit_is_never_exceeded(connection, ehr, workers):
    with session_scope() as session:
        row = session.get(EHRConnection, connection.id)
        row.concurrency_limit = 2
        session.add(row)
    ehr.set_faults(latency_ms=80)
    patients = sorted(rec.id for rec in ehr.state.store.candidates("Patient"))[:6]
    workers.start(4)
    ids = [start(connection.id, JobType.PATIENT, patient_id=p) for p in patients]

    def all_done() -> list[SyncJob] | None:
        with session_scope() as session:
            rows = list(session.exec(select(SyncJob).where(SyncJob.id.in_(ids))))
        return rows if all(r.status.value == "completed" for r in rows) else None

    jobs = wait_for(all_done, timeout=90)
    assert max_overlap(jobs) == 2  # four workers, limit two: the limit is what binds
