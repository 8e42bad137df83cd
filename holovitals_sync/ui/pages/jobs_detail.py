"""The job detail dialog: timeline, counters, error (no PHI) and the records it touched."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import reflex as rx

from ...db import session_scope
from ...models import JobStatus
from ...services import labels, orchestration
from ..components.jobs import counters, progress_cell, status_badge
from ..components.layout import dialog_content
from ..state.jobs import COUNTERS, JobRow
from ..state.session import principal_for, reads
from ..views import dashboard
from ..views.times import clock

RECORDS_PAGE = 10
FINISHED = {s.value for s in JobStatus if s.finished}


@dataclasses.dataclass
class Step:
    what: str = ""
    at: str = ""
    who: str = ""


@dataclasses.dataclass
class Touched:
    resource_type: str = ""
    remote_id: str = ""
    version: str = ""
    synced_at: str = ""
    flags: str = ""


@dataclasses.dataclass
class Detail:
    job: JobRow
    steps: list[Step]
    records: list[Touched]
    records_total: int
    errors: int


def _detail(job_id: int, records_offset: int) -> Detail:
    with session_scope() as session:
        job = orchestration.get_job(session, job_id)
        names = dashboard.connection_names(session)
        steps = [Step(s["what"], clock(s["at"]), s["who"])
                 for s in dashboard.timeline(session, job)]  # fmt: skip
        page = dashboard.touched_records(session, job_id, offset=records_offset,
                                         limit=RECORDS_PAGE)  # fmt: skip
        records = [Touched(r["resource_type"], r["remote_id"], r["version"],
                           clock(r["synced_at"]), r["flags"]) for r in page.rows]  # fmt: skip
        return Detail(JobRow.of(dashboard.job_row(job, names)), steps, records, page.total,
                      dashboard.error_count(session, job_id))


class JobDetailState(rx.State):
    """The job open in the detail dialog (counters move live with its events)."""

    open: bool = False
    job: JobRow = JobRow()
    steps: list[Step] = []
    records: list[Touched] = []
    records_total: int = 0
    records_offset: int = 0
    errors: int = 0

    @rx.var
    def records_text(self) -> str:
        if self.records_total == 0:
            status = self.job.status
            return labels.records_summary(finished=status in FINISHED,
                                          failed=status in ("failed", "cancelled"))
        last = min(self.records_offset + RECORDS_PAGE, self.records_total)
        return f"{self.records_offset + 1}–{last} of {self.records_total}"

    def _apply_events(self, events: dict[int, dict[str, Any]], changed: bool) -> bool:
        """Patch the open job; True when its timeline should be re-read."""
        if not self.open or self.job.id not in events:
            return False
        self.job = self.job.patched(events[self.job.id])
        return changed

    async def _reload(self) -> None:
        try:
            detail = await asyncio.to_thread(_detail, self.job.id, self.records_offset)
        except orchestration.JobNotFound:
            self.open = False
            return
        self.job, self.steps, self.records = detail.job, detail.steps, detail.records
        self.records_total, self.errors = detail.records_total, detail.errors

    @rx.event
    @reads()
    async def show(self, job_id: int) -> rx.event.EventSpec | None:
        principal, refusal = await principal_for(self)
        if principal is None:
            return refusal
        self.job, self.records_offset = JobRow(id=int(job_id)), 0
        await self._reload()
        if self.job.status == "":
            return rx.toast.error(f"There is no sync job {job_id}.")
        self.open = True
        return None

    @rx.event
    def open_change(self, value: bool) -> None:
        self.open = value
        if not value:
            self.steps, self.records = [], []  # the state holds only what is on screen

    @rx.event
    @reads()
    async def records_page(self, step: int) -> rx.event.EventSpec | None:
        principal, refusal = await principal_for(self)
        if principal is None:
            return refusal
        offset = self.records_offset + int(step) * RECORDS_PAGE
        self.records_offset = max(0, min(offset, max(self.records_total - 1, 0)))
        await self._reload()
        return None


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
