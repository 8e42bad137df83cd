"""Sync jobs: start, list, inspect, cancel, retry, and the dead-letter list with replay."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlmodel import select

from ..models import (
    ActorKind,
    Direction,
    JobStatus,
    JobType,
    Priority,
    RequesterKind,
    SyncJob,
)
from ..services import orchestration as service
from ..services.auth import Principal
from ..services.platform.redis import QueueUnavailable
from .deps import Operator, SessionDep, Viewer
from .strict import strict_body

router = APIRouter(prefix="/api/sync", tags=["jobs"])


class JobOut(BaseModel):
    """A job as the API shows it (no checkpoint internals, no PHI)."""

    id: int
    connection_id: int
    job_type: JobType
    direction: Direction
    priority: Priority
    status: JobStatus
    patient_id: str | None
    resource_type: str | None
    requested_by_kind: RequesterKind
    requested_by: str | None
    fetched: int
    created: int
    updated: int
    unchanged: int
    invalid: int
    conflicts: int
    written: int
    deleted: int = Field(description="records tombstoned: the EHR no longer has them")
    total_estimate: int | None
    progress: float
    attempts: int
    max_attempts: int
    last_error: str | None
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    parent_id: int | None = Field(
        None,
        description="a part of this split full sync (its counters add up to the "
        "parent's); list a parent's parts with ?parent_id=",
    )
    part: dict[str, Any] | None = Field(
        None,
        description="what this part covers: resource types, a block of patients "
        "(their ids) or export files",
    )
    trace_id: str | None = Field(
        None,
        description="the OpenTelemetry trace of the latest run (when tracing is on): "
        "open it in the trace UI the collector feeds",
    )
    parts: int | None = Field(None, description="a split full sync: how many parts it has")

    @classmethod
    def of(cls, row: SyncJob) -> JobOut:
        out = cls.model_validate(row, from_attributes=True)
        children = (row.checkpoint or {}).get("children")
        out.parts = len(children) if isinstance(children, list) else None
        return out


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: int | None = Field(description="pass as `cursor` for the next (older) page")


class ReplayIn(BaseModel):
    job_ids: list[int] | None = Field(
        default=None, max_length=500, description="omit to replay every failed job"
    )


def _requester(principal: Principal) -> tuple[RequesterKind, str]:
    kind = RequesterKind.TOKEN if principal.via is ActorKind.TOKEN else RequesterKind.USER
    return kind, principal.username


def _fail(exc: Exception) -> HTTPException:
    if isinstance(exc, service.JobNotFound | service.ConnectionNotFound):
        return HTTPException(404, str(exc))
    if isinstance(exc, service.StateConflict):
        return HTTPException(409, str(exc))
    if isinstance(exc, QueueUnavailable):
        return HTTPException(503, str(exc))
    raise exc


# Request bodies with strict scalars (see api.strict): `true` is not an integer here.
JobBody = strict_body(service.JobRequest)
ReplayBody = strict_body(ReplayIn)


@router.post("/jobs", response_model=JobOut, status_code=201)
def start_job(body: JobBody, operator: Operator, session: SessionDep) -> JobOut:
    """Start a sync job; it is queued on `sync.<priority>`."""
    kind, name = _requester(operator)
    try:
        row = service.start_job(
            session, request=body, requested_by_kind=kind, requested_by=name, actor=operator.actor
        )
    except service.InvalidJob as exc:
        raise RequestValidationError(
            [{"loc": ("body", exc.field), "msg": str(exc), "type": "value_error"}]
        ) from None
    except (service.ConnectionNotFound, QueueUnavailable) as exc:
        raise _fail(exc) from None
    return JobOut.of(row)


@router.get("/jobs", response_model=JobPage)
def list_jobs(
    _viewer: Viewer,
    session: SessionDep,
    status: JobStatus | None = None,
    connection_id: int | None = None,
    job_type: JobType | None = None,
    cursor: int | None = Query(None, ge=1),
    limit: int = Query(50, ge=1, le=200),
    parent_id: int | None = Query(
        None, ge=1, description="the parts of this split full sync (without it: no parts)"
    ),
) -> JobPage:
    """Jobs newest first, filtered; keyset pagination by id. The parts of a split full sync
    are listed under their parent (`parent_id`), not among the jobs."""
    query = select(SyncJob).where(
        SyncJob.parent_id == parent_id if parent_id is not None else SyncJob.parent_id.is_(None)
    )
    for column, value in (
        (SyncJob.status, status),
        (SyncJob.connection_id, connection_id),
        (SyncJob.job_type, job_type),
    ):
        if value is not None:
            query = query.where(column == value)
    if cursor is not None:
        query = query.where(SyncJob.id < cursor)
    rows = list(session.exec(query.order_by(SyncJob.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return JobPage(
        items=[JobOut.of(r) for r in rows], next_cursor=rows[-1].id if more and rows else None
    )


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: int, _viewer: Viewer, session: SessionDep) -> JobOut:
    """One job with its counters, progress and last error."""
    try:
        return JobOut.of(service.get_job(session, job_id))
    except service.JobNotFound as exc:
        raise _fail(exc) from None


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: int, operator: Operator, session: SessionDep) -> JobOut:
    """Cancel a waiting or running job; what it committed is kept (409 when finished)."""
    try:
        return JobOut.of(service.cancel_job(session, job_id=job_id, actor=operator.actor))
    except (service.JobNotFound, service.StateConflict) as exc:
        raise _fail(exc) from None


@router.post("/jobs/{job_id}/retry", response_model=JobOut)
def retry_job(job_id: int, operator: Operator, session: SessionDep) -> JobOut:
    """Re-enqueue a failed or cancelled job from its last checkpoint (409 otherwise)."""
    try:
        return JobOut.of(service.retry_job(session, job_id=job_id, actor=operator.actor))
    except (service.JobNotFound, service.StateConflict, QueueUnavailable) as exc:
        raise _fail(exc) from None


@router.get("/dead-letter", response_model=list[JobOut])
def dead_letter(
    _viewer: Viewer, session: SessionDep, connection_id: int | None = None
) -> list[JobOut]:
    """Jobs whose retries are exhausted, newest first, with their error."""
    return [JobOut.of(r) for r in service.failed_jobs(session, connection_id=connection_id)]


@router.post("/dead-letter/replay", response_model=list[JobOut])
def replay(body: ReplayBody, operator: Operator, session: SessionDep) -> list[JobOut]:
    """Replay the given failed jobs, or all of them; each resumes from its checkpoint."""
    try:
        rows = service.replay_failed(session, job_ids=body.job_ids, actor=operator.actor)
    except (service.JobNotFound, service.StateConflict, QueueUnavailable) as exc:
        raise _fail(exc) from None
    return [JobOut.of(r) for r in rows]
