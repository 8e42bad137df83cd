"""A record both sides agree on stores its body once (base and local NULL = "the remote").

The bulk upsert writes NULL base and local bodies; a local edit then a newer remote copy
must still leave conflict detection the base it needs: the upsert writes out the old remote
body as the base (and as the local copy if it was NULL) before the remote side moves on.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from holovitals_sync.adapters import content_hash
from holovitals_sync.db import session_scope
from holovitals_sync.models import SyncedRecord, TransformKind
from holovitals_sync.services.conflicts.detect import Action, detect_stored
from holovitals_sync.services.orchestration.outbound import _accepted
from holovitals_sync.services.orchestration.upsert import upsert_batch
from holovitals_sync.services.transformation import DataTransformationService, RuleIn

from .conftest import TESTER, local_hashes, sandbox_hashes, start, wait_status

PATIENT = {
    "resourceType": "Patient",
    "id": "bodies-1",
    "gender": "male",
    "birthDate": "1970-01-01",
    "meta": {"versionId": "1", "lastUpdated": "2026-01-01T00:00:00Z"},
}


def _newer(**changes: Any) -> dict[str, Any]:
    return {**PATIENT, **changes, "meta": {"versionId": "2", "lastUpdated": "2026-01-02T00:00:00Z"}}


def _store(connection_id: int, resource: dict[str, Any]) -> None:
    with session_scope() as session:
        upsert_batch(session, connection_id=connection_id, job_id=None, resources=[resource])


def _stored_nulls(connection_id: int) -> tuple[bool, bool, bool]:
    """Which of base, local and remote body are SQL NULL in the row (not JSON `null`)."""
    table = SyncedRecord.__table__
    with session_scope() as session:
        row = session.execute(
            sa.select(
                table.c.base_body.is_(None),
                table.c.local_body.is_(None),
                table.c.remote_body.is_(None),
            ).where(table.c.connection_id == connection_id, table.c.remote_id == PATIENT["id"])
        ).one()
    return tuple(bool(v) for v in row)  # type: ignore[return-value]


def _record(connection_id: int) -> SyncedRecord:
    with session_scope() as session:
        return session.exec(
            select(SyncedRecord).where(
                SyncedRecord.connection_id == connection_id, SyncedRecord.remote_id == PATIENT["id"]
            )
        ).one()


def _edit_locally(connection_id: int, **changes: Any) -> None:
    with session_scope() as session:
        row = session.exec(
            select(SyncedRecord).where(
                SyncedRecord.connection_id == connection_id, SyncedRecord.remote_id == PATIENT["id"]
            )
        ).one()
        row.local_body = {**row.local_copy, **changes}
        row.dirty = True
        session.add(row)


def test_an_agreed_record_stores_its_body_once(connection):
    _store(connection.id, PATIENT)
    assert _stored_nulls(connection.id) == (True, True, False)
    record = _record(connection.id)
    assert record.base_copy == record.local_copy == record.remote_body == PATIENT

    newer = _newer(gender="female")
    _store(connection.id, newer)  # nothing local: all three move on together
    assert _stored_nulls(connection.id) == (True, True, False)
    assert _record(connection.id).local_copy == newer


def test_a_local_edit_keeps_its_base_when_the_remote_moves_on(connection):
    _store(connection.id, PATIENT)
    _edit_locally(connection.id, gender="female")
    assert _stored_nulls(connection.id) == (True, False, False)  # base: still the remote

    _store(connection.id, _newer(birthDate="1971-01-01"))
    assert _stored_nulls(connection.id) == (False, False, False)
    record = _record(connection.id)
    assert record.base_copy == PATIENT  # the version both sides agreed on, not the new one
    assert record.local_copy["gender"] == "female" and record.dirty

    with session_scope() as session:
        [outcome] = detect_stored(session, connection_id=connection.id)
    assert outcome.action is Action.MERGED
    merged = _record(connection.id).local_copy
    assert (merged["gender"], merged["birthDate"]) == ("female", "1971-01-01")


def test_a_dirty_record_never_edited_keeps_the_old_remote_as_local(connection):
    # Marked for write-back without a local body of its own (an edit that came back the
    # same): a newer remote copy must not become its "local" copy silently.
    _store(connection.id, PATIENT)
    with session_scope() as session:
        row = session.exec(
            select(SyncedRecord).where(SyncedRecord.connection_id == connection.id)
        ).one()
        row.dirty = True
        session.add(row)
    _store(connection.id, _newer(gender="female"))
    record = _record(connection.id)
    assert record.local_copy == record.base_copy == PATIENT
    assert record.remote_body["gender"] == "female"


def test_an_accepted_write_stores_the_body_once_again(connection):
    _store(connection.id, PATIENT)
    _edit_locally(connection.id, gender="female")
    with session_scope() as session:
        row = session.exec(
            select(SyncedRecord).where(SyncedRecord.connection_id == connection.id)
        ).one()
        _accepted(row, dict(row.local_copy), _newer(gender="female"), "2")
        session.add(row)
    assert _stored_nulls(connection.id) == (True, True, False)
    record = _record(connection.id)
    assert not record.dirty and record.local_copy["gender"] == "female"


def test_a_body_reads_back_exactly_as_it_was_sent(connection):
    # The batch travels to the database as serialised text (on PostgreSQL one line a
    # body, beside the other fields): text, numbers and nesting must come back unchanged
    # (the content hash is computed over them), and a newline inside a value must not
    # split a body and pair the rest of the batch with the wrong fields.
    tricky = {
        **PATIENT,
        "id": "bodies-2",
        "name": [{"family": 'Ŝmith "the" \\ \n 患者 🩺\r\u2028', "given": ["Zoë", ""]}],
        "text": {"status": "generated", "div": "<div>a\nb</div>"},
        "extension": [
            {"url": "http://example.org/n", "valueDecimal": 1.0},
            {"url": "http://example.org/s", "valueDecimal": 1e-07},
            {"url": "http://example.org/i", "valueInteger": 9007199254740993},
            {"url": "http://example.org/o", "valueCodeableConcept": {}},
        ],
    }
    after = {**PATIENT, "id": "bodies-3", "gender": "other"}
    with session_scope() as session:
        counts = upsert_batch(
            session, connection_id=connection.id, job_id=None, resources=[tricky, after]
        )
    assert counts.created == 2
    with session_scope() as session:
        stored = {
            row.remote_id: row
            for row in session.exec(
                select(SyncedRecord).where(
                    SyncedRecord.connection_id == connection.id,
                    SyncedRecord.remote_id.in_(["bodies-2", "bodies-3"]),
                )
            )
        }
    for sent in (tricky, after):
        row = stored[sent["id"]]
        assert (row.remote_body, row.content_hash) == (sent, content_hash(sent))
    assert type(stored["bodies-2"].remote_body["extension"][0]["valueDecimal"]) is float


def test_a_transformed_resource_is_hashed_as_stored(connection, ehr, workers):
    # The prefetch thread hashes resources as fetched; a rule changes a copy, which must be
    # hashed again (a stale hash would make the next sync see no change, or a false one).
    with session_scope() as session:
        DataTransformationService(session, actor=TESTER).create(
            RuleIn(
                kind=TransformKind.DATETIME_NORMALISE,
                connection_id=connection.id,
                resource_type="Observation",
                params={"paths": ["effectiveDateTime"]},
            )
        )
    workers.start(1)
    wait_status(start(connection.id), "completed")
    stored = local_hashes(connection.id)  # also checks each hash column against its body
    fetched = sandbox_hashes(ehr)
    assert stored.keys() == fetched.keys()
    changed = {key for key in stored if stored[key] != fetched[key]}
    assert changed and {rtype for rtype, _ in changed} == {"Observation"}
