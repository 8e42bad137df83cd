"""Stored messages handed to the webhooks queue family: a Redis list and one drain job.

The same shape as inbound webhook events (`services.webhooks.queueing`): the listener pays
one pipelined Redis round trip per batch, and one drain job empties the list. A message
stored but never queued (the listener died between commit and push, or Redis was away)
stays `received`, and the webhooks maintenance queues it again (`sweep`).
"""

from __future__ import annotations

from rq import Retry
from rq.job import Job

from ...models import Priority
from ..platform import id_lists, job_functions
from ..platform.queues import Family, queue_for
from ..platform.redis import redis_connection

PENDING = "hl7:pending"
DRAIN_FLAG = "hl7:drain-queued"
DRAIN = job_functions.DRAIN_HL7
RESULT_TTL = 3600
FAILURE_TTL = 7 * 24 * 3600


def enqueue_messages(message_ids: list[int], *, front: bool = False) -> Job | None:
    """Push stored message ids and queue a drain job unless one is queued already."""
    if not message_ids:
        return None
    pipe = redis_connection().pipeline(transaction=False)
    if front:
        pipe.lpush(PENDING, *reversed(message_ids))
    else:
        pipe.rpush(PENDING, *message_ids)
    # Expires so that a drain job lost with a restarted Redis is replaced soon.
    pipe.set(DRAIN_FLAG, 1, nx=True, ex=30)
    _, first = pipe.execute()
    if not first:
        return None
    queue = queue_for(Family.WEBHOOKS, Priority.HIGH)
    return queue.enqueue(
        DRAIN,
        job_timeout=3600,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        retry=Retry(max=3, interval=[1, 5, 30]),
        description="HL7 messages",
    )


def claim_drain() -> None:
    """A drain starting: ids pushed from now on queue another drain."""
    redis_connection().delete(DRAIN_FLAG)


def pop_messages(count: int) -> list[int]:
    """Up to `count` ids, oldest first, each to exactly one drain, which calls `done` when it
    is through with them (`platform.id_lists`)."""
    return id_lists.pop(PENDING, count)


def done(message_ids: list[int]) -> None:
    """A drain is through with these ids (processed, failed, or given back to the list)."""
    id_lists.release(PENDING, message_ids)


def waiting() -> set[int]:
    """Ids that need no queueing again: listed, or held by a live drain (for the sweep)."""
    return id_lists.waiting(PENDING)
