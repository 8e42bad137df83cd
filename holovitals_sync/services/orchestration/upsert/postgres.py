"""The PostgreSQL upsert: INSERT .. SELECT FROM the batch, counted by its RETURNING."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from ....models import SyncedRecord
from .. import runcache
from .rows import (
    BATCH_COLUMNS,
    FIELDS,
    Changed,
    Known,
    UpsertCounts,
    batch_values,
    counted_from,
    fields_of,
    keys_of,
    known_columns,
    on_conflict,
    stored,
)

# Looking a batch up first costs about as much per record as sending a record that turns
# out unchanged (measured here: ~5 and ~10 us a record on PostgreSQL), so it pays once
# about half the records are unchanged (a re-sync), and not in a first import.
LOOKUP_SHARE = 0.5


def upsert(session: Session, shared: dict[str, Any], rows: list[dict[str, Any]]) -> UpsertCounts:
    """PostgreSQL: the statement's RETURNING counts what it wrote, so the look-up of stored
    hashes is only a filter, used while the run's batches are mostly unchanged records
    (a first import writes every record: there it only cost a round trip per batch).
    """
    connection_id = shared["connection_id"]
    cache = runcache.current(connection_id)
    look_up = cache is None or cache.unchanged_share >= LOOKUP_SHARE
    changed, counts = counted_from(existing(session, connection_id, rows) if look_up else {}, rows)
    if changed:
        counts = _write_counted(session, shared, changed, len(rows), counts)
    if cache is not None:
        cache.unchanged_share = counts.unchanged / len(rows)
    return counts


@lru_cache(maxsize=1)
def _existing_query() -> Any:
    table = SyncedRecord.__table__
    return known_columns().where(
        table.c.resource_type == sa.any_(sa.bindparam("types", type_=postgresql.ARRAY(sa.Text))),
        table.c.remote_id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Text))),
    )


def _write_counted(
    session: Session,
    shared: dict[str, Any],
    changed: list[dict[str, Any]],
    seen: int,
    counts: UpsertCounts,
) -> UpsertCounts:
    """PostgreSQL: write and count from what the statement really did.

    The look-up above ran before another run of the same connection may have committed
    the same records; counting from it would count both runs' inserts as created. The
    statement's RETURNING says which rows it inserted (`xmax = 0`) or updated; rows it
    left alone (the same content, or older) are unchanged, and announce nothing.
    """
    params = {
        **shared,
        # orjson never writes a raw newline (one in a string is escaped): a line a body
        "bodies": b"\n".join(row["body_text"] for row in changed).decode(),
        "fields": orjson.dumps([fields_of(row) for row in changed]).decode(),
    }
    written: dict[tuple[str, str], bool] = {
        (rtype, rid): bool(inserted)
        for rtype, rid, inserted in session.execute(_statement(), params)
    }
    created = sum(written.values())
    result = UpsertCounts(
        created=created, updated=len(written) - created, unchanged=seen - len(written)
    )
    # Whether a record was created is what the statement did, not what the look-up saw.
    result.changed = [
        Changed(rtype, rid, version, written[(rtype, rid)], patient, body)
        for rtype, rid, version, _, patient, body in counts.changed
        if (rtype, rid) in written
    ]
    return result


@lru_cache(maxsize=1)
def _statement() -> Any:
    """INSERT .. SELECT FROM the batch, with the shared ON CONFLICT clause.

    The bodies come as NDJSON, split by `string_to_table` and each cast to the body
    column's type (`json`); the other fields as a small JSON array; ROWS FROM pairs them
    up in order. Parsing one
    JSON array holding the bodies (`jsonb_to_recordset`) took the server ~18 us a record
    and the whole statement ~31; this way ~8 and ~24 (measured here, 670-byte bodies;
    ~13 for the statement with bodies stored as `json` and no job foreign key).
    """
    names = ", ".join(column for column, _ in FIELDS)
    typed = ", ".join(f"{column} {kind}" for column, kind in FIELDS)
    source = (
        sa.text(
            "SELECT * FROM ROWS FROM (string_to_table(:bodies, E'\\n'), "
            f"jsonb_to_recordset(CAST(:fields AS jsonb)) AS ({typed})) AS r(b, {names})"
        )
        .bindparams(sa.bindparam("bodies", type_=sa.Text), sa.bindparam("fields", type_=sa.Text))
        .columns(sa.column("b", sa.Text), *(sa.column(column) for column, _ in FIELDS))
        .subquery("r")
    )
    r: dict[str, Any] = {column: source.c[column] for column, _ in FIELDS}
    table = SyncedRecord.__table__
    r["remote_body"] = sa.cast(source.c.b, table.c.remote_body.type)
    insert = postgresql.insert(table).from_select(list(BATCH_COLUMNS), sa.select(*batch_values(r)))
    return on_conflict(insert).returning(
        table.c.resource_type, table.c.remote_id, sa.literal_column("xmax = 0")
    )


def existing(
    session: Session, connection_id: int, rows: list[dict[str, Any]]
) -> dict[tuple[str, str], Known]:
    """Stored hash and lastUpdated of the batch's records: types and ids are two array
    parameters (a superset of the wanted keys, filtered by `stored`)."""
    wanted = keys_of(rows)
    params = {
        "connection_id": connection_id,
        "types": sorted({rtype for rtype, _ in wanted}),
        "ids": sorted({rid for _, rid in wanted}),
    }
    return stored(session, _existing_query(), params, wanted)
