"""Create, conditional create, versioned update, delete, batch and transaction."""

from __future__ import annotations

import uuid

import httpx

from holovitals_sync.sandbox.server import SandboxServer


def _patient(mrn: str) -> dict:
    return {
        "resourceType": "Patient",
        "gender": "female",
        "birthDate": "1980-02-03",
        "name": [{"family": "Test", "given": ["Ada"]}],
        "identifier": [{"system": "urn:test:mrn", "value": mrn}],
    }


def _obs(subject: str) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        "valueQuantity": {
            "value": 71,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def test_create_and_conditional_create(fhir: httpx.Client) -> None:
    mrn = uuid.uuid4().hex
    resp = fhir.post("/Patient", json=_patient(mrn))
    assert resp.status_code == 201
    assert resp.headers["etag"] == 'W/"1"'
    new_id = resp.json()["id"]
    assert resp.headers["location"].endswith(f"/Patient/{new_id}/_history/1")
    again = fhir.post(
        "/Patient", json=_patient(mrn), headers={"If-None-Exist": f"identifier=urn:test:mrn|{mrn}"}
    )
    assert again.status_code == 200 and again.json()["id"] == new_id
    assert fhir.get("/Patient", params={"identifier": f"urn:test:mrn|{mrn}"}).json()["total"] == 1


def test_update_honours_if_match(fhir: httpx.Client) -> None:
    cond = fhir.get("/Condition", params={"patient": "pt-00010"}).json()["entry"][0]["resource"]
    version = cond["meta"]["versionId"]
    cond["note"] = [{"text": "reviewed"}]
    ok = fhir.put(f"/Condition/{cond['id']}", json=cond, headers={"If-Match": f'W/"{version}"'})
    assert ok.status_code == 200
    assert ok.headers["etag"] == f'W/"{int(version) + 1}"'
    stale = fhir.put(f"/Condition/{cond['id']}", json=cond, headers={"If-Match": f'W/"{version}"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    mismatch = fhir.put("/Condition/other-id", json=cond)
    assert mismatch.status_code == 400


def test_invalid_resources_are_refused(fhir: httpx.Client) -> None:
    assert fhir.post("/Observation", content=b"{not json").status_code == 400
    assert fhir.post("/Observation", json={"resourceType": "Patient"}).status_code == 400
    bad = fhir.post("/Observation", json={"resourceType": "Observation", "subject": "Patient/1"})
    assert bad.status_code == 422


def test_delete_then_read_is_gone(fhir: httpx.Client) -> None:
    created = fhir.post("/Observation", json=_obs("Patient/pt-00011")).json()
    assert fhir.delete(f"/Observation/{created['id']}").status_code == 204
    assert fhir.get(f"/Observation/{created['id']}").status_code == 410
    assert fhir.delete(f"/Observation/{created['id']}").status_code == 204  # idempotent
    assert fhir.delete("/Observation/never-was").status_code == 404
    hist = fhir.get(f"/Observation/{created['id']}/_history").json()
    assert [e["request"]["method"] for e in hist["entry"]] == ["DELETE", "POST"]


def test_batch_answers_per_entry(fhir: httpx.Client) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/pt-00001"}},
            {"request": {"method": "GET", "url": "Patient/nope"}},
            {
                "resource": _obs("Patient/pt-00001"),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    resp = fhir.post("", json=bundle)
    assert resp.status_code == 200
    statuses = [e["response"]["status"] for e in resp.json()["entry"]]
    assert statuses[0].startswith("200") and statuses[1] == "404"
    assert statuses[2].startswith("201")


def test_transaction_is_all_or_nothing(sandbox: SandboxServer, fhir: httpx.Client) -> None:
    mrn = uuid.uuid4().hex
    placeholder = f"urn:uuid:{uuid.uuid4()}"
    good = [
        {
            "fullUrl": placeholder,
            "resource": _patient(mrn),
            "request": {"method": "POST", "url": "Patient"},
        },
        {"resource": _obs(placeholder), "request": {"method": "POST", "url": "Observation"}},
    ]
    stale = {
        "resource": {**fhir.get("/Patient/pt-00012").json()},
        "request": {"method": "PUT", "url": "Patient/pt-00012", "ifMatch": 'W/"99"'},
    }
    before = sandbox.state.store.watermark()
    failed = fhir.post(
        "", json={"resourceType": "Bundle", "type": "transaction", "entry": [*good, stale]}
    )
    assert failed.status_code == 412
    assert fhir.get("/Patient", params={"identifier": f"urn:test:mrn|{mrn}"}).json()["total"] == 0
    assert fhir.get("/Observation", params={"_lastUpdated": f"gt{before}"}).json()["total"] == 0
    ok = fhir.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": good})
    assert ok.status_code == 200 and ok.json()["type"] == "transaction-response"
    pat_loc, obs_loc = (e["response"]["location"] for e in ok.json()["entry"])
    obs = fhir.get("/" + obs_loc.split("/_history")[0]).json()
    assert obs["subject"]["reference"] == pat_loc.split("/_history")[0]
