"""The sandbox's paging cost model: a page costs what offset paging costs a real server."""

from __future__ import annotations

import time

import httpx

from holovitals_sync.sandbox.config import PageCost
from holovitals_sync.sandbox.server import SandboxServer


def test_the_cost_grows_with_offset_matches_and_entries() -> None:
    cost = PageCost(per_page_ms=10, per_1000_offset_ms=40, per_1000_matches_ms=20, per_entry_ms=0.5)
    assert cost.seconds(0, 1000, 100) == (10 + 0 + 20 + 50) / 1000
    assert cost.seconds(5000, 1000, 100) == (10 + 200 + 20 + 50) / 1000
    assert PageCost().seconds(10_000, 10_000, 1000) == 0


def test_a_search_page_is_answered_after_its_cost(
    sandbox: SandboxServer, fhir: httpx.Client
) -> None:
    sandbox.configure(
        page_cost={
            "per_page_ms": 250,
            "per_1000_offset_ms": 0,
            "per_1000_matches_ms": 0,
            "per_entry_ms": 0,
        }
    )
    try:
        began = time.monotonic()
        page = fhir.get("/Observation", params={"_count": "5"})
        assert page.status_code == 200
        assert time.monotonic() - began >= 0.25  # searched: paid for
    finally:
        sandbox.configure(page_cost={})


def test_a_count_over_the_maximum_is_capped_or_refused(
    sandbox: SandboxServer, fhir: httpx.Client
) -> None:
    sandbox.configure(max_page_size=7)
    try:
        capped = fhir.get("/Observation", params={"_count": "100"}).json()
        assert len(capped["entry"]) == 7
        sandbox.configure(refuse_count_over_max=True)
        refused = fhir.get("/Observation", params={"_count": "100"})
        assert refused.status_code == 400
        assert "_count must not exceed 7" in refused.text
        assert fhir.get("/Observation", params={"_count": "7"}).status_code == 200
    finally:
        sandbox.configure(max_page_size=1000, refuse_count_over_max=False)
