"""What HoloVitals holds: a connection's records and their errors, one record's three bodies,
and local changes and deletes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlmodel import select

from ..models import (
    Conflict,
    ConflictStatus,
    EHRConnection,
    ErrorSeverity,
    RecordError,
    SyncedRecord,
)
from ..services import record_lists as lists
from ..services import records as service
from .deps import Operator, SessionDep, Viewer

router = APIRouter(prefix="/api/records", tags=["records"])


class RecordItem(BaseModel):
    """One record in a list: its ids, versions, state and HoloVitals' copy."""

    id: int
    connection_id: int
    resource_type: str
    remote_id: str
    patient_ref: str | None
    remote_version: str | None = Field(description="the EHR's version of the record")
    local_version: str = Field(description="the version of HoloVitals' copy (its ETag)")
    dirty: bool = Field(description="local changes (or a delete) not yet written to the EHR")
    conflict_pending: bool
    flagged_invalid: bool
    reference_missing: bool
    deleted: bool = Field(description="a tombstone: the EHR no longer has it")
    deleted_at: datetime | None
    delete_reason: str | None
    local_deleted: bool = Field(description="deleted in HoloVitals, not yet at the EHR")
    last_synced_at: datetime | None
    updated_at: datetime
    open_conflicts: int
    body: dict[str, Any] | None = Field(description="the HoloVitals copy")


class RecordPage(BaseModel):
    items: list[RecordItem]
    next_cursor: int | None = Field(description="pass as `cursor` for the next page")


@router.get("", response_model=RecordPage)
def list_records(
    _viewer: Viewer,
    session: SessionDep,
    connection_id: int = Query(),
    patient: str | None = Query(
        default=None,
        min_length=1,
        max_length=200,
        description="Patient/<id> or <id>: its records and itself",
    ),
    resource_type: str | None = Query(default=None, max_length=64),
    invalid: bool | None = Query(
        default=None,
        description=(
            "invalid by content (flagged_invalid) or by a missing patient (reference_missing)"
        ),
    ),
    dirty: bool | None = Query(default=None),
    deleted: bool | None = Query(default=None),
    changed_since: Annotated[
        datetime | None,
        Query(
            description=(
                "records changed (updated_at) at or after this ISO instant; no offset means UTC"
            )
        ),
    ] = None,
    cursor: int | None = Query(default=None, ge=0, description="the `next_cursor` of a page"),
    limit: int = Query(default=100, ge=1, le=500),
) -> RecordPage:
    """A connection's records (every type, those without a patient too), in id order."""
    if session.get(EHRConnection, connection_id) is None:
        raise HTTPException(404, "no such connection")
    flt = lists.RecordFilter(
        connection_id=connection_id,
        patient=patient,
        resource_type=resource_type,
        invalid=invalid,
        dirty=dirty,
        deleted=deleted,
        changed_since=changed_since,
    )
    page = lists.list_records(session, flt, cursor=cursor, limit=limit)
    counts = lists.open_conflicts(session, [int(r.id) for r in page.rows])
    return RecordPage(
        items=[
            RecordItem(
                **row.model_dump(include=set(RecordItem.model_fields)),
                local_version=service.local_etag(row),
                open_conflicts=counts.get(row.id, 0),
                body=row.local_copy,
            )
            for row in page.rows
        ],
        next_cursor=page.next_cursor,
    )


class ErrorItem(BaseModel):
    """A validation or processing error of one resource (messages carry no values)."""

    id: int
    job_id: int | None
    resource_type: str
    remote_id: str | None
    path: str | None
    severity: ErrorSeverity
    message: str
    created_at: datetime


class ErrorPage(BaseModel):
    items: list[ErrorItem]
    next_cursor: int | None = Field(description="pass as `cursor` for the next (older) page")


def _error_filter(
    session: SessionDep,
    connection_id: int = Query(),
    job_id: int | None = Query(default=None, ge=0),
    resource_type: str | None = Query(default=None, max_length=64),
    remote_id: str | None = Query(default=None, max_length=200),
    severity: Annotated[ErrorSeverity | None, Query()] = None,
    layer: str | None = Query(
        default=None,
        pattern=r"^[a-z]{1,32}$",
        description=(
            "the check that found it, as its message's tag: required, reference, custom, "
            "structure, screen, delete, write, ..."
        ),
    ),
    rule: str | None = Query(
        default=None, min_length=1, max_length=100, description="a custom validation rule's name"
    ),
) -> lists.ErrorFilter:
    if session.get(EHRConnection, connection_id) is None:
        raise HTTPException(404, "no such connection")
    return lists.ErrorFilter(
        connection_id=connection_id,
        job_id=job_id,
        resource_type=resource_type,
        remote_id=remote_id,
        severity=severity,
        layer=layer,
        rule=rule,
    )


ErrorFilterDep = Annotated[lists.ErrorFilter, Depends(_error_filter)]


@router.get("/errors", response_model=ErrorPage)
def list_errors(
    _viewer: Viewer,
    session: SessionDep,
    flt: ErrorFilterDep,
    cursor: int | None = Query(default=None, ge=0, description="the `next_cursor` of a page"),
    limit: int = Query(default=100, ge=1, le=500),
) -> ErrorPage:
    """Record errors of a connection (per job, type, record, check or rule), newest first."""
    page = lists.list_errors(session, flt, cursor=cursor, limit=limit)
    return ErrorPage(
        items=[ErrorItem(**e.model_dump(include=set(ErrorItem.model_fields))) for e in page.rows],
        next_cursor=page.next_cursor,
    )


class CsvResponse(StreamingResponse):
    media_type = "text/csv"


@router.get(
    "/errors.csv",
    response_class=CsvResponse,
    responses={
        200: {
            "description": "the errors as CSV (UTF-8 with a byte order mark), a header row first",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
def export_errors(_viewer: Viewer, flt: ErrorFilterDep) -> CsvResponse:
    """The same errors as a CSV file for a spreadsheet: when (UTC), job_id, resource_type,
    remote_id, path, severity, message; newest first, streamed."""
    name = f"record-errors-connection-{flt.connection_id}.csv"
    return CsvResponse(
        lists.errors_csv(flt),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# A FHIR resource type and id as they may appear in a URL (FHIR's id rule).
TypePath = Annotated[str, Path(pattern=r"^[A-Z][A-Za-z]{1,63}$")]
IdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]
IfMatch = Annotated[
    str | None,
    Header(
        description=(
            "The ETag of HoloVitals' copy as last read (GET gives it): a copy changed since "
            "answers 412, and nothing is lost."
        )
    ),
]
MAX_EDIT_BYTES = 2 * 1024 * 1024
RESOURCE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "the whole FHIR resource"}
            }
        },
    }
}
PATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json-patch+json": {
                "schema": {"type": "array", "items": {"type": "object"}}
            },
            "application/merge-patch+json": {"schema": {"type": "object"}},
        },
    }
}
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/json": "merge",
}


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
    reference_missing: bool
    deleted: bool
    deleted_at: datetime | None
    delete_reason: str | None
    local_deleted: bool
    last_job_id: int | None
    last_synced_at: datetime | None
    open_conflicts: int
    base: dict[str, Any] | None
    local: dict[str, Any] | None
    remote: dict[str, Any] | None
    issues: list[IssueOut]


def _detail(session: SessionDep, row: SyncedRecord, response: Response) -> RecordDetail:
    issues = session.exec(
        select(RecordError)
        .where(
            RecordError.connection_id == row.connection_id,
            RecordError.resource_type == row.resource_type,
            RecordError.remote_id == row.remote_id,
        )
        .order_by(RecordError.id.desc())
        .limit(100)
    ).all()
    open_conflicts = session.exec(
        select(sa.func.count())
        .select_from(Conflict)
        .where(Conflict.record_id == row.id, Conflict.status == ConflictStatus.OPEN)
    ).one()
    etag = service.local_etag(row)
    response.headers["ETag"] = etag
    return RecordDetail(
        **row.model_dump(include=set(RecordDetail.model_fields)),
        local_version=etag,
        open_conflicts=open_conflicts,
        base=row.base_copy,
        local=row.local_copy,
        remote=row.remote_body,
        issues=[IssueOut(**i.model_dump(include=set(IssueOut.model_fields))) for i in issues],
    )


def _find(
    session: SessionDep, connection_id: int, resource_type: str, remote_id: str
) -> SyncedRecord:
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


def _store(
    session: SessionDep,
    row: SyncedRecord,
    body: Any,
    if_match: str | None,
    operator: Operator,
    response: Response,
) -> RecordDetail:
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
        raise RequestValidationError(
            [
                {
                    "loc": ("body", *(path.split(".") if path else ())),
                    "msg": message,
                    "type": "value_error",
                }
                for path, message in fields
            ]
        ) from None
    return _detail(session, row, response)


@router.get("/{connection_id}/{resource_type}/{remote_id}", response_model=RecordDetail)
def record_detail(
    connection_id: int,
    resource_type: TypePath,
    remote_id: IdPath,
    _viewer: Viewer,
    session: SessionDep,
    response: Response,
) -> RecordDetail:
    """One record: base, local and remote bodies, its state, its validation issues.

    The `ETag` header (and `local_version`) is the version of HoloVitals' copy: send it as
    `If-Match` with a change.
    """
    return _detail(session, _find(session, connection_id, resource_type, remote_id), response)


@router.put(
    "/{connection_id}/{resource_type}/{remote_id}",
    response_model=RecordDetail,
    openapi_extra=RESOURCE_BODY,
)
async def replace_record(
    connection_id: int,
    resource_type: TypePath,
    remote_id: IdPath,
    request: Request,
    operator: Operator,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> RecordDetail:
    """Replace HoloVitals' copy with the body (the whole resource); it is written to the
    EHR by the next outbound or bidirectional job."""
    body = await _json_body(request)
    row = _find(session, connection_id, resource_type, remote_id)
    return _store(session, row, body, if_match, operator, response)


@router.patch(
    "/{connection_id}/{resource_type}/{remote_id}",
    response_model=RecordDetail,
    openapi_extra=PATCH_BODY,
)
async def patch_record(
    connection_id: int,
    resource_type: TypePath,
    remote_id: IdPath,
    request: Request,
    operator: Operator,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> RecordDetail:
    """Change HoloVitals' copy with a JSON Patch (`application/json-patch+json`) or a JSON
    Merge Patch (`application/merge-patch+json`, also plain `application/json`)."""
    kind = PATCH_TYPES.get(request.headers.get("content-type", "").split(";")[0].strip())
    if kind is None:
        raise HTTPException(415, "send application/json-patch+json or application/merge-patch+json")
    patch = await _json_body(request)
    row = _find(session, connection_id, resource_type, remote_id)
    current = row.local_copy or {}
    try:
        body = (
            service.json_patch(current, patch)
            if kind == "json"
            else service.merge_patch(current, patch)
        )
    except service.InvalidEdit as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": str(exc), "type": "value_error"}]
        ) from None
    return _store(session, row, body, if_match, operator, response)


@router.delete(
    "/{connection_id}/{resource_type}/{remote_id}", response_model=RecordDetail, status_code=202
)
def delete_record(
    connection_id: int,
    resource_type: TypePath,
    remote_id: IdPath,
    operator: Operator,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> RecordDetail:
    """Delete HoloVitals' copy: the next outbound or bidirectional job deletes the record at
    the EHR (`If-Match` on the EHR's version) and keeps it as a tombstone; if the EHR changed
    it meanwhile, a conflict asks a person. 409 where the vendor takes no FHIR delete of the
    type (nothing is stored)."""
    row = _find(session, connection_id, resource_type, remote_id)
    refusal = service.delete_refusal(session.get(EHRConnection, connection_id), resource_type)
    if refusal is not None:
        raise HTTPException(409, refusal)
    if not if_match:
        raise HTTPException(428, "send If-Match with the ETag of the copy you read (GET it)")
    try:
        service.delete_local(session, row, if_match=if_match, actor=operator.actor)
    except service.StaleLocalWrite as exc:
        raise HTTPException(412, str(exc)) from None
    except (service.RecordHeld, service.DeleteNotSupported) as exc:
        raise HTTPException(409, str(exc)) from None
    return _detail(session, row, response)
