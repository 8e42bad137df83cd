"""The id sweep: list the ids the EHR holds, and tombstone the records it no longer has.

For EHRs that announce deletes no other way (no type-level `_history`, no Bulk `_since`
deleted output, no notifications). A sweep pages through ids only (`_elements=id`), notes each
stored record it sees (`deletes.mark_seen`) with the page's checkpoint in one transaction,
and when it completes the runner tombstones what it did not see, as after a full sync.
"""

from __future__ import annotations

from ...adapters import EHRAdapter
from ...db import session_scope
from ...models import EHRConnection, SyncJob
from . import deletes, lifecycle, shutdown
from .events import JobEvents
from .inbound import seen_keys


def run_sweep(
    job: SyncJob, connection: EHRConnection, adapter: EHRAdapter, *, events: JobEvents
) -> None:
    """Page through the EHR's ids from the job's checkpoint on, noting what it still has."""
    resume = job.checkpoint.get("resume")
    for page in adapter.fetch_ids(list(adapter.profile.resource_types), resume=resume):
        with session_scope() as session:
            deletes.mark_seen(
                session, connection.id, int(job.id), sorted(seen_keys(page.resources))
            )
            values = {
                "fetched": job.fetched + len(page.resources),
                "checkpoint": {**job.checkpoint, "resume": page.checkpoint},
            }
            if page.total_estimate:
                values["total_estimate"] = page.total_estimate
            lifecycle.fence(session, job, **values)
        events.progress(job)
        shutdown.at_checkpoint(job)
