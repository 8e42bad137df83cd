"""Which failures are the infrastructure's (Redis, the database, the network), which are
permanent (no retry can fix them), and how a failure is named without PHI.

Work that fails for an infrastructure reason is kept to be tried again once things are back, however
many tries that takes; it is never marked failed for it.
"""

from __future__ import annotations

from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from ...adapters import ConfigurationError
from ...adapters.errors import WriteNotSupported
from ...fhir.errors import (
    EndlessPaging,
    FhirError,
    ForeignOriginError,
    OperationOutcomeError,
    ResourceNotFound,
    ResponseTooLarge,
)
from ...fhir.ids import InvalidId
from ..crypto import SecretDecryptError

# By class name, as a failed row records it. An inbound event failing so stays `received`
# (the sweeper queues it again once Redis and the database are back): an acknowledged event
# must never end `failed` because a worker lost Redis while stopping.
INFRASTRUCTURE = (
    "ConnectionError",
    "TimeoutError",
    "OperationalError",
    "RedisError",
    "BusyLoadingError",
    "ReadOnlyError",
    "InterfaceError",
    "DisconnectionError",
    "PoolTimeout",
    "QueueUnavailable",
    "OSError",
)


def is_expected(exc: BaseException) -> bool:
    """Failures that are the world's, not a bug (the EHR's answer, a setting, Redis or the
    database away): logged in one line, since a stack would tell nothing more."""
    return isinstance(
        exc,
        FhirError
        | ConfigurationError
        | InvalidId
        | RedisError
        | DBAPIError
        | TimeoutError
        | ConnectionError,
    )


def is_infrastructure(exc: BaseException | str) -> bool:
    """Whether a failure (an exception, or the name a row recorded) is the infrastructure's."""
    name = exc if isinstance(exc, str) else type(exc).__name__
    if not isinstance(exc, str) and isinstance(exc, RedisError | OSError | DBAPIError):
        return True
    return name.split(";", 1)[0].strip() in INFRASTRUCTURE


# EHR answers that say the request itself is wrong: asking again gets the same answer.
PERMANENT_STATUSES = {
    400: "the EHR refused the request as malformed",
    404: "the EHR does not have it",
    410: "the EHR deleted it",
    422: "the EHR refused the request's content",
}


def permanent_reason(exc: BaseException) -> str | None:
    """Why no retry can fix this failure, or None for one that may pass (429, 5xx, timeouts).

    Configuration errors (a type the EHR does not serve, a missing tenant id, a write the
    vendor does not take, a next link to another host) and 400/404/410/422 answers fail the
    job at once: retried, they only fail again minutes later and hold a worker meanwhile.
    """
    if isinstance(exc, ConfigurationError | WriteNotSupported | SecretDecryptError):
        return "a configuration error"
    if isinstance(exc, ForeignOriginError):
        return "the EHR sent a link to another host"
    if isinstance(exc, InvalidId):
        return "an id that is not a FHIR id"
    if isinstance(exc, EndlessPaging):
        return "the EHR's paging does not end"
    if isinstance(exc, ResponseTooLarge):
        return "the EHR's answer is larger than HOLOVITALS_HTTP_MAX_RESPONSE_BYTES"
    if isinstance(exc, OperationOutcomeError | ResourceNotFound) and exc.status is not None:
        return PERMANENT_STATUSES.get(exc.status)
    return None


def safe_error(exc: BaseException) -> str:
    """Exception class and a message that cannot carry PHI (no URLs, no resource text)."""
    name = type(exc).__name__
    if isinstance(exc, ConfigurationError | SecretDecryptError):
        text = f"{name}: {exc}"[:1900]  # these name settings, never data
    else:
        status = getattr(exc, "status", None) if isinstance(exc, FhirError) else None
        text = f"{name}: HTTP {status}" if status else name
    reason = permanent_reason(exc)
    return f"{text} (not retried: {reason})" if reason else text
