"""Every function the RQ workers run, by the dotted name RQ stores with a queued job.

Services queue work by these names rather than importing `workers` (which imports the
services: the arrow would point back up). A queued job outlives a deploy, so a name here is
renamed only together with a migration of what is queued; `tests/unit/test_job_functions.py`
checks that each name still resolves to a function.
"""

from __future__ import annotations

from typing import Final

# Sync (the `sync.*` queues)
RUN_SYNC_JOB: Final = "workers.jobs.run_sync_job"
ON_SYNC_JOB_FAILURE: Final = "workers.jobs.on_sync_job_failure"
FINISH_FULL_SYNC: Final = "workers.jobs.finish_full_sync"  # the end of a split full sync

# Webhooks (the `webhooks.*` queues): EHR events in, deliveries out, HL7 v2 messages
DRAIN_INBOUND: Final = "workers.webhook_jobs.drain_inbound"
PROCESS_INBOUND: Final = "workers.webhook_jobs.process_inbound"
DELIVER: Final = "workers.webhook_jobs.deliver"
DRAIN_HL7: Final = "workers.hl7_jobs.drain_messages"

# Conflicts and transformations
AUTO_RESOLVE: Final = "workers.conflict_jobs.auto_resolve"
WRITE_BACK: Final = "workers.conflict_jobs.write_back"  # a resolution's write to the EHR
REVALIDATE_CONNECTION: Final = "workers.transformation_jobs.revalidate_connection"

ALL: Final = (
    RUN_SYNC_JOB,
    ON_SYNC_JOB_FAILURE,
    FINISH_FULL_SYNC,
    DRAIN_INBOUND,
    PROCESS_INBOUND,
    DELIVER,
    DRAIN_HL7,
    AUTO_RESOLVE,
    WRITE_BACK,
    REVALIDATE_CONNECTION,
)
