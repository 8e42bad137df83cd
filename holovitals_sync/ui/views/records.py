"""Read-side helpers for the Records page: a connection's records and record errors as rows
of strings, one record beside its issues, and the filters as the page types them.

The lists go through `record_lists`, the very queries of `GET /api/records` and
`GET /api/records/errors`, so the page and the API never disagree about what a filter
means. List rows carry ids, types, states and times only; a body is read only when one
record is opened, as `GET /api/records/{connection}/{type}/{id}` gives it to a viewer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson
import sqlalchemy as sa
from sqlmodel import Session, select

from ...models import EHRConnection, ErrorSeverity, RecordError, SyncedRecord
from ...services import record_lists as lists
from ...services import records
from . import times

Row = dict[str, str]
ANY = "any"
# Tri-state filters as the page offers them: the words, and what each asks the list for.
INVALID = {ANY: None, "flagged": True, "valid": False}
DIRTY = {ANY: None, "pending": True, "none": False}
DELETED = {ANY: None, "deleted": True, "not deleted": False}
SEVERITIES = [ANY, *(s.value for s in ErrorSeverity)]
# The tag each check puts in front of its messages ("[required] ..."); `layer` filters on it.
LAYERS = [ANY, "required", "reference", "custom", "structure", "delete", "write"]
ISSUES_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Row]
    next_cursor: int | None


when = functools.partial(times.when, precision="minute")  # in columns headed "(UTC)"


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def connection_choices(session: Session) -> list[Row]:
    """Every connection as id and name, for the page's connection picker."""
    rows = session.exec(
        select(EHRConnection.id, EHRConnection.name).order_by(EHRConnection.name, EHRConnection.id)
    )
    return [{"id": str(cid), "name": name} for cid, name in rows]


def resource_types(session: Session, connection_id: int) -> list[str]:
    """The resource types a connection holds, for the type filter.

    Walks the unique index (connection, type, remote id) one type at a time, a probe per
    type, instead of reading every record of the connection as DISTINCT would.
    """
    found = session.connection().execute(
        sa.text(
            "WITH RECURSIVE t(rt) AS ("
            " SELECT MIN(resource_type) FROM synced_record WHERE connection_id = :c"
            " UNION ALL"
            " SELECT (SELECT MIN(resource_type) FROM synced_record"
            "         WHERE connection_id = :c AND resource_type > t.rt)"
            " FROM t WHERE t.rt IS NOT NULL)"
            " SELECT rt FROM t WHERE rt IS NOT NULL"
        ),
        {"c": connection_id},
    )
    return [str(rt) for (rt,) in found]


# -- filters as typed ------------------------------------------------------------------------


def parse_instant(text: str) -> datetime | None:
    """ "2026-03-01" or "2026-03-01T08:30" (what a datetime-local input sends), in UTC.

    Raises ValueError on anything else.
    """
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("a date (and time) as YYYY-MM-DD HH:MM, in UTC") from None


def record_filter(connection_id: int, values: Row) -> tuple[lists.RecordFilter | None, Row]:
    """The records list's filters from the page's strings, or messages per field."""
    errors: Row = {}
    try:
        since = parse_instant(values.get("changed_since", ""))
    except ValueError as exc:
        errors["changed_since"], since = str(exc), None
    patient = values.get("patient", "").strip()[:200]
    rtype = values.get("resource_type", ANY)
    if errors:
        return None, errors
    return lists.RecordFilter(
        connection_id=connection_id, patient=patient or None,
        resource_type=None if rtype in ("", ANY) else rtype[:64],
        invalid=INVALID.get(values.get("invalid", ANY)),
        dirty=DIRTY.get(values.get("dirty", ANY)),
        deleted=DELETED.get(values.get("deleted", ANY)),
        changed_since=since), {}  # fmt: skip


def error_filter(connection_id: int, values: Row) -> tuple[lists.ErrorFilter | None, Row]:
    """The errors list's filters from the page's strings, or messages per field."""
    errors: Row = {}
    job = values.get("job", "").strip().lstrip("#")
    if job and not job.isdecimal():
        errors["job"] = "a job number, such as 42"
    severity, layer = values.get("severity", ANY), values.get("layer", ANY)
    rtype = values.get("error_type", ANY)
    if errors:
        return None, errors
    return lists.ErrorFilter(
        connection_id=connection_id, job_id=int(job) if job else None,
        resource_type=None if rtype in ("", ANY) else rtype[:64],
        remote_id=values.get("remote_id", "").strip()[:200] or None,
        severity=ErrorSeverity(severity) if severity in SEVERITIES[1:] else None,
        layer=layer if layer in LAYERS[1:] else None,
        rule=values.get("rule", "").strip()[:100] or None), {}  # fmt: skip


def csv_path(flt: lists.ErrorFilter) -> str:
    """The API's CSV export of exactly these errors (`GET /api/records/errors.csv`)."""
    query = {"connection_id": flt.connection_id, "job_id": flt.job_id,
             "resource_type": flt.resource_type, "remote_id": flt.remote_id,
             "severity": flt.severity.value if flt.severity else None, "layer": flt.layer,
             "rule": flt.rule}  # fmt: skip
    return "/api/records/errors.csv?" + urlencode({k: v for k, v in query.items() if v is not None})


# -- lists -----------------------------------------------------------------------------------


def _record_row(row: SyncedRecord, conflicts: int) -> Row:
    return {
        "id": str(row.id), "type": row.resource_type, "remote_id": row.remote_id,
        "patient": (row.patient_ref or "").removeprefix("Patient/"),
        "version": row.remote_version or "—", "changed": when(row.updated_at),
        "invalid": _yes(row.flagged_invalid), "reference_missing": _yes(row.reference_missing),
        "dirty": _yes(row.dirty and not row.local_deleted), "deleted": _yes(row.deleted),
        "local_deleted": _yes(row.local_deleted), "conflicts": str(conflicts) if conflicts else "",
    }  # fmt: skip


def records_page(
    session: Session, flt: lists.RecordFilter, *, cursor: int | None, limit: int
) -> Page:
    """One page of records in id order (no bodies)."""
    page = lists.list_records(session, flt, cursor=cursor, limit=limit)
    counts = lists.open_conflicts(session, [int(r.id) for r in page.rows])
    return Page([_record_row(r, counts.get(int(r.id), 0)) for r in page.rows], page.next_cursor)


def _error_row(error: RecordError) -> Row:
    return {
        "id": str(error.id), "when": when(error.created_at),
        "job": str(error.job_id) if error.job_id is not None else "",
        "type": error.resource_type, "remote_id": error.remote_id or "",
        "path": error.path or "", "severity": error.severity.value, "message": error.message,
    }  # fmt: skip


def errors_page(
    session: Session, flt: lists.ErrorFilter, *, cursor: int | None, limit: int
) -> Page:
    """One page of record errors, newest first."""
    page = lists.list_errors(session, flt, cursor=cursor, limit=limit)
    return Page([_error_row(e) for e in page.rows], page.next_cursor)


# -- one record ------------------------------------------------------------------------------


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() if value is not None else ""


@dataclass(frozen=True, slots=True)
class RecordView:
    """One record as the page opens it: its state, HoloVitals' copy, its issues."""

    summary: Row
    body: str  # HoloVitals' copy as indented JSON
    remote_body: str  # the EHR's copy, only when it differs from HoloVitals' ("" otherwise)
    issues: list[Row]
    etag: str  # the version of HoloVitals' copy: a delete names it (If-Match)


def record_view(
    session: Session, connection_id: int, resource_type: str, remote_id: str
) -> RecordView | None:
    """The record with its open conflicts and newest issues, or None when there is none."""
    try:
        row = records.find(session, connection_id, resource_type, remote_id)
    except records.RecordNotFound:
        return None
    conflicts = lists.open_conflicts(session, [int(row.id)]).get(int(row.id), 0)
    issues = lists.list_errors(session, lists.ErrorFilter(
        connection_id=connection_id, resource_type=resource_type, remote_id=remote_id),
        cursor=None, limit=ISSUES_SHOWN)  # fmt: skip
    connection = session.get(EHRConnection, connection_id)
    refusal = records.delete_refusal(connection, resource_type) if connection else None
    summary = {
        **_record_row(row, conflicts),
        "connection_id": str(connection_id), "synced": when(row.last_synced_at),
        "last_job": str(row.last_job_id) if row.last_job_id is not None else "",
        "deleted_at": when(row.deleted_at), "delete_reason": row.delete_reason or "",
        "local_deleted_at": when(row.local_deleted_at),
        "local_deleted_by": row.local_deleted_by or "",
        "issues_more": _yes(issues.next_cursor is not None),
        # Why no delete can be asked for now ("" when it can).
        "delete_refusal": refusal or _held(row),
    }  # fmt: skip
    local = row.local_copy
    return RecordView(
        summary,
        _json(local),
        _json(row.remote_body) if row.remote_body != local else "",
        [_error_row(e) for e in issues.rows],
        records.local_etag(row),
    )


def _held(row: SyncedRecord) -> str:
    if row.deleted:
        return "a tombstone: the EHR no longer has this record"
    if row.local_deleted:
        return "already marked for deletion"
    if row.conflict_pending:
        return "an open conflict holds this record; resolve it first"
    return ""
