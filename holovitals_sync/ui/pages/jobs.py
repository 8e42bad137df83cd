"""The Jobs tab: filters, one page of jobs with live status, progress and counters."""

from __future__ import annotations

import reflex as rx
from reflex_components_core.core.banner import has_connection_errors

from ...models import JobStatus, JobType
from ..components.jobs import progress_cell, status_badge
from ..components.jobs_start import start_sync_dialog
from ..components.layout import empty_state, operator_only
from ..state.job_detail import JobDetailState
from ..state.jobs import ANY, COUNTERS, JobRow, JobsState
from ..state.live import LiveState
from .jobs_detail import job_detail_dialog

TIGHT = "0.25em"  # horizontal padding of the columns between the first and the last
CLAMP_TWO_LINES = {
    "display": "-webkit-box",
    "-webkit-line-clamp": "2",
    "-webkit-box-orient": "vertical",
    "overflow": "hidden",
    "overflow-wrap": "anywhere",
}


def _filter(name: str, values: list[str], value: rx.Var[str], handler) -> rx.Component:
    return rx.select([ANY, *values], value=value, on_change=handler, size="2",
                     id=f"filter-{name}")  # fmt: skip


def _connection_filter() -> rx.Component:
    return rx.select.root(
        rx.select.trigger(id="filter-connection"),
        rx.select.content(
            rx.select.item("all connections", value=ANY),
            rx.foreach(JobsState.connections, lambda o: rx.select.item(o.label, value=o.value)),
        ),
        value=JobsState.connection_filter,
        on_change=JobsState.filter_connection,
    )  # fmt: skip


def _live_badge() -> rx.Component:
    """Green while events arrive; grey while the websocket or the subscription is down."""
    return rx.cond(
        LiveState.live & ~has_connection_errors,
        rx.badge(rx.icon("radio", size=12), "live", color_scheme="green", id="live"),
        rx.badge("reconnecting…", color_scheme="gray", id="live"),
    )


def _toolbar() -> rx.Component:
    return rx.hstack(
        rx.text("Status", size="2"),
        _filter("status", [s.value for s in JobStatus], JobsState.status_filter,
                JobsState.filter_status),
        rx.text("Type", size="2"),
        _filter("type", [t.value for t in JobType], JobsState.type_filter, JobsState.filter_type),
        _connection_filter(),
        rx.spacer(),
        _live_badge(),
        operator_only(start_sync_dialog()),
        align="center", spacing="2", width="100%",
    )  # fmt: skip


def _actions(job: JobRow) -> rx.Component:
    return rx.hstack(
        rx.icon_button(rx.icon("info", size=14), size="1", variant="soft",
                       on_click=JobDetailState.show(job.id), title="Details",
                       class_name="job-detail-button"),
        operator_only(rx.fragment(
            rx.cond(job.can_cancel, rx.button(
                "Cancel", size="1", color_scheme="red", variant="soft",
                on_click=JobsState.cancel(job.id), class_name="job-cancel")),
            rx.cond(job.can_retry, rx.button(
                "Retry", size="1", variant="soft", on_click=JobsState.retry(job.id),
                class_name="job-retry")),
        )),
        spacing="2", wrap="nowrap",
    )  # fmt: skip


def _row(job: JobRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text("#", job.id, weight="medium", white_space="nowrap")),
        # A long connection name takes two lines at most (the whole name in its tooltip)
        # instead of widening the table or making the row a column of letters.
        rx.table.cell(rx.vstack(rx.text(job.connection, size="2", title=job.connection,
                                        style=CLAMP_TWO_LINES),
                                rx.text(job.job_type, " · ", job.direction,
                                        rx.cond(job.scope != "", " · " + job.scope, ""),
                                        size="1", color_scheme="gray",
                                        overflow_wrap="anywhere"),
                                spacing="0"),
                      min_width="8em", max_width="14em", padding_x=TIGHT),
        rx.table.cell(status_badge(job.status, size="1"), padding_x=TIGHT),
        rx.table.cell(progress_cell(job), padding_x=TIGHT),
        *[rx.table.cell(rx.text(getattr(job, name), class_name=f"counter-{name}"),
                        padding_x=TIGHT) for name in COUNTERS],
        rx.table.cell(rx.text(job.queued_text, size="1", white_space="nowrap"),
                      padding_x=TIGHT),
        rx.table.cell(_actions(job)),
        id=f"job-row-{job.id}", class_name="job-row",
    )  # fmt: skip


def _header(text: str, **style: str) -> rx.Component:
    return rx.table.column_header_cell(rx.text(text, size="1"), **style)


def _table() -> rx.Component:
    # Small headers and tight padding between the edges: fourteen columns fit the page at
    # 1280 px without scrolling.
    middle = ("Connection", "Status", "Progress", *COUNTERS, "Requested (UTC)")
    cells = [_header("Job"), *[_header(h, padding_x=TIGHT) for h in middle], _header("")]
    return rx.cond(
        JobsState.rows.length() > 0,
        rx.table.root(
            rx.table.header(rx.table.row(*cells)),
            rx.table.body(rx.foreach(JobsState.rows, _row)),
            width="100%", variant="surface", size="1", id="jobs-table",
        ),
        empty_state("No sync jobs match."),
    )  # fmt: skip


def _pager() -> rx.Component:
    return rx.hstack(
        rx.text(JobsState.page_text, size="1", color_scheme="gray", id="jobs-page"),
        rx.button("Previous", size="1", variant="soft", on_click=JobsState.previous_page,
                  disabled=~JobsState.has_previous),
        rx.button("Next", size="1", variant="soft", on_click=JobsState.next_page,
                  disabled=~JobsState.has_next, id="jobs-next"),
        align="center", spacing="2",
    )  # fmt: skip


def jobs_tab() -> rx.Component:
    return rx.vstack(_toolbar(), _table(), _pager(), job_detail_dialog(), width="100%",
                     spacing="3")  # fmt: skip
