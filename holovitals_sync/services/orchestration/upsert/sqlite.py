"""The SQLite upsert: look the batch up, then one INSERT .. SELECT FROM json_each."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlmodel import Session

from ....models import SyncedRecord
from .rows import (
    BATCH_COLUMNS,
    FIELDS,
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


def upsert(session: Session, shared: dict[str, Any], rows: list[dict[str, Any]]) -> UpsertCounts:
    """SQLite: count from a look-up of the stored hashes, then write what changed (one
    writer at a time: nothing can commit the same records between the two)."""
    changed, counts = counted_from(existing(session, shared["connection_id"], rows), rows)
    if changed:
        _write(session, shared, changed)
    return counts


def existing(
    session: Session, connection_id: int, rows: list[dict[str, Any]]
) -> dict[tuple[str, str], Known]:
    """Stored hash and lastUpdated of the batch's records: the keys travel as one JSON
    parameter read by `json_each`."""
    wanted = keys_of(rows)
    params = {"connection_id": connection_id, "keys": orjson.dumps(list(wanted)).decode()}
    return stored(session, _existing_query(), params, wanted)


def _write(session: Session, shared: dict[str, Any], changed: list[dict[str, Any]]) -> None:
    """SQLite: one statement reading the batch from two parameters, as `_statement`.

    Per-row binding in `executemany` held the GIL for ~6 us a row (tuples, per-value
    conversion); here SQLite unpacks the rows while the GIL is released, so the prefetch
    thread's parsing runs alongside.
    """
    stamp = _stamp(session.get_bind().dialect)
    fields, start = [], 1
    for row in changed:
        size = len(row["body_text"])
        fields.append({**fields_of(row, stamp), "body_offset": start, "body_length": size})
        start += size
    session.execute(
        _statement(),
        {
            **shared,
            "bodies": b"".join(row["body_text"] for row in changed),
            "fields": orjson.dumps(fields).decode(),
        },
    )


@lru_cache(maxsize=1)
def _statement() -> Any:
    """INSERT .. SELECT FROM json_each(:fields) with the shared ON CONFLICT clause.

    The bodies arrive as one BLOB of serialised bodies back to back, each row cut out by
    byte offset and length (`substr` on a BLOB counts bytes, and seeks without scanning)
    and stored as the text it is: SQLite neither parses nor re-renders a body (read from
    one JSON array, each was parsed twice and rendered twice on the way in).
    """
    rows = sa.func.json_each(sa.bindparam("fields", type_=sa.Text)).table_valued("value")
    r = {column: rows.c.value.op("->>")(f"$.{column}") for column, _ in FIELDS}
    piece = sa.func.substr(
        sa.bindparam("bodies", type_=sa.LargeBinary),
        rows.c.value.op("->>")("$.body_offset"),
        rows.c.value.op("->>")("$.body_length"),
    )
    r["remote_body"] = sa.cast(piece, sa.Text)
    # `WHERE true`: without a WHERE, SQLite reads the ON of ON CONFLICT as a join's ON.
    return on_conflict(
        sqlite.insert(SyncedRecord.__table__).from_select(
            list(BATCH_COLUMNS), sa.select(*batch_values(r)).where(sa.true())
        )
    )


@lru_cache(maxsize=1)
def _existing_query() -> Any:
    # (type, id) IN (SELECT .. FROM json_each(:keys)): a lookup on the unique index per key.
    table = SyncedRecord.__table__
    keys = sa.func.json_each(sa.bindparam("keys", type_=sa.Text)).table_valued("value")
    pairs = sa.select(keys.c.value.op("->>")(0), keys.c.value.op("->>")(1))
    return known_columns().where(sa.tuple_(table.c.resource_type, table.c.remote_id).in_(pairs))


@lru_cache(maxsize=2)
def _stamp(dialect: sa.Dialect) -> Any:
    """The bind processing of a `UTCDateTime` column on this dialect (None stays None)."""
    column_type = SyncedRecord.__table__.c.last_synced_at.type
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    return process or (lambda value: value)
