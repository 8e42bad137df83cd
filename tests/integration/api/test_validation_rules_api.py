"""Custom validation rules over the API: 201/200/204, 404 for an unknown connection or rule,
422 naming the field with nothing saved, 403 for a viewer's change, and the audit rows."""

from __future__ import annotations

from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import AuditLog, EHRConnection
from tests.factories import make_connection

HEART_RATE = {
    "check": "range",
    "name": "heart rate",
    "resource_type": "Observation",
    "path": "valueQuantity.value",
    "min": 20,
    "max": 250,
}
FINAL = {
    "check": "fhirpath",
    "name": "final only",
    "resource_type": "Observation",
    "expression": "status = 'final'",
    "severity": "warning",
}
OBS = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "preliminary",
    "valueQuantity": {"value": 999},
}


def _url(cid: int, tail: str = "") -> str:
    return f"/api/connections/{cid}/validation-rules{tail}"


def _stored(cid: int) -> list[dict]:
    with session_scope() as session:
        return session.get(EHRConnection, cid).validation_rules


def _fields(answer) -> list[str]:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_body"
    return [f["field"] for f in error["fields"]]


def test_crud_check_and_audit(world):
    admin, viewer = world.headers("admin"), world.headers("viewer")
    with session_scope() as session:
        cid = make_connection(session).id
    created = world.client.post(_url(cid), json=HEART_RATE, headers=admin)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["enabled"] is True and rule["min"] == 20 and "expression" not in rule
    second = world.client.post(_url(cid), json=FINAL, headers=admin).json()

    listed = world.client.get(_url(cid), headers=viewer)
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()] == [rule["id"], second["id"]]
    assert world.client.get(_url(cid, f"/{rule['id']}"), headers=viewer).json() == rule

    checked = world.client.post(_url(cid, "/check"), json={"resource": OBS},
                                headers=world.headers("operator"))  # fmt: skip
    assert checked.status_code == 200, checked.text
    assert [(i["message"], i["severity"]) for i in checked.json()] == [
        ("heart rate: value outside the allowed range", "error"),
        ("final only: assertion failed", "warning"),
    ]
    assert "999" not in checked.text  # messages name the rule, never the value

    off = world.client.patch(_url(cid, f"/{rule['id']}"), json={"enabled": False},
                             headers=admin)  # fmt: skip
    assert off.status_code == 200 and off.json()["enabled"] is False
    checked = world.client.post(_url(cid, "/check"), json={"resource": OBS}, headers=admin)
    assert [i["message"] for i in checked.json()] == ["final only: assertion failed"]

    replaced = world.client.put(
        _url(cid, f"/{second['id']}"),
        headers=admin,
        json={"check": "pattern", "name": "status code", "path": "status", "pattern": "final"},
    )
    assert replaced.status_code == 200 and replaced.json()["id"] == second["id"]
    moved = world.client.post(
        _url(cid, "/reorder"), headers=admin, json={"rule_ids": [second["id"], rule["id"]]}
    )
    assert moved.status_code == 200, moved.text
    assert [r["name"] for r in moved.json()] == ["status code", "heart rate"]
    assert world.client.delete(_url(cid, f"/{rule['id']}"), headers=admin).status_code == 204
    assert [r["name"] for r in _stored(cid)] == ["status code"]

    with session_scope() as session:
        rows = session.exec(
            select(AuditLog).where(AuditLog.action.startswith("validation_rule."))
        ).all()
        assert [r.action.split(".")[1] for r in rows] == [
            "create",
            "create",
            "disable",
            "update",
            "reorder",
            "delete",
        ]
        assert all(r.actor.startswith("admin") for r in rows)
        assert {r.target_id for r in rows} == {str(cid)}


def test_refusals_name_the_field_and_save_nothing(world):
    admin = world.headers("admin")
    with session_scope() as session:
        cid = make_connection(session).id
    rid = world.client.post(_url(cid), json=HEART_RATE, headers=admin).json()["id"]
    before = _stored(cid)
    cases = [
        ({"check": "pattern", "name": "mrn", "path": "id", "pattern": "MRN(\\d"}, "body.pattern"),
        (FINAL | {"expression": "status = ("}, "body.expression"),
        (HEART_RATE | {"name": "hr2", "path": "a..b"}, "body.path"),
        (HEART_RATE | {"name": "hr2", "min": True}, "body.min"),
        (HEART_RATE | {"name": "hr2", "max": "250"}, "body.max"),
        (HEART_RATE | {"name": "hr2", "min": 300}, "body.max"),
        (HEART_RATE, "body.name"),  # the name is taken
    ]
    for body, field in cases:
        assert field in _fields(world.client.post(_url(cid), json=body, headers=admin)), body
    # 1e400 is infinity once parsed: no bound JSON could store.
    huge = world.client.post(
        _url(cid),
        headers={**admin, "Content-Type": "application/json"},
        content=b'{"check": "range", "name": "hr2", "path": "a", "max": 1e400}',
    )
    assert "body.max" in _fields(huge)
    patched = world.client.patch(_url(cid, f"/{rid}"), json={"expression": "x"}, headers=admin)
    assert "body.expression" in _fields(patched)  # not a field of a range check
    patched = world.client.patch(_url(cid, f"/{rid}"), json={"enabled": "no"}, headers=admin)
    assert "body.enabled" in _fields(patched)
    put = world.client.put(
        _url(cid, f"/{rid}"), headers=admin, json=FINAL | {"expression": "name.where("}
    )
    assert "body.expression" in _fields(put)
    reorder = world.client.post(_url(cid, "/reorder"), json={"rule_ids": ["x"]}, headers=admin)
    assert "body.rule_ids" in _fields(reorder)
    check = world.client.post(_url(cid, "/check"), json={"resource": {"id": "1"}}, headers=admin)
    assert "body.resource" in _fields(check)
    assert _stored(cid) == before


def test_unknown_connection_or_rule_is_404(world):
    admin = world.headers("admin")
    with session_scope() as session:
        cid = make_connection(session).id
    for method, url, body in [
        ("GET", _url(cid + 999), None),
        ("POST", _url(cid + 999), HEART_RATE),
        ("POST", _url(cid + 999, "/check"), {"resource": OBS}),
        ("GET", _url(cid, "/nope"), None),
        ("PATCH", _url(cid, "/nope"), {"enabled": False}),
        ("PUT", _url(cid, "/nope"), HEART_RATE),
        ("DELETE", _url(cid, "/nope"), None),
    ]:
        answer = world.client.request(method, url, json=body, headers=admin)
        assert answer.status_code == 404, (method, url, answer.text)
        assert answer.json()["error"]["code"] == "not_found"


def test_viewer_reads_but_changes_nothing(world):
    with session_scope() as session:
        cid = make_connection(session).id
    rid = world.client.post(_url(cid), json=HEART_RATE, headers=world.headers("admin")).json()["id"]
    viewer = world.headers("viewer")
    assert world.client.get(_url(cid), headers=viewer).status_code == 200
    for method, url, body in [
        ("POST", _url(cid), FINAL),
        ("PATCH", _url(cid, f"/{rid}"), {"enabled": False}),
        ("PUT", _url(cid, f"/{rid}"), FINAL),
        ("DELETE", _url(cid, f"/{rid}"), None),
        ("POST", _url(cid, "/reorder"), {"rule_ids": [rid]}),
        ("POST", _url(cid, "/check"), {"resource": OBS}),
    ]:
        answer = world.client.request(method, url, json=body, headers=viewer)
        assert answer.status_code == 403, (method, url, answer.text)
    for method, url in [("PATCH", _url(cid, f"/{rid}")), ("POST", _url(cid, "/reorder"))]:
        body = {"enabled": False} if method == "PATCH" else {"rule_ids": [rid]}
        assert (
            world.client.request(
                method, url, json=body, headers=world.headers("operator")
            ).status_code
            == 403
        )
    assert [r["enabled"] for r in _stored(cid)] == [True]
    assert world.client.get(_url(cid)).status_code == 401
