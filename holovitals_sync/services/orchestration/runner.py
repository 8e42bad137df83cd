"""Running one SyncJob inside an RQ worker: the job's whole life from RUNNING to the end.

Exceptions propagate so RQ retries the job (from its committed checkpoint); the failure
callback (`record_attempt_failure`) keeps the row in step with RQ's decision.
"""

from __future__ import annotations

import gc
import logging

from ...adapters import EHRAdapter, adapter_for
from ...config import get_settings
from ...db import session_scope
from ...fhir.errors import ResourceNotFound
from ...models import Direction, EHRConnection, JobStatus, JobType, SyncJob
from ...telemetry import annotate, trace_id_of_current_span
from ..connection_spec import connection_spec
from ..platform.failures import safe_error
from ..platform.redis import redis_connection
from . import aftermath, children, deletes, heartbeat, lifecycle, rechecks
from .completion import complete_run
from .events import JobEvents
from .inbound import run_inbound
from .outbound import run_outbound
from .sweep import run_sweep

log = logging.getLogger(__name__)
# Types seen in patient compartments beyond what the vendor profiles list by name.
_ALSO_SEEN = ("Procedure", "Practitioner", "Organization", "Location", "Medication")


def warm_up() -> list[str]:
    """Load, in the worker's parent, what every job would otherwise load anew.

    RQ forks one work horse per job, and whatever a horse imports or caches dies with it.
    Screening looks each resource type up in fhir.resources, whose pydantic models build
    lazily on first import: ~0.4 s of CPU in every job, which made several workers on
    two cores CPU-bound (benchmarks/sync.py: 0.9x with 5 workers). Done once before the
    fork, the models are shared copy-on-write. Returns the resource types warmed.
    """
    from ...adapters.registry import PROFILES
    from ...fhir import transport
    from .screening import known_type

    types = sorted({t for p in PROFILES.values() for t in p.resource_types} | set(_ALSO_SEEN))
    for name in types:
        known_type(name)
    transport.preload()  # the TLS context and HTTP engine every FHIR request uses
    return types


def _start(job_id: int, rq_job_id: str | None) -> tuple[SyncJob, EHRConnection] | None:
    with session_scope() as session:
        job = lifecycle.begin_run(session, job_id=job_id, rq_job_id=rq_job_id)
        if job is None:
            return None
        # The job page links the trace of the run (RQ's retries share it).
        job.trace_id = trace_id_of_current_span() or job.trace_id
        connection = session.get(EHRConnection, job.connection_id)
        if connection is None:  # deleted: the cascade removes the job row as well
            return None
        session.expunge(connection)
    return job, connection


def _swept_types(adapter: EHRAdapter, job: SyncJob) -> list[str]:
    """The types a complete run of this job has seen in full (a full sync, an id sweep;
    a part of a split full sync has not: its parent's end decides)."""
    full = (
        job.job_type in (JobType.FULL, JobType.SWEEP)
        and job.direction is not Direction.OUTBOUND
        and job.parent_id is None
    )
    return list(adapter.profile.resource_types) if full else []


def _complete(
    job: SyncJob, connection: EHRConnection, swept: list[str], notified: list[deletes.Key]
) -> None:
    if job.parent_id is not None:  # a part: the parent's finalizer does the aftermath
        with session_scope() as session:
            lifecycle.finish(session, job, JobStatus.COMPLETED, progress=1.0)
        return
    complete_run(job, connection.id, swept, notified=notified)


def run_job(job_id: int, *, rq_job_id: str | None = None) -> None:
    """Run (or resume) one sync job to the end.

    Args:
        job_id: The SyncJob id.
        rq_job_id: The RQ job running it; a stale RQ job (the row moved on) does nothing.
    """
    started = _start(job_id, rq_job_id)
    if started is None:
        log.info("sync job %s: nothing to run (finished, cancelled or superseded)", job_id)
        return
    job, connection = started
    # Everything alive now (imports, the warmed FHIR models) outlives the job: out of the
    # collector's sight for the run, the cyclic GC stops re-scanning it while the loop
    # parses and discards resources (~20% less CPU per resource, benchmarks/sync_profile.py).
    gc.freeze()
    try:
        with heartbeat.beating(job_id, job.attempts):  # vouches for the run to `reconcile`
            _run(job, connection)
    finally:
        gc.unfreeze()  # a process that runs jobs in-line (no fork) collects them again


def _run(job: SyncJob, connection: EHRConnection) -> None:
    events = JobEvents(redis_connection())
    events.state(job)
    annotate(
        job_id=job.id,
        connection_id=connection.id,
        vendor=connection.vendor.value,
        job_type=job.job_type.value,
        direction=job.direction.value,
        resource_type=job.resource_type,
        attempt=job.attempts,
        part_of=job.parent_id,
    )
    batch_size = get_settings().sync_batch_size
    try:
        with adapter_for(connection_spec(connection)) as adapter:
            _hold_types(job, adapter)
            if job.job_type is JobType.SWEEP:
                run_sweep(job, connection, adapter, events=events)
            elif children.split(job, adapter):
                events.state(job)  # its parts run on every free worker; it waits for them
                log.info("sync job %s: parts queued", job.id)
                return
            else:
                _sync(job, connection, adapter, batch_size, events)
            swept = _swept_types(adapter, job)
            notified = (
                rechecks.gone_at_ehr(job, adapter)
                if job.direction is not Direction.OUTBOUND
                else []
            )
        _complete(job, connection, swept, notified)
    except lifecycle.RunStopped:
        log.info("sync job %s: stopped (cancelled or taken over)", job.id)
        return
    events.progress(job, force=True)
    events.state(job)
    annotate(fetched=job.fetched, created=job.created, updated=job.updated, invalid=job.invalid)
    log.info("sync job %s completed: %s fetched", job.id, job.fetched)


# Runs whose checkpoint counts positions in their list of types.
_LISTED = (JobType.FULL, JobType.INCREMENTAL, JobType.SWEEP)


def _hold_types(job: SyncJob, adapter: EHRAdapter) -> None:
    """Hold a resumed run to the types its first attempt read (`run_types`).

    Its checkpoint counts positions in that list (a search task, a patient's type), and
    its end treats every type in it as read in full. Resumed with a list the connection's
    resource types changed since, it would resume at the wrong type and tombstone records
    of a type it never read in full. A change applies from the next run; a type the server
    no longer offers at all starts the run over.
    """
    if job.part is not None or job.job_type not in _LISTED or job.direction is Direction.OUTBOUND:
        return
    pinned = job.checkpoint.get("run_types")
    if pinned is not None and adapter.hold_types(pinned):
        return
    checkpoint = {k: v for k, v in job.checkpoint.items() if pinned is None or k != "resume"}
    with session_scope() as session:
        lifecycle.fence(session, job, checkpoint={
            **checkpoint, "run_types": list(adapter.profile.resource_types)
        })  # fmt: skip


def _sync(
    job: SyncJob, connection: EHRConnection, adapter: EHRAdapter, batch_size: int, events: JobEvents
) -> None:
    if job.direction in (Direction.OUTBOUND, Direction.BIDIRECTIONAL):
        run_outbound(job, connection, adapter, batch_size=batch_size, events=events)
    if job.direction in (Direction.INBOUND, Direction.BIDIRECTIONAL):
        try:
            run_inbound(job, connection, adapter, events=events)
        except ResourceNotFound:
            if job.patient_id:
                _mark_patient_gone(job, adapter)
            raise  # the job fails at once (platform.failures.permanent_reason)


def _mark_patient_gone(job: SyncJob, adapter: EHRAdapter) -> None:
    """A patient sync met 404/410: if the EHR no longer has the patient (a read of the
    Patient says so too; a 404 from `$everything` alone may mean the operation is not
    served), the Patient record held here is tombstoned, as a delete found by a sync is."""
    pid = str(job.patient_id)
    try:
        adapter.client.read("Patient", pid)
        return  # the patient is there: the 404 was about something else
    except ResourceNotFound:
        pass
    except Exception as exc:  # noqa: BLE001 - cannot tell: leave the record as it is
        log.info("sync job %s: patient read failed (%s)", job.id, type(exc).__name__)
        return
    with session_scope() as session:
        gone = deletes.tombstone(
            session,
            job.connection_id,
            job.id,
            [("Patient", pid)],
            reason=f"not found at the EHR by patient sync {job.id}",
        )
        aftermath.announce_deletes(session, job.connection_id, gone.deleted)
        aftermath.announce_conflicts(session, job, gone.conflicts)


def record_attempt_failure(job_id: int, exc: BaseException, *, will_retry: bool) -> None:
    """Keep a failed attempt's safe error on the row; FAILED once no retry is left."""
    with session_scope() as session:
        job = lifecycle.record_failure(
            session, job_id=job_id, error=safe_error(exc), will_retry=will_retry
        )
        if job is not None and not will_retry:
            aftermath.emit_failed(session, job)
    if job is not None:
        JobEvents(redis_connection()).state(job)
    log.warning(
        "sync job %s attempt failed (%s); retry: %s", job_id, type(exc).__name__, will_retry
    )
