"""Validation layers on generated sandbox records and deliberately broken ones."""

from __future__ import annotations

import pytest

from holovitals_sync.models import ErrorSeverity, ValidationMode
from holovitals_sync.services.validation import (
    CustomValidator,
    Layer,
    check_references,
    check_required,
    validate_batch,
    validate_structure,
)

from .conftest import sample

TYPES = [
    "Patient",
    "Observation",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
    "Encounter",
    "DiagnosticReport",
]


def test_generated_records_pass_every_layer(patient_records: list[dict]) -> None:
    out = validate_batch(patient_records, mode=ValidationMode.STRICT)
    assert out.errors == [] and len(out.valid) == len(patient_records)
    assert {r["resourceType"] for r in out.valid} >= set(TYPES)


@pytest.mark.parametrize(
    ("rtype", "element"),
    [
        ("Patient", "identifier"),
        ("Patient", "name"),
        ("Patient", "gender"),
        ("Observation", "status"),
        ("Observation", "code"),
        ("Observation", "subject"),
        ("Condition", "code"),
        ("MedicationRequest", "intent"),
        ("MedicationRequest", "medicationCodeableConcept"),
        ("AllergyIntolerance", "patient"),
        ("Immunization", "vaccineCode"),
        ("Immunization", "occurrenceDateTime"),
        ("Encounter", "class"),
        ("DiagnosticReport", "status"),
    ],
)
def test_missing_us_core_element(rtype: str, element: str) -> None:
    resource = sample(rtype)
    del resource[element]
    issues = check_required(resource)
    expected = (
        element
        if not element.startswith(("medication", "occurrence"))
        else ("medication[x]" if element.startswith("medication") else "occurrence[x]")
    )
    assert [(i.path, i.layer) for i in issues] == [(expected, Layer.REQUIRED)]
    assert issues[0].resource_id == resource["id"]


def test_empty_values_count_as_missing() -> None:
    patient = sample("Patient") | {"name": [], "gender": ""}
    assert {i.path for i in check_required(patient)} == {"name", "gender"}


def test_structural_errors_have_paths_and_never_echo_values() -> None:
    obs = sample("Observation")
    obs["status"] = 12
    obs["valueQuantity"]["value"] = "SECRET-123"
    obs["secretField"] = "SECRET-456"
    issues = validate_structure(obs)
    paths = {i.path for i in issues}
    assert {"status", "valueQuantity.value", "secretField"} <= paths
    assert all("SECRET" not in i.message and i.layer is Layer.STRUCTURE for i in issues)


def test_structural_unknown_type_and_garbage() -> None:
    assert validate_structure({"resourceType": "Nonsense"})[0].path == "resourceType"
    assert validate_structure("not a resource")[0].resource_type == "Unknown"
    assert validate_structure(sample("Immunization")) == []


def test_reference_integrity() -> None:
    obs = sample("Observation")
    assert check_references(obs, known=None, in_batch={"pt-00001"}) == []
    assert check_references(obs, known={"pt-00001"}, in_batch=()) == []
    assert check_references(obs, known=lambda pid: pid == "pt-00001", in_batch=()) == []
    issues = check_references(obs, known={"other"}, in_batch=())
    assert [(i.path, i.layer) for i in issues] == [("subject.reference", Layer.REFERENCE)]
    assert "pt-00001" not in issues[0].message
    allergy = sample("AllergyIntolerance")
    allergy["patient"] = {"display": "no reference"}
    assert check_references(allergy, known=None, in_batch=())[0].path == "patient.reference"
    group = obs | {"subject": {"reference": "Group/g1"}}
    assert check_references(group, known=None, in_batch=()) == []
    absolute = obs | {"subject": {"reference": "https://ehr/fhir/Patient/pt-00001/_history/2"}}
    assert check_references(absolute, known={"pt-00001"}, in_batch=()) == []


def test_custom_rules_range_pattern_fhirpath() -> None:
    custom = CustomValidator(
        [
            {
                "check": "range",
                "name": "heart rate",
                "resource_type": "Observation",
                "path": "valueQuantity.value",
                "min": 20,
                "max": 250,
            },
            {
                "check": "pattern",
                "name": "mrn",
                "resource_type": "Patient",
                "path": "identifier[*].value",
                "pattern": r"MRN\d{7}",
            },
            {
                "check": "fhirpath",
                "name": "final only",
                "resource_type": "Observation",
                "expression": "status = 'final'",
                "severity": "warning",
            },
        ]
    )
    obs, patient = sample("Observation"), sample("Patient")
    assert custom.check(obs) == [] and custom.check(patient) == []
    obs["valueQuantity"]["value"], obs["status"] = 999, "preliminary"
    patient["identifier"][0]["value"] = "12345"
    issues = custom.check(obs) + custom.check(patient)
    assert [(i.path, i.severity) for i in issues] == [
        ("valueQuantity.value", ErrorSeverity.ERROR),
        (None, ErrorSeverity.WARNING),
        ("identifier[*].value", ErrorSeverity.ERROR),
    ]
    assert all("999" not in i.message and "12345" not in i.message for i in issues)


def test_custom_rule_refused_when_badly_configured() -> None:
    from pydantic import ValidationError

    for bad in (
        {"check": "fhirpath", "name": "x", "expression": "status = ("},
        {"check": "pattern", "name": "x", "path": "id", "pattern": "("},
        {"check": "range", "name": "x", "path": "a..b"},
    ):
        with pytest.raises(ValidationError):
            CustomValidator([bad])


def _broken_batch(records: list[dict]) -> list[dict]:
    batch = [r for r in records if r["resourceType"] in ("Patient", "Observation")][:6]
    batch[1] = batch[1] | {"status": None}  # Observation without status
    batch[2] = batch[2] | {"subject": {"reference": "Patient/ghost"}}
    return batch


def test_strict_drops_invalid_records(patient_records: list[dict]) -> None:
    batch = _broken_batch(patient_records)
    out = validate_batch(batch, mode=ValidationMode.STRICT, structural=False)
    assert len(out.valid) == 4 and out.flagged == [] and out.dropped == batch[1:3]
    assert out.to_store == out.valid
    assert {(e.resource_id, e.layer) for e in out.errors} == {
        (batch[1]["id"], Layer.REQUIRED),
        (batch[2]["id"], Layer.REFERENCE),
    }


def test_lenient_stores_and_flags(patient_records: list[dict]) -> None:
    batch = _broken_batch(patient_records)
    out = validate_batch(batch, mode=ValidationMode.LENIENT)
    assert out.flagged == batch[1:3] and out.dropped == [] and len(out.to_store) == 6


def test_warnings_do_not_invalidate(patient_records: list[dict]) -> None:
    custom = CustomValidator(
        [{"check": "fhirpath", "name": "always", "severity": "warning", "expression": "false"}]
    )
    out = validate_batch(
        patient_records[:3], mode=ValidationMode.STRICT, structural=False, custom=custom
    )
    assert len(out.valid) == 3 and len(out.errors) == 3
