"""The Webhooks tab of the sync dashboard (also reachable at /webhooks)."""

from __future__ import annotations

import asyncio

import reflex as rx

from ...services import overview
from ..components.layout import data_table, page_frame
from ..state.session import principal_for


class WebhooksState(rx.State):
    """The subscriptions on screen."""

    rows: list[dict[str, str]] = []

    @rx.event
    async def load(self) -> rx.event.EventSpec | None:
        principal, refusal = await principal_for(self)
        if principal is None:
            self.rows = []
            return refusal
        self.rows = await asyncio.to_thread(overview.list_subscriptions)
        return None


def webhooks_tab() -> rx.Component:
    return data_table(
        WebhooksState.rows,
        [
            ("Name", "name"),
            ("URL", "url"),
            ("Active", "active"),
            ("Failures in a row", "failure_streak"),
        ],
        "No webhook subscriptions yet.",
    )


def webhooks_page() -> rx.Component:
    return page_frame("Webhooks", webhooks_tab())
