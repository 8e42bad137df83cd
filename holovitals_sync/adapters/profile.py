"""`VendorProfile`: everything that differs between EHR vendors, as data.

Each field mirrors a vendor fact; `sources` maps a field name to the source code(s) it
comes from ("E1", "C5", ..., listed in `docs/vendor-sources.md`). A field left at its
default takes the safe standard behaviour and its source is "default" (the support matrix
says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from holovitals_sync.models.enums import AuthMethod

ScopeStyle = Literal["v1", "v2"]
ExportLevel = Literal["system", "patient", "group"]
WriteOp = Literal["create", "update", "delete"]
Versioning = Literal["if-match-412", "if-match-409", "none"]
Notification = Literal["subscriptions", "hl7v2", "none", "unknown"]
Paging = Literal["links", "cursor"]
Fallback = Literal["patient_requery", "bulk_since"]

# What the sandbox (and most US Core servers) serve; profiles narrow it where documented.
CLINICAL_TYPES: tuple[str, ...] = (
    "Patient",
    "Encounter",
    "Observation",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
    "DiagnosticReport",
)
STANDARD_ALGS: tuple[str, ...] = ("RS384", "ES384")
DEFAULT_SOURCE = "default"


@dataclass(frozen=True)
class VendorProfile:
    """The documented behaviour of one vendor's FHIR R4 API.

    Attributes:
        name: Registry key (the `Vendor` enum value).
        display_name: Shown in the matrix and the UI.
        base_url_template: e.g. `https://fhir-ehr.cerner.com/r4/{tenant_id}`.
        admin_fields: What the administrator fills in besides client id and secret/key.
        auth_methods: Accepted token-endpoint authentications.
        signing_algs: Accepted client-assertion algorithms.
        jwks_url_required: The vendor registers a JWKS URL, not an uploaded key.
        scope_styles: SMART scope syntaxes accepted ("v2" preferred when offered).
        token_params: Extra form fields of the token request (templated with vendor_params).
        search_params: Extra query parameters on every search (templated with vendor_params).
        resource_types: Types readable and searchable over FHIR.
        writes: Resource type -> write operations the vendor takes over FHIR (create,
            update, delete).
        required_search_params: Type -> one of these must be present on a search.
        max_page_size: Highest `_count` honoured (None: unknown, we ask `default_page_size`).
        default_page_size: `_count` we send. Large pages pay off on servers whose cost is
            per page (many re-run the query for each); a server that caps or refuses it
            silently is detected and remembered per connection (`fetch.PageSizer`).
        max_search_matches: A search matching more fails (Epic: 100).
        too_many_error: Marker of that failure in the OperationOutcome (Epic: "4127"; the
            issue code "too-costly" counts too).
        split_by_date: Type -> date search parameter: a search failing with
            `too_many_error` is re-run in date windows (`ge`/`lt`), halved until each fits.
        export_levels: Bulk `$export` levels offered.
        export_group_template: Group id template for group-level export.
        export_since: `_since` honoured on `$export`.
        export_for_full_sync: Use `$export` for full syncs (False where the vendor says not to).
        patient_everything: `Patient/$everything` offered.
        last_updated_types: Types searchable by `_lastUpdated` (None: every type).
        history_types: Types whose type-level `_history?_since` lists deletes: an
            incremental sync reads them there (elsewhere the id sweep finds deletes).
        incremental_fallback: What replaces `_lastUpdated` where it is missing.
        versioning: If-Match with 412, If-Match with 409 (Oracle Health), or none.
        notification: How the vendor announces changes.
        requests_per_minute: Client-side limit per base URL (token calls counted).
        token_requests_per_minute: Limit of the token endpoint alone.
        dedupe_ids: Pages may repeat an id: de-duplicate within a run.
        paging: Bundle `next` links, or a `cursor` parameter (athenahealth).
        sources: Field name -> source codes from `docs/vendor-sources.md`.
    """

    name: str
    display_name: str
    base_url_template: str
    admin_fields: tuple[str, ...] = ("base_url",)
    auth_methods: tuple[AuthMethod, ...] = (AuthMethod.SMART_BACKEND,)
    signing_algs: tuple[str, ...] = STANDARD_ALGS
    jwks_url_required: bool = False
    scope_styles: tuple[ScopeStyle, ...] = ("v1", "v2")
    token_params: Mapping[str, str] = field(default_factory=dict)
    search_params: Mapping[str, str] = field(default_factory=dict)
    resource_types: tuple[str, ...] = CLINICAL_TYPES
    writes: Mapping[str, frozenset[WriteOp]] = field(default_factory=dict)
    required_search_params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_page_size: int | None = None
    default_page_size: int = 1000
    max_search_matches: int | None = None
    too_many_error: str | None = None
    split_by_date: Mapping[str, str] = field(default_factory=dict)
    export_levels: tuple[ExportLevel, ...] = ()
    export_group_template: str = "{group_id}"
    export_since: bool = False
    export_for_full_sync: bool = True
    patient_everything: bool = False
    last_updated_types: frozenset[str] | None = None
    history_types: frozenset[str] = frozenset()
    incremental_fallback: Fallback = "patient_requery"
    versioning: Versioning = "if-match-412"
    notification: Notification = "unknown"
    requests_per_minute: float | None = None
    token_requests_per_minute: float | None = None
    dedupe_ids: bool = False
    paging: Paging = "links"
    sources: Mapping[str, str] = field(default_factory=dict)

    def source(self, field_name: str) -> str:
        """The source codes of a field, or "default" when the standard behaviour applies."""
        return self.sources.get(field_name, DEFAULT_SOURCE)

    def supports_last_updated(self, resource_type: str) -> bool:
        """True when `_lastUpdated` searches work on this type."""
        return self.last_updated_types is None or resource_type in self.last_updated_types

    def delete_detection(self, resource_type: str) -> str:
        """How deletes of a type are found: "history" (type-level `_history` in every
        incremental sync), "export" (the `deleted` files of a Bulk Data export `_since`,
        where incremental sync reads one; optional for servers, so the sweep stays),
        "notification" (the EHR's Subscriptions), or "sweep" (the nightly id sweep); a
        complete full sync finds them always."""
        if resource_type in self.history_types:
            return "history"
        if (
            self.incremental_fallback == "bulk_since"
            and self.export_levels
            and not self.supports_last_updated(resource_type)
        ):
            return "export + sweep"
        if self.notification == "subscriptions":
            return "notification + sweep"
        return "sweep"

    def write_ops(self, resource_type: str) -> frozenset[WriteOp]:
        """Write operations the vendor takes on a type (empty: read-only)."""
        return self.writes.get(resource_type, frozenset())

    def write_refusal(self, resource_type: str, op: WriteOp) -> str | None:
        """Why the vendor takes no `op` of the type over FHIR (with its sources), or None."""
        allowed = self.write_ops(resource_type)
        if op in allowed:
            return None
        reason = (
            f"{self.display_name} takes no FHIR writes of {resource_type}"
            if not allowed
            else f"{self.display_name} takes only "
            f"{'/'.join(sorted(allowed))} of {resource_type}, not {op}"
        )
        return f"{reason} [{self.source('writes')}]"

    @property
    def scope_style(self) -> ScopeStyle:
        """SMART v2 where the vendor accepts it, else v1."""
        return "v2" if "v2" in self.scope_styles else "v1"

    @property
    def full_sync_method(self) -> str:
        """ "export:<level>" or "search" (per patient where searches need `patient`)."""
        if self.export_levels and self.export_for_full_sync:
            return f"export:{self.export_levels[0]}"
        return "search:per-patient" if self.needs_patient_iteration else "search"

    @property
    def needs_patient_iteration(self) -> bool:
        """Clinical searches need a `patient` parameter, so we iterate patients."""
        return any(
            "patient" in params
            for rtype, params in self.required_search_params.items()
            if rtype != "Patient"
        )


def both(*types: str) -> dict[str, frozenset[WriteOp]]:
    """Types that take create and update."""
    return {t: frozenset({"create", "update"}) for t in types}


def create_only(*types: str) -> dict[str, frozenset[WriteOp]]:
    """Types that take create only."""
    return {t: frozenset({"create"}) for t in types}


def update_only(*types: str) -> dict[str, frozenset[WriteOp]]:
    """Types that take update only."""
    return {t: frozenset({"update"}) for t in types}
