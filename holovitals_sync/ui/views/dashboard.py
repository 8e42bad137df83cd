"""Read-side queries for the sync dashboard: summary cards, a page of jobs, one job's detail.

Everything returned is ids, names, statuses, counters and times, never resource content
(no PHI). Lists are paged here, in the database, so the UI state holds one page only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from redis import Redis
from sqlmodel import Session, func, select

from ...config import get_settings
from ...models import (
    AuditLog,
    Conflict,
    ConflictStatus,
    EHRConnection,
    JobStatus,
    JobType,
    RecordError,
    Severity,
    SyncedRecord,
    SyncJob,
)
from ...models.types import utcnow
from ...services import labels
from ...services.orchestration import statistics

THROUGHPUT_MINUTES = 60
MAX_PAGE = 100
# The chart's y axis: at most this many intervals, each a "nice" step (1, 2, 2.5 or 5 times a
# power of ten), and never lower than this top, so an empty hour still has a readable axis.
MAX_INTERVALS = 5
MIN_TOP = 5


@dataclass(frozen=True)
class JobFilter:
    """The Jobs tab's filters; None means any."""

    status: JobStatus | None = None
    connection_id: int | None = None
    job_type: JobType | None = None


@dataclass
class Page:
    """One page of rows and how many rows match in all."""

    rows: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


@dataclass
class Summary:
    """What the cards above the tabs show."""

    queues: dict[str, dict[str, int]]
    records_today: int
    average_duration_seconds: float | None
    open_conflicts: dict[str, int]
    throughput: list[dict[str, Any]] = field(default_factory=list)


def _minute_bucket(column: Any, dialect: str) -> Any:
    """SQL for "the UTC minute of this timestamp" as 'YYYY-MM-DDTHH:MM' text."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI')
    return func.strftime("%Y-%m-%dT%H:%M", column)


def throughput(session: Session, now: datetime, minutes: int = THROUGHPUT_MINUTES) -> list[dict]:
    """Records synced per minute over the last `minutes`, oldest first, gaps as zero.

    Counted from the records' own sync time, so a long job shows up while it runs rather
    than in one spike when it finishes.
    """
    end = now.replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes - 1)
    bucket = _minute_bucket(SyncedRecord.last_synced_at, session.get_bind().dialect.name)
    counts = dict(session.exec(
        select(bucket, func.count()).where(SyncedRecord.last_synced_at >= start)
        .group_by(bucket)).all())  # fmt: skip
    out = []
    for i in range(minutes):
        minute = start + timedelta(minutes=i)
        out.append(
            {
                "minute": minute.strftime("%H:%M"),
                "records": int(counts.get(minute.strftime("%Y-%m-%dT%H:%M"), 0)),
            }
        )
    return out


def nice_ticks(peak: int) -> list[int]:
    """Evenly spaced y-axis ticks from 0 to the first nice value at or above `peak`.

    A linear axis with round steps: 2,200 records gives 0, 500, ..., 2,500 (not 0, 550,
    1,100, 2,200 with a gap where a label did not fit).
    """
    peak = max(int(peak), MIN_TOP)
    magnitude = 10 ** max(0, len(str(peak // MAX_INTERVALS)) - 1)
    for factor in (1, 2, 2.5, 5, 10, 20):
        step = int(factor * magnitude)
        if step >= 1 and factor * magnitude == step and -(-peak // step) <= MAX_INTERVALS:
            break
    top = -(-peak // step) * step
    return list(range(0, top + 1, step))


def records_synced_today(session: Session, now: datetime) -> int:
    """Records written or refreshed since midnight UTC."""
    midnight = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    query = (
        select(func.count())
        .select_from(SyncedRecord)
        .where(SyncedRecord.last_synced_at >= midnight)
    )
    return int(session.exec(query).one())


def open_conflicts_by_severity(session: Session) -> dict[str, int]:
    """Open conflicts per severity, every severity present (zero when none)."""
    rows = dict(session.exec(
        select(Conflict.severity, func.count()).where(Conflict.status == ConflictStatus.OPEN)
        .group_by(Conflict.severity)).all())  # fmt: skip
    return {s.value: int(rows.get(s, 0)) for s in Severity}


def summary(session: Session, redis: Redis | None, now: datetime | None = None) -> Summary:
    """The dashboard cards; queue figures are empty when Redis is not reachable."""
    now = now or utcnow()
    queues: dict[str, dict[str, int]] = {}
    if redis is not None:
        queues = statistics.queue_stats(redis)
    return Summary(
        queues=queues,
        records_today=records_synced_today(session, now),
        average_duration_seconds=statistics.average_duration(session),
        open_conflicts=open_conflicts_by_severity(session),
        throughput=throughput(session, now),
    )


def connection_names(session: Session) -> dict[int, str]:
    """Every connection's id and name, for filters, the start dialog and job rows."""
    return dict(
        session.exec(
            select(EHRConnection.id, EHRConnection.name).order_by(EHRConnection.name)
        ).all()
    )


def trace_link(trace_id: str | None) -> str:
    """The trace's page in the trace UI (HOLOVITALS_TRACE_URL), or "" when none is set."""
    template = get_settings().trace_url
    return template.replace("{trace_id}", trace_id) if template and trace_id else ""


def job_row(job: SyncJob, names: dict[int, str] | None = None) -> dict[str, Any]:
    """One job as the dashboard shows it (no checkpoint, no PHI)."""
    return {
        "id": job.id,
        "connection_id": job.connection_id,
        "connection": (names or {}).get(job.connection_id, f"#{job.connection_id}"),
        "job_type": job.job_type.value,
        "direction": job.direction.value,
        "priority": job.priority.value,
        "status": job.status.value,
        "progress": round(job.progress, 4),
        "fetched": job.fetched,
        "created": job.created,
        "updated": job.updated,
        "unchanged": job.unchanged,
        "invalid": job.invalid,
        "conflicts": job.conflicts,
        "deleted": job.deleted,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error or "",
        "trace_id": job.trace_id or "",
        "trace_link": trace_link(job.trace_id),
        "scope": job.patient_id or job.resource_type or "",
        "requested_by": job.requested_by or job.requested_by_kind.value,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def _filtered(query: Any, where: JobFilter) -> Any:
    query = query.where(SyncJob.parent_id.is_(None))  # parts show in their parent's detail
    for column, value in ((SyncJob.status, where.status),
                          (SyncJob.connection_id, where.connection_id),
                          (SyncJob.job_type, where.job_type)):  # fmt: skip
        if value is not None:
            query = query.where(column == value)
    return query


def list_jobs(session: Session, where: JobFilter, *, offset: int = 0, limit: int = 20) -> Page:
    """Jobs newest first, filtered, one page of them."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    total = session.exec(_filtered(select(func.count()).select_from(SyncJob), where)).one()
    jobs = session.exec(_filtered(select(SyncJob), where).order_by(SyncJob.id.desc())
                        .offset(offset).limit(limit))  # fmt: skip
    names = connection_names(session)
    return Page([job_row(j, names) for j in jobs], int(total), offset, limit)


def timeline(session: Session, job: SyncJob) -> list[dict[str, Any]]:
    """What happened to a job, oldest first: its own timestamps and the audited actions.

    One wording per step, read as a sentence with its "by": "Requested by admin", "Queued",
    "Started", "Finished: completed", "Cancelled by operator". The audit's `sync_job.start`
    is the request itself, already the first step, so it is not listed twice.
    """
    steps = [
        ("Requested", job.created_at, job.requested_by or job.requested_by_kind.value),
        ("Queued", job.queued_at, ""),
        ("Started", job.started_at, ""),
        ("Last heartbeat", job.heartbeat_at, ""),
        (f"Finished: {job.status.value}" if job.status.finished else "", job.finished_at, ""),
    ]
    events = [{"what": what, "at": at, "who": who} for what, at, who in steps if what and at]
    audited = session.exec(select(AuditLog).where(AuditLog.target_type == "sync_job",
                                                  AuditLog.target_id == str(job.id))
                           .order_by(AuditLog.seq))  # fmt: skip
    for entry in audited:
        action = entry.action.removeprefix("sync_job.")
        what = labels.JOB_ACTIONS.get(action, action.replace("_", " ").capitalize())
        if what:
            events.append({"what": what, "at": entry.at, "who": entry.actor})
    return sorted(events, key=lambda e: e["at"])


def touched_records(session: Session, job_id: int, *, offset: int = 0, limit: int = 20) -> Page:
    """The records a job last wrote or refreshed, newest first (ids and flags, no bodies)."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    where = SyncedRecord.last_job_id == job_id
    total = session.exec(select(func.count()).select_from(SyncedRecord).where(where)).one()
    query = (
        select(
            SyncedRecord.id,
            SyncedRecord.resource_type,
            SyncedRecord.remote_id,
            SyncedRecord.remote_version,
            SyncedRecord.last_synced_at,
            SyncedRecord.flagged_invalid,
            SyncedRecord.conflict_pending,
        )
        .where(where)
        .order_by(SyncedRecord.id.desc())
        .offset(offset)
        .limit(limit)
    )
    rows = [
        {
            "id": rid,
            "resource_type": rtype,
            "remote_id": remote,
            "version": version or "",
            "synced_at": synced,
            "flags": _flags(invalid, conflict),
        }
        for rid, rtype, remote, version, synced, invalid, conflict in session.exec(query)
    ]
    return Page(rows, int(total), offset, limit)


def _flags(invalid: bool, conflict: bool) -> str:
    return ", ".join(name for name, on in (("invalid", invalid), ("conflict", conflict)) if on)


def error_count(session: Session, job_id: int) -> int:
    """Validation or processing errors recorded for a job's resources."""
    query = select(func.count()).select_from(RecordError).where(RecordError.job_id == job_id)
    return int(session.exec(query).one())
