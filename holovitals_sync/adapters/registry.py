"""Vendor name -> adapter class; `adapter_for(spec)` is the engine's entry point."""

from __future__ import annotations

from typing import Any

from holovitals_sync.adapters.athenahealth import AthenahealthAdapter
from holovitals_sync.adapters.base import EHRAdapter
from holovitals_sync.adapters.eclinicalworks import EClinicalWorksAdapter
from holovitals_sync.adapters.epic import EpicAdapter
from holovitals_sync.adapters.errors import ConfigurationError
from holovitals_sync.adapters.generic import GenericAdapter
from holovitals_sync.adapters.meditech import MeditechAdapter
from holovitals_sync.adapters.nextgen import OFFICE_PROFILE, NextGenAdapter
from holovitals_sync.adapters.oracle_health import OracleHealthAdapter
from holovitals_sync.adapters.profile import VendorProfile
from holovitals_sync.adapters.types import ConnectionSpec
from holovitals_sync.adapters.veradigm import VeradigmAdapter

ADAPTERS: dict[str, type[EHRAdapter]] = {
    "epic": EpicAdapter,
    "oracle_health": OracleHealthAdapter,
    "meditech": MeditechAdapter,
    "veradigm": VeradigmAdapter,
    "nextgen": NextGenAdapter,
    "athenahealth": AthenahealthAdapter,
    "eclinicalworks": EClinicalWorksAdapter,
    "generic": GenericAdapter,
}

# Every documented profile, NextGen's two products apart (docs and the sandbox use these).
PROFILES: dict[str, VendorProfile] = {
    **{name: cls.PROFILE for name, cls in ADAPTERS.items()},
    OFFICE_PROFILE.name: OFFICE_PROFILE,
}


def adapter_for(spec: ConnectionSpec) -> EHRAdapter:
    """The adapter of the connection's vendor.

    Args:
        spec: The connection.

    Returns:
        An unopened adapter (no request sent).

    Raises:
        ConfigurationError: Unknown vendor.
    """
    try:
        cls = ADAPTERS[str(spec.vendor)]
    except KeyError:
        raise ConfigurationError(f"no adapter for vendor {spec.vendor!r}") from None
    return cls(spec)


def known_profile(vendor: str, vendor_params: dict[str, Any]) -> VendorProfile | None:
    """The vendor's profile as known without a request (None: the server declares it).

    Raises:
        ConfigurationError: Unknown vendor, or settings that pick no profile.
    """
    try:
        cls = ADAPTERS[str(vendor)]
    except KeyError:
        raise ConfigurationError(f"no adapter for vendor {vendor!r}") from None
    return cls.known_profile(vendor_params)
