"""Which failures are the infrastructure's (Redis, the database, the network), not the work's.

Work that fails for such a reason is kept to be tried again once things are back, however
many tries that takes; it is never marked failed for it.
"""

from __future__ import annotations

from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

# By class name, as a failed row records it. An inbound event failing so stays `received`
# (the sweeper queues it again once Redis and the database are back): an acknowledged event
# must never end `failed` because a worker lost Redis while stopping.
INFRASTRUCTURE = ("ConnectionError", "TimeoutError", "OperationalError", "RedisError",
                  "BusyLoadingError", "ReadOnlyError", "InterfaceError", "DisconnectionError",
                  "PoolTimeout", "QueueUnavailable", "OSError")


def is_infrastructure(exc: BaseException | str) -> bool:
    """Whether a failure (an exception, or the name a row recorded) is the infrastructure's."""
    name = exc if isinstance(exc, str) else type(exc).__name__
    if not isinstance(exc, str) and isinstance(exc, RedisError | OSError | DBAPIError):
        return True
    return name.split(";", 1)[0].strip() in INFRASTRUCTURE

