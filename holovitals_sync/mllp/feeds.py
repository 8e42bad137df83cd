"""Which connection a sender's messages belong to, kept in memory by the listener.

Looked up for every message (the hot path), so the table is read into a dict and read again
every `REFRESH_SECONDS` on a worker thread: a feed added on the connection page takes effect
within seconds, without the listener asking the database per message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import NamedTuple

from sqlmodel import select

from ..db import session_scope
from ..models import HL7Feed

log = logging.getLogger(__name__)
REFRESH_SECONDS = 5.0
# A sender not found is looked for again in the database, at most this often: a feed just
# added takes its first message, and a flood of strangers costs one read a second.
MISS_REFRESH_SECONDS = 0.25


class FeedTarget(NamedTuple):
    connection_id: int
    feed_id: int


def load_feeds() -> dict[tuple[str, str], FeedTarget]:
    """(sending application, facility or "") -> the feed's connection."""
    with session_scope() as session:
        return {
            (f.sending_application, f.sending_facility): FeedTarget(f.connection_id, f.id)
            for f in session.exec(select(HL7Feed))
        }


class FeedMap:
    """The feeds, refreshed in the background."""

    def __init__(self) -> None:
        self._feeds: dict[tuple[str, str], FeedTarget] = {}
        self._loaded_at = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    async def load(self) -> None:
        self._feeds = await asyncio.to_thread(load_feeds)
        self._loaded_at = time.monotonic()

    def lookup(self, application: str, facility: str) -> FeedTarget | None:
        """The feed for this sender: its own facility first, then "any facility"."""
        if time.monotonic() - self._loaded_at > REFRESH_SECONDS and (
            self._refreshing is None or self._refreshing.done()
        ):
            self._refreshing = asyncio.create_task(self._refresh())
        return self._feeds.get((application, facility)) or self._feeds.get((application, ""))

    async def find(self, application: str, facility: str) -> FeedTarget | None:
        """`lookup`, reading the table again first when the sender is not known."""
        found = self.lookup(application, facility)
        if found is None and time.monotonic() - self._loaded_at > MISS_REFRESH_SECONDS:
            await self._refresh()
            found = self.lookup(application, facility)
        return found

    async def _refresh(self) -> None:
        try:
            await self.load()
        except Exception as exc:  # keep serving with the feeds known; try again later
            self._loaded_at = time.monotonic()
            log.warning("HL7 feeds not reloaded: %s", type(exc).__name__)
