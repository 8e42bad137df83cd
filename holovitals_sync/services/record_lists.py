"""Lists of what HoloVitals holds for a connection: its records and their errors.

Both are paged by keyset on the row id (a cursor, never an offset, so a page costs the same
however deep it is): records in id order (`id > cursor`), errors newest first
(`id < cursor`). The errors' CSV export reads the same filtered rows in chunks, each in a
short transaction of its own, so an export of a million rows never sits in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ..db import session_scope
from ..models import Conflict, ConflictStatus, ErrorSeverity, RecordError, SyncedRecord


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Which records of one connection (None: no condition)."""

    connection_id: int
    patient: str | None = None  # "Patient/<id>" or "<id>": its records and the Patient
    resource_type: str | None = None
    invalid: bool | None = None  # invalid by content or by a missing patient
    dirty: bool | None = None
    deleted: bool | None = None
    changed_since: datetime | None = None  # updated_at at or after


@dataclass(frozen=True, slots=True)
class ErrorFilter:
    """Which record errors of one connection (None: no condition)."""

    connection_id: int
    job_id: int | None = None
    resource_type: str | None = None
    remote_id: str | None = None
    severity: ErrorSeverity | None = None
    layer: str | None = None  # the message's tag: "required" for "[required] ..."
    rule: str | None = None  # a custom rule's name: "[custom] <rule>: ..."


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Any]
    next_cursor: int | None


def _aware(instant: datetime) -> datetime:
    """An instant given without an offset is UTC (the only clock stored)."""
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant


def _flag(column: Any, wanted: bool) -> sa.ColumnElement[bool]:
    return column == (sa.true() if wanted else sa.false())


def _record_conditions(flt: RecordFilter) -> list[sa.ColumnElement[bool]]:
    conditions = [SyncedRecord.connection_id == flt.connection_id]
    if flt.patient:
        ref = flt.patient if flt.patient.startswith("Patient/") else f"Patient/{flt.patient}"
        conditions.append(
            sa.or_(
                SyncedRecord.patient_ref == ref,
                sa.and_(
                    SyncedRecord.resource_type == "Patient",
                    SyncedRecord.remote_id == ref.split("/", 1)[1],
                ),
            )
        )
    if flt.resource_type:
        conditions.append(SyncedRecord.resource_type == flt.resource_type)
    if flt.invalid is not None:
        either = sa.or_(
            _flag(SyncedRecord.flagged_invalid, True), _flag(SyncedRecord.reference_missing, True)
        )
        conditions.append(either if flt.invalid else sa.not_(either))
    if flt.dirty is not None:
        conditions.append(_flag(SyncedRecord.dirty, flt.dirty))
    if flt.deleted is not None:
        conditions.append(_flag(SyncedRecord.deleted, flt.deleted))
    if flt.changed_since is not None:
        conditions.append(SyncedRecord.updated_at >= _aware(flt.changed_since))
    return conditions


def list_records(session: Session, flt: RecordFilter, *, cursor: int | None, limit: int) -> Page:
    """One page of records in id order; `next_cursor` is the last id when more follow."""
    query = select(SyncedRecord).where(*_record_conditions(flt))
    if cursor is not None:
        query = query.where(SyncedRecord.id > cursor)
    rows = list(session.exec(query.order_by(SyncedRecord.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, int(rows[-1].id) if more and rows else None)


def open_conflicts(session: Session, record_ids: Sequence[int]) -> dict[int, int]:
    """Record id -> its open conflicts (only records that have some)."""
    if not record_ids:
        return {}
    return dict(
        session.exec(
            select(Conflict.record_id, sa.func.count())
            .where(Conflict.record_id.in_(list(record_ids)), Conflict.status == ConflictStatus.OPEN)
            .group_by(Conflict.record_id)
        ).all()
    )


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _error_conditions(flt: ErrorFilter) -> list[sa.ColumnElement[bool]]:
    conditions = [RecordError.connection_id == flt.connection_id]
    if flt.job_id is not None:
        conditions.append(RecordError.job_id == flt.job_id)
    if flt.resource_type:
        conditions.append(RecordError.resource_type == flt.resource_type)
    if flt.remote_id:
        conditions.append(RecordError.remote_id == flt.remote_id)
    if flt.severity is not None:
        conditions.append(RecordError.severity == flt.severity)
    if flt.layer:
        conditions.append(RecordError.message.like(f"[{_like_literal(flt.layer)}]%", escape="\\"))
    if flt.rule:
        conditions.append(
            RecordError.message.like(f"[custom] {_like_literal(flt.rule)}:%", escape="\\")
        )
    return conditions


def list_errors(session: Session, flt: ErrorFilter, *, cursor: int | None, limit: int) -> Page:
    """One page of record errors, newest first; `next_cursor` for the older ones."""
    query = select(RecordError).where(*_error_conditions(flt))
    if cursor is not None:
        query = query.where(RecordError.id < cursor)
    rows = list(session.exec(query.order_by(RecordError.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, int(rows[-1].id) if more and rows else None)


CSV_COLUMNS = ("when", "job_id", "resource_type", "remote_id", "path", "severity", "message")
# A spreadsheet runs a cell that starts like a formula (CSV injection, OWASP): such cells
# get a leading single quote, which shows them as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_CHUNK = 1000


def csv_cell(value: Any) -> str:
    """One cell as text, defused where a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _csv_row(error: RecordError) -> list[str]:
    when = _aware(error.created_at).astimezone(UTC).isoformat().replace("+00:00", "Z")
    return [
        csv_cell(v)
        for v in (
            when,
            error.job_id,
            error.resource_type,
            error.remote_id,
            error.path,
            error.severity.value,
            error.message,
        )
    ]


def _lines(rows: Sequence[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def errors_csv(flt: ErrorFilter, *, chunk: int = CSV_CHUNK) -> Iterator[str]:
    """The filtered errors as CSV text, newest first, a header row first.

    Starts with a UTF-8 byte order mark, by which spreadsheets recognise the encoding. Rows
    are read `chunk` at a time by keyset, each chunk in its own short transaction.
    """
    yield "\ufeff" + _lines([list(CSV_COLUMNS)])
    cursor: int | None = None
    while True:
        with session_scope() as session:
            page = list_errors(session, flt, cursor=cursor, limit=chunk)
            text = _lines([_csv_row(e) for e in page.rows])
        if text:
            yield text
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
