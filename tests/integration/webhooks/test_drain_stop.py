"""A drain whose worker is asked to stop hands the events it has not reached back, first in
line and with a drain job queued for them, instead of holding the stop for the whole list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rq import Queue

from holovitals_sync.db import session_scope
from holovitals_sync.models import InboundEvent, InboundStatus
from holovitals_sync.services import event_jobs
from holovitals_sync.services.orchestration import shutdown
from holovitals_sync.services.platform.redis import redis_connection
from holovitals_sync.services.webhooks import queueing
from tests.factories import make_connection


@pytest.fixture
def stopping(wh_db) -> Iterator[None]:
    yield
    shutdown.reset()


def _events(count: int, **fields: object) -> list[int]:
    """`count` stored events, each about a patient of its own (`fields` for every row)."""
    with session_scope() as session:
        cid = make_connection(session).id
        rows = [
            InboundEvent(
                connection_id=cid,
                event_key=f"k{n}",
                event_type="update",
                resource_type="Patient",
                patient_ref=f"Patient/pt-{n}",
                **fields,
            )
            for n in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [int(r.id) for r in rows]


def _status(event_id: int) -> InboundStatus:
    with session_scope() as session:
        return session.get(InboundEvent, event_id).status


def test_a_stopping_drain_gives_the_rest_back_in_order(stopping):
    ids = _events(5)
    queueing.enqueue_inbound(ids)
    conn = redis_connection()
    drains = Queue("webhooks.high", connection=conn)
    drains.empty()  # the drain below is called in-line, as its RQ job would run it
    calls: list[int] = []
    real = event_jobs.process_event

    def process_then_stop(event_id: int, **kwargs: object) -> str:
        calls.append(event_id)
        if len(calls) == 2:
            shutdown.request()  # SIGUSR1 from the stopping worker, mid-list
        return real(event_id, **kwargs)

    event_jobs.process_event = process_then_stop  # type: ignore[assignment]
    try:
        assert event_jobs.drain(batch=10) == 2
    finally:
        event_jobs.process_event = real  # type: ignore[assignment]
    assert calls == ids[:2]
    assert [int(i) for i in conn.lrange(queueing.PENDING_INBOUND, 0, -1)] == ids[2:]
    assert len(drains) == 1  # someone will take them up (the next start's workers)
    assert [_status(i) for i in ids[2:]] == [InboundStatus.RECEIVED] * 3

    shutdown.reset()
    assert event_jobs.drain(batch=10) == 3
    assert conn.llen(queueing.PENDING_INBOUND) == 0
