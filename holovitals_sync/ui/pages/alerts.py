"""The alerts page (/alerts) and the dashboard's banner of open alerts."""

from __future__ import annotations

import reflex as rx

from ...models import AlertStatus
from ..components.layout import empty_state, operator_only, page_frame
from ..state.alerts import ANY, AlertRow, AlertsState
from ..state.live import LiveState

SEVERITY_COLOURS = {"high": "red", "medium": "amber", "low": "gray"}
ON_LOAD = [AlertsState.load, LiveState.watch_alerts]


def severity_badge(severity: rx.Var[str]) -> rx.Component:
    return rx.badge(severity, color_scheme=rx.match(severity, *SEVERITY_COLOURS.items(), "gray"))


def _banner_line(alert: AlertRow) -> rx.Component:
    # Long names and messages wrap inside the banner instead of widening the page.
    return rx.text(
        severity_badge(alert.severity),
        " ",
        rx.text.strong(alert.title),
        " — ",
        alert.message,
        size="2",
        overflow_wrap="anywhere",
        title=alert.subject,
        class_name="alerts-banner-line",
    )


def alerts_banner() -> rx.Component:
    """Open alerts above the dashboard's cards; nothing at all when there are none."""
    return rx.cond(
        AlertsState.open_count > 0,
        rx.callout.root(
            rx.callout.icon(rx.icon("bell-ring")),
            rx.vstack(
                rx.hstack(
                    rx.text(AlertsState.open_text, weight="bold"),
                    rx.link("View alerts", href="/alerts", id="alerts-banner-link"),
                    spacing="3",
                ),
                rx.foreach(AlertsState.banner, _banner_line),
                spacing="1", min_width="0",
            ),
            color_scheme="red", width="100%", id="alerts-banner",
        ),
    )  # fmt: skip


def _row(alert: AlertRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(severity_badge(alert.severity)),
        rx.table.cell(rx.text(alert.kind_label, title=alert.kind, size="2")),
        rx.table.cell(rx.vstack(
            rx.text(alert.title, weight="medium", size="2", title=alert.subject,
                    class_name="alert-title"),
            rx.text(alert.message, size="1", color_scheme="gray"),
            spacing="0")),
        rx.table.cell(alert.raised),
        rx.table.cell(rx.vstack(
            rx.badge(alert.status, variant="soft"),
            rx.cond(alert.acknowledged_by != "",
                    rx.text("by ", alert.acknowledged_by, size="1", color_scheme="gray")),
            spacing="1")),
        rx.table.cell(operator_only(rx.cond(
            alert.status == AlertStatus.OPEN.value,
            rx.button("Acknowledge", size="1", variant="soft",
                      on_click=AlertsState.acknowledge(alert.id), class_name="alert-ack")))),
        class_name="alert-row", id=f"alert-row-{alert.id}",
    )  # fmt: skip


def _table() -> rx.Component:
    headers = ["Severity", "Kind", "What", "Raised (UTC)", "Status", ""]
    return rx.cond(
        AlertsState.rows.length() > 0,
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
            rx.table.body(rx.foreach(AlertsState.rows, _row)),
            width="100%", variant="surface", size="1",
        ),
        empty_state("No alerts here."),
    )  # fmt: skip


def alerts_page() -> rx.Component:
    return page_frame(
        "Alerts",
        rx.hstack(
            rx.text("Status", size="2"),
            rx.select([s.value for s in AlertStatus] + [ANY], value=AlertsState.status_filter,
                      on_change=AlertsState.filter_status, id="alerts-filter"),
            align="center", spacing="2",
        ),
        _table(),
        rx.hstack(
            rx.button("Previous", size="1", variant="soft", on_click=AlertsState.page(-1),
                      disabled=AlertsState.offset == 0),
            rx.button("Next", size="1", variant="soft", on_click=AlertsState.page(1),
                      disabled=~AlertsState.has_next),
            spacing="2",
        ),
    )  # fmt: skip
