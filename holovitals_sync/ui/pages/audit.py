"""The Audit page: who did what, newest first."""

from __future__ import annotations

import asyncio

import reflex as rx

from ...services import overview
from ..components.layout import data_table, page_frame
from ..state.session import principal_for


class AuditState(rx.State):
    """The audit entries on screen."""

    rows: list[dict[str, str]] = []

    @rx.event
    async def load(self) -> rx.event.EventSpec | None:
        principal, refusal = await principal_for(self)
        if principal is None:
            self.rows = []
            return refusal
        self.rows = await asyncio.to_thread(overview.list_audit)
        return None


def audit_table() -> rx.Component:
    return data_table(
        AuditState.rows,
        [("When", "at"), ("Who", "actor"), ("Action", "action"), ("Target", "target")],
        "No audit entries yet.",
    )


def audit_page() -> rx.Component:
    return page_frame("Audit log", audit_table())
