"""Duplicate records: one identifier (system + value) under two remote ids.

Checked for the types in `DUPLICATE_TYPES` only (patients: two charts for one person is
the case that matters). Each batch refreshes its records' rows in `record_identifier`, then
looks its identifiers up there (an index on connection, type, system and value), so the
cost of a batch does not grow with the number of records already stored; one `duplicate`
conflict per record and remote version, naming the other record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, delete, select

from ...models import Conflict, ConflictKind, RecordIdentifier, Severity, SyncedRecord
from .detect import Action, Outcome

DUPLICATE_TYPES = frozenset({"Patient"})
CHUNK = 400  # identifier pairs per look-up query (bound parameters stay well under limits)
MAX_PART = 500  # longer systems or values are cut (the column width)


def _identities(body: dict[str, Any] | None) -> set[tuple[str, str]]:
    found = set()
    for ident in (body or {}).get("identifier") or ():
        if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
            found.add((str(ident["system"])[:MAX_PART], str(ident["value"])[:MAX_PART]))
    return found


def index_identifiers(session: Session, records: Sequence[SyncedRecord]) -> None:
    """Replace the indexed identifiers of these records with those of their remote bodies."""
    ids = [r.id for r in records if r.id]
    if not ids:
        return
    session.exec(delete(RecordIdentifier).where(RecordIdentifier.record_id.in_(ids)))
    rows = [
        {
            "record_id": r.id,
            "connection_id": r.connection_id,
            "resource_type": r.resource_type,
            "system": system,
            "value": value,
        }
        for r in records
        if r.id
        for system, value in _identities(r.remote_body)
    ]
    if rows:
        # One executemany through Core: ORM objects were flushed one INSERT per row (they
        # want their new ids back), twenty statements a batch for nothing.
        session.execute(sa.insert(RecordIdentifier), rows)


def _others(
    session: Session, connection_id: int, resource_type: str, pairs: Sequence[tuple[str, str]]
) -> Iterator[tuple[int, str, dict | None]]:
    """Live records of the type holding any of these identifiers (once each)."""
    seen: set[int] = set()
    for start in range(0, len(pairs), CHUNK):
        chunk = pairs[start : start + CHUNK]
        query = (
            select(SyncedRecord.id, SyncedRecord.remote_id, SyncedRecord.remote_body)
            .join(RecordIdentifier, RecordIdentifier.record_id == SyncedRecord.id)
            .where(
                RecordIdentifier.connection_id == connection_id,
                RecordIdentifier.resource_type == resource_type,
                sa.tuple_(RecordIdentifier.system, RecordIdentifier.value).in_(chunk),
                SyncedRecord.deleted == False,  # noqa: E712 (SQL expression)
            )
            .order_by(SyncedRecord.id)
        )
        for row in session.exec(query):
            if row[0] not in seen:
                seen.add(row[0])
                yield row


def detect_duplicates(
    session: Session, *, connection_id: int, job_id: int | None, records: Sequence[SyncedRecord]
) -> list[Outcome]:
    """Open a `duplicate` conflict for each record sharing an identifier with another.

    Args:
        session: The batch's transaction.
        connection_id: The connection.
        job_id: The sync job, recorded on new conflicts.
        records: The batch's stored records (flushed, with ids).
    """
    wanted = [r for r in records if r.resource_type in DUPLICATE_TYPES and r.id]
    index_identifiers(session, wanted)
    owners: dict[tuple[str, str, str], SyncedRecord] = {}
    for record in wanted:
        for system, value in _identities(record.remote_body):
            owners[(record.resource_type, system, value)] = record
    if not owners:
        return []
    found: dict[int, list[tuple[int, str, dict | None]]] = {}
    batch_ids = {r.id for r in wanted}
    for rtype in {r.resource_type for r in wanted}:
        pairs = sorted({(system, value) for t, system, value in owners if t == rtype})
        for other in _others(session, connection_id, rtype, pairs):
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
    existing = session.exec(
        select(Conflict).where(
            Conflict.record_id == record.id,
            Conflict.kind == ConflictKind.DUPLICATE,
            Conflict.remote_version == record.remote_version,
        )
    ).first()
    if existing is None:
        other_ids = sorted({o[0] for o in others})
        existing = Conflict(
            record_id=record.id,
            connection_id=record.connection_id,
            job_id=job_id,
            resource_type=record.resource_type,
            kind=ConflictKind.DUPLICATE,
            remote_version=record.remote_version,
            fields=["identifier"],
            local_values={"identifier": (record.remote_body or {}).get("identifier")},
            remote_values={
                "identifier": (others[0][2] or {}).get("identifier"),
                "remote_id": others[0][1],
                "record_ids": other_ids,
            },
            severity=Severity.MEDIUM,  # identity: a second chart for one person
        )
        session.add(existing)
        session.flush()
    return Outcome(record.id, Action.CONFLICT, existing.id, existing.severity)
