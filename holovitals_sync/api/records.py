"""What HoloVitals holds: a patient's records, one record's three bodies, and local changes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlmodel import select

from ..models import Conflict, ConflictStatus, EHRConnection, RecordError, SyncedRecord
from ..services import records as service
from .deps import Operator, SessionDep, Viewer

router = APIRouter(prefix="/api/records", tags=["records"])


class RecordOut(BaseModel):
    id: int
    resource_type: str
    remote_id: str
    remote_version: str | None
    dirty: bool
    flagged_invalid: bool
    deleted: bool
    last_synced_at: datetime | None
    open_conflicts: int
    body: dict[str, Any] | None  # the HoloVitals copy


@router.get("", response_model=list[RecordOut])
def patient_records(
    _viewer: Viewer,
    session: SessionDep,
    connection_id: int = Query(),
    patient: str = Query(min_length=1, max_length=200, description="Patient/<id> or <id>"),
    resource_type: str | None = Query(default=None, max_length=64),
) -> list[RecordOut]:
    """Every record of one patient on one connection (the Patient itself included)."""
    if session.get(EHRConnection, connection_id) is None:
        raise HTTPException(404, "no such connection")
    ref = patient if patient.startswith("Patient/") else f"Patient/{patient}"
    patient_id = ref.split("/", 1)[1]
    mine = sa.or_(
        SyncedRecord.patient_ref == ref,
        sa.and_(SyncedRecord.resource_type == "Patient", SyncedRecord.remote_id == patient_id),
    )
    query = select(SyncedRecord).where(SyncedRecord.connection_id == connection_id, mine)
    if resource_type:
        query = query.where(SyncedRecord.resource_type == resource_type)
    rows = session.exec(query.order_by(SyncedRecord.resource_type, SyncedRecord.remote_id)).all()
    open_counts = dict(
        session.exec(
            select(Conflict.record_id, sa.func.count())
            .where(Conflict.record_id.in_([r.id for r in rows]),
                   Conflict.status == ConflictStatus.OPEN)
            .group_by(Conflict.record_id)
        ).all()
    )  # fmt: skip
    return [
        RecordOut(
            **row.model_dump(include=set(RecordOut.model_fields) - {"open_conflicts", "body"}),
            open_conflicts=open_counts.get(row.id, 0),
            body=row.local_copy,
        )
        for row in rows
    ]


# A FHIR resource type and id as they may appear in a URL (FHIR's id rule).
TypePath = Annotated[str, Path(pattern=r"^[A-Z][A-Za-z]{1,63}$")]
IdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]
IfMatch = Annotated[str | None, Header(description=(
    "The ETag of HoloVitals' copy as last read (GET gives it): a copy changed since "
    "answers 412, and nothing is lost."))]
MAX_EDIT_BYTES = 2 * 1024 * 1024
RESOURCE_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "description": "the whole FHIR resource"}}}}}
PATCH_BODY = {"requestBody": {"required": True, "content": {
    "application/json-patch+json": {"schema": {"type": "array", "items": {"type": "object"}}},
    "application/merge-patch+json": {"schema": {"type": "object"}}}}}
PATCH_TYPES = {"application/json-patch+json": "json", "application/merge-patch+json": "merge",
               "application/json": "merge"}


class IssueOut(BaseModel):
    job_id: int | None
    path: str | None
    message: str
    severity: str
    created_at: datetime


class RecordDetail(BaseModel):
    """One record: the three bodies conflict detection compares, its state and its issues."""

    id: int
    connection_id: int
    resource_type: str
    remote_id: str
    patient_ref: str | None
    remote_version: str | None
    local_version: str
    dirty: bool
    conflict_pending: bool
    flagged_invalid: bool
    deleted: bool
    last_job_id: int | None
    last_synced_at: datetime | None
    open_conflicts: int
    base: dict[str, Any] | None
    local: dict[str, Any] | None
    remote: dict[str, Any] | None
    issues: list[IssueOut]


def _detail(session: SessionDep, row: SyncedRecord, response: Response) -> RecordDetail:
    issues = session.exec(select(RecordError).where(
        RecordError.connection_id == row.connection_id,
        RecordError.resource_type == row.resource_type, RecordError.remote_id == row.remote_id,
    ).order_by(RecordError.id.desc()).limit(100)).all()
    open_conflicts = session.exec(select(sa.func.count()).select_from(Conflict).where(
        Conflict.record_id == row.id, Conflict.status == ConflictStatus.OPEN)).one()
    etag = service.local_etag(row)
    response.headers["ETag"] = etag
    return RecordDetail(
        **row.model_dump(include=set(RecordDetail.model_fields)),
        local_version=etag, open_conflicts=open_conflicts, base=row.base_copy,
        local=row.local_copy, remote=row.remote_body,
        issues=[IssueOut(**i.model_dump(include=set(IssueOut.model_fields))) for i in issues],
    )


def _find(session: SessionDep, connection_id: int, resource_type: str,
          remote_id: str) -> SyncedRecord:
    try:
        return service.find(session, connection_id, resource_type, remote_id)
    except service.RecordNotFound as exc:
        raise HTTPException(404, str(exc)) from None


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_EDIT_BYTES:
        raise HTTPException(413, f"the body is larger than {MAX_EDIT_BYTES} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise HTTPException(400, "the body is not JSON") from None


def _store(session: SessionDep, row: SyncedRecord, body: Any, if_match: str | None,
           operator: Operator, response: Response) -> RecordDetail:
    if not if_match:
        raise HTTPException(428, "send If-Match with the ETag of the copy you read (GET it)")
    try:
        service.replace_local(session, row, body, if_match=if_match, actor=operator.actor)
    except service.StaleLocalWrite as exc:
        raise HTTPException(412, str(exc)) from None
    except service.RecordHeld as exc:
        raise HTTPException(409, str(exc)) from None
    except service.InvalidEdit as exc:
        fields = exc.problems or [(None, str(exc))]
        raise RequestValidationError([
            {"loc": ("body", *(path.split(".") if path else ())), "msg": message,
             "type": "value_error"} for path, message in fields]) from None
    return _detail(session, row, response)


@router.get("/{connection_id}/{resource_type}/{remote_id}", response_model=RecordDetail)
def record_detail(connection_id: int, resource_type: TypePath, remote_id: IdPath,
                  _viewer: Viewer, session: SessionDep, response: Response) -> RecordDetail:
    """One record: base, local and remote bodies, its state, its validation issues.

    The `ETag` header (and `local_version`) is the version of HoloVitals' copy: send it as
    `If-Match` with a change.
    """
    return _detail(session, _find(session, connection_id, resource_type, remote_id), response)


@router.put("/{connection_id}/{resource_type}/{remote_id}", response_model=RecordDetail,
            openapi_extra=RESOURCE_BODY)
async def replace_record(connection_id: int, resource_type: TypePath, remote_id: IdPath,
                         request: Request, operator: Operator, session: SessionDep,
                         response: Response, if_match: IfMatch = None) -> RecordDetail:
    """Replace HoloVitals' copy with the body (the whole resource); it is written to the
    EHR by the next outbound or bidirectional job."""
    body = await _json_body(request)
    row = _find(session, connection_id, resource_type, remote_id)
    return _store(session, row, body, if_match, operator, response)


@router.patch("/{connection_id}/{resource_type}/{remote_id}", response_model=RecordDetail,
              openapi_extra=PATCH_BODY)
async def patch_record(connection_id: int, resource_type: TypePath, remote_id: IdPath,
                       request: Request, operator: Operator, session: SessionDep,
                       response: Response, if_match: IfMatch = None) -> RecordDetail:
    """Change HoloVitals' copy with a JSON Patch (`application/json-patch+json`) or a JSON
    Merge Patch (`application/merge-patch+json`, also plain `application/json`)."""
    kind = PATCH_TYPES.get(request.headers.get("content-type", "").split(";")[0].strip())
    if kind is None:
        raise HTTPException(415, "send application/json-patch+json or "
                                 "application/merge-patch+json")
    patch = await _json_body(request)
    row = _find(session, connection_id, resource_type, remote_id)
    current = row.local_copy or {}
    try:
        body = (service.json_patch(current, patch) if kind == "json"
                else service.merge_patch(current, patch))
    except service.InvalidEdit as exc:
        raise RequestValidationError([{"loc": ("body",), "msg": str(exc),
                                       "type": "value_error"}]) from None
    return _store(session, row, body, if_match, operator, response)
