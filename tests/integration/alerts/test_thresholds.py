"""Each threshold raises exactly one alert however often it is evaluated, and the alert
closes by itself when the condition clears (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from rq import Queue
from sqlmodel import Session

from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import (
    AlertKind,
    AlertStatus,
    Conflict,
    JobStatus,
    Severity,
    SyncJob,
    WebhookSubscription,
)
from holovitals_sync.models.types import utcnow
from holovitals_sync.services import alerts
from tests.factories import make_conflict, make_connection, make_job, make_subscription


def _once(evaluator, rounds: int = 3) -> list:
    for _ in range(rounds):
        evaluator()
    return evaluator.active()


def test_queue_depth(evaluator):
    evaluator.settings = evaluator.settings.model_copy(update={"alert_queue_depth": 2})
    queue = Queue("sync.low", connection=evaluator.redis)
    for _ in range(3):
        queue.enqueue("builtins.len", "x")
    (alert,) = _once(evaluator)
    assert (alert.kind, alert.subject, alert.queue) == (AlertKind.QUEUE_DEPTH, "queue:sync", "sync")
    assert alert.occurrences == 3
    assert "3 jobs waiting" in alert.message
    queue.empty()
    evaluator()
    (closed,) = evaluator.rows()
    assert closed.status == AlertStatus.CLOSED and closed.closed_at is not None


def test_queue_depth_override_per_family(evaluator):
    """A per-queue threshold overrides the setting for that family only."""
    evaluator.settings = evaluator.settings.model_copy(update={"alert_queue_depth": 2})
    with session_scope() as session:
        alerts.set_threshold(session, kind=AlertKind.QUEUE_DEPTH, value=10, queue="sync")
    for family in ("sync", "conflicts"):
        for _ in range(3):
            Queue(f"{family}.default", connection=evaluator.redis).enqueue("builtins.len", "x")
    assert [a.subject for a in _once(evaluator)] == ["queue:conflicts"]


def test_failure_streak(evaluator):
    with session_scope() as session:
        cid = make_connection(session).id
        make_job(session, cid, JobStatus.COMPLETED, finished_at=utcnow() - timedelta(hours=1))
        for minutes in (30, 20):
            make_job(
                session, cid, JobStatus.FAILED, finished_at=utcnow() - timedelta(minutes=minutes)
            )
    assert _once(evaluator) == []  # two in a row: below the threshold of three
    with session_scope() as session:
        make_job(session, cid, JobStatus.FAILED, finished_at=utcnow() - timedelta(minutes=10))
    (alert,) = _once(evaluator)
    assert alert.kind == AlertKind.JOB_FAILURES and alert.connection_id == cid
    assert alert.severity == Severity.HIGH and alert.occurrences == 3
    assert alert.subject == f"connection:{cid}:incremental:failures"
    with session_scope() as session:
        make_job(session, cid, JobStatus.COMPLETED, finished_at=utcnow())
    evaluator()
    assert evaluator.active() == []
    assert evaluator.rows()[0].status == AlertStatus.CLOSED


def test_failure_streak_override_per_connection(evaluator):
    with session_scope() as session:
        strict, lax = make_connection(session, "strict").id, make_connection(session, "lax").id
        alerts.set_threshold(session, kind=AlertKind.JOB_FAILURES, value=1, connection_id=strict)
        alerts.set_threshold(session, kind=AlertKind.JOB_FAILURES, value=5, connection_id=lax)
        for cid in (strict, lax):
            for _ in range(3):
                make_job(session, cid, JobStatus.FAILED, finished_at=utcnow())
    assert [a.connection_id for a in _once(evaluator)] == [strict]


def _runs(session: Session, cid: int, seconds: list[int]) -> None:
    end = utcnow() - timedelta(hours=1)
    for s in seconds:
        make_job(
            session,
            cid,
            JobStatus.COMPLETED,
            started_at=end - timedelta(seconds=s),
            finished_at=end,
        )


def test_slow_job(evaluator):
    with session_scope() as session:
        cid = make_connection(session).id
        _runs(session, cid, [10, 12, 14])  # median 12 s: slow above 36 s
        quick = make_job(
            session, cid, JobStatus.RUNNING, started_at=utcnow() - timedelta(seconds=20)
        ).id
        slow = make_job(
            session, cid, JobStatus.RUNNING, started_at=utcnow() - timedelta(seconds=100)
        ).id
    (alert,) = _once(evaluator)
    assert (alert.kind, alert.subject) == (AlertKind.JOB_SLOW, f"job:{slow}")
    assert "usually takes 12 s" in alert.message and str(quick) not in alert.subject
    with session_scope() as session:
        job = session.get(SyncJob, slow)
        job.status, job.finished_at = JobStatus.COMPLETED, utcnow()
    evaluator()
    assert evaluator.active() == []


def test_slow_job_floor_and_history(evaluator):
    """No alert below the floor, nor for a job type with too few runs to know its usual."""
    evaluator.settings = evaluator.settings.model_copy(update={"alert_slow_floor_seconds": 600})
    with session_scope() as session:
        cid = make_connection(session).id
        other = make_connection(session, "new").id
        _runs(session, cid, [10, 12, 14])
        _runs(session, other, [10, 12])
        for c in (cid, other):
            make_job(session, c, JobStatus.RUNNING, started_at=utcnow() - timedelta(seconds=300))
    assert _once(evaluator) == []
    evaluator.settings = evaluator.settings.model_copy(update={"alert_slow_floor_seconds": 1})
    assert [a.connection_id for a in _once(evaluator)] == [cid]


def test_subscription_disabled(evaluator):
    with session_scope() as session:
        paused = make_subscription(session, active=False).id  # switched off by a person
        sid = make_subscription(session, active=False, failure_streak=7).id
    (alert,) = _once(evaluator)
    assert (alert.kind, alert.subject) == (AlertKind.SUBSCRIPTION_DISABLED, f"subscription:{sid}")
    assert str(paused) not in alert.subject.split(":")
    with session_scope() as session:
        sub = session.get(WebhookSubscription, sid)
        sub.active, sub.failure_streak = True, 0
    evaluator()
    assert evaluator.active() == []


def test_conflict_backlog(evaluator):
    with session_scope() as session:
        cid = make_connection(session).id
        ids = [make_conflict(session, cid, remote_id=f"pt-{n}") for n in range(4)]
        for xid in ids[:2]:
            session.get(Conflict, xid).severity = Severity.HIGH
    assert _once(evaluator) == []  # two high (and two low): not over the threshold of two
    with session_scope() as session:
        session.get(Conflict, ids[2]).severity = Severity.HIGH
    (alert,) = _once(evaluator)
    assert (alert.kind, alert.connection_id) == (AlertKind.CONFLICT_BACKLOG, cid)
    assert "3 open high-severity" in alert.message
    with session_scope() as session:
        session.get(Conflict, ids[0]).status = "resolved"
    evaluator()
    assert evaluator.active() == []


def test_raised_again_after_closing(evaluator):
    """A condition that returns after its alert closed gets a new alert (and a new event)."""
    with session_scope() as session:
        sid = make_subscription(session, active=False, failure_streak=1).id
    evaluator()
    with session_scope() as session:
        session.get(WebhookSubscription, sid).active = True
    evaluator()
    with session_scope() as session:
        session.get(WebhookSubscription, sid).active = False
    evaluator()
    first, second = evaluator.rows()
    assert first.status == AlertStatus.CLOSED and second.status == AlertStatus.OPEN
    assert first.subject == second.subject


def test_evaluate_in_worker_session_is_reused(evaluator):
    """evaluate commits: what it raised is visible to a fresh session at once."""
    with session_scope() as session:
        make_subscription(session, active=False, failure_streak=1)
    with Session(get_engine()) as session:
        raised = alerts.evaluate(session, evaluator.redis, evaluator.settings)
    assert [a.id for a in raised] == [a.id for a in evaluator.active()]
