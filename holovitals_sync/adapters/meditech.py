"""MEDITECH Expanse (Greenfield): Group and Patient export, `$everything`, no
`_lastUpdated`, writes only for Communication and QuestionnaireResponse."""

from __future__ import annotations

from holovitals_sync.adapters.base import EHRAdapter
from holovitals_sync.adapters.profile import VendorProfile, both, create_only
from holovitals_sync.models.enums import AuthMethod

PROFILE = VendorProfile(
    name="meditech",
    display_name="MEDITECH Expanse",
    base_url_template="https://greenfield-prod-apis.meditech.com/v2/uscore/STU6",
    admin_fields=("base_url", "client_id", "client_secret or private_key", "group_id"),
    auth_methods=(AuthMethod.CLIENT_SECRET_BASIC, AuthMethod.SMART_BACKEND),
    writes={**create_only("Communication"), **both("QuestionnaireResponse")},
    export_levels=("group", "patient"),
    patient_everything=True,
    last_updated_types=frozenset(),
    notification="hl7v2",
    sources={
        "base_url_template": "M1",
        "admin_fields": "M1",
        "auth_methods": "M1",
        "scope_styles": "M1",
        "writes": "M1",
        "export_levels": "M1",
        "patient_everything": "M1",
        "last_updated_types": "M1",
        "notification": "M1",
    },
)


class MeditechAdapter(EHRAdapter):
    """MEDITECH: per-patient re-query runs through `$everything` (profile flag)."""

    PROFILE = PROFILE
