"""The sandbox must not be the bottleneck of sync benchmarks."""

from __future__ import annotations

import time

import httpx

from holovitals_sync.sandbox import SandboxConfig, SandboxServer


def test_500_patients_observations_page_fast() -> None:
    with (
        SandboxServer(SandboxConfig(patients=500, seed=99)) as ehr,
        httpx.Client(headers={"Authorization": f"Bearer {ehr.token()}"}, timeout=30) as client,
    ):
        url: str | None = f"{ehr.base_url}/Observation?_count=500"
        seen = 0
        start = time.perf_counter()
        while url:
            bundle = client.get(url).json()
            seen += len(bundle["entry"])
            url = next((lk["url"] for lk in bundle["link"] if lk["relation"] == "next"), None)
        rate = seen / (time.perf_counter() - start)
    assert seen == bundle["total"] > 10_000
    assert rate > 3_000, f"{rate:.0f} resources/s"
