"""The inbound receiver takes SQLite's write lock as soon as a worker releases it (#26).

SQLite's busy handler sleeps up to 100 ms between tries; the receiver's answer waits for its
commit, so it polls instead (`db.begin_write_promptly`). These tests hold the lock from a
second connection on a real database file, as an RQ worker's batch does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from holovitals_sync import db
from holovitals_sync.db import begin_write_promptly, create_db_engine


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_db_engine(database_url)  # a new database: SQLite file or PostgreSQL
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE lock_probe (x INTEGER)")
    yield engine
    engine.dispose()


def _hold_write_lock(
    engine: sa.Engine, seconds: float, held: threading.Event, released: list[float] | None = None
) -> None:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        connection.exec_driver_sql("INSERT INTO lock_probe VALUES (1)")
        held.set()
        time.sleep(seconds)
        if released is not None:
            # Taken just before the commit: the waiter may get the lock between the commit
            # returning and a clock read after it, and that is not a wait cut short.
            released.append(time.monotonic())
        connection.commit()


def _busy_timeout(connection: sa.Connection) -> int:
    return connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()


def test_the_write_waits_for_the_holder_then_lands(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
):
    polls: list[float] = []
    real_sleep = time.sleep

    def counted_sleep(seconds: float) -> None:
        polls.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(db.time, "sleep", counted_sleep)  # the holder's pause counts too
    held, released = threading.Event(), []
    holder = threading.Thread(target=_hold_write_lock, args=(engine, 0.3, held, released))
    holder.start()
    held.wait(5)
    with engine.connect() as connection:
        begin_write_promptly(connection)
        acquired = time.monotonic()
        connection.exec_driver_sql("INSERT INTO lock_probe VALUES (2)")
        connection.commit()
        if engine.dialect.name == "sqlite":
            # The connection goes back to the pool with the usual busy timeout.
            assert _busy_timeout(connection) == 30000
    holder.join()
    if engine.dialect.name == "sqlite":
        # It polled (SQLite's own busy handler never calls time.sleep) and got the lock only
        # once the holder had begun to commit. How many polls fit in the 0.3 s depends on
        # the machine's load (once, after the webhooks suite, no more than ten did).
        assert polls.count(db.LOCK_POLL_SECONDS) >= 1, polls[:5]
        assert acquired >= released[0]
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT x FROM lock_probe ORDER BY x").scalars()
        assert list(rows) == [1, 2]


def test_a_lock_never_released_fails_after_the_wait(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
):
    engine = create_db_engine(sqlite_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE lock_probe (x INTEGER)")
    monkeypatch.setattr(db, "LOCK_WAIT_SECONDS", 0.2)
    held = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(engine, 1.0, held))
    holder.start()
    held.wait(5)
    with engine.connect() as connection:
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            begin_write_promptly(connection)
        assert _busy_timeout(connection) == 30000
    holder.join()
    engine.dispose()
