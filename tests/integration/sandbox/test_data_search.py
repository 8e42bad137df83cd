"""Synthetic data, reads, history and paged search of the sandbox EHR."""

from __future__ import annotations

from collections import Counter

import httpx
import orjson

from holovitals_sync.sandbox import data
from holovitals_sync.sandbox.server import SandboxServer


def _next(bundle: dict) -> str | None:
    return next((lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"), None)


def _all_pages(fhir: httpx.Client, url: str) -> tuple[list[dict], list[str]]:
    entries, urls = [], []
    next_url: str | None = url
    while next_url:
        resp = fhir.get(next_url)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("application/fhir+json")
        bundle = resp.json()
        entries += bundle.get("entry", [])
        urls.append(next_url)
        next_url = _next(bundle)
    return entries, urls


def test_same_seed_gives_byte_identical_data() -> None:
    one = b"".join(orjson.dumps(r) for r in data.generate(7, 40))
    two = b"".join(orjson.dumps(r) for r in data.generate(7, 40))
    other = b"".join(orjson.dumps(r) for r in data.generate(8, 40))
    assert one == two != other


def test_each_patient_has_30_to_60_resources_with_meta() -> None:
    for index in range(1, 60):
        resources = data.generate_patient(3, index)
        assert 30 <= len(resources) <= 60
        assert resources[0]["resourceType"] == "Patient"
        ident = resources[0]["identifier"][0]
        assert ident["system"] and ident["value"].startswith("MRN")
        for res in resources:
            assert res["meta"]["versionId"] == "1" and res["meta"]["lastUpdated"].endswith("Z")
        types = Counter(r["resourceType"] for r in resources)
        assert types["Observation"] >= 19 and types["DiagnosticReport"] >= 2


def test_observations_carry_loinc_and_ucum(fhir: httpx.Client) -> None:
    bundle = fhir.get(
        "/Observation", params={"patient": "Patient/pt-00001", "code": "http://loinc.org|8867-4"}
    ).json()
    assert bundle["total"] >= 3
    for entry in bundle["entry"]:
        obs = entry["resource"]
        assert obs["code"]["coding"][0]["code"] == "8867-4"
        assert obs["valueQuantity"]["code"] == "/min"
        assert obs["subject"]["reference"] == "Patient/pt-00001"
        assert obs["category"][0]["coding"][0]["code"] == "vital-signs"


def test_read_vread_history_and_404(fhir: httpx.Client) -> None:
    resp = fhir.get("/Patient/pt-00002")
    assert resp.status_code == 200 and resp.headers["etag"].startswith('W/"')
    vid = resp.json()["meta"]["versionId"]
    assert fhir.get(f"/Patient/pt-00002/_history/{vid}").status_code == 200
    hist = fhir.get("/Patient/pt-00002/_history").json()
    assert hist["type"] == "history" and hist["total"] >= 1
    missing = fhir.get("/Patient/does-not-exist")
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    assert fhir.get("/Spaceship/1").status_code == 404


def test_bad_search_params_answer_400(fhir: httpx.Client) -> None:
    for params in ({"_count": "x"}, {"_lastUpdated": "gt-yesterday"}, {"colour": "red"}):
        resp = fhir.get("/Observation", params=params)
        assert resp.status_code == 400, params
        assert resp.json()["issue"][0]["severity"] == "error"


def test_paging_1000_plus_resources_is_stable_under_writes(
    sandbox: SandboxServer, fhir: httpx.Client
) -> None:
    first = fhir.get("/Observation", params={"_count": 200}).json()
    total = first["total"]
    assert total > 1000 and len(first["entry"]) == 200
    sandbox.clinic_day(40)  # writes between pages must not shift or repeat entries
    rest, urls = _all_pages(fhir, _next(first))
    ids = [e["resource"]["id"] for e in first["entry"] + rest]
    assert len(ids) == total == len(set(ids))
    assert all("_getpages=" in u for u in urls)
    again, _ = _all_pages(fhir, urls[0])  # a next link can be fetched again, same answer
    assert [e["resource"]["id"] for e in again] == ids[200:]


def test_last_updated_after_clinic_day_returns_exactly_the_changes(
    sandbox: SandboxServer, fhir: httpx.Client
) -> None:
    day = sandbox.clinic_day(30)
    for rtype in ("Observation", "Condition", "MedicationRequest", "Encounter"):
        entries, _ = _all_pages(fhir, f"/{rtype}?_lastUpdated=gt{day['since']}&_count=7")
        got = sorted(e["resource"]["id"] for e in entries)
        assert got == sorted(day["changed"].get(rtype, [])), rtype
    assert sum(len(v) for v in day["changed"].values()) > 10
    updated = day["updated"].get("Observation") or day["updated"]["Condition"]
    rtype = "Observation" if day["updated"].get("Observation") else "Condition"
    res = fhir.get(f"/{rtype}/{updated[0]}").json()
    assert int(res["meta"]["versionId"]) >= 2 and res["meta"]["lastUpdated"] > day["since"]


def test_post_search_and_summary_count(fhir: httpx.Client) -> None:
    resp = fhir.post("/Condition/_search", data={"subject": "Patient/pt-00003"})
    assert resp.status_code == 200
    bundle = resp.json()
    assert bundle["total"] == len(bundle["entry"]) >= 2
    count = fhir.get("/Observation", params={"_summary": "count"}).json()
    assert count["total"] > 1000 and not count.get("entry")


def test_patient_everything_is_paged(fhir: httpx.Client) -> None:
    entries, urls = _all_pages(fhir, "/Patient/pt-00004/$everything?_count=10")
    assert len(urls) >= 3 and 30 <= len(entries) <= 60
    assert entries[0]["resource"]["resourceType"] == "Patient"
    subjects = {
        (e["resource"].get("subject") or e["resource"].get("patient") or {}).get("reference")
        for e in entries[1:]
    }
    assert subjects == {"Patient/pt-00004"}


def test_search_by_id_and_identifier(fhir: httpx.Client) -> None:
    pat = fhir.get("/Patient/pt-00005").json()
    ident = pat["identifier"][0]
    by_ident = fhir.get(
        "/Patient", params={"identifier": f"{ident['system']}|{ident['value']}"}
    ).json()
    assert [e["resource"]["id"] for e in by_ident["entry"]] == ["pt-00005"]
    by_id = fhir.get("/Patient", params={"_id": "pt-00005,pt-00006"}).json()
    assert by_id["total"] == 2
