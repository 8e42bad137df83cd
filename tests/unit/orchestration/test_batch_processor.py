"""BatchProcessor: a run's batches processed in order, ahead of their commits.

The sync processes batch N+1 in its prefetch thread while batch N is still being written,
so a patient stored by batch N is not yet visible to a database look-up. The processor must
know it from the run itself, and must not "know" a patient that an earlier batch dropped.
"""

from __future__ import annotations

from typing import Any

from holovitals_sync.models import EHRConnection, ValidationMode
from holovitals_sync.services.orchestration.pipeline import BatchProcessor
from holovitals_sync.services.transformation.compile import RuleBook


def _patient(pid: str, *, valid: bool = True) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": pid, "gender": "female",
                               "name": [{"family": "Test"}]}
    if valid:  # `identifier` is one of the elements required of a Patient
        patient["identifier"] = [{"system": "urn:test", "value": pid}]
    return patient


def _observation(oid: str, pid: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"text": "Heart rate"}, "subject": {"reference": f"Patient/{pid}"}}


class _Lookup:
    """Stands in for the database: the patients "committed" before the run, and every ask."""

    def __init__(self, stored: set[str]) -> None:
        self.stored = stored
        self.asked: list[set[str]] = []

    def __call__(self, wanted: set[str]) -> set[str]:
        self.asked.append(set(wanted))
        return wanted & self.stored


def _processor(lookup: _Lookup, mode: ValidationMode = ValidationMode.STRICT
               ) -> BatchProcessor:
    connection = EHRConnection(name="t", base_url="https://fhir.example.org/r4",
                               client_id="c", validation_mode=mode)
    return BatchProcessor(connection, RuleBook([]), lookup)


def _ids(resources: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in resources]


def test_a_patient_stored_by_an_earlier_batch_is_known_before_it_commits():
    lookup = _Lookup(stored=set())  # nothing committed yet: batch 1 is still being written
    processor = _processor(lookup)
    first = processor.process([_patient("p1"), _patient("p2", valid=False)])
    assert _ids(first.store) == ["p1"] and first.invalid == 1

    second = processor.process([_observation("o1", "p1"), _observation("o2", "p2")])
    # p1 is stored by batch 1; p2 was dropped there, so o2's reference does not resolve.
    assert _ids(second.store) == ["o1"] and second.invalid == 1
    assert any(i.resource_id == "o2" and "unknown" in i.message for i in second.issues)
    assert lookup.asked == [{"p2"}]  # only the patient the run does not know was asked


def test_lenient_flagged_patients_are_stored_and_so_known():
    processor = _processor(_Lookup(stored=set()), ValidationMode.LENIENT)
    first = processor.process([_patient("p1", valid=False)])
    assert _ids(first.flagged) == ["p1"]
    second = processor.process([_observation("o1", "p1")])
    assert _ids(second.store) == ["o1"] and not second.flagged


def test_stored_patients_are_asked_once_and_missing_ones_asked_again():
    lookup = _Lookup(stored={"old"})
    processor = _processor(lookup)
    for n in range(3):
        batch = processor.process([_observation(f"a{n}", "old"),
                                   _observation(f"b{n}", "nowhere")])
        assert _ids(batch.store) == [f"a{n}"]
    # Found once and remembered; not found, so asked again (another run may store it).
    assert lookup.asked == [{"old", "nowhere"}, {"nowhere"}, {"nowhere"}]
