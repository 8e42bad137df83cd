"""Group commit for the listener: messages accepted while one commit runs share the next.

Each connection's handler awaits its message's commit before it answers AA, so an AA always
means "stored"; under load one transaction stores dozens of messages. Queueing the stored
ids for processing follows on a task of its own (a message stored but not queued is found by
the sweep), so the sender never waits for Redis.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable

from .. import telemetry
from ..db import get_engine
from ..services.hl7.queueing import enqueue_messages
from ..services.hl7.store import Accepted, store_messages

log = logging.getLogger(__name__)
MAX_BATCH = 500
Item = tuple[Accepted, asyncio.Future, telemetry.SpanContext]


def _write(messages: list[Accepted]) -> list[int | None]:
    with get_engine().connect() as connection:
        return store_messages(connection, messages)


def _queue(ids: list[int]) -> None:
    try:
        enqueue_messages(ids)
    except Exception as exc:  # noqa: BLE001 - stored means acknowledged; the sweep queues them
        log.warning(
            "%d HL7 messages stored but not queued (the sweep will): %s",
            len(ids),
            type(exc).__name__,
        )


class Intake:
    """Stores messages in batches on a worker thread; `submit` returns once committed."""

    def __init__(
        self,
        write: Callable[[list[Accepted]], list[int | None]] = _write,
        queue: Callable[[list[int]], None] = _queue,
    ) -> None:
        self._write, self._queue = write, queue
        self._pending: list[Item] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stored: list[int] = []
        self._origins: list[telemetry.SpanContext] = []  # the messages' spans (telemetry)
        self._stored_wake = asyncio.Event()
        self._follower: asyncio.Task[None] | None = None

    async def submit(self, message: Accepted) -> int | None:
        """Store one message: its new id, or None for a repeat. Raises when storing failed."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((message, future, telemetry.jobs.origin()))
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
        try:
            ids = await asyncio.to_thread(self._write, [m for m, _, _ in batch])
        except Exception as exc:  # every waiter learns it (and answers AE); none hangs
            log.warning("%d HL7 messages not stored: %s", len(batch), type(exc).__name__)
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future, _), message_id in zip(batch, ids, strict=True):
            if not future.done():
                future.set_result(message_id)
        new = [i for i in ids if i is not None]
        if new:
            self._stored.extend(new)
            self._origins.extend(origin for _, _, origin in batch)
            self._stored_wake.set()
            if self._follower is None or self._follower.done():
                # A context of its own: the task serves many requests' events and must not run
                # in (and its queued jobs join) the trace of whichever request started it.
                self._follower = asyncio.create_task(self._follow(), context=contextvars.Context())

    async def _follow(self) -> None:
        while True:
            await self._stored_wake.wait()
            self._stored_wake.clear()
            done, self._stored = self._stored, []
            origins, self._origins = self._origins, []
            if done:
                await asyncio.to_thread(self._queue_linked, done, origins)

    def _queue_linked(self, ids: list[int], origins: list[telemetry.SpanContext]) -> None:
        """Queue the stored messages; their processing's trace links to the messages."""
        with telemetry.jobs.linked(origins):
            self._queue(ids)
