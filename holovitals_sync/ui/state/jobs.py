"""The Jobs tab's state: one server-side page of jobs, its filters, cancel and retry.

Only the page on screen lives in the state; the live watcher (`live.py`) patches those rows
from job events and asks for a fresh page only when a job it does not show appears, through
the hooks `following.py` declares (`FollowedList`, `JobRows`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import reflex as rx

from ...config import get_settings
from ...db import session_scope
from ...models import JOB_COUNTERS, JobStatus, JobType, Role
from ...services import labels, orchestration
from ...services.auth import Principal
from ...services.health import HealthReport, check_health
from ...services.platform.redis import QueueUnavailable, redis_connection
from ..views import dashboard
from ..views.times import clock
from .session import acting, reads, requires

PAGE_SIZE = 15
ANY = "all"
# The dashboard's columns: every counter but `written` (what an outbound job's EHR accepted).
COUNTERS = tuple(name for name in JOB_COUNTERS if name != "written")
CANCELLABLE = {s.value for s in JobStatus if not s.finished}
RETRYABLE = {JobStatus.FAILED.value, JobStatus.CANCELLED.value}
# The chart's tick labels are 12 px digits (about 8 px wide) after a 6 px tick and a gap.
AXIS_DIGIT = 8
AXIS_PADDING = 16


@dataclasses.dataclass
class JobRow:
    """One job on screen; counters and status move with the job's events."""

    id: int = 0
    connection_id: int = 0
    connection: str = ""
    job_type: str = ""
    direction: str = ""
    priority: str = ""
    status: str = ""
    percent: int = 0
    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    conflicts: int = 0
    deleted: int = 0  # records tombstoned: the EHR no longer has them
    attempts: int = 0
    max_attempts: int = 0
    scope: str = ""
    requested_by: str = ""
    error: str = ""
    trace_id: str = ""  # the latest run's trace (tracing on), and its page in the trace UI
    trace_link: str = ""
    queued_text: str = ""
    finished_text: str = ""
    can_cancel: bool = False
    can_retry: bool = False

    @classmethod
    def of(cls, row: dict[str, Any]) -> JobRow:
        return cls(
            id=row["id"], connection_id=row["connection_id"], connection=row["connection"],
            job_type=row["job_type"],
            direction=row["direction"], priority=row["priority"], status=row["status"],
            percent=int(round(row["progress"] * 100)),
            **{name: row[name] for name in COUNTERS},
            attempts=row["attempts"], max_attempts=row["max_attempts"], scope=row["scope"],
            requested_by=row["requested_by"], error=row["last_error"],
            trace_id=row["trace_id"], trace_link=row["trace_link"],
            queued_text=clock(row["created_at"]), finished_text=clock(row["finished_at"]),
            can_cancel=row["status"] in CANCELLABLE, can_retry=row["status"] in RETRYABLE,
        )  # fmt: skip

    def patched(self, event: dict[str, Any]) -> JobRow:
        """This row with a job event's status, progress and counters applied."""
        status = str(event.get("status", self.status))
        counters = {n: int(event[n]) for n in COUNTERS if isinstance(event.get(n), int)}
        percent = event.get("progress")
        return dataclasses.replace(
            self, status=status, **counters,
            percent=int(round(float(percent) * 100)) if percent is not None else self.percent,
            attempts=int(event.get("attempts", self.attempts)),
            can_cancel=status in CANCELLABLE, can_retry=status in RETRYABLE,
        )  # fmt: skip


@dataclasses.dataclass
class Option:
    value: str = ""
    label: str = ""


def _filter(status: str, connection: str, job_type: str) -> dashboard.JobFilter:
    return dashboard.JobFilter(
        status=JobStatus(status) if status in {s.value for s in JobStatus} else None,
        connection_id=int(connection) if connection.isdecimal() else None,
        job_type=JobType(job_type) if job_type in {t.value for t in JobType} else None,
    )


Query = tuple[dashboard.JobFilter, int]  # the filter and offset of the page on screen
Found = tuple[dashboard.Page, list[Option]]  # that page and the connection filter's choices


def read_page(query: Query) -> Found:
    """One page of jobs and the connections to filter by (live.py re-reads it too)."""
    where, offset = query
    with session_scope() as session:
        page = dashboard.list_jobs(session, where, offset=offset, limit=PAGE_SIZE)
        names = dashboard.connection_names(session)
    return page, [Option(str(i), n) for i, n in names.items()]


def _act(action: str, job_id: int, principal: Principal) -> str:
    """Cancel or retry; returns the new status. Raises the service's errors."""
    with session_scope() as session:
        call = orchestration.cancel_job if action == "cancel" else orchestration.retry_job
        return call(session, job_id=job_id, actor=principal.actor).status.value


class JobsState(rx.State):
    """The page of jobs on screen and the filters that chose it."""

    rows: list[JobRow] = []
    total: int = 0
    offset: int = 0
    status_filter: str = ANY
    connection_filter: str = ANY
    type_filter: str = ANY
    connections: list[Option] = []

    @rx.var
    def page_text(self) -> str:
        if self.total == 0:
            return "no jobs"
        last = min(self.offset + PAGE_SIZE, self.total)
        return f"{self.offset + 1}–{last} of {self.total}"

    @rx.var
    def has_previous(self) -> bool:
        return self.offset > 0

    @rx.var
    def has_next(self) -> bool:
        return self.offset + PAGE_SIZE < self.total

    # What live.py calls (following.FollowedList and following.JobRows). The leading "_"
    # keeps them from the browser: Reflex makes every other method an event handler.

    def _query(self) -> Query:
        """The filter and offset of the page on screen."""
        return _filter(self.status_filter, self.connection_filter, self.type_filter), self.offset

    def _show(self, found: Found) -> None:
        page, self.connections = found
        self.rows = [JobRow.of(r) for r in page.rows]
        self.total, self.offset = page.total, page.offset

    def _on_screen(self) -> set[int]:
        return {row.id for row in self.rows}

    def _showing_newest(self) -> bool:
        """A new job would appear on this page (the first one)."""
        return self.offset == 0

    def _apply_events(self, events: dict[int, dict[str, Any]]) -> None:
        """Patch the rows on screen with the newest event of each job."""
        if any(row.id in events for row in self.rows):
            self.rows = [row.patched(events[row.id]) if row.id in events else row
                         for row in self.rows]  # fmt: skip

    async def _reload(self) -> None:
        self._show(await asyncio.to_thread(read_page, self._query()))

    def _forget(self) -> None:
        """Refused (signed out): the jobs shown do not stay in the tab's state."""
        self.rows = []

    @rx.event
    @reads(on_refusal=_forget)
    async def load(self) -> rx.event.EventSpec | None:
        await self._reload()
        return None

    async def _refilter(self) -> rx.event.EventSpec | None:
        self.offset = 0
        await self._reload()
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def filter_status(self, value: str) -> rx.event.EventSpec | None:
        self.status_filter = value
        return await self._refilter()

    @rx.event
    @reads(on_refusal=_forget)
    async def filter_connection(self, value: str) -> rx.event.EventSpec | None:
        self.connection_filter = value
        return await self._refilter()

    @rx.event
    @reads(on_refusal=_forget)
    async def filter_type(self, value: str) -> rx.event.EventSpec | None:
        self.type_filter = value
        return await self._refilter()

    @rx.event
    @reads(on_refusal=_forget)
    async def next_page(self) -> rx.event.EventSpec | None:
        if self.has_next:
            self.offset += PAGE_SIZE
        await self._reload()
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def previous_page(self) -> rx.event.EventSpec | None:
        self.offset = max(0, self.offset - PAGE_SIZE)
        await self._reload()
        return None

    async def _change(self, action: str, job_id: int) -> rx.event.EventSpec | None:
        """Cancel or retry, for `cancel` and `retry` (whose `@requires` checked the role)."""
        try:
            status = await asyncio.to_thread(_act, action, int(job_id), acting())
        except (orchestration.JobNotFound, orchestration.StateConflict) as exc:
            await self._reload()
            return rx.toast.error(labels.sentence(str(exc)))
        except QueueUnavailable:
            return rx.toast.error("The job queue is not reachable; try again shortly.")
        await self._reload()
        return rx.toast.success(f"Job {job_id} is {status}.")

    @rx.event
    @requires(Role.OPERATOR)
    async def cancel(self, job_id: int) -> rx.event.EventSpec | None:
        return await self._change("cancel", job_id)

    @rx.event
    @requires(Role.OPERATOR)
    async def retry(self, job_id: int) -> rx.event.EventSpec | None:
        return await self._change("retry", job_id)


@dataclasses.dataclass
class QueueCard:
    """One queue family: live workers (health) and its RQ registries."""

    family: str = ""
    workers: int = 0
    expected: int = 0
    waiting: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0


@dataclasses.dataclass
class Overview:
    """Health and the summary cards, gathered off the event loop."""

    health: HealthReport
    summary: dashboard.Summary


def gather_overview() -> Overview:
    """Health and summary in one go (runs in a thread: both block on I/O)."""
    settings = get_settings()
    health = check_health(settings)
    try:
        redis = redis_connection() if health.redis.ok else None
    except QueueUnavailable:
        redis = None
    with session_scope() as session:
        return Overview(health, dashboard.summary(session, redis))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s" if minutes else f"{seconds:.1f} s"


class SummaryState(rx.State):
    """System health and the cards above the tabs; refreshed on load and, slowly, on events."""

    # False until the first health report arrives (a fresh or restarted backend's state):
    # the cards say "checking…" meanwhile, never a "down" nobody measured.
    checked: bool = False
    status: str = "unknown"
    database_ok: bool = False
    database_error: str = ""
    redis_ok: bool = False
    redis_error: str = ""
    queues: list[QueueCard] = []
    records_today: int = 0
    average_duration: str = "—"
    conflicts_high: int = 0
    conflicts_medium: int = 0
    conflicts_low: int = 0
    throughput: list[dict[str, Any]] = []
    # The chart's linear y axis: its ticks and the label column's width (px) for the longest.
    chart_ticks: list[int] = dashboard.nice_ticks(0)
    chart_domain: list[int] = [0, dashboard.nice_ticks(0)[-1]]
    chart_axis_width: int = 40

    def _show(self, overview: Overview) -> None:
        report, summary = overview.health, overview.summary
        self.checked, self.status = True, report.status
        self.database_ok, self.database_error = report.database.ok, report.database.error or ""
        self.redis_ok, self.redis_error = report.redis.ok, report.redis.error or ""
        self.queues = [
            QueueCard(family, q.workers, q.expected_workers,
                      **{k: summary.queues.get(family, {}).get(k, 0)
                         for k in ("waiting", "running", "completed", "failed")})
            for family, q in report.queues.items()
        ]  # fmt: skip
        self.records_today = summary.records_today
        self.average_duration = _duration(summary.average_duration_seconds)
        conflicts = summary.open_conflicts
        self.conflicts_high, self.conflicts_medium, self.conflicts_low = (
            conflicts["high"],
            conflicts["medium"],
            conflicts["low"],
        )
        self.throughput = summary.throughput
        self.chart_ticks = dashboard.nice_ticks(
            max((m["records"] for m in summary.throughput), default=0)
        )
        self.chart_domain = [0, self.chart_ticks[-1]]
        self.chart_axis_width = AXIS_PADDING + AXIS_DIGIT * len(str(self.chart_ticks[-1]))

    @rx.event
    @reads()
    async def load(self) -> rx.event.EventSpec | None:
        self._show(await asyncio.to_thread(gather_overview))
        return None
