"""Epic (fhir.epic.com): SMART Backend Services with RS384 and a registered JWKS URL,
Group-only `$export`, no `_lastUpdated`, searches that need `patient` and fail past 100
matches (error 4127)."""

from __future__ import annotations

from holovitals_sync.adapters.base import EHRAdapter
from holovitals_sync.adapters.profile import (
    CLINICAL_TYPES,
    VendorProfile,
    both,
    create_only,
    update_only,
)
from holovitals_sync.models.enums import AuthMethod

PROFILE = VendorProfile(
    name="epic",
    display_name="Epic",
    base_url_template="https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4",
    admin_fields=("base_url", "client_id", "private_key", "group_id"),
    auth_methods=(AuthMethod.SMART_BACKEND,),
    signing_algs=("RS384",),
    jwks_url_required=True,
    writes={
        **create_only(
            "AllergyIntolerance", "Condition", "Patient", "Communication", "QuestionnaireResponse"
        ),
        **both("Observation", "DocumentReference", "Procedure", "ServiceRequest", "BodyStructure"),
        **update_only("DiagnosticReport", "Task"),
    },
    # Patient needs demographics or an id; clinical searches need the patient.
    required_search_params={
        "Patient": ("_id", "identifier"),
        **{t: ("patient",) for t in CLINICAL_TYPES if t != "Patient"},
    },
    max_search_matches=100,
    default_page_size=100,  # no search may match more: larger pages ask for nothing more
    # Past 100 matches: re-run the search in date windows (clinical dates searchable).
    too_many_error="4127",
    split_by_date={"Observation": "date", "Encounter": "date", "DiagnosticReport": "date"},
    export_levels=("group",),
    last_updated_types=frozenset(),
    notification="hl7v2",
    sources={
        "base_url_template": "E1,E7",
        "admin_fields": "E1,E3",
        "auth_methods": "E2,E5",
        "signing_algs": "E2",
        "jwks_url_required": "E5",
        "scope_styles": "E1",
        "writes": "E1",
        "required_search_params": "E1",
        "max_search_matches": "E1",
        "too_many_error": "E1",
        "split_by_date": "E1",
        "export_levels": "E1,E3",
        "last_updated_types": "E1",
        "notification": "E1",
        "requests_per_minute": "E4",
    },
)


class EpicAdapter(EHRAdapter):
    """Epic: all behaviour is in the profile; patients come from the bulk Group because
    Epic refuses an open Patient search."""

    PROFILE = PROFILE
