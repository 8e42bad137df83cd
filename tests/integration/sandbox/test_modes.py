"""Vendor-profile hooks, subprocess mode and smaller search behaviours."""

from __future__ import annotations

import httpx
import pytest

from holovitals_sync.sandbox import SandboxConfig, SandboxServer, vendors
from holovitals_sync.sandbox.vendors import VendorProfile


@pytest.fixture
def strict_vendor(monkeypatch: pytest.MonkeyPatch) -> str:
    profile = VendorProfile(
        name="strict-test",
        max_page_size=10,
        stale_version_status=409,
        required_search_params={"Observation": ("patient", "subject")},
        last_updated_types=frozenset({"Condition"}),
    )
    monkeypatch.setitem(vendors.PROFILES, profile.name, profile)
    return profile.name


def test_vendor_profile_changes_behaviour(strict_vendor: str) -> None:
    with SandboxServer(SandboxConfig(patients=3, seed=5, vendor=strict_vendor)) as ehr:
        client = httpx.Client(
            base_url=ehr.base_url, headers={"Authorization": f"Bearer {ehr.token()}"}
        )
        assert client.get("/Observation").status_code == 400  # patient required
        page = client.get("/Observation", params={"patient": "pt-00001", "_count": 500}).json()
        assert len(page["entry"]) == 10
        assert client.get("/Encounter", params={"_lastUpdated": "gt2020"}).status_code == 400
        assert client.get("/Condition", params={"_lastUpdated": "gt2020"}).status_code == 200
        pat = client.get("/Patient/pt-00001").json()
        stale = client.put("/Patient/pt-00001", json=pat, headers={"If-Match": 'W/"7"'})
        assert stale.status_code == 409
    with pytest.raises(ValueError):
        SandboxServer(SandboxConfig(vendor="no-such-vendor")).start()


def test_subprocess_mode() -> None:
    with SandboxServer(SandboxConfig(patients=2), in_subprocess=True) as ehr:
        token = ehr.token()
        resp = httpx.get(f"{ehr.base_url}/Patient", headers={"Authorization": f"Bearer {token}"})
        assert resp.json()["total"] == 2
        ehr.set_faults(storm=1)
        assert (
            httpx.get(
                f"{ehr.base_url}/Patient", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 429
        )
        assert ehr.stats()["faults"] == {"storm": 1}


def test_count_zero_lenient_and_offset_dates(fhir: httpx.Client) -> None:
    zero = fhir.get("/Observation", params={"_count": 0}).json()
    assert zero["total"] > 0 and "entry" not in zero or zero["entry"] == []
    assert not any(lk["relation"] == "next" for lk in zero["link"])
    lenient = fhir.get(
        "/Patient", params={"colour": "red", "_count": 2}, headers={"Prefer": "handling=lenient"}
    )
    assert lenient.status_code == 200
    plus = fhir.get("/Patient?_lastUpdated=gt2020-01-01T00:00:00+00:00&_count=1")
    assert plus.status_code == 200 and plus.json()["total"] > 0
    future = fhir.get("/Patient", params={"_lastUpdated": "gt2099-01-01T00:00:00.000Z"})
    assert future.json()["total"] == 0


def test_batch_search_entry(fhir: httpx.Client) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": "Condition?patient=pt-00001"}}],
    }
    inner = fhir.post("/", json=bundle).json()["entry"][0]["resource"]
    assert inner["type"] == "searchset" and inner["total"] >= 2
