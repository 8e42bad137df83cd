"""Group commit for the inbound receiver: events accepted while one commit runs share the next.

One writer per app (one event loop): each request awaits a future that resolves once its
event is committed, so the 202 still means "stored". Under light load a batch holds one
event and this adds nothing; under heavy load one transaction stores dozens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import FastAPI

from ..db import session_scope
from ..services.webhooks.notifications import EventInfo
from ..services.webhooks.store import store_batch

MAX_BATCH = 500
Item = tuple[int, EventInfo, asyncio.Future]


def _write(events: Sequence[tuple[int, EventInfo]]) -> list[int | None]:
    with session_scope() as session:
        return store_batch(session, events)


class Intake:
    """Collects (connection id, event) pairs and stores them in batches on a worker thread."""

    def __init__(self) -> None:
        self._pending: list[Item] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def submit(self, connection_id: int, info: EventInfo) -> int | None:
        """Store one event; its id, or None when its key was stored before (a replay)."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((connection_id, info, future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
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

    @staticmethod
    async def _flush(batch: list[Item]) -> None:
        try:
            ids = await asyncio.to_thread(_write, [(cid, info) for cid, info, _ in batch])
        except Exception as exc:  # every waiter gets the failure (a 500), none hangs
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), event_id in zip(batch, ids, strict=True):
            if not future.done():
                future.set_result(event_id)


def intake_of(app: FastAPI) -> Intake:
    """The app's intake, created on first use (inside the app's event loop)."""
    intake = getattr(app.state, "webhook_intake", None)
    if intake is None:
        intake = app.state.webhook_intake = Intake()
    return intake
