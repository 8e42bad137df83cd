"""RQ job entry points of the webhooks queue family (thin: they call the services)."""

from __future__ import annotations

from rq import get_current_job

from holovitals_sync.services import event_jobs
from holovitals_sync.services.webhooks import delivery


def drain_inbound() -> int:
    """Turn every queued inbound event into its sync job (or just acknowledge it)."""
    return event_jobs.drain()


def process_inbound(event_id: int) -> str:
    """Process one stored inbound event: a retry after a passing failure, or by hand.

    A passing failure raises, so RQ's `Retry` (set when the retry was queued) runs it again
    after the next backoff; on the last attempt the event's row records that retries ran out.
    """
    job = get_current_job()
    retries_left = (job.retries_left or 0) if job is not None else 0
    return event_jobs.process_event(event_id, retries_left=retries_left)


def deliver(delivery_id: int, expected_attempts: int, manual: bool = False) -> str:
    """One attempt of an outbound delivery; retries are queued by the service."""
    return delivery.deliver(delivery_id, expected_attempts, manual)
