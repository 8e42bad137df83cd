"""The receiver's SQLite writer: each batch of events inserted and committed on the event loop.

Why on the loop, not on a thread: under load the loop and the writer sat mostly idle (py-spy,
benchmarks/webhooks.py --only closed, workers busy: the writer busy 6 % of the time, the
loop 13 %), yet each answer waited about 9 ms. The time went to handing every batch to a
thread and back: on two busy cores, each wake-up of another thread waits for the scheduler.
An insert and commit of a small batch takes well under a millisecond, which the loop can
spare; the wait for SQLite's write lock is polled with `asyncio.sleep`, so it never holds
the loop. Measured in the same hour (`benchmarks/webhooks.py --quick --only closed`, four
runs each way): 3,109-3,602 events/s, p99 38-42 ms, on the loop; 2,779-3,291 events/s, p99
41-49 ms, through a thread.

It writes through the DBAPI connection, not SQLAlchemy's statement handling: under the
closed loop a batch holds a few events, and SQLAlchemy's execute, insertmanyvalues and
commit wrappers cost about as much as SQLite's own insert (`insert_events_sqlite`: ~130 us
against ~210 us a batch of ten, in-process). The values still pass SQLAlchemy's bind
processors, so rows are what the ORM writes.

The connection is the writer's own, held between batches. A pooled one could make the loop
wait for the pool when the dashboard's threads hold every connection, and a pooled one would
need its busy timeout switched off and on again per batch. It never checkpoints the WAL as
it commits (a checkpoint of the ~80 MB SQLite lets grow can take a few hundred ms, which
would stall every request of this process): `checkpoint_due` tells the intake to run a
passive checkpoint on a thread now and then, so a receiver writing alone (workers stopped)
never lets the WAL grow without end. PostgreSQL needs none of this: its writes stay on a
thread (`intake`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import PoolProxiedConnection

from ..db import LOCK_POLL_SECONDS, LOCK_WAIT_SECONDS, get_engine, try_begin_immediate
from ..services.webhooks.notifications import EventInfo
from ..services.webhooks.store import insert_events_sqlite

log = logging.getLogger(__name__)
Event = tuple[int, EventInfo]
# Commits between two passive checkpoints (each commit is one batch of events).
CHECKPOINT_EVERY = 1000


class LoopWriter:
    """Stores batches of events for one event loop on its own SQLite connection."""

    def __init__(self) -> None:
        self._connection: PoolProxiedConnection | None = None
        self._engine: sa.Engine | None = None
        self._commits = 0

    async def write(self, events: Sequence[Event]) -> list[int | None]:
        """Insert and commit a batch; the new id per event (None for a replay)."""
        engine, connection = self._open()
        try:
            cursor = connection.cursor()
            await self._begin(cursor)
            ids = insert_events_sqlite(cursor, engine.dialect, events)
            connection.commit()
        except BaseException:
            self._drop()  # in whatever state the failure left it: a fresh one next time
            raise
        self._commits += 1
        return ids

    def checkpoint_due(self) -> bool:
        """True once in `CHECKPOINT_EVERY` commits (the caller then runs `checkpoint`)."""
        if self._commits < CHECKPOINT_EVERY:
            return False
        self._commits = 0
        return True

    def _open(self) -> tuple[sa.Engine, PoolProxiedConnection]:
        engine = get_engine()
        if self._connection is not None and self._engine is engine:
            return engine, self._connection
        self._drop()
        connection = engine.raw_connection()
        # Both for this connection's life only: it is never returned to the pool.
        cursor = connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()
        self._connection, self._engine = connection, engine
        return engine, connection

    def _drop(self) -> None:
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        try:
            connection.invalidate()  # never back to the pool with its PRAGMAs
            connection.close()
        except Exception as exc:  # noqa: BLE001 - it is being thrown away
            log.debug("inbound writer connection dropped: %s", type(exc).__name__)

    @staticmethod
    async def _begin(cursor: Any) -> None:
        """Take SQLite's write lock as soon as it is free (see `db.begin_write_promptly`),
        polling without holding the loop."""
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while not try_begin_immediate(cursor, deadline):
            await asyncio.sleep(LOCK_POLL_SECONDS)


def checkpoint() -> None:
    """A passive WAL checkpoint (it copies what no reader needs and waits for no one); run
    on a thread. Failing is harmless: the next one, or any other writer's, catches up."""
    try:
        with get_engine().connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    except Exception as exc:  # noqa: BLE001 - see above
        log.warning("inbound writer's WAL checkpoint skipped: %s", type(exc).__name__)
