"""Typed errors of the FHIR client and the table that tells the retry layer what to do.

Errors are data (Airbyte CDK style): `RESOLUTIONS` maps an HTTP status to an `Action`, and
`error_from_response` turns a final response into one exception of the `FhirError` family.

Messages never carry resource bodies or server diagnostics (they may contain PHI): only the
status, the URL of the connection's own server, and OperationOutcome severities and codes.
The issues themselves are kept on the exception for callers that store them safely.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

import httpx
import orjson


class Action(enum.Enum):
    """What the HTTP layer does with a response of a given status."""

    SUCCESS = "success"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    REFRESH_TOKEN_THEN_RETRY = "refresh_token_then_retry"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Resolution:
    """One row of the status table: the action and a short reason for logs."""

    action: Action
    reason: str = ""


# Statuses not listed: 2xx/3xx succeed, other 4xx fail at once, other 5xx fail after no retry.
RESOLUTIONS: dict[int, Resolution] = {
    401: Resolution(Action.REFRESH_TOKEN_THEN_RETRY, "token rejected"),
    408: Resolution(Action.RETRY, "request timeout"),
    429: Resolution(Action.RATE_LIMITED, "rate limited"),
    502: Resolution(Action.RETRY, "bad gateway"),
    503: Resolution(Action.RETRY, "service unavailable"),
    504: Resolution(Action.RETRY, "gateway timeout"),
}


def resolve(status: int) -> Resolution:
    """Return the resolution for an HTTP status.

    Args:
        status: The HTTP status code.

    Returns:
        The table entry, `SUCCESS` for 1xx-3xx, `FAIL` for anything else.
    """
    if status in RESOLUTIONS:
        return RESOLUTIONS[status]
    if status < 400:
        return Resolution(Action.SUCCESS)
    return Resolution(Action.FAIL, f"HTTP {status}")


# Token-looking material that must never reach a log line or an exception message.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    re.compile(r"(Basic\s+)[A-Za-z0-9+/]{8,}=*"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|id_token|client_secret|client_assertion"
        r"|assertion|password)[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"
    ),
    # A compact JWS anywhere in the text (three base64url segments starting with '{"').
    re.compile(r"()eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
)


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask bearer tokens, client secrets, assertions and the given known secrets in text.

    Args:
        text: Any text about to be logged or put in an exception message.
        secrets: Known secret values of the connection (masked wherever they appear).

    Returns:
        The text with every secret replaced by `****`.
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "****")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1****", text)
    return text


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome issue. `diagnostics` may contain PHI: never log it."""

    severity: str
    code: str
    diagnostics: str | None = None


class FhirError(Exception):
    """Base of every error raised by the FHIR client."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None):
        super().__init__(mask_secrets(message))
        self.status = status
        self.url = url


class OperationOutcomeError(FhirError):
    """A 4xx/5xx answer, with the server's OperationOutcome issues when it sent any."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        issues: tuple[Issue, ...] = (),
        retry_after: float | None = None,
    ):
        super().__init__(message, status=status, url=url)
        self.issues = issues
        # Seconds the server asked to wait (429/503 `Retry-After`), so the job's own retry
        # can wait at least that long instead of hitting the EHR again at once.
        self.retry_after = retry_after


class ResourceNotFound(OperationOutcomeError):
    """404 Not Found or 410 Gone."""


class AuthenticationError(OperationOutcomeError):
    """401 even after one token renewal, or the token endpoint refused the client."""


class AuthorizationError(OperationOutcomeError):
    """403: the token lacks the scope or the client is not mapped to a user."""


class PreconditionFailed(OperationOutcomeError):
    """412 (or 409 where the vendor answers stale writes so): the EHR version moved on."""


class RateLimited(OperationOutcomeError):
    """429 after every retry was used."""


class ServerError(OperationOutcomeError):
    """5xx after every retry was used (or a 5xx that is not retried)."""


class TransportError(FhirError):
    """Connection error or timeout after every retry was used."""


class EndlessPaging(FhirError):
    """A paged search went past `max_pages` (or made no progress for too long): the server's
    paging does not end, and the job fails instead of holding a worker for ever."""


class ResponseTooLarge(FhirError):
    """The EHR's answer is larger than the connection allows (`max_response_bytes`)."""


class MalformedResponse(FhirError):
    """A body that is not valid JSON, or a Bundle that is not a Bundle. `url` names the page."""


class TruncatedFile(MalformedResponse):
    """An NDJSON file that ended early; lines before `line_number` were already delivered."""

    def __init__(self, message: str, *, url: str, line_number: int):
        super().__init__(message, url=url)
        self.line_number = line_number


class ForeignOriginError(FhirError):
    """A next link or manifest URL on another origin than the connection's own."""


def parse_issues(body: bytes) -> tuple[Issue, ...]:
    """Read the issues of an OperationOutcome body; anything else gives no issues.

    Args:
        body: The raw response body.

    Returns:
        The issues found, possibly empty.
    """
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return ()
    if not isinstance(data, dict) or data.get("resourceType") != "OperationOutcome":
        return ()
    issues = []
    for raw in data.get("issue") or []:
        if isinstance(raw, dict):
            issues.append(
                Issue(
                    severity=str(raw.get("severity", "")),
                    code=str(raw.get("code", "")),
                    diagnostics=raw.get("diagnostics"),
                )
            )
    return tuple(issues)


def _status_class(status: int, conflict_is_precondition: bool) -> type[OperationOutcomeError]:
    if status in (404, 410):
        return ResourceNotFound
    if status == 401:
        return AuthenticationError
    if status == 403:
        return AuthorizationError
    if status == 412 or (status == 409 and conflict_is_precondition):
        return PreconditionFailed
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    return OperationOutcomeError


def error_from_response(
    response: httpx.Response, *, conflict_is_precondition: bool = False
) -> OperationOutcomeError:
    """Map a failed response to the matching exception of the family.

    The body must already be read. The message holds the method, URL, status and issue
    codes, never diagnostics or body text.

    Args:
        response: The final (non-retried) response with a 4xx or 5xx status.
        conflict_is_precondition: Treat 409 as a stale write (Oracle Health does).

    Returns:
        The exception to raise.
    """
    status = response.status_code
    issues = parse_issues(response.content)
    url = str(response.request.url)
    codes = ", ".join(f"{i.severity}/{i.code}" for i in issues)
    message = f"{response.request.method} {url} answered {status}"
    if codes:
        message += f" (issues: {codes})"
    if status == 401:
        message += (
            ": the server refused the access token (renewed once first where the credentials allow)"
        )
    cls = _status_class(status, conflict_is_precondition)
    # Imported here: retry.py imports this module for the status table.
    from holovitals_sync.fhir.retry import parse_retry_after

    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return cls(message, status=status, url=url, issues=issues, retry_after=retry_after)
