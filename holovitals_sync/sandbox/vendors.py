"""Vendor profiles: the knobs by which the sandbox imitates one EHR vendor's quirks.

Each vendor mode is written out below as its own table, field by field from the vendors'
documents; the codes in the comments (E1, C5, A2, ...) are listed in
`docs/vendor-sources.md`. The tables are deliberately not derived from the adapters'
profiles: `tests/unit/test_vendor_tables.py` compares the two, so a wrong adapter profile
shows up as a disagreement instead of agreeing with itself.

Where a vendor publishes nothing ("unknown"), a mode takes the standard behaviour where the
standard prescribes one (no required search parameters, `If-Match` answered 412 [S4],
RS384/ES384 assertions [S1], a client secret sent with HTTP Basic as RFC 6749 requires
servers to accept) and leaves optional features off (`$export` levels,
`Patient/$everything`, FHIR notifications), so nothing can come to rely on them.

The rest of the sandbox reads these fields, so no handler hard-codes a vendor. `generic`
is standard FHIR with every optional feature on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_TOKEN_METHODS = frozenset({"private_key_jwt", "client_secret_basic", "client_secret_post"})


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
    # Type-level `_history` (with `_since`), where deletes show: no vendor documents it.
    type_history: bool = False
    # The CapabilityStatement lists types alphabetically, as many real servers do (then
    # Patient comes after AllergyIntolerance, Condition, Encounter, ...).
    alphabetical_types: bool = False

    def allows_write(self, rtype: str, op: str) -> bool:
        return self.writes is None or op in self.writes.get(rtype, frozenset())


# The clinical types the sandbox serves besides Patient (Group and QuestionnaireResponse
# are served too, but no vendor document restricts their searches).
CLINICAL = (
    "Encounter",
    "Observation",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
    "DiagnosticReport",
)
C = frozenset({"create"})
U = frozenset({"update"})
CU = frozenset({"create", "update"})
KEY = "private_key_jwt"
BASIC = "client_secret_basic"
STANDARD_ALGS = ("RS384", "ES384")  # S1


def _each(types: tuple[str, ...], params: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {t: params for t in types}


EPIC = VendorProfile(
    name="epic",
    display_name="Epic",
    token_auth_methods=frozenset({KEY}),  # E2,E5: private_key_jwt only
    signing_algs=("RS384",),  # E2
    jwks_url_required=True,  # E5: a JWKS URL; static key upload is being retired
    # E1: many searches need `patient`; a Patient search past 100 matches fails (4127), and
    # an open one over a health system's patients always does, so only a Patient search
    # by id works (demographic combinations are not modelled).
    required_search_params={"Patient": ("_id", "identifier"), **_each(CLINICAL, ("patient",))},
    max_search_matches=100,  # E1: error 4127
    max_page_size=None,  # unknown: no cap published
    stale_version_status=412,  # E1: versioning not declared, ETag unknown -> S4
    supports_versioning=True,  # unknown -> S4
    last_updated_types=frozenset(),  # E1: `_lastUpdated` on no resource
    export_levels=frozenset({"group"}),  # E1,E3: Group only
    export_one_at_a_time=False,  # unknown
    patient_everything=False,  # not offered in E1
    writes={  # E1
        "AllergyIntolerance": C,
        "Condition": C,
        "Patient": C,
        "Communication": C,
        "QuestionnaireResponse": C,
        "Observation": CU,
        "DocumentReference": CU,
        "Procedure": CU,
        "ServiceRequest": CU,
        "BodyStructure": CU,
        "DiagnosticReport": U,
        "Task": U,
    },
    repeat_ids_across_pages=False,  # unknown
    cursor_paging=False,  # unknown: standard Bundle links
    notification="hl7v2",  # none over FHIR, HL7v2 feeds per customer (notification row)
)

ORACLE_HEALTH = VendorProfile(
    name="oracle_health",
    display_name="Oracle Health (Cerner)",
    token_auth_methods=frozenset({BASIC, KEY}),  # C2: secret with HTTP Basic, or JWT
    signing_algs=("RS384", "ES384"),  # C2
    # C2: JWT clients pre-register their JWKS in System Account Management (not
    # necessarily as a URL).
    jwks_url_required=False,
    required_search_params={
        # C1 "`_id` or `patient`/`subject`" has no `patient` on Patient itself; C5
        # (base/individuals/patient.md) lists the parameters one of which is required.
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
        **_each(CLINICAL, ("_id", "patient", "subject")),  # C1: else 400
    },
    max_search_matches=None,  # none published
    # C1: Observation `_count` max 200 (default 50; other types differ, C5): the sandbox
    # has one cap and one default for all types, so the cap is Observation's and the
    # default the sandbox's own.
    max_page_size=200,
    stale_version_status=409,  # C1,C5: a stale If-Match answers 409, not 412
    supports_versioning=True,  # C1,C5: ETag on responses, updates need If-Match
    # C5: the four the summary names plus AllergyIntolerance, Immunization and
    # DiagnosticReport (their pages list `_lastUpdated`); not Patient.
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
    export_levels=frozenset({"group"}),  # C3
    export_one_at_a_time=True,  # C3: one export per client and tenant (else 429)
    patient_everything=False,  # not documented
    writes={  # C5 (Patient, Encounter, MedicationRequest also take PATCH, not served here)
        "AllergyIntolerance": CU,
        "Condition": CU,
        "Immunization": CU,
        "DocumentReference": CU,
        "FamilyMemberHistory": CU,
        "Observation": CU,
        "Patient": C,
        "Encounter": C,
        "MedicationRequest": C,
    },
    repeat_ids_across_pages=True,  # C1: the same id may appear on two pages
    cursor_paging=False,  # C1: opaque `next` links
    notification="none",  # none found (notification row)
)

MEDITECH = VendorProfile(
    name="meditech",
    display_name="MEDITECH Expanse",
    # M1: secret or private_key_jwt; the secret's form is not stated -> HTTP Basic.
    token_auth_methods=frozenset({BASIC, KEY}),
    signing_algs=STANDARD_ALGS,  # M1: algorithms not stated -> S1
    jwks_url_required=False,  # M1: not stated
    required_search_params={},  # unknown
    max_search_matches=None,  # unknown
    max_page_size=None,  # unknown
    stale_version_status=412,  # unknown -> S4
    supports_versioning=True,  # unknown -> S4
    last_updated_types=frozenset(),  # M1: not supported
    export_levels=frozenset({"group", "patient"}),  # M1
    export_one_at_a_time=False,  # unknown
    patient_everything=True,  # M1
    writes={"Communication": C, "QuestionnaireResponse": CU},  # M1
    repeat_ids_across_pages=False,  # unknown
    cursor_paging=False,  # unknown: standard Bundle links
    notification="hl7v2",  # none over FHIR, HL7v2 interfaces (notification row)
)

VERADIGM = VendorProfile(
    name="veradigm",
    display_name="Veradigm (Allscripts)",
    token_auth_methods=frozenset({KEY}),  # V3: private_key_jwt
    signing_algs=STANDARD_ALGS,  # V3: algorithm unknown -> S1
    jwks_url_required=True,  # V3: registered JWKS
    required_search_params={},  # unknown
    max_search_matches=None,  # unknown
    max_page_size=None,  # unknown
    stale_version_status=412,  # not used: no versioning
    supports_versioning=False,  # V1: `no-version`, no If-Match
    last_updated_types=frozenset(),  # V1: not supported
    export_levels=frozenset({"group"}),  # V1: Group, system apps only
    export_one_at_a_time=False,  # unknown
    patient_everything=False,  # not documented
    writes={},  # V2: FHIR is read-only (writes through the Unity API)
    repeat_ids_across_pages=False,  # unknown
    cursor_paging=False,  # unknown: standard Bundle links
    notification="unknown",  # unknown
)

NEXTGEN = VendorProfile(
    name="nextgen",
    display_name="NextGen Enterprise",
    # N1: client_credentials; the administrator fills in a key or a secret (secret: Basic).
    token_auth_methods=frozenset({BASIC, KEY}),
    signing_algs=STANDARD_ALGS,  # unknown -> S1
    jwks_url_required=False,  # not stated
    required_search_params={},  # unknown
    max_search_matches=None,  # unknown
    max_page_size=None,  # unknown
    stale_version_status=412,  # not used: no versioning
    supports_versioning=False,  # N1: Enterprise declares `no-version`
    last_updated_types=None,  # N1: Enterprise supports `_lastUpdated`
    export_levels=frozenset(),  # N3: Enterprise unknown -> not offered
    export_one_at_a_time=False,  # unknown
    patient_everything=False,  # not documented
    writes={},  # N1,N2: read-only
    repeat_ids_across_pages=False,  # unknown
    cursor_paging=False,  # unknown: standard Bundle links
    notification="unknown",  # unknown
)

NEXTGEN_OFFICE = VendorProfile(
    name="nextgen_office",
    display_name="NextGen Office",
    # N1: Office takes private_key_jwt or a secret (secret's form not stated -> Basic).
    token_auth_methods=frozenset({KEY, BASIC}),
    signing_algs=STANDARD_ALGS,  # unknown -> S1
    jwks_url_required=False,  # not stated
    required_search_params={},  # unknown
    max_search_matches=None,  # unknown
    max_page_size=None,  # unknown
    stale_version_status=412,  # unknown for Office (N1 names Enterprise only) -> S4
    supports_versioning=True,  # unknown -> S4
    last_updated_types=frozenset(),  # N1: Office has no `_lastUpdated`
    export_levels=frozenset({"group"}),  # N3: `Group/{id}/$export`
    export_one_at_a_time=False,  # unknown
    patient_everything=False,  # not documented
    writes={},  # N1,N2: read-only
    repeat_ids_across_pages=False,  # unknown
    cursor_paging=False,  # unknown: standard Bundle links
    notification="unknown",  # unknown
)

ATHENAHEALTH = VendorProfile(
    name="athenahealth",
    display_name="athenahealth",
    token_auth_methods=frozenset({BASIC, KEY}),  # A1: secret (Basic) or JWT assertion
    signing_algs=STANDARD_ALGS,  # A1: algorithms not stated -> S1
    jwks_url_required=False,  # A1: not stated
    # A2: every search carries `ah-practice=Organization/a-1.Practice-{id}`.
    always_params={"ah-practice": "Organization/a-1.Practice-"},
    required_search_params={},  # unknown beyond `ah-practice`
    max_search_matches=None,  # unknown
    max_page_size=None,  # A2: `_count` honoured, no cap published
    stale_version_status=412,  # unknown -> S4
    supports_versioning=True,  # unknown -> S4
    # A2: "most clinical resources"; Patient is not one of them.
    last_updated_types=frozenset(CLINICAL),
    export_levels=frozenset({"group"}),  # A3: `Group/a-1.c-{practiceId}/$export` only
    export_one_at_a_time=False,  # unknown
    patient_everything=False,  # not documented
    writes={"QuestionnaireResponse": C},  # A2: QuestionnaireResponse create only
    repeat_ids_across_pages=False,  # unknown
    cursor_paging=True,  # A2: `_count` with a `cursor` parameter
    notification="subscriptions",  # A5: R5 backport, rest-hook, id-only
    notification_signature="hub",  # A5: `X-Hub-Signature: sha256=<hex>`
)

ECLINICALWORKS = VendorProfile(
    name="eclinicalworks",
    display_name="eClinicalWorks",
    token_auth_methods=frozenset({KEY}),  # W2,W3: private_key_jwt
    signing_algs=("RS384",),  # W2,W3: RS384 only
    jwks_url_required=True,  # W3: JWKS URL registered
    required_search_params={},  # unknown
    max_search_matches=None,  # unknown
    max_page_size=None,  # W2: `_count` + Bundle links, no cap published
    stale_version_status=412,  # unknown -> S4
    supports_versioning=True,  # unknown -> S4
    last_updated_types=frozenset(),  # W1: not supported
    export_levels=frozenset({"group"}),  # W2: `Group/{id}/$export`
    export_one_at_a_time=False,  # unknown
    patient_everything=False,  # not documented
    writes={"QuestionnaireResponse": C},  # W1: QuestionnaireResponse create only
    repeat_ids_across_pages=False,  # unknown
    cursor_paging=False,  # W2: Bundle links
    notification="none",  # none found (notification row)
)

PROFILES: dict[str, VendorProfile] = {
    "generic": VendorProfile(name="generic", type_history=True, alphabetical_types=True),
    **{
        p.name: p
        for p in (
            EPIC,
            ORACLE_HEALTH,
            MEDITECH,
            VERADIGM,
            NEXTGEN,
            NEXTGEN_OFFICE,
            ATHENAHEALTH,
            ECLINICALWORKS,
        )
    },
}


def profile_for(vendor: str) -> VendorProfile:
    try:
        return PROFILES[vendor]
    except KeyError:
        raise ValueError(f"unknown sandbox vendor {vendor!r}; known: {sorted(PROFILES)}") from None
