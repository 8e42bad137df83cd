"""The process-wide Redis connection: queues, job events, change notices, counters."""

from __future__ import annotations

from functools import lru_cache

from redis import Redis

from ...config import get_settings


class QueueUnavailable(RuntimeError):
    """No Redis is configured for this process."""


@lru_cache(maxsize=1)
def redis_connection() -> Redis:
    """The process-wide Redis connection (redis-py pools are fork-safe)."""
    url = get_settings().redis_url
    if url is None:
        raise QueueUnavailable("HOLOVITALS_REDIS_URL is not set: jobs cannot be queued")
    return Redis.from_url(url)
