"""Clinical content only on opt-in: a subscription with `include_content` gets the stored
FHIR resource (as HoloVitals holds it when the attempt runs) in the signed body; one without
gets ids and references only. The flag round-trips through the API and its change is
audited; the delivery rows and their log never hold the resource. Real backend, real
`rq worker`, a local receiver."""

from __future__ import annotations

import httpx
import orjson
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import AuditLog, SyncedRecord, WebhookDelivery
from holovitals_sync.services.webhooks import emit
from tests.factories import make_connection

from .conftest import wait_for
from .test_outbound import _subscribe, recipe

PATIENT = {
    "resourceType": "Patient",
    "id": "pt-00042",
    "meta": {"versionId": "3"},
    "name": [{"family": "Quinlan", "given": ["Ada"]}],
    "birthDate": "1961-04-02",
}
API = "/api/sync/webhooks"


def _record(connection_id: int) -> int:
    with session_scope() as session:
        row = SyncedRecord(
            connection_id=connection_id,
            resource_type="Patient",
            remote_id=PATIENT["id"],
            patient_ref=f"Patient/{PATIENT['id']}",
            base_body=PATIENT,
            local_body=PATIENT,
            remote_body=PATIENT,
            remote_version="3",
        )
        session.add(row)
        session.flush()
        return row.id


def _set_local_body(record_id: int, body: dict) -> None:
    with session_scope() as session:
        row = session.get(SyncedRecord, record_id)
        row.local_body = body
        session.add(row)


def test_the_flag_round_trips_through_the_api_and_is_audited(backend, receiver):
    plain = _subscribe(backend, receiver.url)
    assert plain["include_content"] is False  # off unless asked for
    opted = _subscribe(backend, receiver.url, include_content=True)
    assert opted["include_content"] is True
    url = f"{backend.url}{API}/{plain['id']}"
    read = httpx.get(url, headers=backend.headers("viewer")).json()
    assert read["include_content"] is False

    changed = httpx.patch(url, json={"include_content": True}, headers=backend.headers("operator"))
    assert changed.status_code == 200, changed.text
    assert changed.json()["include_content"] is True
    refused = httpx.patch(url, json={"include_content": "yes"}, headers=backend.headers("operator"))
    assert refused.status_code == 422  # strict: a string is not a boolean
    assert (
        httpx.patch(
            url, json={"include_content": False}, headers=backend.headers("viewer")
        ).status_code
        == 403
    )
    listed = httpx.get(f"{backend.url}{API}", headers=backend.headers("viewer")).json()
    assert {s["id"]: s["include_content"] for s in listed} == {plain["id"]: True, opted["id"]: True}

    def audited() -> list[AuditLog]:
        with session_scope() as session:
            return list(
                session.exec(
                    select(AuditLog)
                    .where(
                        AuditLog.target_type == "webhook_subscription",
                        AuditLog.target_id == str(plain["id"]),
                    )
                    .order_by(AuditLog.seq)
                )
            )

    entries = wait_for(lambda: len(audited()) == 2 and audited(), timeout=5)
    create, update = entries
    assert create.details["include_content"] is False
    assert update.action == "webhook_subscription.update"
    assert update.details["include_content"] == {"from": False, "to": True}


def test_only_the_opted_in_subscriber_receives_the_resource(backend, receiver, workers):
    with session_scope() as session:
        cid = make_connection(session).id
    record_id = _record(cid)
    with_content = _subscribe(backend, receiver.at("/phi"), include_content=True)
    ids_only = _subscribe(backend, receiver.at("/ids"))
    with session_scope() as session:
        emit(
            session,
            "patient.updated",
            {
                "connection_id": cid,
                "resource_type": "Patient",
                "resource_id": PATIENT["id"],
                "version_id": "3",
            },
        )
        emit(session, "sync.completed", {"connection_id": cid, "job_id": 1})
        emit(
            session,
            "patient.updated",
            {"connection_id": cid, "resource_type": "Patient", "resource_id": "pt-gone"},
        )
    # Changed after the event and before the attempt: the body is read at send time.
    edited = {**PATIENT, "birthDate": "1961-04-03"}
    _set_local_body(record_id, edited)
    workers.start(1)
    wait_for(lambda: len(receiver.to("/phi")) == 3 and len(receiver.to("/ids")) == 3, timeout=60)

    verify = recipe()["verify"]
    bodies: dict[str, dict[tuple[str, str | None], dict]] = {"/phi": {}, "/ids": {}}
    for path, sub in (("/phi", with_content), ("/ids", ids_only)):
        for request in receiver.to(path):
            assert verify(
                request.body, request.headers["x-holovitals-signature"], sub["secret"]
            )  # the content is signed like the rest
            body = orjson.loads(request.body)
            bodies[path][(body["type"], body["data"].get("resource_id"))] = body

    phi = bodies["/phi"]
    assert phi[("patient.updated", PATIENT["id"])]["resource"] == edited
    assert phi[("patient.updated", PATIENT["id"])]["data"]["reference"] == "Patient/pt-00042"
    assert phi[("patient.updated", "pt-gone")]["resource"] is None  # no longer held
    assert "resource" not in phi[("sync.completed", None)]  # not about a resource
    for body in bodies["/ids"].values():
        assert "resource" not in body
    for request in receiver.to("/ids"):
        assert b"Quinlan" not in request.body

    # Nothing of the resource is kept: not in the rows, not in the delivery log.
    with session_scope() as session:
        rows = session.exec(select(WebhookDelivery)).all()
    assert rows and all(
        "Quinlan" not in orjson.dumps(r.model_dump(mode="json")).decode() for r in rows
    )
    log = httpx.get(
        f"{backend.url}{API}/{with_content['id']}/deliveries", headers=backend.headers("viewer")
    )
    assert log.status_code == 200 and "Quinlan" not in log.text
