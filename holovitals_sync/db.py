"""Engine and session helpers. One engine per process (RQ forks: see `dispose_after_fork`)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session

from .config import Settings, ensure_data_dir, get_settings


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the dashboard read while a worker writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoint the WAL every ~80 MB instead of every ~4 MB: with the default nearly every
    # sync batch paid for a checkpoint (+7 % bulk sync throughput measured here); the file
    # is cut back to 64 MB after each checkpoint.
    cursor.execute("PRAGMA wal_autocheckpoint=20000")
    cursor.execute("PRAGMA journal_size_limit=67108864")
    cursor.close()


def _json_dumps(value: Any) -> str:
    # orjson is ~10x faster than the json module: the sync stores three bodies per record.
    return orjson.dumps(value).decode()


def _json_loads(text: str | bytes) -> Any:
    # orjson reads a stored body in about half the json module's time (6 vs 11-12 us for
    # the sandbox's ~630-byte resources, measured here): record views, conflict detection
    # (benchmarks/conflicts.py's database run, median of 4 interleaved pairs: 4.8k -> 6.1k
    # pairs/s). What it refuses and the json module accepts (NaN, a lone surrogate escape),
    # which this application never writes but a row written by other means may hold, is
    # still read.
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def create_db_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine for SQLite or PostgreSQL with the settings both need."""
    kwargs.setdefault("json_serializer", _json_dumps)
    kwargs.setdefault("json_deserializer", _json_loads)
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    if url.startswith(("postgresql://", "postgres://")):
        # The psycopg 3 driver is the one installed; plain URLs would ask for psycopg2.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    # No server-side prepared statements: a long sync prepares its record look-up while the
    # table is nearly empty, and a generic plan kept from then (a sequential scan) made a
    # 200k-record sync ~7x slower by its end (benchmarks/sync.py --large, autovacuum off).
    kwargs.setdefault("connect_args", {"connect_timeout": 5, "prepare_threshold": None})
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, **kwargs)


def engine_for(settings: Settings) -> sa.Engine:
    """An engine for the configured database, creating the data directory for SQLite."""
    if settings.database_url is None:
        private_file(ensure_data_dir(settings) / "holovitals.db")
    return create_db_engine(settings.effective_database_url)


def private_file(path: Path) -> Path:
    """Create the file mode 0600 if it is not there, and close it to others if it is.

    SQLite creates a database file with the process's umask (0644 here: readable by every
    user of the machine) and gives its WAL and shared-memory files the database's mode.
    """
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return path


@lru_cache(maxsize=1)
def get_engine() -> sa.Engine:
    """The process-wide engine."""
    return engine_for(get_settings())


def dispose_after_fork() -> None:
    """Drop pooled connections inherited from a parent process (RQ forks per job)."""
    get_engine().dispose(close=False)


@contextmanager
def session_scope(engine: sa.Engine | sa.Connection | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error.

    Given a connection (one held for a run of transactions, as a sync run's batches do),
    the session begins and commits its transaction on it.
    """
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def ping(engine: sa.Engine | None = None) -> None:
    """Raise if the database cannot answer a trivial query."""
    with (engine or get_engine()).connect() as connection:
        connection.execute(sa.text("SELECT 1"))


# SQLite's own busy handler sleeps 1, 2, 5, 10, ... up to 100 ms between tries and is not
# woken when the lock frees: a writer that found it taken waits up to 100 ms past its release.
LOCK_POLL_SECONDS = 0.001
LOCK_WAIT_SECONDS = 30.0


def begin_write_promptly(connection: sa.Connection) -> None:
    """Begin a write transaction, taking SQLite's write lock as soon as it is free.

    For the inbound receiver, whose answer waits for its commit: behind a worker's batch it
    waits for that transaction and no more (measured: commit p99 59 ms, max 193 ms, with the
    busy handler's sleeps while the workers wrote). Polling every millisecond also puts it
    ahead of the workers, which keep the busy handler's longer sleeps. PostgreSQL needs
    nothing: a transaction begins as usual.
    """
    if connection.dialect.name != "sqlite":
        return
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    connection.exec_driver_sql("PRAGMA busy_timeout=0")
    try:
        while not try_begin_immediate(connection, deadline):
            time.sleep(LOCK_POLL_SECONDS)
    finally:
        connection.exec_driver_sql("PRAGMA busy_timeout=30000")


def try_begin_immediate(connection: sa.Connection | Any, deadline: float) -> bool:
    """One try at SQLite's write lock, on a connection (or a DBAPI cursor) without a busy
    handler: True when taken, False when another connection holds it. Raises SQLite's
    "locked" error once `deadline` (`time.monotonic()`) has passed, and any other error at
    once."""
    run = (
        connection.exec_driver_sql if isinstance(connection, sa.Connection) else connection.execute
    )
    try:
        run("BEGIN IMMEDIATE")
    except (sa.exc.OperationalError, sqlite3.OperationalError) as exc:
        if "locked" not in str(getattr(exc, "orig", exc)) or time.monotonic() > deadline:
            raise
        return False
    return True


WRITE_PROBE_SECONDS = 2.0


def probe_write(engine: sa.Engine | None = None) -> None:
    """Raise if a write could not get through within `WRITE_PROBE_SECONDS`.

    A database can answer SELECT 1 while no write gets through: on SQLite a transaction
    holding the write lock (a request stuck on a slow EHR once did, for 17 minutes) leaves
    every writer waiting; PostgreSQL may be a read-only replica, or out of disk. Nothing is
    written: SQLite takes and releases the write lock, PostgreSQL assigns a transaction id.
    """
    engine = engine or get_engine()
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            timeout = int(WRITE_PROBE_SECONDS * 1000)
            connection.exec_driver_sql(f"PRAGMA busy_timeout={timeout}")
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                connection.exec_driver_sql("ROLLBACK")
            finally:
                connection.exec_driver_sql("PRAGMA busy_timeout=30000")
            return
        timeout = int(WRITE_PROBE_SECONDS * 1000)
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {timeout}")
        connection.exec_driver_sql("SELECT txid_current()")
        connection.rollback()
