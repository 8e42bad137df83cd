"""The Conflicts tab of the sync dashboard (also reachable at /conflicts)."""

from __future__ import annotations

import asyncio

import reflex as rx

from ...services import overview
from ..components.layout import data_table, page_frame
from ..state.session import principal_for


class ConflictsState(rx.State):
    """The open conflicts on screen."""

    rows: list[dict[str, str]] = []

    @rx.event
    async def load(self) -> rx.event.EventSpec | None:
        principal, refusal = await principal_for(self)
        if principal is None:
            self.rows = []
            return refusal
        self.rows = await asyncio.to_thread(overview.list_open_conflicts)
        return None


def conflicts_tab() -> rx.Component:
    return data_table(
        ConflictsState.rows,
        [
            ("Resource", "resource_type"),
            ("Severity", "severity"),
            ("Elements", "fields"),
            ("Found", "created"),
        ],
        "No open conflicts.",
    )


def conflicts_page() -> rx.Component:
    return page_frame("Conflicts", conflicts_tab())
