"""The job detail dialog: timeline, counters, error (no PHI) and the records it touched."""

from __future__ import annotations

import reflex as rx

from ..components.jobs import counters, progress_cell, status_badge
from ..components.layout import dialog_content
from ..state.job_detail import RECORDS_PAGE, JobDetailState
from ..state.jobs import COUNTERS


def _timeline() -> rx.Component:
    return rx.vstack(
        rx.foreach(JobDetailState.steps, lambda s: rx.hstack(
            rx.icon("circle-dot", size=14, color=rx.color("accent", 9)),
            rx.text(s.at, size="1", color_scheme="gray", min_width="11em"),
            rx.text(s.what, size="2", weight="medium"),
            rx.cond(s.who != "", rx.text("by ", s.who, size="1", color_scheme="gray")),
            align="center", spacing="2")),
        spacing="1", id="job-timeline",
    )  # fmt: skip


def _records() -> rx.Component:
    columns = ("Resource", "Remote id", "Version", "Synced (UTC)", "Flags")
    return rx.cond(
        JobDetailState.records_total > 0,
        rx.vstack(
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(c)
                                               for c in columns])),
                rx.table.body(rx.foreach(JobDetailState.records, lambda r: rx.table.row(
                    rx.table.cell(r.resource_type), rx.table.cell(r.remote_id),
                    rx.table.cell(r.version), rx.table.cell(r.synced_at),
                    rx.table.cell(r.flags)))),
                size="1", width="100%", id="job-records",
            ),
            rx.hstack(
                rx.text(JobDetailState.records_text, size="1", color_scheme="gray"),
                rx.button("Previous", size="1", variant="soft",
                          on_click=JobDetailState.records_page(-1),
                          disabled=JobDetailState.records_offset == 0),
                rx.button("Next", size="1", variant="soft",
                          on_click=JobDetailState.records_page(1),
                          disabled=JobDetailState.records_offset + RECORDS_PAGE
                          >= JobDetailState.records_total),
                align="center", spacing="2",
            ),
            width="100%",
        ),
        # No table of nothing: what happened, in words.
        rx.text(JobDetailState.records_text, size="2", color_scheme="gray", id="job-records-none"),
    )  # fmt: skip


def _errors_link(job: rx.Var) -> rx.Component:
    """To the Records page's errors of this job: what it flagged, each record a click away."""
    return rx.link(
        rx.icon("list-filter", size=14), "Show them on the Records page",
        href=f"/records?connection={job.connection_id}&view=errors&job={job.id}",
        on_click=JobDetailState.open_change(False), size="2", id="detail-errors-link",
        display="inline-flex", align_items="center", gap="0.25em",
    )  # fmt: skip


def _trace() -> rx.Component:
    """The run's OpenTelemetry trace id: a link when a trace UI is configured, else text to
    paste into one (tracing on: OTEL_EXPORTER_OTLP_ENDPOINT)."""
    trace_id, link = JobDetailState.job.trace_id, JobDetailState.job.trace_link
    return rx.hstack(
        rx.text("Trace", size="2", color_scheme="gray"),
        rx.cond(
            link != "",
            rx.link(rx.code(trace_id), href=link, is_external=True, id="detail-trace-link"),
            rx.code(trace_id, id="detail-trace-id"),
        ),
        align="center", spacing="2",
    )  # fmt: skip


def job_detail_dialog() -> rx.Component:
    job = JobDetailState.job
    return rx.dialog.root(
        dialog_content(
            rx.hstack(rx.text("Sync job #", job.id), status_badge(job.status), align="center"),
            rx.vstack(
                progress_cell(job, id_prefix="detail-progress"),
                counters(job, COUNTERS, id_prefix="detail"),
                rx.hstack(
                    rx.text("Attempts ", job.attempts, " of ", job.max_attempts,
                            " · records with errors ", JobDetailState.errors, size="2"),
                    rx.cond((JobDetailState.errors > 0) | (job.invalid > 0), _errors_link(job)),
                    align="center", spacing="3", wrap="wrap",
                ),
                rx.cond(job.error != "", rx.callout(job.error, icon="triangle-alert",
                                                    color_scheme="red", id="detail-error")),
                rx.cond(job.trace_id != "", _trace()),
                rx.heading("Timeline", size="3"),
                _timeline(),
                rx.heading("Records it wrote", size="3"),
                rx.text("Records it fetched unchanged are only counted.", size="1",
                        color_scheme="gray"),
                _records(),
                spacing="3", padding_top="0.75em",
            ),
            footer=rx.flex(rx.dialog.close(rx.button("Close", variant="soft", id="detail-close")),
                           justify="end"),
            description=rx.dialog.description(
                job.connection, " · ", job.job_type, " · ", job.direction, " · priority ",
                job.priority, size="2", color_scheme="gray"),
            max_width="56em", id="job-detail",
        ),
        open=JobDetailState.open,
        on_open_change=JobDetailState.open_change,
    )  # fmt: skip
