"""The alert conditions: each check returns the findings that hold right now.

A finding names its subject with ids only ("queue:sync", "job:42"); messages carry counts
and thresholds, never PHI. Checks only read; `evaluate` turns findings into alert rows.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from rq import Queue
from sqlmodel import Session, col, select

from ...config import QUEUE_FAMILIES, Settings
from ...models import (
    AlertKind,
    Conflict,
    ConflictStatus,
    EHRConnection,
    HL7Feed,
    HL7Message,
    InboundStatus,
    JobStatus,
    Severity,
    SyncJob,
    WebhookSubscription,
)
from ...models.types import utcnow
from ..hl7 import stats as hl7_stats
from ..hl7.held import HELD
from .thresholds import MAX_STREAK, Thresholds

# Failure streaks and usual durations look at jobs created this recently, so the query stays
# on the (status, created_at) index however long the job history grows.
LOOKBACK = timedelta(days=7)
# The usual duration is the median of this many recent completed runs, and needs at least
# MIN_RUNS of them: a job type never seen to finish has no "usual" yet.
SAMPLE_RUNS = 10
MIN_RUNS = 3


@dataclass(frozen=True)
class Finding:
    """One condition that holds now."""

    kind: AlertKind
    subject: str
    severity: Severity
    message: str
    connection_id: int | None = None
    queue: str | None = None
    refs: dict[str, int | str | None] = field(default_factory=dict)  # ids for the webhook event


@dataclass
class Context:
    session: Session
    redis: Any
    settings: Settings
    thresholds: Thresholds
    now: datetime = field(default_factory=utcnow)


def queue_depth(ctx: Context) -> list[Finding]:
    """Waiting jobs of each queue family (all priorities) over its threshold."""
    found = []
    for family in QUEUE_FAMILIES:
        depth = sum(
            Queue(name, connection=ctx.redis).count for name in ctx.settings.queue_names(family)
        )
        limit = ctx.thresholds.for_queue(AlertKind.QUEUE_DEPTH, family)
        if depth > limit:
            found.append(
                Finding(
                    AlertKind.QUEUE_DEPTH,
                    f"queue:{family}",
                    Severity.MEDIUM,
                    f"{depth} jobs waiting on the {family} queues (threshold {limit:g})",
                    queue=family,
                    refs={"queue": family},
                )
            )
    return found


def _finished_at() -> Any:
    # Rows failed by reconcile may lack finished_at; updated_at is when they last changed.
    return sa.func.coalesce(SyncJob.finished_at, SyncJob.updated_at)


def _recent_outcomes(session: Session, since: datetime) -> dict[tuple[int, str], list[str]]:
    """Per (connection, job type): statuses of the latest finished runs, newest first."""
    rank = (
        sa.func.row_number()
        .over(
            partition_by=(SyncJob.connection_id, SyncJob.job_type),
            order_by=(_finished_at().desc(), SyncJob.id.desc()),
        )
        .label("rank")
    )
    inner = (
        select(SyncJob.connection_id, SyncJob.job_type, SyncJob.status, rank)
        .where(
            SyncJob.status.in_([JobStatus.COMPLETED, JobStatus.FAILED]),  # type: ignore[attr-defined]
            SyncJob.created_at >= since,
        )
        .subquery()
    )
    query = (
        select(inner.c.connection_id, inner.c.job_type, inner.c.status)
        .where(inner.c.rank <= MAX_STREAK)
        .order_by(inner.c.connection_id, inner.c.job_type, inner.c.rank)
    )
    outcomes: dict[tuple[int, str], list[str]] = defaultdict(list)
    for connection_id, job_type, status in session.execute(query):
        outcomes[(connection_id, str(job_type))].append(str(status))
    return outcomes


def _streak(statuses: list[str]) -> int:
    count = 0
    for status in statuses:
        if status != JobStatus.FAILED:
            break
        count += 1
    return count


def job_failures(ctx: Context) -> list[Finding]:
    """A connection's job type whose latest N finished runs all failed (cancelled ignored)."""
    found = []
    for (connection_id, job_type), statuses in _recent_outcomes(
        ctx.session, ctx.now - LOOKBACK
    ).items():
        streak = _streak(statuses)
        limit = ctx.thresholds.for_connection(AlertKind.JOB_FAILURES, connection_id)
        if streak >= limit:
            found.append(
                Finding(
                    AlertKind.JOB_FAILURES,
                    f"connection:{connection_id}:{job_type}:failures",
                    Severity.HIGH,
                    f"the last {streak} {job_type} jobs of connection {connection_id} failed "
                    f"(threshold {limit:g})",
                    connection_id=connection_id,
                    refs={"connection_id": connection_id},
                )
            )
    return found


def _usual_seconds(
    session: Session, connection_id: int, job_type: str, since: datetime
) -> float | None:
    """The median duration of the latest completed runs, or None with too few of them."""
    rows = session.exec(
        select(SyncJob.started_at, SyncJob.finished_at)
        .where(
            SyncJob.connection_id == connection_id,
            SyncJob.job_type == job_type,
            SyncJob.status == JobStatus.COMPLETED,
            SyncJob.created_at >= since,
            SyncJob.started_at.is_not(None),  # type: ignore[union-attr]
            SyncJob.finished_at.is_not(None),  # type: ignore[union-attr]
        )
        .order_by(SyncJob.finished_at.desc())  # type: ignore[union-attr]
        .limit(SAMPLE_RUNS)
    ).all()
    durations = [(end - start).total_seconds() for start, end in rows]
    return statistics.median(durations) if len(durations) >= MIN_RUNS else None


def job_slow(ctx: Context) -> list[Finding]:
    """A running job past max(factor x its usual duration, the floor)."""
    running = ctx.session.exec(
        select(SyncJob).where(
            SyncJob.status == JobStatus.RUNNING,
            SyncJob.started_at.is_not(None),  # type: ignore[union-attr]
        )
    ).all()
    usual: dict[tuple[int, str], float | None] = {}
    found = []
    for job in running:
        key = (job.connection_id, job.job_type.value)
        if key not in usual:
            usual[key] = _usual_seconds(ctx.session, *key, ctx.now - LOOKBACK)
        median = usual[key]
        if median is None:
            continue
        factor = ctx.thresholds.for_connection(AlertKind.JOB_SLOW, job.connection_id)
        limit = max(factor * median, float(ctx.settings.alert_slow_floor_seconds))
        elapsed = (ctx.now - job.started_at).total_seconds()
        if elapsed > limit:
            found.append(
                Finding(
                    AlertKind.JOB_SLOW,
                    f"job:{job.id}",
                    Severity.MEDIUM,
                    f"{job.job_type.value} job {job.id} of connection {job.connection_id} has run "
                    f"{elapsed:.0f} s; it usually takes {median:.0f} s (alert above {limit:.0f} s)",
                    connection_id=job.connection_id,
                    refs={"connection_id": job.connection_id, "job_id": job.id},
                )
            )
    return found


def subscriptions_disabled(ctx: Context) -> list[Finding]:
    """Outbound subscriptions switched off for failing (not ones paused by a person)."""
    rows = ctx.session.exec(
        select(WebhookSubscription).where(
            WebhookSubscription.active == sa.false(),
            WebhookSubscription.failure_streak > 0,
        )
    ).all()
    return [
        Finding(
            AlertKind.SUBSCRIPTION_DISABLED,
            f"subscription:{sub.id}",
            Severity.HIGH,
            f"webhook subscription {sub.id} was disabled after {sub.failure_streak} failed "
            "deliveries; fix the endpoint and switch it on again",
            connection_id=sub.filter_connection_id,
            refs={"subscription_id": sub.id, "connection_id": sub.filter_connection_id},
        )
        for sub in rows
    ]


def conflict_backlog(ctx: Context) -> list[Finding]:
    """Open high-severity conflicts of one connection over its threshold."""
    rows = ctx.session.exec(
        select(Conflict.connection_id, sa.func.count())
        .where(Conflict.status == ConflictStatus.OPEN, Conflict.severity == Severity.HIGH)
        .group_by(Conflict.connection_id)
    ).all()
    found = []
    for connection_id, count in rows:
        limit = ctx.thresholds.for_connection(AlertKind.CONFLICT_BACKLOG, connection_id)
        if count > limit:
            found.append(
                Finding(
                    AlertKind.CONFLICT_BACKLOG,
                    f"connection:{connection_id}:conflicts",
                    Severity.HIGH,
                    f"{count} open high-severity conflicts on connection {connection_id} "
                    f"(threshold {limit:g})",
                    connection_id=connection_id,
                    refs={"connection_id": connection_id},
                )
            )
    return found


# A feed "normally talks" when it carried messages within this many days.
FEED_HISTORY_DAYS = 7


def within_day(now: datetime, hours: str, zone: str) -> bool:
    """Whether `now` falls in the day window ("07-19": from 07:00 to 19:00, local time)."""
    start, end = (int(h) for h in hours.split("-"))
    hour = now.astimezone(ZoneInfo(zone)).hour
    return start <= hour < end if start <= end else (hour >= start or hour < end)


def feed_silent(ctx: Context) -> list[Finding]:
    """An HL7 v2 feed that talked in the last week and has said nothing for longer than
    its threshold (minutes), during the day: the alert integration teams rely on most."""
    if not within_day(ctx.now, ctx.settings.alert_feed_day_hours, ctx.settings.alert_feed_timezone):
        return []
    found = []
    for connection_id in sorted(set(ctx.session.exec(select(HL7Feed.connection_id)))):
        last = hl7_stats.last_message_at(ctx.redis, connection_id)
        if last is None or not hl7_stats.messages_since(
            ctx.redis, connection_id, FEED_HISTORY_DAYS
        ):
            continue  # never talked (or not this week): nothing "normal" to miss
        silent = (ctx.now.timestamp() - last) / 60
        limit = ctx.thresholds.for_connection(AlertKind.FEED_SILENT, connection_id)
        if silent > limit:
            found.append(
                Finding(
                    AlertKind.FEED_SILENT,
                    f"connection:{connection_id}:feed",
                    Severity.HIGH,
                    f"the HL7 feed of connection {connection_id} has been silent for "
                    f"{silent:.0f} minutes (threshold {limit:g})",
                    connection_id=connection_id,
                    refs={"connection_id": connection_id},
                )
            )
    return found


def hl7_held(ctx: Context) -> list[Finding]:
    """ADT messages held for their connection's settings (`hl7.held`): acknowledged to the
    hospital, which will not send them again, and processed only once an administrator
    fixes and saves the connection. Nothing else tells anyone they are waiting."""
    found = []
    # Every connection, not only those with a feed mapped now: an unmapped feed's held
    # messages still wait. Per connection, on the (connection, status) index.
    ids = ctx.session.exec(select(col(EHRConnection.id)))
    for connection_id in sorted(i for i in ids if i is not None):
        held = ctx.session.exec(
            select(sa.func.count()).where(
                HL7Message.connection_id == connection_id,
                HL7Message.status == InboundStatus.FAILED,
                sa.func.substr(HL7Message.outcome, 1, len(HELD)) == HELD,
            )
        ).one()
        if held:
            found.append(_held_finding(connection_id, held))
    return found


def _held_finding(connection_id: int, held: int) -> Finding:
    counted = "1 HL7 message" if held == 1 else f"{held} HL7 messages"
    return Finding(
        AlertKind.HL7_HELD,
        f"connection:{connection_id}:hl7-held",
        Severity.HIGH,
        f"{counted} of connection {connection_id} {'is' if held == 1 else 'are'} held for its "
        "settings (see the outcome); fix the connection and save it to process them",
        connection_id=connection_id,
        refs={"connection_id": connection_id},
    )


CHECKS: dict[AlertKind, Callable[[Context], list[Finding]]] = {
    AlertKind.QUEUE_DEPTH: queue_depth,
    AlertKind.JOB_FAILURES: job_failures,
    AlertKind.JOB_SLOW: job_slow,
    AlertKind.SUBSCRIPTION_DISABLED: subscriptions_disabled,
    AlertKind.CONFLICT_BACKLOG: conflict_backlog,
    AlertKind.FEED_SILENT: feed_silent,
    AlertKind.HL7_HELD: hl7_held,
}
