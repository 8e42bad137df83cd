"""Inbound event processing that fails for a passing reason is retried with backoff on the
webhooks queue (RQ `Retry`, timed by RQ's scheduler); a failure no retry can fix is recorded
at once and not retried. Real Redis, real RQ (an in-process worker, so the failure can be
injected), SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import InboundEvent, InboundStatus, SyncJob
from holovitals_sync.models.types import utcnow
from holovitals_sync.services import event_jobs
from holovitals_sync.services.platform.redis import redis_connection
from holovitals_sync.services.webhooks import queueing
from holovitals_sync.services.webhooks.sweep import LOCK, requeue_unqueued
from tests.factories import make_connection

from .conftest import wait_for

WEBHOOK_QUEUES = ("webhooks.high", "webhooks.default", "webhooks.low")


@pytest.fixture
def flaky(wh_db, monkeypatch):
    """`start_job` failing with a Redis connection error the first `failures` times."""
    state = {"failures": 2, "calls": 0, "error": redis.ConnectionError}
    real = event_jobs.start_job

    def start_job(*args, **kwargs):
        state["calls"] += 1
        if state["calls"] <= state["failures"]:
            raise state["error"]("Error 111 connecting to 127.0.0.1:6379")
        return real(*args, **kwargs)

    monkeypatch.setattr(event_jobs, "start_job", start_job)
    return state


def _event(patient_ref: str = "Patient/pt-1") -> int:
    with session_scope() as session:
        cid = make_connection(session).id
        event = InboundEvent(
            connection_id=cid,
            event_key=patient_ref[:40],
            event_type="update",
            resource_type="Patient",
            patient_ref=patient_ref,
        )
        session.add(event)
        session.flush()
        event_id = event.id
    queueing.enqueue_inbound([event_id])
    return event_id


def _row(event_id: int) -> InboundEvent:
    with session_scope() as session:
        return session.get(InboundEvent, event_id)


def _work_until(done, timeout: float = 30) -> None:
    """Burst workers with the scheduler's pass, until `done()`: due retries get run."""
    conn = redis_connection()
    queues = [Queue(name, connection=conn) for name in WEBHOOK_QUEUES]

    def step() -> bool:
        SimpleWorker(queues, connection=conn).work(burst=True, with_scheduler=True)
        return bool(done())

    wait_for(step, timeout=timeout, interval=0.2)


def _registries() -> tuple[int, int]:
    q = Queue("webhooks.default", connection=redis_connection())
    return ScheduledJobRegistry(queue=q).count, FailedJobRegistry(queue=q).count


def test_passing_failure_is_retried_until_it_works(flaky):
    event_id = _event()
    _work_until(lambda: _row(event_id).rejection_reason is not None)
    first = _row(event_id)
    # Redis away is the infrastructure's failure, not the event's: it is never `failed`.
    assert (first.status, first.rejection_reason) == (
        InboundStatus.RECEIVED,
        "ConnectionError; retrying",
    )
    assert _registries()[0] == 1  # the retry waits for its backoff
    _work_until(lambda: _row(event_id).status == InboundStatus.PROCESSED)
    done = _row(event_id)
    assert flaky["calls"] == 3 and done.job_id is not None
    with session_scope() as session:
        (job,) = session.exec(select(SyncJob)).all()
    assert (job.id, job.patient_id) == (done.job_id, "pt-1")
    assert _registries() == (0, 0)


def test_retries_run_out_and_say_so(flaky, monkeypatch):
    flaky["failures"] = 99
    monkeypatch.setenv("HOLOVITALS_RETRY_ATTEMPTS", "2")
    from holovitals_sync.config import get_settings

    get_settings.cache_clear()
    event_id = _event()
    _work_until(lambda: _registries()[1] == 1)  # RQ gave up: the job is in the failed set
    row = _row(event_id)
    assert flaky["calls"] == 1 + 2
    assert (row.status, row.rejection_reason) == (
        InboundStatus.RECEIVED,
        "ConnectionError; retries used up, queued again by the sweeper",
    )
    assert "pt-1" not in (row.rejection_reason or "")
    # Once Redis is back, the sweeper's next pass takes it up: nothing acknowledged is lost.
    flaky["failures"] = 0
    redis_connection().delete(LOCK)  # another test's sweep may hold it
    with session_scope() as session:
        assert requeue_unqueued(session, now=utcnow() + timedelta(minutes=5)) == 1
    _work_until(lambda: _row(event_id).status == InboundStatus.PROCESSED)
    assert flaky["calls"] == 1 + 2 + 1


def test_a_failure_of_the_event_itself_ends_failed_when_retries_run_out(flaky, monkeypatch):
    flaky["failures"], flaky["error"] = 99, RuntimeError
    monkeypatch.setenv("HOLOVITALS_RETRY_ATTEMPTS", "1")
    from holovitals_sync.config import get_settings

    get_settings.cache_clear()
    event_id = _event()
    _work_until(lambda: _registries()[1] == 1)
    row = _row(event_id)
    assert (row.status, row.rejection_reason) == (
        InboundStatus.FAILED,
        "RuntimeError; retries used up",
    )
    with session_scope() as session:  # a failed event is not the sweeper's
        assert requeue_unqueued(session, now=utcnow() + timedelta(minutes=5)) == 0


def test_permanent_failure_is_recorded_not_retried(flaky):
    """A patient reference without an id makes no valid job (ValidationError): no retry."""
    event_id = _event("Patient/")
    _work_until(lambda: _row(event_id).status != InboundStatus.RECEIVED)
    row = _row(event_id)
    assert (row.status, row.rejection_reason) == (
        InboundStatus.FAILED,
        "ValidationError; not retried",
    )
    assert flaky["calls"] == 0 and _registries() == (0, 0)
