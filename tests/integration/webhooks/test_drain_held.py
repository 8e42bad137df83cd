"""Ids a drain has popped are held, not lost: the maintenance sweep does not queue them again
while the drain works through them (two drains processing one event at once each made a sync
job), and takes them up once the lease of a drain that died has run out.

Real Redis and database; the drain runs in-line, as its RQ job would run it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
from rq import Queue

from holovitals_sync.db import session_scope
from holovitals_sync.models import InboundEvent, InboundStatus
from holovitals_sync.models.types import utcnow
from holovitals_sync.services import event_jobs
from holovitals_sync.services.hl7 import queueing as hl7_queueing
from holovitals_sync.services.orchestration import shutdown
from holovitals_sync.services.platform import id_lists
from holovitals_sync.services.platform.redis import redis_connection
from holovitals_sync.services.webhooks import queueing
from holovitals_sync.services.webhooks.sweep import LOCK, requeue_unqueued

from .test_drain_stop import _events


@pytest.fixture
def events(wh_db) -> Iterator[list[int]]:
    """Five stored events, queued, received two minutes ago (old enough to sweep)."""
    ids = _events(5, received_at=utcnow() - timedelta(minutes=2))
    queueing.enqueue_inbound(ids)
    Queue("webhooks.high", connection=redis_connection()).empty()  # drains run in-line here
    yield ids
    shutdown.reset()


def _sweep() -> int:
    redis_connection().delete(LOCK)  # each call stands for another maintenance tick
    with session_scope() as session:
        return requeue_unqueued(session)


def _listed() -> list[int]:
    return [int(i) for i in redis_connection().lrange(queueing.PENDING_INBOUND, 0, -1)]


def _held() -> list[int]:
    key = id_lists.held_key(queueing.PENDING_INBOUND)
    return sorted(int(i) for i in redis_connection().zrange(key, 0, -1))


def _statuses(ids: list[int]) -> list[InboundStatus]:
    with session_scope() as session:
        return [session.get(InboundEvent, i).status for i in ids]


@contextmanager
def _processing(first: Callable[[], None]) -> Iterator[None]:
    """Drains call `first` before each event they process (then process it as usual)."""
    real = event_jobs.process_event

    def wrapped(event_id: int, **kwargs: object) -> str:
        first()
        return real(event_id, **kwargs)

    event_jobs.process_event = wrapped  # type: ignore[assignment]
    try:
        yield
    finally:
        event_jobs.process_event = real  # type: ignore[assignment]


def test_a_sweep_during_a_drain_queues_nothing_the_drain_holds(events):
    sweeps: list[int] = []

    def sweep_once() -> None:
        if not sweeps:
            sweeps.append(_sweep())  # a maintenance tick while the drain holds the batch
            assert _held() == events and _listed() == []

    with _processing(sweep_once):
        assert event_jobs.drain(batch=10) == 5
    assert sweeps == [0]
    assert _held() == [] and _listed() == []
    assert _statuses(events) == [InboundStatus.PROCESSED] * 5
    with session_scope() as session:  # one job per event's patient, none made twice
        named = session.exec(sa.select(InboundEvent.job_id).where(InboundEvent.id.in_(events)))
        assert len(set(named.scalars())) == 5


def test_released_or_past_the_lease_the_sweep_takes_them_up(events):
    first, second = queueing.pop_inbound(2)
    assert _sweep() == 0  # two held, three listed
    # A drain through with an event whose row is still `received` (its commit failed).
    queueing.done_inbound([first])
    assert _sweep() == 1 and _listed() == [*events[2:], first]
    # A drain that died holding one: taken for dead once the lease has run out.
    key = id_lists.held_key(queueing.PENDING_INBOUND)
    redis_connection().zadd(key, {str(second): time.time() - id_lists.LEASE - 1})
    assert _sweep() == 1 and _listed() == [*events[2:], first, second]
    assert _held() == []


def test_a_stopping_drain_holds_nothing_it_gave_back(events):
    # SIGUSR1 from the stopping worker, before the first event: that one is still processed.
    with _processing(shutdown.request):
        assert event_jobs.drain(batch=10) == 1
    assert _listed() == events[1:] and _held() == []


def test_hl7_messages_a_drain_holds_count_as_waiting(wh_db):
    hl7_queueing.enqueue_messages([11, 12, 13])
    popped = hl7_queueing.pop_messages(2)
    assert popped == [11, 12]
    assert hl7_queueing.waiting() == {11, 12, 13}
    hl7_queueing.done(popped)
    assert hl7_queueing.waiting() == {13}
