"""RQ job entry points for conflicts (thin: they call services). Each carries only an id."""

from __future__ import annotations

from holovitals_sync.services.conflicts import policy


def auto_resolve(conflict_id: int) -> str:
    """Resolve one conflict with its automatic policy (queued on `conflicts.default`)."""
    return policy.auto_resolve(conflict_id)
