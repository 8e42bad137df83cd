"""Transformation rules, test connection and patient records over the API."""

from __future__ import annotations

from holovitals_sync.db import session_scope
from holovitals_sync.models import AuthMethod, SyncedRecord, Vendor
from tests.factories import make_connection

RULES = "/api/transformations/rules"


def test_rules_crud_and_dry_run(world):
    admin, viewer = world.headers("admin"), world.headers("viewer")
    with session_scope() as session:
        cid = make_connection(session).id
    rule = {
        "connection_id": cid,
        "resource_type": "Observation",
        "kind": "unit_conversion",
        "params": {"path": "valueQuantity", "from_units": ["[lb_av]"], "to_unit": "kg"},
    }
    created = world.client.post(RULES, json=rule, headers=admin)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    bad = world.client.post(RULES, json={"connection_id": cid, "kind": "computed",
                                         "params": {"path": "x", "expression": "name.where("}},
                            headers=admin)  # fmt: skip
    assert bad.status_code == 422 and "invalid rule" in bad.json()["error"]["message"]

    sample = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "valueQuantity": {
            "value": 220,
            "unit": "lb",
            "system": "http://unitsofmeasure.org",
            "code": "[lb_av]",
        },
    }
    run = world.client.post(f"{RULES}/dry-run", json={"connection_id": cid, "resource": sample},
                            headers=world.headers("operator"))  # fmt: skip
    assert run.status_code == 200
    body = run.json()
    assert body["before"]["valueQuantity"]["value"] == 220
    assert round(body["after"]["valueQuantity"]["value"], 1) == 99.8
    assert body["changes"][0]["rule_id"] == rid

    assert world.client.put(f"{RULES}/{rid}/enabled", json={"enabled": False},
                            headers=admin).json()["enabled"] is False  # fmt: skip
    off = world.client.post(f"{RULES}/dry-run", json={"connection_id": cid, "resource": sample},
                            headers=admin).json()  # fmt: skip
    assert off["after"] == off["before"] and off["changes"] == []
    listed = world.client.get(RULES, params={"connection_id": cid}, headers=viewer).json()
    assert [r["id"] for r in listed] == [rid]
    assert world.client.delete(f"{RULES}/{rid}", headers=admin).status_code == 204
    assert world.client.delete(f"{RULES}/{rid}", headers=admin).status_code == 404


def test_test_connection_against_sandbox(world, sandbox):
    with session_scope() as session:
        cid = make_connection(
            session,
            "Sandbox",
            vendor=Vendor.GENERIC,
            base_url=sandbox.base_url,
            client_id="holovitals-demo",
            client_secret="demo-secret",
            auth_method=AuthMethod.CLIENT_SECRET_BASIC,
            scopes="system/*.read",
        ).id
        broken = make_connection(
            session,
            "Wrong secret",
            vendor=Vendor.GENERIC,
            base_url=sandbox.base_url,
            client_id="holovitals-demo",
            client_secret="not-the-secret",
            scopes="system/*.read",
        ).id
    assert world.client.post(f"/api/connections/{cid}/test").status_code == 401
    assert world.client.post(f"/api/connections/{cid}/test",
                             headers=world.headers("viewer")).status_code == 403  # fmt: skip
    ok = world.client.post(f"/api/connections/{cid}/test", headers=world.headers("operator"))
    assert ok.status_code == 200
    assert ok.json() and all(step["ok"] for step in ok.json()), ok.json()
    bad = world.client.post(f"/api/connections/{broken}/test", headers=world.headers("operator"))
    steps = bad.json()
    assert not all(step["ok"] for step in steps)
    assert "not-the-secret" not in bad.text
    detail = world.client.get(f"/api/connections/{broken}", headers=world.headers("viewer"))
    assert detail.status_code == 200


def test_patient_records_with_sync_state(world):
    with session_scope() as session:
        cid = make_connection(session).id
        session.add(
            SyncedRecord(
                connection_id=cid,
                resource_type="Patient",
                remote_id="p1",
                local_body={"resourceType": "Patient", "id": "p1"},
            )
        )
        session.add(
            SyncedRecord(
                connection_id=cid,
                resource_type="Observation",
                remote_id="o1",
                patient_ref="Patient/p1",
                dirty=True,
            )
        )
        session.add(SyncedRecord(connection_id=cid, resource_type="Observation", remote_id="o2",
                                 patient_ref="Patient/p2"))  # fmt: skip
    page = world.client.get("/api/records", params={"connection_id": cid, "patient": "p1"},
                            headers=world.headers("viewer")).json()  # fmt: skip
    # Its records and the Patient itself, in id order, with their state and our copy.
    assert [(r["resource_type"], r["remote_id"], r["dirty"]) for r in page["items"]] == [
        ("Patient", "p1", False),
        ("Observation", "o1", True),
    ]
    assert page["items"][0]["body"] == {"resourceType": "Patient", "id": "p1"}
    assert page["next_cursor"] is None
    missing = world.client.get("/api/records", params={"connection_id": 999, "patient": "p1"},
                               headers=world.headers("viewer"))  # fmt: skip
    assert missing.status_code == 404
