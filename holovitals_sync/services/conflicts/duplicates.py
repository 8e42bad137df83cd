"""Duplicate records: one identifier (system + value) under two remote ids.

Checked for the types in `DUPLICATE_TYPES` only (patients: two charts for one person is
the case that matters). The batch's identifiers are compared with every other stored
record of the type on the connection, read in chunks; one `duplicate` conflict per
record and remote version, naming the other record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlmodel import Session, select

from ...models import Conflict, ConflictKind, Severity, SyncedRecord
from .detect import Action, Outcome

DUPLICATE_TYPES = frozenset({"Patient"})
CHUNK = 2000


def _identities(body: dict[str, Any] | None) -> set[tuple[str, str]]:
    found = set()
    for ident in (body or {}).get("identifier") or ():
        if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
            found.add((str(ident["system"]), str(ident["value"])))
    return found


def _others(session: Session, connection_id: int,
            resource_type: str) -> Iterator[tuple[int, str, dict | None]]:
    query = select(SyncedRecord.id, SyncedRecord.remote_id, SyncedRecord.remote_body).where(
        SyncedRecord.connection_id == connection_id,
        SyncedRecord.resource_type == resource_type,
        SyncedRecord.deleted == False,  # noqa: E712 (SQL expression)
    ).order_by(SyncedRecord.id)
    yield from session.exec(query.execution_options(yield_per=CHUNK))


def detect_duplicates(session: Session, *, connection_id: int, job_id: int | None,
                      records: Sequence[SyncedRecord]) -> list[Outcome]:
    """Open a `duplicate` conflict for each record sharing an identifier with another.

    Args:
        session: The batch's transaction.
        connection_id: The connection.
        job_id: The sync job, recorded on new conflicts.
        records: The batch's stored records (flushed, with ids).
    """
    wanted = [r for r in records if r.resource_type in DUPLICATE_TYPES and r.id]
    owners: dict[tuple[str, str, str], SyncedRecord] = {}
    for record in wanted:
        for system, value in _identities(record.remote_body):
            owners[(record.resource_type, system, value)] = record
    if not owners:
        return []
    found: dict[int, list[tuple[int, str, dict | None]]] = {}
    batch_ids = {r.id for r in wanted}
    for rtype in {r.resource_type for r in wanted}:
        for other in _others(session, connection_id, rtype):
            for system, value in _identities(other[2]):
                mine = owners.get((rtype, system, value))
                if mine is None or mine.id == other[0]:
                    continue
                if other[0] in batch_ids and other[0] > mine.id:
                    continue  # both in this batch: flagged once, on the later record
                found.setdefault(mine.id, []).append(other)
    by_id = {r.id: r for r in wanted}
    return [_open(session, by_id[rid], others, job_id) for rid, others in found.items()]


def _open(session: Session, record: SyncedRecord, others: list, job_id: int | None) -> Outcome:
    existing = session.exec(select(Conflict).where(
        Conflict.record_id == record.id, Conflict.kind == ConflictKind.DUPLICATE,
        Conflict.remote_version == record.remote_version)).first()
    if existing is None:
        other_ids = sorted({o[0] for o in others})
        existing = Conflict(
            record_id=record.id, connection_id=record.connection_id, job_id=job_id,
            resource_type=record.resource_type, kind=ConflictKind.DUPLICATE,
            remote_version=record.remote_version, fields=["identifier"],
            local_values={"identifier": (record.remote_body or {}).get("identifier")},
            remote_values={"identifier": (others[0][2] or {}).get("identifier"),
                           "remote_id": others[0][1], "record_ids": other_ids},
            severity=Severity.MEDIUM,  # identity: a second chart for one person
        )
        session.add(existing)
        session.flush()
    return Outcome(record.id, Action.CONFLICT, existing.id, existing.severity)
