"""What one run of a sync job carries from batch to batch for the upsert.

The cache lives for one run of `run_inbound` (a `ContextVar`, so a batch written outside a
run, as tests do, decides everything afresh). The run's rules and known patients live with
its `pipeline.BatchProcessor`, which works in the prefetch thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class RunCache:
    """Per-run state of one connection's upserts."""

    connection_id: int
    # Share of the last batch's records that were already stored unchanged (the upsert
    # decides from it whether looking records up first pays; see upsert.postgres.upsert).
    # Until a batch has been written, assume a re-sync.
    unchanged_share: float = 1.0
    # Whether the connection holds records flagged invalid (asked once per run): only then
    # may an unchanged record's flag be stale, and worth a statement per batch to correct.
    flags_stored: bool | None = None


_current: ContextVar[RunCache | None] = ContextVar("sync_run_cache", default=None)


@contextmanager
def run_cache(connection_id: int) -> Iterator[RunCache]:
    """Batches written inside this block share one cache."""
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
