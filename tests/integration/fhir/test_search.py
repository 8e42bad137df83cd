"""Reads, paged search, incremental search, history and malformed pages on the sandbox."""

from datetime import datetime, timedelta

import pytest

from holovitals_sync.fhir import (
    FhirClient,
    MalformedResponse,
    ResourceNotFound,
)


def total(client: FhirClient, resource_type: str) -> int:
    (page,) = client.search_pages(resource_type, {"_summary": "count"})
    return int(page["total"])


def test_paging_yields_every_id_exactly_once(client: FhirClient, sandbox) -> None:
    expected = total(client, "Observation")
    assert expected >= 1000
    ids = [r["id"] for r in client.search("Observation", page_size=100)]
    assert len(ids) == expected
    assert len(set(ids)) == expected
    pages = [r for r in sandbox.stats()["recent"] if r["path"] in ("/fhir", "/fhir/Observation")]
    assert len(pages) == 1 + -(-expected // 100)  # the count query plus one request per page


def test_search_pages_follow_next_links(client: FhirClient) -> None:
    bundles = list(client.search_pages("Condition", page_size=40))
    assert all(b["resourceType"] == "Bundle" for b in bundles)
    assert len(bundles) == -(-bundles[0]["total"] // 40)
    for bundle in bundles[1:]:
        self_link = next(lk["url"] for lk in bundle["link"] if lk["relation"] == "self")
        assert "_getpages=" in self_link  # the server's opaque link, used as given


def test_search_with_params_and_config_page_size(make_client) -> None:
    client = make_client(page_size=7)
    patient_id = next(client.search("Patient"))["id"]
    observations = list(client.search("Observation", {"patient": patient_id}))
    assert observations
    assert all(o["subject"]["reference"].endswith(patient_id) for o in observations)


def test_incremental_run_after_clinic_day(client: FhirClient, sandbox) -> None:
    day = sandbox.clinic_day(changes=40)
    cursor = datetime.fromisoformat(day["since"])
    for resource_type, changed in day["changed"].items():
        exact = {r["id"] for r in client.search_since(resource_type, cursor, overlap=timedelta(0))}
        assert exact == set(changed), resource_type
        # The default look-back re-reads a little more; never less.
        assert set(changed) <= {r["id"] for r in client.search_since(resource_type, cursor)}


def test_read_vread_history_everything(client: FhirClient) -> None:
    patient = next(client.search("Patient"))
    assert client.read("Patient", patient["id"])["id"] == patient["id"]
    version = patient["meta"]["versionId"]
    assert client.vread("Patient", patient["id"], version)["meta"]["versionId"] == version
    entries = list(client.history("Patient", patient["id"]))
    assert entries and entries[0]["request"]["url"] == f"Patient/{patient['id']}"
    everything = list(client.everything(patient["id"], page_size=25))
    assert everything[0]["resourceType"] == "Patient"
    assert len({(r["resourceType"], r["id"]) for r in everything}) == len(everything)
    assert client.capabilities()["resourceType"] == "CapabilityStatement"


def test_read_missing_raises_not_found(client: FhirClient) -> None:
    with pytest.raises(ResourceNotFound) as info:
        client.read("Patient", "does-not-exist")
    assert info.value.status == 404 and info.value.issues


@pytest.mark.parametrize("kind", ["json", "bundle"])
def test_malformed_page_names_url_and_yields_nothing_from_it(
    client: FhirClient, sandbox, kind: str
) -> None:
    sandbox.set_faults(malformed_page=2, malformed_kind=kind)
    stored: list[str] = []
    with pytest.raises(MalformedResponse) as info:
        for resource in client.search("Observation", page_size=50):
            stored.append(resource["id"])
    assert len(stored) == 50  # page one only
    assert "_getpagesoffset=50" in info.value.url
    assert info.value.url in str(info.value)
