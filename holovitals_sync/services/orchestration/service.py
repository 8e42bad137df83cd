"""Starting, cancelling, retrying and replaying sync jobs.

Rows are committed before their RQ job exists, and the RQ job id is chosen up front and
stored first, so a worker never sees a job it cannot match to its row.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from pydantic import BaseModel, Field, field_validator, model_validator
from rq.command import send_stop_job_command
from rq.job import JobStatus as RQStatus
from sqlmodel import Session

from ...config import get_settings
from ...fhir.ids import FHIR_ID_PATTERN
from ...models import (
    Direction,
    EHRConnection,
    JobStatus,
    JobType,
    Priority,
    RequesterKind,
    SyncJob,
)
from ...models.types import utcnow
from .. import audit
from ..platform.redis import redis_connection
from . import queueing
from .events import publish_state

log = logging.getLogger(__name__)


class JobNotFound(LookupError):
    """No such sync job."""


class ConnectionNotFound(LookupError):
    """No such EHR connection."""


class StateConflict(RuntimeError):
    """The job's status does not allow this (cancel a finished job, retry a running one)."""


class InvalidJob(ValueError):
    """A job the connection cannot run (a type it does not serve); `field` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def served_types(connection: EHRConnection) -> tuple[str, ...]:
    """The resource types the connection syncs: its vendor's, as its profile lists them, or
    those chosen for the connection among them.

    A generic server narrows this list to its CapabilityStatement when a job runs; a type it
    does not declare then fails that job at once as a configuration error.
    """
    from ...adapters.registry import PROFILES

    profile = PROFILES.get(connection.vendor.value)
    served = profile.resource_types if profile is not None else ()
    chosen = tuple(connection.resource_types or ())
    if not chosen:
        return served
    # A generic server's types are in its CapabilityStatement: the chosen ones stand.
    return chosen if _declares_its_types(connection) else tuple(t for t in served if t in chosen)


def _declares_its_types(connection: EHRConnection) -> bool:
    """Whether the connection's server, not its vendor's profile, says what it serves."""
    from ...adapters import ConfigurationError
    from ...adapters.registry import ADAPTERS

    adapter = ADAPTERS.get(connection.vendor.value)
    try:
        return adapter is not None and adapter.known_profile(connection.vendor_params) is None
    except ConfigurationError:
        return False


def check_scope(request: JobRequest, connection: EHRConnection) -> None:
    """Refuse, before anything is queued, a job that could only fail (never retried)."""
    if request.resource_type is None:
        return
    served = served_types(connection)
    if request.resource_type not in served:
        raise InvalidJob(
            "resource_type",
            f"{connection.name} does not sync "
            f"{request.resource_type!r}; it syncs {', '.join(sorted(served))}",
        )


class JobRequest(BaseModel):
    """What a caller asks for: a job type on a connection, with its scope and priority."""

    connection_id: int
    job_type: JobType
    direction: Direction = Direction.INBOUND
    priority: Priority = Priority.DEFAULT
    # A FHIR id: it goes into the EHR's URL (`Patient/<id>/$everything`).
    patient_id: str | None = Field(default=None, pattern=FHIR_ID_PATTERN)
    resource_type: str | None = Field(default=None, pattern=r"^[A-Z][A-Za-z]{1,63}$")

    @field_validator("patient_id")
    @classmethod
    def _not_a_dot_segment(cls, value: str | None) -> str | None:
        # "." and ".." are FHIR ids by the letter, and path steps in a URL.
        if value is not None and set(value) == {"."}:
            raise ValueError("not a usable patient id")
        return value

    @model_validator(mode="after")
    def _scope(self) -> JobRequest:
        if self.job_type is JobType.PATIENT and not self.patient_id:
            raise ValueError("a patient sync needs patient_id")
        if self.job_type is JobType.RESOURCE and not self.resource_type:
            raise ValueError("a resource sync needs resource_type")
        return self


def get_job(session: Session, job_id: int) -> SyncJob:
    job = session.get(SyncJob, job_id)
    if job is None:
        raise JobNotFound(f"no sync job {job_id}")
    return job


def dispatch(session: Session, job: SyncJob) -> SyncJob:
    """Give the row a fresh RQ job id, commit it QUEUED, then enqueue it."""
    connection = session.get(EHRConnection, job.connection_id)
    if connection is None:
        raise ConnectionNotFound(f"no connection {job.connection_id}")
    job.rq_job_id = f"sync-{job.id}-{uuid.uuid4().hex[:12]}"
    job.status = JobStatus.QUEUED
    job.queued_at = utcnow()
    job.finished_at = None
    session.add(job)
    session.commit()
    queueing.enqueue(job, connection)
    publish_state(redis_connection(), job)
    return job


def start_job(
    session: Session,
    *,
    request: JobRequest,
    requested_by_kind: RequesterKind,
    requested_by: str | None,
    actor: audit.Actor,
) -> SyncJob:
    """Create a job (PENDING), audit it, and queue it on `sync.<priority>`."""
    connection = session.get(EHRConnection, request.connection_id)
    if connection is None:
        raise ConnectionNotFound(f"no connection {request.connection_id}")
    check_scope(request, connection)
    job = SyncJob(
        **request.model_dump(),
        requested_by_kind=requested_by_kind,
        requested_by=requested_by,
        max_attempts=get_settings().retry_attempts + 1,
    )
    session.add(job)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="sync_job.start",
        target_type="sync_job",
        target_id=job.id,
        details={
            "connection_id": job.connection_id,
            "job_type": job.job_type.value,
            "direction": job.direction.value,
        },
    )
    return dispatch(session, job)


def _stop_rq_job(rq_job_id: str | None) -> None:
    rq_job = queueing.fetch_rq_job(rq_job_id)
    if rq_job is None:
        return
    redis = redis_connection()
    try:
        if rq_job.get_status() == RQStatus.STARTED:
            # Kills the work horse now; committed batches stay, the open one rolls back.
            send_stop_job_command(redis, rq_job.id)
        else:
            rq_job.cancel()
    except Exception as exc:  # finished in the meantime: the fenced row update stops it
        log.info("sync job RQ %s not stopped: %s", rq_job.id, type(exc).__name__)


def cancel_job(session: Session, *, job_id: int, actor: audit.Actor) -> SyncJob:
    """Cancel a pending, queued or running job; committed work is kept."""
    job = get_job(session, job_id)
    if job.status.finished:
        raise StateConflict(f"job {job_id} is already {job.status.value}")
    job.status = JobStatus.CANCELLED
    job.finished_at = utcnow()
    session.add(job)
    from .children import cancel_children

    parts = cancel_children(session, job)  # a split full sync: its parts stop too
    audit.record(
        session,
        actor=actor,
        action="sync_job.cancel",
        target_type="sync_job",
        target_id=job.id,
        details={"connection_id": job.connection_id},
    )
    session.commit()
    for stopped in (job, *parts):
        _stop_rq_job(stopped.rq_job_id)
        publish_state(redis_connection(), stopped)
    return job


def retry_job(
    session: Session, *, job_id: int, actor: audit.Actor, action: str = "sync_job.retry"
) -> SyncJob:
    """Re-enqueue a FAILED or CANCELLED job; it resumes from its last checkpoint."""
    job = get_job(session, job_id)
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise StateConflict(
            f"job {job_id} is {job.status.value}; only failed or cancelled jobs can be retried"
        )
    if job.parent_id is not None:
        raise StateConflict(
            f"job {job_id} is a part of full sync {job.parent_id}: retry that "
            "one (it runs again only the parts that did not complete)"
        )
    old = queueing.fetch_rq_job(job.rq_job_id)
    if old is not None:
        old.delete()  # out of the dead-letter registry: the row has a new RQ job now
    job.max_attempts = job.attempts + get_settings().retry_attempts + 1
    audit.record(
        session,
        actor=actor,
        action=action,
        target_type="sync_job",
        target_id=job.id,
        details={"from_status": job.status.value},
    )
    return dispatch(session, job)


def replay_failed(
    session: Session, *, job_ids: Sequence[int] | None, actor: audit.Actor
) -> list[SyncJob]:
    """Replay dead-lettered (FAILED) jobs: the given ones, or every one when None."""
    from .deadletter import failed_job_ids

    ids = list(job_ids) if job_ids is not None else failed_job_ids(session)
    for job_id in ids:
        if get_job(session, job_id).status is not JobStatus.FAILED:
            raise StateConflict(f"job {job_id} is not in the dead-letter list")
    return [retry_job(session, job_id=i, actor=actor, action="sync_job.replay") for i in ids]
