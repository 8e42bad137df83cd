"""What several workers on one connection need: cursor saves that never collide, and work
horses that start warm (the fixes behind benchmarks/sync.py's speed-up curve)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import SyncCheckpoint
from holovitals_sync.models.types import utcnow
from holovitals_sync.services.orchestration.lifecycle import save_cursor
from tests.conftest import REDIS_TEST_URL
from tests.factories import make_connection
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
OLD, NEW = "2026-01-01T00:00:00.000Z", "2026-06-01T00:00:00.000Z"


@pytest.fixture
def conn_id(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    migrations.upgrade(database_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    with session_scope() as session:
        conn = make_connection(session, "Cursor EHR", base_url="https://ehr.example.org/fhir")
        conn_id = conn.id
    yield conn_id
    get_engine().dispose()


def cursors(conn_id: int) -> dict[str, str | None]:
    with session_scope() as session:
        rows = session.exec(select(SyncCheckpoint).where(SyncCheckpoint.connection_id == conn_id))
        return {row.resource_type: row.cursor for row in rows}


def test_cursor_is_created_then_only_moves_forward(conn_id: int) -> None:
    with session_scope() as session:
        save_cursor(session, conn_id, {"Patient": NEW, "Observation": OLD}, utcnow())
    with session_scope() as session:  # an older run finishing late
        save_cursor(session, conn_id, {"Patient": OLD, "Observation": NEW}, utcnow())
    assert cursors(conn_id) == {"Patient": NEW, "Observation": NEW}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_transactions_creating_the_same_cursor_rows_both_commit(conn_id: int) -> None:
    """The second writer waits for the first one's uncommitted rows, then merges into them
    (read-then-insert raised IntegrityError here and failed one of the two jobs)."""
    first_saved, errors = threading.Event(), []

    def first() -> None:
        try:
            with session_scope() as session:
                save_cursor(session, conn_id, {"Patient": OLD, "Condition": NEW}, utcnow())
                session.flush()
                first_saved.set()
                # Commit only once the second writer is blocked on these very rows.
                wait_for(blocked_on_lock, timeout=30)
        except Exception as exc:  # recorded: the assertion below names it
            errors.append(exc)
        finally:
            first_saved.set()

    def second() -> None:
        first_saved.wait(30)
        try:
            with session_scope() as session:
                save_cursor(session, conn_id, {"Condition": OLD, "Patient": NEW}, utcnow())
        except Exception as exc:  # recorded: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert cursors(conn_id) == {"Patient": NEW, "Condition": NEW}
    with session_scope() as session:
        count = session.execute(sa.select(sa.func.count()).select_from(SyncCheckpoint)).one()
    assert count[0] == 2  # no duplicate row


def blocked_on_lock() -> bool:
    with get_engine().connect() as conn:
        waiting = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return waiting > 0


def test_worker_settings_load_the_fhir_models_before_any_fork(tmp_path: Path) -> None:
    """`rq worker -c workers.settings` imports this module in the parent; the models each
    job needs must be loaded there, not again in every forked work horse."""
    probe = (
        "import sys, workers.settings; "
        "print(all(m in sys.modules for m in ("
        "'fhir.resources.observation', 'fhir.resources.patient', "
        "'holovitals_sync.services.conflicts.detect')))"
    )
    env = {
        **os.environ,
        "HOLOVITALS_REDIS_URL": REDIS_TEST_URL,
        "HOLOVITALS_DATA_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True"
