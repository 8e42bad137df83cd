"""The RQ queues, named in one place: a family per kind of job, three priorities each.

Every service enqueues through `queue_for`, and the workers, health checks and metrics read
the same names (`config.Settings.queue_names`), so a queue is never spelt twice.
"""

from __future__ import annotations

from enum import StrEnum

from redis import Redis
from rq import Queue

from ...models import Priority
from ...telemetry.jobs import TracedQueue
from .redis import redis_connection


class Family(StrEnum):
    """A kind of job, served by its own worker processes (`holovitals-sync up`)."""

    SYNC = "sync"  # sync jobs and the end of a split full sync
    WEBHOOKS = "webhooks"  # EHR events in, deliveries out, HL7 v2 messages
    CONFLICTS = "conflicts"  # automatic resolutions, write-backs to the EHR
    TRANSFORMATIONS = "transformations"  # revalidating stored records under changed rules


def queue_for(
    family: Family, priority: Priority = Priority.DEFAULT, connection: Redis | None = None
) -> Queue:
    """The queue of one family and priority (`sync.high`, `conflicts.default`, ...); its
    jobs carry the trace they were enqueued in."""
    return TracedQueue(
        f"{family.value}.{priority.value}", connection=connection or redis_connection()
    )
