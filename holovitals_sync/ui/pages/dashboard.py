"""The dashboard: system health now; jobs, webhooks and conflicts tabs come with their services."""

from __future__ import annotations

import asyncio

import reflex as rx

from ...config import get_settings
from ...services.health import check_health
from ..components.layout import page_frame
from ..state.session import principal_for


class DashboardState(rx.State):
    """What the dashboard shows; rebuilt from the services on every load."""

    status: str = "unknown"
    database_ok: bool = False
    database_error: str = ""
    redis_ok: bool = False
    redis_error: str = ""
    queues: list[dict[str, str]] = []

    @rx.event
    async def load(self) -> rx.event.EventSpec | None:
        principal, refusal = await principal_for(self)
        if principal is None:
            return refusal
        report = await asyncio.to_thread(check_health, get_settings())
        self.status = report.status
        self.database_ok, self.database_error = report.database.ok, report.database.error or ""
        self.redis_ok, self.redis_error = report.redis.ok, report.redis.error or ""
        self.queues = [
            {
                "family": family,
                "workers": str(q.workers),
                "expected": str(q.expected_workers),
                "queued": str(q.queued),
            }
            for family, q in report.queues.items()
        ]
        return None


def _part_card(name: str, ok: rx.Var[bool], error: rx.Var[str]) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(name, size="2", color_scheme="gray"),
            rx.badge(rx.cond(ok, "up", "down"), color_scheme=rx.cond(ok, "green", "red"), size="2"),
            rx.cond(error != "", rx.text(error, size="1", color_scheme="red")),
            spacing="2",
        ),
        id=f"health-{name.lower()}",
        min_width="12em",
    )


def _queue_card(queue: rx.Var[dict[str, str]]) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(queue["family"], weight="bold", size="3"),
            rx.text("workers ", queue["workers"], " / ", queue["expected"], size="2"),
            rx.text("waiting ", queue["queued"], size="2", color_scheme="gray"),
            spacing="1",
        ),
        class_name="queue-card",
        min_width="12em",
    )


def dashboard() -> rx.Component:
    return page_frame(
        "Sync dashboard",
        rx.hstack(
            rx.text("System status:", size="3"),
            rx.badge(DashboardState.status, id="system-status", size="2"),
            rx.button(
                rx.icon("refresh-cw", size=14),
                "Refresh",
                on_click=DashboardState.load,
                variant="soft",
                size="1",
            ),
            align="center",
        ),
        rx.hstack(
            _part_card("Database", DashboardState.database_ok, DashboardState.database_error),
            _part_card("Redis", DashboardState.redis_ok, DashboardState.redis_error),
            spacing="4",
        ),
        rx.heading("Queues", size="4"),
        rx.hstack(rx.foreach(DashboardState.queues, _queue_card), spacing="4", wrap="wrap"),
    )
