"""EHR vendor adapters on the FHIR client: one module per vendor, a registry by name.

Public interface (see `base` for the contract the sync engine relies on).
"""

from holovitals_sync.adapters.base import EHRAdapter
from holovitals_sync.adapters.errors import (
    AdapterError,
    ConfigurationError,
    RemoteChanged,
    WriteNotSupported,
)
from holovitals_sync.adapters.hashing import content_hash
from holovitals_sync.adapters.jwks import connection_jwks
from holovitals_sync.adapters.profile import VendorProfile
from holovitals_sync.adapters.registry import ADAPTERS, PROFILES, adapter_for, known_profile
from holovitals_sync.adapters.signatures import hub_signature, verify_hub_signature
from holovitals_sync.adapters.types import (
    Capabilities,
    ConnectionSpec,
    FetchedPage,
    StepResult,
    WriteOutcome,
)

__all__ = [
    "ADAPTERS",
    "PROFILES",
    "AdapterError",
    "Capabilities",
    "ConfigurationError",
    "ConnectionSpec",
    "EHRAdapter",
    "FetchedPage",
    "RemoteChanged",
    "StepResult",
    "VendorProfile",
    "WriteNotSupported",
    "WriteOutcome",
    "adapter_for",
    "connection_jwks",
    "content_hash",
    "hub_signature",
    "known_profile",
    "verify_hub_signature",
]
