"""Missed notifications: FHIR Subscriptions number their events, so a gap can be seen.

Each backport notification carries `events-since-subscription-start`: the count of events
the EHR has sent on the subscription, this one included; a heartbeat carries the count so
far. When numbers are missing below the highest one seen, or a heartbeat counts more events
than have arrived, events may have been lost on the way (the EHR gave up retrying, the
receiver was down). The answer is a catch-up: an `events-missed` event, stored and
processed like any other, which becomes an incremental sync of the connection.

Concurrent senders (and several receiving processes) deliver out of order: 5 may arrive
before 4. So a hole is only suspected when it appears; the catch-up event is stored at once
(durable, acknowledged with the notification) but processed only after `GRACE_SECONDS`,
and then only if the hole is still there (`hole_state`). Reordered notifications fill
the hole meanwhile and the catch-up ends without a sync.

Per connection Redis holds the `floor` (every number up to it has arrived or been caught
up), the numbers seen above the floor, the highest hole already reported (one catch-up per
hole) and the spans of numbers recent catch-up syncs jumped over (so that catch-ups decided
in any order tell lost from late, see `Hole`). Losing them (a Redis without persistence
restarted) only makes the next notification the new starting point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum

from ...models.types import utcnow
from ..platform.redis import redis_connection
from .notifications import EventInfo

MISSED = "events-missed"
SOURCE = "gap-detection"
KEY_PREFIX = "missed:"
# Long enough for concurrent deliveries to overtake each other, short enough that a real
# loss is caught up within seconds.
GRACE_SECONDS = 10.0
_FLOOR = "holovitals:inbound:events-floor:{connection_id}"
_SEEN = "holovitals:inbound:events-above-floor:{connection_id}"
_REPORTED = "holovitals:inbound:events-hole-reported:{connection_id}"
_COVERS = "holovitals:inbound:events-covered:{connection_id}"

# A connection's numbered events of one batch, in one step (two receivers may store events
# at once). ARGV: pairs of the number and "1" for a heartbeat, in the order to note them.
# Returns per event the number the floor must reach for the hole that event shows to be
# filled, when that hole is news (not reported before); else 0. A notification shows a hole
# when the number just below it is missing; a heartbeat, when it counts beyond every number
# seen. One call per connection and batch: a call per event cost the receiver's follow-up
# thread more than the rest of its work.
_NOTE = """
local function note(n, heartbeat)
  local floor = tonumber(redis.call('GET', KEYS[1]))
  if not floor then
    redis.call('SET', KEYS[1], n)
    return 0
  end
  if n <= floor then return 0 end
  local reported = tonumber(redis.call('GET', KEYS[3]) or '0')
  local news = false
  if heartbeat == '1' then
    local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
    news = not (top[2] and tonumber(top[2]) >= n)
  else
    if redis.call('ZADD', KEYS[2], n, n) == 0 then return 0 end
    news = n - 1 > floor and not redis.call('ZSCORE', KEYS[2], n - 1)
    while redis.call('ZSCORE', KEYS[2], floor + 1) do
      floor = floor + 1
      redis.call('ZREM', KEYS[2], floor)
    end
    redis.call('SET', KEYS[1], floor)
  end
  if not news or n <= reported then return 0 end
  redis.call('SET', KEYS[3], n)
  return n
end
local needs = {}
for i = 1, #ARGV, 2 do
  needs[#needs + 1] = note(tonumber(ARGV[i]), ARGV[i + 1])
end
return needs
"""

# A catch-up's sync was asked for: everything up to max(ARGV[1], highest seen) is covered
# by it, and the floor moves there. The numbers it jumps over (never arrived) are kept as
# "first:last" spans (the last ARGV[2] of them), so that a catch-up decided afterwards can
# tell whether its own hole was lost and caught up, or filled by late arrivals.
_COVER = """
local new = tonumber(ARGV[1])
local seen = redis.call('ZRANGE', KEYS[2], 0, -1)
if #seen > 0 and tonumber(seen[#seen]) > new then new = tonumber(seen[#seen]) end
local floor = tonumber(redis.call('GET', KEYS[1]) or '0')
if new <= floor then return floor end
local expect = floor + 1
for _, member in ipairs(seen) do
  local v = tonumber(member)
  if v > expect then redis.call('ZADD', KEYS[4], v - 1, expect .. ':' .. (v - 1)) end
  if v >= expect then expect = v + 1 end
end
if expect <= new then redis.call('ZADD', KEYS[4], new, expect .. ':' .. new) end
redis.call('SET', KEYS[1], new)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', new)
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -tonumber(ARGV[2]) - 1)
return new
"""
COVERS_KEPT = 50


class Hole(StrEnum):
    """What became of the numbers a catch-up was stored for, once its grace period ended."""

    OPEN = "open"  # still missing: sync
    CAUGHT_UP = "caught-up"  # lost, and another catch-up's sync covers them: sync (collapses)
    FILLED = "filled"  # they arrived late (reordered): nothing to do


def _keys(connection_id: int) -> list[str]:
    return [k.format(connection_id=connection_id) for k in (_FLOOR, _SEEN, _REPORTED, _COVERS)]


def _catch_up(info: EventInfo, need: int) -> EventInfo:
    return dataclasses.replace(
        info,
        key=f"{KEY_PREFIX}{need}",
        source=SOURCE,
        event_type=MISSED,
        resource_type=None,
        resource_id=None,
        patient_ref=None,
        events_since=None,
    )


def catch_ups(events: Sequence[tuple[int, EventInfo]]) -> list[tuple[int, EventInfo]]:
    """The `events-missed` events to store for these accepted events (often none).

    One per newly seen hole; whether it turns into a sync is decided after the grace
    period (see `hole_state`).
    """
    by_connection: dict[int, list[EventInfo]] = {}
    for cid, info in sorted(events, key=lambda pair: pair[1].events_since or 0):
        if info.events_since is not None:
            by_connection.setdefault(cid, []).append(info)
    if not by_connection:
        return []
    client = redis_connection()
    script = client.register_script(_NOTE)
    # One round trip per batch, not per event (the receiver's hot path): pipelined scripts
    # still run one at a time.
    pipe = client.pipeline(transaction=False)
    for cid, infos in by_connection.items():
        args = [value for info in infos for value in _note_args(info)]
        script(keys=_keys(cid), args=args, client=pipe)
    found: list[tuple[int, EventInfo]] = []
    for (cid, infos), needs in zip(by_connection.items(), pipe.execute(), strict=True):
        found.extend(
            (cid, _catch_up(info, int(need)))
            for info, need in zip(infos, needs, strict=True)
            if need
        )
    return found


def _note_args(info: EventInfo) -> tuple[int, str]:
    return info.events_since or 0, "1" if info.event_type == "heartbeat" else "0"


def needed(event_key: str | None) -> int | None:
    """The number a catch-up waits for, from its key (None: not a numbered catch-up)."""
    if not event_key or not event_key.startswith(KEY_PREFIX):
        return None
    number = event_key[len(KEY_PREFIX) :]
    return int(number) if number.isdecimal() else None


def grace_left(received_at: datetime, now: datetime | None = None) -> float:
    """Seconds until a catch-up received at `received_at` may be decided (0: now)."""
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=UTC)  # stored as UTC
    elapsed = ((now or utcnow()) - received_at).total_seconds()
    return max(0.0, GRACE_SECONDS - elapsed)


def hole_state(connection_id: int, need: int | None) -> Hole:
    """Whether the hole a catch-up was stored for is still open (reading only).

    Unknown state (no number, or Redis lost the floor) counts as open: an extra incremental
    sync costs less than a lost event.
    """
    redis = redis_connection()
    floor = redis.get(_FLOOR.format(connection_id=connection_id))
    if need is None or floor is None or int(floor) < need:
        return Hole.OPEN
    # The hole just below `need` (or `need` itself, for a heartbeat's count) in a lost span?
    spans = redis.zrangebyscore(_COVERS.format(connection_id=connection_id), need - 1, "+inf")
    caught_up = any(int(span.split(b":")[0]) <= need for span in spans)
    return Hole.CAUGHT_UP if caught_up else Hole.FILLED


def covered(connection_id: int, need: int | None) -> None:
    """A catch-up sync was asked for: the numbers up to the highest seen need no other."""
    if need is None:
        return
    script = redis_connection().register_script(_COVER)
    script(keys=_keys(connection_id), args=[need, COVERS_KEPT])
