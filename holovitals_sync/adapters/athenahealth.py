"""athenahealth: one global base URL, `ah-practice` on every search, cursor paging, a
token endpoint limited to 50 requests/min, FHIR Subscriptions signed with X-Hub-Signature."""

from __future__ import annotations

from holovitals_sync.adapters.base import EHRAdapter
from holovitals_sync.adapters.profile import CLINICAL_TYPES, VendorProfile, create_only
from holovitals_sync.models.enums import AuthMethod

PROFILE = VendorProfile(
    name="athenahealth",
    display_name="athenahealth",
    base_url_template="https://api.platform.athenahealth.com/fhir/r4",
    admin_fields=("practice_id", "client_id", "client_secret or private_key"),
    auth_methods=(AuthMethod.CLIENT_SECRET_BASIC, AuthMethod.SMART_BACKEND),
    search_params={"ah-practice": "Organization/a-1.Practice-{practice_id}"},
    writes=create_only("QuestionnaireResponse"),
    export_levels=("group",),
    export_group_template="a-1.c-{practice_id}",
    # The vendor documents bulk export as not meant for routine sync [A4].
    export_for_full_sync=False,
    last_updated_types=frozenset(t for t in CLINICAL_TYPES if t != "Patient"),
    notification="subscriptions",
    token_requests_per_minute=50,
    paging="cursor",
    sources={
        "base_url_template": "A2",
        "admin_fields": "A1",
        "auth_methods": "A1",
        "scope_styles": "A1",
        "search_params": "A2",
        "writes": "A2",
        "export_levels": "A3",
        "export_for_full_sync": "A4",
        "last_updated_types": "A2",
        "notification": "A5",
        "token_requests_per_minute": "A1",
        "paging": "A2",
    },
)


class AthenahealthAdapter(EHRAdapter):
    """athenahealth: practice parameter, token throttle and cursor paging are profile data."""

    PROFILE = PROFILE
