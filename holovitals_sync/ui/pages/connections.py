"""The Connections page: every EHR connection, its vendor and state."""

from __future__ import annotations

import asyncio

import reflex as rx

from ...services import overview
from ..components.layout import data_table, page_frame
from ..state.session import principal_for


class ConnectionsState(rx.State):
    """The connections listed on the page."""

    rows: list[dict[str, str]] = []

    @rx.event
    async def load(self) -> rx.event.EventSpec | None:
        principal, refusal = await principal_for(self)
        if principal is None:
            self.rows = []
            return refusal
        self.rows = await asyncio.to_thread(overview.list_connections)
        return None


def connections_table() -> rx.Component:
    return data_table(
        ConnectionsState.rows,
        [
            ("Name", "name"),
            ("Vendor", "vendor"),
            ("Status", "status"),
            ("Last sync", "last_synced"),
        ],
        "No EHR connections yet.",
    )


def connections_page() -> rx.Component:
    return page_frame("Connections", connections_table())
