"""eClinicalWorks: practice code in the path, RS384 only with a registered JWKS URL,
250 requests/min per practice (token calls included), no `_lastUpdated` but Group
`$export` with `_since`, which is the incremental path."""

from __future__ import annotations

from holovitals_sync.adapters.base import EHRAdapter
from holovitals_sync.adapters.profile import VendorProfile, create_only
from holovitals_sync.models.enums import AuthMethod

PROFILE = VendorProfile(
    name="eclinicalworks",
    display_name="eClinicalWorks",
    base_url_template="https://fhir4.eclinicalworks.com/fhir/r4/{practice_code}",
    admin_fields=("practice_code", "client_id", "private_key", "group_id"),
    auth_methods=(AuthMethod.SMART_BACKEND,),
    signing_algs=("RS384",),
    jwks_url_required=True,
    writes=create_only("QuestionnaireResponse"),
    export_levels=("group",),
    export_since=True,
    last_updated_types=frozenset(),
    incremental_fallback="bulk_since",
    notification="none",
    requests_per_minute=250,
    sources={
        "base_url_template": "W1",
        "admin_fields": "W1,W2",
        "auth_methods": "W2,W3",
        "signing_algs": "W2,W3",
        "jwks_url_required": "W3",
        "scope_styles": "W1",
        "writes": "W1",
        "export_levels": "W2",
        "export_since": "W2",
        "last_updated_types": "W1",
        "incremental_fallback": "W2",
        "notification": "W1",
        "requests_per_minute": "W2",
    },
)


class EClinicalWorksAdapter(EHRAdapter):
    """eClinicalWorks: the shared per-base-URL limiter and Bulk `_since` come from data."""

    PROFILE = PROFILE
