"""Deletes announced by notifications: the focus read again after the sync.

A notification about a deleted resource (a `DELETE` entry, a vendor `*.deleted` event) or
one naming a resource without its content (id-only) queues a sync of its patient. That sync
cannot see a delete: a patient's `$everything` simply no longer returns the resource, and
reading absence as a delete would tombstone real records whenever a server pages or caps the
operation. So the run reads each such focus itself once it has synced: a 404/410 is the EHR
saying the resource is gone, and the record held here is tombstoned (a conflict where
HoloVitals changed it meanwhile), like a delete found any other way. Anything else (the
resource is there, or the read failed) leaves the record as it is; the id sweep remains the
backstop.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlmodel import Session

from ...adapters import EHRAdapter
from ...db import session_scope
from ...fhir.errors import ResourceNotFound
from ...models import InboundEvent, JobType, SyncJob
from .deletes import Key

log = logging.getLogger(__name__)
# Reads one run makes at most; a larger burst of deletes is left to the id sweep.
LIMIT = 500
_JOBS = (JobType.PATIENT, JobType.RESOURCE, JobType.INCREMENTAL)


def announced(session: Session, job_id: int) -> list[Key]:
    """The foci of this job's events that must be read again, each once."""
    table = InboundEvent.__table__
    rows = session.execute(
        sa.select(table.c.resource_type, table.c.resource_id)
        .distinct()
        .where(
            table.c.job_id == job_id,
            table.c.recheck == sa.true(),
            table.c.resource_type.is_not(None),
            table.c.resource_id.is_not(None),
        )
        .order_by(table.c.resource_type, table.c.resource_id)
        .limit(LIMIT)
    )
    return [(str(rtype), str(rid)) for rtype, rid in rows]


def gone_at_ehr(job: SyncJob, adapter: EHRAdapter) -> list[Key]:
    """The announced foci that the EHR answers 404/410 for (read after the run's sync)."""
    if job.job_type not in _JOBS or job.id is None:
        return []
    with session_scope() as session:
        # The patient a patient sync is about needs no second read: a 404 for it fails the
        # sync itself, and that path tombstones the patient (`runner._mark_patient_gone`).
        keys = [k for k in announced(session, job.id) if k != ("Patient", job.patient_id)]
    if len(keys) >= LIMIT:
        log.info(
            "sync job %s: the first %d notified resources read again; the rest are "
            "left to the id sweep",
            job.id,
            LIMIT,
        )
    gone: list[Key] = []
    for rtype, rid in keys:
        try:
            adapter.client.read(rtype, rid)
        except ResourceNotFound:
            gone.append((rtype, rid))
        except Exception as exc:  # noqa: BLE001 - cannot tell: the id sweep decides later
            log.info(
                "sync job %s: a notified %s could not be read (%s)",
                job.id,
                rtype,
                type(exc).__name__,
            )
    if gone:
        log.info(
            "sync job %s: %d of %d notified resources are gone at the EHR",
            job.id,
            len(gone),
            len(keys),
        )
    return gone
