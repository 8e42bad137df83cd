"""The job open in the detail dialog: its timeline, counters, error (no PHI) and the records
it touched, read for the dialog and kept live by the job's events (live.py, through the hooks
`following.JobDialog` declares)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import reflex as rx

from ...db import session_scope
from ...models import JobStatus
from ...services import labels, orchestration
from ..views import dashboard
from ..views.times import clock
from .jobs import JobRow
from .session import reads

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
        return Detail(
            JobRow.of(dashboard.job_row(job, names)),
            steps,
            records,
            page.total,
            dashboard.error_count(session, job_id),
        )


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
            return labels.records_summary(
                finished=status in FINISHED, failed=status in ("failed", "cancelled")
            )
        last = min(self.records_offset + RECORDS_PAGE, self.records_total)
        return f"{self.records_offset + 1}–{last} of {self.records_total}"

    # What live.py calls, besides `open` (following.JobDialog). The leading "_" keeps them
    # from the browser: Reflex makes every other method an event handler.

    def _apply_events(self, events: dict[int, dict[str, Any]], changed: bool) -> bool:
        """Patch the open job; True when its timeline should be re-read."""
        if not self.open or self.job.id not in events:
            return False
        self.job = self.job.patched(events[self.job.id])
        return changed

    async def _reload(self) -> None:
        """Re-read the open job (also after events may have been missed)."""
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
        offset = self.records_offset + int(step) * RECORDS_PAGE
        self.records_offset = max(0, min(offset, max(self.records_total - 1, 0)))
        await self._reload()
        return None
