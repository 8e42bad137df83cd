"""Severity from the rules table."""

from __future__ import annotations

import pytest

from holovitals_sync.models import Severity
from holovitals_sync.services.conflicts import Rule, severity_of

LAB = {"category": [{"coding": [{"code": "laboratory"}]}]}
VITALS = {"category": [{"coding": [{"code": "vital-signs"}]}]}


@pytest.mark.parametrize(
    ("rtype", "path", "body", "expected"),
    [
        ("MedicationRequest", "dosageInstruction[0].doseAndRate[0].doseQuantity.value", {}, "high"),
        ("MedicationRequest", "dosageInstruction[0].timing.repeat.frequency", {}, "high"),
        ("MedicationRequest", "dosageInstruction", {}, "high"),  # an ancestor of the dose
        ("MedicationRequest", "dosageInstruction[0].text", {}, "low"),
        ("MedicationRequest", "note", {}, "low"),
        ("AllergyIntolerance", "reaction[0].manifestation", {}, "high"),
        ("AllergyIntolerance", "code.coding[0]", {}, "high"),
        ("Condition", "clinicalStatus.coding[0].code", {}, "high"),
        ("Observation", "valueQuantity.value", LAB, "high"),
        ("Observation", "component[1].valueQuantity.value", LAB, "high"),
        ("Observation", "valueQuantity.value", VITALS, "low"),
        ("Patient", "birthDate", {}, "medium"),
        ("Patient", "name[0].family", {}, "medium"),
        ("Patient", "telecom[+0].use", {}, "medium"),
        ("Patient", "maritalStatus", {}, "low"),
    ],
)
def test_rules(rtype, path, body, expected):
    assert severity_of(rtype, [path], body) is Severity(expected)


def test_highest_over_paths():
    paths = ["maritalStatus", "gender"]
    assert severity_of("Patient", paths) is Severity.MEDIUM


def test_rules_are_data():
    rules = [Rule("Patient", "maritalStatus", Severity.HIGH)]
    assert severity_of("Patient", ["maritalStatus"], rules=rules) is Severity.HIGH
