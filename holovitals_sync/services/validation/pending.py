"""Patient references decided when a run ends, not while its pages arrive.

Real servers list resource types in any order (often alphabetically, Patient last), so a
batch of Observations may name patients the run has not fetched yet. The batches only check
a reference's form; once the run's batches are stored, one pass per run sets each record's
`reference_missing` from what the connection holds now:

- a record whose patient is still not held (or only as a tombstone) is marked, and the job
  records one error for it;
- a record marked by an earlier run whose patient has arrived since is cleared.

A full run looks at every record of the connection; other runs at the records they wrote
and those still marked, so a patient fetched by a later incremental or patient sync clears
the records that waited for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from ...models import ErrorSeverity, RecordError, SyncedRecord

# Records per read: each is one short pass over an id range.
CHUNK = 50_000
# Ids per UPDATE (SQLite allows 32,766 bound values).
ID_CHUNK = 10_000
MESSAGE = (
    "[reference] the referenced patient is not held for this connection "
    "(checked when the sync ended)"
)


@dataclass(slots=True)
class Settled:
    """What one pass changed."""

    missing: int = 0  # records newly marked
    resolved: int = 0  # records whose patient has arrived


def _missing_now(table: sa.Table) -> sa.ColumnElement[bool]:
    """True where the record's patient is not held (alive) for its connection."""
    patient = table.alias("patient")
    held = sa.exists().where(
        patient.c.connection_id == table.c.connection_id,
        patient.c.resource_type == "Patient",
        patient.c.remote_id == sa.func.substr(table.c.patient_ref, 9),  # after "Patient/"
        patient.c.deleted == sa.false(),
    )
    return ~held


def _scope(
    table: sa.Table, connection_id: int, job_id: int | None, whole: bool
) -> list[sa.ColumnElement[bool]]:
    terms = [
        table.c.connection_id == connection_id,
        table.c.resource_type != "Patient",
        table.c.patient_ref.is_not(None),
        table.c.deleted == sa.false(),
    ]
    if not whole:
        terms.append(sa.or_(table.c.last_job_id == job_id, table.c.reference_missing == sa.true()))
    return terms


def settle_references(
    session: Session, *, connection_id: int, job_id: int | None, whole: bool
) -> Settled:
    """Mark and clear `reference_missing` for the run's scope; record the newly missing."""
    table = SyncedRecord.__table__
    missing_now = _missing_now(table)
    settled = Settled()
    ids = _to_change(session, table, connection_id, job_id, whole, missing_now)
    for start in range(0, len(ids), ID_CHUNK):
        changed = session.execute(
            sa.update(table)
            # Checked again: a patient may have arrived or gone since the read.
            .where(
                table.c.id.in_(ids[start : start + ID_CHUNK]),
                table.c.reference_missing != missing_now,
            )
            .values(reference_missing=missing_now)
            .returning(table.c.resource_type, table.c.remote_id, table.c.reference_missing)
        ).all()
        newly = [(rtype, rid) for rtype, rid, missing in changed if missing]
        settled.missing += len(newly)
        settled.resolved += len(changed) - len(newly)
        _record(session, connection_id, job_id, newly)
    return settled


def _to_change(
    session: Session,
    table: sa.Table,
    connection_id: int,
    job_id: int | None,
    whole: bool,
    missing_now: sa.ColumnElement[bool],
) -> list[int]:
    """The ids in the run's scope whose mark is wrong now, found by reads alone.

    Why not one UPDATE over the scope: a run other than a full one has no index to its
    records, so the UPDATE scanned the connection's records while holding SQLite's only
    write lock, about 20 ms a patient sync (up to 215 ms) with tens of thousands of records
    held, and the webhook receiver's commits waited behind it. Before the run's first write
    these reads take no write lock (the driver begins a transaction at the first write).
    """
    low, high = session.execute(
        sa.select(sa.func.min(table.c.id), sa.func.max(table.c.id)).where(
            table.c.connection_id == connection_id
        )
    ).one()
    if low is None:
        return []
    ids: list[int] = []
    for start in range(low - 1, high, CHUNK):
        ids += session.execute(
            sa.select(table.c.id).where(
                *_scope(table, connection_id, job_id, whole),
                table.c.id > start,
                table.c.id <= start + CHUNK,
                table.c.reference_missing != missing_now,
            )
        ).scalars()
    return ids


def _record(
    session: Session, connection_id: int, job_id: int | None, records: list[tuple[str, str]]
) -> None:
    if records:
        session.bulk_insert_mappings(
            RecordError,
            [  # type: ignore[arg-type]
                {
                    "job_id": job_id,
                    "connection_id": connection_id,
                    "resource_type": rtype,
                    "remote_id": rid,
                    "path": "patient reference",
                    "message": MESSAGE,
                    "severity": ErrorSeverity.ERROR,
                }
                for rtype, rid in records
            ],
        )
