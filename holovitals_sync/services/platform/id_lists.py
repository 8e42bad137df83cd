"""Ids on a Redis list that drain jobs pop, and the ids each drain holds until it is through.

Inbound webhook events and HL7 messages are stored first and queued as ids on a list; a
drain job pops a batch and processes it. The sweep of the webhooks maintenance queues again
any stored row still `received` that is not waiting. Popped but not yet processed, a batch's
ids are on no list: without a record of them a sweep took them for lost, and a backlog older
than the sweep's age had rows processed twice at once (two sync jobs for one event). So a pop
also notes its ids in a sorted set, scored by the time, and the drain removes them when it is
through; `waiting` counts them as waiting for `LEASE` seconds, after which their drain is
taken for dead and the sweep queues them again.
"""

from __future__ import annotations

import time

from .redis import redis_connection

# A drain's batch takes seconds (measured under the closed-loop webhook benchmark, workers
# busy: ~5 s for 200 events); ids held far longer belong to a drain that died.
LEASE = 300.0
# Pop and note in one step: an id is always on the list, held, or with a drain that holds it.
_POP = """
local ids = redis.call('LPOP', KEYS[1], ARGV[1])
if not ids then return {} end
local scored = {}
for _, id in ipairs(ids) do
  scored[#scored + 1] = ARGV[2]
  scored[#scored + 1] = id
end
redis.call('ZADD', KEYS[2], unpack(scored))
return ids
"""


def held_key(pending: str) -> str:
    """The sorted set of ids popped from the list `pending` and not yet released."""
    return f"{pending}:held"


def pop(pending: str, count: int) -> list[int]:
    """Up to `count` ids, oldest first, each to exactly one caller, who `release`s them."""
    script = redis_connection().register_script(_POP)
    ids = script(keys=[pending, held_key(pending)], args=[count, time.time()])
    return [int(i) for i in ids]


def release(pending: str, ids: list[int]) -> None:
    """The caller is through with these ids (processed, failed, or pushed back)."""
    if ids:
        redis_connection().zrem(held_key(pending), *ids)


def waiting(pending: str) -> set[int]:
    """Ids that will be processed without being queued again: on the list, or held within
    the lease. Read in one transaction, so an id popped meanwhile is seen on one side or the
    other; ids held past the lease are dropped from the set."""
    stale = time.time() - LEASE
    pipe = redis_connection().pipeline(transaction=True)
    pipe.lrange(pending, 0, -1)
    pipe.zrangebyscore(held_key(pending), stale, "+inf")
    pipe.zremrangebyscore(held_key(pending), "-inf", f"({stale}")
    listed, held, _ = pipe.execute()
    return {int(i) for i in listed} | {int(i) for i in held}
