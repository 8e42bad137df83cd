"""RQ job entry points for HL7 v2 feeds (on the webhooks queue family; thin)."""

from __future__ import annotations

from holovitals_sync.services.hl7 import processing


def drain_messages() -> int:
    """Turn every queued ADT message into its outcome (a patient sync, a merge, a record)."""
    return processing.drain()
