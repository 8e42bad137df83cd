"""Live updates: a background task per open tab, fed by its backend process's one subscription.

Workers publish job events on `holovitals:jobs:db<N>`, alert changes on
`holovitals:alerts:db<N>`, and every commit that touches conflicts or webhook rows a change
notice on `holovitals:changes:db<N>` (services/changes.py). One subscription per backend
process receives them all (ui/live_hub.py) and hands each message to every tab it serves.
The task a page's on_load starts registers this tab with that hub, takes what the page
shows, keeps only the newest event per job, and applies it to the rows on screen.

Coalescing: each `async with self` is one websocket frame, and more than ~4 a second would
only cost bandwidth, so rows change once per `FLUSH_INTERVAL` in the long run (a token
bucket). After a quiet spell the first `FLUSH_BURST` flushes go at once (leading edge: a
job's start, its first batch and its end come close together and each matters); only a
longer burst waits, so the window costs latency only when there is a burst to calm. Change notices
re-read the Conflicts and Webhooks lists on screen, at most every `LIST_INTERVAL` (the last
notice of a burst always gets its re-read). Nothing here polls the database; the summary
cards are re-read on events, at most every `SUMMARY_INTERVAL`. Reads every tab would repeat
(the cards, the same page of a list) are shared per process (ui/shared_reads.py), so ten
tabs cost the database about what one does.

When the hub loses Redis the badge says "reconnecting…"; once it has resubscribed, and
whenever this tab registers or falls behind, the tab re-reads everything it shows: events
published meanwhile are gone.

Reflex cancels the task with its page-load chain when the tab closes, navigates away or
reconnects; a reconnect (also after a backend restart) runs on_load again, which starts a
fresh task. A newer task for the same tab also retires an older one (`watcher` id).

What this task may call on the other states, and which lists it re-reads with which read,
is declared in following.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import math
import uuid
from collections.abc import Collection
from typing import Any

import orjson
import reflex as rx

from ...config import get_settings
from ...services import changes
from .. import live_hub, shared_reads
from .following import ALERTS, JOB_ROWS, LISTS, Followed, JobDialog, JobRows
from .job_detail import JobDetailState
from .jobs import JobsState, SummaryState, gather_overview
from .session import principal_for, reads

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.25  # rows change at most 4 times a second, in the long run
FLUSH_BURST = 3  # ...and up to this many flushes after a quiet spell go at once
SUMMARY_INTERVAL = 3.0
STATE_SUMMARY_INTERVAL = 1.0
LIST_INTERVAL = 1.0
IDLE_CHECK = 2.0
SESSION_RECHECK = 30.0
WAKE = "wake"  # to the tab's own inbox: its cards were re-read
RETRY_DELAY = 2.0  # after a failed re-read, before following again


class Coalescer:
    """The newest event per job since the last flush, and when the next flush may happen.

    Times are the event loop's clock. `*_since` say when what is owed went stale (the
    arrival of the newest event behind it): a shared read started after that is fresh
    enough to pay it.
    """

    def __init__(self, interval: float = FLUSH_INTERVAL, burst: int = FLUSH_BURST) -> None:
        self.interval = interval
        self.burst = burst
        self.pending: dict[int, dict[str, Any]] = {}
        self.pending_since = -math.inf
        self.state_changed = False
        self._tokens = float(burst)
        self._refilled = -math.inf
        self._last_summary = -math.inf
        self._summary_owed = False
        self._summary_interval = SUMMARY_INTERVAL
        self.summary_since = -math.inf
        self.topics: set[str] = set()
        self.topics_since = -math.inf
        self._last_lists = -math.inf

    def add(self, event: dict[str, Any], at: float = -math.inf) -> None:
        job_id = event.get("job_id")
        if not isinstance(job_id, int):
            return
        # Every event carries the whole status and counters: the newest one is enough.
        self.pending[job_id] = event
        self.pending_since = max(self.pending_since, at)
        self.state_changed |= event.get("event") == "state"

    def wait(self, now: float, *, summary: bool = True) -> float:
        """Seconds to wait for more events before the next flush, summary or idle check.

        summary=False: a summary re-read is running, so one owed cannot start yet.
        """
        waits = [IDLE_CHECK]
        if self.pending:
            waits.append((1.0 - self._tokens_at(now)) * self.interval)
        if self._summary_owed and summary:
            waits.append(self._last_summary + self._summary_interval - now)
        if self.topics:
            waits.append(self._last_lists + LIST_INTERVAL - now)
        return max(0.0, min(waits))

    def add_topics(self, topics: set[str], at: float = -math.inf) -> None:
        """A change notice: these lists are stale."""
        if topics:
            self.topics |= topics
            self.topics_since = max(self.topics_since, at)

    def take_topics(self, now: float) -> set[str]:
        """The lists to re-read now: none when nothing changed or one was re-read too lately.

        The first notice after a quiet spell is re-read at once; the rest of a burst waits
        for the interval and is re-read once.
        """
        if not self.topics or now - self._last_lists < LIST_INTERVAL:
            return set()
        topics, self.topics, self._last_lists = self.topics, set(), now
        return topics

    def _tokens_at(self, now: float) -> float:
        """Flushes allowed now: one more every `interval`, at most `burst` saved up."""
        return min(float(self.burst), self._tokens + (now - self._refilled) / self.interval)

    def take(self, now: float) -> tuple[dict[int, dict[str, Any]], bool] | None:
        """The events to apply now, or None when nothing is pending or it is too soon.

        Leading edge: after a quiet spell up to `burst` flushes go at once (a job's start,
        its first batch, its end); only a longer burst waits, one flush per `interval`.
        """
        tokens = self._tokens_at(now)
        if not self.pending or tokens < 1.0:
            return None
        self._tokens, self._refilled = tokens - 1.0, now
        events, changed = self.pending, self.state_changed
        self.pending, self.state_changed = {}, False
        return events, changed

    def owe_summary(self, changed: bool, at: float = -math.inf) -> None:
        """Events were applied: the cards are stale (a status change makes that urgent)."""
        interval = STATE_SUMMARY_INTERVAL if changed else SUMMARY_INTERVAL
        if not self._summary_owed or interval < self._summary_interval:
            self._summary_interval = interval
        self._summary_owed = True
        self.summary_since = max(self.summary_since, at)

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

    def clear(self) -> None:
        """Everything shown is being re-read: nothing pending is owed any more."""
        self.pending, self.state_changed = {}, False
        self.topics = set()
        self._summary_owed = False
        self._summary_interval = SUMMARY_INTERVAL


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

    @property
    def shown(self) -> frozenset[str]:
        """The keys in `following.LISTS` of every list on screen (to re-read them all)."""
        return (self.lists | {ALERTS}) if self.alerts else self.lists


DASHBOARD = Follow(jobs=True, alerts=True, lists=frozenset({changes.CONFLICTS, changes.WEBHOOKS}))
ALERTS_PAGE = Follow(alerts=True)
CONFLICTS_PAGE = Follow(lists=frozenset({changes.CONFLICTS}))
WEBHOOKS_PAGE = Follow(lists=frozenset({changes.WEBHOOKS}))


@dataclasses.dataclass
class Taken:
    """What one batch of messages asks of a tab."""

    live: bool | None = None  # the subscription was lost (False) or is back (True)
    resync: float | None = None  # re-read everything shown (the loop time it was asked)
    alerts: float | None = None  # re-read the alerts (when they changed)


def sort(
    messages: list[live_hub.Message], follow: Follow, coalescer: Coalescer, subscribed: bool
) -> Taken:
    """File a batch of hub messages: job events and list notices into the coalescer, the
    rest into what to do now."""
    taken = Taken()
    for message in messages:
        if message.kind == live_hub.LOST:
            taken.live, taken.resync = False, None  # the next SUBSCRIBED re-reads
        elif message.kind in (live_hub.SUBSCRIBED, live_hub.OVERFLOW):
            taken.live = subscribed if message.kind == live_hub.OVERFLOW else True
            taken.resync = message.at
        elif message.kind == live_hub.ALERTS and follow.alerts:
            taken.alerts = message.at
        elif message.kind == live_hub.CHANGES:
            topics = changes.topics_of(message.data)
            coalescer.add_topics(topics & follow.lists, message.at)
            if follow.jobs and changes.CONFLICTS in topics:
                coalescer.owe_summary(True, message.at)  # the open-conflicts card counts them
        elif (
            message.kind == live_hub.JOBS
            and follow.jobs
            and (event := decode(message.data)) is not None
        ):
            coalescer.add(event, message.at)
    return taken


def _cards_read(inbox: live_hub.Inbox, task: asyncio.Task[None]) -> None:
    """The tab's cards were re-read (or that failed): wake its loop, one may be owed."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("live updates: the cards were not re-read: %s", type(exc).__name__)
    inbox.offer(live_hub.Message(WAKE))


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
        """For the `watch*` handlers, whose `@reads` has checked the session."""
        async with self:
            me = self._watcher = uuid.uuid4().hex
        url = get_settings().redis_url
        if url is None:
            return None
        hub = live_hub.hub_for(url)
        while True:
            inbox = hub.register()
            try:
                await self._pump(hub, inbox, me, follow)
                return None  # superseded by a newer task of this tab, or signed out
            except Exception as exc:  # a re-read failed (the database away): show it, go on
                log.warning("live updates: %s; following again", type(exc).__name__)
            finally:
                hub.unregister(inbox)
            if not await self._set_live(me, False):
                return None
            await asyncio.sleep(RETRY_DELAY)  # registering again re-reads everything shown

    async def _pump(
        self, hub: live_hub.Hub, inbox: live_hub.Inbox, me: str, follow: Follow
    ) -> None:
        """Apply what the hub hands this tab until a newer task takes it over.

        The cards are re-read beside this loop (`cards`): their read also asks Redis, and
        while Redis is away it takes seconds, which must not hold up rows or the badge.
        """
        coalescer = Coalescer()
        loop = asyncio.get_running_loop()
        checked = loop.time()
        cards: asyncio.Task[None] | None = None
        try:
            while True:
                if loop.time() - checked > SESSION_RECHECK:
                    # A session revoked or expired while the tab stays open stops the stream.
                    if not await self._session_valid():
                        return
                    checked = loop.time()
                reading = cards is not None and not cards.done()
                messages = await inbox.take(coalescer.wait(loop.time(), summary=not reading))
                taken = sort(messages, follow, coalescer, hub.subscribed)
                if taken.live is not None and not await self._set_live(me, taken.live):
                    return
                if taken.resync is not None:
                    coalescer.clear()
                    if not await self._resync(me, follow, taken.resync):
                        return
                    if follow.jobs:
                        coalescer.owe_summary(True, taken.resync)
                elif taken.alerts is not None:
                    # Alerts change rarely: re-read the banner and list at once.
                    await self._refresh_lists(me, {ALERTS}, taken.alerts)
                since = coalescer.pending_since
                batch = coalescer.take(loop.time())
                if batch is not None:
                    if not await self._apply(me, *batch, since):
                        return
                    coalescer.owe_summary(batch[1], since)
                if topics := coalescer.take_topics(loop.time()):
                    await self._refresh_lists(me, topics, coalescer.topics_since)
                if follow.jobs and not reading and coalescer.summary_due(loop.time()):
                    cards = asyncio.ensure_future(
                        self._refresh_summary(me, coalescer.summary_since)
                    )
                    cards.add_done_callback(functools.partial(_cards_read, inbox))
                elif not messages and not coalescer.pending and not await self._still_mine(me):
                    return
        finally:
            if cards is not None:
                cards.cancel()

    async def _session_valid(self) -> bool:
        # Not a handler: the task outlives the check its `@reads` made, so check again here.
        async with self:
            principal, _refusal = await principal_for(self)
            if principal is None:
                self.live = False
            return principal is not None

    async def _still_mine(self, me: str) -> bool:
        async with self:
            return self._watcher == me

    async def _set_live(self, me: str, live: bool) -> bool:
        """Show the subscription's state; False when a newer task owns this tab."""
        async with self:
            if self._watcher != me:
                return False
            self.live = live
            return True

    async def _resync(self, me: str, follow: Follow, since: float) -> bool:
        """Re-read everything this page shows (events may have been missed); the cards are
        owed by the caller."""
        if follow.jobs:
            await self._refresh(me, JOB_ROWS, since)
            async with self:
                detail: JobDialog = await self.get_state(JobDetailState)
                if detail.open:
                    await detail._reload()
        await self._refresh_lists(me, follow.shown, since)
        return await self._still_mine(me)

    async def _apply(
        self, me: str, events: dict[int, dict[str, Any]], changed: bool, since: float
    ) -> bool:
        """Patch what is on screen; False when a newer task owns this tab."""
        async with self:
            if self._watcher != me:
                return False
            rows: JobRows = await self.get_state(JobsState)
            rows._apply_events(events)
            detail: JobDialog = await self.get_state(JobDetailState)
            reload_detail = detail._apply_events(events, changed)
            unseen = changed and rows._showing_newest() and bool(events.keys() - rows._on_screen())
        if unseen:  # a job this page does not show has appeared: a fresh page
            await self._refresh(me, JOB_ROWS, since)
        if reload_detail:
            async with self:
                detail = await self.get_state(JobDetailState)
                await detail._reload()
        return True

    async def _refresh_lists(self, me: str, keys: Collection[str], since: float) -> None:
        """Re-read the lists on screen that `keys` name (`following.LISTS`), in its order."""
        for key, followed in LISTS.items():
            if key in keys:
                await self._refresh(me, followed, since)

    async def _refresh(self, me: str, followed: Followed[Any, Any], since: float) -> None:
        """Re-read one list on screen, filters and cursors kept.

        The read runs outside `async with self`, so the tab is not locked while it waits for
        the database; what it found is shown only if this task still owns the tab and the tab
        still shows that query (else the handler that moved it has read the newer one).
        """
        async with self:
            query = (await followed.on(self))._query()
        found = await shared_reads.read(followed.read, query, since=since)
        async with self:
            if self._watcher != me:
                return
            state = await followed.on(self)
            if state._query() == query:
                state._show(found)

    async def _refresh_summary(self, me: str, since: float) -> None:
        """Re-read the cards while events arrive (never on a timer; shared per process)."""
        overview = await shared_reads.read(gather_overview, since=since)
        async with self:
            if self._watcher == me:
                (await self.get_state(SummaryState))._show(overview)
