"""BatchProcessor: a batch's validity never depends on what earlier batches fetched.

A real server may list Observation before Patient, so a batch may reference patients the
run has not seen yet. The batch checks a reference's form only; whether the patient is
held is settled when the run ends (tests/integration/sync/test_reference_order.py).
"""

from __future__ import annotations

from typing import Any

from holovitals_sync.models import EHRConnection, ValidationMode
from holovitals_sync.services.orchestration.pipeline import BatchProcessor
from holovitals_sync.services.transformation.compile import RuleBook


def _observation(oid: str, subject: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"text": "Heart rate"},
        "subject": subject,
    }


def _processor(mode: ValidationMode) -> BatchProcessor:
    connection = EHRConnection(
        name="t", base_url="https://fhir.example.org/r4", client_id="c", validation_mode=mode
    )
    return BatchProcessor(connection, RuleBook([]))


def test_a_reference_to_a_patient_not_seen_yet_is_stored_even_in_strict_mode():
    for mode in ValidationMode:
        batch = _processor(mode).process([_observation("o1", {"reference": "Patient/later"})])
        assert [r["id"] for r in batch.store] == ["o1"], mode
        assert not batch.flagged and batch.invalid == 0 and batch.issues == []


def test_a_malformed_patient_reference_is_still_an_error_at_once():
    batch = _processor(ValidationMode.STRICT).process(
        [
            _observation("o1", {"display": "no reference at all"}),
            _observation("o2", {"reference": "Patient/"}),
        ]
    )
    assert batch.store == [] and batch.invalid == 2
    assert {i.resource_id for i in batch.issues} == {"o1", "o2"}
    lenient = _processor(ValidationMode.LENIENT).process(
        [_observation("o2", {"reference": "Patient/"})]
    )
    assert [r["id"] for r in lenient.flagged] == ["o2"]
