"""Oracle Health (Cerner Millennium): tenant in the path, `patient` or `_id` on most
searches, ids repeated across pages, 409 on a stale `If-Match`, one Group export at a time."""

from __future__ import annotations

from holovitals_sync.adapters.base import EHRAdapter
from holovitals_sync.adapters.profile import (
    CLINICAL_TYPES,
    VendorProfile,
    both,
    create_only,
)
from holovitals_sync.models.enums import AuthMethod

PROFILE = VendorProfile(
    name="oracle_health",
    display_name="Oracle Health (Cerner)",
    base_url_template="https://fhir-ehr.cerner.com/r4/{tenant_id}",
    admin_fields=("tenant_id", "client_id", "client_secret or private_key", "group_id"),
    auth_methods=(AuthMethod.CLIENT_SECRET_BASIC, AuthMethod.SMART_BACKEND),
    writes={
        **both(
            "AllergyIntolerance",
            "Condition",
            "Immunization",
            "DocumentReference",
            "FamilyMemberHistory",
            "Observation",
        ),
        **create_only("Patient", "Encounter", "MedicationRequest"),
    },
    # Patient takes no `patient`/`subject`: one of its own listed parameters is required.
    required_search_params={
        "Patient": (
            "_id",
            "identifier",
            "name",
            "family",
            "given",
            "birthdate",
            "phone",
            "email",
            "address-postalcode",
        ),
        **{t: ("_id", "patient", "subject") for t in CLINICAL_TYPES if t != "Patient"},
    },
    max_page_size=200,
    export_levels=("group",),
    last_updated_types=frozenset(
        {
            "Observation",
            "Condition",
            "Encounter",
            "MedicationRequest",
            "AllergyIntolerance",
            "Immunization",
            "DiagnosticReport",
        }
    ),
    versioning="if-match-409",
    notification="none",
    dedupe_ids=True,
    sources={
        "base_url_template": "C1",
        "admin_fields": "C1,C3",
        "auth_methods": "C2",
        "signing_algs": "C2",
        "scope_styles": "C2",
        "writes": "C5",
        "required_search_params": "C1,C5",
        "max_page_size": "C1",
        "export_levels": "C3",
        "last_updated_types": "C5",
        "versioning": "C1,C5",
        "notification": "C1",
        "dedupe_ids": "C1",
    },
)


class OracleHealthAdapter(EHRAdapter):
    """Oracle Health: de-duplication, 409-as-stale and the tenant URL are profile data."""

    PROFILE = PROFILE
