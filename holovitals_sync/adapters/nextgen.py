"""NextGen: two products behind one vendor. Enterprise supports `_lastUpdated` and declares
`no-version`; Office has no `_lastUpdated` and offers Group export. Both read-only."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from holovitals_sync.adapters.base import EHRAdapter
from holovitals_sync.adapters.errors import ConfigurationError
from holovitals_sync.adapters.profile import VendorProfile
from holovitals_sync.models.enums import AuthMethod

PROFILE = VendorProfile(
    name="nextgen",
    display_name="NextGen Enterprise",
    base_url_template="https://fhir.nextgen.com/nge/prod/fhir-api-r4/fhir/R4",
    admin_fields=("base_url", "client_id", "client_secret or private_key", "product"),
    auth_methods=(AuthMethod.CLIENT_SECRET_BASIC, AuthMethod.SMART_BACKEND),
    writes={},
    versioning="none",
    sources={
        "base_url_template": "N1",
        "admin_fields": "N1",
        "auth_methods": "N1",
        "scope_styles": "N1",
        "writes": "N1,N2",
        "last_updated_types": "N1",
        "versioning": "N1",
    },
)

OFFICE_PROFILE = replace(
    PROFILE,
    name="nextgen_office",
    display_name="NextGen Office",
    base_url_template="https://fhir.meditouchehr.com/api/fhir/r4",
    admin_fields=("base_url", "client_id", "private_key or client_secret", "group_id"),
    auth_methods=(AuthMethod.SMART_BACKEND, AuthMethod.CLIENT_SECRET_BASIC),
    export_levels=("group",),
    last_updated_types=frozenset(),
    versioning="if-match-412",
    sources={**PROFILE.sources, "export_levels": "N3", "versioning": "default"},
)

PRODUCTS = {"enterprise": PROFILE, "office": OFFICE_PROFILE}


class NextGenAdapter(EHRAdapter):
    """NextGen: `vendor_params["product"]` ("enterprise", the default, or "office") picks
    the profile; that choice is the one thing data alone cannot make."""

    PROFILE = PROFILE

    def vendor_profile(self) -> VendorProfile:
        """The product's profile."""
        return self.known_profile(self.spec.vendor_params)

    @classmethod
    def known_profile(cls, vendor_params: dict[str, Any]) -> VendorProfile:
        """The profile of the product `vendor_params["product"]` names."""
        product = vendor_params.get("product", "enterprise")
        try:
            return PRODUCTS[product]
        except KeyError:
            raise ConfigurationError(
                f"NextGen product must be one of {', '.join(PRODUCTS)}"
            ) from None
