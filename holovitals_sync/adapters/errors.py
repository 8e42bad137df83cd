"""Errors the adapters raise on top of the FHIR client's typed family."""

from __future__ import annotations

from holovitals_sync.fhir.errors import FhirError, PreconditionFailed


class AdapterError(FhirError):
    """Base of the adapter errors."""


class ConfigurationError(AdapterError):
    """The connection lacks something the vendor needs (a tenant id, a key, ...)."""


class WriteNotSupported(AdapterError):
    """The vendor takes no such write over FHIR; raised before any request."""

    def __init__(self, reason: str, *, resource_type: str, operation: str):
        super().__init__(reason)
        self.reason = reason
        self.resource_type = resource_type
        self.operation = operation


class RemoteChanged(PreconditionFailed):
    """The EHR's version moved on (412, or Oracle Health's 409): run conflict detection."""
