"""Records from the sandbox's deterministic data generator (the same the sandbox serves)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from holovitals_sync.models import TransformKind
from holovitals_sync.sandbox.data import generate_patient
from holovitals_sync.services.transformation import RuleBook, RuleSpec, compile_rules

# Three patients: between them every resource type the sandbox serves appears.
_PATIENT = [r for index in (1, 2, 3) for r in generate_patient(1234, index)]


def sample(resource_type: str, code: str | None = None) -> dict[str, Any]:
    """A deep copy of the first generated resource of a type (and LOINC code)."""
    for resource in _PATIENT:
        if resource["resourceType"] != resource_type:
            continue
        if code is None or resource["code"]["coding"][0]["code"] == code:
            return copy.deepcopy(resource)
    raise LookupError(resource_type)


def book(*rules: tuple[TransformKind | str, dict[str, Any]], rtype: str = "*") -> RuleBook:
    """Compile rules given as (kind, params), ids 1, 2, 3... in that order."""
    return compile_rules(
        RuleSpec(i, TransformKind(kind), params, rtype) for i, (kind, params) in enumerate(rules, 1)
    )


@pytest.fixture
def patient_records() -> list[dict[str, Any]]:
    return copy.deepcopy(_PATIENT)
