"""HoloVitals changes its copy of a record through the API: read with its version, change it
with If-Match, and nothing stale, malformed or unauthorised reaches the stored record."""

from __future__ import annotations

from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import AuditLog, RecordError, SyncedRecord
from tests.factories import make_connection

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"versionId": "3"},
    "birthDate": "1970-01-01",
    "telecom": [{"system": "phone", "value": "555-0100"}],
}
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def _record() -> tuple[int, str]:
    with session_scope() as session:
        cid = make_connection(session).id
        session.add(
            SyncedRecord(
                connection_id=cid,
                resource_type="Patient",
                remote_id="p1",
                remote_body=PATIENT,
                remote_version="3",
            )
        )
        session.add(
            RecordError(
                connection_id=cid,
                resource_type="Patient",
                remote_id="p1",
                path="gender",
                message="[required] gender is missing",
            )
        )
    return cid, f"/api/records/{cid}/Patient/p1"


def _stored(cid: int) -> SyncedRecord:
    with session_scope() as session:
        return session.exec(select(SyncedRecord).where(SyncedRecord.connection_id == cid)).one()


def test_read_then_change_with_the_version_read(world):
    cid, url = _record()
    read = world.client.get(url, headers=world.headers("viewer"))
    assert read.status_code == 200, read.text
    detail = read.json()
    assert detail["local"] == detail["remote"] == detail["base"] == PATIENT
    assert detail["issues"][0]["message"] == "[required] gender is missing"
    etag = read.headers["ETag"]
    assert etag == detail["local_version"] and etag.startswith('W/"')

    op = world.headers("operator")
    changed = world.client.patch(
        url, headers={**op, **MERGE, "If-Match": etag}, json={"birthDate": "1971-02-03"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["local"]["birthDate"] == "1971-02-03"
    assert changed.headers["ETag"] != etag
    row = _stored(cid)
    assert row.dirty and row.local_body["birthDate"] == "1971-02-03"
    assert row.remote_body == PATIENT and row.base_copy == PATIENT  # the EHR's side untouched

    # A second writer still holding the first version is refused; nothing is lost.
    stale = world.client.patch(
        url, headers={**op, **MERGE, "If-Match": etag}, json={"birthDate": "1999-09-09"}
    )
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "precondition_failed"
    assert _stored(cid).local_body["birthDate"] == "1971-02-03"

    # JSON Patch with the current version.
    ops = [{"op": "replace", "path": "/telecom/0/value", "value": "555-0199"}]
    patched = world.client.patch(
        url, headers={**op, **JSON_PATCH, "If-Match": changed.headers["ETag"]}, json=ops
    )
    assert patched.status_code == 200, patched.text
    assert _stored(cid).local_body["telecom"] == [{"system": "phone", "value": "555-0199"}]
    with session_scope() as session:
        entries = session.exec(select(AuditLog).where(AuditLog.action == "record.update_local"))
        details = [e.details for e in entries]
    assert details == [{"connection_id": cid, "resource_type": "Patient"}] * 2  # ids, no PHI


def test_bad_changes_leave_the_record_as_it_was(world):
    cid, url = _record()
    etag = world.client.get(url, headers=world.headers("viewer")).headers["ETag"]
    op = world.headers("operator")
    refused = [
        (world.client.patch(url, headers={**op, **MERGE}, json={"birthDate": "1971"}), 428),
        (
            world.client.patch(
                url, headers={**op, **MERGE, "If-Match": etag}, json={"id": "someone-else"}
            ),
            422,
        ),
        (
            world.client.put(
                url, headers={**op, "If-Match": etag}, json={**PATIENT, "birthDate": "not a date"}
            ),
            422,
        ),
        (
            world.client.patch(
                url,
                headers={**op, **JSON_PATCH, "If-Match": etag},
                json=[{"op": "remove", "path": "/nothing/here"}],
            ),
            422,
        ),
        (
            world.client.patch(
                url, headers={**op, "Content-Type": "text/plain", "If-Match": etag}, content=b"{}"
            ),
            415,
        ),
        (
            world.client.put(
                url,
                headers={**op, "If-Match": etag, "Content-Type": "application/json"},
                content=b"{not json",
            ),
            400,
        ),
        (
            world.client.patch(
                url,
                headers={**world.headers("viewer"), **MERGE, "If-Match": etag},
                json={"birthDate": "1971"},
            ),
            403,
        ),
        (world.client.get(f"/api/records/{cid}/Patient/bad*id", headers=op), 422),
        (world.client.get(f"/api/records/{cid}/Patient/nobody", headers=op), 404),
    ]
    for response, status in refused:
        assert response.status_code == status, (status, response.text)
    dated = world.client.put(
        url, headers={**op, "If-Match": etag}, json={**PATIENT, "birthDate": "not a date"}
    ).json()
    assert [f["field"] for f in dated["error"]["fields"]] == ["body.birthDate"]
    assert "not a date" not in str(dated)  # messages never echo values
    row = _stored(cid)
    assert row.local_body is None and not row.dirty and row.remote_body == PATIENT
