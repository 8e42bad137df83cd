"""Access tokens of one connection as an `httpx.Auth` flow.

The token is cached per connection (thread-safe) and renewed shortly before it expires. When
the server still answers 401 (revoked or expired early), the flow renews once and re-sends;
a second 401 goes back to the HTTP layer, which raises `AuthenticationError`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field

import httpx
import orjson

from holovitals_sync.fhir.credentials import ClientSecret, Credentials, PrivateKeyJwt, StaticToken
from holovitals_sync.fhir.discovery import discover_token_endpoint
from holovitals_sync.fhir.errors import AuthenticationError, error_from_response, mask_secrets
from holovitals_sync.fhir.transport import HttpCore

log = logging.getLogger(__name__)

DEFAULT_LIFETIME = 300.0  # SMART tokens usually live 5 minutes when expires_in is absent
MAX_RENEW_MARGIN = 30.0


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token and when (monotonic clock) it should be renewed."""

    value: str = field(repr=False)
    renew_at: float
    lifetime: float


def renew_margin(lifetime: float) -> float:
    """Seconds before expiry to renew: 10% of the lifetime, at most 30 s.

    Args:
        lifetime: Token lifetime in seconds.

    Returns:
        The margin in seconds.
    """
    return min(MAX_RENEW_MARGIN, lifetime * 0.1)


def _lifetime(expires_in: object) -> float:
    # expires_in is RECOMMENDED only; some servers send it as a string.
    try:
        lifetime = float(expires_in)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DEFAULT_LIFETIME
    return lifetime if lifetime > 0 else DEFAULT_LIFETIME


class SmartAuth(httpx.Auth):
    """Bearer auth with a token fetched from the token endpoint and renewed as needed."""

    def __init__(self, credentials: PrivateKeyJwt | ClientSecret, core: HttpCore):
        """Create the flow.

        Args:
            credentials: Key or secret credentials.
            core: The connection's HTTP layer (token requests use it, without a token).
        """
        self.credentials = credentials
        self._core = core
        self._token_url = credentials.token_url
        self._token: AccessToken | None = None
        self._lock = threading.Lock()
        self.renewals = 0  # tokens fetched so far (first one included)

    @property
    def token_url(self) -> str:
        """The token endpoint, discovered on first use when not configured."""
        if self._token_url is None:
            self._token_url = discover_token_endpoint(self._core)
        return self._token_url

    def token(self, *, stale: AccessToken | None = None) -> AccessToken:
        """Return a valid token, fetching a new one when none is cached, it is due, or stale.

        Args:
            stale: A token the server just refused; renewed unless another thread already did.

        Returns:
            The token to send.
        """
        with self._lock:
            current = self._token
            due = current is None or time.monotonic() >= current.renew_at
            if due or (stale is not None and current is stale):
                self._token = current = self._fetch()
            return current

    def invalidate(self) -> None:
        """Forget the cached token (e.g. after a scope change)."""
        with self._lock:
            self._token = None

    def _fetch(self) -> AccessToken:
        token_url = self.token_url
        spec = self.credentials.token_request(token_url)
        request = self._core.build(
            "POST",
            token_url,
            data=spec.form,
            headers={"Accept": "application/json", **spec.headers},
        )
        response = self._core.send(request, authenticated=False)
        self.renewals += 1
        return self._parse(response)

    def _parse(self, response: httpx.Response) -> AccessToken:
        if response.status_code == 429 or response.status_code >= 500:
            # Throttled or down after retries: not a credentials problem, say so.
            raise error_from_response(response)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = {}
        if (
            response.status_code != 200
            or not isinstance(body, dict)
            or not body.get("access_token")
        ):
            # OAuth error codes are safe to show; descriptions may echo secrets: mask them.
            error = body.get("error", "") if isinstance(body, dict) else ""
            description = body.get("error_description", "") if isinstance(body, dict) else ""
            message = mask_secrets(
                f"token endpoint {response.request.url} answered {response.status_code} "
                f"{error} {description}".strip(),
                self.credentials.secrets(),
            )
            raise AuthenticationError(message, status=response.status_code, url=self.token_url)
        lifetime = _lifetime(body.get("expires_in"))
        log.info("access token obtained from %s, lifetime %ss", self.token_url, lifetime)
        return AccessToken(
            value=str(body["access_token"]),
            renew_at=time.monotonic() + lifetime - renew_margin(lifetime),
            lifetime=lifetime,
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach the token; on a 401 renew it once and re-send."""
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token.value}"
        response = yield request
        if response.status_code != 401:
            return
        # Read the refused body first: it frees the pooled connection for the token request.
        response.read()
        log.info("401 from %s; renewing the token once", request.url)
        token = self.token(stale=token)
        request.headers["Authorization"] = f"Bearer {token.value}"
        yield request


class StaticBearerAuth(httpx.Auth):
    """A fixed bearer token (no renewal: a 401 is final)."""

    def __init__(self, token: str):
        """Create the flow.

        Args:
            token: The bearer token.
        """
        self._value = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach the token."""
        request.headers["Authorization"] = f"Bearer {self._value}"
        yield request


def build_auth(credentials: Credentials | None, core: HttpCore) -> httpx.Auth | None:
    """Return the `httpx.Auth` flow for a connection's credentials.

    Args:
        credentials: Key, secret, static token, or None for an open server.
        core: The connection's HTTP layer.

    Returns:
        The auth flow, or None.
    """
    if credentials is None:
        return None
    if isinstance(credentials, StaticToken):
        return StaticBearerAuth(credentials.token)
    return SmartAuth(credentials, core)
