"""Connections over the API: secrets encrypted and never returned, JWKS, validation."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import EHRConnection

SECRET = "S3cr3t-Client-Value-9f8e7d"


def _create(world, **extra):
    body = {
        "name": "Mercy General",
        "vendor": "epic",
        "base_url": "https://fhir.mercy.example/api/FHIR/R4",
        "client_id": "abc",
        "auth_method": "client_secret_basic",
        "client_secret": SECRET,
        "vendor_params": {"tenant": "t1"},
    } | extra
    return world.client.post("/api/connections", json=body, headers=world.headers("admin"))


def test_secret_encrypted_and_never_returned(world, caplog):
    caplog.set_level(logging.DEBUG)
    created = _create(world)
    assert created.status_code == 201
    body = created.json()
    assert body["has_client_secret"] is True
    cid = body["id"]
    texts = [created.text]
    texts.append(world.client.get(f"/api/connections/{cid}", headers=world.headers("viewer")).text)
    texts.append(world.client.get("/api/connections", headers=world.headers("viewer")).text)
    texts.append(world.client.patch(f"/api/connections/{cid}", json={"client_secret": SECRET + "2"},
                                    headers=world.headers("admin")).text)  # fmt: skip
    texts.append(world.client.get("/api/audit", headers=world.headers("admin")).text)
    assert not [t for t in texts if SECRET in t]
    assert SECRET not in caplog.text
    with get_engine().connect() as conn:
        raw = conn.execute(sa.text("SELECT * FROM ehr_connection")).fetchall()
    assert SECRET not in repr(raw)


def test_invalid_body_names_the_field(world):
    response = _create(world, base_url="ftp://nope", concurrency_limit=0)
    assert response.status_code == 422
    fields = {f["field"] for f in response.json()["error"]["fields"]}
    assert {"body.base_url", "body.concurrency_limit"} <= fields
    with session_scope() as session:
        assert session.exec(sa.select(sa.func.count()).select_from(EHRConnection)).one()[0] == 0


def test_bad_cron_schedule_is_refused(world):
    response = _create(world, sync_schedule="every tuesday")
    assert response.status_code == 422
    assert "cron" in response.text


def test_duplicate_name_is_409_and_unknown_id_404(world):
    assert _create(world).status_code == 201
    assert _create(world).status_code == 409
    assert (
        world.client.get("/api/connections/999", headers=world.headers("viewer")).status_code == 404
    )


def test_generated_key_is_served_as_public_jwks(world):
    cid = _create(world).json()["id"]
    jwks = world.client.post(f"/api/connections/{cid}/keys", json={"alg": "RS384"},
                             headers=world.headers("admin")).json()  # fmt: skip
    public = world.client.get(f"/api/connections/{cid}/jwks.json")  # no sign-in: EHRs fetch it
    assert public.status_code == 200
    assert public.json() == jwks
    key = jwks["keys"][0]
    assert key["kty"] == "RSA" and key["alg"] == "RS384" and "d" not in key
    detail = world.client.get(f"/api/connections/{cid}", headers=world.headers("viewer")).json()
    assert detail["has_signing_key"] is True and detail["key_id"] == key["kid"]
    assert "PRIVATE KEY" not in str(detail)


def test_full_sync_via_is_export_or_search(world):
    created = _create(world)
    assert created.json()["full_sync_via"] == "export"  # Bulk Data where offered
    cid = created.json()["id"]
    admin = world.headers("admin")
    refused = world.client.patch(f"/api/connections/{cid}", json={"full_sync_via": "bulk"},
                                 headers=admin)  # fmt: skip
    assert refused.status_code == 422
    assert {f["field"] for f in refused.json()["error"]["fields"]} == {"body.full_sync_via"}
    changed = world.client.patch(f"/api/connections/{cid}", json={"full_sync_via": "search"},
                                 headers=admin)  # fmt: skip
    assert changed.status_code == 200
    shown = world.client.get(f"/api/connections/{cid}", headers=world.headers("viewer"))
    assert shown.json()["full_sync_via"] == "search"


def test_resource_types_are_chosen_among_the_vendors(world):
    created = _create(world)
    assert created.json()["resource_types"] == []  # every type the vendor serves
    cid, admin = created.json()["id"], world.headers("admin")

    def patch(types):
        return world.client.patch(f"/api/connections/{cid}", json={"resource_types": types},
                                  headers=admin)  # fmt: skip

    for types, said in [
        (["Observation"], "Patient is always synced"),
        (["Patient", "observation"], "not a FHIR resource type: 'observation'"),
        (["Patient", "Questionnaire"], "Epic does not serve Questionnaire"),
        ("Patient", "list"),
    ]:
        refused = patch(types)
        assert refused.status_code == 422, types
        (field,) = refused.json()["error"]["fields"]
        assert field["field"] == "body.resource_types" and said in field["message"], field
    assert world.client.get(f"/api/connections/{cid}", headers=admin).json()["resource_types"] == []
    changed = patch([" Patient", "Observation", "Patient"])
    assert changed.status_code == 200
    assert changed.json()["resource_types"] == ["Patient", "Observation"]  # each once, trimmed
    refused = _create(world, name="Another", resource_types=["Patient", "Questionnaire"])
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "body.resource_types"
    generic = _create(world, name="Any server", vendor="generic", vendor_params={},
                      resource_types=["Patient", "Questionnaire"])  # fmt: skip
    assert generic.status_code == 201  # its server declares its types: the test checks them
