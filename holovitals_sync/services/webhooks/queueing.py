"""The webhooks queue family: inbound processing and outbound delivery jobs (ids only).

A subscription's deliveries share an RQ `RateLimit` key, so one subscription holds at most
`webhook_slots_per_subscription` workers; its other deliveries wait in RQ's rate-limited set
without occupying a worker, and a slow endpoint never delays anyone else's.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from rq import Queue, Retry
from rq.job import Job
from rq.rate_limit import RateLimit

from ...config import get_settings
from ...models import Priority
from ..platform import id_lists, job_functions
from ..platform.queues import Family, queue_for
from ..platform.redis import redis_connection

DRAIN_INBOUND = job_functions.DRAIN_INBOUND
PENDING_INBOUND = "webhooks:inbound:pending"
DRAIN_FLAG = "webhooks:inbound:drain-queued"
DELIVER = job_functions.DELIVER
RESULT_TTL = 3600
FAILURE_TTL = 7 * 24 * 3600


def not_before(seconds: float) -> datetime:
    """`seconds` from now, rounded up to a whole second.

    RQ's scheduled-job registry keeps whole seconds and truncates, so `enqueue_in(1.9 s)`
    may run after 1.0 s; a retry must never come earlier than its backoff says.
    """
    return datetime.fromtimestamp(math.ceil(time.time() + seconds), UTC)


def queue(priority: Priority = Priority.DEFAULT) -> Queue:
    """One queue of the family (`webhooks.high|default|low`)."""
    return queue_for(Family.WEBHOOKS, priority)


def enqueue_inbound(event_ids: list[int], *, front: bool = False) -> Job | None:
    """Hand stored inbound events to the webhooks queue.

    The id goes on a Redis list and one drain job empties it, instead of one RQ job per
    event: the receiver then pays one Redis round trip per event (push + "drain queued?"
    flag, pipelined), which is what lets it acknowledge thousands of events a second.
    Returns the drain job when this call had to queue one. `front`: ids a stopping drain
    gives back go first again, in their order.
    """
    if not event_ids:
        return None
    pipe = redis_connection().pipeline(transaction=False)
    if front:
        pipe.lpush(PENDING_INBOUND, *reversed(event_ids))
    else:
        pipe.rpush(PENDING_INBOUND, *event_ids)
    # The flag expires so that a lost drain job (Redis restarted) is replaced soon.
    pipe.set(DRAIN_FLAG, 1, nx=True, ex=30)
    _, first = pipe.execute()
    if not first:
        return None  # a queued drain job will find it
    return queue(Priority.HIGH).enqueue(
        DRAIN_INBOUND,
        job_timeout=3600,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        retry=Retry(max=3, interval=[1, 5, 30]),
        description="inbound events",
    )


def claim_drain() -> None:
    """A drain job starting: events pushed from now on need (and queue) another drain."""
    redis_connection().delete(DRAIN_FLAG)


def pop_inbound(count: int) -> list[int]:
    """Up to `count` event ids, oldest first, each to exactly one drain job, which calls
    `done_inbound` when it is through with them (`platform.id_lists`)."""
    return id_lists.pop(PENDING_INBOUND, count)


def done_inbound(event_ids: list[int]) -> None:
    """A drain is through with these ids (processed, failed, or given back to the list)."""
    id_lists.release(PENDING_INBOUND, event_ids)


def waiting_inbound() -> set[int]:
    """Ids that need no queueing again: listed, or held by a live drain (for the sweep)."""
    return id_lists.waiting(PENDING_INBOUND)


def slot_limit(subscription_id: int) -> RateLimit:
    """The per-subscription cap on running deliveries."""
    return RateLimit(
        f"webhook-subscription-{subscription_id}", get_settings().webhook_slots_per_subscription
    )


def enqueue_delivery(
    *,
    delivery_id: int,
    subscription_id: int,
    expected_attempts: int,
    timeout: float,
    delay: float | None = None,
    manual: bool = False,
) -> Job:
    """Queue one delivery attempt, now or after `delay` seconds (a retry).

    `expected_attempts` fences the job: it runs only if the delivery still has exactly that
    many attempts, so a retry overtaken by a manual redelivery ends quietly.
    """
    kwargs = dict(
        job_timeout=int(timeout) + 30,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        rate_limit=slot_limit(subscription_id),
        description=f"webhook delivery {delivery_id}",
    )
    q = queue(Priority.DEFAULT)
    if delay:
        return q.enqueue_at(
            not_before(delay), DELIVER, delivery_id, expected_attempts, manual, **kwargs
        )
    return q.enqueue(DELIVER, delivery_id, expected_attempts, manual, **kwargs)
