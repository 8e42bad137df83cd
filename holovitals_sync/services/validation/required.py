"""Required elements per resource type, following the US Core minimum.

A choice element (`medication[x]`, `occurrence[x]`) is satisfied by any of its typed
forms. Types not listed have no extra requirement beyond the structural model.
"""

from __future__ import annotations

from typing import Any

from .issues import Layer, ValidationIssue, identity

REQUIRED: dict[str, tuple[str, ...]] = {
    "Patient": ("identifier", "name", "gender"),
    "Observation": ("status", "code", "subject"),
    "Condition": ("subject", "code"),
    "MedicationRequest": ("status", "intent", "medication[x]", "subject"),
    "AllergyIntolerance": ("patient",),
    "Immunization": ("status", "vaccineCode", "patient", "occurrence[x]"),
    "Encounter": ("status", "class", "subject"),
    "DiagnosticReport": ("status", "code", "subject"),
    "Procedure": ("status", "code", "subject"),
}


def _present(resource: dict[str, Any], element: str) -> bool:
    if element.endswith("[x]"):
        stem = element[:-3]
        return any(
            k.startswith(stem) and k[len(stem) :][:1].isupper() and _filled(v)
            for k, v in resource.items()
        )
    return _filled(resource.get(element))


def _filled(value: Any) -> bool:
    # FHIR forbids empty strings, arrays and objects: they count as absent.
    return value is not None and value != "" and value != [] and value != {}


def check_required(resource: Any) -> list[ValidationIssue]:
    """An issue for each required element the resource lacks."""
    if type(resource) is dict and type(rtype := resource.get("resourceType")) is str:
        # The common case, every element there: no identity or issue list built.
        for element in REQUIRED.get(rtype, ()):
            if not _present(resource, element):
                break
        else:
            return []
    rtype, rid = identity(resource)
    needed = REQUIRED.get(rtype, ())
    if not isinstance(resource, dict):
        return [ValidationIssue(rtype, rid, None, "resource is not a JSON object", Layer.REQUIRED)]
    return [
        ValidationIssue(
            rtype, rid, element, "required element is missing (US Core)", Layer.REQUIRED
        )
        for element in needed
        if not _present(resource, element)
    ]
