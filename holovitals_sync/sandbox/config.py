"""Configuration of the sandbox EHR: what it serves, who may call it, how it misbehaves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from holovitals_sync.sandbox.faults import FaultConfig

DEMO_CLIENT_ID = "holovitals-demo"
DEMO_CLIENT_SECRET = "demo-secret"
DEMO_SCOPES = ["system/*.read", "system/*.write"]


class ClientRegistration(BaseModel):
    """A backend client the sandbox's token endpoint knows.

    A client may authenticate with a shared secret, a JWKS (private_key_jwt), or both.
    """

    client_id: str
    secret: str | None = None
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None  # fetched at each assertion (Epic/eCW register a URL)
    scopes: list[str] = Field(default_factory=lambda: list(DEMO_SCOPES))


def _demo_clients() -> list[ClientRegistration]:
    # The demo needs a client that works without any setup step.
    return [ClientRegistration(client_id=DEMO_CLIENT_ID, secret=DEMO_CLIENT_SECRET)]


class PageCost(BaseModel):
    """What a search page costs on a real server, as added time (all 0: free, the default).

    Offset paging re-runs the query for every page and skips what came before: the time of a
    page grows with its offset and with the number of matches, and a fixed part (parsing,
    planning, serialising) is paid per page; `per_entry_ms` is the serialising per resource.
    With `FaultConfig.latency_ms` on top (the network), benchmarks and tests see why small
    pages are slow and parallel streams help.
    """

    per_page_ms: float = Field(0.0, ge=0, le=10_000)
    per_1000_offset_ms: float = Field(0.0, ge=0, le=10_000)
    per_1000_matches_ms: float = Field(0.0, ge=0, le=10_000)
    per_entry_ms: float = Field(0.0, ge=0, le=100)

    def seconds(self, offset: int, matches: int, entries: int) -> float:
        return (
            self.per_page_ms
            + offset / 1000 * self.per_1000_offset_ms
            + matches / 1000 * self.per_1000_matches_ms
            + entries * self.per_entry_ms
        ) / 1000


class SandboxConfig(BaseModel):
    """Everything a sandbox run can be told. Defaults give the demo set-up."""

    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)  # 0 = pick a free port (SandboxServer) / 8090 for serve()
    vendor: str = "generic"
    patients: int = Field(20, ge=0, le=1_000_000)
    seed: int = 42

    @field_validator("vendor")
    @classmethod
    def _known_vendor(cls, value: str) -> str:
        from holovitals_sync.sandbox.vendors import PROFILES

        if value not in PROFILES:
            raise ValueError(f"unknown sandbox vendor {value!r}; known: {sorted(PROFILES)}")
        return value

    max_page_size: int = 1000
    default_page_size: int = 50
    # False: a larger `_count` is served capped at max_page_size, as most servers do;
    # True: it is refused with 400 (as some servers do).
    refuse_count_over_max: bool = False
    page_cost: PageCost = Field(default_factory=PageCost)
    token_lifetime_seconds: float = 300.0
    clients: list[ClientRegistration] = Field(default_factory=_demo_clients)
    faults: FaultConfig = Field(default_factory=FaultConfig)
    # The ADT sender: each clinic day's HL7 v2 messages go over MLLP to host:port (None: off).
    adt_target: str | None = Field(None, pattern=r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")
    adt_application: str = Field("SANDBOXADT", pattern=r"^[A-Za-z0-9_.\- ]{1,60}$")
    adt_facility: str = Field("SANDBOX", pattern=r"^[A-Za-z0-9_.\- ]{1,60}$")
    # Bulk export behaviour, small by default so tests stay fast.
    export_polls_before_complete: int = 2
    export_retry_after: float = 1.0
    export_file_max_lines: int = 0  # 0 = one file per type
    export_one_at_a_time: bool = False  # True: a second running export of a client gets 429
    search_snapshot_ttl_seconds: float = 600.0
    max_search_snapshots: int = 500
