"""Live job and alert updates: a background task per open dashboard tab, fed by Redis pub/sub.

Workers publish job events on `holovitals:jobs:db<N>`. The task started by the dashboard's
on_load subscribes to that channel, keeps only the newest event per job, and applies them
to the rows on screen at most `FLUSH_INTERVAL` apart: each `async with self` is one websocket
frame, and more than ~4 a second would only cost bandwidth. Nothing here polls the database
for progress; the summary cards are re-read on events, at most every `SUMMARY_INTERVAL`.

Reflex cancels the task with its page-load chain when the tab closes, navigates away or
reconnects; a reconnect (also after a backend restart) runs on_load again, which starts a
fresh task. A newer task for the same tab also retires an older one (`watcher` id).
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from typing import Any

import orjson
import reflex as rx
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from ...config import get_settings
from ...services import alerts
from ...services.orchestration.events import channel_for
from ..pages.jobs_detail import JobDetailState
from .alerts import AlertsState
from .alerts import read as read_alerts
from .jobs import JobsState, SummaryState, _page, gather_overview
from .session import principal_for, reads

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.25
SUMMARY_INTERVAL = 3.0
STATE_SUMMARY_INTERVAL = 1.0
IDLE_CHECK = 2.0
SESSION_RECHECK = 30.0
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)


class Coalescer:
    """The newest event per job since the last flush, and when the next flush may happen."""

    def __init__(self, interval: float = FLUSH_INTERVAL) -> None:
        self.interval = interval
        self.pending: dict[int, dict[str, Any]] = {}
        self.state_changed = False
        self._last_flush = -math.inf
        self._last_summary = -math.inf
        self._summary_owed = False
        self._summary_interval = SUMMARY_INTERVAL

    def add(self, event: dict[str, Any]) -> None:
        job_id = event.get("job_id")
        if not isinstance(job_id, int):
            return
        # Every event carries the whole status and counters: the newest one is enough.
        self.pending[job_id] = event
        self.state_changed |= event.get("event") == "state"

    def wait(self, now: float) -> float:
        """Seconds to wait for more events before the next flush, summary or idle check."""
        waits = [IDLE_CHECK]
        if self.pending:
            waits.append(self._last_flush + self.interval - now)
        if self._summary_owed:
            waits.append(self._last_summary + self._summary_interval - now)
        return max(0.0, min(waits))

    def take(self, now: float) -> tuple[dict[int, dict[str, Any]], bool] | None:
        """The events to apply now, or None when nothing is pending or it is too soon."""
        if not self.pending or now < self._last_flush + self.interval:
            return None
        events, changed = self.pending, self.state_changed
        self.pending, self.state_changed, self._last_flush = {}, False, now
        return events, changed

    def owe_summary(self, changed: bool) -> None:
        """Events were applied: the cards are stale (a status change makes that urgent)."""
        interval = STATE_SUMMARY_INTERVAL if changed else SUMMARY_INTERVAL
        if not self._summary_owed or interval < self._summary_interval:
            self._summary_interval = interval
        self._summary_owed = True

    def summary_due(self, now: float) -> bool:
        """Whether to re-read the cards now: owed, and not re-read within the interval.

        A summary skipped because it was too soon stays owed, so the last event of a job
        (its completion) always reaches the cards.
        """
        if not self._summary_owed or now - self._last_summary < self._summary_interval:
            return False
        self._last_summary, self._summary_owed = now, False
        self._summary_interval = SUMMARY_INTERVAL
        return True


def decode(data: bytes | str) -> dict[str, Any] | None:
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


class LiveState(rx.State):
    """Whether this tab is following job events, and which task does it."""

    live: bool = False
    _watcher: str = ""

    @rx.event(background=True)
    @reads()
    async def watch(self) -> rx.event.EventSpec | None:
        """The dashboard: job events for the rows and cards, alert events for the banner."""
        return await self._watch(jobs=True)

    @rx.event(background=True)
    @reads()
    async def watch_alerts(self) -> rx.event.EventSpec | None:
        """The alerts page: alert events only."""
        return await self._watch(jobs=False)

    async def _watch(self, *, jobs: bool) -> rx.event.EventSpec | None:
        async with self:
            principal, refusal = await principal_for(self)
            if principal is None:
                return refusal
            me = self._watcher = uuid.uuid4().hex
        url = get_settings().redis_url
        if url is None:
            return None
        failures = 0
        while True:
            try:
                await self._follow(url, me, jobs)
                return None  # superseded by a newer task of this tab
            except (RedisError, OSError) as exc:
                log.info("job events: subscription lost (%s); resubscribing", type(exc).__name__)
                async with self:
                    if self._watcher != me:
                        return None
                    self.live = False
                await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
                failures += 1

    async def _follow(self, url: str, me: str, jobs: bool) -> None:
        """Subscribe and apply events until a newer task takes over this tab."""
        client = aioredis.from_url(url)
        pubsub = client.pubsub()
        alert_channel = alerts.channel_for(client)
        try:
            await pubsub.subscribe(alert_channel, *([channel_for(client)] if jobs else []))
            async with self:
                if self._watcher != me:
                    return
                self.live = True
            # Events published while this tab was not subscribed are gone: re-read once.
            if jobs:
                await self._refresh_rows(me)
            await self._refresh_alerts(me)
            await self._pump(pubsub, me, alert_channel.encode())
        finally:
            await pubsub.aclose()
            await client.aclose()

    async def _pump(self, pubsub: Any, me: str, alert_channel: bytes) -> None:
        coalescer = Coalescer()
        loop = asyncio.get_running_loop()
        checked = loop.time()
        while True:
            if loop.time() - checked > SESSION_RECHECK:
                # A session revoked or expired while the tab stays open stops the stream.
                if not await self._session_valid():
                    return
                checked = loop.time()
            message = await pubsub.get_message(ignore_subscribe_messages=True,
                                               timeout=coalescer.wait(loop.time()))
            if message is not None and message["channel"] == alert_channel:
                # Alerts change rarely: re-read the banner and list at once.
                await self._refresh_alerts(me)
            elif message is not None and (event := decode(message["data"])) is not None:
                coalescer.add(event)
            batch = coalescer.take(loop.time())
            if batch is not None:
                if not await self._apply(me, *batch):
                    return
                coalescer.owe_summary(batch[1])
            if coalescer.summary_due(loop.time()):
                await self._refresh_summary(me)
            elif message is None and not coalescer.pending and not await self._still_mine(me):
                return

    async def _session_valid(self) -> bool:
        async with self:
            principal, _refusal = await principal_for(self)
            if principal is None:
                self.live = False
            return principal is not None

    async def _still_mine(self, me: str) -> bool:
        async with self:
            return self._watcher == me

    async def _apply(self, me: str, events: dict[int, dict[str, Any]], changed: bool) -> bool:
        """Patch what is on screen; False when a newer task owns this tab."""
        async with self:
            if self._watcher != me:
                return False
            jobs = await self.get_state(JobsState)
            jobs._apply_events(events)
            detail = await self.get_state(JobDetailState)
            reload_detail = detail._apply_events(events, changed)
            unseen = changed and jobs._showing_newest() and bool(events.keys() - jobs._on_screen())
        if unseen:
            await self._refresh_rows(me)
        if reload_detail:
            async with self:
                await (await self.get_state(JobDetailState))._reload()
        return True

    async def _refresh_rows(self, me: str) -> None:
        """A fresh page of jobs (a job this page does not show has appeared)."""
        async with self:
            where, offset = (jobs := await self.get_state(JobsState))._current_filter(), jobs.offset
        page, options = await asyncio.to_thread(_page, where, offset)
        async with self:
            if self._watcher == me:
                jobs = await self.get_state(JobsState)
                if jobs.offset == offset and jobs._current_filter() == where:
                    jobs._show(page, options)

    async def _refresh_alerts(self, me: str) -> None:
        async with self:
            state = await self.get_state(AlertsState)
            status, offset = state.status_filter, state.offset
        snapshot = await asyncio.to_thread(read_alerts, status, offset)
        async with self:
            if self._watcher == me:
                (await self.get_state(AlertsState))._show(snapshot)

    async def _refresh_summary(self, me: str) -> None:
        """Re-read the cards while events arrive (never on a timer)."""
        overview = await asyncio.to_thread(gather_overview)
        async with self:
            if self._watcher == me:
                (await self.get_state(SummaryState))._show(overview)
