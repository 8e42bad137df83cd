"""Origin checks: the bearer token goes to the connection's own origin and nowhere else.

An origin is scheme + host + port (RFC 6454), with the scheme's default port filled in so
`https://ehr.example` and `https://ehr.example:443` are the same origin.
"""

from __future__ import annotations

import httpx

from holovitals_sync.fhir.errors import ForeignOriginError

_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def origin_of(url: str | httpx.URL) -> Origin:
    """Return the (scheme, host, port) origin of an absolute URL.

    Args:
        url: An absolute URL.

    Returns:
        The origin tuple, lower-cased, with the default port made explicit.
    """
    parsed = httpx.URL(url) if isinstance(url, str) else url
    scheme = parsed.scheme.lower()
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS.get(scheme, -1)
    return scheme, parsed.host.lower(), port


def same_origin(url: str | httpx.URL, base_url: str | httpx.URL) -> bool:
    """Whether `url` is on the same origin as `base_url`.

    Args:
        url: The URL to check (a next link, a manifest file URL, ...).
        base_url: The connection's FHIR base URL.

    Returns:
        True when scheme, host and port are equal.
    """
    return origin_of(url) == origin_of(base_url)


def require_same_origin(url: str | httpx.URL, base_url: str | httpx.URL, *, what: str) -> None:
    """Raise `ForeignOriginError` unless `url` is on the origin of `base_url`.

    Args:
        url: The URL about to be requested with the connection's token.
        base_url: The connection's FHIR base URL.
        what: What the URL is ("next link", "manifest output"), for the message.
    """
    if not same_origin(url, base_url):
        scheme, host, port = origin_of(url)
        # Name the foreign origin only: its path and query are not ours to log.
        raise ForeignOriginError(
            f"refusing to send the connection's token to {what} on another origin "
            f"{scheme}://{host}:{port}",
            url=str(base_url),
        )
