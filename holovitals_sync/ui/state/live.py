"""Live updates: a background task per open tab, fed by Redis pub/sub.

Workers publish job events on `holovitals:jobs:db<N>`, alert changes on
`holovitals:alerts:db<N>`, and every commit that touches conflicts or webhook rows a change
notice on `holovitals:changes:db<N>` (services/changes.py). The task started by a page's
on_load subscribes to what that page shows, keeps only the newest event per job, and applies
them to the rows on screen at most `FLUSH_INTERVAL` apart: each `async with self` is one
websocket frame, and more than ~4 a second would only cost bandwidth. Change notices re-read
the Conflicts and Webhooks lists on screen, at most every `LIST_INTERVAL` (the last notice
of a burst always gets its re-read). Nothing here polls the database; the summary cards are
re-read on events, at most every `SUMMARY_INTERVAL`.

Reflex cancels the task with its page-load chain when the tab closes, navigates away or
reconnects; a reconnect (also after a backend restart) runs on_load again, which starts a
fresh task. A newer task for the same tab also retires an older one (`watcher` id).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import uuid
from typing import Any

import orjson
import reflex as rx
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from ...config import get_settings
from ...services import alerts, changes
from ...services.orchestration.events import channel_for
from ..pages.jobs_detail import JobDetailState
from . import conflicts as conflict_lists
from . import webhooks as webhook_lists
from .alerts import AlertsState
from .alerts import read as read_alerts
from .jobs import JobsState, SummaryState, _page, gather_overview
from .session import principal_for, reads

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.25
SUMMARY_INTERVAL = 3.0
STATE_SUMMARY_INTERVAL = 1.0
LIST_INTERVAL = 1.0
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
        self.topics: set[str] = set()
        self._last_lists = -math.inf

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
        if self.topics:
            waits.append(self._last_lists + LIST_INTERVAL - now)
        return max(0.0, min(waits))

    def add_topics(self, topics: set[str]) -> None:
        """A change notice: these lists are stale."""
        self.topics |= topics

    def take_topics(self, now: float) -> set[str]:
        """The lists to re-read now: none when nothing changed or one was re-read too lately.

        The first notice after a quiet spell is re-read at once; the rest of a burst waits
        for the interval and is re-read once.
        """
        if not self.topics or now - self._last_lists < LIST_INTERVAL:
            return set()
        topics, self.topics, self._last_lists = self.topics, set(), now
        return topics

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


@dataclasses.dataclass(frozen=True)
class Channels:
    """The three channels of this installation's Redis database."""

    alerts: str
    jobs: str
    changes: str

    def wanted(self, follow: Follow) -> list[str]:
        wanted = [(follow.alerts, self.alerts), (follow.jobs, self.jobs),
                  (bool(follow.lists), self.changes)]
        return [channel for on, channel in wanted if on]


def decode(data: bytes | str) -> dict[str, Any] | None:
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


@dataclasses.dataclass(frozen=True)
class Follow:
    """What one page shows live."""

    jobs: bool = False  # job rows, the job detail dialog and the cards
    alerts: bool = False  # the banner and the alerts list
    lists: frozenset[str] = frozenset()  # change topics of the lists on screen


DASHBOARD = Follow(jobs=True, alerts=True, lists=frozenset({changes.CONFLICTS, changes.WEBHOOKS}))
ALERTS_PAGE = Follow(alerts=True)
CONFLICTS_PAGE = Follow(lists=frozenset({changes.CONFLICTS}))
WEBHOOKS_PAGE = Follow(lists=frozenset({changes.WEBHOOKS}))


class LiveState(rx.State):
    """Whether this tab is following live events, and which task does it."""

    live: bool = False
    _watcher: str = ""

    @rx.event(background=True)
    @reads()
    async def watch(self) -> rx.event.EventSpec | None:
        """The dashboard: jobs for the rows and cards, alerts for the banner, the tabs' lists."""
        return await self._watch(DASHBOARD)

    @rx.event(background=True)
    @reads()
    async def watch_alerts(self) -> rx.event.EventSpec | None:
        """The alerts page: alert events only."""
        return await self._watch(ALERTS_PAGE)

    @rx.event(background=True)
    @reads()
    async def watch_conflicts(self) -> rx.event.EventSpec | None:
        """The conflicts page: conflict change notices."""
        return await self._watch(CONFLICTS_PAGE)

    @rx.event(background=True)
    @reads()
    async def watch_webhooks(self) -> rx.event.EventSpec | None:
        """The webhooks page: subscription, delivery and inbound change notices."""
        return await self._watch(WEBHOOKS_PAGE)

    async def _watch(self, follow: Follow) -> rx.event.EventSpec | None:
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
                await self._follow(url, me, follow)
                return None  # superseded by a newer task of this tab
            except (RedisError, OSError) as exc:
                log.info("job events: subscription lost (%s); resubscribing", type(exc).__name__)
                async with self:
                    if self._watcher != me:
                        return None
                    self.live = False
                await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
                failures += 1

    async def _follow(self, url: str, me: str, follow: Follow) -> None:
        """Subscribe and apply events until a newer task takes over this tab."""
        client = aioredis.from_url(url)
        pubsub = client.pubsub()
        channels = Channels(alerts.channel_for(client), channel_for(client),
                            changes.channel_for(client))
        try:
            await pubsub.subscribe(*channels.wanted(follow))
            async with self:
                if self._watcher != me:
                    return
                self.live = True
            # Events published while this tab was not subscribed are gone: re-read once.
            if follow.jobs:
                await self._refresh_rows(me)
            if follow.alerts:
                await self._refresh_alerts(me)
            await self._refresh_lists(me, set(follow.lists))
            await self._pump(pubsub, me, channels, follow)
        finally:
            await pubsub.aclose()
            await client.aclose()

    async def _pump(self, pubsub: Any, me: str, channels: Channels, follow: Follow) -> None:
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
            channel = message["channel"].decode() if message is not None else ""
            if channel == channels.alerts:
                # Alerts change rarely: re-read the banner and list at once.
                await self._refresh_alerts(me)
            elif channel == channels.changes:
                topics = changes.topics_of(message["data"])
                coalescer.add_topics(topics & follow.lists)
                if follow.jobs and changes.CONFLICTS in topics:
                    coalescer.owe_summary(True)  # the open-conflicts card counts them
            elif message is not None and (event := decode(message["data"])) is not None:
                coalescer.add(event)
            batch = coalescer.take(loop.time())
            if batch is not None:
                if not await self._apply(me, *batch):
                    return
                coalescer.owe_summary(batch[1])
            if topics := coalescer.take_topics(loop.time()):
                await self._refresh_lists(me, topics)
            if follow.jobs and coalescer.summary_due(loop.time()):
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

    async def _refresh_lists(self, me: str, topics: set[str]) -> None:
        """Re-read the Conflicts and Webhooks pages on screen (filters and cursors kept)."""
        if changes.CONFLICTS in topics:
            async with self:
                query = (await self.get_state(conflict_lists.ConflictsState))._query()
            found = await asyncio.to_thread(conflict_lists._page, *query)
            async with self:
                state = await self.get_state(conflict_lists.ConflictsState)
                if self._watcher == me and state._query() == query:
                    state._show(found)
        if changes.WEBHOOKS in topics:
            async with self:
                cursors = (await self.get_state(webhook_lists.WebhooksState))._cursors()
            snapshot = await asyncio.to_thread(webhook_lists.read, cursors)
            async with self:
                state = await self.get_state(webhook_lists.WebhooksState)
                if self._watcher == me and state._cursors() == cursors:
                    state._show(snapshot)

    async def _refresh_summary(self, me: str) -> None:
        """Re-read the cards while events arrive (never on a timer)."""
        overview = await asyncio.to_thread(gather_overview)
        async with self:
            if self._watcher == me:
                (await self.get_state(SummaryState))._show(overview)
