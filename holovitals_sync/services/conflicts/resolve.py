"""Resolving a conflict: the five strategies, the record kept, the audit entry.

`resolved_body` is the pure part (what the record becomes); `resolve` loads the conflict,
applies the result to the local record, owes the EHR a write-back when the sync that found
it writes to the EHR (queued on the conflicts queue once the caller commits, see
`writeback`), records who/when/strategy/before/after and appends an audit entry, all in
the caller's transaction. Nothing here talks to the EHR.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, select

from ...models import (
    Conflict,
    ConflictKind,
    ConflictStatus,
    Direction,
    ResolutionStrategy,
    SyncedRecord,
    SyncJob,
)
from ...models.types import utcnow
from .. import audit
from ..webhooks.emit import emit
from .diff import MISSING, Side, three_way
from .writeback import WriteBack, owe

log = logging.getLogger(__name__)
S = ResolutionStrategy


class ResolutionError(ValueError):
    """The resolution request cannot be applied; the message names paths, never values."""


class ConflictNotFound(LookupError):
    """No conflict with that id."""


class NotOpen(ResolutionError):
    """The conflict was already resolved or ignored."""


def resolved_body(
    strategy: ResolutionStrategy,
    base: dict[str, Any] | None,
    local: dict[str, Any],
    remote: dict[str, Any],
    *,
    choices: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict]:
    """What the record becomes under `strategy` (pure).

    Args:
        strategy: One of the five strategies.
        base, local, remote: The record's three bodies.
        choices: MERGE: conflicting path -> "local" or "remote", for every such path.
        values: MANUAL: conflicting path -> the value to keep (None removes it).

    Returns:
        (body, path -> value chosen for each conflicting element).

    Raises:
        ResolutionError: A choice or value is missing, unknown or of the wrong shape.
    """
    if strategy in (S.USE_LOCAL, S.IGNORE):
        return local, {}
    if strategy is S.USE_REMOTE:
        return remote, {}
    conflicts = {c.path: c for c in three_way(base, local, remote).conflicts}
    if strategy is S.MERGE:
        picks = _picks(conflicts, choices or {})
    else:
        picks = _manual(conflicts, values or {})
    result = three_way(base, local, remote, choices=picks)
    if result.conflicts:  # a choice changed the shape of an array: settle it whole
        raise ResolutionError("unsettled paths: " + ", ".join(result.paths))
    return result.merged, {p: (None if v is MISSING else v) for p, v in result.chosen.items()}


def _check_paths(conflicts: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    unknown = sorted(set(given) - set(conflicts))
    missing = sorted(set(conflicts) - set(given))
    if unknown:
        raise ResolutionError("not conflicting paths: " + ", ".join(unknown))
    if missing:
        raise ResolutionError("no value given for: " + ", ".join(missing))


def _picks(conflicts: Mapping[str, Any], choices: Mapping[str, str]) -> dict[str, Side]:
    _check_paths(conflicts, choices)
    try:
        return {path: Side(choice) for path, choice in choices.items()}
    except ValueError:
        raise ResolutionError("a merge choice is 'local' or 'remote'") from None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", dict: "object", list: "array"}.get(type(value), "other")


def _manual(conflicts: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Manual values must have the JSON shape one of the sides has at that path."""
    _check_paths(conflicts, values)
    picks: dict[str, Any] = {}
    for path, value in values.items():
        sides = [getattr(conflicts[path], s) for s in ("local", "remote")]
        if value is None:
            picks[path] = MISSING
            continue
        allowed = {_kind(v) for v in sides if v is not MISSING}
        if _kind(value) not in allowed:
            raise ResolutionError(f"{path}: expected {' or '.join(sorted(allowed))}")
        picks[path] = value
    return picks


def load_open(session: Session, conflict_id: int) -> Conflict:
    """The conflict, locked for update, if it is still open."""
    query = select(Conflict).where(Conflict.id == conflict_id).with_for_update()
    conflict = session.exec(query).first()
    if conflict is None:
        raise ConflictNotFound(f"no conflict {conflict_id}")
    if conflict.status is not ConflictStatus.OPEN:
        raise NotOpen(f"conflict {conflict_id} is already {conflict.status.value}")
    return conflict


def resolve(
    session: Session,
    *,
    conflict_id: int,
    strategy: ResolutionStrategy,
    reason: str,
    actor: audit.Actor,
    choices: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
    write_back: bool | None = None,
) -> Conflict:
    """Resolve one open conflict.

    Args:
        session: The caller's transaction (committed by the caller).
        conflict_id: The conflict.
        strategy: use_local, use_remote, merge (with `choices`), manual (with `values`),
            ignore (keep local, stop flagging this remote version).
        reason: Why; required.
        actor: Who (recorded on the conflict and in the audit log).
        choices: For merge, see `resolved_body`.
        values: For manual, see `resolved_body`.
        write_back: Send the result to the EHR (queued: `resolution["write_back"]` says
            "queued" until the conflicts queue has done it); None: when the job that found
            the conflict was outbound or bidirectional.

    Raises:
        ConflictNotFound, NotOpen, ResolutionError.
    """
    if not reason or not reason.strip():
        raise ResolutionError("a reason is required")
    conflict = load_open(session, conflict_id)
    record = session.get(SyncedRecord, conflict.record_id)
    if conflict.kind is ConflictKind.DUPLICATE and strategy is not S.IGNORE:
        raise ResolutionError("a duplicate is resolved in the EHR; here it can only be ignored")
    local, remote = record.local_copy or {}, record.remote_body or {}
    outcome: WriteBack | None = None
    if conflict.kind is ConflictKind.REMOTE_DELETED:
        _settle(
            conflict,
            strategy=strategy,
            reason=reason.strip(),
            actor=actor,
            resolution={
                "before": local,
                "after": _after_delete(strategy, local),
                "values": dict(_after_values(conflict, strategy, {})),
            },
        )
        _apply_delete(record, strategy, actor)
    else:
        body, chosen = resolved_body(
            strategy, record.base_copy, local, remote, choices=choices, values=values
        )
        after = _after_values(conflict, strategy, chosen)
        _settle(
            conflict,
            strategy=strategy,
            reason=reason.strip(),
            actor=actor,
            resolution={"before": local, "after": body, "values": after},
        )
        outcome = _apply(
            session,
            conflict=conflict,
            record=record,
            strategy=strategy,
            body=body,
            write_back=write_back,
        )
    if outcome is not None:
        conflict.resolution = {**conflict.resolution, "write_back": outcome.as_dict()}
    session.add(conflict)
    audit.record(
        session,
        actor=actor,
        action="conflict.resolve",
        target_type="conflict",
        target_id=conflict.id,
        details={
            "strategy": strategy.value,
            "record_id": record.id,
            "paths": conflict.fields,
            "severity": conflict.severity.value,
            "write_back": outcome.status if outcome else None,
            "new_conflict_id": outcome.conflict_id if outcome else None,
        },
    )
    session.flush()
    _announce_resolved(session, conflict, record)
    log.info("conflict %s resolved with %s", conflict.id, strategy.value)
    return conflict


def _announce_resolved(session: Session, conflict: Conflict, record: SyncedRecord) -> None:
    """`conflict.resolved` for webhook subscribers, with the caller's transaction."""
    emit(
        session,
        "conflict.resolved",
        {
            "connection_id": conflict.connection_id,
            "conflict_id": conflict.id,
            "record_id": record.id,
            "resource_type": record.resource_type,
            "resource_id": record.remote_id,
        },
    )


def _after_delete(strategy: ResolutionStrategy, local: dict[str, Any]) -> dict | None:
    """What a record deleted at the EHR becomes: gone (remote), or kept as ours."""
    if strategy in (S.MERGE, S.MANUAL):
        raise ResolutionError(
            "a record deleted at the EHR is let go (use remote) or kept "
            "(use local); merge and manual do not apply"
        )
    return None if strategy is S.USE_REMOTE else local


def _apply_delete(record: SyncedRecord, strategy: ResolutionStrategy, actor: audit.Actor) -> None:
    """Use remote: tombstone it here too. Use local: keep ours, and let the next outbound
    run write it to the EHR as new (no version to match any more). Ignore: leave it held."""
    if strategy is S.IGNORE:
        return
    record.conflict_pending = False
    if strategy is S.USE_REMOTE:
        record.deleted, record.dirty = True, False
        record.deleted_at = utcnow()
        record.delete_reason = f"deleted at the EHR; confirmed by {actor.name}"[:200]
    else:
        record.remote_version = None


def _after_values(conflict: Conflict, strategy: ResolutionStrategy, chosen: dict) -> dict:
    if strategy is S.USE_REMOTE:
        return dict(conflict.remote_values)
    if strategy in (S.MERGE, S.MANUAL):
        return chosen
    return dict(conflict.local_values)


def _settle(
    conflict: Conflict,
    *,
    strategy: ResolutionStrategy,
    reason: str,
    actor: audit.Actor,
    resolution: dict[str, Any],
) -> None:
    conflict.status = ConflictStatus.IGNORED if strategy is S.IGNORE else ConflictStatus.RESOLVED
    conflict.strategy = strategy
    conflict.reason = reason[:2000]
    conflict.resolved_by = actor.name
    conflict.resolved_at = utcnow()
    conflict.resolution = resolution


def _apply(
    session: Session,
    *,
    conflict: Conflict,
    record: SyncedRecord,
    strategy: ResolutionStrategy,
    body: dict[str, Any],
    write_back: bool | None,
) -> WriteBack | None:
    """Make `body` the local copy; the EHR's current version becomes the agreed base.

    Ignore changes nothing: the local copy stays, and so does the hold on outbound writes
    (writing it would overwrite the EHR's change unasked, which is what use_local is for);
    detection skips this remote version and flags the next one.
    """
    if strategy is S.IGNORE or conflict.kind is ConflictKind.DUPLICATE:
        return None
    record.conflict_pending = False
    session.add(record)
    remote = record.remote_body or {}
    record.base_body, record.local_body = remote, body
    record.dirty = _content(body) != _content(remote)
    if not record.dirty or not _writes_back(session, conflict, write_back):
        return None
    return owe(session, conflict)


def _content(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "meta"}


def _writes_back(session: Session, conflict: Conflict, write_back: bool | None) -> bool:
    if write_back is not None:
        return write_back
    job = session.get(SyncJob, conflict.job_id) if conflict.job_id else None
    return job is not None and job.direction in (Direction.OUTBOUND, Direction.BIDIRECTIONAL)
