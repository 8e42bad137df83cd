"""RQ job entry points of the webhooks queue family (thin: they call the services)."""

from __future__ import annotations

from holovitals_sync.services.webhooks import delivery, processing


def drain_inbound() -> int:
    """Turn every queued inbound event into its sync job (or just acknowledge it)."""
    return processing.drain()


def process_inbound(event_id: int) -> str:
    """Process one stored inbound event (by hand, e.g. after fixing a failure)."""
    return processing.process_event(event_id)


def deliver(delivery_id: int, expected_attempts: int, manual: bool = False) -> str:
    """One attempt of an outbound delivery; retries are queued by the service."""
    return delivery.deliver(delivery_id, expected_attempts, manual)
