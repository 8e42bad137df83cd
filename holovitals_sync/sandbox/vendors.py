"""Vendor profiles: the knobs by which the sandbox imitates one EHR vendor's quirks.

The vendor modes are derived from the adapters' profiles (`holovitals_sync.adapters`),
so the sandbox enforces exactly what the adapters are written against; the rest of the
sandbox reads these fields, so no handler hard-codes a vendor. `generic` is standard FHIR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from holovitals_sync.adapters.profile import VendorProfile as AdapterProfile

ALL_TOKEN_METHODS = frozenset({"private_key_jwt", "client_secret_basic", "client_secret_post"})
_METHOD_NAMES = {"smart_backend": "private_key_jwt", "client_secret_basic": "client_secret_basic",
                 "client_secret_post": "client_secret_post"}


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
    # Vendor modes (all default to standard FHIR behaviour):
    display_name: str = "Generic FHIR R4"
    token_auth_methods: frozenset[str] = ALL_TOKEN_METHODS
    signing_algs: tuple[str, ...] = ("RS384", "ES384")
    jwks_url_required: bool = False  # Epic, eCW: a registered JWKS URL, no uploaded key
    always_params: dict[str, str] = field(default_factory=dict)  # name -> required prefix
    max_search_matches: int | None = None  # Epic: more matches fail
    export_levels: frozenset[str] | None = None  # None = system, patient and group
    export_one_at_a_time: bool = False
    patient_everything: bool = True  # Patient/$everything offered
    writes: dict[str, frozenset[str]] | None = None  # None = every write incl. delete
    repeat_ids_across_pages: bool = False  # Cerner: an id may show up on two pages
    cursor_paging: bool = False  # athenahealth: next pages via a `cursor` parameter
    notification: str = "any"  # subscriptions | hl7v2 | none | unknown | any
    notification_signature: str | None = None  # e.g. "hub" (athenahealth)

    def allows_write(self, rtype: str, op: str) -> bool:
        return self.writes is None or op in self.writes.get(rtype, frozenset())


def _prefix(template: str) -> str:
    # "Organization/a-1.Practice-{practice_id}" -> values must start with the fixed part.
    return template.split("{", 1)[0]


def from_adapter_profile(p: AdapterProfile) -> VendorProfile:
    """Translate an adapter `VendorProfile` into what the sandbox enforces."""
    return VendorProfile(
        name=p.name, display_name=p.display_name,
        max_page_size=p.max_page_size,
        required_search_params=dict(p.required_search_params),
        stale_version_status=409 if p.versioning == "if-match-409" else 412,
        last_updated_types=p.last_updated_types,
        supports_versioning=p.versioning != "none",
        token_auth_methods=frozenset(_METHOD_NAMES[m] for m in p.auth_methods
                                     if m in _METHOD_NAMES),
        signing_algs=tuple(p.signing_algs),
        jwks_url_required=p.jwks_url_required,
        always_params={k: _prefix(v) for k, v in p.search_params.items()},
        max_search_matches=p.max_search_matches,
        export_levels=frozenset(p.export_levels),
        # Oracle Health runs one export per client and tenant at a time [C3].
        export_one_at_a_time=p.name == "oracle_health",
        patient_everything=p.patient_everything,
        writes=dict(p.writes),
        repeat_ids_across_pages=p.dedupe_ids,
        cursor_paging=p.paging == "cursor",
        notification=p.notification,
        notification_signature="hub" if p.notification == "subscriptions" else None,
    )


def _vendor_profiles() -> dict[str, VendorProfile]:
    from holovitals_sync.adapters.registry import PROFILES as ADAPTER_PROFILES

    return {name: from_adapter_profile(p) for name, p in ADAPTER_PROFILES.items()
            if name != "generic"}


PROFILES: dict[str, VendorProfile] = {
    "generic": VendorProfile(name="generic"),
    **_vendor_profiles(),
}


def profile_for(vendor: str) -> VendorProfile:
    try:
        return PROFILES[vendor]
    except KeyError:
        raise ValueError(f"unknown sandbox vendor {vendor!r}; known: {sorted(PROFILES)}") from None
