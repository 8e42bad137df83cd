"""Validation failures written as RecordError rows for a job, in bulk, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    ErrorSeverity,
    JobType,
    RecordError,
    RequesterKind,
    SyncJob,
    ValidationMode,
)
from holovitals_sync.sandbox.data import generate_patient
from holovitals_sync.services.validation import persist_errors, validate_batch


def test_errors_for_a_job_in_one_bulk_insert(engine: sa.Engine, connection_id: int) -> None:
    batch = generate_patient(1234, 4)
    observations = [r for r in batch if r["resourceType"] == "Observation"]
    for obs in observations:
        del obs["code"]
        obs["id"] = obs["id"] + "-" + "x" * 300  # longer than the column: clipped, not fatal
    with session_scope(engine) as session:
        job = SyncJob(
            connection_id=connection_id,
            job_type=JobType.FULL,
            requested_by_kind=RequesterKind.SYSTEM,
        )
        session.add(job)
        session.flush()
        outcome = validate_batch(batch, mode=ValidationMode.LENIENT)
        count = persist_errors(
            session, errors=outcome.errors, connection_id=connection_id, job_id=job.id
        )
        job_id = job.id
    assert len(outcome.flagged) == len(observations)
    assert count == len(outcome.errors) >= len(observations)
    with Session(engine) as session:
        rows = session.exec(select(RecordError).where(RecordError.job_id == job_id)).all()
    assert len(rows) == count
    assert {r.path for r in rows} == {"code", "id"}  # ids over 64 characters are invalid too
    assert all(r.severity is ErrorSeverity.ERROR and len(r.remote_id) == 200 for r in rows)


def test_nothing_to_write(engine: sa.Engine, connection_id: int) -> None:
    with session_scope(engine) as session:
        assert persist_errors(session, errors=[], connection_id=connection_id) == 0
