"""One Redis subscription per backend process, fanned out to the dashboard tabs it serves.

Workers publish job events, alert changes and change notices on three channels of this
installation's Redis database. A subscription per open tab meant ten tabs, ten Redis
connections each reading and waking for every message; here the first tab that starts
watching on an event loop starts that loop's hub, which subscribes once to all three and
copies each message into the bounded inbox of every registered tab. Tabs pick what their
page shows and coalesce it themselves (ui/state/live.py).

Per event loop rather than per process because asyncio objects belong to one loop: a Reflex
backend process serves all its tabs from one loop (so one subscription per process); a
test runs a loop of its own.

Redis away: the hub tells every tab LOST (the badge says "reconnecting…"), resubscribes with
backoff, and then tells every tab SUBSCRIBED. Whatever was published in between is gone, so
a tab re-reads what it shows on SUBSCRIBED, as it does when it registers (events published
between its page load and its registration are gone too). A tab that falls so far behind
that its inbox fills is told OVERFLOW instead: its waiting messages are dropped and it
re-reads. The hub outlives its last tab by `LINGER` seconds (a reload registers again at
once), then closes its subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import weakref

from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..services import alerts, changes
from ..services.orchestration import events

log = logging.getLogger(__name__)

JOBS, ALERTS, CHANGES = "jobs", "alerts", "changes"
SUBSCRIBED, LOST, OVERFLOW = "subscribed", "lost", "overflow"
INBOX_SIZE = 2000
LINGER = 30.0
READ_TIMEOUT = 1.0
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One message for a tab: a channel's payload, or a change of the subscription."""

    kind: str
    data: bytes = b""
    at: float = 0.0  # the loop's clock when the hub received it


class Inbox:
    """One tab's bounded queue of messages (a tab that falls behind is told to re-read)."""

    def __init__(self, size: int | None = None) -> None:
        self._queue: asyncio.Queue[Message] = asyncio.Queue(size or INBOX_SIZE)
        self._overflowed = False

    def offer(self, message: Message) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self._overflowed = True

    async def take(self, timeout: float) -> list[Message]:
        """What has arrived, waiting up to `timeout` seconds for the first message.

        Everything already queued comes at once, so a tab applies a burst in one go.
        """
        taken: list[Message] = []
        if self._queue.empty() and not self._overflowed and timeout > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    taken.append(await self._queue.get())
        if self._overflowed:
            self._overflowed = False
            while not self._queue.empty():
                self._queue.get_nowait()
            return [Message(OVERFLOW, at=asyncio.get_running_loop().time())]
        while not self._queue.empty():
            taken.append(self._queue.get_nowait())
        return taken


class Hub:
    """The subscription of one event loop and the inboxes of the tabs it serves."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.subscribed = False
        self.subscriptions = 0  # how often it (re)subscribed: one, unless Redis went away
        self._loop = asyncio.get_running_loop()
        self._inboxes: set[Inbox] = set()
        self._idle_since: float | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def tabs(self) -> int:
        return len(self._inboxes)

    def register(self) -> Inbox:
        """A new tab's inbox; it is told SUBSCRIBED at once when the hub already is."""
        inbox = Inbox()
        self._inboxes.add(inbox)
        self._idle_since = None
        if self.subscribed:
            inbox.offer(Message(SUBSCRIBED, at=self._loop.time()))
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._run(), name="live-hub")
        return inbox

    def unregister(self, inbox: Inbox) -> None:
        self._inboxes.discard(inbox)
        if not self._inboxes:
            self._idle_since = self._loop.time()

    def _retired(self) -> bool:
        return (
            not self._inboxes
            and self._idle_since is not None
            and self._loop.time() - self._idle_since > LINGER
        )

    def _broadcast(self, message: Message) -> None:
        for inbox in self._inboxes:
            inbox.offer(message)

    async def _run(self) -> None:
        failures = 0
        while not self._retired():
            before = self.subscriptions
            try:
                await self._follow()
                continue  # retired, unless a tab came back while it was closing
            except (RedisError, OSError) as exc:
                log.info("live updates: subscription lost (%s); resubscribing", type(exc).__name__)
            except Exception as exc:  # anything else must not leave the tabs deaf for good
                log.warning(
                    "live updates: subscription failed (%s); resubscribing", type(exc).__name__
                )
            if self.subscriptions > before:
                failures = 0  # it was up: the backoff starts over
            await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
            failures += 1

    async def _follow(self) -> None:
        """Subscribe and fan messages out until the hub retires (raises when Redis fails)."""
        # No silent retries: a reconnect must be seen, since what was published meanwhile is
        # lost and every tab has to re-read.
        client = aioredis.from_url(self.url, retry=Retry(NoBackoff(), 0))
        pubsub = client.pubsub()
        kinds = {
            alerts.channel_for(client).encode(): ALERTS,
            events.channel_for(client).encode(): JOBS,
            changes.channel_for(client).encode(): CHANGES,
        }
        try:
            await pubsub.subscribe(*kinds)
            confirmed = 0
            while not self._retired():
                message = await pubsub.get_message(timeout=READ_TIMEOUT)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    confirmed += 1
                    if confirmed == len(kinds):  # from here on nothing is missed
                        self.subscribed = True
                        self.subscriptions += 1
                        self._broadcast(Message(SUBSCRIBED, at=self._loop.time()))
                    continue
                kind = kinds.get(message["channel"])
                if kind is not None and message["type"] == "message":
                    self._broadcast(Message(kind, message["data"], self._loop.time()))
        finally:
            # Before any await: a tab registering while this closes must not be told SUBSCRIBED.
            if self.subscribed:
                self.subscribed = False
                self._broadcast(Message(LOST, at=self._loop.time()))  # nobody, when retired
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Hub]] = (
    weakref.WeakKeyDictionary()
)


def hub_for(url: str) -> Hub:
    """The running loop's hub for this Redis URL (created on first use)."""
    hubs = _hubs.setdefault(asyncio.get_running_loop(), {})
    hub = hubs.get(url)
    if hub is None:
        hub = hubs[url] = Hub(url)
    return hub
