"""Vendor profiles: the knobs by which the sandbox imitates one EHR vendor's quirks.

Only "generic" (standard FHIR behaviour) exists now; vendor modes add entries to PROFILES
and the rest of the sandbox reads the fields, so no handler hard-codes a vendor.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VendorProfile:
    name: str
    max_page_size: int | None = None  # None = SandboxConfig.max_page_size
    default_page_size: int | None = None
    # resource type -> search must carry at least one of these params (else 400)
    required_search_params: dict[str, tuple[str, ...]] = field(default_factory=dict)
    stale_version_status: int = 412  # Cerner answers 409
    last_updated_types: frozenset[str] | None = None  # None = every type supports it
    supports_versioning: bool = True  # False: If-Match ignored, no ETag


PROFILES: dict[str, VendorProfile] = {
    "generic": VendorProfile(name="generic"),
}


def profile_for(vendor: str) -> VendorProfile:
    try:
        return PROFILES[vendor]
    except KeyError:
        raise ValueError(f"unknown sandbox vendor {vendor!r}; known: {sorted(PROFILES)}") from None
