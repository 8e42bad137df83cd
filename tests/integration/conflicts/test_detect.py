"""Detection against stored records, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    Conflict,
    ConflictKind,
    ConflictStatus,
    ResolutionStrategy,
    Severity,
    SyncedRecord,
)
from holovitals_sync.services.audit import Actor
from holovitals_sync.services.conflicts import (
    Action,
    Incoming,
    detect_batch,
    detect_duplicates,
    detect_record,
    detect_stored,
    resolve,
)

from .conftest import make_record, patient


def _detect(world, record_id, body, version):
    with session_scope() as session:
        record = session.get(SyncedRecord, record_id)
        return detect_batch(
            session, world.connection_id, world.job_id, [Incoming(record, body, version)]
        )[0]


def test_remote_change_without_local_change_is_taken(world):
    rid = make_record(world, base=patient())
    outcome = _detect(world, rid, patient("2", gender="female"), "2")
    assert outcome.action is Action.MERGED
    with session_scope() as session:
        record = session.get(SyncedRecord, rid)
        assert record.local_body["gender"] == "female"
        assert record.base_body == record.remote_body and record.remote_version == "2"
        assert not record.dirty


def test_both_sides_changed_other_elements_merge_and_stay_dirty(world):
    rid = make_record(world, base=patient(), local=patient(active=False))
    outcome = _detect(world, rid, patient("2", gender="female"), "2")
    assert outcome.action is Action.MERGED
    with session_scope() as session:
        record = session.get(SyncedRecord, rid)
        assert (record.local_body["gender"], record.local_body["active"]) == ("female", False)
        assert record.dirty  # the local change still has to reach the EHR
        assert session.exec(select(Conflict)).all() == []


def test_conflict_row_is_written_once_per_remote_version(world):
    rid = make_record(world, base=patient(), local=patient(birthDate="1971-01-01"))
    remote = patient("2", birthDate="1972-01-01")
    first = _detect(world, rid, remote, "2")
    again = _detect(world, rid, remote, "2")
    assert first.action is again.action is Action.CONFLICT
    assert first.conflict_id == again.conflict_id
    with session_scope() as session:
        (conflict,) = session.exec(select(Conflict)).all()
        assert conflict.fields == ["birthDate"]
        assert conflict.severity is Severity.MEDIUM
        assert (conflict.base_values, conflict.local_values, conflict.remote_values) == (
            {"birthDate": "1970-01-01"},
            {"birthDate": "1971-01-01"},
            {"birthDate": "1972-01-01"},
        )
        record = session.get(SyncedRecord, rid)
        assert record.conflict_pending and record.local_body["birthDate"] == "1971-01-01"


def test_newer_remote_version_supersedes_the_open_conflict(world):
    rid = make_record(world, base=patient(), local=patient(gender="female"))
    old = _detect(world, rid, patient("2", gender="other"), "2")
    new = _detect(world, rid, patient("3", gender="unknown"), "3")
    assert old.conflict_id != new.conflict_id
    with session_scope() as session:
        assert session.get(Conflict, old.conflict_id).status is ConflictStatus.IGNORED
        assert session.get(Conflict, new.conflict_id).status is ConflictStatus.OPEN


def test_ignored_remote_version_is_not_flagged_again(world):
    rid = make_record(world, base=patient(), local=patient(gender="female"))
    remote = patient("2", gender="other")
    first = _detect(world, rid, remote, "2")
    with session_scope() as session:
        resolve(
            session,
            conflict_id=first.conflict_id,
            strategy=ResolutionStrategy.IGNORE,
            reason="local is right",
            actor=Actor.system("tests"),
        )
    assert _detect(world, rid, remote, "2").action is Action.IGNORED
    with session_scope() as session:
        assert len(session.exec(select(Conflict)).all()) == 1


def test_stale_write_conflict(world):
    rid = make_record(world, base=patient(), local=patient(gender="female"))
    with session_scope() as session:
        record = session.get(SyncedRecord, rid)
        outcome = detect_record(
            session,
            record=record,
            remote_body=patient("2", gender="other"),
            remote_version="2",
            kind=ConflictKind.STALE_WRITE,
        )
    with session_scope() as session:
        assert session.get(Conflict, outcome.conflict_id).kind is ConflictKind.STALE_WRITE


def test_duplicate_identifier_from_two_remote_ids(world):
    ident = [{"system": "urn:mrn", "value": "42"}]
    first = make_record(world, base=patient(identifier=ident), remote_id="p1")
    rid = make_record(world, base=patient(id="p2", identifier=ident), remote_id="p2")
    other = make_record(
        world,
        base=patient(id="p3", identifier=[{"system": "urn:mrn", "value": "7"}]),
        remote_id="p3",
    )
    with session_scope() as session:
        # An earlier run stored p1 and p3: their identifiers are indexed, no duplicate yet.
        earlier = [session.get(SyncedRecord, i) for i in (first, other)]
        assert (
            detect_duplicates(
                session, connection_id=world.connection_id, job_id=world.job_id, records=earlier
            )
            == []
        )
        record = session.get(SyncedRecord, rid)
        outcomes = detect_duplicates(
            session, connection_id=world.connection_id, job_id=world.job_id, records=[record]
        )
        again = detect_duplicates(
            session, connection_id=world.connection_id, job_id=world.job_id, records=[record]
        )
    assert [o.record_id for o in outcomes] == [rid]
    assert outcomes[0].conflict_id == again[0].conflict_id
    with session_scope() as session:
        conflict = session.get(Conflict, outcomes[0].conflict_id)
        assert conflict.kind is ConflictKind.DUPLICATE
        assert conflict.remote_values["remote_id"] == "p1"


def test_detect_stored_takes_dirty_records_whose_remote_moved(world):
    moved = make_record(world, base=patient(), local=patient(gender="female"))
    quiet = make_record(
        world, base=patient(id="p2"), local=patient(id="p2", gender="female"), remote_id="p2"
    )
    with session_scope() as session:
        record = session.get(SyncedRecord, moved)
        # What the sync's upsert does to a dirty record: only the remote side moves on.
        record.remote_body, record.remote_version = patient("2", gender="other"), "2"
        session.add(record)
    with session_scope() as session:
        outcomes = detect_stored(
            session, connection_id=world.connection_id, record_ids=[moved, quiet]
        )
        again = detect_stored(session, connection_id=world.connection_id)
    assert [(o.record_id, o.action) for o in outcomes] == [(moved, Action.CONFLICT)]
    assert again[0].conflict_id == outcomes[0].conflict_id
