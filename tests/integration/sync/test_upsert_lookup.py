"""The upsert's look-up of stored hashes: always on SQLite (its counts come from it); on
PostgreSQL only while a run's batches are mostly unchanged records, the statement's
RETURNING counting either way."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.services.orchestration import runcache
from holovitals_sync.services.orchestration.upsert import UpsertCounts, upsert_batch


def _batch(start: int, count: int, version: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Observation",
            "id": f"lk-{i}",
            "status": "final",
            "code": {"text": f"v{version}"},
            "subject": {"reference": "Patient/p1"},
            "meta": {"versionId": str(version), "lastUpdated": f"2026-01-{version:02d}T00:00:00Z"},
        }
        for i in range(start, start + count)
    ]


class _Lookups:
    """Counts SELECTs of synced_record hashes (the look-up) on the engine."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        low = statement.lower()
        if (
            low.lstrip().startswith("select")
            and "content_hash" in low
            and "from synced_record" in low
        ):
            self.count += 1


def _store(
    connection_id: int, resources: list[dict[str, Any]], lookups: _Lookups
) -> tuple[UpsertCounts, int]:
    before = lookups.count
    with session_scope() as session:
        counts = upsert_batch(
            session, connection_id=connection_id, job_id=None, resources=resources
        )
    return counts, lookups.count - before


def _summary(counts: UpsertCounts) -> tuple[int, int, int, int]:
    return counts.created, counts.updated, counts.unchanged, len(counts.changed)


def test_a_run_looks_up_only_while_it_pays(connection):
    lookups = _Lookups()
    engine = get_engine()
    sa.event.listen(engine, "before_cursor_execute", lookups)
    postgres = engine.dialect.name == "postgresql"
    try:
        with runcache.run_cache(connection.id):
            # First batch of a run: looked up (it may be a re-sync); all new.
            counts, looked = _store(connection.id, _batch(0, 20), lookups)
            assert (_summary(counts), looked) == ((20, 0, 0, 20), 1)
            # A first import: PostgreSQL stops looking up; counts still exact.
            counts, looked = _store(connection.id, _batch(20, 20), lookups)
            assert (_summary(counts), looked) == ((20, 0, 0, 20), 0 if postgres else 1)
            assert all(c.created for c in counts.changed)
            # Records already stored, unchanged: counted unchanged, announced to nobody.
            counts, looked = _store(connection.id, _batch(0, 20), lookups)
            assert (_summary(counts), looked) == ((0, 0, 20, 0), 0 if postgres else 1)
            # ... which makes the next batch look up again: 10 changed, 10 the same.
            mixed = _batch(0, 10, version=2) + _batch(10, 10)
            counts, looked = _store(connection.id, mixed, lookups)
            assert (_summary(counts), looked) == ((0, 10, 10, 10), 1)
            assert not any(c.created for c in counts.changed)
        # Outside a run (a single batch): always looked up.
        counts, looked = _store(connection.id, _batch(40, 5), lookups)
        assert (_summary(counts), looked) == ((5, 0, 0, 5), 1)
    finally:
        sa.event.remove(engine, "before_cursor_execute", lookups)
