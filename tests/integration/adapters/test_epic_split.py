"""Epic refuses searches over 100 matches (error 4127): the adapter splits them by date.

A fresh Epic-mode sandbox gets one patient with 130 extra Observations (spread over years,
two on the same instant); per-patient syncs must return each of that patient's
Observations exactly once, and resuming from a checkpoint taken inside the split must lose
and repeat nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from holovitals_sync.adapters import ConnectionSpec, adapter_for
from holovitals_sync.fhir.errors import OperationOutcomeError
from holovitals_sync.fhir.ids import fhir_instant
from tests.integration.adapters.conftest import Receiver, VendorEnv, start_env

PATIENT = "pt-00003"
EXTRA = 130
CATEGORIES = ("vital-signs", "laboratory", "social-history")


@pytest.fixture(scope="module")
def epic(receiver: Receiver) -> Iterator[VendorEnv]:
    own: dict[str, VendorEnv] = {}
    env = start_env("epic", own, receiver)
    store = env.server.state.store
    first = datetime(2019, 3, 1, 8, 30, tzinfo=UTC)
    for i in range(EXTRA):
        when = first + timedelta(days=11 * (i - i % 2))  # pairs share an instant
        store.create(
            {
                "resourceType": "Observation",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": CATEGORIES[i % 3],
                            }
                        ]
                    }
                ],
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": f"Patient/{PATIENT}"},
                "effectiveDateTime": fhir_instant(when),
                "valueQuantity": {"value": 60 + i % 40, "unit": "/min"},
            }
        )
    yield env
    env.server.stop()


def _expected(env: VendorEnv) -> set[str]:
    return {
        f"Observation/{r.id}" for r in env.server.state.store.candidates("Observation", PATIENT)
    }


def _keys(pages: list[Any]) -> list[str]:
    return [f"{r['resourceType']}/{r['id']}" for p in pages for r in p.resources]


def _spec(env: VendorEnv, page_size: int | None = None) -> ConnectionSpec:
    return env.spec.__class__(**{**env.spec.__dict__, "page_size": page_size})


def test_plain_search_is_refused_and_date_search_works(epic: VendorEnv) -> None:
    assert len(_expected(epic)) > 100
    with adapter_for(epic.spec) as adapter:
        with pytest.raises(OperationOutcomeError) as info:
            list(adapter.client.search("Observation", [("patient", PATIENT)]))
        assert any("4127" in (i.diagnostics or "") for i in info.value.issues)
        narrow = list(
            adapter.client.search(
                "Observation",
                [
                    ("patient", PATIENT),
                    ("date", "ge2019-03-01"),
                    ("date", "lt2019-03-02"),
                    ("category", "vital-signs,laboratory"),
                ],
            )
        )
    assert {r["effectiveDateTime"][:10] for r in narrow} == {"2019-03-01"} and len(narrow) == 2


def test_patient_sync_returns_every_observation_once(epic: VendorEnv) -> None:
    with adapter_for(epic.spec) as adapter:
        pages = list(adapter.fetch_patient(PATIENT))
        by_type = list(adapter.fetch_resource_type("Observation"))
    got = [k for k in _keys(pages) if k.startswith("Observation/")]
    assert len(got) == len(set(got)) and set(got) == _expected(epic)
    assert any("split" in p.checkpoint.get("state", {}) for p in pages)
    every = _keys(by_type)
    assert len(every) == len(set(every))
    assert set(every) == {
        f"Observation/{r.id}" for r in epic.server.state.store.candidates("Observation")
    }
    assert "Observation" in by_type[-1].cursor


@pytest.mark.parametrize("stop_after", [1, 4, 9])
def test_resume_inside_a_split_loses_and_repeats_nothing(epic: VendorEnv, stop_after: int) -> None:
    with adapter_for(_spec(epic, page_size=10)) as adapter:
        first: list[Any] = []
        for page in adapter.fetch_resource_type("Observation"):
            # The split starts with the patient's first page (the plain search is refused).
            if first or "split" in page.checkpoint["state"]:
                first.append(page)
            if len(first) == stop_after:
                break
        checkpoint = first[-1].checkpoint
        assert checkpoint["state"]["pid"] == PATIENT and checkpoint["state"]["split"]
        rest_pages = list(adapter.fetch_resource_type("Observation", resume=checkpoint))
    before = _keys(first)
    ours = _expected(epic)
    rest = [k for k in _keys(rest_pages) if k in ours]
    assert set(before) <= ours and len(before) == len(set(before))
    assert len(rest) == len(set(rest)) and not set(before) & set(rest)
    assert set(before) | set(rest) == ours


def test_undated_observations_come_after_the_date_windows(epic: VendorEnv) -> None:
    """A record with no clinical date matches no date window; the split asks for it too."""
    store = epic.server.state.store
    undated = [
        store.create(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
                "subject": {"reference": f"Patient/{PATIENT}"},
                "valueString": f"undated note {i}",
            }
        )
        for i in range(3)
    ]
    try:
        with adapter_for(epic.spec) as adapter:
            pages = list(adapter.fetch_patient(PATIENT))
        got = [k for k in _keys(pages) if k.startswith("Observation/")]
        assert len(got) == len(set(got)) and set(got) == _expected(epic)
        assert {f"Observation/{r.id}" for r in undated} <= set(got)
    finally:
        for r in undated:
            store.delete("Observation", r.id)
