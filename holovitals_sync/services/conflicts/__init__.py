"""Conflict detection and resolution: the package's entry points (keyword arguments).

    outcomes = detect_batch(session, connection_id, job_id, [Incoming(record, body, version)])
    detect_record(session, record=..., remote_body=..., remote_version=..., kind=STALE_WRITE)
    detect_stored(session, connection_id=..., job_id=...)   # dirty records whose remote moved
    detect_duplicates(session, connection_id=..., job_id=..., records=[...])
    resolve(session, conflict_id=..., strategy=..., reason=..., actor=..., choices/values)
    resolve_bulk(session, conflict_ids=[...], strategy=..., reason=..., actor=...)
    schedule_automatic(session, [conflict ids])      # after commit; RQ `conflicts.default`
    writeback.run(conflict_id)   # the queued write-back of a resolution (a conflicts job)

`three_way` (diff) and `severity_of` (severity) are the pure engine underneath.
"""

from __future__ import annotations

from ...models import Conflict
from .. import changes
from .bulk import BulkResult, resolve_bulk
from .detect import Action, Incoming, Outcome, detect_batch, detect_record, detect_stored
from .diff import MISSING, FieldConflict, MergeResult, Side, three_way
from .duplicates import detect_duplicates
from .policy import (
    EffectivePolicy,
    auto_resolve,
    list_policies,
    schedule_automatic,
    set_policy,
    strategy_for,
)
from .queries import ConflictFilter, list_conflicts, matching_ids
from .resolve import ConflictNotFound, NotOpen, ResolutionError, resolve, resolved_body
from .severity import RULES, Rule, severity_of

# Open dashboards follow conflict rows (the Conflicts tab, the open-conflicts card).
changes.follow(Conflict, changes.CONFLICTS)


__all__ = [
    "MISSING",
    "RULES",
    "Action",
    "BulkResult",
    "ConflictFilter",
    "ConflictNotFound",
    "EffectivePolicy",
    "FieldConflict",
    "Incoming",
    "MergeResult",
    "NotOpen",
    "Outcome",
    "ResolutionError",
    "Rule",
    "Side",
    "auto_resolve",
    "detect_batch",
    "detect_duplicates",
    "detect_record",
    "detect_stored",
    "list_conflicts",
    "list_policies",
    "matching_ids",
    "resolve",
    "resolve_bulk",
    "resolved_body",
    "schedule_automatic",
    "set_policy",
    "severity_of",
    "strategy_for",
    "three_way",
]
