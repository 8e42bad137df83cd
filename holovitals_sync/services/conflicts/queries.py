"""Finding conflicts: filters and keyset (cursor) pagination for the API and the UI."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from ...models import Conflict, ConflictStatus, Severity, SyncedRecord

MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class ConflictFilter:
    """Every field optional; all given ones must hold."""

    status: ConflictStatus | None = None
    severity: Severity | None = None
    connection_id: int | None = None
    resource_type: str | None = None
    patient_ref: str | None = None  # "Patient/<id>" (a bare id is accepted)


def _query(filters: ConflictFilter):  # noqa: ANN202 (a SQLModel select)
    query = select(Conflict)
    if filters.status is not None:
        query = query.where(Conflict.status == filters.status)
    if filters.severity is not None:
        query = query.where(Conflict.severity == filters.severity)
    if filters.connection_id is not None:
        query = query.where(Conflict.connection_id == filters.connection_id)
    if filters.resource_type is not None:
        query = query.where(Conflict.resource_type == filters.resource_type)
    if filters.patient_ref is not None:
        ref = filters.patient_ref
        ref = ref if "/" in ref else f"Patient/{ref}"
        records = select(SyncedRecord.id).where(SyncedRecord.patient_ref == ref)
        query = query.where(Conflict.record_id.in_(records))
    return query


def list_conflicts(
    session: Session, *, filters: ConflictFilter, after_id: int | None = None, limit: int = 50
) -> tuple[list[Conflict], int | None]:
    """One page, newest first; returns (rows, cursor for the next page or None)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = _query(filters)
    if after_id is not None:
        query = query.where(Conflict.id < after_id)
    rows = list(session.exec(query.order_by(Conflict.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def matching_ids(session: Session, *, filters: ConflictFilter, limit: int = 1000) -> list[int]:
    """Ids of the conflicts a filter selects (oldest first), for bulk resolution."""
    query = _query(filters).order_by(Conflict.id).limit(limit)
    return [row.id for row in session.exec(query)]
