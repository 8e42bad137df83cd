"""Records the EHR deleted: found, tombstoned (never removed), announced.

Three ways a delete is found:

- A complete full sync or id sweep did not see a record it would have returned: every
  record such a run sees gets `seen_job_id` (the batch's upsert for changed ones, `mark_seen`
  for the rest), and when the run completes the records of its types that it did not see
  are tombstoned (`tombstone_unseen`).
- The EHR says so: a `_history` DELETE entry, a Bulk `_since` manifest's `deleted` output,
  or a read answering 404/410 (`tombstone`).

A record with local changes still to write back is not tombstoned silently: the EHR's
delete and our change are a conflict (remote deleted vs local changed). A record HoloVitals
itself deleted (`local_deleted`) agrees with the EHR: it is tombstoned like the rest.

A run that saw nothing of a type it holds records of, or far fewer than it holds, looks like
a broken answer rather than deletes (servers silently match nothing on an unknown search
parameter): that type is left alone and the job records a warning instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, select

from ...models import (
    Conflict,
    ConflictKind,
    ErrorSeverity,
    RecordError,
    Severity,
    SyncedRecord,
    SyncJob,
)
from ...models.types import utcnow

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (resource type, id)
# A type whose unseen records exceed this share of what is stored (and MASS_FLOOR records)
# is not swept: more likely an incomplete answer than a purge.
MASS_SHARE = 0.5
MASS_FLOOR = 20
CHUNK = 20_000


@dataclass(slots=True)
class Tombstoned:
    """What one pass changed."""

    deleted: list[tuple[str, str, str | None]] = field(default_factory=list)  # type, id, patient
    conflicts: list[int] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)  # types not swept, with a warning


def _keys_table(session: Session, keys: Sequence[Key]) -> Any:
    """The keys as a two-column table the database reads from one JSON parameter."""
    text = orjson.dumps([list(k) for k in keys]).decode()
    if session.get_bind().dialect.name == "postgresql":
        rows = sa.func.jsonb_array_elements(sa.cast(sa.literal(text), JSONB)).table_valued("value")
    else:
        rows = sa.func.json_each(sa.literal(text)).table_valued("value")
    return sa.select(rows.c.value.op("->>")(0), rows.c.value.op("->>")(1))


def mark_seen(session: Session, connection_id: int, job_id: int, keys: Sequence[Key]) -> None:
    """Note that the run saw these records at the EHR (those it wrote are noted already)."""
    if not keys:
        return
    table = SyncedRecord.__table__
    session.execute(
        sa.update(table)
        .where(
            table.c.connection_id == connection_id,
            sa.tuple_(table.c.resource_type, table.c.remote_id).in_(_keys_table(session, keys)),
            table.c.seen_job_id.is_distinct_from(job_id),
        )
        .values(seen_job_id=job_id)
    )


def _alive(table: sa.Table, connection_id: int, rtype: str) -> list[sa.ColumnElement[bool]]:
    return [
        table.c.connection_id == connection_id,
        table.c.resource_type == rtype,
        table.c.deleted == sa.false(),
    ]


def _unseen(table: sa.Table, job_id: int) -> sa.ColumnElement[bool]:
    return sa.or_(table.c.seen_job_id.is_(None), table.c.seen_job_id != job_id)


def _tallies(session: Session, job: SyncJob, types: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Per type: records stored (not tombstoned) and how many of them the run did not see.

    One grouped query for every type (a generic server names some fifty types: two counts
    each were a hundred round trips at the end of every full sync).
    """
    table = SyncedRecord.__table__
    unseen = sa.case((_unseen(table, int(job.id)), 1), else_=0)
    rows = session.execute(
        sa.select(table.c.resource_type, sa.func.count(), sa.func.sum(unseen))
        .where(
            table.c.connection_id == job.connection_id,
            table.c.deleted == sa.false(),
            table.c.resource_type.in_(sorted(set(types))),
        )
        .group_by(table.c.resource_type)
    )
    return {str(rtype): (int(stored), int(missing or 0)) for rtype, stored, missing in rows}


def _doubt(rtype: str, stored: int, missing: int) -> str | None:
    """None when the run's answer for this type may be trusted, else why not."""
    if missing == stored:
        return (
            f"the EHR returned no {rtype} at all; the {stored} stored are kept "
            "(check the connection's access and search parameters)"
        )
    if missing > MASS_FLOOR and missing > MASS_SHARE * stored:
        return (
            f"the EHR no longer returned {missing} of {stored} {rtype} records; "
            "kept, as this looks like an incomplete answer (run an id sweep to check)"
        )
    return None


def tombstone_unseen(
    session: Session, job: SyncJob, types: Iterable[str], reason: str
) -> Tombstoned:
    """After a complete full sync or sweep: tombstone what it did not see, type by type."""
    result = Tombstoned()
    table = SyncedRecord.__table__
    for rtype, (stored, missing) in sorted(_tallies(session, job, types).items()):
        if not missing:
            continue
        doubt = _doubt(rtype, stored, missing)
        if doubt is not None:
            result.held_back.append(rtype)
            _warn(session, job, rtype, doubt)
            continue
        keys = [
            tuple(k)
            for k in session.execute(
                sa.select(table.c.resource_type, table.c.remote_id).where(
                    *_alive(table, job.connection_id, rtype), _unseen(table, int(job.id))
                )
            )
        ]
        for start in range(0, len(keys), CHUNK):
            part = tombstone(
                session, job.connection_id, job.id, keys[start : start + CHUNK], reason
            )
            result.deleted += part.deleted
            result.conflicts += part.conflicts
    return result


def tombstone(
    session: Session, connection_id: int, job_id: int | None, keys: Sequence[Key], reason: str
) -> Tombstoned:
    """Mark these records deleted at the EHR; one with local changes becomes a conflict."""
    result = Tombstoned()
    if not keys:
        return result
    table = SyncedRecord.__table__
    now = utcnow()
    wanted = [
        table.c.connection_id == connection_id,
        table.c.deleted == sa.false(),
        sa.tuple_(table.c.resource_type, table.c.remote_id).in_(_keys_table(session, keys)),
    ]
    agreed = sa.or_(table.c.dirty == sa.false(), table.c.local_deleted == sa.true())
    rows = session.execute(
        sa.update(table)
        .where(*wanted, agreed)
        .values(
            deleted=True,
            deleted_at=now,
            delete_reason=reason[:200],
            updated_at=now,
            last_job_id=job_id,
            dirty=False,
            local_deleted=False,
            local_deleted_at=None,
            local_deleted_by=None,
        )
        .returning(table.c.resource_type, table.c.remote_id, table.c.patient_ref)
    ).all()
    result.deleted = [(r[0], r[1], r[2]) for r in rows]
    changed_here = session.exec(
        select(SyncedRecord).where(
            *wanted, table.c.dirty == sa.true(), table.c.conflict_pending == sa.false()
        )
    )
    result.conflicts = [_deleted_conflict(session, record, job_id) for record in changed_here]
    return result


def _deleted_conflict(session: Session, record: SyncedRecord, job_id: int | None) -> int:
    """The EHR deleted what HoloVitals changed: an administrator decides (high severity)."""
    record.conflict_pending = True  # outbound writes wait for the decision
    session.add(record)
    conflict = Conflict(
        record_id=record.id,
        connection_id=record.connection_id,
        job_id=job_id,
        resource_type=record.resource_type,
        kind=ConflictKind.REMOTE_DELETED,
        remote_version="deleted",
        fields=["(the whole record)"],
        base_values={"(the whole record)": "present"},
        local_values={"(the whole record)": "changed in HoloVitals"},
        remote_values={"(the whole record)": "deleted at the EHR"},
        severity=Severity.HIGH,
    )
    session.add(conflict)
    session.flush()
    return int(conflict.id)


def _warn(session: Session, job: SyncJob, rtype: str, message: str) -> None:
    log.warning("sync job %s: %s", job.id, message)
    session.add(
        RecordError(
            job_id=job.id,
            connection_id=job.connection_id,
            resource_type=rtype,
            message=f"[delete] {message}"[:1000],
            severity=ErrorSeverity.WARNING,
        )
    )
