"""Stored records validated again when a connection's validation rules change.

A record's flag says whether it passes the connection's rules *now*: adding a rule flags the
stored records it fails, removing or loosening one clears the records it alone had flagged,
without waiting for their content to change at the EHR. The rule change queues
`revalidate_connection` on the transformations queue once its transaction has committed;
the job walks the connection's records of the rule's type a chunk at a time, each chunk
committed on its own, so a large connection is never locked for long and a killed worker's
retry simply walks again.

Records are flagged, never dropped, whatever the connection's mode: they are already stored,
and a stricter rule must not lose data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ...db import session_scope
from ...models import EHRConnection, SyncedRecord
from ..platform import job_functions
from ..platform.queues import Family, queue_for
from .batch import persist_errors, validate_resource
from .custom import CustomValidator
from .issues import ValidationIssue
from .references import deferred

log = logging.getLogger(__name__)

CHUNK = 1_000
JOB_FUNCTION = job_functions.REVALIDATE_CONNECTION
ALL_TYPES = "*"


@dataclass(slots=True)
class Revalidated:
    checked: int = 0
    flagged: int = 0  # newly flagged
    cleared: int = 0  # flag removed


def _validator(connection: EHRConnection) -> CustomValidator | None:
    """As the sync builds it (`orchestration.pipeline.custom_rules`)."""
    rules = connection.validation_rules or []
    return CustomValidator(rules) if rules else None


def _chunk(session: Session, connection_id: int, types: list[str] | None, after: int) -> list[Any]:
    table = SyncedRecord.__table__
    query = sa.select(
        table.c.id,
        table.c.resource_type,
        table.c.remote_id,
        table.c.remote_body,
        table.c.flagged_invalid,
    ).where(
        table.c.connection_id == connection_id, table.c.deleted == sa.false(), table.c.id > after
    )
    if types is not None:
        query = query.where(table.c.resource_type.in_(types))
    return list(session.execute(query.order_by(table.c.id).limit(CHUNK)))


def _issues(body: Any, custom: CustomValidator | None) -> list[ValidationIssue]:
    return validate_resource(body, known_patients=deferred, structural=False, custom=custom)


def _apply(
    session: Session,
    connection_id: int,
    rows: Iterable[Any],
    custom: CustomValidator | None,
    result: Revalidated,
) -> None:
    table = SyncedRecord.__table__
    flips: dict[bool, list[int]] = {True: [], False: []}
    errors: list[ValidationIssue] = []
    for row in rows:
        result.checked += 1
        issues = _issues(row.remote_body, custom)
        invalid = any(issue.blocking for issue in issues)
        if invalid != row.flagged_invalid:
            flips[invalid].append(row.id)
            if invalid:
                errors.extend(issues)
    for value, ids in flips.items():
        if ids:
            session.execute(
                sa.update(table).where(table.c.id.in_(ids)).values(flagged_invalid=value)
            )
    result.flagged += len(flips[True])
    result.cleared += len(flips[False])
    persist_errors(session, errors=errors, connection_id=connection_id, job_id=None)


def revalidate(connection_id: int, resource_types: list[str] | None) -> Revalidated:
    """Validate the connection's stored records (of these types; None: all) against its
    rules now, flag or clear each, and record the newly found errors (job None)."""
    with session_scope() as session:
        connection = session.get(EHRConnection, connection_id)
        if connection is None:
            return Revalidated()
        custom = _validator(connection)
    result, after = Revalidated(), 0
    while True:
        with session_scope() as session:
            rows = _chunk(session, connection_id, resource_types, after)
            if not rows:
                break
            _apply(session, connection_id, rows, custom, result)
            after = rows[-1].id
    log.info(
        "revalidated %s records of connection %s: %s flagged, %s cleared",
        result.checked,
        connection_id,
        result.flagged,
        result.cleared,
    )
    return result


_PENDING_KEY = "holovitals_revalidate"


def enqueue_after_commit(
    session: Session, connection_id: int, resource_types: Iterable[str]
) -> None:
    """Queue a revalidation once `session` commits (the job must read the new rules); a
    rollback drops it."""
    pending: dict[int, set[str]] = session.info.setdefault(_PENDING_KEY, {})
    first = not pending
    pending.setdefault(connection_id, set()).update(resource_types)
    if not first:
        return

    def enqueue(committed: Session) -> None:
        for conn_id, types in committed.info.pop(_PENDING_KEY, {}).items():
            _enqueue(conn_id, None if ALL_TYPES in types else sorted(types))

    def drop(rolled_back: Session, _previous: object = None) -> None:
        rolled_back.info.pop(_PENDING_KEY, None)

    sa.event.listen(session, "after_commit", enqueue, once=True)
    sa.event.listen(session, "after_soft_rollback", drop, once=True)


def _enqueue(connection_id: int, resource_types: list[str] | None) -> None:
    try:
        queue_for(Family.TRANSFORMATIONS).enqueue(
            JOB_FUNCTION,
            connection_id,
            resource_types,
            job_timeout=3600,
            description=f"revalidate connection {connection_id}",
        )
    except Exception as exc:  # the rule is saved; the next resync corrects the flags too
        log.warning(
            "revalidation of connection %s not queued: %s", connection_id, type(exc).__name__
        )
