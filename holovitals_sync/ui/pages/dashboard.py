"""The sync dashboard: health, queue cards, summary figures, throughput, and three tabs."""

from __future__ import annotations

import reflex as rx
from reflex_components_core.core.banner import has_connection_errors

from ..components.layout import page_frame
from ..state.alerts import AlertsState
from ..state.jobs import JobsState, QueueCard, SummaryState
from ..state.live import LiveState
from .alerts import alerts_banner
from .conflicts_tab import ConflictsState, conflicts_tab
from .jobs import jobs_tab
from .webhooks_tab import WebhooksState, webhooks_tab

# The page's on_load after the sign-in guard; the watcher comes last so the rows it
# patches are already on screen.
ON_LOAD = [
    SummaryState.load,
    JobsState.load,
    WebhooksState.load,
    ConflictsState.load,
    AlertsState.load,
    LiveState.watch,
]


# What the page knows right now: nothing yet ("checking…"), nothing at all while the
# browser cannot reach the server ("unknown": the last answer may be stale), or a report.
KNOWN = SummaryState.checked & ~has_connection_errors


def _unknown_word() -> rx.Var:
    return rx.cond(has_connection_errors, "unknown", "checking…")


def _part_card(name: str, ok: rx.Var[bool], error: rx.Var[str]) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(name, size="2", color_scheme="gray"),
            rx.badge(
                rx.cond(KNOWN, rx.cond(ok, "up", "down"), _unknown_word()),
                color_scheme=rx.cond(KNOWN, rx.cond(ok, "green", "red"), "gray"),
                size="2",
                class_name="health-state",
            ),
            rx.cond(KNOWN & (error != ""), rx.text(error, size="1", color_scheme="red")),
            spacing="2",
        ),
        id=f"health-{name.lower()}",
        min_width="10em",
    )


def _figure(label: str, value: rx.Var, colour: str = "gray") -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color_scheme="gray"),
        rx.text(value, size="3", weight="bold", color_scheme=colour),
        spacing="0", align="center",
    )  # fmt: skip


def _queue_card(queue: QueueCard) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(rx.text(queue.family, weight="bold", size="3"), rx.spacer(),
                      rx.text(queue.workers, "/", queue.expected, " workers", size="1",
                              color_scheme="gray"), width="100%"),
            rx.hstack(_figure("waiting", queue.waiting), _figure("running", queue.running, "amber"),
                      _figure("completed", queue.completed, "green"),
                      _figure("failed", queue.failed, "red"), spacing="4"),
            spacing="2",
        ),
        class_name="queue-card", id=f"queue-{queue.family}", min_width="15em",
    )  # fmt: skip


def _stat_card(label: str, value: rx.Component, ident: str) -> rx.Component:
    return rx.card(rx.vstack(rx.text(label, size="2", color_scheme="gray"), value, spacing="1"),
                   id=ident, min_width="12em")  # fmt: skip


def _summary_cards() -> rx.Component:
    conflicts = rx.hstack(
        rx.badge("high ", SummaryState.conflicts_high, color_scheme="red", size="2"),
        rx.badge("medium ", SummaryState.conflicts_medium, color_scheme="amber", size="2"),
        rx.badge("low ", SummaryState.conflicts_low, color_scheme="gray", size="2"),
        spacing="2",
    )
    return rx.hstack(
        _stat_card("Records synced today",
                   rx.heading(SummaryState.records_today, size="6"), "records-today"),
        _stat_card("Average job duration",
                   rx.heading(SummaryState.average_duration, size="6"), "average-duration"),
        _stat_card("Open conflicts", conflicts, "open-conflicts"),
        spacing="4", wrap="wrap",
    )  # fmt: skip


# Recharts calls this per bar: a minute with records gets at least a few pixels, so 50
# records stay visible next to 2,200; an empty minute stays empty.
MIN_BAR_HEIGHT = rx.Var("((value) => (value > 0 ? 4 : 0))")


def _throughput_chart() -> rx.Component:
    return rx.card(
        rx.text("Records synced per minute, last hour (UTC)", size="2", color_scheme="gray"),
        rx.recharts.bar_chart(
            rx.recharts.bar(data_key="records", name="records", fill=rx.color("accent", 9),
                            is_animation_active=False, min_point_size=MIN_BAR_HEIGHT),
            rx.recharts.x_axis(data_key="minute", interval=9, tick={"fontSize": 12}),
            # Explicit ticks on a fixed domain: a linear axis with every label drawn, in a
            # column wide enough for the longest one.
            rx.recharts.y_axis(allow_decimals=False, width=SummaryState.chart_axis_width,
                               ticks=SummaryState.chart_ticks, domain=SummaryState.chart_domain,
                               interval=0, tick={"fontSize": 12}),
            rx.recharts.graphing_tooltip(),
            data=SummaryState.throughput, height=180, width="100%",
            # Room above the top label, which is centred on the plot's top edge.
            margin={"top": 12, "right": 12, "bottom": 0, "left": 0},
        ),
        width="100%", id="throughput",
    )  # fmt: skip


def _header() -> rx.Component:
    return rx.hstack(
        rx.text("System status:", size="3"),
        rx.badge(rx.cond(KNOWN, SummaryState.status, _unknown_word()), id="system-status",
                 size="2"),
        _part_card("Database", SummaryState.database_ok, SummaryState.database_error),
        _part_card("Redis", SummaryState.redis_ok, SummaryState.redis_error),
        rx.button(rx.icon("refresh-cw", size=14), "Refresh", on_click=SummaryState.load,
                  variant="soft", size="1"),
        align="center", spacing="3", wrap="wrap",
    )  # fmt: skip


def _tabs() -> rx.Component:
    return rx.tabs.root(
        rx.tabs.list(
            rx.tabs.trigger("Jobs", value="jobs", id="tab-jobs"),
            rx.tabs.trigger("Webhooks", value="webhooks", id="tab-webhooks"),
            rx.tabs.trigger("Conflicts", value="conflicts", id="tab-conflicts"),
        ),
        rx.tabs.content(jobs_tab(), value="jobs", padding_top="1em"),
        rx.tabs.content(webhooks_tab(), value="webhooks", padding_top="1em"),
        rx.tabs.content(conflicts_tab(), value="conflicts", padding_top="1em"),
        default_value="jobs", width="100%",
    )  # fmt: skip


def dashboard() -> rx.Component:
    return page_frame(
        "Sync dashboard",
        alerts_banner(),
        _header(),
        rx.hstack(rx.foreach(SummaryState.queues, _queue_card), spacing="4", wrap="wrap"),
        _summary_cards(),
        _throughput_chart(),
        _tabs(),
    )
