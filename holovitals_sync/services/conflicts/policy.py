"""Default strategies per connection and resource type, and automatic resolution.

Lookup order: the connection's own policy for the type, the global policy for the type
(`connection_id` None), the built-in default, then manual. Automatic strategies (no
per-element input needed) are resolved by an RQ job on `conflicts.default`; manual and
merge wait for a person.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from rq import Queue
from sqlmodel import Session, select

from ...db import session_scope
from ...models import Conflict, ConflictKind, ConflictPolicy, ConflictStatus, ResolutionStrategy
from ...models.types import utcnow
from .. import audit
from ..platform import job_functions
from .queueing import conflict_queue, pending
from .resolve import resolve

log = logging.getLogger(__name__)
S = ResolutionStrategy

BUILT_IN: dict[str, ResolutionStrategy] = {
    "Observation": S.USE_REMOTE,  # the EHR (the lab) is the source of truth for results
    "MedicationRequest": S.MANUAL,
    "AllergyIntolerance": S.MANUAL,
}
FALLBACK = S.MANUAL
AUTOMATIC = frozenset({S.USE_LOCAL, S.USE_REMOTE, S.IGNORE})
JOB_FUNCTION = job_functions.AUTO_RESOLVE
POLICY_ACTOR = audit.Actor.system("conflict-policy")


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    resource_type: str
    strategy: ResolutionStrategy
    source: str  # "connection", "global" or "built-in"
    automatic: bool


def strategy_for(
    session: Session, *, connection_id: int | None, resource_type: str
) -> EffectivePolicy:
    """The strategy a conflict of this connection and type gets by default."""
    rows = session.exec(
        select(ConflictPolicy).where(
            ConflictPolicy.resource_type == resource_type,
            (ConflictPolicy.connection_id == connection_id)
            | (ConflictPolicy.connection_id.is_(None)),
        )
    ).all()
    own = [r for r in rows if connection_id is not None and r.connection_id == connection_id]
    glob = [r for r in rows if r.connection_id is None]
    if own:
        strategy, source = own[0].strategy, "connection"
    elif glob:
        strategy, source = glob[0].strategy, "global"
    else:
        strategy, source = BUILT_IN.get(resource_type, FALLBACK), "built-in"
    return EffectivePolicy(resource_type, strategy, source, strategy in AUTOMATIC)


def list_policies(session: Session, *, connection_id: int | None = None) -> list[EffectivePolicy]:
    """The effective policy of every type that has a built-in or stored one."""
    stored = session.exec(select(ConflictPolicy.resource_type)).all()
    types = sorted(set(BUILT_IN) | set(stored))
    return [strategy_for(session, connection_id=connection_id, resource_type=t) for t in types]


def set_policy(
    session: Session,
    *,
    connection_id: int | None,
    resource_type: str,
    strategy: ResolutionStrategy | None,
    actor: audit.Actor,
) -> EffectivePolicy:
    """Store (or with `strategy` None remove) a policy; audited."""
    query = select(ConflictPolicy).where(ConflictPolicy.resource_type == resource_type)
    query = query.where(
        ConflictPolicy.connection_id == connection_id
        if connection_id is not None
        else ConflictPolicy.connection_id.is_(None)
    )
    row = session.exec(query).first()
    if strategy is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(
            ConflictPolicy(
                connection_id=connection_id,
                resource_type=resource_type,
                strategy=strategy,
                updated_by=actor.name,
            )
        )
    else:
        row.strategy, row.updated_by, row.updated_at = strategy, actor.name, utcnow()
        session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="conflict_policy.set",
        target_type="connection" if connection_id else "conflict_policy",
        target_id=connection_id,
        details={"resource_type": resource_type, "strategy": strategy.value if strategy else None},
    )
    return strategy_for(session, connection_id=connection_id, resource_type=resource_type)


def schedule_automatic(
    session: Session, conflict_ids: Iterable[int], *, queue: Queue | None = None
) -> list[int]:
    """Enqueue automatic resolution for the conflicts whose policy is automatic.

    Call after the transaction that created the conflicts has committed (the job reads
    them). The RQ job id is derived from the conflict id, so enqueueing twice is harmless.
    """
    scheduled = []
    for conflict in session.exec(select(Conflict).where(Conflict.id.in_(list(conflict_ids)))):
        if conflict.status is not ConflictStatus.OPEN or conflict.kind is ConflictKind.DUPLICATE:
            continue
        policy = strategy_for(
            session, connection_id=conflict.connection_id, resource_type=conflict.resource_type
        )
        if policy.automatic:
            queue = queue or conflict_queue()
            job_id = f"conflict-auto-{conflict.id}"
            if not pending(queue, job_id):
                queue.enqueue(
                    JOB_FUNCTION,
                    conflict.id,
                    job_id=job_id,
                    result_ttl=3600,
                    failure_ttl=7 * 24 * 3600,
                )
            scheduled.append(conflict.id)
    return scheduled


def auto_resolve(conflict_id: int) -> str:
    """Resolve one conflict with its policy's strategy, if automatic and still open.

    Returns:
        The strategy used, or why nothing was done ("not open", "manual", ...).
    """
    with session_scope() as session:
        conflict = session.get(Conflict, conflict_id)
        if conflict is None or conflict.status is not ConflictStatus.OPEN:
            return "not open"
        policy = strategy_for(
            session, connection_id=conflict.connection_id, resource_type=conflict.resource_type
        )
        if not policy.automatic:
            return policy.strategy.value  # waits for a person
        resolve(
            session,
            conflict_id=conflict_id,
            strategy=policy.strategy,
            reason=f"automatic: {policy.source} policy for {conflict.resource_type}",
            actor=POLICY_ACTOR,
        )
        return policy.strategy.value
