"""One validation failure: which resource, where, what — never the offending value."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ...models import ErrorSeverity


class Layer(StrEnum):
    STRUCTURE = "structure"  # FHIR R4 datatypes and cardinalities (fhir.resources)
    REQUIRED = "required"  # US Core minimum elements
    REFERENCE = "reference"  # subject/patient names a known patient
    CUSTOM = "custom"  # connection-specific ranges, patterns, FHIRPath assertions


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    resource_type: str
    resource_id: str | None
    path: str | None
    message: str
    layer: Layer
    severity: ErrorSeverity = ErrorSeverity.ERROR

    @property
    def blocking(self) -> bool:
        """Errors make a record invalid; warnings are recorded only."""
        return self.severity is ErrorSeverity.ERROR


def identity(resource: Any) -> tuple[str, str | None]:
    """(resourceType, id) of a resource, tolerating anything that is not one."""
    if not isinstance(resource, dict):
        return "Unknown", None
    rtype, rid = resource.get("resourceType"), resource.get("id")
    return (
        rtype if isinstance(rtype, str) and rtype else "Unknown",
        rid if isinstance(rid, str) else None,
    )
