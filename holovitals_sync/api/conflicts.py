"""Conflicts: list and inspect (viewer), resolve one or many (operator), policies (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlmodel import select

from ..models import (
    Conflict,
    ConflictKind,
    ConflictStatus,
    EHRConnection,
    ResolutionStrategy,
    Severity,
    SyncedRecord,
)
from ..services import conflicts as service
from ..services.conflicts import ConflictFilter
from .deps import Admin, Operator, SessionDep, Viewer
from .strict import strict_body

router = APIRouter(prefix="/api/sync/conflicts", tags=["conflicts"])


class ConflictSummary(BaseModel):
    id: int
    record_id: int
    connection_id: int
    job_id: int | None
    resource_type: str
    remote_id: str | None = None
    patient_ref: str | None = None
    kind: ConflictKind
    remote_version: str | None
    fields: list[str]
    severity: Severity
    status: ConflictStatus
    strategy: ResolutionStrategy | None
    reason: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    created_at: datetime
    # The resolution's write to the EHR: queued, written, stale, stale_merged, refused,
    # failed, superseded or settled; null when nothing was to be written.
    write_back: str | None = None

    @classmethod
    def of(cls, row: Conflict, record: SyncedRecord | None = None) -> ConflictSummary:
        extra = {"remote_id": record.remote_id, "patient_ref": record.patient_ref} if record else {}
        extra["write_back"] = ((row.resolution or {}).get("write_back") or {}).get("status")
        return cls.model_validate(row, from_attributes=True).model_copy(update=extra)


class ConflictDetail(ConflictSummary):
    """Side by side: each differing path with its base, local and remote value."""

    base_values: dict[str, Any]
    local_values: dict[str, Any]
    remote_values: dict[str, Any]
    resolution: dict[str, Any] | None


class ConflictPage(BaseModel):
    items: list[ConflictSummary]
    next_cursor: int | None


class ResolveIn(BaseModel):
    strategy: ResolutionStrategy
    reason: str = Field(min_length=1, max_length=2000)
    choices: dict[str, Literal["local", "remote"]] | None = None  # merge
    values: dict[str, Any] | None = None  # manual; null removes the element
    write_back: bool | None = None  # default: when the sync that found it writes to the EHR


class FilterIn(BaseModel):
    severity: Severity | None = None
    connection_id: int | None = None
    resource_type: str | None = None
    patient: str | None = None


class BulkIn(BaseModel):
    ids: list[int] | None = Field(default=None, max_length=1000)
    filter: FilterIn | None = None
    strategy: ResolutionStrategy
    reason: str = Field(min_length=1, max_length=2000)
    severities: list[Severity] = [Severity.LOW]  # say so to include medium or high
    write_back: bool | None = None


class BulkOut(BaseModel):
    resolved: list[int]
    skipped: dict[int, str]


class PolicyIn(BaseModel):
    connection_id: int | None = None
    resource_type: str = Field(min_length=1, max_length=64)
    strategy: ResolutionStrategy | None  # null removes the stored policy


class PolicyOut(BaseModel):
    resource_type: str
    strategy: ResolutionStrategy
    source: str
    automatic: bool


# Request bodies with strict scalars (see api.strict): `true` is not an integer here.
PolicyBody = strict_body(PolicyIn)
ResolveBody = strict_body(ResolveIn)
BulkBody = strict_body(BulkIn)


@router.get("/policies", response_model=list[PolicyOut])
def list_policies(
    _viewer: Viewer, session: SessionDep, connection_id: int | None = None
) -> list[PolicyOut]:
    """The effective default strategy per resource type (for one connection if given)."""
    rows = service.list_policies(session, connection_id=connection_id)
    return [PolicyOut.model_validate(p, from_attributes=True) for p in rows]


@router.put("/policies", response_model=PolicyOut)
def put_policy(body: PolicyBody, admin: Admin, session: SessionDep) -> PolicyOut:
    """Set (or with strategy null remove) a global or per-connection default."""
    if body.connection_id is not None and session.get(EHRConnection, body.connection_id) is None:
        raise HTTPException(404, "connection not found")
    policy = service.set_policy(
        session,
        connection_id=body.connection_id,
        resource_type=body.resource_type,
        strategy=body.strategy,
        actor=admin.actor,
    )
    return PolicyOut.model_validate(policy, from_attributes=True)


@router.get("", response_model=ConflictPage)
def list_conflicts(
    _viewer: Viewer,
    session: SessionDep,
    status: ConflictStatus | None = None,
    severity: Severity | None = None,
    connection_id: int | None = None,
    resource_type: str | None = None,
    patient: str | None = None,
    cursor: int | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> ConflictPage:
    """Conflicts, newest first; pass `next_cursor` back as `cursor` for the next page."""
    filters = ConflictFilter(status, severity, connection_id, resource_type, patient)
    rows, next_cursor = service.list_conflicts(
        session, filters=filters, after_id=cursor, limit=limit
    )
    records = {r.id: r for r in _records(session, [row.record_id for row in rows])}
    items = [ConflictSummary.of(row, records.get(row.record_id)) for row in rows]
    return ConflictPage(items=items, next_cursor=next_cursor)


def _records(session: SessionDep, ids: list[int]) -> list[SyncedRecord]:
    if not ids:
        return []
    return list(session.exec(select(SyncedRecord).where(SyncedRecord.id.in_(ids))))


def _detail(session: SessionDep, conflict_id: int) -> ConflictDetail:
    row = session.get(Conflict, conflict_id)
    if row is None:
        raise HTTPException(404, "no such conflict")
    record = session.get(SyncedRecord, row.record_id)
    summary = ConflictSummary.of(row, record)
    return ConflictDetail(
        **summary.model_dump(),
        base_values=row.base_values,
        local_values=row.local_values,
        remote_values=row.remote_values,
        resolution=row.resolution,
    )


@router.get("/{conflict_id}", response_model=ConflictDetail)
def get_conflict(conflict_id: int, _viewer: Viewer, session: SessionDep) -> ConflictDetail:
    """One conflict with the base, local and remote value of each differing path."""
    return _detail(session, conflict_id)


@router.post("/{conflict_id}/resolve", response_model=ConflictDetail)
def resolve_conflict(
    conflict_id: int, body: ResolveBody, operator: Operator, session: SessionDep
) -> ConflictDetail:
    """Resolve with a strategy and a reason (merge: choices; manual: values).

    The resolution is stored at once; a write back to the EHR is queued on the conflicts
    queue (`write_back` "queued", then its outcome: follow it with GET on the conflict).
    """
    try:
        service.resolve(
            session,
            conflict_id=conflict_id,
            strategy=body.strategy,
            reason=body.reason,
            actor=operator.actor,
            choices=body.choices,
            values=body.values,
            write_back=body.write_back,
        )
    except service.ConflictNotFound:
        raise HTTPException(404, "no such conflict") from None
    except service.NotOpen as exc:
        raise HTTPException(409, str(exc)) from None
    except service.ResolutionError as exc:
        raise HTTPException(400, str(exc)) from None
    return _detail(session, conflict_id)


@router.post("/resolve-bulk", response_model=BulkOut)
def resolve_bulk(body: BulkBody, operator: Operator, session: SessionDep) -> BulkOut:
    """Resolve many open conflicts (by ids or a filter) with one strategy; low only by default."""
    if (body.ids is None) == (body.filter is None):
        raise HTTPException(400, "give either ids or a filter")
    ids = body.ids
    if ids is None:
        f = body.filter
        ids = service.matching_ids(
            session,
            filters=ConflictFilter(
                ConflictStatus.OPEN, f.severity, f.connection_id, f.resource_type, f.patient
            ),
        )
    try:
        result = service.resolve_bulk(
            session,
            conflict_ids=ids,
            strategy=body.strategy,
            reason=body.reason,
            actor=operator.actor,
            severities=set(body.severities),
            write_back=body.write_back,
        )
    except service.ResolutionError as exc:
        raise HTTPException(400, str(exc)) from None
    return BulkOut(resolved=result.resolved, skipped=result.skipped)
