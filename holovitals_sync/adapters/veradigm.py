"""Veradigm (Allscripts): per-tenant base URL, private_key_jwt with a registered JWKS,
Group export for system apps, read-only FHIR (writes go through the Unity API), no
versioning."""

from __future__ import annotations

from holovitals_sync.adapters.base import EHRAdapter
from holovitals_sync.adapters.profile import VendorProfile
from holovitals_sync.models.enums import AuthMethod

PROFILE = VendorProfile(
    name="veradigm",
    display_name="Veradigm (Allscripts)",
    base_url_template="https://{host}/fhirroute/fhir/{tenant_id}",
    admin_fields=("base_url", "client_id", "private_key", "group_id"),
    auth_methods=(AuthMethod.SMART_BACKEND,),
    jwks_url_required=True,
    writes={},
    export_levels=("group",),
    last_updated_types=frozenset(),
    versioning="none",
    sources={
        "base_url_template": "V1",
        "admin_fields": "V1,V3",
        "auth_methods": "V3",
        "jwks_url_required": "V3",
        "scope_styles": "V1",
        "writes": "V2",
        "export_levels": "V1",
        "last_updated_types": "V1",
        "versioning": "V1",
    },
)


class VeradigmAdapter(EHRAdapter):
    """Veradigm: read-only; every write is refused up front by the profile."""

    PROFILE = PROFILE
