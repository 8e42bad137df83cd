"""`FhirClient`: reads, searches and history of one FHIR R4 connection.

Synchronous on purpose: it runs inside RQ worker jobs. Create one per connection and job
(never at import time), use it as a context manager, and let its errors propagate.
Writes live in `writes.py` (`FhirWriteMixin`); Bulk Data in `bulk.py`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from holovitals_sync.fhir.auth import build_auth
from holovitals_sync.fhir.bundle import Resource, matches, next_link, parse_bundle, parse_resource
from holovitals_sync.fhir.config import ClientConfig
from holovitals_sync.fhir.credentials import Credentials
from holovitals_sync.fhir.errors import EndlessPaging, MalformedResponse
from holovitals_sync.fhir.gate import GatedTransport
from holovitals_sync.fhir.ids import check_id, check_segment, check_type, fhir_instant
from holovitals_sync.fhir.origin import require_same_origin
from holovitals_sync.fhir.transport import HttpCore, shared_ssl_context
from holovitals_sync.fhir.writes import FhirWriteMixin

Params = Mapping[str, str | Sequence[str]] | Sequence[tuple[str, str]]

DEFAULT_OVERLAP = timedelta(seconds=60)

log = logging.getLogger(__name__)


# -- request metrics -------------------------------------------------------------------------
# Every HTTP attempt (retries included) is reported to one process-wide observer: this package
# reads no settings, so the application installs it (`services.metrics.record_fhir_requests`).


@dataclass(frozen=True, slots=True)
class RequestSample:
    """One HTTP attempt: labels with bounded values (never an id or a query) and its timing.

    `status` is None when no answer came (timeout, refused connection, TLS failure).
    """

    vendor: str
    resource_type: str
    method: str
    status: int | None
    seconds: float


RequestObserver = Callable[[RequestSample], None]
_observer: RequestObserver | None = None
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_OPERATION = re.compile(r"^\$[a-z][a-z-]{0,40}$")


def set_request_observer(observer: RequestObserver | None) -> None:
    """Report every FHIR HTTP attempt of this process to `observer` (None: stop)."""
    global _observer
    _observer = observer


def resource_label(url: httpx.URL, base: str) -> str:
    """What a request is about: a resource type, `metadata`, an operation such as `$export`,
    `batch`, `token`, `discovery`, or `other` (outside the base: a bulk file, a status URL)."""
    text = str(url.copy_with(query=None, fragment=None))
    if text.rstrip("/") == base.rstrip("/"):
        return "batch"  # a batch or transaction Bundle posted to the base
    if text.rstrip("/").endswith("/token"):
        return "token"  # the SMART token endpoint, wherever the server puts it
    if not text.startswith(base.rstrip("/") + "/"):
        return "other"
    first = text[len(base.rstrip("/")) + 1 :].split("/", 1)[0]
    if _RESOURCE_TYPE.match(first) or first == "metadata" or _OPERATION.match(first):
        return first
    return "discovery" if first == ".well-known" else "other"


class MeasuredTransport(httpx.BaseTransport):
    """Times each attempt up to the response headers and reports it to the observer."""

    def __init__(self, inner: httpx.BaseTransport, base: str, vendor: str) -> None:
        self.inner, self.base, self.vendor = inner, base, vendor

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self.inner.handle_request(request)
        except httpx.TransportError:
            self._report(request, None, started)
            raise
        self._report(request, response.status_code, started)
        return response

    def _report(self, request: httpx.Request, status: int | None, started: float) -> None:
        observer = _observer
        if observer is None:
            return
        sample = RequestSample(
            self.vendor,
            resource_label(request.url, self.base),
            request.method,
            status,
            time.perf_counter() - started,
        )
        try:
            observer(sample)
        except Exception as exc:  # metrics must never fail a sync
            log.debug("FHIR request metrics not recorded: %s", type(exc).__name__)

    def close(self) -> None:
        self.inner.close()


def _default_transport(config: ClientConfig) -> httpx.BaseTransport:
    """What `httpx.Client` would build from the same settings (pool size, TLS, HTTP/2)."""
    limits = httpx.Limits(
        max_connections=config.max_connections, max_keepalive_connections=config.max_keepalive
    )
    verify = shared_ssl_context(config.verify, http2=config.http2)
    return httpx.HTTPTransport(verify=verify, http2=config.http2, limits=limits)


class FhirClient(FhirWriteMixin):
    """A FHIR R4 client bound to one connection (base URL, credentials, pool)."""

    def __init__(
        self,
        config: ClientConfig,
        credentials: Credentials | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        vendor: str = "unknown",
    ):
        """Create the client and its connection pool.

        Args:
            config: Base URL, timeouts, pool size, retry policy, page size, rate limit.
            credentials: `PrivateKeyJwt`, `ClientSecret`, `StaticToken`, or None.
            transport: Custom httpx transport (tests only).
            sleep: Sleep between retries (tests only).
            vendor: The `vendor` label of this client's request metrics, e.g. "epic".
        """
        self.config = config
        outer: httpx.BaseTransport = MeasuredTransport(
            transport or _default_transport(config), config.base, vendor
        )
        if config.gate is not None:  # waiting for a slot is not the EHR's latency
            outer = GatedTransport(outer, config.gate)
        self.core = HttpCore(config, transport=outer, sleep=sleep)
        self.core.auth = build_auth(credentials, self.core)

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.core.close()

    def url(self, *parts: str) -> str:
        """Join path parts to the base URL; each part is checked to be one plain segment.

        An id from a job request, an inbound event or a remote body once went into a path
        as `../../outside-base` and the connection's token went with it to another path.
        """
        return "/".join([self.config.base, *(check_segment(p) for p in parts)])

    def _get(self, url: str, params: Params | None = None) -> httpx.Response:
        response = self.core.send(self.core.build("GET", url, params=params))
        return self.core.raise_for_fhir(response)

    def capabilities(self) -> Resource:
        """Fetch the server's CapabilityStatement (`[base]/metadata`)."""
        url = self.url("metadata")
        return parse_resource(self._get(url).content, url=url, resource_type="CapabilityStatement")

    def read(self, resource_type: str, resource_id: str) -> Resource:
        """Read the current version of a resource.

        Raises:
            ResourceNotFound: 404 or 410.
        """
        url = self.url(check_type(resource_type), check_id(resource_id))
        return parse_resource(self._get(url).content, url=url, resource_type=resource_type)

    def vread(self, resource_type: str, resource_id: str, version_id: str) -> Resource:
        """Read one version of a resource (`[type]/[id]/_history/[vid]`)."""
        url = self.url(
            check_type(resource_type), check_id(resource_id), "_history", check_id(version_id)
        )
        return parse_resource(self._get(url).content, url=url, resource_type=resource_type)

    def pages(self, url: str, params: Params | None = None) -> Iterator[Resource]:
        """Yield each Bundle page of a paged GET, following `next` links exactly as given.

        Args:
            url: The first page URL.
            params: Query parameters of the first page only (next links carry their own).

        Yields:
            Bundles, each checked in full before it is yielded.

        Raises:
            ForeignOriginError: A next link points to another origin.
            MalformedResponse: A page is not a valid Bundle (names the page URL).
        """
        for bundle, _following in self.paged(url, params):
            yield bundle

    def paged(
        self, url: str, params: Params | None = None
    ) -> Iterator[tuple[Resource, str | None]]:
        """`pages`, each with its next link as the client follows it: absolute (a relative
        link resolved against the page it came in), or None on the last page.

        A caller that saves the link to resume later saves this one, so a resumed run asks
        for exactly the page the interrupted one would have (`fetch.Fetcher` does).
        """
        seen: set[str] = set()
        response = self._get(url, params)
        while True:
            page_url = str(response.request.url)
            bundle = parse_bundle(response.content, url=page_url)
            seen.add(page_url)
            following = next_link(bundle, page_url=page_url)
            yield bundle, following
            if following is None:
                return
            if len(seen) >= self.config.max_pages:
                raise EndlessPaging(
                    f"the search starting at {url} did not end after "
                    f"{len(seen)} pages (HOLOVITALS_SYNC_MAX_PAGES)",
                    url=url,
                )
            # Checked only when followed: the page itself came from our own server.
            require_same_origin(following, self.config.base, what="a next link")
            if following in seen:
                raise MalformedResponse(f"next link of {page_url} loops back", url=page_url)
            response = self._get(following)

    def _search_params(self, params: Params | None, page_size: int | None) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = []
        pairs = params.items() if isinstance(params, Mapping) else (params or [])
        for key, value in pairs:
            values = [value] if isinstance(value, str) else list(value)
            items.extend((key, str(v)) for v in values)
        count = page_size or self.config.page_size
        if count and not any(key == "_count" for key, _ in items):
            items.append(("_count", str(count)))
        return items

    def search_pages(
        self, resource_type: str, params: Params | None = None, *, page_size: int | None = None
    ) -> Iterator[Resource]:
        """Search and yield whole Bundle pages (for callers that checkpoint per page).

        Args:
            resource_type: e.g. "Observation".
            params: Search parameters (a mapping or a list of pairs; repeated keys allowed).
            page_size: `_count` (defaults to the config's page size).

        Yields:
            searchset Bundles.
        """
        url = self.url(check_type(resource_type))
        yield from self.pages(url, self._search_params(params, page_size))

    def search(
        self,
        resource_type: str,
        params: Params | None = None,
        *,
        page_size: int | None = None,
        include: bool = False,
    ) -> Iterator[Resource]:
        """Search and yield matching resources page by page.

        Args:
            resource_type: e.g. "Observation".
            params: Search parameters.
            page_size: `_count` (defaults to the config's page size).
            include: Also yield `_include`d resources (search.mode 'include').

        Yields:
            Resources; a page that fails to parse yields nothing.
        """
        for bundle in self.search_pages(resource_type, params, page_size=page_size):
            yield from matches(bundle, include=include)

    def search_since(
        self,
        resource_type: str,
        cursor: datetime,
        *,
        overlap: timedelta = DEFAULT_OVERLAP,
        params: Params | None = None,
        page_size: int | None = None,
    ) -> Iterator[Resource]:
        """Incremental search: resources updated after `cursor - overlap`.

        The overlap re-reads records sharing the cursor timestamp or written with clock skew;
        callers de-duplicate by content.

        Args:
            resource_type: e.g. "Observation".
            cursor: Timezone-aware high-water mark of the last committed run.
            overlap: Look-back window.
            params: Extra search parameters.
            page_size: `_count`.

        Yields:
            Resources.
        """
        extra = self._search_params(params, page_size)
        extra.append(("_lastUpdated", "gt" + fhir_instant(cursor - overlap)))
        yield from self.search(resource_type, extra)

    def everything(
        self, patient_id: str, *, params: Params | None = None, page_size: int | None = None
    ) -> Iterator[Resource]:
        """Yield every resource of `Patient/{id}/$everything`, paged.

        Args:
            patient_id: The patient's logical id.
            params: `_since`, `_type`, ... as the server supports.
            page_size: `_count`.

        Yields:
            Resources.
        """
        url = self.url("Patient", check_id(patient_id), "$everything")
        for bundle in self.pages(url, self._search_params(params, page_size)):
            yield from matches(bundle, include=True)

    def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: datetime | None = None,
        page_size: int | None = None,
    ) -> Iterator[Resource]:
        """Yield history entries (with `request`/`response`, deletions have no resource).

        Args:
            resource_type: Type, or None for system history.
            resource_id: Id, or None for type-level history.
            since: Only versions after this instant.
            page_size: `_count`.

        Yields:
            Bundle entries, newest first as the server orders them.
        """
        parts = [check_type(resource_type)] if resource_type else []
        if resource_id:
            if not resource_type:
                raise ValueError("history of an id needs its resource type")
            parts.append(check_id(resource_id))
        params = [("_since", fhir_instant(since))] if since else []
        for bundle in self.pages(
            self.url(*parts, "_history"), self._search_params(params, page_size)
        ):
            yield from bundle.get("entry", [])

    def request_json(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send an authenticated request to the connection's origin; raise typed errors."""
        response = self.core.send(self.core.build(method, url, **kwargs))
        return self.core.raise_for_fhir(response)
