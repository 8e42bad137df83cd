"""Plain data the adapters take and return: the engine's side of the interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from holovitals_sync.fhir.gate import RequestGate
from holovitals_sync.models.enums import AuthMethod

Resource = dict[str, Any]


@dataclass(frozen=True)
class ConnectionSpec:
    """One EHR connection as the adapter needs it; built by the caller from its row.

    Secrets arrive decrypted; the adapter never touches the database.

    Attributes:
        vendor: Registry key (`Vendor` value), e.g. "epic".
        base_url: FHIR base URL ("" renders the profile's template from vendor_params).
        client_id: OAuth client id (None for auth none / bearer).
        auth_method: How tokens are obtained.
        client_secret: Plaintext secret; for `bearer`, the static access token.
        private_key_pem: PEM of the signing key (SMART Backend Services).
        scopes: Requested scopes (None: derived from the profile).
        vendor_params: Tenant id, practice id, group id, product, ...
        token_url: Token endpoint (None: discovered).
        kid: Key id (None: the key's thumbprint).
        page_size: `_count` override (capped by the vendor's limit).
        page_size_learned: The largest page this server was seen to honour (None: not yet).
        streams: Searches one fetch runs at once (parallel streams of one job).
        full_sync_via: "export" (the profile decides) or "search" (never `$export` for a
            full sync).
        resource_types: The types to sync (empty: every type the profile lists).
        gate: Limits the connection's requests in flight across processes (None: no limit).
        timeout: Read timeout in seconds.
        connect_timeout: Connect timeout in seconds.
        max_connections: Pool size.
        total_timeout: Seconds for one whole exchange, first byte sent to last read.
        max_response_bytes: Larger answers are refused.
        max_pages: Pages one paged search may take.
        stall_seconds: A fetch whose pages bring nothing for this long fails.
    """

    vendor: str
    base_url: str
    client_id: str | None = None
    auth_method: AuthMethod = AuthMethod.SMART_BACKEND
    client_secret: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)
    scopes: list[str] | None = None
    vendor_params: dict[str, str] = field(default_factory=dict)
    token_url: str | None = None
    kid: str | None = None
    page_size: int | None = None
    page_size_learned: int | None = None
    streams: int = 1
    full_sync_via: str = "export"
    resource_types: tuple[str, ...] = ()
    gate: RequestGate | None = field(default=None, repr=False, compare=False)
    timeout: float = 60.0
    connect_timeout: float = 10.0
    max_connections: int = 10
    total_timeout: float = 300.0
    max_response_bytes: int = 64 * 1024 * 1024
    max_pages: int = 50_000
    stall_seconds: float = 900.0


@dataclass(frozen=True)
class StepResult:
    """One step of "test connection": its name, verdict and the vendor's own words."""

    name: str
    ok: bool
    detail: str


@dataclass
class FetchedPage:
    """One page of resources and what to store once it is committed.

    Attributes:
        resources: The resources of the page (ids already de-duplicated within the run).
        checkpoint: Pass back as `resume` to continue after this page.
        cursor: High-water marks of resource types completed with this page
            (type -> FHIR instant); merge into the connection's cursor when committed.
        total_estimate: The server's total for the current search, when it gave one.
        deleted: (type, id) of resources the EHR says it deleted (a `_history` DELETE entry).
        page_size_learned: Set when the server turned out to honour smaller pages than asked
            (it capped `_count` silently, or refused it): store it for the next runs.
    """

    resources: list[Resource]
    checkpoint: dict[str, Any]
    cursor: dict[str, str] = field(default_factory=dict)
    total_estimate: int | None = None
    deleted: list[tuple[str, str]] = field(default_factory=list)
    page_size_learned: int | None = None


@dataclass(frozen=True)
class WriteOutcome:
    """A write the EHR accepted."""

    status: int
    created: bool
    resource_id: str | None
    version_id: str | None
    resource: Resource | None


@dataclass(frozen=True)
class Capabilities:
    """What the engine plans with.

    Attributes:
        full_sync: "export:group", "export:system", "search" or "search:per-patient".
        incremental: Resource type -> "_lastUpdated", "patient_requery" or "bulk_since".
        writable: Resource type -> sorted write operations.
        versioning: "if-match-412", "if-match-409" or "none".
        notification: "subscriptions", "hl7v2", "none" or "unknown".
        requests_per_minute: Client-side limit per base URL, if any.
    """

    full_sync: str
    incremental: dict[str, str]
    writable: dict[str, list[str]]
    versioning: str
    notification: str
    requests_per_minute: float | None
