"""Group commit for the inbound receiver: events accepted while one commit runs share the next.

One writer per app (one event loop): each request awaits a future that resolves once its
event is committed, so the 202 still means "stored". Under light load a batch holds one
event and this adds nothing; under heavy load one transaction stores dozens. On SQLite the
batch is written on the loop itself (`loop_writer` says why), on PostgreSQL on a thread.

Queueing the stored events happens after the futures are resolved, on a follow-up task of
its own (several batches share one Redis round trip): queueing is processing, not storing,
and the sender need not wait for it. Events whose follow-up never ran (the process died,
Redis was down) stay `received` and unqueued, and the webhooks maintenance queues them
(`services.webhooks.sweep`).

Gap detection (`services.webhooks.gaps`: the events' numbers noted in Redis, a catch-up
stored for a new hole) runs on the follow-up too, before the queueing. In the answer's path
it cost more than the insert and the commit together (a Redis round trip, and a second write
transaction for a third of the batches under 32 concurrent senders) and held the next batch
back: measured (benchmarks/webhooks.py --only closed, workers busy), intake went from 2,000
to 2,742 events/s and its p99 from 55 to 44 ms. A process that dies before its follow-up
leaves those numbers unnoted; the next numbers then show a hole, and its catch-up costs an
incremental sync, never an event.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Sequence

from fastapi import FastAPI

from .. import telemetry
from ..db import begin_write_promptly, get_engine
from ..services.webhooks.notifications import EventInfo
from ..services.webhooks.store import commit_events, queue_events, store_catch_ups
from .loop_writer import LoopWriter, checkpoint

log = logging.getLogger(__name__)
MAX_BATCH = 500
Event = tuple[int, EventInfo]
Item = tuple[int, EventInfo, asyncio.Future, telemetry.SpanContext]


def _write(events: Sequence[Event]) -> list[int | None]:
    """PostgreSQL's writes, on a thread (SQLite's are on the loop: `loop_writer`)."""
    # A Core connection, not a session: the writer needs no ORM state, and a session's
    # set-up and teardown cost more than the insert of a small batch.
    with get_engine().connect() as connection:
        begin_write_promptly(connection)
        return commit_events(connection, events)


def _follow_up(
    accepted: list[Event], event_ids: list[int], origins: list[telemetry.SpanContext]
) -> None:
    """Store the catch-ups the accepted events call for, then queue them all; their
    processing's trace links to the requests (telemetry). Raises nothing: what fails here
    leaves events for the sweeper (see the module's docstring)."""
    try:
        with get_engine().connect() as connection:
            catch_ups = store_catch_ups(connection, accepted)
    except Exception as exc:  # noqa: BLE001 - the database is gone: no catch-up, still queue
        log.warning("inbound gap detection skipped: %s", type(exc).__name__)
        catch_ups = []
    with telemetry.jobs.linked(origins):
        queue_events(event_ids + catch_ups)


class Intake:
    """Collects (connection id, event) pairs and stores them in batches on a worker thread."""

    def __init__(self) -> None:
        self._pending: list[Item] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stored: list[int] = []
        self._accepted: list[Event] = []  # those events, for gap detection
        self._origins: list[telemetry.SpanContext] = []  # the requests of those events
        self._stored_wake = asyncio.Event()
        self._follower: asyncio.Task | None = None
        self._sqlite = LoopWriter()

    async def submit(self, connection_id: int, info: EventInfo) -> int | None:
        """Store one event; its id, or None when its key was stored before (a replay)."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((connection_id, info, future, telemetry.jobs.origin()))
        self._wake.set()
        if self._task is None or self._task.done():
            # A context of its own: the task serves many requests' events and must not run
            # in (and its queued jobs join) the trace of whichever request started it.
            self._task = asyncio.create_task(self._run(), context=contextvars.Context())
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            if self._pending:
                self._wake.set()
            if batch:
                await self._flush(batch)

    async def _flush(self, batch: list[Item]) -> None:
        events = [(cid, info) for cid, info, _, _ in batch]
        try:
            ids = await self._store(events)
        except Exception as exc:  # every waiter gets the failure (a 500), none hangs
            for _, _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future, _), event_id in zip(batch, ids, strict=True):
            if not future.done():
                future.set_result(event_id)
        new = [
            (event_id, event)
            for event_id, event in zip(ids, events, strict=True)
            if event_id is not None
        ]
        self._follow(new, [origin for _, _, _, origin in batch])

    async def _store(self, events: list[Event]) -> list[int | None]:
        if get_engine().dialect.name == "sqlite":
            return await self._sqlite.write(events)
        return await asyncio.to_thread(_write, events)

    def _follow(self, new: list[tuple[int, Event]], origins: list[telemetry.SpanContext]) -> None:
        """Hand committed events to the follow-up task (several batches share its trip)."""
        self._stored.extend(event_id for event_id, _ in new)
        self._accepted.extend(event for _, event in new)
        self._origins.extend(origins)
        self._stored_wake.set()
        if self._follower is None or self._follower.done():
            # A context of its own: the task serves many requests' events and must not run
            # in (and its queued jobs join) the trace of whichever request started it.
            self._follower = asyncio.create_task(
                self._run_follow_ups(), context=contextvars.Context()
            )

    async def _run_follow_ups(self) -> None:
        while True:
            await self._stored_wake.wait()
            self._stored_wake.clear()
            done, self._stored = self._stored, []
            accepted, self._accepted = self._accepted, []
            origins, self._origins = self._origins, []
            if done:
                await asyncio.to_thread(_follow_up, accepted, done, origins)
            if self._sqlite.checkpoint_due():
                await asyncio.to_thread(checkpoint)


def intake_of(app: FastAPI) -> Intake:
    """The app's intake, created on first use (inside the app's event loop)."""
    intake = getattr(app.state, "webhook_intake", None)
    if intake is None:
        intake = app.state.webhook_intake = Intake()
    return intake
