"""Cut what the instrumentations record that may carry patient data, before a span leaves.

A FHIR URL names patients: `Patient/8f2c...`, `Observation?patient=8f2c...`, and an API
URL may carry a search for a name. Spans keep the host, the shape of the path (resource
types, operations, `_history`) and the names of the query's parameters; ids and values are
replaced. The route template (`GET /api/records/{record_id}`) stays in the span name.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

# A path segment that is a word (a resource type, "api", "fhir"), a FHIR version ("R4",
# "STU3") or an operation, `_history`, `_search`, is kept; anything else may be an id.
_KEPT_SEGMENT = re.compile(r"^(?:[A-Za-z]+|[A-Z]+[0-9]|[$_][A-Za-z-]+)$")
ID = "{id}"
# The attributes, old and new HTTP conventions, that carry a URL or a part of one.
FULL_URL_KEYS = ("url.full", "http.url")
PATH_KEYS = ("url.path", "http.target")
QUERY_KEY = "url.query"


def safe_path(path: str) -> str:
    return "/".join(s if not s or _KEPT_SEGMENT.match(s) else ID for s in path.split("/"))


def safe_query(query: str) -> str:
    return "&".join(f"{name}=?" for name, _ in parse_qsl(query, keep_blank_values=True))


def safe_url(url: str) -> str:
    """`https://ehr/fhir/Observation?patient=8f2c&_count=100` ->
    `https://ehr/fhir/Observation?patient=?&_count=?` (no user info, no fragment)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # IPv6
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, safe_path(parts.path), safe_query(parts.query), ""))


def scrub_span(span: Any) -> None:
    """Rewrite the URL attributes an instrumentation has set on `span`."""
    attributes = getattr(span, "attributes", None) or {}
    for key in FULL_URL_KEYS:
        if key in attributes:
            span.set_attribute(key, safe_url(str(attributes[key])))
    for key in PATH_KEYS:
        if key in attributes:
            path, _, query = str(attributes[key]).partition("?")
            span.set_attribute(key, safe_path(path) + (f"?{safe_query(query)}" if query else ""))
    if QUERY_KEY in attributes:
        span.set_attribute(QUERY_KEY, safe_query(str(attributes[QUERY_KEY])))


def client_request_hook(span: Any, _request: Any) -> None:
    """httpx: the request's span, before it is sent."""
    if span.is_recording():
        scrub_span(span)


def server_request_hook(span: Any, _scope: dict[str, Any]) -> None:
    """FastAPI: the request's span, as it starts."""
    if span is not None and span.is_recording():
        scrub_span(span)
