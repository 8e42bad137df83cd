"""What operators see of a feed: messages per minute, last message, ACK codes, rejects with
their reason, and who is connected — counted in Redis, never one database row per message.

The listener counts in memory and writes once a second (`FeedCounter.flush`); readers
(`feed_view`) sum the buckets. Nothing here holds message content: counts, control-free
reasons (fixed phrases), sender names (MSH-3/MSH-4) and peer addresses.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from redis import Redis

MINUTE_KEY = "hl7:stats:{cid}:m:{minute}"
DAY_KEY = "hl7:stats:{cid}:d:{day}"
LAST_KEY = "hl7:stats:{cid}:last"
REJECTS_KEY = "hl7:rejects:{cid}"
SAMPLE_KEY = "hl7:rejects:{cid}:sample"
SENDERS_KEY = "hl7:senders:{listener}"
MINUTE_TTL = 2 * 86_400
DAY_TTL = 9 * 86_400
SAMPLE_SIZE = 50
SENDERS_TTL = 15  # a listener refreshes its snapshot every few seconds
UNMATCHED = 0  # rejects of a sender no feed names belong to no connection


def _minute(now: float) -> int:
    return int(now // 60)


def _day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")


@dataclass
class FeedCounter:
    """The listener's counts since its last flush."""

    counts: Counter[tuple[int, str]] = field(default_factory=Counter)  # (cid, code) -> n
    last: dict[int, float] = field(default_factory=dict)
    rejects: list[tuple[int, str, str, float]] = field(default_factory=list)

    def acked(self, connection_id: int, code: str) -> None:
        self.counts[(connection_id, code)] += 1
        self.last[connection_id] = time.time()

    def rejected(
        self, connection_id: int | None, code: str, reason: str, peer: str, sender: str = ""
    ) -> None:
        """An AR or AE: counted with its code, and its reason kept (an unmatched sender's
        reason names the sender, so an operator can add the feed)."""
        cid = connection_id or UNMATCHED
        self.counts[(cid, code)] += 1
        detail = f"{reason} ({sender})" if sender and cid == UNMATCHED else reason
        self.rejects.append((cid, detail[:200], peer, time.time()))

    def flush(self, redis: Redis) -> None:
        """Write and reset the counts (one pipelined round trip)."""
        counts, last, rejects = self.counts, self.last, self.rejects
        self.counts, self.last, self.rejects = Counter(), {}, []
        if not (counts or rejects):
            return
        now = time.time()
        pipe = redis.pipeline(transaction=False)
        for (cid, code), n in counts.items():
            if not n:
                continue
            for key, ttl in (
                (MINUTE_KEY.format(cid=cid, minute=_minute(now)), MINUTE_TTL),
                (DAY_KEY.format(cid=cid, day=_day(now)), DAY_TTL),
            ):
                pipe.hincrby(key, code, n)
                pipe.hincrby(key, "messages", n)
                pipe.expire(key, ttl)
        for cid, at in last.items():
            pipe.set(LAST_KEY.format(cid=cid), f"{at:.3f}")
        for cid, reason, peer, at in rejects:
            pipe.hincrby(REJECTS_KEY.format(cid=cid), reason, 1)
            sample = SAMPLE_KEY.format(cid=cid)
            pipe.lpush(sample, orjson.dumps({"at": round(at, 3), "reason": reason, "peer": peer}))
            pipe.ltrim(sample, 0, SAMPLE_SIZE - 1)
        pipe.execute()


def publish_senders(redis: Redis, listener: str, senders: list[dict[str, Any]]) -> None:
    """The listener's open connections now (peer, connection, sender, since, messages)."""
    redis.set(SENDERS_KEY.format(listener=listener), orjson.dumps(senders), ex=SENDERS_TTL)


def connected_senders(redis: Redis) -> list[dict[str, Any]]:
    """Every live listener's open connections."""
    senders: list[dict[str, Any]] = []
    for key in redis.scan_iter(match=SENDERS_KEY.format(listener="*"), count=100):
        raw = redis.get(key)
        if raw:
            senders += orjson.loads(raw)
    return senders


def last_message_at(redis: Redis, connection_id: int) -> float | None:
    raw = redis.get(LAST_KEY.format(cid=connection_id))
    return float(raw) if raw else None


def messages_since(redis: Redis, connection_id: int, days: int) -> int:
    """Messages acknowledged over the last `days` days (today included)."""
    now = time.time()
    keys = [DAY_KEY.format(cid=connection_id, day=_day(now - d * 86_400)) for d in range(days + 1)]
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.hget(key, "messages")
    return sum(int(v or 0) for v in pipe.execute())


def feed_view(redis: Redis, connection_id: int, *, minutes: int = 15) -> dict[str, Any]:
    """A connection's feed for the dashboard and the API (counts and reasons only)."""
    now = time.time()
    pipe = redis.pipeline(transaction=False)
    for m in range(minutes):
        pipe.hgetall(MINUTE_KEY.format(cid=connection_id, minute=_minute(now) - m))
    pipe.hgetall(DAY_KEY.format(cid=connection_id, day=_day(now)))
    pipe.get(LAST_KEY.format(cid=connection_id))
    pipe.hgetall(REJECTS_KEY.format(cid=connection_id))
    pipe.lrange(SAMPLE_KEY.format(cid=connection_id), 0, 9)
    *per_minute, today, last, rejects, sample = pipe.execute()
    series = [int(bucket.get(b"messages", 0)) for bucket in reversed(per_minute)]
    ack_today = {code: int(today.get(code.encode(), 0)) for code in ("AA", "AE", "AR")}
    by_reason: dict[str, int] = defaultdict(int)
    for reason, n in rejects.items():
        by_reason[reason.decode()] += int(n)
    senders = [s for s in connected_senders(redis) if s.get("connection_id") == connection_id]
    return {
        "connection_id": connection_id,
        "messages_per_minute": series,  # oldest first, the current minute last
        "last_message_at": (datetime.fromtimestamp(float(last), UTC).isoformat() if last else None),
        "acks_today": ack_today,
        "rejects": dict(sorted(by_reason.items(), key=lambda kv: -kv[1])),
        "recent_rejects": [orjson.loads(entry) for entry in sample],
        "senders": senders,
    }
