"""What both dialects' upserts share: the rows a batch writes, its counts, and the SQL
pieces both statements are built from (the ON CONFLICT clause, the batch's columns).

A batch travels to the database in two parameters (see the package docstring); `FIELDS`
lists the per-record fields of the small JSON array beside the bodies, keyed by the column
each fills.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlmodel import Session

from ....adapters import content_hash
from ....models import SyncedRecord

_PATIENT_FIELDS = ("subject", "patient", "beneficiary")


class Changed(NamedTuple):
    """A record a batch created or updated (ids and body, for the events it announces)."""

    resource_type: str
    remote_id: str
    version: str | None
    created: bool
    patient: str | None  # "Patient/<id>" the record belongs to
    body: dict[str, Any]


@dataclass(slots=True)
class UpsertCounts:
    """What one batch did to the local copy."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # Each created or updated record, for the data events (webhooks) the batch announces.
    changed: list[Changed] = field(default_factory=list)


def patient_ref(resource: dict[str, Any]) -> str | None:
    """ "Patient/<id>" this resource belongs to, if it says."""
    if resource.get("resourceType") == "Patient" and resource.get("id"):
        return f"Patient/{resource['id']}"
    for name in _PATIENT_FIELDS:
        ref = resource.get(name)
        if isinstance(ref, dict) and str(ref.get("reference", "")).startswith("Patient/"):
            return str(ref["reference"])[:200]
    return None


def _last_updated(resource: dict[str, Any]) -> datetime | None:
    value = (resource.get("meta") or {}).get("lastUpdated")
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


# The per-record values of a write (the rest is the same for the whole batch).
Prepared = dict[str, Any]


def prepare(resource: dict[str, Any]) -> Prepared:
    """A resource's row: content hash, serialised body, patient, version, lastUpdated.

    Pure CPU (~6 us a resource), done ahead where it overlaps database calls (the sync's
    prefetch thread), so the writing thread only looks the row up.
    """
    meta = resource.get("meta") or {}
    version = meta.get("versionId")
    return {
        "resource_type": str(resource["resourceType"]),
        "remote_id": str(resource["id"]),
        "patient_ref": patient_ref(resource),
        "remote_body": resource,
        "body_text": orjson.dumps(resource),
        "remote_version": str(version) if version is not None else None,
        "remote_last_updated": _last_updated(resource),
        "content_hash": content_hash(resource),
        "flagged_invalid": False,
    }


def row_of(resource: dict[str, Any], flagged: bool, prepared: Prepared | None) -> Prepared:
    row = prepared if prepared is not None else prepare(resource)
    return {**row, "flagged_invalid": True} if flagged else row


def dedupe(resources: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One resource per (type, id), the last one seen winning (vendors repeat ids)."""
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for res in resources:
        if res.get("resourceType") and res.get("id"):
            unique[(str(res["resourceType"]), str(res["id"]))] = res
    return list(unique.values())


# Stored content hash, remote lastUpdated, and whether it is a tombstone.
Known = tuple[str | None, datetime | None, bool]


def aware(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their zone; they were stored as UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def older(incoming: datetime | None, stored: datetime | None) -> bool:
    """Whether the fetched copy is older than the stored one (unknown: not older)."""
    return incoming is not None and stored is not None and incoming < stored


def counted_from(
    known: dict[tuple[str, str], Known], rows: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], UpsertCounts]:
    """The rows to write (new, or changed and not older than the stored copy) and counts."""
    counts = UpsertCounts()
    changed = []
    for row in rows:
        key = (row["resource_type"], row["remote_id"])
        if key not in known:
            counts.created += 1
        elif (known[key][0] != row["content_hash"] or known[key][2]) and not older(
            row["remote_last_updated"], known[key][1]
        ):
            counts.updated += 1  # changed, or a tombstone the EHR serves again
        else:
            counts.unchanged += 1  # the same, or older than what another run stored
            continue
        changed.append(row)
        counts.changed.append(
            Changed(
                *key,
                row["remote_version"],
                key not in known,
                row["patient_ref"],
                row["remote_body"],
            )
        )
    return changed, counts


def known_columns() -> Any:
    table = SyncedRecord.__table__
    return sa.select(
        table.c.resource_type,
        table.c.remote_id,
        table.c.content_hash,
        table.c.remote_last_updated,
        table.c.deleted,
    ).where(table.c.connection_id == sa.bindparam("connection_id"))


def on_conflict(stmt: Any) -> Any:
    table = SyncedRecord.__table__
    new = stmt.excluded
    # A record changed locally and not yet written keeps its local and base bodies: the
    # three-way comparison needs them; only the remote side moves on. A NULL one meant
    # "the same as the remote body", so it is written out from the remote body it is
    # about to lose (SET reads the row as it was before the update).
    keep_local = table.c.dirty
    updates = {
        "remote_body": new.remote_body,
        "local_body": sa.case(
            (keep_local, sa.func.coalesce(table.c.local_body, table.c.remote_body)),
            else_=new.local_body,
        ),
        "base_body": sa.case(
            (keep_local, sa.func.coalesce(table.c.base_body, table.c.remote_body)),
            else_=new.base_body,
        ),
        "remote_version": new.remote_version,
        "remote_last_updated": new.remote_last_updated,
        "content_hash": new.content_hash,
        "patient_ref": new.patient_ref,
        "flagged_invalid": new.flagged_invalid,
        # A tombstone the EHR serves again comes back to life.
        "deleted": new.deleted,
        "deleted_at": sa.null(),
        "delete_reason": sa.null(),
        "last_job_id": new.last_job_id,
        "seen_job_id": new.seen_job_id,
        "last_synced_at": new.last_synced_at,
        "updated_at": new.updated_at,
    }
    stored_at, fetched_at = table.c.remote_last_updated, new.remote_last_updated
    return stmt.on_conflict_do_update(
        index_elements=["connection_id", "resource_type", "remote_id"],
        set_=updates,
        where=sa.and_(
            sa.or_(
                table.c.content_hash.is_distinct_from(new.content_hash),
                table.c.deleted == sa.true(),
            ),
            sa.or_(stored_at.is_(None), fetched_at.is_(None), fetched_at >= stored_at),
        ),
    )


def fields_of(row: dict[str, Any], stamp: Any = None) -> dict[str, Any]:
    """A row's fields other than the body, keyed by their columns (`FIELDS`).

    `stamp` turns `remote_last_updated` into the text a dialect stores (SQLite compares
    those texts); PostgreSQL reads orjson's ISO form itself.
    """
    at = row["remote_last_updated"]
    fields = {column: row[column] for column, _ in FIELDS}
    fields["remote_last_updated"] = stamp(at) if stamp else at
    return fields


# The per-record fields besides the body, as (column, SQL type); the batch's JSON array
# holds one object per record keyed by these columns.
FIELDS = (
    ("resource_type", "text"),
    ("remote_id", "text"),
    ("patient_ref", "text"),
    ("remote_version", "text"),
    ("remote_last_updated", "timestamptz"),
    ("content_hash", "text"),
    ("flagged_invalid", "boolean"),
)


BATCH_COLUMNS = (
    "connection_id",
    "resource_type",
    "remote_id",
    "patient_ref",
    "base_body",
    "local_body",
    "remote_body",
    "remote_version",
    "remote_last_updated",
    "content_hash",
    "dirty",
    "conflict_pending",
    "flagged_invalid",
    "deleted",
    "last_job_id",
    "seen_job_id",
    "last_synced_at",
    "created_at",
    "updated_at",
)


def batch_values(r: dict[str, Any]) -> list[Any]:
    """The SELECT list of a batch insert: `r` maps the per-record columns to where the
    statement reads them; the rest is the same for the whole batch. Base and local bodies
    stay NULL ("the same as the remote body"), so each body is parsed and stored once."""
    table = SyncedRecord.__table__
    now = sa.bindparam("now", type_=table.c.last_synced_at.type)
    values = {
        "connection_id": sa.bindparam("connection_id", type_=sa.Integer),
        "base_body": sa.null(),
        "local_body": sa.null(),
        "dirty": sa.false(),
        "conflict_pending": sa.false(),
        "deleted": sa.false(),
        "last_job_id": sa.bindparam("job_id", type_=sa.Integer),
        "seen_job_id": sa.bindparam("job_id", type_=sa.Integer),
        "last_synced_at": now,
        "created_at": now,
        "updated_at": now,
        **r,
    }
    return [values[column] for column in BATCH_COLUMNS]


def keys_of(rows: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(row["resource_type"], row["remote_id"]) for row in rows}


def stored(
    session: Session, query: Any, params: dict[str, Any], wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], Known]:
    """Run a dialect's look-up of stored hashes and lastUpdated (one SELECT per batch, its
    text the same for every batch: no expanding IN list), keeping the wanted keys."""
    found: dict[tuple[str, str], Known] = {}
    for rtype, rid, stored_hash, at, deleted in session.execute(query, params):
        if (rtype, rid) in wanted:
            found[(rtype, rid)] = (stored_hash, aware(at), bool(deleted))
    return found
