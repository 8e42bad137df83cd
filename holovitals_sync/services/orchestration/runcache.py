"""What one run of a sync job looks up once instead of once per batch.

A run's batches share its connection's transformation rules (compiled once, at the start of
the attempt, as the custom validation rules already are) and the patients the connection is
known to store. Both used to cost a query per batch. The cache lives for one run of
`run_inbound` (a `ContextVar`, so a batch processed outside a run, as tests do, looks
everything up as before).

Only positive facts are kept: a patient once seen stored stays stored for the rest of the
run (records are never removed during a sync), while a patient not found is asked again
next batch, since another run may store it meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from ..transformation.compile import RuleBook, TransformResult
from ..transformation.service import DataTransformationService


@dataclass(slots=True)
class RunCache:
    """Per-run look-ups of one connection."""

    connection_id: int
    rules: RuleBook | None = None
    patients: set[str] = field(default_factory=set)
    # Share of the last batch's records that were already stored unchanged (the upsert
    # decides from it whether looking records up first pays; see upsert.upsert_batch).
    # Until a batch has been written, assume a re-sync.
    unchanged_share: float = 1.0

    def remember_patients(self, resources: Iterable[dict[str, Any]]) -> None:
        """Patients a committed batch stored: known to every later batch of the run."""
        self.patients.update(str(r["id"]) for r in resources
                             if r.get("resourceType") == "Patient" and r.get("id"))


_current: ContextVar[RunCache | None] = ContextVar("sync_run_cache", default=None)


@contextmanager
def run_cache(connection_id: int) -> Iterator[RunCache]:
    """Batches processed inside this block share one cache."""
    cache = RunCache(connection_id)
    token = _current.set(cache)
    try:
        yield cache
    finally:
        _current.reset(token)


def current(connection_id: int) -> RunCache | None:
    """The running cache of this connection, if a run is under way."""
    cache = _current.get()
    return cache if cache is not None and cache.connection_id == connection_id else None


def transform(session: Session, connection_id: int,
              resources: Sequence[Any]) -> list[TransformResult]:
    """The connection's inbound rules applied to each resource (one result each).

    Without any rule a resource passes as it is: no copy, no per-rule loop (a deep copy
    per resource was ~10 µs, the largest single cost of a batch without rules).
    """
    cache = current(connection_id)
    if cache is None:
        return DataTransformationService(session).apply_batch(resources,
                                                              connection_id=connection_id)
    if cache.rules is None:
        cache.rules = DataTransformationService(session).compile_for(connection_id)
    if not cache.rules.rules:
        return [TransformResult(resource) for resource in resources]
    return cache.rules.apply_batch(resources)


