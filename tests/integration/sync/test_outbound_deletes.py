"""A delete asked for in HoloVitals (the records API) reaches the EHR with the next outbound
or bidirectional job, through real workers, the sandbox EHR over HTTP, on SQLite and
PostgreSQL: taken (a tombstone naming who), over a change at the EHR (a conflict a person
decides, then carried out or withdrawn), already gone (a tombstone), refused by a server that
declares no delete (a record error)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from holovitals_sync.api import create_api
from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    Conflict,
    ConflictKind,
    ConflictStatus,
    Direction,
    EHRConnection,
    JobType,
    RecordError,
    Role,
    SyncedRecord,
)
from holovitals_sync.sandbox.config import SandboxConfig
from holovitals_sync.sandbox.server import SandboxServer
from tests.factories import make_connection, make_token, make_user
from tests.integration.sync.conftest import start, wait_status

WHOLE = "(the whole record)"


@pytest.fixture
def api(sync_db: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The records API on the test's database, and an operator's token."""
    with session_scope() as session:
        token = make_token(session, make_user(session, "ward-clerk", Role.OPERATOR))
    with TestClient(create_api()) as client:
        yield client, {"Authorization": f"Bearer {token}"}


def _delete(api, connection_id: int, rtype: str, rid: str) -> None:
    client, auth = api
    url = f"/api/records/{connection_id}/{rtype}/{rid}"
    etag = client.get(url, headers=auth).headers["ETag"]
    answer = client.delete(url, headers={**auth, "If-Match": etag})
    assert answer.status_code == 202, answer.text


def _resolve(api, conflict_id: int, strategy: str) -> None:
    client, auth = api
    answer = client.post(
        f"/api/sync/conflicts/{conflict_id}/resolve",
        headers=auth,
        json={"strategy": strategy, "reason": "asked the ward"},
    )
    assert answer.status_code == 200, answer.text


def _record(connection_id: int, rtype: str, rid: str) -> SyncedRecord:
    with session_scope() as session:
        return session.exec(
            select(SyncedRecord).where(
                SyncedRecord.connection_id == connection_id,
                SyncedRecord.resource_type == rtype,
                SyncedRecord.remote_id == rid,
            )
        ).one()


def _conflicts(connection_id: int) -> list[Conflict]:
    """The connection's conflicts over records (the session's sandbox may hold two charts
    of one person from earlier tests: their duplicate conflict is not these tests')."""
    with session_scope() as session:
        return list(
            session.exec(
                select(Conflict)
                .where(
                    Conflict.connection_id == connection_id, Conflict.kind != ConflictKind.DUPLICATE
                )
                .order_by(Conflict.id)
            )
        )


def _outbound(connection_id: int, direction: Direction = Direction.OUTBOUND):
    job = wait_status(
        start(connection_id, JobType.INCREMENTAL, direction=direction), "completed", "failed"
    )
    assert job.status.value == "completed", job.last_error
    return job


def _first(ehr: SandboxServer, rtype: str) -> str:
    return sorted(r.id for r in ehr.state.store.candidates(rtype))[0]


def _change_there(ehr: SandboxServer, rtype: str, rid: str) -> None:
    ehr.state.store.update({**ehr.state.store.get(rtype, rid).resource(), "status": "amended"})


def test_a_delete_reaches_the_ehr_and_leaves_a_tombstone(connection, ehr, workers, api):
    workers.start(1)
    wait_status(start(connection.id), "completed")
    oid = _first(ehr, "Observation")
    _delete(api, connection.id, "Observation", oid)
    assert not ehr.state.store.get("Observation", oid).deleted  # nothing sent by the API

    job = _outbound(connection.id, Direction.BIDIRECTIONAL)
    assert (job.deleted, job.conflicts, job.invalid) == (1, 0, 0)
    assert ehr.state.store.get("Observation", oid).deleted  # the EHR took the delete
    row = _record(connection.id, "Observation", oid)
    assert row.deleted and row.deleted_at is not None
    assert row.delete_reason.startswith("deleted in HoloVitals by ward-clerk")
    assert f"job {job.id}" in row.delete_reason
    assert not (row.local_deleted or row.dirty or row.conflict_pending)
    assert row.local_deleted_by is None and row.local_deleted_at is None
    # Nothing more to send: a further job leaves the EHR and the record as they are.
    assert (
        _outbound(connection.id).deleted == 0 and _record(connection.id, "Observation", oid).deleted
    )


def test_a_delete_over_a_change_at_the_ehr_waits_for_a_person_then_is_sent(
    connection, ehr, workers, api
):
    workers.start(1)
    wait_status(start(connection.id), "completed")
    oid = _first(ehr, "Observation")
    _delete(api, connection.id, "Observation", oid)
    _change_there(ehr, "Observation", oid)  # after HoloVitals read it: our If-Match is stale

    job = _outbound(connection.id)
    (conflict,) = _conflicts(connection.id)
    assert (job.conflicts, job.deleted, conflict.job_id) == (1, 0, job.id)
    assert conflict.kind is ConflictKind.STALE_WRITE and conflict.fields == [WHOLE]
    assert conflict.local_values == {WHOLE: "deleted in HoloVitals"}
    assert conflict.remote_values == {WHOLE: "changed at the EHR"}
    current = ehr.state.store.get("Observation", oid)
    assert not current.deleted  # the EHR's change was not deleted unseen
    row = _record(connection.id, "Observation", oid)
    assert row.conflict_pending and row.local_deleted and not row.deleted
    assert row.remote_body["status"] == "amended"  # the person sees what the EHR changed
    assert row.remote_version == str(current.version) == conflict.remote_version
    # While it is open, jobs send nothing.
    assert _outbound(connection.id).deleted == 0
    assert not ehr.state.store.get("Observation", oid).deleted

    _resolve(api, conflict.id, "use_local")  # delete it anyway
    assert not ehr.state.store.get("Observation", oid).deleted  # done by the next job
    assert _outbound(connection.id).deleted == 1
    assert ehr.state.store.get("Observation", oid).deleted
    row = _record(connection.id, "Observation", oid)
    assert row.deleted and not row.local_deleted and "ward-clerk" in row.delete_reason
    assert [c.status for c in _conflicts(connection.id)] == [ConflictStatus.RESOLVED]


def test_keeping_the_ehrs_change_withdraws_the_delete(connection, ehr, workers, api):
    workers.start(1)
    wait_status(start(connection.id), "completed")
    oid = _first(ehr, "Observation")
    _delete(api, connection.id, "Observation", oid)
    _change_there(ehr, "Observation", oid)
    _outbound(connection.id)
    (conflict,) = _conflicts(connection.id)

    _resolve(api, conflict.id, "use_remote")
    job = _outbound(connection.id)
    assert (job.deleted, job.conflicts) == (0, 0)
    assert not ehr.state.store.get("Observation", oid).deleted
    row = _record(connection.id, "Observation", oid)
    assert not (row.deleted or row.local_deleted or row.dirty or row.conflict_pending)
    assert row.local_copy["status"] == "amended"  # HoloVitals keeps the EHR's copy
    assert len(_conflicts(connection.id)) == 1  # nothing opened again
    # And the record can be changed (or deleted) again like any other.
    client, auth = api
    url = f"/api/records/{connection.id}/Observation/{oid}"
    etag = client.get(url, headers=auth).headers["ETag"]
    assert (
        client.patch(
            url,
            headers={**auth, "If-Match": etag, "Content-Type": "application/merge-patch+json"},
            json={"status": "final"},
        ).status_code
        == 200
    )


def test_a_change_taken_in_by_an_inbound_job_first_is_the_same_conflict(
    connection, ehr, workers, api
):
    workers.start(1)
    wait_status(start(connection.id), "completed")
    oid = _first(ehr, "Observation")
    _delete(api, connection.id, "Observation", oid)
    _change_there(ehr, "Observation", oid)
    wait_status(start(connection.id, JobType.INCREMENTAL), "completed")  # inbound only
    row = _record(connection.id, "Observation", oid)
    assert row.local_deleted and row.remote_body["status"] == "amended"

    job = _outbound(connection.id)
    (conflict,) = _conflicts(connection.id)
    assert job.conflicts == 1 and conflict.local_values == {WHOLE: "deleted in HoloVitals"}
    assert not ehr.state.store.get("Observation", oid).deleted  # not deleted unseen


def test_a_record_the_ehr_no_longer_has_is_a_tombstone(connection, ehr, workers, api):
    workers.start(1)
    wait_status(start(connection.id), "completed")
    with session_scope() as session:  # held here, never at (or long gone from) the EHR
        session.add(
            SyncedRecord(
                connection_id=connection.id,
                resource_type="Observation",
                remote_id="ghost-1",
                remote_version="4",
                remote_body={"resourceType": "Observation", "id": "ghost-1", "status": "final"},
            )
        )
    _delete(api, connection.id, "Observation", "ghost-1")
    job = _outbound(connection.id)
    assert (job.deleted, job.conflicts) == (1, 0)
    row = _record(connection.id, "Observation", "ghost-1")
    assert row.deleted and not row.local_deleted and not row.dirty
    assert "the EHR had it no more" in row.delete_reason
    assert _conflicts(connection.id) == []


@pytest.fixture
def no_delete_ehr() -> Iterator[SandboxServer]:
    """A server whose CapabilityStatement declares create and update of Observation only."""
    with SandboxServer(SandboxConfig(patients=2, seed=5)) as server:
        server.state.profile = replace(
            server.state.profile, writes={"Observation": frozenset({"create", "update"})}
        )
        yield server


def test_a_server_that_declares_no_delete_refuses_it_per_record(
    sync_db, no_delete_ehr, workers, api
):
    with session_scope() as session:
        cid = make_connection(
            session,
            "Read-mostly",
            base_url=no_delete_ehr.base_url,
            client_id="holovitals-demo",
            client_secret="demo-secret",
            scopes="system/*.read system/*.write",
        ).id
    workers.start(1)
    wait_status(start(cid), "completed")
    oid = _first(no_delete_ehr, "Observation")
    # A generic server says what it takes when a job reads its statement: the API accepts.
    _delete(api, cid, "Observation", oid)
    job = _outbound(cid)
    assert (job.invalid, job.deleted) == (1, 0)
    with session_scope() as session:
        (error,) = session.exec(select(RecordError).where(RecordError.job_id == job.id)).all()
        assert session.get(EHRConnection, cid) is not None
    assert (error.resource_type, error.remote_id) == ("Observation", oid)
    assert error.message.startswith(
        "[write] Generic FHIR R4 takes only create/update of Observation, not delete"
    )
    assert not no_delete_ehr.state.store.get("Observation", oid).deleted
    row = _record(cid, "Observation", oid)
    assert row.local_deleted and not row.deleted  # still asked for; the error says why not
    client, auth = api
    listed = client.get(
        "/api/records/errors", headers=auth, params={"connection_id": cid, "layer": "write"}
    ).json()["items"]
    assert [e["remote_id"] for e in listed] == [oid]
