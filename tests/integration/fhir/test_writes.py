"""Writes against the sandbox: create, conditional create, If-Match, delete, bundles."""

import uuid

import pytest

from holovitals_sync.fhir import FhirClient, PreconditionFailed, ResourceNotFound

SYSTEM = "urn:holovitals:test"


def new_patient(identifier: str | None = None) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": identifier or uuid.uuid4().hex}],
        "name": [{"family": "Testpatient", "given": ["Synthetic"]}],
        "gender": "unknown",
    }


def test_create_returns_resource_and_version(client: FhirClient) -> None:
    result = client.create(new_patient())
    assert result.created and result.status == 201
    assert result.resource_id and result.version_id == "1"
    assert result.resource is not None and result.resource["id"] == result.resource_id
    assert result.location and result.resource_id in result.location


def test_conditional_create(client: FhirClient) -> None:
    value = uuid.uuid4().hex
    first = client.conditional_create(
        new_patient(value), if_none_exist=f"identifier={SYSTEM}|{value}"
    )
    again = client.conditional_create(
        new_patient(value), if_none_exist=f"identifier={SYSTEM}|{value}"
    )
    assert first.created and not again.created
    assert again.resource_id == first.resource_id


def test_update_with_if_match_and_stale_write(client: FhirClient, sandbox) -> None:
    created = client.create(new_patient())
    resource = created.resource
    assert resource is not None
    resource["gender"] = "other"
    updated = client.update(resource, if_match_version=created.version_id)
    assert updated.version_id == "2" and updated.status == 200
    resource["gender"] = "female"
    with pytest.raises(PreconditionFailed) as info:
        client.update(resource, if_match_version=created.version_id)  # stale: version 1
    assert info.value.status == 412
    statuses = [r["status"] for r in sandbox.stats()["recent"] if r["method"] == "PUT"]
    assert statuses == [200, 412]  # a precondition failure is never retried
    assert client.read("Patient", created.resource_id)["gender"] == "other"


def test_delete(client: FhirClient) -> None:
    created = client.create(new_patient())
    client.delete("Patient", created.resource_id)
    with pytest.raises(ResourceNotFound) as info:
        client.read("Patient", created.resource_id)
    assert info.value.status == 410


def test_delete_if_match(client: FhirClient) -> None:
    created = client.create(new_patient())
    client.update({**client.read("Patient", created.resource_id), "gender": "male"})
    with pytest.raises(PreconditionFailed) as info:  # the server moved on from version 1
        client.delete("Patient", created.resource_id, if_match_version=created.version_id)
    assert info.value.status == 412
    assert client.read("Patient", created.resource_id)["gender"] == "male"  # still there
    current = client.read("Patient", created.resource_id)["meta"]["versionId"]
    client.delete("Patient", created.resource_id, if_match_version=current)
    with pytest.raises(ResourceNotFound):
        client.read("Patient", created.resource_id)


def test_transaction(client: FhirClient) -> None:
    value = uuid.uuid4().hex
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {
                "fullUrl": "urn:uuid:" + str(uuid.uuid4()),
                "resource": new_patient(value),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:" + str(uuid.uuid4()),
                "resource": new_patient(),
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    result = client.transaction(bundle)
    assert result["type"] == "transaction-response"
    assert [e["response"]["status"].split()[0] for e in result["entry"]] == ["201", "201"]
    found = list(client.search("Patient", {"identifier": f"{SYSTEM}|{value}"}))
    assert len(found) == 1


def test_batch_entries_fail_independently(client: FhirClient) -> None:
    patient_id = next(client.search("Patient"))["id"]
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{patient_id}"}},
            {"request": {"method": "GET", "url": "Patient/no-such-patient"}},
        ],
    }
    result = client.batch(bundle)
    assert result["type"] == "batch-response"
    statuses = [e["response"]["status"].split()[0] for e in result["entry"]]
    assert statuses == ["200", "404"]
