"""One bulk upsert per batch into `synced_record`, idempotent by content hash.

A single `INSERT .. ON CONFLICT DO UPDATE .. WHERE hash differs` per batch (SQLite and
PostgreSQL dialect inserts): records whose remote body is unchanged write nothing, so a
batch applied twice (a resumed job replaying its last batch) changes nothing the second time.
The WHERE also refuses a copy older than the stored one (by `meta.lastUpdated`): two runs
racing on one record (a webhook-triggered patient sync beside a full sync) must not let the
one that fetched first and commits last put an old version back. PostgreSQL re-checks that
WHERE against the committed row after waiting for the other transaction's lock.

Round trips per batch: one SELECT of the stored hashes, one INSERT (on PostgreSQL the
SELECT only while a run's batches are mostly unchanged: see `postgres.upsert`). The batch
travels in two parameters, so the SQL text stays the same whatever the batch size and
the driver does not re-parse a statement with thousands of placeholders (~10 ms a batch of
100 on psycopg, measured): a small JSON array of the per-record fields, and the bodies
(on PostgreSQL as NDJSON, see `postgres._statement`; on SQLite back to back in one BLOB, see
`sqlite._statement`). The database unpacks the rows with the GIL released. Each body is
serialised once, by orjson, usually ahead of time in the prefetch thread (`prepare`).

The package: `rows` (the rows, counts and SQL pieces both dialects share), `postgres` and
`sqlite` (each dialect's look-up and statement); `upsert_batch` here picks the dialect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ....models import SyncedRecord
from ....models.types import utcnow
from .. import runcache
from . import postgres, sqlite
from .rows import Changed, Prepared, UpsertCounts, dedupe, patient_ref, prepare, row_of

__all__ = [
    "Changed",
    "Prepared",
    "UpsertCounts",
    "correct_flags",
    "dedupe",
    "patient_ref",
    "prepare",
    "upsert_batch",
]


def upsert_batch(
    session: Session,
    *,
    connection_id: int,
    job_id: int | None,
    resources: Sequence[dict[str, Any]],
    flagged: Sequence[dict[str, Any]] = (),
    prepared: Mapping[int, Prepared] | None = None,
) -> UpsertCounts:
    """Insert new records, update changed ones, leave unchanged ones untouched.

    Args:
        session: The transaction the caller commits together with the checkpoint.
        connection_id: The EHR connection the resources came from.
        job_id: The job writing them (kept on the row for tracing).
        resources: Resources to store as they are.
        flagged: Resources stored but flagged invalid (lenient validation).
        prepared: `prepare(r)` already done, by `id()` of these very objects (a resource
            not in it, such as a transformed copy, is prepared here).

    Returns:
        How many were created, updated and unchanged.
    """
    flagged_keys = {(r.get("resourceType"), r.get("id")) for r in flagged}
    unique = dedupe([*resources, *flagged])
    prepared = prepared or {}
    rows = [
        row_of(r, (r["resourceType"], r["id"]) in flagged_keys, prepared.get(id(r))) for r in unique
    ]
    if not rows:
        return UpsertCounts()
    shared = {"connection_id": connection_id, "job_id": job_id, "now": utcnow()}
    dialect = postgres if session.get_bind().dialect.name == "postgresql" else sqlite
    counts = dialect.upsert(session, shared, rows)
    if _flags_may_differ(session, connection_id, rows):
        correct_flags(session, connection_id, rows)
    return counts


def _flags_may_differ(session: Session, connection_id: int, rows: Sequence[Prepared]) -> bool:
    """Whether an unchanged record of the batch may carry a flag that no longer holds.

    Only where the batch flags something or the connection already holds flagged records:
    a clean import (the common case) pays nothing for it.
    """
    cache = runcache.current(connection_id)
    if any(row["flagged_invalid"] for row in rows):
        if cache is not None:
            cache.flags_stored = True  # they are now
        return True
    if cache is not None and cache.flags_stored is not None:
        return cache.flags_stored
    table = SyncedRecord.__table__
    stored = (
        session.execute(
            sa.select(sa.literal(1))
            .where(table.c.connection_id == connection_id, table.c.flagged_invalid == sa.true())
            .limit(1)
        ).first()
        is not None
    )
    if cache is not None:
        cache.flags_stored = stored
    return stored


def correct_flags(session: Session, connection_id: int, rows: Sequence[Prepared]) -> None:
    """Set `flagged_invalid` of the batch's stored records to what this validation found.

    The upsert leaves a record whose content is unchanged alone, flag included: a record
    flagged under rules since changed (or by older code) kept its flag through every
    resync. This clears or sets it without touching anything else.
    """
    table = SyncedRecord.__table__
    for value in (True, False):
        keys = [
            (row["resource_type"], row["remote_id"])
            for row in rows
            if row["flagged_invalid"] is value
        ]
        if keys:
            session.execute(
                sa.update(table)
                .where(
                    table.c.connection_id == connection_id,
                    sa.tuple_(table.c.resource_type, table.c.remote_id).in_(keys),
                    table.c.flagged_invalid != value,
                )
                .values(flagged_invalid=value)
            )
