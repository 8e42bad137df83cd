"""The connection's request gate, shared through Redis: at most `concurrency_limit` of our
requests in flight at one EHR, whichever jobs, streams, workers or machines send them.

A slot is a member of a sorted set scored by when its lease ends. Leases are short
(`LEASE`) and renewed every `RENEW_EVERY` by one thread per process while requests are in
flight, so a worker killed mid-request gives its slots back within seconds, and a request
that takes minutes keeps its slot. Taking a slot first drops expired leases; taking and
giving back are one round trip each, small beside any EHR request.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis
from redis.exceptions import RedisError

LEASE = 15.0
RENEW_EVERY = 5.0
WAIT_STEP = 0.01  # first wait for a busy gate; doubles up to WAIT_MAX
WAIT_MAX = 0.2

# KEYS[1] the set; ARGV: limit, now, lease end, member. 1 when taken.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
    redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[3]) - tonumber(ARGV[2])) * 1000))
    return 1
end
return 0
"""


def gate_key(connection_id: int) -> str:
    return f"holovitals:gate:{connection_id}"


class _Renewer:
    """One thread per process extends the leases of the slots this process holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[int, str, str], Redis] = {}  # (client id, key, member)
        self._pid = -1

    def hold(self, redis: Redis, key: str, member: str) -> None:
        with self._lock:
            self._held[(id(redis), key, member)] = redis
            if self._pid != os.getpid():  # first use here, or a forked child: no thread yet
                self._pid = os.getpid()
                threading.Thread(target=self._run, daemon=True, name="gate-renew").start()

    def drop(self, redis: Redis, key: str, member: str) -> None:
        with self._lock:
            self._held.pop((id(redis), key, member), None)

    def _run(self) -> None:
        me = os.getpid()
        while self._pid == me:
            time.sleep(RENEW_EVERY)
            with self._lock:
                held = list(self._held.items())
            for (_, key, member), redis in held:
                try:  # XX: only a lease still held (a dropped one stays dropped)
                    redis.zadd(key, {member: time.time() + LEASE}, xx=True)
                    redis.expire(key, int(LEASE) + 1)
                except RedisError:
                    continue


_renewer = _Renewer()


class RedisGate:
    """`fhir.gate.RequestGate` over a Redis sorted set per connection."""

    def __init__(self, redis: Redis, connection_id: int, limit: int) -> None:
        self.redis, self.key = redis, gate_key(connection_id)
        self.limit = max(1, limit)
        self._take = redis.register_script(_TAKE)

    @contextmanager
    def slot(self) -> Iterator[None]:
        member = uuid.uuid4().hex
        wait = WAIT_STEP
        while not self._take(
            keys=[self.key], args=[self.limit, time.time(), time.time() + LEASE, member]
        ):
            time.sleep(wait)
            wait = min(wait * 2, WAIT_MAX)
        _renewer.hold(self.redis, self.key, member)
        try:
            yield
        finally:
            _renewer.drop(self.redis, self.key, member)
            self.redis.zrem(self.key, member)

    def in_flight(self) -> int:
        """Slots held now (expired leases not counted)."""
        return int(self.redis.zcount(self.key, time.time(), "+inf"))
