"""Connections, Webhooks, Conflicts and Audit pages: live lists from the services.

Each page grows its forms and modals in its own issue; they share this listing pattern.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import reflex as rx

from ...services import overview
from ..components.layout import data_table, page_frame
from ..state.session import principal_for


class ListingState(rx.State):
    """The rows of whichever listing page is open (rebuilt from the database on load)."""

    rows: list[dict[str, str]] = []

    async def _load(self, fetch: Callable[[], list[dict[str, str]]]) -> rx.event.EventSpec | None:
        principal, refusal = await principal_for(self)
        if principal is None:
            self.rows = []
            return refusal
        self.rows = await asyncio.to_thread(fetch)
        return None

    @rx.event
    async def load_connections(self) -> rx.event.EventSpec | None:
        return await self._load(overview.list_connections)

    @rx.event
    async def load_webhooks(self) -> rx.event.EventSpec | None:
        return await self._load(overview.list_subscriptions)

    @rx.event
    async def load_conflicts(self) -> rx.event.EventSpec | None:
        return await self._load(overview.list_open_conflicts)

    @rx.event
    async def load_audit(self) -> rx.event.EventSpec | None:
        return await self._load(overview.list_audit)


def connections() -> rx.Component:
    return page_frame(
        "Connections",
        data_table(
            ListingState.rows,
            [
                ("Name", "name"),
                ("Vendor", "vendor"),
                ("Status", "status"),
                ("Last sync", "last_synced"),
            ],
            "No EHR connections yet.",
        ),
    )


def webhooks() -> rx.Component:
    return page_frame(
        "Webhooks",
        data_table(
            ListingState.rows,
            [
                ("Name", "name"),
                ("URL", "url"),
                ("Active", "active"),
                ("Failures in a row", "failure_streak"),
            ],
            "No webhook subscriptions yet.",
        ),
    )


def conflicts() -> rx.Component:
    return page_frame(
        "Conflicts",
        data_table(
            ListingState.rows,
            [
                ("Resource", "resource_type"),
                ("Severity", "severity"),
                ("Elements", "fields"),
                ("Found", "created"),
            ],
            "No open conflicts.",
        ),
    )


def audit() -> rx.Component:
    return page_frame(
        "Audit log",
        data_table(
            ListingState.rows,
            [("When", "at"), ("Who", "actor"), ("Action", "action"), ("Target", "target")],
            "No audit entries yet.",
        ),
    )
