"""A worker killed mid-sync, cancel and retry, a 429 storm: no loss, no duplicate."""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta

import pytest
from sqlmodel import func, select

from holovitals_sync.db import session_scope
from holovitals_sync.models import JobStatus, SyncedRecord, SyncJob
from holovitals_sync.models.types import utcnow
from holovitals_sync.services.orchestration import (
    StateConflict,
    cancel_job,
    heartbeat,
    queueing,
    reconcile,
    retry_job,
)
from holovitals_sync.services.orchestration.reconcile import _check

from .conftest import (
    TESTER,
    job_row,
    local_hashes,
    sandbox_hashes,
    start,
    wait_for,
    wait_running,
    wait_status,
)


def record_count(connection_id: int) -> int:
    with session_scope() as session:
        return session.exec(
            select(func.count())
            .select_from(SyncedRecord)
            .where(SyncedRecord.connection_id == connection_id)
        ).one()


def slow_export(ehr) -> None:
    """Many small export files, each answered slowly: a job of several seconds."""
    ehr.configure(export_file_max_lines=10)
    ehr.set_faults(latency_ms=120)


def test_sigkilled_worker_is_replaced_and_the_job_resumes(connection, ehr, workers):
    slow_export(ehr)
    (first,) = workers.start(1)
    job_id = start(connection.id)
    wait_running(job_id, min_fetched=60)
    workers.kill(first)
    stored_when_killed = record_count(connection.id)
    assert stored_when_killed > 0

    workers.start(1)

    def finished() -> SyncJob | None:
        reconcile()  # what maintenance does periodically (the new worker runs it too)
        row = job_row(job_id)
        return row if row.status.value in ("completed", "failed") else None

    job = wait_for(finished, timeout=90, interval=1)
    assert job.status.value == "completed", job.last_error
    assert job.attempts == 2 and "Abandoned" in (job.last_error or "")
    expected = sandbox_hashes(ehr)
    assert local_hashes(connection.id) == expected
    assert record_count(connection.id) == len(expected) > stored_when_killed
    assert job.created == len(expected) and job.updated == 0


def test_cancel_keeps_committed_work_and_retry_finishes(connection, ehr, workers):
    slow_export(ehr)
    workers.start(1)
    job_id = start(connection.id)
    wait_running(job_id, min_fetched=40)
    began = time.monotonic()
    with session_scope() as session:
        cancel_job(session, job_id=job_id, actor=TESTER)
    time.sleep(1.5)  # a stopped horse commits nothing more
    job = wait_status(job_id, "cancelled")
    kept = record_count(connection.id)
    assert 0 < kept < len(sandbox_hashes(ehr))
    assert record_count(connection.id) == kept and time.monotonic() - began < 5
    with session_scope() as session, pytest.raises(StateConflict):
        cancel_job(session, job_id=job_id, actor=TESTER)

    ehr.clear_faults()
    with session_scope() as session:
        retry_job(session, job_id=job_id, actor=TESTER)
    job = wait_status(job_id, "completed", "failed")
    assert job.status.value == "completed", job.last_error
    assert local_hashes(connection.id) == sandbox_hashes(ehr)
    assert job.created == record_count(connection.id)
    with session_scope() as session, pytest.raises(StateConflict):
        cancel_job(session, job_id=job_id, actor=TESTER)


def test_a_429_storm_stretches_the_job_without_failing_it(connection, ehr, workers):
    workers.start(1)
    ehr.set_faults(storm=8, retry_after=0.3)
    began = time.monotonic()
    job = wait_status(start(connection.id), "completed", "failed", timeout=90)
    assert job.status.value == "completed", job.last_error
    assert time.monotonic() - began >= 8 * 0.3
    assert ehr.stats()["by_status"].get("429") == 8
    assert local_hashes(connection.id) == sandbox_hashes(ehr)


def test_a_stopped_worker_hands_its_job_back_at_a_checkpoint(connection, ehr, workers):
    """SIGTERM (what `up` and process managers send): the run stops after the batch it is
    writing, the job waits queued (its attempt given back), and the next worker resumes it
    from the checkpoint: nothing lost, nothing stored twice, and no hour-long wait."""
    slow_export(ehr)
    (first,) = workers.start(1)
    job_id = start(connection.id)
    wait_running(job_id, min_fetched=60)
    began = time.monotonic()
    first.send_signal(signal.SIGTERM)  # the worker only, as rq worker-pool does
    first.wait(timeout=20)
    assert time.monotonic() - began < 10  # a batch, not the rest of the export
    stopped = job_row(job_id)
    assert stopped.status.value == "queued" and stopped.attempts == 0, stopped.last_error
    assert stopped.checkpoint.get("resume")
    kept = record_count(connection.id)
    assert 0 < kept < len(sandbox_hashes(ehr))

    workers.start(1)
    job = wait_status(job_id, "completed", "failed", timeout=90)
    assert job.status.value == "completed", job.last_error
    assert job.attempts == 1  # the stop was not a failed attempt
    expected = sandbox_hashes(ehr)
    assert local_hashes(connection.id) == expected
    assert job.created == len(expected) and job.updated == 0


def test_a_job_its_worker_took_and_died_with_is_queued_again(connection, ehr, workers):
    """RQ says queued, but no queue holds it (popped by a worker killed before it started):
    past the grace period reconcile puts the same RQ job back, and it runs once."""
    job_id = start(connection.id)
    row = job_row(job_id)
    queue = queueing.queue_for(row.priority)
    assert queue.connection.lrem(queue.key, 0, row.rq_job_id) == 1  # the dying worker's pop
    assert reconcile() == {}  # within the grace period: an enqueue may be in flight
    with session_scope() as session:
        stale = session.get(SyncJob, job_id)
        stale.queued_at = stale.queued_at - timedelta(minutes=5)
        session.add(stale)
    assert reconcile() == {"requeued": 1}
    assert queue.job_ids == [row.rq_job_id]  # the same id: what depends on it still waits
    assert reconcile() == {}  # it is in its queue now
    workers.start(1)
    job = wait_status(job_id, "completed", "failed", timeout=90)
    assert job.status.value == "completed" and job.attempts == 1, job.last_error


def _as_running(job_id: int, beat_age: timedelta) -> SyncJob:
    """The row as a run leaves it: RUNNING, first attempt, its last beat `beat_age` ago."""
    with session_scope() as session:
        row = session.get(SyncJob, job_id)
        row.status, row.attempts = JobStatus.RUNNING, 1
        row.heartbeat_at = utcnow() - beat_age
        session.add(row)
    return job_row(job_id)


def test_a_running_job_redis_forgot_is_queued_again_once_its_pulse_stops(connection, ehr, workers):
    """Redis lost the RQ job of a running row (a restart without its data): while the run
    beats, reconcile leaves it be; four missed beats later it is queued again, and runs."""
    job_id = start(connection.id)
    row = job_row(job_id)
    queueing.fetch_rq_job(row.rq_job_id).delete()  # Redis came back without it
    _as_running(job_id, beat_age=heartbeat.LOST_AFTER - timedelta(seconds=5))
    assert reconcile() == {}  # a beat within LOST_AFTER: the run may be alive
    _as_running(job_id, beat_age=heartbeat.LOST_AFTER + timedelta(seconds=1))
    assert reconcile() == {"requeued": 1}
    requeued = job_row(job_id)
    assert requeued.status.value == "queued" and "LostJob" in (requeued.last_error or "")
    assert requeued.rq_job_id != row.rq_job_id
    workers.start(1)
    job = wait_status(job_id, "completed", "failed", timeout=90)
    assert job.status.value == "completed", job.last_error
    assert local_hashes(connection.id) == sandbox_hashes(ehr)


def test_the_pulse_beats_while_the_run_lives_and_stops_when_the_row_moves_on(
    connection, monkeypatch
):
    monkeypatch.setattr(heartbeat, "BEAT_SECONDS", 0.05)
    job_id = start(connection.id)
    old = _as_running(job_id, beat_age=timedelta(minutes=5)).heartbeat_at
    with heartbeat.beating(job_id, 1):
        wait_for(lambda: job_row(job_id).heartbeat_at > old + timedelta(minutes=4), timeout=10)
    fresh = job_row(job_id).heartbeat_at
    assert heartbeat.touch(job_id, 2) is False  # another attempt's run vouches for nothing
    with session_scope() as session:
        session.get(SyncJob, job_id).status = JobStatus.CANCELLED
    assert heartbeat.touch(job_id, 1) is False
    with heartbeat.beating(job_id, 1):
        time.sleep(0.3)
    _pulse_ended(job_id)
    assert job_row(job_id).heartbeat_at == fresh  # a cancelled row is not kept alive


def _pulse_ended(job_id: int) -> None:
    """`beating` joins its thread for one beat at most: wait until it is gone."""
    name = f"heartbeat-{job_id}"
    wait_for(lambda: all(t.name != name for t in threading.enumerate()), timeout=10)


def test_reconcile_keeps_a_row_whose_run_beat_or_finished_after_it_was_read(connection):
    """Reconcile reads every active row, then checks each with Redis: a run that beat (or
    ended) in between keeps its row, however silent it looked when read."""
    job_id = start(connection.id)
    queueing.fetch_rq_job(job_row(job_id).rq_job_id).delete()  # Redis came back without it
    _as_running(job_id, beat_age=heartbeat.LOST_AFTER + timedelta(seconds=5))
    with session_scope() as session:
        seen = session.get(SyncJob, job_id)  # as reconcile read it: silent for 25 s
        assert heartbeat.touch(job_id, 1)  # the run beats now, from its own connection
        assert _check(session, seen) is None
    assert job_row(job_id).status.value == "running"
    with session_scope() as session:
        seen = session.get(SyncJob, job_id)
        with session_scope() as other:
            other.get(SyncJob, job_id).status = JobStatus.COMPLETED  # the run ends meanwhile
        assert _check(session, seen) is None
    assert job_row(job_id).status.value == "completed"  # not put back to queued
