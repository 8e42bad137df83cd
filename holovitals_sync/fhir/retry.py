"""Retry policy: which failures are retried and how long to wait before the next attempt.

Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
Jitter"), except when the server says how long to wait with `Retry-After`, which is
honoured up to a configurable cap so a misbehaving server cannot park a worker for hours.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from holovitals_sync.fhir.errors import Action, resolve

# Methods whose repetition cannot create a second resource. A POST (create, transaction)
# or PATCH is retried only when the server surely did not process it.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Statuses meaning "not processed": safe to retry even a non-idempotent request.
NOT_PROCESSED_STATUSES = frozenset({429, 503})
# Transport errors raised before the request left this machine.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times and how patiently to retry.

    Attributes:
        max_attempts: Total attempts including the first (1 = no retry).
        base_delay: First backoff ceiling in seconds; doubles per attempt.
        max_delay: Ceiling of one backoff sleep in seconds.
        max_retry_after: Cap in seconds on a server-given `Retry-After`.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a `Retry-After` header given in seconds or as an HTTP-date.

    Args:
        value: The header value, or None when absent.
        now: The current time (for tests); defaults to the clock.

    Returns:
        Seconds to wait (never negative), or None when absent or unreadable.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """Full-jitter backoff: a random delay in [0, min(max_delay, base * 2**(attempt-1))].

    Args:
        policy: The retry policy.
        attempt: The number of the attempt that just failed (1-based).
        rng: Random source (for tests).

    Returns:
        Seconds to sleep before the next attempt.
    """
    ceiling = min(policy.max_delay, policy.base_delay * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(0, ceiling)


def retry_delay(policy: RetryPolicy, attempt: int, response: httpx.Response | None) -> float:
    """Delay before the next attempt: `Retry-After` when the server gave one, else backoff.

    Args:
        policy: The retry policy.
        attempt: The number of the attempt that just failed (1-based).
        response: The failed response, or None after a transport error.

    Returns:
        Seconds to sleep.
    """
    if response is not None:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None:
            return min(retry_after, policy.max_retry_after)
    return backoff_delay(policy, attempt)


def should_retry_status(status: int, method: str) -> bool:
    """Whether a response status is retried for this HTTP method.

    Args:
        status: The HTTP status.
        method: The request method.

    Returns:
        True for 408/429/502/503/504 on idempotent methods, 429/503 on the others.
    """
    action = resolve(status).action
    if action not in (Action.RETRY, Action.RATE_LIMITED):
        return False
    return method.upper() in IDEMPOTENT_METHODS or status in NOT_PROCESSED_STATUSES


def should_retry_error(exc: httpx.TransportError, method: str) -> bool:
    """Whether a transport error is retried for this HTTP method.

    Args:
        exc: The httpx transport error (connection error, timeout, dropped connection).
        method: The request method.

    Returns:
        True for any transport error on idempotent methods; only not-sent errors otherwise.
    """
    return method.upper() in IDEMPOTENT_METHODS or isinstance(exc, NOT_SENT_ERRORS)
