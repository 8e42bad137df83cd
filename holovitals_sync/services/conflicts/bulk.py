"""Resolving many conflicts in one call (low severity only unless stated otherwise)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from sqlmodel import Session

from ...models import Conflict, ResolutionStrategy, Severity
from .. import audit
from .resolve import ConflictNotFound, ResolutionError, resolve

# Merge and manual need per-element input, so they are decided one conflict at a time.
BULK_STRATEGIES = frozenset(
    {ResolutionStrategy.USE_LOCAL, ResolutionStrategy.USE_REMOTE, ResolutionStrategy.IGNORE}
)


@dataclass(slots=True)
class BulkResult:
    resolved: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # id -> why (no values)


def resolve_bulk(
    session: Session,
    *,
    conflict_ids: Sequence[int],
    strategy: ResolutionStrategy,
    reason: str,
    actor: audit.Actor,
    severities: Collection[Severity] = (Severity.LOW,),
    write_back: bool | None = None,
) -> BulkResult:
    """Resolve each conflict with one strategy; one that cannot be is skipped, not fatal.

    Each resolution runs in a savepoint and writes its own audit entry; write-backs are
    queued when the caller commits, one job each.

    Raises:
        ResolutionError: The strategy needs per-conflict input, or no reason was given.
    """
    if strategy not in BULK_STRATEGIES:
        raise ResolutionError("bulk resolution takes use_local, use_remote or ignore")
    if not reason or not reason.strip():
        raise ResolutionError("a reason is required")
    result = BulkResult()
    for conflict_id in dict.fromkeys(conflict_ids):
        why = _skip_reason(session, conflict_id, severities)
        if why:
            result.skipped[conflict_id] = why
            continue
        try:
            with session.begin_nested():
                resolve(
                    session,
                    conflict_id=conflict_id,
                    strategy=strategy,
                    reason=reason,
                    actor=actor,
                    write_back=write_back,
                )
            result.resolved.append(conflict_id)
        except (ResolutionError, ConflictNotFound) as exc:
            result.skipped[conflict_id] = type(exc).__name__
    return result


def _skip_reason(
    session: Session, conflict_id: int, severities: Collection[Severity]
) -> str | None:
    conflict = session.get(Conflict, conflict_id)
    if conflict is None:
        return "not found"
    if conflict.severity not in severities:
        return f"severity {conflict.severity.value} not included"
    return None
