"""The open connection's HL7 v2 ADT feed: senders mapped to it (admin), what it is doing.

Roles as in `api/hl7.py`: viewers read, admins map and unmap senders. Nothing shown holds
message content: senders, peers, counts, reasons, control ids, event types and outcomes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from ...models import Role
from ..views import hl7_feeds
from .session import acting, reads, requires

Event = rx.event.EventSpec | list[rx.event.EventSpec] | None
EMPTY: dict[str, Any] = {
    "last": "never",
    "this_minute": "0",
    "bars": [],
    "acks": "",
    "stored": "none",
    "senders": [],
    "rejects": [],
    "messages": [],
}


class HL7FeedState(rx.State):
    """Feeds and activity of one connection (reloaded on open and on refresh)."""

    connection_id: int = 0
    feeds: list[dict[str, str]] = []
    last: str = "never"
    this_minute: str = "0"
    bars: list[dict[str, str]] = []
    acks: str = ""
    stored: str = "none"
    senders: list[dict[str, str]] = []
    rejects: list[dict[str, str]] = []
    messages: list[dict[str, str]] = []
    new_application: str = ""
    new_facility: str = ""

    async def _reload(self) -> None:
        cid = self.connection_id
        self.feeds = await asyncio.to_thread(hl7_feeds.feed_rows, cid)
        try:
            view = await asyncio.to_thread(hl7_feeds.activity, cid)
        except Exception:  # noqa: BLE001 - Redis away: the feeds still show
            view = EMPTY
        for name in EMPTY:
            setattr(self, name, view[name])

    def _forget(self) -> None:
        """Refused (signed out): the feeds shown do not stay in the tab's state."""
        self.feeds = []

    @rx.event
    @reads(on_refusal=_forget)
    async def load_for(self, connection_id: int) -> Event:
        self.connection_id = connection_id
        if connection_id:
            await self._reload()
        return None

    @rx.event
    @reads()
    async def refresh(self) -> Event:
        if not self.connection_id:
            return None
        await self._reload()
        return None

    @rx.event
    def set_new_application(self, value: str) -> None:
        self.new_application = value[:180]

    @rx.event
    def set_new_facility(self, value: str) -> None:
        self.new_facility = value[:180]

    @rx.event
    @requires(Role.ADMIN)
    async def add_feed(self) -> Event:
        if not self.connection_id:
            return None
        problem = await asyncio.to_thread(
            hl7_feeds.add,
            self.connection_id,
            self.new_application,
            self.new_facility,
            acting().actor,
        )
        if problem:
            return rx.toast.error(problem)
        self.new_application, self.new_facility = "", ""
        await self._reload()
        return rx.toast.success("Sender mapped to this connection.")

    @rx.event
    @requires(Role.ADMIN)
    async def remove_feed(self, feed_id: str) -> Event:
        if not self.connection_id:
            return None
        problem = await asyncio.to_thread(
            hl7_feeds.remove, self.connection_id, int(feed_id), acting().actor
        )
        await self._reload()
        return rx.toast.error(problem) if problem else rx.toast.success("Sender unmapped.")
