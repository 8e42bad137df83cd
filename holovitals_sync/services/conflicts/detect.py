"""Conflict detection against the local copy: apply clean merges, record the rest.

A sync run calls `detect_stored` once it has stored everything (records with local changes
whose remote copy moved on), an outbound run `detect_record` for a write refused as stale;
`detect_batch` does the same for given pairs (tests, benchmarks/conflicts.py).

Each incoming remote body is merged three-way with the record's base and local bodies: a
clean merge is applied to the record; otherwise one `Conflict` row is written per record,
remote version and kind (a sync that finds it again changes nothing). A newer remote
version supersedes an older open conflict of the same record and kind.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ...adapters import content_hash
from ...models import Conflict, ConflictKind, ConflictStatus, Severity, SyncedRecord
from ...models.types import utcnow
from .diff import MISSING, FieldConflict, MergeResult, three_way
from .severity import severity_of

log = logging.getLogger(__name__)


class Action(enum.StrEnum):
    UNCHANGED = "unchanged"  # the remote brought nothing new
    MERGED = "merged"  # applied: remote-only changes, or both sides' without overlap
    CONFLICT = "conflict"  # a Conflict row is open for this record and remote version
    IGNORED = "ignored"  # this remote version was dismissed by an earlier `ignore`


@dataclass(frozen=True, slots=True)
class Incoming:
    """One remote body for a stored record."""

    record: SyncedRecord
    body: dict[str, Any]
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    record_id: int
    action: Action
    conflict_id: int | None = None
    severity: Severity | None = None


_Key = tuple[int, str | None, ConflictKind]


def detect_batch(
    session: Session, connection_id: int, job_id: int | None, pairs: Sequence[Incoming]
) -> list[Outcome]:
    """Detect (and apply or record) one batch of incoming remote bodies.

    Args:
        session: The batch's transaction; nothing is committed here.
        connection_id: The connection every record belongs to.
        job_id: The sync job, recorded on new conflicts.
        pairs: Stored records (already flushed, with ids) and their incoming bodies.

    Returns:
        One outcome per pair, in order.
    """
    foreign = [p.record.id for p in pairs if p.record.connection_id != connection_id]
    if foreign:
        raise ValueError(f"records {foreign[:5]} belong to another connection")
    known = _known_conflicts(session, [p.record.id for p in pairs if p.record.id])
    return [_detect(session, p, job_id, ConflictKind.FIELD, known) for p in pairs]


def detect_record(
    session: Session,
    *,
    record: SyncedRecord,
    remote_body: dict[str, Any],
    remote_version: str | None,
    job_id: int | None = None,
    kind: ConflictKind = ConflictKind.FIELD,
) -> Outcome:
    """Detect one record; `kind=STALE_WRITE` after an outbound write met 412/409.

    For a stale write, `remote_body` is the EHR's current copy read after the refusal.
    """
    known = _known_conflicts(session, [record.id] if record.id else [])
    return _detect(session, Incoming(record, remote_body, remote_version), job_id, kind, known)


def detect_stored(
    session: Session,
    *,
    connection_id: int,
    job_id: int | None = None,
    record_ids: Sequence[int] | None = None,
) -> list[Outcome]:
    """Detect on records whose stored remote copy moved on under local changes.

    The sync's upsert keeps the base and local bodies of a dirty record and stores the new
    remote body beside them; this runs the three-way comparison on each such record (a
    `stale_write` when an outbound write was refused for it). Call it after inbound
    batches (`record_ids`: the batch's records; only the dirty ones are read, so a batch
    without local changes costs one indexed query), or after a sync; records already
    decided for their remote version are skipped.
    """
    query = select(SyncedRecord).where(
        SyncedRecord.connection_id == connection_id,
        SyncedRecord.dirty == sa.true(),
        SyncedRecord.deleted == sa.false(),
    )
    if record_ids is not None:
        query = query.where(SyncedRecord.id.in_(list(record_ids)))
    rows = [
        r
        for r in session.exec(query.order_by(SyncedRecord.id))
        if r.remote_body is not None
        and _without_meta(r.remote_body) != _without_meta(r.base_copy or {})
    ]
    known = _known_conflicts(session, [r.id for r in rows])
    return [
        _detect(
            session,
            Incoming(r, r.remote_body, r.remote_version),
            job_id,
            ConflictKind.STALE_WRITE if r.conflict_pending else ConflictKind.FIELD,
            known,
        )
        for r in rows
    ]


def _known_conflicts(session: Session, record_ids: list[int]) -> dict[_Key, Conflict]:
    if not record_ids:
        return {}
    rows = session.exec(select(Conflict).where(Conflict.record_id.in_(record_ids)))
    return {(c.record_id, c.remote_version, c.kind): c for c in rows}


def _detect(
    session: Session,
    incoming: Incoming,
    job_id: int | None,
    kind: ConflictKind,
    known: dict[_Key, Conflict],
) -> Outcome:
    record, version = incoming.record, incoming.version
    existing = _existing(known, record.id, version, kind)
    if existing is not None and existing.status is ConflictStatus.IGNORED:
        return Outcome(record.id, Action.IGNORED, existing.id, existing.severity)
    if existing is not None and existing.status is ConflictStatus.OPEN:
        return Outcome(record.id, Action.CONFLICT, existing.id, existing.severity)
    local = record.local_copy
    if local is None or (not record.dirty and local == record.base_copy):
        # Nothing changed locally (the common case): the remote copy is taken as it is.
        return _apply(session, incoming, MergeResult(dict(incoming.body)))
    result = three_way(record.base_copy, local, incoming.body)
    if result.clean:
        return _apply(session, incoming, result)
    conflict = _open(session, incoming, job_id, kind, result.conflicts, known)
    return Outcome(record.id, Action.CONFLICT, conflict.id, conflict.severity)


_FIELD_KINDS = (ConflictKind.FIELD, ConflictKind.STALE_WRITE)


def _existing(
    known: dict[_Key, Conflict], record_id: int, version: str | None, kind: ConflictKind
) -> Conflict | None:
    """The decision already taken for this record and remote version.

    A field conflict and a stale write over the same remote version are one disagreement:
    found by the inbound sync or by a refused write, it is flagged (or ignored) once.
    """
    kinds = _FIELD_KINDS if kind in _FIELD_KINDS else (kind,)
    for candidate in kinds:
        row = known.get((record_id, version, candidate))
        if row is not None and row.resolved_by != SUPERSEDED:
            return row
    return None


def _apply(session: Session, incoming: Incoming, result: MergeResult) -> Outcome:
    """Store a clean merge: the remote version becomes the base the local copy builds on."""
    record, remote = incoming.record, incoming.body
    before = record.local_copy
    record.remote_body = record.base_body = remote
    record.local_body = result.merged
    record.remote_version = incoming.version or record.remote_version
    record.content_hash = content_hash(remote)
    # Local changes merged on top of the remote version must still go back to the EHR.
    record.dirty = _without_meta(result.merged) != _without_meta(remote)
    record.conflict_pending = False
    record.last_synced_at = utcnow()
    session.add(record)
    action = Action.UNCHANGED if before == result.merged else Action.MERGED
    return Outcome(record.id, action)


def _without_meta(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "meta"}


SUPERSEDED = "system:superseded"


def _open(
    session: Session,
    incoming: Incoming,
    job_id: int | None,
    kind: ConflictKind,
    conflicts: list[FieldConflict],
    known: dict[_Key, Conflict],
) -> Conflict:
    """Write the conflict row (replacing older open ones) and park the record."""
    record = incoming.record
    _supersede(session, record.id, kind, known)
    # A base kept implicitly (base_body None: the remote copy) must stay the old remote copy.
    record.base_body = record.base_copy
    record.remote_body = incoming.body
    record.remote_version = incoming.version or record.remote_version
    record.content_hash = content_hash(incoming.body)
    record.conflict_pending = True  # outbound writes wait until it is resolved
    session.add(record)
    paths = [c.path for c in conflicts]
    row = Conflict(
        record_id=record.id,
        connection_id=record.connection_id,
        job_id=job_id,
        resource_type=record.resource_type,
        kind=kind,
        remote_version=incoming.version,
        fields=paths,
        base_values=_side(conflicts, "base"),
        local_values=_side(conflicts, "local"),
        remote_values=_side(conflicts, "remote"),
        severity=severity_of(record.resource_type, paths, incoming.body),
    )
    row = _insert_once(session, row)
    known[(row.record_id, row.remote_version, row.kind)] = row
    log.info("conflict %s on record %s (%s, %d paths)", row.id, record.id, kind.value, len(paths))
    return row


def _side(conflicts: list[FieldConflict], side: str) -> dict[str, Any]:
    """path -> value on one side; an element absent on that side has no entry."""
    values = ((c.path, getattr(c, side)) for c in conflicts)
    return {path: value for path, value in values if value is not MISSING}


def _supersede(
    session: Session, record_id: int, kind: ConflictKind, known: dict[_Key, Conflict]
) -> None:
    for key, row in known.items():
        if key[0] == record_id and key[2] is kind and row.status is ConflictStatus.OPEN:
            row.status, row.resolved_by = ConflictStatus.IGNORED, SUPERSEDED
            row.reason, row.resolved_at = "superseded by a newer remote version", utcnow()
            session.add(row)


def _insert_once(session: Session, row: Conflict) -> Conflict:
    """Insert, or return the row a concurrent detector inserted first."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
        return row
    except sa.exc.IntegrityError:
        query = select(Conflict).where(
            Conflict.record_id == row.record_id,
            Conflict.remote_version == row.remote_version,
            Conflict.kind == row.kind,
        )
        return session.exec(query).one()
