"""Missed notifications: FHIR Subscriptions number their events, so a gap can be seen.

Each backport notification carries `events-since-subscription-start`: the count of events
the EHR has sent on the subscription, this one included; a heartbeat carries the count so
far. When a notification's number jumps past the highest one seen for the connection, or a
heartbeat reports more than that, events were lost on the way (the EHR gave up retrying,
the receiver was down). The answer is a catch-up: an `events-missed` event, stored and
processed like any other, which becomes an incremental sync of the connection.

The highest number seen lives in Redis per connection; losing it (a Redis without
persistence restarted) only makes the next notification the new starting point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..orchestration.queueing import redis_connection
from .notifications import EventInfo

MISSED = "events-missed"
SOURCE = "gap-detection"
_KEY = "holovitals:inbound:events-seen:{connection_id}"

# Sets the connection's high-water mark to max(mark, ARGV[1]) and returns the old mark
# (false when there was none), in one step: two receivers may store events at once.
_RAISE_MARK = """
local old = redis.call('GET', KEYS[1])
if not old or tonumber(ARGV[1]) > tonumber(old) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return old
"""


def _missed(info: EventInfo, previous: int | None) -> bool:
    count = info.events_since
    if previous is None or count is None:
        return False
    if info.event_type == "heartbeat":
        return count > previous
    return count > previous + 1


def catch_ups(events: Sequence[tuple[int, EventInfo]]) -> list[tuple[int, EventInfo]]:
    """The `events-missed` events to store for these accepted events (often none)."""
    numbered = [(cid, info) for cid, info in events if info.events_since is not None]
    if not numbered:
        return []
    script = redis_connection().register_script(_RAISE_MARK)
    found: list[tuple[int, EventInfo]] = []
    for cid, info in sorted(numbered, key=lambda pair: pair[1].events_since or 0):
        old = script(keys=[_KEY.format(connection_id=cid)], args=[info.events_since])
        previous = int(old) if old is not None else None
        if _missed(info, previous):
            found.append((cid, dataclasses.replace(
                info, key=f"missed:{info.events_since}", source=SOURCE, event_type=MISSED,
                resource_type=None, resource_id=None, patient_ref=None, events_since=None)))
    return found
