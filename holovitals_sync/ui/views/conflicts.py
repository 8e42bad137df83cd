"""Read-side views of conflicts for the dashboard, and checking a resolution before it is sent.

`conflicts_page` is one server-side page of plain string rows; `conflict_view` puts base,
local and remote side by side (per conflicting element, and the record's top-level elements
with the differing ones marked); `check_resolution` runs the pure part of `resolve` so the
modal can show a clear error at the field before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlmodel import Session, select

from ...models import Conflict, EHRConnection, ResolutionStrategy, SyncedRecord
from ...services import labels
from ...services.conflicts.queries import ConflictFilter, list_conflicts
from ...services.conflicts.resolve import ResolutionError, resolved_body
from . import times

Row = dict[str, str]
ABSENT = "(absent)"
IGNORED_KEYS = frozenset({"meta"})


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Row]
    next_cursor: int | None


when = times.when  # in columns headed "(UTC)"


def as_json(value: Any, *, missing: bool = False) -> str:
    """A value as indented JSON text (the modal's cells), or a marker for an absent one."""
    if missing:
        return ABSENT
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def _connection_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.exec(
        select(EHRConnection.id, EHRConnection.name).where(EHRConnection.id.in_(sorted(ids)))  # type: ignore[union-attr]
    )
    return dict(rows.all())


def _records(session: Session, ids: set[int]) -> dict[int, SyncedRecord]:
    if not ids:
        return {}
    rows = session.exec(select(SyncedRecord).where(SyncedRecord.id.in_(sorted(ids))))  # type: ignore[union-attr]
    return {r.id: r for r in rows}


def conflict_row(row: Conflict, record: SyncedRecord | None, connection: str) -> Row:
    return {
        "id": str(row.id),
        "resource_type": row.resource_type,
        "resource": f"{row.resource_type}/{record.remote_id}" if record else row.resource_type,
        "connection": connection,
        "kind": row.kind.value,
        "kind_label": labels.CONFLICT_KINDS.get(row.kind.value, row.kind.value),
        "severity": row.severity.value,
        "status": row.status.value,
        "fields": ", ".join(row.fields),
        "created": when(row.created_at),
        "resolved_by": row.resolved_by or "",
        "strategy": row.strategy.value if row.strategy else "",
        "strategy_label": labels.STRATEGIES.get(row.strategy.value, row.strategy.value)
        if row.strategy
        else "",
        **_write_back(row),
    }


def _write_back(row: Conflict) -> Row:
    """The resolution's write to the EHR, in words (the error's class in the tooltip)."""
    outcome = (row.resolution or {}).get("write_back") or {}
    status = outcome.get("status") or ""
    return {
        "write_back": status,
        "write_back_label": labels.WRITE_BACKS.get(status, status),
        "write_back_error": outcome.get("error") or "",
    }


def conflicts_page(
    session: Session, *, filters: ConflictFilter, after_id: int | None = None, limit: int = 20
) -> Page:
    """One page of conflicts, newest first, as rows for the conflicts tab."""
    rows, cursor = list_conflicts(session, filters=filters, after_id=after_id, limit=limit)
    names = _connection_names(session, {r.connection_id for r in rows})
    records = _records(session, {r.record_id for r in rows})
    return Page(
        [conflict_row(r, records.get(r.record_id), names.get(r.connection_id, "—")) for r in rows],
        cursor,
    )


def resource_types(session: Session) -> list[str]:
    """The resource types that have conflicts, for the filter."""
    return sorted(set(session.exec(select(Conflict.resource_type).distinct()).all()))


def _element_rows(row: Conflict) -> list[Row]:
    """Each conflicting element: its base, local and remote value (absent ones marked)."""
    out = []
    for path in row.fields:
        out.append(
            {
                "path": path,
                "base": as_json(row.base_values.get(path), missing=path not in row.base_values),
                "local": as_json(row.local_values.get(path), missing=path not in row.local_values),
                "remote": as_json(
                    row.remote_values.get(path), missing=path not in row.remote_values
                ),
            }
        )
    return out


def _record_rows(record: SyncedRecord) -> list[Row]:
    """The record's top-level elements side by side; `differs` marks local != remote."""
    base, local, remote = record.base_copy or {}, record.local_copy or {}, record.remote_body or {}
    keys = [k for k in dict.fromkeys([*local, *remote]) if k not in IGNORED_KEYS]
    out = []
    for key in keys:
        differs = local.get(key, ABSENT) != remote.get(key, ABSENT)
        out.append(
            {
                "element": key,
                "base": as_json(base.get(key), missing=key not in base),
                "local": as_json(local.get(key), missing=key not in local),
                "remote": as_json(remote.get(key), missing=key not in remote),
                "differs": "yes" if differs else "",
            }
        )
    return out


def conflict_view(session: Session, conflict_id: int) -> dict[str, Any] | None:
    """Everything the resolution modal shows, or None when there is no such conflict."""
    row = session.get(Conflict, conflict_id)
    if row is None:
        return None
    record = session.get(SyncedRecord, row.record_id)
    names = _connection_names(session, {row.connection_id})
    return {
        "summary": conflict_row(row, record, names.get(row.connection_id, "—")),
        "elements": _element_rows(row),
        "record": _record_rows(record) if record else [],
        "manual_template": as_json({p: row.local_values.get(p) for p in row.fields}),
        "reason": row.reason or "",
    }


def parse_manual(text: str) -> dict[str, Any]:
    """The manual editor's text: a JSON object of conflicting path -> value to keep."""
    try:
        value = orjson.loads(text or "")
    except orjson.JSONDecodeError as exc:
        raise ResolutionError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ResolutionError('expected a JSON object: {"<element path>": <value>, ...}')
    return value


def check_resolution(
    session: Session,
    *,
    conflict_id: int,
    strategy: ResolutionStrategy,
    choices: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> None:
    """Would `resolve` accept this? Raises ResolutionError naming paths, never values."""
    row = session.get(Conflict, conflict_id)
    record = session.get(SyncedRecord, row.record_id) if row else None
    if row is None or record is None:
        raise ResolutionError("no such conflict")
    resolved_body(
        strategy,
        record.base_copy,
        record.local_copy or {},
        record.remote_body or {},
        choices=choices,
        values=values,
    )
