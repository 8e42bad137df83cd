"""The HTTP layer of one connection: pooled client, rate limit, retries, token, origin check.

Every request of the package goes through `HttpCore.send`, so the rules hold in one place:
the connection's auth is attached only to URLs on its own origin, 408/429/502/503/504 and
transport errors are retried per the `RetryPolicy`, and failures surface as typed errors.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from holovitals_sync.fhir.config import ClientConfig
from holovitals_sync.fhir.errors import ResponseTooLarge, TransportError, error_from_response
from holovitals_sync.fhir.origin import require_same_origin
from holovitals_sync.fhir.ratelimit import limiter_for
from holovitals_sync.fhir.retry import (
    retry_delay,
    should_retry_error,
    should_retry_status,
)

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"

_ssl_contexts: dict[tuple[bool | str, bool], ssl.SSLContext] = {}
_ssl_lock = threading.Lock()


def shared_ssl_context(verify: bool | str, *, http2: bool = False) -> ssl.SSLContext:
    """The process-wide TLS context for a `verify` setting (True, False or a CA bundle path).

    Building one loads the CA bundle, ~20 ms of CPU, and httpx did it for every client, even
    for http:// URLs; one context per process serves every connection and job. Built lazily,
    so a worker that forks before the first request builds its own, one after it inherits it.
    Keyed by `http2` too: httpcore sets the ALPN protocols on the context at each connect,
    so HTTP/1.1-only and HTTP/2 pools must not share one. The bundle is read once per process
    (restart the workers after rotating it).

    Args:
        verify: The connection's `ClientConfig.verify`.
        http2: Whether the pool offers HTTP/2.

    Returns:
        The shared context, exactly as httpx would have built it.
    """
    key = (verify, http2)
    context = _ssl_contexts.get(key)
    if context is None:
        with _ssl_lock:
            context = _ssl_contexts.get(key)
            if context is None:
                context = _ssl_contexts[key] = httpx.create_ssl_context(verify=verify)
    return context


def preload() -> None:
    """Load, before a worker forks, what each work horse's first request would load.

    The shared TLS context of `ClientConfig`'s defaults (~20 ms of CPU for the CA bundle),
    httpx's HTTP engine (httpcore, h11, anyio: ~30 ms, imported when a first client is
    built) and the IDNA codec httpx encodes host names with at connect. Loaded in the
    parent, they are inherited by every horse instead of loaded again in every job.
    """
    httpx.Client(verify=shared_ssl_context(True, http2=False)).close()
    "localhost".encode("idna")


class HttpCore:
    """One pooled `httpx.Client` per connection plus the retry loop around it."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """Create the pooled client.

        Args:
            config: The connection's configuration.
            transport: A custom httpx transport (tests only).
            sleep: Sleep function used between retries (tests only).
        """
        self.config = config
        self.auth: httpx.Auth | None = None
        self._sleep = sleep
        self._limiter = limiter_for(config.base, config.requests_per_minute)
        self.client = httpx.Client(
            timeout=config.timeouts.to_httpx(),
            limits=httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_keepalive,
            ),
            headers={"User-Agent": config.user_agent, "Accept": FHIR_JSON},
            http2=config.http2,
            # One context per process: httpx would load the CA bundle (~20 ms CPU) per client.
            verify=shared_ssl_context(config.verify, http2=config.http2),
            transport=transport,
            # Redirects would let a server bounce the bearer token elsewhere.
            follow_redirects=False,
        )
        self.retries = 0  # retried attempts, for logs and tests

    def close(self) -> None:
        """Close the pool."""
        self.client.close()

    def build(self, method: str, url: str, **kwargs: Any) -> httpx.Request:
        """Build a request on the pooled client (headers, params, content).

        Args:
            method: HTTP method.
            url: Absolute URL.
            **kwargs: Passed to `httpx.Client.build_request`.

        Returns:
            The request.
        """
        return self.client.build_request(method, url, **kwargs)

    def send(
        self, request: httpx.Request, *, authenticated: bool = True, stream: bool = False
    ) -> httpx.Response:
        """Send with rate limiting and retries; return the final response, whatever its status.

        Args:
            request: The request; with `authenticated` its URL must be on the base origin.
            authenticated: Attach the connection's token (refused for foreign origins).
            stream: Leave the body unread (the caller must close the response).

        Returns:
            The last response (the caller maps a 4xx/5xx with `raise_for_fhir`).

        Raises:
            ForeignOriginError: An authenticated request to another origin.
            TransportError: Connection errors or timeouts on every attempt.
        """
        auth = self.auth if authenticated else None
        if auth is not None:
            require_same_origin(request.url, self.config.base, what="a request")
        policy = self.config.retry
        for attempt in range(1, policy.max_attempts + 1):
            last = attempt == policy.max_attempts
            if self._limiter is not None:
                self._limiter.acquire()
            try:
                response = self.client.send(request, auth=auth, stream=True)
                if not stream:
                    self._read_bounded(request, response, time.monotonic())
            except httpx.TransportError as exc:
                if last or not should_retry_error(exc, request.method):
                    raise TransportError(
                        f"{request.method} {request.url} failed after {attempt} attempt(s): "
                        f"{type(exc).__name__}",
                        url=str(request.url),
                    ) from exc
                self._wait(request, attempt, None, type(exc).__name__)
                continue
            if last or not should_retry_status(response.status_code, request.method):
                return response
            response.close()
            self._wait(request, attempt, response, str(response.status_code))
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_bounded(
        self, request: httpx.Request, response: httpx.Response, started: float
    ) -> None:
        """Read the body, within the total deadline and the byte cap (then it is closed).

        `read` bounds each wait for a byte, not the download: a server trickling a byte
        every few seconds held a worker (and, before, a database lock) for minutes. A body
        larger than the cap is refused before it is in memory: a 500 MB page once took a
        worker to 1.7 GB.
        """
        limit, deadline = self.config.max_response_bytes, started + self.config.timeouts.total
        declared = response.headers.get("content-length", "")
        chunks, size = [], 0
        try:
            if declared.isdecimal() and int(declared) > limit:
                raise self._too_large(request, limit)
            for chunk in response.iter_bytes():  # decoded: a gzip bomb counts as it grows
                size += len(chunk)
                if size > limit:
                    raise self._too_large(request, limit)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(
                        f"no complete answer within {self.config.timeouts.total:g} s",
                        request=request,
                    )
                chunks.append(chunk)
        finally:
            response.close()
        # What `Response.read` stores, from the bytes read under the limits above.
        response._content = b"".join(chunks)

    @staticmethod
    def _too_large(request: httpx.Request, limit: int) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"{request.method} {request.url} answered more than "
            f"{limit} bytes; refused (HOLOVITALS_HTTP_MAX_RESPONSE_BYTES)",
            url=str(request.url),
        )

    def _wait(
        self, request: httpx.Request, attempt: int, response: httpx.Response | None, why: str
    ) -> None:
        delay = retry_delay(self.config.retry, attempt, response)
        self.retries += 1
        log.info(
            "retrying %s %s after %s (attempt %d, sleeping %.2fs)",
            request.method,
            request.url,
            why,
            attempt,
            delay,
        )
        self._sleep(delay)

    def raise_for_fhir(self, response: httpx.Response) -> httpx.Response:
        """Raise the typed error of a 4xx/5xx response; return the response otherwise.

        Args:
            response: A response (read or streamed).

        Returns:
            The same response when its status is below 400.
        """
        if response.status_code < 400:
            return response
        response.read()
        response.close()
        raise error_from_response(
            response, conflict_is_precondition=self.config.conflict_is_precondition
        )
