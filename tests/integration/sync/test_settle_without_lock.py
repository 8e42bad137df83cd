"""Settling a run's patient references finds what to change by reads, and writes only that.

A patient sync (any run but a full one) has no index to the records it wrote, so finding
them scans the connection's records. Done as one UPDATE, the scan held SQLite's only write
lock for ~20 ms a patient sync (up to 215 ms under the closed-loop webhook benchmark), and
every other writer, the webhook receiver's commits among them, waited behind it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from holovitals_sync import migrations
from holovitals_sync.db import create_db_engine
from holovitals_sync.models import RecordError, SyncedRecord
from holovitals_sync.services.validation.pending import settle_references
from tests.factories import make_connection, make_job, make_record


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sa.Engine]:
    migrations.upgrade(sqlite_url)
    engine = create_db_engine(sqlite_url)
    yield engine
    engine.dispose()


def _records(session: Session, cid: int, job_id: int) -> None:
    """Patient pt-1 held; observations of pt-1 and pt-2 written by the job, one of pt-2 by
    an earlier run and marked then, and one of pt-1 by an earlier run, wrongly marked."""
    make_record(session, cid, "pt-1", "Patient")
    for n, (patient, job, marked) in enumerate(
        [("pt-1", job_id, False), ("pt-2", job_id, False), ("pt-2", None, True)]
        + [("pt-1", None, True), ("pt-1", None, False)]
    ):
        record = session.get(SyncedRecord, make_record(session, cid, f"obs-{n}", "Observation"))
        record.patient_ref, record.last_job_id, record.reference_missing = (
            f"Patient/{patient}",
            job,
            marked,
        )
    session.commit()


def test_a_patient_runs_scan_is_read_outside_any_write_transaction(engine):
    with Session(engine) as session:
        cid = make_connection(session).id
        job_id = make_job(session, cid).id
        _records(session, cid, job_id)

        seen: list[tuple[str, bool, str]] = []

        def note(conn, cursor, statement, *_args) -> None:
            dbapi = conn.connection.dbapi_connection
            seen.append((statement.split()[0].upper(), dbapi.in_transaction, statement))

        sa.event.listen(engine, "before_cursor_execute", note)
        try:
            settled = settle_references(session, connection_id=cid, job_id=job_id, whole=False)
            session.commit()
        finally:
            sa.event.remove(engine, "before_cursor_execute", note)

        # obs-1 (the job's, pt-2 not held) newly missing; obs-3 (pt-1 held) cleared; obs-2
        # stays marked; obs-4 (not the job's, not marked) is out of the run's scope.
        assert (settled.missing, settled.resolved) == (1, 1)
        marked = session.exec(
            select(SyncedRecord.remote_id).where(SyncedRecord.reference_missing)
        ).all()
        assert sorted(marked) == ["obs-1", "obs-2"]
        errors = session.exec(select(RecordError.remote_id)).all()
        assert errors == ["obs-1"]

    scans = [(verb, in_tx) for verb, in_tx, sql in seen if "last_job_id" in sql]
    assert scans and all(verb == "SELECT" and not in_tx for verb, in_tx in scans), scans
    writes = [sql for verb, _, sql in seen if verb == "UPDATE"]
    assert writes and all("last_job_id" not in sql for sql in writes)
