"""RQ job entry points for conflicts (thin: they call services). Each carries only an id."""

from __future__ import annotations

from rq import get_current_job

from holovitals_sync.services.conflicts import policy, writeback


def auto_resolve(conflict_id: int) -> str:
    """Resolve one conflict with its automatic policy (queued on `conflicts.default`)."""
    return policy.auto_resolve(conflict_id)


def write_back(conflict_id: int) -> str:
    """Write a resolved record to the EHR (queued when the resolution commits).

    A failure that may pass raises while RQ's `Retry` has attempts left; the last attempt
    records it on the conflict instead.
    """
    job = get_current_job()
    retries_left = (job.retries_left or 0) if job is not None else 0
    return writeback.run(conflict_id, retries_left=retries_left)
