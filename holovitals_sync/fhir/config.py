"""Configuration of one FHIR connection, passed in by the caller.

This package never reads environment variables or application settings: adapters build a
`ClientConfig` from the connection row and the app settings, and tests build one by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from holovitals_sync.fhir.gate import RequestGate
from holovitals_sync.fhir.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Timeouts in seconds. `read` bounds the wait between two bytes, not a whole download."""

    connect: float = 10.0
    read: float = 60.0
    write: float = 30.0
    pool: float = 30.0
    # The whole exchange, first byte sent to last byte read: a server that trickles a byte
    # every few seconds never trips `read`, and once held a job (and a database lock) for
    # minutes.
    total: float = 300.0

    def to_httpx(self) -> httpx.Timeout:
        """Return the equivalent `httpx.Timeout`."""
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything the FHIR client needs to know about one connection except its credentials.

    Attributes:
        base_url: The FHIR base URL, e.g. `https://fhir.example.org/r4`.
        timeouts: Per-phase timeouts.
        max_connections: Connection pool size.
        max_keepalive: Idle connections kept open.
        retry: Retry policy for 408/429/5xx gateways and transport errors.
        page_size: Default `_count` for searches (None: the server's default).
        requests_per_minute: Client-side rate limit per base URL (None: unlimited).
        conflict_is_precondition: The vendor answers a stale write with 409 (Oracle Health).
        user_agent: Sent on every request.
        http2: Offer HTTP/2 (needs the `h2` package).
        verify: TLS verification (True, False or a CA bundle path).
        max_response_bytes: A larger answer is refused (`ResponseTooLarge`), read no further.
        max_pages: Pages one paged search may take; past it the server's paging is taken
            for endless (`next` links that never repeat exactly once ran 9,795 pages).
        gate: Limits this connection's requests in flight across processes (None: no limit).
    """

    base_url: str
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_connections: int = 10
    max_keepalive: int = 5
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    page_size: int | None = None
    requests_per_minute: float | None = None
    conflict_is_precondition: bool = False
    user_agent: str = "HoloVitals-Sync/0.1 (FHIR R4 client)"
    http2: bool = False
    verify: bool | str = True
    max_response_bytes: int = 64 * 1024 * 1024
    max_pages: int = 50_000
    gate: RequestGate | None = None

    def __post_init__(self) -> None:
        url = httpx.URL(self.base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("base_url must be an absolute http(s) URL")
        if self.page_size is not None and self.page_size < 1:
            raise ValueError("page_size must be positive")

    @property
    def base(self) -> str:
        """The base URL without a trailing slash."""
        return self.base_url.rstrip("/")
