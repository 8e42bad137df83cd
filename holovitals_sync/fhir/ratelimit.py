"""Client-side token-bucket rate limiter, shared by every client of one base URL.

Some vendors count requests per base URL (eClinicalWorks: 250/min per practice, token calls
included) and block everything to the end of the minute on a 429, so the worker has to stay
under the limit itself. The bucket is per process: size the limit for the number of worker
processes sharing a base URL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """A thread-safe token bucket refilled at `requests_per_minute / 60` tokens per second."""

    def __init__(
        self,
        requests_per_minute: float,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """Create a limiter.

        Args:
            requests_per_minute: Sustained rate allowed.
            burst: Bucket size; defaults to a tenth of the per-minute rate (at least 1), so
                a worker never sends a whole minute's quota in one burst.
            clock: Monotonic clock (for tests).
            sleep: Sleep function (for tests).
        """
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self.rate = requests_per_minute / 60.0
        default_burst = max(1, int(requests_per_minute // 10))
        self.capacity = float(burst if burst is not None else default_burst)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def _reserve(self) -> float:
        """Take one token, possibly going into debt; return how long the caller must wait."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            # Debt is repaid by waiting: callers queue up fairly in reservation order.
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> float:
        """Block until one request may be sent.

        Returns:
            Seconds spent waiting.
        """
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


_registry: dict[tuple[str, float], RateLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(base_url: str, requests_per_minute: float | None) -> RateLimiter | None:
    """Return the process-wide limiter of a base URL, creating it on first use.

    Args:
        base_url: The connection's FHIR base URL (the vendor's unit of counting).
        requests_per_minute: The limit, or None for no limiter.

    Returns:
        The shared limiter, or None when no limit is configured.
    """
    if not requests_per_minute:
        return None
    key = (base_url.rstrip("/"), float(requests_per_minute))
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = _registry[key] = RateLimiter(requests_per_minute)
        return limiter
