"""A run's batches share one database connection: no pool checkout (and pre-ping round
trip) per batch, and each batch still commits on its own."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import JobType, SyncedRecord
from holovitals_sync.services.orchestration import runner
from tests.factories import make_job
from tests.integration.sync.conftest import job_row


def test_a_run_checks_out_one_connection_for_all_its_batches(connection, ehr):
    engine = get_engine()
    checkouts: list[int] = []
    commits: list[int] = []

    def on_checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        checkouts.append(id(record))

    def on_commit(_conn: Any) -> None:
        commits.append(1)

    sa.event.listen(engine, "checkout", on_checkout)
    sa.event.listen(engine, "commit", on_commit)
    try:
        with session_scope() as session:
            job_id = make_job(session, connection.id, job_type=JobType.FULL).id
        runner.run_job(job_id)
    finally:
        sa.event.remove(engine, "checkout", on_checkout)
        sa.event.remove(engine, "commit", on_commit)
    job = job_row(job_id)
    assert job.status.value == "completed", job.last_error
    with session_scope() as session:
        stored = session.exec(sa.select(sa.func.count()).select_from(SyncedRecord)).one()[0]
    assert job.fetched >= stored > 0
    batches = -(-job.fetched // 40)  # the fixture's bulk batch size
    assert batches >= 8, "too few batches for the check below to mean anything"
    # One checkout held by the batch loop plus a few for the job's start and completion,
    # whatever the number of batches; each batch still committed on its own.
    assert len(checkouts) <= 6, len(checkouts)
    assert len(commits) >= batches
