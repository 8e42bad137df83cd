"""HoloVitals deletes its copy of a record through the API: under If-Match on the version it
read, refused where a conflict holds the record or the vendor takes no FHIR delete of the
type, and audited with ids only. What the EHR then does is in
tests/integration/sync/test_outbound_deletes.py."""

from __future__ import annotations

from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import AuditLog, Conflict, SyncedRecord, Vendor
from tests.factories import make_conflict, make_connection, make_record

MERGE = {"Content-Type": "application/merge-patch+json"}


def _url(cid: int, rtype: str = "Patient", rid: str = "p1") -> str:
    return f"/api/records/{cid}/{rtype}/{rid}"


def _stored(record_id: int) -> SyncedRecord:
    with session_scope() as session:
        return session.get(SyncedRecord, record_id)


def _audited() -> list[AuditLog]:
    with session_scope() as session:
        return list(session.exec(select(AuditLog).where(AuditLog.action == "record.delete_local")))


def test_delete_marks_the_record_for_the_next_outbound_job(world):
    with session_scope() as session:
        cid = make_connection(session).id  # generic: the server declares what it takes
        rid = make_record(session, cid)
    op = world.headers("operator")
    etag = world.client.get(_url(cid), headers=op).headers["ETag"]

    deleted = world.client.delete(_url(cid), headers={**op, "If-Match": etag})
    assert deleted.status_code == 202, deleted.text
    body = deleted.json()
    assert (body["local_deleted"], body["dirty"], body["deleted"]) == (True, True, False)
    assert deleted.headers["ETag"] == body["local_version"] != etag  # the copy's version moved
    row = _stored(rid)
    assert row.local_deleted and row.dirty and not row.deleted
    assert row.local_deleted_by.startswith("operator/token:") and row.local_deleted_at
    assert row.remote_body == {"resourceType": "Patient", "id": "p1"}  # nothing lost yet
    (entry,) = _audited()
    assert (entry.actor, entry.target_type, entry.target_id) == (
        row.local_deleted_by,
        "record",
        str(rid),
    )
    assert entry.details == {"connection_id": cid, "resource_type": "Patient"}  # ids only

    # Asked again with the current version: the same answer, nothing stored twice.
    again = world.client.delete(_url(cid), headers={**op, "If-Match": body["local_version"]})
    assert again.status_code == 202 and len(_audited()) == 1
    # A client still holding the version before the delete is told it moved on.
    stale = world.client.delete(_url(cid), headers={**op, "If-Match": etag})
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "precondition_failed"
    # A marked record takes no further change.
    changed = world.client.patch(
        _url(cid),
        headers={**op, **MERGE, "If-Match": body["local_version"]},
        json={"gender": "other"},
    )
    assert changed.status_code == 409 and "marked for deletion" in changed.text
    listed = world.client.get(
        "/api/records", params={"connection_id": cid}, headers=world.headers("viewer")
    ).json()["items"]
    assert [(i["remote_id"], i["local_deleted"], i["dirty"]) for i in listed] == [
        ("p1", True, True)
    ]


def test_refusals_leave_the_record_as_it_was(world):
    with session_scope() as session:
        cid = make_connection(session).id
        rid = make_record(session, cid)
        held_id = session.get(Conflict, make_conflict(session, cid)).record_id
        gone_id = make_record(session, cid, "gone")
        gone = session.get(SyncedRecord, gone_id)
        gone.deleted = True
        session.add(gone)
    op = world.headers("operator")
    etag = world.client.get(_url(cid), headers=op).headers["ETag"]
    held_etag = world.client.get(_url(cid, "Basic", "pt-1"), headers=op).headers["ETag"]
    gone_etag = world.client.get(_url(cid, "Patient", "gone"), headers=op).headers["ETag"]
    refused = [
        (world.client.delete(_url(cid), headers=op), 428),
        (world.client.delete(_url(cid), headers={**op, "If-Match": 'W/"not-the-version"'}), 412),
        (
            world.client.delete(_url(cid, "Basic", "pt-1"), headers={**op, "If-Match": held_etag}),
            409,
        ),
        (
            world.client.delete(
                _url(cid, "Patient", "gone"), headers={**op, "If-Match": gone_etag}
            ),
            409,
        ),
        (
            world.client.delete(_url(cid), headers={**world.headers("viewer"), "If-Match": etag}),
            403,
        ),
        (world.client.delete(_url(cid), headers={"If-Match": etag}), 401),
        (
            world.client.delete(_url(cid, "Patient", "nobody"), headers={**op, "If-Match": etag}),
            404,
        ),
        (
            world.client.delete(_url(cid, "Patient", "bad*id"), headers={**op, "If-Match": etag}),
            422,
        ),
    ]
    for response, status in refused:
        assert response.status_code == status, (status, response.text)
    assert "open conflict" in refused[2][0].json()["error"]["message"]
    for record_id in (rid, held_id, gone_id):
        row = _stored(record_id)
        assert not row.local_deleted and row.local_deleted_at is None
    assert not _stored(rid).dirty and _audited() == []


def test_a_vendor_without_fhir_deletes_is_refused_before_anything_is_stored(world):
    with session_scope() as session:
        epic = make_connection(
            session,
            "Epic hospital",
            vendor=Vendor.EPIC,
            base_url="https://fhir.example.org/api/FHIR/R4",
        ).id
        veradigm = make_connection(
            session,
            "Veradigm clinic",
            vendor=Vendor.VERADIGM,
            base_url="https://fhir.example.org/fhirroute/fhir/t1",
        ).id
        ids = [
            make_record(session, epic, "e1", "Observation"),
            make_record(session, veradigm, "v1", "Patient"),
        ]
    op = world.headers("operator")
    for cid, rtype, rid, vendor in (
        (epic, "Observation", "e1", "Epic"),
        (veradigm, "Patient", "v1", "Veradigm"),
    ):
        etag = world.client.get(_url(cid, rtype, rid), headers=op).headers["ETag"]
        refused = world.client.delete(_url(cid, rtype, rid), headers={**op, "If-Match": etag})
        assert refused.status_code == 409, refused.text
        message = refused.json()["error"]["message"]
        assert vendor in message and rtype in message, message  # names vendor and type
        # Even without If-Match the answer is the vendor's refusal, not "send If-Match".
        assert world.client.delete(_url(cid, rtype, rid), headers=op).status_code == 409
    for record_id in ids:
        row = _stored(record_id)
        assert not row.local_deleted and not row.dirty
    assert _audited() == []
